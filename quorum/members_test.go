package quorum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/cryptotest"

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

// TestMembersEncodingDirectoryIDs: directory ids travel in the v2 context
// and snapshot header, written only when one is known, so a quorum that
// knows none writes the v1 forms older nodes read; both forms decode.
func TestMembersEncodingDirectoryIDs(t *testing.T) {
	dir := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	ms := []Member{{ID: 1, Addr: "a:1", DirectoryID: dir}, {ID: 2, Addr: "b:2"}}
	ctx := membersContext(ms, []byte{9})
	if !bytes.HasPrefix(ctx, membersContextMagicV2) {
		t.Fatalf("context with a directory id: %q", ctx)
	}
	if got, err := decodeMembersContext(ctx); err != nil || !slices.Equal(got, ms) {
		t.Fatalf("v2 context: %v %v", got, err)
	}
	plain := []Member{{ID: 1, Addr: "a:1"}}
	if ctx := membersContext(plain, nil); !bytes.HasPrefix(ctx, membersContextMagic) {
		t.Fatalf("context without directory ids: %q", ctx)
	}
	snap := snapshotOfMembers(ms, []byte("sm"))
	if !bytes.HasPrefix(snap, snapshotMembersMagicV2) {
		t.Fatalf("snapshot with a directory id: %q", snap)
	}
	got, data, err := splitSnapshotMembers(snap)
	if err != nil || !slices.Equal(got, ms) || string(data) != "sm" {
		t.Fatalf("v2 snapshot: %v %q %v", got, data, err)
	}
	if eps, data, err := splitSnapshot(snap); err != nil || !maps.Equal(eps, map[uint64]string{1: "a:1", 2: "b:2"}) || string(data) != "sm" {
		t.Fatalf("v2 snapshot's endpoints: %v %q %v", eps, data, err)
	}
	for cut := len(snapshotMembersMagicV2); cut < len(snap)-2; cut++ {
		if _, _, err := splitSnapshotMembers(snap[:cut]); err == nil {
			t.Fatalf("a v2 snapshot cut at %d decoded", cut)
		}
	}
	if snap := snapshotOfMembers(plain, nil); !bytes.HasPrefix(snap, snapshotMembersMagic) {
		t.Fatalf("snapshot without directory ids: %q", snap)
	}
}

func FuzzMembersContext(f *testing.F) {
	f.Add(membersContext([]Member{{ID: 1, Addr: "a:1"}}, nil))
	f.Add(membersContext([]Member{{ID: 1, Addr: "a:1", DirectoryID: [16]byte{1}}}, nil))
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

// TestSimDynamicMembership grows a dynamic quorum from one standalone voter
// to five members and shrinks it again while the simulation's network
// drops, duplicates and delays messages and members crash and restart: one
// configuration change at a time, proposed at whichever member leads. After
// healing, every member applied the same entries and holds the same
// configuration and endpoints, and no term ever had two leaders. Seeds as
// TestSim's (-sim.seed, -sim.seeds).
func TestSimDynamicMembership(t *testing.T) {
	seeds := []uint64{*simSeed}
	if *simSeed == 0 {
		seeds = seeds[:0]
		for i := range *simSeeds {
			seeds = append(seeds, uint64(2000+i))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runDynamicSim(t, seed) })
	}
}

// memberPlan is the sequence of changes: grow to five voters, demote two.
var memberPlan = []struct {
	typ raftpb.ConfChangeType
	id  uint64
}{
	{raftpb.ConfChangeAddLearnerNode, 2}, {raftpb.ConfChangeAddNode, 2},
	{raftpb.ConfChangeAddLearnerNode, 3}, {raftpb.ConfChangeAddNode, 3},
	{raftpb.ConfChangeAddLearnerNode, 4}, {raftpb.ConfChangeAddLearnerNode, 5},
	{raftpb.ConfChangeAddNode, 4}, {raftpb.ConfChangeAddNode, 5},
	{raftpb.ConfChangeAddLearnerNode, 1}, {raftpb.ConfChangeAddLearnerNode, 3},
}

