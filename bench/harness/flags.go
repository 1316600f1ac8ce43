package harness

import (
	"fmt"
	"io"
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

// prepareRun applies a run's directory and backend defaults: outDir
// (bench-results) is created, an empty workDir becomes a new temp dir
// named prefix* that cleanup removes (cleanup is a no-op otherwise), and
// no backends means both.
func prepareRun(outDir, workDir *string, backends *[]string, prefix string) (cleanup func(), err error) {
	cleanup = func() {}
	if *outDir == "" {
		*outDir = "bench-results"
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return cleanup, err
	}
	if *workDir == "" {
		dir, err := os.MkdirTemp("", prefix)
		if err != nil {
			return cleanup, err
		}
		*workDir = dir
		cleanup = func() { os.RemoveAll(dir) }
	}
	if len(*backends) == 0 {
		*backends = []string{"uring", "portable"}
	}
	return cleanup, nil
}

// logfTo writes one formatted line per call to w (nil: nowhere).
func logfTo(w io.Writer) func(format string, a ...any) {
	return func(format string, a ...any) {
		if w != nil {
			fmt.Fprintf(w, format+"\n", a...)
		}
	}
}
