package storage

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mappingFlags returns the VmFlags of this process's mapping of path
// (/proc/self/smaps), "" when path is not mapped.
func mappingFlags(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == path // a mapping's header line
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmFlags:"))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ""
}

// Both indexes of a segment are mapped for random access (smaps "rr"):
// a write fault on a new index page must not read around it.
func TestIndexMappingAdvisedRandom(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan AppendResult, 1)
	for i := int64(0); i < 3; i++ { // the first write creates the indexes
		if err := l.Append(makeBatch(1, 100, i, 1), AppendFunc(func(r AppendResult) { ch <- r })); err != nil {
			t.Fatal(err)
		}
		if r := waitResult(t, ch); r.Err != nil {
			t.Fatalf("append %d: %v", i, r.Err)
		}
	}
	for _, name := range []string{"00000000000000000000.index", "00000000000000000000.timeindex"} {
		path := filepath.Join(dir, name)
		flags := mappingFlags(t, path)
		if flags == "" {
			t.Fatalf("%s is not mapped", name)
		}
		if !strings.Contains(" "+flags+" ", " rr ") {
			t.Errorf("%s mapped with VmFlags %q, want rr (MADV_RANDOM)", name, flags)
		}
	}
}

// BenchmarkIndexFirstEntry creates a segment's index file as the writer
// does on a segment's first write (preallocated to segment.index.bytes,
// first page fallocated) and writes its first entry through the mapping:
// the page fault a new segment costs its first produce. Sub-benchmarks
// with and without the MADV_RANDOM advice, in one run.
func BenchmarkIndexFirstEntry(b *testing.B) {
	for _, c := range []struct {
		name   string
		random bool
	}{{"random", true}, {"readaround", false}} {
		b.Run(c.name, func(b *testing.B) {
			defer func(v bool) { mmapAdviseRandom = v }(mmapAdviseRandom)
			mmapAdviseRandom = c.random
			dir := b.TempDir()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				path := filepath.Join(dir, "00000000000000000000.index")
				ix, err := openIndex(OSFS{}, path, offsetEntrySize, true, 10<<20, 0, true)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if !ix.appendOffset(1, 4096) {
					b.Fatal("first entry refused")
				}
				b.StopTimer()
				if err := ix.close(); err != nil {
					b.Fatal(err)
				}
				if err := os.Remove(path); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
