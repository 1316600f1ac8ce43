package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeeds are valid and damaged segments; testdata/fuzz/ holds the same
// inputs as a corpus (regenerate with LOG_WRITE_FUZZ_CORPUS=1).
func fuzzSeeds() [][]byte {
	var seg []byte
	for i := 0; i < 3; i++ {
		b := makeBatch(1+i, 20, int64(i), byte(i))
		stampBatches(b, int64(len(seg)), 0, -1)
		seg = append(seg, b...)
	}
	valid := append([]byte(nil), seg...)
	torn := append([]byte(nil), seg[:len(seg)-7]...)
	flipped := append([]byte(nil), seg...)
	flipped[len(flipped)/2] ^= 1
	zeros := append(append([]byte(nil), seg...), make([]byte, 64)...)
	lat := makeBatch(2, 5, 9, 9)
	stampBatches(lat, 0, 3, 12345)
	return [][]byte{valid, torn, flipped, zeros, lat, {}, make([]byte, 61)}
}

// FuzzScanSegment: the recovery scanner never panics, its valid prefix is
// within the input, and re-scanning exactly that prefix finds the same
// batches with nothing invalid.
func FuzzScanSegment(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var positions []int64
		res, _ := scanSegment(bytes.NewReader(data), int64(len(data)), 0, nil, func(pos int64, bi batchInfo) {
			positions = append(positions, pos)
		})
		if res.validBytes < 0 || res.validBytes > int64(len(data)) {
			t.Fatalf("valid prefix %d of %d", res.validBytes, len(data))
		}
		if res.stopReason == nil && res.validBytes != int64(len(data)) {
			t.Fatalf("no stop reason but only %d of %d valid", res.validBytes, len(data))
		}
		prefix := data[:res.validBytes]
		var again []int64
		res2, _ := scanSegment(bytes.NewReader(prefix), int64(len(prefix)), 0, nil, func(pos int64, bi batchInfo) {
			again = append(again, pos)
		})
		if res2.stopReason != nil || res2.validBytes != res.validBytes || res2.nextOffset != res.nextOffset || fmt.Sprint(again) != fmt.Sprint(positions) {
			t.Fatalf("rescan differs: %+v vs %+v", res2, res)
		}
		if len(prefix) > 0 {
			if _, _, _, err := validateBatches(prefix); err != nil {
				t.Fatalf("scanner accepted what Append rejects: %v", err)
			}
		}
	})
}

// FuzzValidateBatches: Append's validator never panics; what it accepts
// stays valid after offsets/epoch (and LogAppendTime) are stamped, and the
// scanner reads it back whole.
func FuzzValidateBatches(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, int64(0), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, base int64, appendTime bool) {
		n, offsets, _, err := validateBatches(data)
		if err != nil {
			return
		}
		if base < 0 || base > 1<<40 {
			base = 0
		}
		at := int64(-1)
		if appendTime {
			at = 1_700_000_000_000
		}
		next, _, _ := stampBatches(data, base, 5, at)
		if next != base+offsets {
			t.Fatalf("next %d want %d", next, base+offsets)
		}
		if n2, _, _, err := validateBatches(data); err != nil || n2 != n {
			t.Fatalf("stamped batches invalid: %v", err)
		}
		res, _ := scanSegment(bytes.NewReader(data), int64(len(data)), base, nil, nil)
		if res.validBytes != int64(len(data)) && offsets-1 <= maxRelativeOffset {
			t.Fatalf("scanner stopped at %d of %d: %v", res.validBytes, len(data), res.stopReason)
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("LOG_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set LOG_WRITE_FUZZ_CORPUS=1 to regenerate testdata/fuzz")
	}
	for i, s := range fuzzSeeds() {
		for _, target := range []string{"FuzzScanSegment", "FuzzValidateBatches"} {
			dir := filepath.Join("testdata", "fuzz", target)
			os.MkdirAll(dir, 0o755)
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if target == "FuzzValidateBatches" {
				body += "int64(0)\nbool(true)\n"
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
