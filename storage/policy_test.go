package storage

import (
	"os"
	"testing"
	"time"
)

// TestPolicySteps drives the group-commit decision step by step with
// injected time, the way the writer goroutine would.
func TestPolicySteps(t *testing.T) {
	ms := int64(time.Millisecond)
	p := policy{batchBytesMax: 1000, lingerNs: 0, flushMessages: 1 << 62, flushIntervalNs: -1}
	step := func(name string, s groupState, wantAct action, wantWake int64) {
		t.Helper()
		a, w := p.decide(s)
		if a != wantAct || w != wantWake {
			t.Fatalf("%s: got (%d, %d) want (%d, %d)", name, a, w, wantAct, wantWake)
		}
	}
	// Adaptive (linger 0): an idle writer writes at once.
	step("idle, one batch", groupState{nowNs: 0, pendingBytes: 10}, actWrite, 0)
	// While in flight, everything accumulates.
	step("in flight", groupState{nowNs: 1, inFlight: true, pendingBytes: 5000}, actIdle, 0)
	// Nothing queued, nothing to flush: park.
	step("empty", groupState{nowNs: 2}, actIdle, 0)

	// Linger: wait for bytes or age.
	p.lingerNs = 5 * ms
	step("linger young", groupState{nowNs: 1 * ms, pendingBytes: 10, oldestEnqueuedNs: 0}, actIdle, 5*ms)
	step("linger due", groupState{nowNs: 5 * ms, pendingBytes: 10, oldestEnqueuedNs: 0}, actWrite, 0)
	step("linger full", groupState{nowNs: 1 * ms, pendingBytes: 1000, oldestEnqueuedNs: 0}, actWrite, 0)
	step("linger closing", groupState{nowNs: 1 * ms, pendingBytes: 10, closing: true}, actWrite, 0)

	// flush.ms: idle writer with unflushed messages wakes to flush alone.
	p.lingerNs = 0
	p.flushIntervalNs = 100 * ms
	step("flush not due", groupState{nowNs: 50 * ms, unflushedMsgs: 3, lastFlushNs: 0}, actIdle, 100*ms)
	step("flush due", groupState{nowNs: 100 * ms, unflushedMsgs: 3, lastFlushNs: 0}, actSync, 0)
	step("flush nothing", groupState{nowNs: 500 * ms, lastFlushNs: 0}, actIdle, 0)

	// Sync-after-group: flush.messages counts records.
	p.flushMessages = 10
	if p.syncAfterGroup(0, 0, 5, 4) {
		t.Fatal("9 < 10 messages synced")
	}
	if !p.syncAfterGroup(0, 0, 5, 5) {
		t.Fatal("10 messages not synced")
	}
	if !p.syncAfterGroup(100*ms, 0, 0, 1) {
		t.Fatal("flush.ms elapsed not synced")
	}
	p.flushMessages = 1
	if !p.syncAfterGroup(0, 0, 0, 1) {
		t.Fatal("flush.messages=1 not synced")
	}
}

func TestPolicyGroupCut(t *testing.T) {
	p := policy{batchBytesMax: 1000}
	cut := func(sizes []int64, space int64) int {
		return p.groupCut(func(i int) (int64, bool) {
			if i >= len(sizes) {
				return 0, false
			}
			return sizes[i], true
		}, space)
	}
	cases := []struct {
		sizes []int64
		space int64
		want  int
	}{
		{[]int64{100, 100, 100}, -1, 3},
		{[]int64{600, 300, 200}, -1, 2},  // capped by batch bytes
		{[]int64{5000, 10}, -1, 1},       // an oversized batch goes alone
		{[]int64{100, 100, 100}, 250, 2}, // segment space
		{[]int64{300, 100}, 200, 1},      // first batch always (the log rolls first)
		{nil, -1, 0},
	}
	for i, c := range cases {
		if got := cut(c.sizes, c.space); got != c.want {
			t.Errorf("case %d: cut %d want %d", i, got, c.want)
		}
	}
	many := make([]int64, 3000)
	for i := range many {
		many[i] = 0
	}
	if got := cut(many, -1); got != IOVMax {
		t.Errorf("iov cap: %d", got)
	}
}

// blockingIO lets a test hold a write in flight to observe accumulation.
type blockingIO struct {
	IO
	gate  chan struct{}
	calls chan int // bytes per Writev
}

func (b *blockingIO) Writev(f *os.File, iov [][]byte, off int64, sync bool) (int, bool, error) {
	b.calls <- iovLen(iov)
	<-b.gate
	return b.IO.Writev(f, iov, off, sync)
}

// TestGroupCommitAccumulates: while one write is in flight, later appends
// leave together in one write.
func TestGroupCommitAccumulates(t *testing.T) {
	bio := &blockingIO{IO: NewPortableIO(), gate: make(chan struct{}), calls: make(chan int, 10)}
	l, err := Open(t.TempDir(), testConfig(), Options{IO: bio})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan AppendResult, 20)
	cb := AppendFunc(func(r AppendResult) { done <- r })
	b := makeBatch(1, 100, 1, 1)
	if err := l.Append(b, cb); err != nil {
		t.Fatal(err)
	}
	if n := <-bio.calls; n != len(b) {
		t.Fatalf("first write %d bytes", n)
	}
	for i := 0; i < 10; i++ {
		l.Append(b, cb)
	}
	if hw := l.HighWatermark(); hw != 0 {
		t.Fatalf("hw %d before the write completed", hw)
	}
	bio.gate <- struct{}{}
	if n := <-bio.calls; n != 10*len(b) {
		t.Fatalf("second write %d bytes, want one group of %d", n, 10*len(b))
	}
	bio.gate <- struct{}{}
	for i := 0; i < 11; i++ {
		if r := <-done; r.BaseOffset != int64(i) {
			t.Fatalf("ack %d offset %d", i, r.BaseOffset)
		}
	}
	close(bio.gate)
	l.Close()
}
