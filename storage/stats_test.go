package storage

import (
	"sync"
	"testing"
	"time"
)

// recordingStats is a Stats that keeps what it was told.
type recordingStats struct {
	mu              sync.Mutex
	writes, batches int
	bytes           int
	fsyncs          int
}

func (s *recordingStats) AppendWrite(bytes, batches int) {
	s.mu.Lock()
	s.writes++
	s.bytes += bytes
	s.batches += batches
	s.mu.Unlock()
}

func (s *recordingStats) Fsync(time.Duration) {
	s.mu.Lock()
	s.fsyncs++
	s.mu.Unlock()
}

// TestStatsRecorded: every group write reports its bytes and batches, and
// with flush.messages=1 every append is fdatasync'd and timed, on both IO
// backends. (The metrics these feed were registered but never recorded.)
func TestStatsRecorded(t *testing.T) {
	for _, backend := range []struct {
		name  string
		newIO func() (IO, error)
	}{{"portable", func() (IO, error) { return NewPortableIO(), nil }}, {"uring", NewUringIO}} {
		t.Run(backend.name, func(t *testing.T) {
			io, err := backend.newIO()
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			cfg.FlushMessages = 1
			st := &recordingStats{}
			l, err := Open(t.TempDir(), cfg, Options{IO: io, Stats: st})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var sent int
			for i := range 5 {
				b := append(makeBatch(2, 100, 1000, byte(i)), makeBatch(1, 50, 1000, byte(i))...)
				sent += len(b)
				if r := syncAppend(t, l, b); r.Err != nil {
					t.Fatal(r.Err)
				}
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if st.writes < 1 || st.writes > 5 || st.bytes != sent || st.batches != 10 {
				t.Errorf("stats: %d writes of %d bytes, %d batches; want 1-5 writes of %d bytes, 10 batches", st.writes, st.bytes, st.batches, sent)
			}
			if st.fsyncs < st.writes {
				t.Errorf("stats: %d fdatasyncs for %d writes with flush.messages=1", st.fsyncs, st.writes)
			}
		})
	}
}
