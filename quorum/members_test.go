package quorum

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// The dynamic quorum's membership changes (KIP-853), driven through the real
// raft library on the simulation's lossless network, one virtual step at a
// time.

// dynamicCluster makes memberCount members: member 1 bootstraps a dynamic
// quorum alone (--standalone), the others start with an empty store and
// join. members[id] is the last Membership each member's OnMembers got.
func dynamicCluster(t *testing.T, memberCount int, tweak func(*NodeConfig)) (*cluster, map[uint64]Membership) {
	seen := make(map[uint64]Membership)
	c := newCluster(t, 1, memberCount, func(cfg *NodeConfig) {
		id := cfg.ID
		cfg.Voters = nil
		if id == 1 {
			cfg.Bootstrap = []Member{{ID: 1, Addr: "host1:9093"}}
		} else {
			cfg.Join = true
		}
		cfg.OnMembers = func(m Membership) { seen[id] = m }
		if tweak != nil {
			tweak(cfg)
		}
	})
	return c, seen
}

func single(typ raftpb.ConfChangeType, id uint64) []*raftpb.ConfChangeSingle {
	return []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: new(id)}}
}

// confChange proposes a change at member at and steps until it is done.
func (c *cluster) confChange(at uint64, changes []*raftpb.ConfChangeSingle, adds []Member) error {
	c.t.Helper()
	p, err := c.members[at].node.ProposeConfChangeAsync(changes, adds)
	if err != nil {
		return err
	}
	if !c.stepUntil(unitStepsMax, func() bool {
		select {
		case <-p.Done():
			return true
		default:
			return false
		}
	}) {
		c.fatalf("conf change at %d not done: %s", at, c.describe())
	}
	_, err = p.Result()
	return err
}

// addVoter adds id as a learner at addr, waits for it to catch up with the
// leader, then promotes it: the two steps of AddRaftVoter.
func (c *cluster) addVoter(leader, id uint64, addr string) {
	c.t.Helper()
	if err := c.confChange(leader, single(raftpb.ConfChangeAddLearnerNode, id), []Member{{ID: id, Addr: addr}}); err != nil {
		c.fatalf("add learner %d: %v", id, err)
	}
	if !c.stepUntil(unitStepsMax, func() bool {
		lst := c.members[leader].node.Status()
		return lst.Match[id] >= lst.Commit && c.members[id].node.Status().Applied >= lst.Commit
	}) {
		c.fatalf("learner %d does not catch up: %s", id, c.describe())
	}
	if err := c.confChange(leader, single(raftpb.ConfChangeAddNode, id), nil); err != nil {
		c.fatalf("promote %d: %v", id, err)
	}
}

