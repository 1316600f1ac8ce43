package quorum

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"math/rand"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestDiskStorageUnderRaft drives three raft.RawNodes, each on its own
// DiskStorage (small segments), with seeded message loss, snapshots and
// compaction, and restarts that close and reopen the storage. Every node
// applies the same committed sequence, and a restarted node rebuilds its
// state from its storage (snapshot plus log) alone.
func TestDiskStorageUnderRaft(t *testing.T) {
	seed := seedFor(t)
	rng := rand.New(rand.NewSource(seed))
	root := t.TempDir()
	ids := []uint64{1, 2, 3}
	type rnode struct {
		id      uint64
		dir     string
		store   *DiskStorage
		rn      *raft.RawNode
		applied []string // the state machine: committed payloads in order
		index   uint64   // applied index
	}
	nodes := map[uint64]*rnode{}
	var inbox []*raftpb.Message
	snapshotsApplied, restarts := 0, 0
	down := map[uint64]int{} // node id -> steps it stays down (its store closed)
	encodeSM := func(applied []string) []byte { return []byte(fmt.Sprint(len(applied), applied)) }
	start := func(n *rnode) {
		var err error
		if n.store, err = OpenDiskStorageOptions(n.dir, DiskStorageOptions{SegmentBytes: 512}); err != nil {
			t.Fatal(err)
		}
		if last, _ := n.store.LastIndex(); last == 0 {
			snap, _ := n.store.Snapshot()
			if len(snap.GetMetadata().GetConfState().GetVoters()) == 0 {
				boot := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
					ConfState: &raftpb.ConfState{Voters: ids}, Index: proto.Uint64(0), Term: proto.Uint64(0),
				}}
				if err := n.store.ApplySnapshot(boot); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The state machine restarts from the snapshot: its data is the
		// applied payloads, and entries after it are re-applied.
		snap, _ := n.store.Snapshot()
		n.applied, n.index = nil, snap.GetMetadata().GetIndex()
		if d := snap.GetData(); len(d) > 0 {
			n.applied = decodeSM(t, d)
		}
		n.rn, err = raft.NewRawNode(&raft.Config{
			ID: n.id, ElectionTick: 10, HeartbeatTick: 1, Storage: n.store,
			MaxSizePerMsg: 1024, MaxInflightMsgs: 16, Applied: n.index,
			Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		n := &rnode{id: id, dir: filepath.Join(root, fmt.Sprint(id), MetadataLogDir)}
		nodes[id] = n
		start(n)
	}
	handle := func(n *rnode) {
		for n.rn.HasReady() {
			rd := n.rn.Ready()
			if !raft.IsEmptySnap(rd.Snapshot) {
				if err := n.store.ApplySnapshot(rd.Snapshot); err != nil {
					t.Fatalf("node %d apply snapshot: %v", n.id, err)
				}
				snapshotsApplied++
				n.applied = decodeSM(t, rd.Snapshot.GetData())
				n.index = rd.Snapshot.GetMetadata().GetIndex()
			}
			if err := n.store.Append(rd.Entries); err != nil {
				t.Fatalf("node %d append: %v", n.id, err)
			}
			if !raft.IsEmptyHardState(rd.HardState) {
				if err := n.store.SetHardState(rd.HardState); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range rd.Messages {
				if rng.Intn(10) > 0 { // 10% loss
					inbox = append(inbox, m)
				}
			}
			for _, e := range rd.CommittedEntries {
				if e.GetIndex() <= n.index {
					continue
				}
				if e.GetType() == raftpb.EntryType_EntryNormal && len(e.GetData()) > 0 {
					n.applied = append(n.applied, string(e.GetData()))
				}
				n.index = e.GetIndex()
			}
			n.rn.Advance(rd)
			if n.index > 0 && rng.Intn(8) == 0 {
				snap, _ := n.store.Snapshot()
				if n.index > snap.GetMetadata().GetIndex() {
					if _, err := n.store.CreateSnapshot(n.index, &raftpb.ConfState{Voters: ids}, encodeSM(n.applied)); err != nil {
						t.Fatalf("node %d snapshot at %d: %v", n.id, n.index, err)
					}
					first, _ := n.store.FirstIndex()
					if n.index > first+2 {
						if err := n.store.Compact(n.index - 2); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
	}
	proposed, steps := 0, 1500
	if testing.Short() {
		steps = 500
	}
	for step := 0; step < steps; step++ {
		for _, id := range ids {
			if left, ok := down[id]; ok {
				if left > 0 {
					down[id] = left - 1
					continue
				}
				delete(down, id)
				start(nodes[id]) // back from its disk alone
			}
			nodes[id].rn.Tick()
		}
		if rng.Intn(3) == 0 {
			for _, id := range ids {
				if _, isDown := down[id]; isDown {
					continue
				}
				if n := nodes[id]; n.rn.Status().RaftState == raft.StateLeader {
					proposed++
					n.rn.Propose([]byte(fmt.Sprintf("p%d", proposed)))
				}
			}
		}
		for _, id := range ids {
			if _, isDown := down[id]; !isDown {
				handle(nodes[id])
			}
		}
		msgs := inbox
		inbox = nil
		for _, m := range msgs {
			if _, isDown := down[m.GetTo()]; !isDown {
				nodes[m.GetTo()].rn.Step(m)
			}
		}
		// Now and then a node stops (its storage closed) for a while and
		// comes back from its disk; a long absence makes the leader send
		// it a snapshot, the log having been compacted.
		if id := ids[rng.Intn(len(ids))]; rng.Intn(150) == 0 && len(down) == 0 {
			if err := nodes[id].store.Close(); err != nil {
				t.Fatal(err)
			}
			restarts++
			down[id] = rng.Intn(100)
		}
	}
	var longest []string
	for _, id := range ids {
		if len(nodes[id].applied) > len(longest) {
			longest = nodes[id].applied
		}
	}
	for _, id := range ids {
		a := nodes[id].applied
		if fmt.Sprint(a) != fmt.Sprint(longest[:len(a)]) {
			t.Fatalf("node %d applied %v, not a prefix of %v", id, a, longest)
		}
	}
	t.Logf("%d proposals applied, %d snapshots applied by followers, %d restarts", len(longest), snapshotsApplied, restarts)
	if len(longest) < 20 {
		t.Fatalf("only %d proposals applied in %d steps", len(longest), steps)
	}
	for _, id := range ids {
		if _, isDown := down[id]; !isDown {
			nodes[id].store.Close()
		}
	}
}

// decodeSM reads the test state machine's snapshot ("<n> [p1 p2 ...]").
func decodeSM(t *testing.T, d []byte) []string {
	t.Helper()
	var n int
	open := bytes.IndexByte(d, '[')
	if _, err := fmt.Sscan(string(d[:max(open, 0)]), &n); err != nil || open < 0 || d[len(d)-1] != ']' {
		t.Fatalf("bad state machine snapshot %q", d)
	}
	out := make([]string, 0, n)
	for _, f := range bytes.Fields(d[open+1 : len(d)-1]) {
		out = append(out, string(f))
	}
	if len(out) != n {
		t.Fatalf("state machine snapshot holds %d payloads, says %d", len(out), n)
	}
	return out
}
