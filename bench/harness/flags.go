package harness

import (
	"os"
	"strings"
)

// EnvOr is the environment variable key, or def when it is empty: the
// bench commands' flag defaults (BENCH, BENCH_OUT, ...).
func EnvOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// SplitList splits a comma-separated flag value, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
