package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// ReadCached copies a region the page cache holds (just written) and
// refuses a destination of the wrong size or a region without a file.
func TestRegionReadCached(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "00000000000000000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("cached "), 100)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	r := Region{File: f, Pos: 7, Len: 70}
	dst := make([]byte, 70)
	if !r.ReadCached(dst) {
		t.Fatal("ReadCached refused bytes just written (in the page cache)")
	}
	if !bytes.Equal(dst, data[7:77]) {
		t.Fatalf("ReadCached read %q", dst)
	}
	if r.ReadCached(make([]byte, 69)) {
		t.Fatal("ReadCached accepted a destination of the wrong size")
	}
	if (&Region{Len: 1}).ReadCached(make([]byte, 1)) {
		t.Fatal("ReadCached read a region without a file")
	}
}
