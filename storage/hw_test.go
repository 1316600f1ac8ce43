package storage

import (
	"runtime"
	"testing"
)

// TestReplicatedWaiters: in replicated mode a completed write wakes the
// log-end waiters only; SetHighWatermark wakes the high-watermark ones.
func TestReplicatedWaiters(t *testing.T) {
	l, err := Open(t.TempDir(), testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// Local mode: an end waiter sees the new log end.
	end := make(chanWaiter, 1)
	if !l.AddEndWaiter(end, 0) {
		t.Fatal("end waiter not added at log end 0")
	}
	syncAppend(t, l, makeBatch(3, 1, 1, 1))
	if got := <-end; got != 3 {
		t.Fatalf("end waiter woke with %d", got)
	}

	if got := l.SetHighWatermark(0); got != 3 || !l.Replicated() {
		t.Fatalf("SetHighWatermark(0) = %d (replicated %v), want 3: never backwards", got, l.Replicated())
	}
	hw := make(chanWaiter, 1)
	if !l.AddWaiter(hw, 3) {
		t.Fatal("hw waiter not added at hw 3")
	}
	ch := l.HWChanged()
	if !l.AddEndWaiter(end, 3) {
		t.Fatal("end waiter not added at log end 3")
	}
	syncAppend(t, l, makeBatch(2, 1, 1, 1))
	if got := <-end; got != 5 {
		t.Fatalf("end waiter woke with %d", got)
	}
	syncAppend(t, l, makeBatch(1, 1, 1, 1)) // the previous group's waiters all ran
	select {
	case got := <-hw:
		t.Fatalf("hw waiter woke with %d on a write in replicated mode", got)
	case <-ch:
		t.Fatal("HWChanged fired on a write in replicated mode")
	default:
	}
	if l.HighWatermark() != 3 || l.LogEndOffset() != 6 {
		t.Fatalf("hw %d log end %d, want 3 and 6", l.HighWatermark(), l.LogEndOffset())
	}

	if got := l.SetHighWatermark(5); got != 5 {
		t.Fatalf("SetHighWatermark(5) = %d", got)
	}
	if got := <-hw; got != 5 {
		t.Fatalf("hw waiter woke with %d", got)
	}
	<-ch
	if l.AddWaiter(hw, 4) {
		t.Fatal("added although hw > offset")
	}

	// Back to local mode: the high watermark jumps to the log end.
	if !l.AddWaiter(hw, 5) {
		t.Fatal("hw waiter not added at hw 5")
	}
	l.FollowWrites()
	if got := <-hw; got != 6 || l.Replicated() {
		t.Fatalf("FollowWrites woke the waiter with %d (replicated %v)", got, l.Replicated())
	}
}

// TestReplicatedConcurrent: appends, high-watermark moves and reads at
// once (run under -race): a consumer read never returns a batch at or
// past the high watermark it could have seen, and every batch is there
// at the end.
func TestReplicatedConcurrent(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4096 // several segments: the cut falls in each
	l, err := Open(t.TempDir(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.SetHighWatermark(0)
	const n = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			syncAppend(t, l, makeBatch(2, 50, int64(i), byte(i)))
		}
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the "followers": the high watermark trails the log end
		for {
			select {
			case <-stop:
				return
			default:
			}
			l.SetHighWatermark(l.LogEndOffset() - 2)
			runtime.Gosched()
		}
	}()
	var off int64
	for off < 2*n-2 {
		r, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		if r.Len == 0 {
			r.Release()
			runtime.Gosched()
			continue
		}
		buf := make([]byte, r.Len)
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
			t.Fatal(err)
		}
		r.Release()
		hw := l.HighWatermark() // only grows: an upper bound of the one Read saw
		for p := 0; p < len(buf); {
			bi, err := parseBatchHeader(buf[p:])
			if err != nil {
				t.Fatalf("bad batch: %v", err)
			}
			if bi.lastOffset() >= hw {
				t.Fatalf("read batch [%d, %d] at or past the high watermark %d", bi.baseOffset, bi.lastOffset(), hw)
			}
			p += bi.length
			off = bi.lastOffset() + 1
		}
	}
	<-done
	l.SetHighWatermark(l.LogEndOffset())
	if got := readAll(t, l, 0); len(got) != n {
		t.Fatalf("%d batches at the end, want %d", len(got), n)
	}
}
