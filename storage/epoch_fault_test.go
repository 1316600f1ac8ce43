package storage

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// Seeded fault tests of leader-epoch-checkpoint, in the manner of
// checkpoint_fault_test.go: for every mutating filesystem step k of an
// operation that rewrites the file, one run fails step k once, one fails
// it and loses power, one freezes the disk after k steps and loses power.
// The file must then hold its old content or its new one (never a mix,
// never garbage), and the next open must find a cache that agrees with
// the batches in the log and every acknowledged append.

type epochFaultOp struct {
	name string
	// run performs the operation; acked reports what it acknowledged.
	run func(t *testing.T, l *Log) (acked bool)
}

const epochFaultBatches = 9

var epochFaultOps = []epochFaultOp{
	// A new epoch's first batch: the file gains an entry, written before
	// the data (flush.messages=1: the append is acknowledged after its
	// fdatasync).
	{"assign", func(t *testing.T, l *Log) bool {
		l.SetLeaderEpoch(5)
		return syncAppend(t, l, makeBatch(1, 300, epochFaultBatches, 1)).Err == nil
	}},
	// DeleteRecords moves the first entry's start (truncateFromStart).
	{"delete-records", func(t *testing.T, l *Log) bool {
		_, err := l.DeleteRecords(5)
		return err == nil
	}},
}

func epochFaultConfig() Config {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	cfg.FlushMessages = 1
	return cfg
}

// epochFaultScenario opens a log over f and appends epochFaultBatches
// batches in epochs 1 and 3; it returns the log, idle.
func epochFaultScenario(t *testing.T, dir string, f *FaultIO) *Log {
	t.Helper()
	io, _ := f.NewIO()
	l, err := Open(dir, epochFaultConfig(), Options{FS: f, IO: io})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < epochFaultBatches; i++ {
		switch i {
		case 0:
			l.SetLeaderEpoch(1)
		case 4:
			l.SetLeaderEpoch(3)
		}
		if r := syncAppend(t, l, makeBatch(1, 300, int64(i), 1)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	l.bgFlushes.Wait() // no background flush left: the steps are the operation's
	return l
}

func readEpochFile(t *testing.T, dir string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, LeaderEpochCheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLeaderEpochCheckpointFaultSteps(t *testing.T) {
	for _, op := range epochFaultOps {
		f := NewFaultIO(nil)
		f.SetScratchDir(t.TempDir())
		dir := t.TempDir()
		l := epochFaultScenario(t, dir, f)
		old := readEpochFile(t, dir)
		count := f.Inject(Fault{Op: OpMutating, Skip: 1 << 30})
		if !op.run(t, l) {
			t.Fatalf("%s failed without a fault", op.name)
		}
		l.bgFlushes.Wait()
		steps := count.Matched()
		l.Close()
		newContent := readEpochFile(t, dir)
		if bytes.Equal(old, newContent) {
			t.Fatalf("%s did not change the file", op.name)
		}
		if steps < 5 {
			t.Fatalf("%s: only %d steps", op.name, steps)
		}
		for k := 0; k < steps; k++ {
			for _, mode := range []string{"fail", "fail+powerloss", "freeze+powerloss"} {
				seed := int64(k*3 + len(mode))
				t.Run(fmt.Sprintf("%s/step=%d/%s/seed=%d", op.name, k, mode, seed), func(t *testing.T) {
					epochFaultRound(t, op, k, mode, seed, old, newContent)
				})
			}
		}
	}
}

func epochFaultRound(t *testing.T, op epochFaultOp, k int, mode string, seed int64, old, newContent []byte) {
	dir := t.TempDir()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	l := epochFaultScenario(t, dir, f)
	count := 1
	if mode == "freeze+powerloss" {
		count = 0
	}
	f.Inject(Fault{Op: OpMutating, Skip: k, Count: count, Err: syscall.EIO})
	acked := op.run(t, l)
	l.crashClose()
	f.Clear()
	if mode != "fail" {
		if err := f.PowerLoss(rand.New(rand.NewSource(seed))); err != nil {
			t.Fatal(err)
		}
	}
	if got := readEpochFile(t, dir); !bytes.Equal(got, old) && !bytes.Equal(got, newContent) {
		t.Fatalf("file after the fault:\n%s\nwant the old:\n%s\nor the new:\n%s", got, old, newContent)
	}
	io, _ := f.NewIO()
	l2, err := Open(dir, epochFaultConfig(), Options{FS: f, IO: io, Warnf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	batches := readAll(t, l2, l2.LogStartOffset())
	if op.name == "assign" && acked && len(batches) != epochFaultBatches+1 {
		t.Fatalf("%d batches after an acknowledged append, want %d", len(batches), epochFaultBatches+1)
	}
	// The cache must be what the batches say, from the log start on (the
	// data is the truth; the file only summarises it).
	var want epochCache
	for _, b := range batches {
		e := b.info.leaderEpoch
		if last, ok := want.latest(); e >= 0 && (!ok || e > last.Epoch) {
			want.assign(e, b.info.baseOffset)
		}
	}
	got := l2.LeaderEpochs()
	if slices.Equal(got, want.entries) {
		return
	}
	if op.name == "delete-records" {
		// Whether the new log start survived is the log-start checkpoint's
		// business (not written here): the cache may start at either.
		want.truncateFromStart(5)
	}
	if !slices.Equal(got, want.entries) {
		t.Fatalf("cache after reopen %v, want %v (from the batches)", got, want.entries)
	}
}
