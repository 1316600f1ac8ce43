package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelp: --help and -h exit 0 and list the subcommands on stdout (they
// exited 2 with the flags only).
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var out, errOut bytes.Buffer
		if code := run([]string{arg}, &out, &errOut); code != 0 {
			t.Errorf("%s: exit %d, want 0 (stderr %q)", arg, code, errOut.String())
		}
		for _, want := range []string{"check-host", "version", "--config", "-set"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s output lacks %q:\n%s", arg, want, out.String())
			}
		}
	}
}
