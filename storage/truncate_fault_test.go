package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"syscall"
	"testing"
)

// Seeded fault tests of TruncateTo, in the manner of
// checkpoint_fault_test.go: for every mutating filesystem step k of a
// truncation (segment unlinks and directory fsyncs, the cut segment's
// ftruncate and fdatasync, the epoch file's rewrite), one run fails step k
// once, one fails it and loses power, one freezes the disk after k steps
// and loses power. The next open, given the recovery point checkpointed
// before the truncation (the checkpoint is not rewritten), must find a
// prefix of the old log, byte for byte, that keeps every record below the
// truncation point, and exactly those once TruncateTo returned nil; and
// an epoch cache that agrees with the batches.

const (
	truncBatches = 12 // 1 record each, about 2 per segment: 6 segments
	truncTarget  = 5
)

func truncFaultConfig() Config {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	cfg.FlushMessages = 1
	return cfg
}

// truncFaultScenario opens a log over f and appends truncBatches batches
// in epochs 1, 3 and 4 (epoch 4 starts above the truncation point).
func truncFaultScenario(t *testing.T, dir string, f *FaultIO) (*Log, []readBatch) {
	t.Helper()
	io, _ := f.NewIO()
	l, err := Open(dir, truncFaultConfig(), Options{FS: f, IO: io})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < truncBatches; i++ {
		switch i {
		case 0:
			l.SetLeaderEpoch(1)
		case 3:
			l.SetLeaderEpoch(3)
		case 8:
			l.SetLeaderEpoch(4)
		}
		if r := syncAppend(t, l, makeBatch(1, 300, int64(i), byte(i))); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	l.bgFlushes.Wait() // no background flush left: the steps are the truncation's
	return l, readAll(t, l, 0)
}

func TestTruncateFaultSteps(t *testing.T) {
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	l, _ := truncFaultScenario(t, t.TempDir(), f)
	count := f.Inject(Fault{Op: OpMutating, Skip: 1 << 30})
	if err := l.TruncateTo(truncTarget); err != nil {
		t.Fatal(err)
	}
	steps := count.Matched()
	l.Close()
	if steps < 10 {
		t.Fatalf("only %d steps", steps)
	}
	for k := 0; k < steps; k++ {
		for _, mode := range []string{"fail", "fail+powerloss", "freeze+powerloss"} {
			seed := int64(k*3 + len(mode))
			t.Run(fmt.Sprintf("step=%d/%s/seed=%d", k, mode, seed), func(t *testing.T) {
				truncFaultRound(t, k, mode, seed)
			})
		}
	}
}

func truncFaultRound(t *testing.T, k int, mode string, seed int64) {
	dir := t.TempDir()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	l, before := truncFaultScenario(t, dir, f)
	staleRP := l.RecoveryPoint()
	count := 1
	if mode == "freeze+powerloss" {
		count = 0
	}
	f.Inject(Fault{Op: OpMutating, Skip: k, Count: count, Err: syscall.EIO})
	err := l.TruncateTo(truncTarget)
	if err != nil && !errors.Is(err, ErrLogFailed) {
		// Failing before anything changed leaves the log as it was; failing
		// on the epoch file (the last step), truncated; both usable, and a
		// retry finishes the job.
		if got := l.HighWatermark(); got != truncBatches && got != truncTarget {
			t.Fatalf("high watermark %d after a truncation that failed (%v)", got, err)
		}
		if mode == "fail" {
			if err = l.TruncateTo(truncTarget); err != nil {
				t.Fatalf("retry after a failed truncation: %v", err)
			}
		}
	}
	l.crashClose()
	f.Clear()
	if mode != "fail" {
		if err := f.PowerLoss(rand.New(rand.NewSource(seed))); err != nil {
			t.Fatal(err)
		}
	}
	io, _ := f.NewIO()
	l2, oerr := Open(dir, truncFaultConfig(), Options{FS: f, IO: io, RecoveryPoint: staleRP, Warnf: t.Logf})
	if oerr != nil {
		t.Fatal(oerr)
	}
	defer l2.Close()
	after := readAll(t, l2, 0)
	if len(after) < truncTarget || len(after) > len(before) {
		t.Fatalf("%d batches after the fault (truncation: %v), want %d to %d", len(after), err, truncTarget, len(before))
	}
	if err == nil && len(after) != truncTarget {
		t.Fatalf("%d batches after a truncation that returned nil, want %d", len(after), truncTarget)
	}
	for i, b := range after {
		if !bytes.Equal(b.raw, before[i].raw) {
			t.Fatalf("batch %d differs after the fault: not a prefix of the old log", i)
		}
	}
	var want epochCache
	for _, b := range after {
		if last, ok := want.latest(); b.info.leaderEpoch >= 0 && (!ok || b.info.leaderEpoch > last.Epoch) {
			want.assign(b.info.leaderEpoch, b.info.baseOffset)
		}
	}
	if got := l2.LeaderEpochs(); !slices.Equal(got, want.entries) {
		t.Fatalf("cache after reopen %v, want %v (from the batches)", got, want.entries)
	}
	// The log goes on from where it ends.
	if r := syncAppend(t, l2, makeBatch(1, 300, 99, 9)); r.Err != nil || r.BaseOffset != int64(len(after)) {
		t.Fatalf("append after reopen: %+v, want offset %d", r, len(after))
	}
}

// TestTruncateSyncsRollsBelowStaleRecoveryPoint: after a truncation, a
// checkpoint may still hold the old, higher recovery point, and an open
// trusts every segment below the one holding it without a scan; so until
// the log end passes it, a roll makes the segment it closes durable
// before the new one exists, and the recovery point says so as soon as
// the append that rolled is acknowledged.
func TestTruncateSyncsRollsBelowStaleRecoveryPoint(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1024 // about 2 batches per segment
	l, err := Open(t.TempDir(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < truncBatches; i++ {
		if r := syncAppend(t, l, makeBatch(1, 300, int64(i), 1)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	l.bgFlushes.Wait()
	stale := l.RecoveryPoint()
	if stale < 8 {
		t.Fatalf("recovery point %d before the truncation, want rolled segments flushed", stale)
	}
	if err := l.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < truncBatches; i++ {
		if r := syncAppend(t, l, makeBatch(1, 300, int64(i), 1)); r.Err != nil {
			t.Fatal(r.Err)
		}
		l.mu.RLock()
		act := l.active()
		base, rp := act.base, l.recoveryPoint
		l.mu.RUnlock()
		if base <= stale && rp < base {
			t.Fatalf("after batch %d: segment %d started below the stale recovery point %d, but the recovery point is %d", i, base, stale, rp)
		}
	}
}
