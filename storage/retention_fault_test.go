package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"syscall"
	"testing"
	"time"
)

// TestDeleteUnsyncedSegmentPowerLoss: retention or DeleteRecords deletes
// a rolled segment whose background fdatasync has not happened (here: it
// failed once), while the segment after it is flushed. The unlink is not
// durable until a directory fsync, so a power loss may bring the deleted
// segment back, with whatever of its unsynced bytes the disk kept. The
// recovered log must still hold everything below the recovery point the
// log had (the flushed segment included), and read back, from its log
// start, as the exact batches that were appended there. Each power loss
// is seeded (seed 0: every unsynced change undone, no torn bytes); both
// recovery points an open may get are tried: none (a scan of everything)
// and the one the log had before the power loss (a checkpoint).
func TestDeleteUnsyncedSegmentPowerLoss(t *testing.T) {
	for _, how := range []string{"delete-records", "retention"} {
		for _, checkpointed := range []bool{false, true} {
			for seed := int64(0); seed < 8; seed++ {
				t.Run(fmt.Sprintf("%s/checkpointed=%v/seed=%d", how, checkpointed, seed), func(t *testing.T) {
					deleteUnsyncedRound(t, how, checkpointed, seed)
				})
			}
		}
	}
}

func deleteUnsyncedRound(t *testing.T, how string, checkpointed bool, seed int64) {
	dir := t.TempDir()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	cfg := testConfig()
	cfg.SegmentBytes = 1024 // two or three batches a segment
	cfg.RetentionMs = time.Hour.Milliseconds()
	open := func(rp int64) *Log {
		t.Helper()
		io, _ := f.NewIO()
		l, err := Open(dir, cfg, Options{FS: f, IO: io, RecoveryPoint: rp, Warnf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open(0)
	// The first rolled segment's background fdatasync fails (once): it
	// stays unsynced, below the recovery point, for recovery to scan.
	f.Inject(Fault{Op: OpSync, Path: segmentName(dir, 0, ".log"), Count: 1, Err: syscall.EIO})
	// Segment 0 holds old batches (past retention.ms), segment 1 new ones.
	now := time.Now()
	ts := int64(1000)
	for i := 0; l.NumSegments() < 3; i++ {
		if l.NumSegments() == 2 {
			ts = now.UnixMilli()
		}
		if i > 20 {
			t.Fatal("scenario: no second roll")
		}
		if r := syncAppend(t, l, makeBatch(1, 300, ts, byte(i))); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	l.waitRolledFlushed()
	if rp := l.RecoveryPoint(); rp != 0 {
		t.Fatalf("scenario: recovery point %d, want 0 (segment 0's fdatasync failed)", rp)
	}
	appended := map[int64][]byte{}
	for _, b := range readAll(t, l, 0) {
		appended[b.info.baseOffset] = b.raw
	}
	l.mu.RLock()
	seg1 := l.segments[1].base
	l.mu.RUnlock()
	switch how {
	case "delete-records":
		if _, err := l.DeleteRecords(seg1); err != nil {
			t.Fatal(err)
		}
	case "retention":
		if n, err := l.EnforceRetention(now); n != 1 || err != nil {
			t.Fatalf("retention deleted %d segments (%v), want 1", n, err)
		}
	}
	if got := l.LogStartOffset(); got != seg1 {
		t.Fatalf("log start %d after deleting segment 0, want %d", got, seg1)
	}
	// One more append: it recomputes the recovery point.
	r := syncAppend(t, l, makeBatch(1, 300, now.UnixMilli(), 0xee))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	appended[r.BaseOffset] = readAll(t, l, r.BaseOffset)[0].raw
	rpBefore := l.RecoveryPoint()
	if rpBefore <= seg1 {
		t.Fatalf("scenario: recovery point %d does not cover segment 1 (base %d)", rpBefore, seg1)
	}

	l.crashClose()
	var rng *rand.Rand
	if seed != 0 {
		rng = rand.New(rand.NewSource(seed))
	}
	if err := f.PowerLoss(rng); err != nil {
		t.Fatal(err)
	}
	rp := int64(0)
	if checkpointed {
		rp = rpBefore
	}
	l2 := open(rp)
	defer l2.Close()
	hw, lso := l2.HighWatermark(), l2.LogStartOffset()
	if hw < rpBefore {
		t.Fatalf("recovered high watermark %d below the recovery point %d: flushed batches lost", hw, rpBefore)
	}
	next := lso
	for _, b := range readAll(t, l2, lso) {
		if b.info.baseOffset != next {
			t.Fatalf("log start %d, high watermark %d: batch at %d, want one at %d", lso, hw, b.info.baseOffset, next)
		}
		if !bytes.Equal(b.raw, appended[next]) {
			t.Fatalf("batch at %d differs from the one appended there", next)
		}
		next = b.info.lastOffset() + 1
	}
	if next != hw {
		t.Fatalf("batches read from log start %d end at %d, high watermark %d", lso, next, hw)
	}
}

// TestDeleteKeepsSegmentItCannotSync: when the fdatasync owed to a segment
// before its deletion fails, DeleteRecords still moves the log start but
// keeps the segment (and says so); the next retention check, with the disk
// healthy again, syncs and deletes it.
func TestDeleteKeepsSegmentItCannotSync(t *testing.T) {
	dir := t.TempDir()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	io, _ := f.NewIO()
	l, err := Open(dir, cfg, Options{FS: f, IO: io})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The background flush and DeleteRecords' own sync fail.
	f.Inject(Fault{Op: OpSync, Path: segmentName(dir, 0, ".log"), Count: 2, Err: syscall.EIO})
	for i := 0; l.NumSegments() < 2; i++ {
		if i > 10 {
			t.Fatal("scenario: no roll")
		}
		if r := syncAppend(t, l, makeBatch(1, 300, int64(i), byte(i))); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	l.waitRolledFlushed()
	l.mu.RLock()
	seg1 := l.segments[1].base
	l.mu.RUnlock()
	lso, err := l.DeleteRecords(seg1)
	if !errors.Is(err, syscall.EIO) || lso != seg1 {
		t.Fatalf("DeleteRecords(%d) = %d, %v; want %d and EIO", seg1, lso, err, seg1)
	}
	if n := l.NumSegments(); n != 2 || l.LogStartOffset() != seg1 || l.RecoveryPoint() != 0 {
		t.Fatalf("after a failed sync: %d segments, log start %d, recovery point %d; want 2, %d, 0", n, l.LogStartOffset(), l.RecoveryPoint(), seg1)
	}
	if _, err := l.Read(0, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the log start: %v, want ErrOffsetOutOfRange", err)
	}
	if n, err := l.EnforceRetention(time.Now()); n != 1 || err != nil {
		t.Fatalf("retention deleted %d segments (%v), want 1", n, err)
	}
	if n, rp := l.NumSegments(), l.RecoveryPoint(); n != 1 || rp < seg1 {
		t.Fatalf("after retention: %d segments, recovery point %d; want 1, >= %d", n, rp, seg1)
	}
}
