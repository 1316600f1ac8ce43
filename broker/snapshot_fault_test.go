package broker

// Seeded fault tests of producer state snapshots (issue 14 §4). A
// partition holds idempotent batches of three producers and two older
// snapshots; the operation is writeSnapshot (temp file, write, fsync,
// rename, dir fsync, then the removal of the snapshot now beyond
// snapshotsKept). For every mutating step k, as in metadata_fault_test.go:
// step k fails (fail), every step from k on fails (fail-rest), step k
// fails and the machine then stops and loses power (fail+powerloss), or
// it stops after k steps (freeze+powerloss); the seed, in the run's name,
// fixes the torn tails. The next start must read the old newest
// snapshot or the new one (never a torn one), and the producer state it
// rebuilds (snapshot plus the batches after it) must equal the state the
// whole log gives.

import (
	"fmt"
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/storage"
)

// snapshotScenario: topic "idem" (one partition, flush.messages=1) with
// three rounds of batches from three producers, a snapshot after each of
// the first two. It returns the partition and the old newest snapshot's
// offset; the log then holds a third round the next snapshot covers.
func snapshotScenario(t *testing.T, f *storage.FaultIO) (*Registry, []string, *partState, int64) {
	t.Helper()
	dirs := []string{t.TempDir()}
	r, err := openFaultRegistry(t, f, dirs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateTopic("idem", 1, flushEvery, false); err != nil {
		t.Fatal(err)
	}
	p := r.Partition("idem", 0)
	seq := map[int64]int32{}
	round := func() {
		done := make(chan error, 3)
		for pid := int64(1); pid <= 3; pid++ {
			b := prodBatch(pid, 0, seq[pid], time.Now().UnixMilli(), prodValues("v", int(pid))...)
			seq[pid] += int32(pid)
			if err := p.Log.Append(b, storage.AppendFunc(func(res storage.AppendResult) { done <- res.Err })); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	var ps *partState
	snapshot := func() int64 {
		ps = &partState{p: p, logger: zaptest.NewLogger(t)}
		if err := ps.load(ps.logger); err != nil {
			t.Fatal(err)
		}
		if err := ps.writeSnapshot(); err != nil {
			t.Fatal(err)
		}
		return ps.completedEnd
	}
	round()
	snapshot()
	round()
	old := snapshot()
	round()
	// The state to snapshot next: loaded afresh from the old snapshot and
	// the third round.
	ps = &partState{p: p, logger: zaptest.NewLogger(t)}
	if err := ps.load(ps.logger); err != nil {
		t.Fatal(err)
	}
	return r, dirs, ps, old
}

// logTruth is the producer state the whole log gives (no snapshot).
func logTruth(t *testing.T, l *storage.Log) map[int64]*producerEntry {
	t.Helper()
	m := map[int64]*producerEntry{}
	if err := scanProducerBatches(l, l.LogStartOffset(), l.HighWatermark(), m, map[*openTxn]struct{}{}); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestProducerSnapshotFaultSteps(t *testing.T) {
	f := storage.NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	r, _, ps, _ := snapshotScenario(t, f)
	count := f.Inject(storage.Fault{Op: storage.OpMutating, Skip: 1 << 30})
	if err := ps.writeSnapshot(); err != nil {
		t.Fatal(err)
	}
	steps := count.Matched()
	f.Clear()
	r.Close()
	if steps < 6 {
		t.Fatalf("writeSnapshot took %d steps; want the write and a removal", steps)
	}
	for k := 0; k < steps; k++ {
		for _, mode := range []string{"fail", "fail-rest", "fail+powerloss", "freeze+powerloss"} {
			seed := int64(k*4 + len(mode))
			t.Run(fmt.Sprintf("step=%d/%s/seed=%d", k, mode, seed), func(t *testing.T) {
				snapshotFaultRound(t, k, mode, seed)
			})
		}
	}
}

func snapshotFaultRound(t *testing.T, k int, mode string, seed int64) {
	f := storage.NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	r, dirs, ps, oldEnd := snapshotScenario(t, f)
	newEnd := ps.completedEnd
	count := 0
	if mode == "fail" || mode == "fail+powerloss" {
		count = 1
	}
	f.Inject(storage.Fault{Op: storage.OpMutating, Skip: k, Count: count, Err: syscall.EIO})
	writeErr := ps.writeSnapshot()
	goesOn := mode == "fail" || mode == "fail-rest"
	if goesOn {
		f.Clear()
	}
	r, err := reopenAfterFault(t, r, f, dirs, !goesOn, seed)
	if err != nil {
		t.Fatalf("start after a fault at step %d (write error: %v): %v", k, writeErr, err)
	}
	defer r.Close()
	l := r.Partition("idem", 0).Log
	got := map[int64]*producerEntry{}
	off, ok := readNewestSnapshot(l.FS(), l.Dir(), l.HighWatermark(), got, map[*openTxn]struct{}{}, zaptest.NewLogger(t))
	if !ok || off != oldEnd && off != newEnd {
		t.Fatalf("newest snapshot read: offset %d (found %v), want the old %d or the new %d (write error: %v)", off, ok, oldEnd, newEnd, writeErr)
	}
	recovered, _, _, err := readProducers(l, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if truth := logTruth(t, l); !reflect.DeepEqual(recovered, truth) {
		t.Fatalf("recovered producer state differs from the log's:\n got %+v\nwant %+v", recovered, truth)
	}
	if _, err := os.Stat(snapshotPath(l.Dir(), off)); err != nil {
		t.Fatal(err)
	}
}
