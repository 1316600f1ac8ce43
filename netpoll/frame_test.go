package netpoll

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

type collect struct{ frames [][]byte }

func (c *collect) onFrame(f []byte) bool {
	c.frames = append(c.frames, append([]byte(nil), f...))
	return true
}

func frameBytes(bodies ...[]byte) []byte {
	var out []byte
	for _, b := range bodies {
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

// Any split of the stream into chunks yields the same frames.
func TestFramerSplits(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	var bodies [][]byte
	for i := 0; i < 200; i++ {
		b := make([]byte, rng.Intn(3000))
		rng.Read(b)
		bodies = append(bodies, b)
	}
	stream := frameBytes(bodies...)
	for trial := 0; trial < 50; trial++ {
		f := framer{maxFrameBytes: 1 << 20}
		var c collect
		for rest := stream; len(rest) > 0; {
			n := 1 + rng.Intn(5000)
			if trial%5 == 0 {
				n = 1 + rng.Intn(3) // byte-at-a-time-ish, splits every length prefix
			}
			if n > len(rest) {
				n = len(rest)
			}
			if _, err := f.feed(rest[:n], &c); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if len(c.frames) != len(bodies) || f.pending() {
			t.Fatalf("trial %d: %d frames, pending %v", trial, len(c.frames), f.pending())
		}
		for i := range bodies {
			if !bytes.Equal(c.frames[i], bodies[i]) {
				t.Fatalf("trial %d frame %d differs", trial, i)
			}
		}
	}
}

type firstFrameAddr struct{ p *byte }

func (s *firstFrameAddr) onFrame(f []byte) bool {
	if s.p == nil && len(f) > 0 {
		s.p = &f[0]
	}
	return true
}

func TestFramerZeroCopyWhenWhole(t *testing.T) {
	stream := frameBytes([]byte("hello"), []byte("world"))
	f := framer{maxFrameBytes: 100}
	var s firstFrameAddr
	if _, err := f.feed(stream, &s); err != nil {
		t.Fatal(err)
	}
	if s.p != &stream[4] {
		t.Fatal("whole frame was copied")
	}
}

func TestFramerRejectsBadLengths(t *testing.T) {
	for _, n := range []int32{-1, -1 << 31, 101} {
		f := framer{maxFrameBytes: 100}
		_, err := f.feed(binary.BigEndian.AppendUint32(nil, uint32(n)), &collect{})
		var fe errFrame
		if !errors.As(err, &fe) || fe.length != n {
			t.Fatalf("length %d: err %v", n, err)
		}
	}
}

// FuzzFramer: never panics; frames found are the same whatever the split.
func FuzzFramer(f *testing.F) {
	f.Add(frameBytes([]byte("a"), []byte("bc")), uint8(1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint8(3))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 2, 1}, uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		whole := framer{maxFrameBytes: 1 << 16}
		var a collect
		_, errA := whole.feed(stream, &a)
		split := framer{maxFrameBytes: 1 << 16}
		var b collect
		var errB error
		n := int(chunk%16) + 1
		for rest := stream; len(rest) > 0 && errB == nil; {
			k := min(n, len(rest))
			_, errB = split.feed(rest[:k], &b)
			rest = rest[k:]
		}
		if (errA == nil) != (errB == nil) || len(a.frames) != len(b.frames) {
			t.Fatalf("whole: %d frames err %v; split: %d frames err %v", len(a.frames), errA, len(b.frames), errB)
		}
		for i := range a.frames {
			if !bytes.Equal(a.frames[i], b.frames[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
}

// stopAfter stops the feed after n frames, as a muted connection does.
type stopAfter struct {
	n      int
	frames [][]byte
}

func (s *stopAfter) onFrame(f []byte) bool {
	s.frames = append(s.frames, append([]byte(nil), f...))
	return len(s.frames)%s.n != 0
}

// A feed stopped by the sink resumes, from what it did not consume, with
// no frame lost or repeated.
func TestFramerStopAndResume(t *testing.T) {
	var bodies [][]byte
	for i := 0; i < 100; i++ {
		bodies = append(bodies, bytes.Repeat([]byte{byte(i)}, i*7))
	}
	stream := frameBytes(bodies...)
	f := framer{maxFrameBytes: 1 << 20}
	s := &stopAfter{n: 3}
	for rest := stream; len(rest) > 0; {
		chunk := rest[:min(len(rest), 500)]
		n, err := f.feed(chunk, s)
		if err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if len(s.frames) != len(bodies) {
		t.Fatalf("%d frames, want %d", len(s.frames), len(bodies))
	}
	for i := range bodies {
		if !bytes.Equal(s.frames[i], bodies[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
}

// Spanning frames over partialReuseMaxBytes, one after another in chunks
// of a receive buffer's size: each comes out whole and equal to what was
// sent (a reused mapping must not leak the previous frame's bytes), the
// second and later ones assemble in a mapping from the cache, and the
// cache never holds more than mapCacheEntries mappings.
func TestFramerReusesMappings(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	var bodies [][]byte
	for i := 0; i < 12; i++ {
		n := 70<<10 + rng.Intn(400<<10) // 70 KiB to 470 KiB
		if i%4 == 3 {
			n = 2 << 20 // larger than the cache takes
		}
		b := make([]byte, n)
		rng.Read(b)
		bodies = append(bodies, b)
	}
	stream := frameBytes(bodies...)
	f := framer{maxFrameBytes: 4 << 20}
	var got collect
	reused := 0
	for rest := stream; len(rest) > 0; {
		k := min(64<<10, len(rest))
		if _, err := f.feed(rest[:k], &got); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
		if f.mapped && len(f.partial) > 0 && len(f.partial) <= 64<<10 {
			reused++ // a mapping right from the frame's first bytes: the cache's
		}
		mapCache.mu.Lock()
		if n := len(mapCache.free); n > mapCacheEntries {
			t.Fatalf("cache holds %d mappings", n)
		}
		mapCache.mu.Unlock()
	}
	if len(got.frames) != len(bodies) {
		t.Fatalf("%d frames, want %d", len(got.frames), len(bodies))
	}
	for i := range bodies {
		if !bytes.Equal(got.frames[i], bodies[i]) {
			t.Fatalf("frame %d (%d bytes) differs", i, len(bodies[i]))
		}
	}
	if reused == 0 {
		t.Fatal("no frame was assembled in a cached mapping")
	}
}

// Frames of 100 KiB to 900 KiB from several connections at once, echoed,
// on both backends, with a request-memory bound of 2 MiB: the cached
// mappings are counted like any partial buffer, a connection whose whole
// frame does not fit now grows as without the cache (and waits or is muted
// as before), and every answer comes back whole and in order.
func TestLargeFramesUnderBound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, echo, func(o *Options) { o.MaxQueuedBytes = 2 << 20 })
		const conns, frames = 4, 12
		errs := make(chan error, conns)
		for c := 0; c < conns; c++ {
			conn := dial(t, s)
			go func(c int) {
				rng := rand.New(rand.NewSource(int64(c)))
				var bodies [][]byte
				for i := 0; i < frames; i++ {
					b := make([]byte, 100<<10+rng.Intn(800<<10))
					rng.Read(b)
					bodies = append(bodies, b)
				}
				go func() { _, _ = conn.Write(frameBytes(bodies...)) }()
				for i, want := range bodies {
					got, err := readFrame(conn)
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, want) {
						errs <- fmt.Errorf("connection %d frame %d (%d bytes) differs", c, i, len(want))
						return
					}
				}
				errs <- nil
			}(c)
		}
		for c := 0; c < conns; c++ {
			select {
			case err := <-errs:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(failSafe):
				t.Fatal("echoes not back in time")
			}
		}
	})
}
