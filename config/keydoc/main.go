// Command keydoc prints the server.properties key table (key, default,
// meaning) as markdown, for docs/ARCHITECTURE.md:
//
//	go run ./config/keydoc
package main

import (
	"os"

	"github.com/ringbroker/ringbroker/config"
)

func main() { config.Markdown(os.Stdout) }
