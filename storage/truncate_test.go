package storage

import (
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTruncateConcurrent runs TruncateTo over and over while appends,
// reads, DeleteRecords and the cleaner run on the same log (race detector
// on under -race), then checks the log is whole — every batch valid, in
// offset order, ending at the log end — before and after a reopen.
func TestTruncateConcurrent(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	cfg.Compact = true
	cfg.NoDeleteRetention = true
	cfg.TimeRollMinMs = 0
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.SetLeaderEpoch(1)
	var stop atomic.Bool
	var wg sync.WaitGroup
	run := func(f func(rng *rand.Rand)) {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for !stop.Load() {
				f(rng)
			}
		}(rand.Int63())
	}
	var acked atomic.Int64
	run(func(rng *rand.Rand) { // appends, a few in flight
		done := make(chan struct{})
		if err := l.Append(makeBatch(1+rng.Intn(3), 100+rng.Intn(300), 1, 1), AppendFunc(func(r AppendResult) {
			if r.Err == nil {
				acked.Add(1)
			}
			close(done)
		})); err == nil {
			<-done
		}
	})
	run(func(rng *rand.Rand) { // reads at random offsets
		lso, hw := l.LogStartOffset(), l.HighWatermark()
		if hw <= lso {
			return
		}
		r, err := l.Read(lso+rng.Int63n(hw-lso), 4096)
		if err != nil {
			if !errors.Is(err, ErrOffsetOutOfRange) {
				t.Errorf("read: %v", err)
			}
			return
		}
		buf := make([]byte, r.Len)
		// A truncation may cut the file under a Region: short, never wrong.
		if n, err := r.File.ReadAt(buf, r.Pos); err == nil || errors.Is(err, io.EOF) {
			for p := 0; p+batchHeaderSize <= n; {
				bi, err := parseBatchHeader(buf[p:])
				if err != nil || p+bi.length > n {
					break
				}
				if !checkBatchCRC(buf[p : p+bi.length]) {
					t.Errorf("read a batch with a bad CRC at offset %d", bi.baseOffset)
				}
				p += bi.length
			}
		}
		r.Release()
	})
	c := NewCleaner(CleanerConfig{IOBufferBytes: 4096, DedupeBufferBytes: 1 << 20}, nil)
	run(func(*rand.Rand) { c.CleanLog(l) })
	run(func(rng *rand.Rand) { // the log start moves now and then
		switch rng.Intn(200) {
		case 0:
			l.DeleteRecords(max(0, l.HighWatermark()-int64(rng.Intn(40))))
		case 1:
			l.EnforceRetention(newFakeClock().Now())
		}
	})
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		for l.HighWatermark() < l.LogStartOffset()+20 { // wait for some records (bounded by the appender's progress)
			waitHW(t, l)
		}
		lso, hw := l.LogStartOffset(), l.HighWatermark()
		target := lso + rng.Int63n(hw-lso+5)
		if i%5 == 0 {
			l.SetLeaderEpoch(int32(2 + i/5))
		}
		if err := l.TruncateTo(target); err != nil {
			t.Fatalf("truncate to %d: %v", target, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	checkWhole(t, l, "after the concurrent run")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	checkWhole(t, l2, "after reopening")
	if acked.Load() == 0 {
		t.Fatal("no append acknowledged")
	}
}

// waitHW waits until the high watermark moves, for at most 10 s.
func waitHW(t *testing.T, l *Log) {
	t.Helper()
	select {
	case <-l.HWChanged():
	case <-time.After(10 * time.Second):
		t.Fatal("high watermark stuck")
	}
}

// checkWhole reads the log from its start to the end: valid batches in
// offset order ending at the log end, and an epoch cache within the log.
func checkWhole(t *testing.T, l *Log, when string) {
	t.Helper()
	bs := readAll(t, l, l.LogStartOffset())
	prev := int64(-1)
	for _, b := range bs {
		if b.info.baseOffset <= prev {
			t.Fatalf("%s: batch at %d after offset %d", when, b.info.baseOffset, prev)
		}
		prev = b.info.lastOffset()
	}
	// (<, not ==: the cleaner may have removed the last records of a
	// segment that a truncation made the last one.)
	if prev+1 > l.HighWatermark() {
		t.Fatalf("%s: last batch ends at %d, past the high watermark %d", when, prev+1, l.HighWatermark())
	}
	for _, e := range l.LeaderEpochs() {
		if e.StartOffset >= l.HighWatermark() && e.StartOffset > l.LogStartOffset() {
			t.Fatalf("%s: epoch entry %v at or past the log end %d", when, e, l.HighWatermark())
		}
	}
}

// TestTruncateFullyAndStartAt: an offset below the log end is refused
// (nothing is dropped); one past it replaces the whole log by an empty one
// there: log start, log end and high watermark at it, the epoch cache
// empty, the old segment files gone, appends continuing from it, and a
// reopen finding the same.
func TestTruncateFullyAndStartAt(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		syncAppend(t, l, makeBatch(2, 10, 1, byte(i))) // offsets 0-9
	}
	if err := l.TruncateFullyAndStartAt(5); !errors.Is(err, ErrStartAtBelowEnd) || l.LogEndOffset() != 10 {
		t.Fatalf("start at 5 below the log end 10: %v, log end %d", err, l.LogEndOffset())
	}
	if err := l.TruncateFullyAndStartAt(25); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 25 || l.LogEndOffset() != 25 || l.HighWatermark() != 25 || len(l.LeaderEpochs()) != 0 {
		t.Fatalf("after start at 25: start %d end %d hw %d epochs %v", l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark(), l.LeaderEpochs())
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000000.log")); !os.IsNotExist(err) {
		t.Fatalf("old segment still there: %v", err)
	}
	if r := syncAppend(t, l, makeBatch(1, 10, 1, 9)); r.Err != nil || r.BaseOffset != 25 {
		t.Fatalf("append after start at 25: %+v", r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.LogStartOffset() != 25 || l.LogEndOffset() != 26 {
		t.Fatalf("reopened: start %d end %d, want 25 and 26", l.LogStartOffset(), l.LogEndOffset())
	}
}

// TestStartAtBatchBaseOnEmptyLog: a power loss took every unsynced segment
// file while the log-start-offset checkpoint, written before it, kept a
// log start that DeleteRecords had put inside a batch (3, in a batch of
// offsets 2-5). Recovery opens an empty log there, as Kafka's LogLoader
// does (log start, log end and high watermark 3). That batch, sent again,
// cannot land at 3: as Kafka's follower does on
// UnexpectedAppendOffsetException, TruncateFullyAndStartAt moves the empty
// log back to the batch's base offset, which drops nothing, and the batch
// lands at its own offsets. A log holding records still refuses an offset
// below its end.
func TestStartAtBatchBaseOnEmptyLog(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	l, err := Open(dir, cfg, Options{LogStartOffset: 3})
	if err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 3 || l.LogEndOffset() != 3 || l.HighWatermark() != 3 {
		t.Fatalf("recovered: start %d end %d hw %d, want 3 3 3", l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark())
	}
	if err := l.TruncateFullyAndStartAt(2); err != nil {
		t.Fatalf("start an empty log at 2: %v", err)
	}
	if l.LogStartOffset() != 2 || l.LogEndOffset() != 2 || l.HighWatermark() != 2 {
		t.Fatalf("after start at 2: start %d end %d hw %d, want 2 2 2", l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark())
	}
	if r := syncAppend(t, l, makeBatch(4, 10, 1, 7)); r.Err != nil || r.BaseOffset != 2 {
		t.Fatalf("append after start at 2: %+v", r)
	}
	if err := l.TruncateFullyAndStartAt(1); !errors.Is(err, ErrStartAtBelowEnd) || l.LogEndOffset() != 6 {
		t.Fatalf("start at 1 below the end 6 of a log with records: %v, log end %d", err, l.LogEndOffset())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, cfg, Options{LogStartOffset: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.LogStartOffset() != 2 || l.LogEndOffset() != 6 {
		t.Fatalf("reopened: start %d end %d, want 2 and 6", l.LogStartOffset(), l.LogEndOffset())
	}
}
