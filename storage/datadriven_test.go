package storage

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite datadriven expected output in testdata/")

// A small datadriven runner (in the style of cockroachdb/datadriven, our
// own code). A script is a sequence of blocks:
//
//	command arg=value ...
//	----
//	expected output (no blank lines)
//	<blank line>
//
// go test -run TestRecoveryScripts -rewrite regenerates the expected output.
type ddCase struct {
	comment string // '#' lines before the command, kept by -rewrite
	cmd     string
	args    map[string]string
	want    string
}

func parseScript(t *testing.T, path string) []ddCase {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ddCase
	sc := bufio.NewScanner(f)
	var comment strings.Builder
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			comment.WriteString(line + "\n")
			continue
		}
		if line == "" {
			continue
		}
		fs := strings.Fields(line)
		c := ddCase{comment: comment.String(), cmd: fs[0], args: map[string]string{}}
		comment.Reset()
		for _, a := range fs[1:] {
			k, v, _ := strings.Cut(a, "=")
			c.args[k] = v
		}
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s: %q: expected ----", path, line)
		}
		var want []string
		for sc.Scan() && sc.Text() != "" {
			want = append(want, sc.Text())
		}
		c.want = strings.Join(want, "\n")
		out = append(out, c)
	}
	return out
}

func writeScript(path string, cases []ddCase, got []string) error {
	var b strings.Builder
	for i, c := range cases {
		b.WriteString(c.comment)
		b.WriteString(c.cmd)
		keys := make([]string, 0, len(c.args))
		for k := range c.args {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if c.args[k] == "" {
				fmt.Fprintf(&b, " %s", k)
			} else {
				fmt.Fprintf(&b, " %s=%s", k, c.args[k])
			}
		}
		fmt.Fprintf(&b, "\n----\n%s\n\n", got[i])
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func TestRecoveryScripts(t *testing.T) {
	paths, _ := filepath.Glob("testdata/recovery/*.txt")
	if len(paths) == 0 {
		t.Fatal("no scripts")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			cases := parseScript(t, p)
			r := &ddRunner{t: t, dir: t.TempDir(), cfg: testConfig()}
			defer r.closeLog()
			got := make([]string, len(cases))
			for i, c := range cases {
				got[i] = strings.TrimRight(r.run(c), "\n")
				if got[i] == "" {
					got[i] = "ok"
				}
				if !*rewrite && got[i] != c.want {
					t.Errorf("%s: block %d %q:\n--- want\n%s\n--- got\n%s", p, i+1, c.cmd, c.want, got[i])
				}
			}
			if *rewrite {
				if err := writeScript(p, cases, got); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

type ddRunner struct {
	t    *testing.T
	dir  string
	cfg  Config
	l    *Log
	seq  int64
	logs strings.Builder
	rp   int64
}

func (r *ddRunner) closeLog() {
	if r.l != nil {
		r.l.crashClose()
		r.l = nil
	}
}

func (r *ddRunner) intArg(c ddCase, k string, def int64) int64 {
	v, ok := c.args[k]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.t.Fatalf("%s: bad %s=%q", c.cmd, k, v)
	}
	return n
}

func (r *ddRunner) segFile(c ddCase, ext string) string {
	logs, _ := filepath.Glob(filepath.Join(r.dir, "*.log"))
	sort.Strings(logs)
	i := int(r.intArg(c, "seg", int64(len(logs)-1)))
	if i < 0 {
		i += len(logs)
	}
	return strings.TrimSuffix(logs[i], ".log") + ext
}

func (r *ddRunner) run(c ddCase) string {
	t := r.t
	switch c.cmd {
	case "config":
		r.cfg.SegmentBytes = r.intArg(c, "segment-bytes", r.cfg.SegmentBytes)
		r.cfg.FlushMessages = r.intArg(c, "flush-messages", r.cfg.FlushMessages)
		r.cfg.IndexIntervalBytes = int(r.intArg(c, "index-interval", int64(r.cfg.IndexIntervalBytes)))
		return ""
	case "open":
		r.logs.Reset()
		_, clean := c.args["clean"]
		l, err := Open(r.dir, r.cfg, Options{
			CleanShutdown: clean, RecoveryPoint: r.intArg(c, "recovery-point", r.rp),
			Logf: func(f string, a ...any) {
				fmt.Fprintf(&r.logs, "INFO "+strings.ReplaceAll(f, "log %s: ", "")+"\n", a[1:]...)
			},
			Warnf: func(f string, a ...any) {
				fmt.Fprintf(&r.logs, "WARN "+strings.ReplaceAll(f, "log %s: ", "")+"\n", a[1:]...)
			},
		})
		if err != nil {
			return "error: " + err.Error()
		}
		r.l = l
		return r.logs.String() + r.state()
	case "append":
		n := int(r.intArg(c, "n", 1))
		for i := 0; i < n; i++ {
			res := syncAppend(t, r.l, makeBatch(int(r.intArg(c, "records", 1)), int(r.intArg(c, "size", 100)), r.seq*10, byte(r.seq)))
			if res.Err != nil {
				return "error: " + res.Err.Error()
			}
			r.seq++
		}
		r.l.bgFlushes.Wait() // rolled-segment flushes: deterministic recovery point
		return r.state()
	case "close":
		r.rp = r.l.RecoveryPoint()
		if err := r.l.Close(); err != nil {
			return "error: " + err.Error()
		}
		r.l = nil
		return ""
	case "crash":
		r.l.crashClose()
		r.l = nil
		return ""
	case "segments":
		return r.segments()
	case "truncate":
		p := r.segFile(c, ".log")
		fi, _ := os.Stat(p)
		to := fi.Size() - r.intArg(c, "cut", 0)
		if err := os.Truncate(p, to); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%s: %d -> %d bytes", filepath.Base(p), fi.Size(), to)
	case "corrupt":
		p := r.segFile(c, ".log")
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		at := r.intArg(c, "at", 0)
		b := []byte{0}
		f.ReadAt(b, at)
		b[0] ^= 0xff
		f.WriteAt(b, at)
		return fmt.Sprintf("%s: flipped byte %d", filepath.Base(p), at)
	case "garbage":
		p := r.segFile(c, ".log")
		f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		junk := make([]byte, r.intArg(c, "n", 10))
		rand.New(rand.NewSource(int64(len(junk)))).Read(junk)
		f.Write(junk)
		return fmt.Sprintf("%s: appended %d garbage bytes", filepath.Base(p), len(junk))
	case "zeros":
		p := r.segFile(c, ".log")
		f, _ := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
		defer f.Close()
		f.Write(make([]byte, r.intArg(c, "n", 4096)))
		return fmt.Sprintf("%s: appended %s zero bytes", filepath.Base(p), c.args["n"])
	case "remove-index":
		p := r.segFile(c, ".index")
		os.Remove(p)
		return "removed " + filepath.Base(p)
	case "scribble-index":
		p := r.segFile(c, ".index")
		if err := os.WriteFile(p, []byte{0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1}, 0o644); err != nil {
			t.Fatal(err)
		}
		return "scribbled " + filepath.Base(p)
	case "read":
		reg, err := r.l.Read(r.intArg(c, "offset", 0), int(r.intArg(c, "max", 1<<20)))
		if err != nil {
			return "error: " + err.Error()
		}
		defer reg.Release()
		if reg.Len == 0 {
			return "empty"
		}
		return fmt.Sprintf("%s pos=%d len=%d base=%d", filepath.Base(reg.File.Name()), reg.Pos, reg.Len, reg.BaseOffset)
	case "list-offsets":
		off, ts, ok := r.l.ListOffset(r.intArg(c, "ts", -1))
		return fmt.Sprintf("offset=%d timestamp=%d found=%v", off, ts, ok)
	case "verify":
		got := readAll(t, r.l, r.l.LogStartOffset())
		var next int64 = r.l.LogStartOffset()
		for _, g := range got {
			if g.info.baseOffset < next {
				return fmt.Sprintf("offsets not increasing at %d", g.info.baseOffset)
			}
			next = g.info.lastOffset() + 1
		}
		return fmt.Sprintf("%d batches, all CRCs valid, next offset %d", len(got), next)
	}
	t.Fatalf("unknown command %q", c.cmd)
	return ""
}

func (r *ddRunner) state() string {
	l := r.l
	return fmt.Sprintf("hw=%d log-start=%d recovery-point=%d segments=%d", l.HighWatermark(), l.LogStartOffset(), l.RecoveryPoint(), l.NumSegments())
}

func (r *ddRunner) segments() string {
	ents, _ := os.ReadDir(r.dir)
	var b strings.Builder
	for _, e := range ents {
		fi, _ := e.Info()
		fmt.Fprintf(&b, "%s %d\n", e.Name(), fi.Size())
	}
	return b.String()
}
