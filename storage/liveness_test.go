package storage

import (
	"strings"
	"testing"
	"time"
)

// A writer held in fdatasync (flush.messages=1: every group is synced
// before its ack) is reported by Manager.Stalled once it has been there
// longer than the bound, and not before; once the sync returns and the
// writer parks, nothing is reported.
func TestManagerStalledWriter(t *testing.T) {
	fio := NewFaultIO(nil)
	fio.SetScratchDir(t.TempDir())
	m, err := OpenManager(t.TempDir(), ManagerOptions{NewIO: func() (IO, error) { return fio, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := testConfig()
	cfg.FlushMessages = 1
	l, err := m.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Stalled(0); got != nil {
		t.Fatalf("idle writer reported stalled: %v", got)
	}
	gate, entered := make(chan struct{}), make(chan string, 1)
	fio.SetSyncGate(gate, entered)
	done := make(chan AppendResult, 1)
	if err := l.Append(makeBatch(1, 100, 1, 1), AppendFunc(func(r AppendResult) { done <- r })); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(stallFailSafe):
		t.Fatal("the append's fdatasync never started")
	}
	if got := m.Stalled(time.Hour); got != nil {
		t.Fatalf("bound 1h: %v reported after moments", got)
	}
	deadline := time.Now().Add(stallFailSafe)
	for {
		got := m.Stalled(20 * time.Millisecond)
		if len(got) == 1 && strings.HasPrefix(got[0], "t-0 (busy ") {
			t.Logf("stalled: %v", got)
			break
		}
		if got != nil || time.Now().After(deadline) {
			t.Fatalf("writer held in fdatasync: Stalled = %v, want [t-0 (busy ...)]", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(gate)
	fio.SetSyncGate(nil, nil)
	select {
	case r := <-done:
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	case <-time.After(stallFailSafe):
		t.Fatal("append not acked after the sync returned")
	}
	deadline = time.Now().Add(stallFailSafe)
	for {
		got := m.Stalled(0)
		if got == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writer still reported after the sync returned: %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