func TestDynamicQuorumGrowFailoverShrink(t *testing.T) {
	c, seen := dynamicCluster(t, 3, func(cfg *NodeConfig) { cfg.SnapshotEvery, cfg.SnapshotKeep = 4, 1 })
	leader := c.waitLeader()
	if leader != 1 {
		t.Fatalf("leader %d: only the standalone voter may lead", leader)
	}
	for _, id := range []uint64{2, 3} {
		if st := c.members[id].node.Status(); len(st.Voters)+len(st.Learners) != 0 || st.Role != RoleFollower {
			t.Fatalf("joining member %d before it is added: %+v", id, st)
		}
	}
	c.proposeAndWait(1, "a", "b", "c", "d", "e", "f") // past a snapshot: 2 and 3 catch up from it
	c.addVoter(1, 2, "host2:9093")
	c.addVoter(1, 3, "host3:9093")
	c.proposeAndWait(1, "g")
	c.waitConverged()

	want := map[uint64]string{1: "host1:9093", 2: "host2:9093", 3: "host3:9093"}
	for _, id := range c.ids {
		st := c.members[id].node.Status()
		if !slices.Equal(st.Voters, []uint64{1, 2, 3}) || len(st.Learners) != 0 || !maps.Equal(st.Endpoints, want) {
			t.Fatalf("member %d: voters %v learners %v endpoints %v", id, st.Voters, st.Learners, st.Endpoints)
		}
		if m := seen[id]; !slices.Equal(m.Voters, []uint64{1, 2, 3}) || !maps.Equal(m.Endpoints, want) {
			t.Fatalf("member %d told %+v", id, m)
		}
	}
	if got := payloadsOf(c.members[3].sm); !slices.Equal(got, []string{"a", "b", "c", "d", "e", "f", "g"}) {
		t.Fatalf("member 3 applied %q", got)
	}

	// One change at a time: a second change proposed before the first is
	// applied is refused.
	p1, err := c.members[1].node.ProposeConfChangeAsync(single(raftpb.ConfChangeAddLearnerNode, 9), []Member{{ID: 9, Addr: "host9:9093"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.confChange(1, single(raftpb.ConfChangeAddLearnerNode, 8), nil); !errors.Is(err, ErrConfChangePending) {
		t.Fatalf("second change in flight: %v", err)
	}
	c.stepUntil(unitStepsMax, func() bool {
		select {
		case <-p1.Done():
			return true
		default:
			return false
		}
	})
	if _, err := p1.Result(); err != nil {
		t.Fatal(err)
	}
	if err := c.confChange(1, single(raftpb.ConfChangeRemoveNode, 9), nil); err != nil {
		t.Fatal(err)
	}

	// The leader dies: the two voters added dynamically elect one of them.
	c.crash(1)
	var next uint64
	if !c.stepUntil(unitStepsMax, func() bool {
		next = c.leader()
		return next != 0 && c.members[next].node.Status().LeaderReady
	}) {
		t.Fatalf("no leader after the crash: %s", c.describe())
	}
	c.proposeAndWait(next, "h")
	c.restart(1)
	c.waitConverged()
	if st := c.members[1].node.Status(); !maps.Equal(st.Endpoints, want) || !slices.Equal(st.Voters, []uint64{1, 2, 3}) {
		t.Fatalf("restarted member 1: voters %v endpoints %v", st.Voters, st.Endpoints)
	}

	// Remove the leader (demote it to a learner: it goes on following the
	// log, as a removed Kafka voter goes on as an observer): it steps down
	// and the other two elect a leader.
	leader = c.leader()
	if err := c.confChange(leader, single(raftpb.ConfChangeAddLearnerNode, leader), nil); err != nil {
		t.Fatal(err)
	}
	var after uint64
	if !c.stepUntil(unitStepsMax, func() bool {
		after = c.leader()
		return after != 0 && after != leader && c.members[after].node.Status().LeaderReady
	}) {
		t.Fatalf("no new leader after removing %d: %s", leader, c.describe())
	}
	c.proposeAndWait(after, "i")
	c.waitConverged()
	for _, id := range c.ids {
		st := c.members[id].node.Status()
		if len(st.Voters) != 2 || slices.Contains(st.Voters, leader) || !slices.Equal(st.Learners, []uint64{leader}) {
			t.Fatalf("member %d after removing %d: voters %v learners %v", id, leader, st.Voters, st.Learners)
		}
	}
	// Every member restarts from its store: the configuration and the
	// endpoints survive (the log and the snapshots carry them).
	for _, id := range c.ids {
		c.crash(id)
	}
	for _, id := range c.ids {
		c.restart(id)
	}
	c.waitConverged()
	for _, id := range c.ids {
		st := c.members[id].node.Status()
		if len(st.Voters) != 2 || !slices.Equal(st.Learners, []uint64{leader}) || !maps.Equal(st.Endpoints, want) {
			t.Fatalf("member %d after a full restart: voters %v learners %v endpoints %v", id, st.Voters, st.Learners, st.Endpoints)
		}
	}
	if got := payloadsOf(c.members[leader].sm); len(got) != 0 && got[len(got)-1] != "i" {
		t.Fatalf("member %d applied %q", leader, got)
	}
}

func TestMembersEncoding(t *testing.T) {
	ms := []Member{{ID: 1, Addr: "a:1"}, {ID: 300, Addr: "[::1]:9093"}}
	got, err := decodeMembersContext(membersContext(ms, []byte{7, 7}))
	if err != nil || !slices.Equal(got, ms) {
		t.Fatalf("context: %v %v", got, err)
	}
	if got, err := decodeMembersContext([]byte("other")); got != nil || err != nil {
		t.Fatalf("foreign context: %v %v", got, err)
	}
	eps := map[uint64]string{1: "a:1", 2: "b:2"}
	gotEps, data, err := splitSnapshot(snapshotWithMembers(eps, []byte("sm")))
	if err != nil || !maps.Equal(gotEps, eps) || string(data) != "sm" {
		t.Fatalf("snapshot: %v %q %v", gotEps, data, err)
	}
	if gotEps, data, err := splitSnapshot([]byte{3, 1, 2}); gotEps != nil || string(data) != "\x03\x01\x02" || err != nil {
		t.Fatalf("static snapshot: %v %q %v", gotEps, data, err)
	}
	for cut := len(snapshotMembersMagic); cut < len(snapshotWithMembers(eps, nil)); cut++ {
		if _, _, err := splitSnapshot(snapshotWithMembers(eps, nil)[:cut]); err == nil {
			t.Fatalf("a snapshot cut at %d decoded", cut)
		}
	}
}

func FuzzMembersContext(f *testing.F) {
	f.Add(membersContext([]Member{{ID: 1, Addr: "a:1"}}, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := decodeMembersContext(b)
		if err != nil {
			return
		}
		if ms == nil {
			return
		}
		again, err := decodeMembersContext(membersContext(ms, nil))
		if err != nil || !slices.Equal(again, ms) {
			t.Fatal(fmt.Sprint(ms, again, err))
		}
	})
}

var _ = context.Background
