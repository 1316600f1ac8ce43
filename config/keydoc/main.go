// Command keydoc prints the config key reference (server.properties keys,
// ignored Kafka keys, topic keys) as markdown; with -w it rewrites
// docs/CONFIG.md, which config's TestDocsMatchKeyTable holds equal to it.
//
//	go run ./config/keydoc       # print
//	go run ./config/keydoc -w    # rewrite docs/CONFIG.md (run from the repository root)
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/ringbroker/ringbroker/config"
)

func main() {
	write := flag.Bool("w", false, "rewrite "+config.DocPath+" instead of printing")
	flag.Parse()
	var buf bytes.Buffer
	config.Markdown(&buf)
	if !*write {
		os.Stdout.Write(buf.Bytes())
		return
	}
	if err := os.WriteFile(config.DocPath, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "keydoc:", err)
		os.Exit(1)
	}
}
