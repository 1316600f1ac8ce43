package storage

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"syscall"
	"testing"
)

// Seeded fault tests of the checkpoint files (issue 14 §4). For every
// mutating filesystem step k of an operation (Manager.Checkpoint: two
// checkpoint files, each temp file, write, fsync, rename, dir fsync;
// Manager.Close: the log's final syncs, both checkpoints and the
// clean-shutdown marker), one run fails step k once, one fails it and then
// loses power, and one freezes the disk after k steps (every later
// mutating call fails, as when the machine stops) and loses power. The
// next open must find checkpoint files that parse and hold the old or the
// new offsets (never garbage, never an offset past the log), and every
// acknowledged record. The seed of a run is in its name (it fixes the torn
// tails the power loss leaves).

type checkpointOp struct {
	name string
	run  func(m *Manager) error
}

var checkpointOps = []checkpointOp{
	{"checkpoint", (*Manager).Checkpoint},
	{"close", (*Manager).Close},
}

const checkpointBatches = 12

// checkpointScenario opens a manager over f with one partition, appends
// half its batches, checkpoints (the old state), appends the rest and
// returns the manager with its log idle. Each append is acknowledged
// (flush.messages=1).
func checkpointScenario(t *testing.T, dir string, f *FaultIO) (*Manager, *Log, int64) {
	t.Helper()
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	cfg.FlushMessages = 1
	m, err := OpenManager(dir, ManagerOptions{Defaults: cfg, FS: f, NewIO: f.NewIO})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < checkpointBatches; i++ {
		if r := syncAppend(t, l, makeBatch(1, 300, int64(i), 1)); r.Err != nil {
			t.Fatal(r.Err)
		}
		if i == checkpointBatches/2-1 {
			l.bgFlushes.Wait()
			if err := m.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.bgFlushes.Wait() // no background flush left: the steps are the operation's
	old, err := ReadCheckpoint(nil, filepath.Join(dir, RecoveryPointCheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	return m, l, old[TopicPartition{"t", 0}]
}

func TestCheckpointFaultSteps(t *testing.T) {
	for _, op := range checkpointOps {
		// Count the operation's steps on a healthy run.
		f := NewFaultIO(nil)
		f.SetScratchDir(t.TempDir())
		m, _, _ := checkpointScenario(t, t.TempDir(), f)
		count := f.Inject(Fault{Op: OpMutating, Skip: 1 << 30})
		if err := op.run(m); err != nil {
			t.Fatal(err)
		}
		steps := count.Matched()
		m.Close()
		if steps < 5 {
			t.Fatalf("%s: only %d steps", op.name, steps)
		}
		for k := 0; k < steps; k++ {
			for _, mode := range []string{"fail", "fail+powerloss", "freeze+powerloss"} {
				seed := int64(k*3 + len(mode))
				t.Run(fmt.Sprintf("%s/step=%d/%s/seed=%d", op.name, k, mode, seed), func(t *testing.T) {
					checkpointFaultRound(t, op, k, mode, seed)
				})
			}
		}
	}
}

func checkpointFaultRound(t *testing.T, op checkpointOp, k int, mode string, seed int64) {
	dir := t.TempDir()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	m, l, oldRP := checkpointScenario(t, dir, f)
	newRP := l.RecoveryPoint()
	count := 1
	if mode == "freeze+powerloss" {
		count = 0
	}
	f.Inject(Fault{Op: OpMutating, Skip: k, Count: count, Err: syscall.EIO})
	if err := op.run(m); err == nil {
		t.Fatalf("step %d failed but %s succeeded", k, op.name)
	}
	if op.name != "close" || mode == "freeze+powerloss" {
		l.crashClose() // the process dies here (a failed Close has closed it)
	}
	f.Clear()
	if mode != "fail" {
		if err := f.PowerLoss(rand.New(rand.NewSource(seed))); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{RecoveryPointCheckpointFile, LogStartOffsetCheckpointFile} {
		cp, err := ReadCheckpoint(nil, filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s after the fault: %v", name, err)
		}
		if name == RecoveryPointCheckpointFile {
			if got := cp[TopicPartition{"t", 0}]; got != oldRP && got != newRP {
				t.Fatalf("recovery point %d, want the old %d or the new %d", got, oldRP, newRP)
			}
		}
	}
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	m2, err := OpenManager(dir, ManagerOptions{Defaults: cfg, FS: f, NewIO: f.NewIO})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	l2, err := m2.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantSequence(t, l2, checkpointBatches, "after the fault (all acknowledged)")
}
