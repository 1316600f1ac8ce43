package netpoll

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

type countRef struct{ n *atomic.Int64 }

func (r countRef) Release() { r.n.Add(1) }

// Responses that splice file ranges arrive byte-exact and in order with
// plain responses around them, for ranges larger than a pipe, and every
// file reference is released.
func TestFileRegionResponses(t *testing.T) {
	data := make([]byte, 5<<20)
	rand.New(rand.NewSource(3)).Read(data)
	path := filepath.Join(t.TempDir(), "segment")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type region struct{ off, n int64 }
	// Request i is answered with header "h<i>", then regions, with "m" between and "t" after.
	plans := [][]region{
		{{0, 100}},
		nil, // plain response
		{{1000, 3 << 20}, {17, 5}},
		{{0, 0}, {4 << 20, 1 << 20}},
		nil,
		{{123, 2<<20 + 7}},
	}
	var released atomic.Int64
	var wantRefs int64
	for _, p := range plans {
		wantRefs += int64(len(p))
	}
	expect := func(i int) []byte {
		var out []byte
		out = append(out, 'h', byte('0'+i))
		for _, r := range plans[i] {
			out = append(out, data[r.off:r.off+r.n]...)
			out = append(out, 'm')
		}
		return append(out, 't')
	}
	h := HandlerFunc(func(req Request, frame []byte) {
		i := int(frame[0])
		buf := GetBuffer()
		buf.B = append(buf.B, 'h', byte('0'+i))
		for _, r := range plans[i] {
			buf.Files = append(buf.Files, FileRegion{At: len(buf.B), Fd: int(f.Fd()), Off: r.off, Len: r.n, Ref: countRef{&released}})
			buf.B = append(buf.B, 'm')
		}
		buf.B = append(buf.B, 't')
		req.Reply(buf)
	})
	forEachBackend(t, func(t *testing.T, backend string) {
		released.Store(0)
		s := startServer(t, backend, h, nil)
		c := dial(t, s)
		for round := 0; round < 3; round++ {
			for i := range plans {
				writeFrame(c, []byte{byte(i)})
			}
			r := bufio.NewReader(c)
			for i := range plans {
				got, err := readFrame(r)
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				if want := expect(i); !bytes.Equal(got, want) {
					t.Fatalf("round %d response %d: %d bytes, want %d (first diff at %d)", round, i, len(got), len(want), firstDiff(got, want))
				}
			}
		}
		// A region's reference is released when its send completes,
		// which the loop may handle after the client has read the last
		// byte: wait for it, bounded.
		waitUntil(t, "every file reference released", failSafe, func() bool { return released.Load() >= 3*wantRefs })
		if got := released.Load(); got != 3*wantRefs {
			t.Fatalf("released %d refs, want %d", got, 3*wantRefs)
		}
	})
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

var _ = binary.BigEndian
