package quorum

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/ringbroker/ringbroker/storage"
)

// Fault and power-loss tests through storage.FaultIO: after a power loss,
// everything a write method acknowledged (returned nil for) is there; a
// write that failed part way leaves the state before it or after it (an
// Append: the log before it cut somewhere at or past its first index,
// or followed by a prefix of its entries); and the next open succeeds.

// TestDiskStoragePowerLoss: random operations, each acknowledged, then a
// power loss at a random point (unsynced directory entries and file tails
// lost or torn, as FaultIO.PowerLoss does) and a reopen that must answer
// exactly as the memory model does.
func TestDiskStoragePowerLoss(t *testing.T) {
	seed := seedFor(t)
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	for round := 0; round < rounds; round++ {
		rng := rand.New(rand.NewSource(seed + int64(round)))
		dir := filepath.Join(t.TempDir(), MetadataLogDir)
		fio := storage.NewFaultIO(nil)
		fio.SetScratchDir(t.TempDir())
		segBytes := int64(100 + rng.Intn(600))
		ds := openTest(t, dir, fio, segBytes)
		m := &modelRun{rng: rng, mem: raft.NewMemoryStorage()}
		var history []string
		for i := 0; i < 200; i++ {
			name, op := m.next()
			if op != nil {
				history = append(history, name)
				if err := op(m.mem); err != nil {
					continue // the model refuses it (an out-of-date snapshot): skip
				}
				if err := op(ds); err != nil {
					t.Fatalf("round %d op %d %s: %v", round, i, name, err)
				}
			}
			if op == nil || rng.Intn(25) == 0 {
				history = append(history, "power-loss")
				ds.Close() // releases the lock; writes nothing
				if err := fio.PowerLoss(rng); err != nil {
					t.Fatal(err)
				}
				var err error
				if ds, err = OpenDiskStorageOptions(dir, DiskStorageOptions{FS: fio, SegmentBytes: segBytes}); err != nil {
					t.Fatalf("round %d op %d: open after power loss: %v\nhistory: %s", round, i, err, strings.Join(history, ", "))
				}
				compare(t, rng, ds, m.mem, fmt.Sprintf("round %d op %d after power loss (history %s)", round, i, strings.Join(history, ", ")))
			}
		}
		ds.Close()
	}
}

// faultScenario is the state every fault run starts from: entries over
// several segments, a hard state, two checkpoints, a compaction that
// dropped segments. It is built on both stores.
func faultScenario(t *testing.T, ds LogStore, mem *raft.MemoryStorage) {
	t.Helper()
	steps := []func(s LogStore) error{
		func(s LogStore) error { return s.Append(entries(1, 40, 1)) },
		func(s LogStore) error { return s.Append(entries(41, 20, 2)) },
		func(s LogStore) error {
			return s.SetHardState(&raftpb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(1), Commit: proto.Uint64(30)})
		},
		func(s LogStore) error {
			_, err := s.CreateSnapshot(10, &raftpb.ConfState{Voters: []uint64{1, 2, 3}}, []byte("at 10"))
			return err
		},
		func(s LogStore) error { _, err := s.CreateSnapshot(20, nil, []byte("at 20")); return err },
		func(s LogStore) error { return s.Compact(15) },
	}
	for i, step := range steps {
		if err := step(mem); err != nil {
			t.Fatalf("model step %d: %v", i, err)
		}
		if err := step(ds); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

type faultOp struct {
	name  string
	start uint64 // Append: its first index (a partial append is allowed from there)
	run   func(s LogStore) error
}

var faultOps = []faultOp{
	{"append-tail", 61, func(s LogStore) error { return s.Append(entries(61, 12, 3)) }},
	{"append-overlap", 35, func(s LogStore) error { return s.Append(entries(35, 30, 3)) }},
	{"set-hard-state", 0, func(s LogStore) error {
		return s.SetHardState(&raftpb.HardState{Term: proto.Uint64(3), Vote: proto.Uint64(2), Commit: proto.Uint64(40)})
	}},
	{"create-snapshot", 0, func(s LogStore) error {
		_, err := s.CreateSnapshot(30, &raftpb.ConfState{Voters: []uint64{1, 2}}, []byte("at 30"))
		return err
	}},
	{"compact", 0, func(s LogStore) error { return s.Compact(25) }},
	{"apply-snapshot", 0, func(s LogStore) error {
		return s.ApplySnapshot(&raftpb.Snapshot{Data: []byte("at 80"), Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(80), Term: proto.Uint64(9), ConfState: &raftpb.ConfState{Voters: []uint64{4, 5, 6}},
		}})
	}},
	// Inside the log with another term (the log does not hold it, as when
	// raft applies one): a crash before the segments are gone leaves them
	// for open to remove.
	{"apply-snapshot-inside", 0, func(s LogStore) error {
		return s.ApplySnapshot(&raftpb.Snapshot{Data: []byte("at 50"), Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(50), Term: proto.Uint64(9), ConfState: &raftpb.ConfState{Voters: []uint64{4}},
		}})
	}},
}

