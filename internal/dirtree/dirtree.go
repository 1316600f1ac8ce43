// Package dirtree writes and fingerprints directory trees for tests that
// check a start left a log dir untouched: broker's unit tests and
// tests/integration share it. Like daemontest it does not import testing;
// every function returns an error and leaves failing to the caller.
package dirtree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Write creates every file of files (path relative to dir, slash
// separated, mapped to its content) with its parent directories.
func Write(dir string, files map[string]string) error {
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Digest is a sorted recursive listing of roots with every entry's mode
// and every regular file's size and SHA-256: equal digests mean nothing
// was created, removed, renamed, changed or chmodded.
func Digest(roots ...string) (string, error) {
	var lines []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			line := fmt.Sprintf("%s %v", path, info.Mode())
			if d.Type().IsRegular() {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(data)
				line += fmt.Sprintf(" %d %s", len(data), hex.EncodeToString(sum[:]))
			}
			lines = append(lines, line)
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}