func runDynamicSim(t *testing.T, seed uint64) {
	cryptotest.SetGlobalRandom(t, seed)
	seen := make(map[uint64]Membership)
	c := newCluster(t, seed, 5, func(cfg *NodeConfig) {
		id := cfg.ID
		cfg.Voters = nil
		if id == 1 {
			cfg.Bootstrap = []Member{{ID: 1, Addr: "host1:9093"}}
		} else {
			cfg.Join = true
		}
		cfg.OnMembers = func(m Membership) { seen[id] = m }
		cfg.SnapshotEvery, cfg.SnapshotKeep, cfg.ProposalsMax = 25, 5, 64
	})
	sched := rand.New(rand.NewPCG(seed, 0xd1a))
	c.net.faulty = true
	c.net.dropPercent = 2 + sched.IntN(10)
	c.net.duplicatePercent = sched.IntN(10)
	c.net.delayMax = 1 + sched.IntN(4)

	leaders := map[uint64]uint64{} // term -> leader
	checkLeaders := func() {
		for _, id := range c.ids {
			if n := c.members[id].node; n != nil {
				if st := n.Status(); st.Role == RoleLeader {
					if other, ok := leaders[st.Term]; ok && other != id {
						c.fatalf("two leaders in term %d: %d and %d", st.Term, other, id)
					}
					leaders[st.Term] = id
				}
			}
		}
	}
	step := 0
	var inflight *Proposal
	var proposals []*simProposal
	propose := func() {
		if step >= len(memberPlan) {
			return
		}
		if inflight != nil {
			select {
			case <-inflight.Done():
				if _, err := inflight.Result(); err == nil {
					step++
				}
				inflight = nil
			default:
				return
			}
		}
		leader := c.leader()
		if step >= len(memberPlan) || leader == 0 || !c.members[leader].node.Status().LeaderReady {
			return
		}
		ch := memberPlan[step]
		var adds []Member
		if ch.typ == raftpb.ConfChangeAddLearnerNode && ch.id != 1 && ch.id != 3 {
			adds = []Member{{ID: ch.id, Addr: fmt.Sprintf("host%d:9093", ch.id)}}
		}
		if ch.typ == raftpb.ConfChangeAddLearnerNode && ch.id == 3 && step < 4 {
			adds = []Member{{ID: 3, Addr: "host3:9093"}}
		}
		p, err := c.members[leader].node.ProposeConfChangeAsync(single(ch.typ, ch.id), adds)
		if err == nil {
			inflight = p
		}
	}
	for range simScheduleSteps * 2 {
		crashRoll, crashWho := sched.IntN(1000), c.ids[sched.IntN(len(c.ids))]
		restartRoll, restartWho := sched.IntN(100), c.ids[sched.IntN(len(c.ids))]
		proposeRoll := sched.IntN(100)
		if crashRoll < 6 && c.members[crashWho].node != nil {
			c.crash(crashWho)
		}
		if restartRoll < 8 && c.members[restartWho].node == nil {
			c.restart(restartWho)
		}
		if leader := c.leader(); proposeRoll < 20 && leader != 0 {
			p := &simProposal{member: leader, payload: fmt.Sprintf("d%d-p%d", seed, len(proposals))}
			h, err := c.members[leader].node.ProposeAsync([]byte(p.payload))
			p.handle, p.refused = h, err
			proposals = append(proposals, p)
		}
		propose()
		c.step()
		checkLeaders()
	}
	// Heal, then finish the plan.
	c.net.faulty = false
	for _, id := range c.ids {
		if c.members[id].node == nil {
			c.restart(id)
		}
	}
	if !c.stepUntil(simConvergeSteps*3, func() bool {
		propose()
		checkLeaders()
		return step == len(memberPlan) && c.converged() && allDone(proposals)
	}) {
		c.fatalf("plan at step %d of %d, not converged: %s", step, len(memberPlan), c.describe())
	}
	c.checkSameApplied()
	c.checkProposals(proposals)
	want := map[uint64]string{}
	for id := uint64(1); id <= 5; id++ {
		want[id] = fmt.Sprintf("host%d:9093", id)
	}
	for _, id := range c.ids {
		st := c.members[id].node.Status()
		if !slices.Equal(st.Voters, []uint64{2, 4, 5}) || !slices.Equal(st.Learners, []uint64{1, 3}) || !maps.Equal(st.Endpoints, want) {
			c.fatalf("member %d: voters %v learners %v endpoints %v", id, st.Voters, st.Learners, st.Endpoints)
		}
		if m := seen[id]; !slices.Equal(m.Voters, st.Voters) || !maps.Equal(m.Endpoints, want) {
			c.fatalf("member %d told %+v", id, m)
		}
	}
	t.Logf("%d proposals, %d terms with a leader, %s", len(proposals), len(leaders), c.describe())
}