// TestDiskStorageFaults: for every mutating filesystem step k of each
// operation, one run fails step k once, one fails every step from k on (a
// disk that stopped), and each then loses power (seeded) and reopens.
func TestDiskStorageFaults(t *testing.T) {
	seed := seedFor(t)
	for _, op := range faultOps {
		t.Run(op.name, func(t *testing.T) {
			// Count the steps of op.
			dir := t.TempDir()
			fio := storage.NewFaultIO(nil)
			fio.SetScratchDir(t.TempDir())
			ds := openTest(t, dir, fio, 300)
			faultScenario(t, ds, raft.NewMemoryStorage())
			counter := fio.Inject(storage.Fault{Op: storage.OpMutating, PathUnder: dir, Skip: 1 << 30})
			if err := op.run(ds); err != nil {
				t.Fatal(err)
			}
			steps := counter.Matched()
			ds.Close()
			if steps == 0 {
				t.Fatal("no mutating steps counted")
			}
			stride := 1
			if testing.Short() {
				stride = 3
			}
			for k := 0; k < steps; k += stride {
				for _, mode := range []string{"once", "frozen"} {
					runFault(t, op, k, mode, seed+int64(k))
				}
			}
		})
	}
}

func runFault(t *testing.T, op faultOp, k int, mode string, seed int64) {
	t.Helper()
	what := fmt.Sprintf("%s step %d %s seed %d", op.name, k, mode, seed)
	dir := t.TempDir()
	fio := storage.NewFaultIO(nil)
	fio.SetScratchDir(t.TempDir())
	ds := openTest(t, dir, fio, 300)
	before := raft.NewMemoryStorage()
	faultScenario(t, ds, before)
	after := raft.NewMemoryStorage()
	faultScenario(t, openMem(t), after)
	if err := op.run(after); err != nil {
		t.Fatal(err)
	}
	ft := storage.Fault{Op: storage.OpMutating, PathUnder: dir, Skip: k, Count: 1}
	if mode == "frozen" {
		ft.Count = 0
	}
	fio.Inject(ft)
	opErr := op.run(ds)
	if opErr == nil {
		t.Fatalf("%s: the operation succeeded with step %d failing", what, k)
	}
	ds.Close()
	fio.Clear()
	if err := fio.PowerLoss(rand.New(rand.NewSource(seed))); err != nil {
		t.Fatal(err)
	}
	re, err := OpenDiskStorageOptions(dir, DiskStorageOptions{FS: fio, SegmentBytes: 300})
	if err != nil {
		t.Fatalf("%s: open after the fault (%v): %v", what, opErr, err)
	}
	defer re.Close()
	got, err := readAll(re)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := readAll(before)
	a, _ := readAll(after)
	if got != b && got != a && !(op.start > 0 && partialAppend(re, before, after, op.start)) {
		t.Fatalf("%s: after the fault (%v) the store is neither the state before nor after\n--- got\n%s--- before\n%s--- after\n%s", what, opErr, got, b, a)
	}
	// And it takes writes again.
	last, _ := re.LastIndex()
	if err := re.Append(entries(last+1, 2, 9)); err != nil {
		t.Fatalf("%s: append after recovery: %v", what, err)
	}
}

func openMem(t *testing.T) LogStore {
	t.Helper()
	return raft.NewMemoryStorage()
}

// partialAppend: hard state, snapshot and first index as before, entries
// below start as before, and from start on either a prefix of the old
// entries or a prefix of the appended ones.
func partialAppend(got, before, after LogStore, start uint64) bool {
	hs1, cs1, _ := got.InitialState()
	hs2, cs2, _ := before.InitialState()
	s1, _ := got.Snapshot()
	s2, _ := before.Snapshot()
	f1, _ := got.FirstIndex()
	f2, _ := before.FirstIndex()
	if !proto.Equal(hs1, hs2) || !proto.Equal(cs1, cs2) || !proto.Equal(s1, s2) || f1 != f2 {
		return false
	}
	last, _ := got.LastIndex()
	if last+1 < start {
		return false
	}
	ents, err := got.Entries(f1, last+1, 1<<62)
	if err != nil && last >= f1 {
		return false
	}
	// matches: every entry of got from index from on is ref's entry.
	matches := func(ref LogStore, from, to uint64) bool {
		refLast, _ := ref.LastIndex()
		for _, e := range ents {
			if e.GetIndex() < from || e.GetIndex() >= to {
				continue
			}
			if e.GetIndex() > refLast {
				return false
			}
			want, err := ref.Entries(e.GetIndex(), e.GetIndex()+1, 1<<62)
			if err != nil || len(want) != 1 || !proto.Equal(want[0], e) {
				return false
			}
		}
		return true
	}
	oldPrefix := matches(before, 0, 1<<63)
	newPrefix := matches(before, 0, start) && matches(after, start, 1<<63)
	return oldPrefix || newPrefix
}
