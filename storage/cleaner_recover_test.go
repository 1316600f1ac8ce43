package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/codec"
)

// The states a crash can leave a cleaner swap in (cleaner_swap.go), built
// file by file and opened directly: the open must finish a committed swap
// (the result is the cleaned log), forget an uncommitted one (the result
// is the old log), and refuse a damaged swap without touching anything.

// swapFixture is a compacted log before and after one clean whose single
// group is several segments.
type swapFixture struct {
	oldDir, newDir string
	m              *cleanModel
	clk            *fakeClock
	cfg            Config
	end            int64   // the clean's end offset (first dirty after it)
	x              int64   // the group's first base offset
	group          []int64 // the old segments the group replaced, x first
	dr             time.Duration
}

func newSwapFixture(t *testing.T) *swapFixture {
	t.Helper()
	fx := &swapFixture{oldDir: t.TempDir(), newDir: t.TempDir(), m: newCleanModel(t), clk: newFakeClock()}
	cfg := testConfig()
	cfg.Compact = true
	cfg.NoDeleteRetention = true
	cfg.DeleteRetentionMs = 60_000
	cfg.TimeRollMinMs = 0
	cfg.SegmentMs = 1000 // rolled by time: small segments, one group
	fx.cfg = cfg
	fx.dr = time.Minute
	l, err := Open(fx.oldDir, cfg, Options{Clock: fx.clk})
	if err != nil {
		t.Fatal(err)
	}
	codecs := []int8{codec.None, codec.Gzip, codec.Snappy, codec.LZ4, codec.Zstd}
	for i := 0; i < 24; i++ {
		var recs []wrec
		for j := 0; j < 1+i%3; j++ {
			r := wrec{ts: fx.clk.Now().UnixMilli(), key: []byte(fmt.Sprintf("k%d", (i+j)%5)), value: []byte(fmt.Sprintf("v%d-%d", i, j))}
			if (i+j)%7 == 3 {
				r.value = nil
			}
			if (i+j)%11 == 5 {
				r.key = nil
			}
			recs = append(recs, r)
		}
		pid := int64(-1)
		if i%4 == 1 {
			pid = 9000
		}
		res := syncAppend(t, l, cleanTestBatch(recs, fx.clk.Now().UnixMilli(), codecs[i%len(codecs)], pid, int32(i*3)))
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		fx.m.appended(res, recs, pid, fx.clk.Now())
		if i%5 == 4 {
			fx.clk.Advance(1001 * time.Millisecond) // the next append rolls
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	copyDir(t, fx.oldDir, fx.newDir)
	if l, err = Open(fx.newDir, cfg, Options{Clock: fx.clk}); err != nil {
		t.Fatal(err)
	}
	st, err := NewCleaner(CleanerConfig{Clock: fx.clk}, nil).CleanLog(l)
	if err != nil {
		t.Fatal(err)
	}
	fx.end = l.FirstDirtyOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	oldBases, newBases := segmentBases(t, fx.oldDir), segmentBases(t, fx.newDir)
	fx.x = newBases[0]
	for _, b := range oldBases {
		if b >= fx.x && b < fx.end {
			fx.group = append(fx.group, b)
		}
	}
	if st.Segments < 3 || len(fx.group) != st.Segments || len(oldBases)-len(newBases) != st.Segments-1 || st.RecordsWritten >= st.RecordsRead {
		t.Fatalf("fixture: want one group of 3+ segments cleaned: %+v, old segments %v, new %v", st, oldBases, newBases)
	}
	return fx
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func segmentBases(t *testing.T, dir string) []int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, e := range ents {
		var b int64
		if strings.HasSuffix(e.Name(), ".log") {
			if _, err := fmt.Sscanf(e.Name(), "%d.log", &b); err == nil {
				out = append(out, b)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// dirSnapshot is every file of dir with its bytes.
func dirSnapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func sameSnapshot(t *testing.T, before, after map[string][]byte, when string) {
	t.Helper()
	for name, b := range before {
		a, ok := after[name]
		if !ok {
			t.Fatalf("%s: %s was removed", when, name)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%s: %s changed (%d bytes, was %d)", when, name, len(a), len(b))
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Fatalf("%s: %s was created", when, name)
		}
	}
}

func (fx *swapFixture) path(dir string, base int64, ext string) string {
	return segmentName(dir, base, ext)
}

func (fx *swapFixture) cleanedLog(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(fx.path(fx.newDir, fx.x, ".log"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// state copies the old log to a new dir and lets edit change it.
func (fx *swapFixture) state(t *testing.T, edit func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	copyDir(t, fx.oldDir, dir)
	edit(dir)
	return dir
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// openChecked opens dir (a crash: no clean shutdown, the recovery point
// given) and checks it against the model with cleanedTo.
func (fx *swapFixture) openChecked(t *testing.T, dir string, rp, cleanedTo int64, wantBases []int64) {
	t.Helper()
	l, err := Open(dir, fx.cfg, Options{Clock: fx.clk, RecoveryPoint: rp, CleanerOffset: cleanedTo})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer l.Close()
	noCleanerLeftovers(t, dir, "after open")
	fx.m.check(l, cleanedTo, fx.clk.Now(), fx.dr, "after open")
	if got := segmentBases(t, dir); fmt.Sprint(got) != fmt.Sprint(wantBases) {
		t.Fatalf("segments %v after open, want %v", got, wantBases)
	}
	// The log works on: a clean from here finds what it should.
	if _, err := NewCleaner(CleanerConfig{Clock: fx.clk}, nil).CleanLog(l); err != nil {
		t.Fatalf("clean after open: %v", err)
	}
	fx.m.check(l, l.FirstDirtyOffset(), fx.clk.Now(), fx.dr, "after open and a clean")
}

func TestCleanerOpenSwapStates(t *testing.T) {
	fx := newSwapFixture(t)
	oldBases, newBases := segmentBases(t, fx.oldDir), segmentBases(t, fx.newDir)
	cleaned := fx.cleanedLog(t)
	x := fx.x
	for _, rp := range []int64{0, fx.end} { // recover everything, or trust what is below the clean's end
		t.Run(fmt.Sprintf("rp=%d", rp), func(t *testing.T) {
			t.Run("cleaned-only", func(t *testing.T) {
				// Crashed while writing the copy (or before its rename): forgotten.
				dir := fx.state(t, func(dir string) {
					writeFile(t, fx.path(dir, x, ".log")+cleanedSuffix, cleaned[:len(cleaned)/2])
					writeFile(t, fx.path(dir, x, ".index")+cleanedSuffix, make([]byte, 64))
					writeFile(t, fx.path(dir, x, ".timeindex")+cleanedSuffix, nil)
				})
				fx.openChecked(t, dir, rp, 0, oldBases)
			})
			t.Run("swap-and-all-old", func(t *testing.T) {
				// Committed, nothing removed yet (the index copies still .cleaned).
				dir := fx.state(t, func(dir string) {
					writeFile(t, fx.path(dir, x, ".log")+swapSuffix, cleaned)
					writeFile(t, fx.path(dir, x, ".index")+cleanedSuffix, make([]byte, 64))
				})
				fx.openChecked(t, dir, rp, fx.end, newBases)
			})
			t.Run("swap-some-old-removed", func(t *testing.T) {
				// Committed, X's indexes and the first later segment removed.
				dir := fx.state(t, func(dir string) {
					writeFile(t, fx.path(dir, x, ".log")+swapSuffix, cleaned)
					removeFile(t, fx.path(dir, x, ".index"))
					removeFile(t, fx.path(dir, x, ".timeindex"))
					for _, ext := range []string{".index", ".timeindex", ".log"} {
						removeFile(t, fx.path(dir, fx.group[1], ext))
					}
					removeFile(t, fx.path(dir, fx.group[2], ".index")) // mid-way through the next one
				})
				fx.openChecked(t, dir, rp, fx.end, newBases)
			})
			t.Run("swap-all-old-removed-indexes-renamed", func(t *testing.T) {
				// Committed, every old file removed, the new indexes in place:
				// only the last rename is missing.
				dir := fx.state(t, func(dir string) {
					writeFile(t, fx.path(dir, x, ".log")+swapSuffix, cleaned)
					for _, b := range fx.group {
						for _, ext := range []string{".index", ".timeindex", ".log"} {
							if b != x || ext != ".log" {
								removeFile(t, fx.path(dir, b, ext))
							}
						}
					}
					for _, ext := range []string{".index", ".timeindex"} {
						b, err := os.ReadFile(fx.path(fx.newDir, x, ext))
						if err != nil {
							t.Fatal(err)
						}
						writeFile(t, fx.path(dir, x, ext), b)
					}
				})
				fx.openChecked(t, dir, rp, fx.end, newBases)
			})
		})
	}
	damaged := map[string]func([]byte) []byte{
		"torn":    func(b []byte) []byte { return b[:len(b)-7] },
		"crc":     func(b []byte) []byte { b = append([]byte(nil), b...); b[len(b)/2] ^= 0x20; return b },
		"empty":   func([]byte) []byte { return nil },
		"garbage": func(b []byte) []byte { return bytes.Repeat([]byte{0xa5}, len(b)) },
	}
	for name, damage := range damaged {
		t.Run("damaged-swap-"+name, func(t *testing.T) {
			dir := fx.state(t, func(dir string) {
				writeFile(t, fx.path(dir, x, ".log")+swapSuffix, damage(cleaned))
				// Files an open would otherwise remove: an unfinished copy
				// and the indexes of a segment the swap replaces.
				writeFile(t, fx.path(dir, fx.group[1], ".log")+cleanedSuffix, cleaned[:100])
			})
			before := dirSnapshot(t, dir)
			if l, err := Open(dir, fx.cfg, Options{Clock: fx.clk}); err == nil {
				l.Close()
				t.Fatal("open succeeded with a damaged cleaned segment")
			} else {
				t.Logf("open: %v", err)
			}
			sameSnapshot(t, before, dirSnapshot(t, dir), "after the failed open")
		})
	}
	t.Run("two-swaps-second-damaged", func(t *testing.T) {
		// A good swap is not finished when another is damaged: the open
		// fails before touching anything.
		dir := fx.state(t, func(dir string) {
			writeFile(t, fx.path(dir, x, ".log")+swapSuffix, cleaned)
			last := oldBases[len(oldBases)-1]
			writeFile(t, fx.path(dir, last, ".log")+swapSuffix, []byte("not a batch"))
		})
		before := dirSnapshot(t, dir)
		if l, err := Open(dir, fx.cfg, Options{Clock: fx.clk}); err == nil {
			l.Close()
			t.Fatal("open succeeded with a damaged cleaned segment")
		}
		sameSnapshot(t, before, dirSnapshot(t, dir), "after the failed open")
	})
}
