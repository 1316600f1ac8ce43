package storage

import (
	"errors"
	"testing"
	"time"
)

// The network loops call Append on their own thread, so Append must never
// wait for the disk: every lock it takes is held only for memory updates.
// These tests hold every fdatasync in a gate (a disk behind a long
// write-back queue) and check that appends still return. Each wait has a
// generous fail-safe timeout: what is checked is "returns while the gate is
// still shut", not a speed.

const stallFailSafe = 10 * time.Second

// TestAppendDoesNotWaitForRolledSegmentSyncs: with small segments under the
// default flush policy, appends roll segment after segment while every
// background flush of a rolled segment is stuck in fdatasync; every Append
// returns and every callback fires. Then the gate opens and Close syncs.
func TestAppendDoesNotWaitForRolledSegmentSyncs(t *testing.T) {
	fio := NewFaultIO(nil)
	fio.SetScratchDir(t.TempDir())
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	l, err := Open(t.TempDir(), cfg, Options{IO: fio})
	if err != nil {
		t.Fatal(err)
	}
	gate, entered := make(chan struct{}), make(chan string, 1)
	fio.SetSyncGate(gate, entered)
	const appends = 200
	done := make(chan AppendResult, appends)
	go func() {
		for i := range appends {
			if err := l.Append(makeBatch(2, 500, int64(i), 1), AppendFunc(func(r AppendResult) { done <- r })); err != nil {
				done <- AppendResult{Err: err}
			}
		}
	}()
	for i := range appends {
		select {
		case r := <-done:
			if r.Err != nil {
				t.Fatalf("append %d: %v", i, r.Err)
			}
		case <-time.After(stallFailSafe):
			t.Fatalf("only %d of %d appends completed while rolled-segment fdatasyncs were stuck: the append path waits for the disk", i, appends)
		}
	}
	// The appends return before the flusher reaches the first rolled
	// segment's fdatasync (that is the point), so wait for it with a bound.
	select {
	case <-entered:
	case <-time.After(stallFailSafe):
		t.Fatalf("no rolled segment reached fdatasync in the background within %v (%d segments): the test did not exercise the gate", stallFailSafe, l.NumSegments())
	}
	if n := l.NumSegments(); n < 10 {
		t.Fatalf("%d segments, want many rolls", n)
	}
	close(gate)
	fio.SetSyncGate(nil, nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAppendDuringCloseDoesNotWaitForSync: Close's final fdatasync of the
// active segment is stuck; an Append meanwhile returns ErrClosed at once
// instead of queueing behind the disk on the log lock.
func TestAppendDuringCloseDoesNotWaitForSync(t *testing.T) {
	fio := NewFaultIO(nil)
	fio.SetScratchDir(t.TempDir())
	l, err := Open(t.TempDir(), testConfig(), Options{IO: fio})
	if err != nil {
		t.Fatal(err)
	}
	syncAppend(t, l, makeBatch(2, 100, 1, 1)) // unsynced: Close must fdatasync
	gate, entered := make(chan struct{}), make(chan string, 1)
	fio.SetSyncGate(gate, entered)
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-entered:
	case <-time.After(stallFailSafe):
		t.Fatal("Close never reached its fdatasync")
	}
	appended := make(chan error, 1)
	go func() { appended <- l.Append(makeBatch(1, 100, 2, 1), AppendFunc(func(AppendResult) {})) }()
	select {
	case err := <-appended:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Append during Close: %v, want ErrClosed", err)
		}
	case <-time.After(stallFailSafe):
		t.Error("Append during Close waited for Close's fdatasync (the log lock is held across disk I/O)")
	}
	close(gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
