package storage

import "testing"

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
