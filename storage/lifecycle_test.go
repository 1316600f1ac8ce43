package storage

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestLingerWaitsForAgeOrBytes(t *testing.T) {
	cfg := testConfig()
	cfg.AppendLingerMs = 30
	cfg.AppendBatchMaxBytes = 4096
	l, err := Open(t.TempDir(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	syncAppend(t, l, makeBatch(1, 10, 1, 1))
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("small batch written after %v, before linger", d)
	}
	// A batch at append.batch.max.bytes is written without lingering.
	start = time.Now()
	syncAppend(t, l, batchOfSize(4096))
	if d := time.Since(start); d > 25*time.Millisecond {
		t.Logf("full batch took %v (slow machine?)", d)
	}
}

func TestFlushMsFlushesIdleLog(t *testing.T) {
	cfg := testConfig()
	cfg.FlushMs = 20
	l, err := Open(t.TempDir(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := syncAppend(t, l, makeBatch(2, 10, 1, 1))
	deadline := time.Now().Add(5 * time.Second)
	for l.RecoveryPoint() <= r.LastOffset {
		if time.Now().After(deadline) {
			t.Fatalf("recovery point %d never passed %d", l.RecoveryPoint(), r.LastOffset)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRollOnSegmentMs(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.SegmentMs = 1000
	cfg.TimeRollMinMs = 0
	l, err := Open(t.TempDir(), cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	syncAppend(t, l, makeBatch(1, 10, 1, 1))
	clk.Advance(500 * time.Millisecond)
	syncAppend(t, l, makeBatch(1, 10, 1, 1))
	if n := l.NumSegments(); n != 1 {
		t.Fatalf("%d segments before segment.ms", n)
	}
	clk.Advance(600 * time.Millisecond)
	r := syncAppend(t, l, makeBatch(1, 10, 1, 1))
	if n := l.NumSegments(); n != 2 || r.BaseOffset != 2 {
		t.Fatalf("%d segments after segment.ms, base %d", n, r.BaseOffset)
	}
}

// segment.ms=1 (which Kafka 4 accepts) does not roll a segment per append:
// a segment is rolled by time only once TimeRollMinMs old.
func TestTimeRollFloor(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.SegmentMs = 1
	l, err := Open(t.TempDir(), cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 5; i++ {
		syncAppend(t, l, makeBatch(1, 10, 1, 1))
		clk.Advance(10 * time.Millisecond)
	}
	if n := l.NumSegments(); n != 1 {
		t.Fatalf("%d segments from 5 appends 10 ms apart with segment.ms=1", n)
	}
	clk.Advance(time.Duration(cfg.TimeRollMinMs) * time.Millisecond)
	syncAppend(t, l, makeBatch(1, 10, 1, 1))
	if n := l.NumSegments(); n != 2 {
		t.Fatalf("%d segments once the active segment is TimeRollMinMs old", n)
	}
}

func TestBacklogAndCloseDrains(t *testing.T) {
	bio := &blockingIO{IO: NewPortableIO(), gate: make(chan struct{}), calls: make(chan int, 100)}
	cfg := testConfig()
	cfg.AppendPendingMaxBytes = 2000
	dir := t.TempDir()
	l, err := Open(dir, cfg, Options{IO: bio})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan AppendResult, 100)
	cb := AppendFunc(func(r AppendResult) { done <- r })
	b := makeBatch(1, 400, 1, 1)
	l.Append(b, cb)
	<-bio.calls // first write in flight, blocked
	accepted := 1
	for {
		err := l.Append(b, cb)
		if errors.Is(err, ErrBacklog) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted++
	}
	if accepted < 3 {
		t.Fatalf("only %d accepted", accepted)
	}
	go func() { // release every write
		for range bio.calls {
			bio.gate <- struct{}{}
		}
	}()
	bio.gate <- struct{}{}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	close(bio.calls)
	for i := 0; i < accepted; i++ {
		if r := <-done; r.Err != nil || r.BaseOffset != int64(i) {
			t.Fatalf("append %d: %+v", i, r)
		}
	}
	if err := l.Append(b, cb); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// TestAppendWakesWriterWaitingOnFlushMs: with flush.ms set (and
// flush.messages not), the writer parks with a timer for the next periodic
// fdatasync after the first group. A new append must wake it at once, not
// wait for that timer (it used to wait up to flush.ms). Both an injected
// clock that never reaches the flush deadline and the wall clock. flush.ms
// is an hour, so "at once" is any time short of it: the bound below is a
// fail-safe, not a latency target that a loaded machine could miss.
func TestAppendWakesWriterWaitingOnFlushMs(t *testing.T) {
	for name, clk := range map[string]Clock{"fake": newFakeClock(), "wall": nil} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.FlushMs = 3600_000
			l, err := Open(t.TempDir(), cfg, Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			syncAppend(t, l, makeBatch(1, 10, 1, 1)) // leaves unflushed records: flush timer armed
			// Let the writer park with the flush.ms timer.
			deadline := time.Now().Add(stallFailSafe)
			for {
				l.mu.RLock()
				st := l.writerState
				l.mu.RUnlock()
				if st != writerBusy || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			for i := 0; i < 3; i++ {
				ch := make(chan AppendResult, 1)
				if err := l.Append(makeBatch(1, 10, 1, 1), AppendFunc(func(r AppendResult) { ch <- r })); err != nil {
					t.Fatal(err)
				}
				select {
				case r := <-ch:
					if r.Err != nil {
						t.Fatal(r.Err)
					}
				case <-time.After(stallFailSafe):
					t.Fatalf("append %d not completed after %v: writer still waiting on the flush.ms timer (an hour)", i, stallFailSafe)
				}
			}
		})
	}
}
