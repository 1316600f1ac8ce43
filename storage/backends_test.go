package storage

import (
	"testing"
)

// ioBackends lists the IO backends tests run against; io_uring is skipped
// (with the reason) where it is unavailable.
func ioBackends(t *testing.T) map[string]func() IO {
	t.Helper()
	out := map[string]func() IO{"portable": NewPortableIO}
	if io, err := NewUringIO(); err != nil {
		t.Logf("io_uring backend not tested: %v", err)
	} else {
		io.Close()
		out["uring"] = func() IO {
			io, err := NewUringIO()
			if err != nil {
				t.Fatal(err)
			}
			return io
		}
	}
	return out
}

func TestBackendsFlushEveryMessage(t *testing.T) {
	for name, mk := range ioBackends(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			cfg.FlushMessages = 1
			cfg.SegmentBytes = 16 << 10
			l, err := Open(dir, cfg, Options{IO: mk()})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan AppendResult, 200)
			for i := 0; i < 200; i++ {
				if err := l.Append(makeBatch(1+i%3, 200, int64(i), byte(i)), AppendFunc(func(r AppendResult) { done <- r })); err != nil {
					t.Fatal(err)
				}
			}
			var prev int64 = -1
			for i := 0; i < 200; i++ {
				r := <-done
				if r.Err != nil || r.BaseOffset <= prev {
					t.Fatalf("result %d: %+v", i, r)
				}
				prev = r.BaseOffset
				if rp := l.RecoveryPoint(); rp <= r.LastOffset {
					t.Fatalf("acked offset %d above recovery point %d", r.LastOffset, rp)
				}
			}
			if got := readAll(t, l, 0); len(got) != 200 {
				t.Fatalf("%d batches", len(got))
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
