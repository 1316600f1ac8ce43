package storage

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"

	"github.com/cockroachdb/datadriven"
)

// truncate cut=N [seg=]: cut N bytes off a segment's tail.
func (r *ddRunner) handleTruncate(d *datadriven.TestData) string {
	p := r.segFile(d, ".log")
	fi, _ := os.Stat(p)
	to := fi.Size() - r.intArg(d, "cut", 0)
	if err := os.Truncate(p, to); err != nil {
		r.t.Fatal(err)
	}
	return fmt.Sprintf("%s: %d -> %d bytes", filepath.Base(p), fi.Size(), to)
}

// corrupt at=N [seg=]: flip every bit of one byte.
func (r *ddRunner) handleCorrupt(d *datadriven.TestData) string {
	p := r.segFile(d, ".log")
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	at := r.intArg(d, "at", 0)
	b := []byte{0}
	f.ReadAt(b, at)
	b[0] ^= 0xff
	f.WriteAt(b, at)
	return fmt.Sprintf("%s: flipped byte %d", filepath.Base(p), at)
}

// garbage n=N [seg=]: append N seeded random bytes.
func (r *ddRunner) handleGarbage(d *datadriven.TestData) string {
	p := r.segFile(d, ".log")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, r.intArg(d, "n", 10))
	rand.New(rand.NewSource(int64(len(junk)))).Read(junk)
	f.Write(junk)
	return fmt.Sprintf("%s: appended %d garbage bytes", filepath.Base(p), len(junk))
}

// zeros n=N [seg=]: append N zero bytes (a preallocated tail).
func (r *ddRunner) handleZeros(d *datadriven.TestData) string {
	p := r.segFile(d, ".log")
	f, _ := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
	defer f.Close()
	f.Write(make([]byte, r.intArg(d, "n", 4096)))
	n, _ := arg(d, "n")
	return fmt.Sprintf("%s: appended %s zero bytes", filepath.Base(p), n)
}

// remove-index [seg=]: delete a segment's offset index.
func (r *ddRunner) handleRemoveIndex(d *datadriven.TestData) string {
	p := r.segFile(d, ".index")
	os.Remove(p)
	return "removed " + filepath.Base(p)
}

// scribble-index [seg=]: replace a segment's offset index with nonsense.
func (r *ddRunner) handleScribbleIndex(d *datadriven.TestData) string {
	p := r.segFile(d, ".index")
	if err := os.WriteFile(p, []byte{0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1}, 0o644); err != nil {
		r.t.Fatal(err)
	}
	return "scribbled " + filepath.Base(p)
}
