package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// The unit tests drive the nodes with the simulation's cluster (sim_test.go)
// over a network that loses nothing, one virtual step at a time.

const unitStepsMax = 2000

func (c *cluster) waitLeader() uint64 {
	c.t.Helper()
	var leader uint64
	if !c.stepUntil(unitStepsMax, func() bool {
		leader = c.leader()
		return leader != 0 && c.members[leader].node.Status().LeaderReady
	}) {
		c.fatalf("no ready leader: %s", c.describe())
	}
	return leader
}

// proposeAndWait proposes payloads at member id and steps until all are
// done; it returns their indexes.
func (c *cluster) proposeAndWait(id uint64, payloads ...string) []uint64 {
	c.t.Helper()
	var handles []*Proposal
	for _, p := range payloads {
		h, err := c.members[id].node.ProposeAsync([]byte(p))
		if err != nil {
			c.fatalf("propose %q at %d: %v", p, id, err)
		}
		handles = append(handles, h)
	}
	var indexes []uint64
	if !c.stepUntil(unitStepsMax, func() bool {
		for _, h := range handles {
			select {
			case <-h.Done():
			default:
				return false
			}
		}
		return true
	}) {
		c.fatalf("proposals at %d not done: %s", id, c.describe())
	}
	for i, h := range handles {
		index, err := h.Result()
		if err != nil {
			c.fatalf("proposal %q at %d: %v", payloads[i], id, err)
		}
		indexes = append(indexes, index)
	}
	return indexes
}

func (c *cluster) waitConverged() {
	c.t.Helper()
	if !c.stepUntil(unitStepsMax, c.converged) {
		c.fatalf("not converged: %s", c.describe())
	}
	c.checkSameApplied()
}

func payloadsOf(sm *testSM) []string {
	var out []string
	for _, e := range sm.entries {
		out = append(out, string(e.payload))
	}
	return out
}

func TestSingleNodeElectsItselfAndApplies(t *testing.T) {
	c := newCluster(t, 1, 1, nil)
	leader := c.waitLeader()
	if leader != 1 {
		t.Fatalf("leader %d", leader)
	}
	indexes := c.proposeAndWait(1, "a", "b", "c")
	if !slices.IsSorted(indexes) || indexes[0] == 0 || indexes[2] != indexes[0]+2 {
		t.Fatalf("indexes %v", indexes)
	}
	m := c.members[1]
	if got := payloadsOf(m.sm); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("applied %q", got)
	}
	for i, e := range m.sm.entries {
		if e.index != indexes[i] {
			t.Fatalf("entry %d applied at %d, proposal returned %d", i, e.index, indexes[i])
		}
	}
	st := m.node.Status()
	if st.Role != RoleLeader || st.Leader != 1 || st.Term == 0 || !st.LeaderReady ||
		st.Applied != indexes[2] || st.Commit != indexes[2] || !slices.Equal(st.Voters, []uint64{1}) ||
		st.Match[1] != indexes[2] {
		t.Fatalf("status %+v", st)
	}
	if m.leaderCalls != 1 || m.readyCalls != 1 {
		t.Fatalf("OnLeader called %d times, OnLeaderReady %d", m.leaderCalls, m.readyCalls)
	}
}

// TestNodeRun runs the production mode: Run's goroutine ticks with a real
// ticker, proposals come from several goroutines, Stop ends the loop.
func TestNodeRun(t *testing.T) {
	sm := &lockedSM{}
	leaderReady := make(chan struct{})
	var once sync.Once
	n, err := NewNode(NodeConfig{
		ID: 1, Voters: []uint64{1}, Store: raft.NewMemoryStorage(), SM: sm,
		Send:          func([]*raftpb.Message) {},
		OnLeaderReady: func(uint64) { once.Do(func() { close(leaderReady) }) },
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Run(time.Millisecond)
	// Bounded wait for a condition, not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case <-leaderReady:
	case <-ctx.Done():
		t.Fatal("no leader within a minute")
	}

	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := n.Propose(ctx, fmt.Appendf(nil, "w%d-%d", w, i)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n.Stop()
	select {
	case <-n.donec:
	default:
		t.Fatal("loop goroutine still running after Stop")
	}
	if _, err := n.Propose(ctx, []byte("late")); !errors.Is(err, ErrStopped) {
		t.Fatalf("propose after Stop: %v", err)
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if len(sm.entries) != writers*each {
		t.Fatalf("applied %d entries, want %d", len(sm.entries), writers*each)
	}
}

// lockedSM is a testSM the test goroutine may read while Run's goroutine
// applies.
type lockedSM struct {
	mu sync.Mutex
	testSM
}

func (s *lockedSM) Apply(index, term uint64, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.testSM.Apply(index, term, payload)
}

func TestProposeHonoursContext(t *testing.T) {
	n, err := NewNode(NodeConfig{ID: 1, Voters: []uint64{1}, Store: raft.NewMemoryStorage(), SM: &testSM{},
		Send: func([]*raftpb.Message) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Nothing drives the node, so only the context can end the call.
	if _, err := n.Propose(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestFollowerRefusesProposals(t *testing.T) {
	c := newCluster(t, 2, 3, nil)
	leader := c.waitLeader()
	follower := c.ids[0]
	if follower == leader {
		follower = c.ids[1]
	}
	h, err := c.members[follower].node.ProposeAsync([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	c.step()
	_, err = h.Result()
	var notLeader *NotLeaderError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &notLeader) || notLeader.Leader != leader {
		t.Fatalf("got %v, want not leader naming %d", err, leader)
	}
}

func TestProposalsSurviveLeaderChange(t *testing.T) {
	c := newCluster(t, 3, 3, nil)
	first := c.waitLeader()
	c.proposeAndWait(first, "a1", "a2", "a3")
	next := first%3 + 1
	c.members[first].node.TransferLeadership(next)
	if !c.stepUntil(unitStepsMax, func() bool {
		return c.leader() == next && c.members[next].node.Status().LeaderReady
	}) {
		t.Fatalf("leadership did not move to %d: %s", next, c.describe())
	}
	if st := c.members[first].node.Status(); st.Role != RoleFollower || st.Leader != next || st.LeaderReady {
		t.Fatalf("old leader status %+v", st)
	}
	c.proposeAndWait(next, "b1", "b2")
	c.waitConverged()
	for _, id := range c.ids {
		if got := payloadsOf(c.members[id].sm); !slices.Equal(got, []string{"a1", "a2", "a3", "b1", "b2"}) {
			t.Fatalf("member %d applied %q", id, got)
		}
	}
	if m := c.members[next]; m.readyCalls != 1 {
		t.Fatalf("new leader's OnLeaderReady called %d times", m.readyCalls)
	}
}

// TestDeposedLeaderDropsItsProposal: a leader cut off from the others takes
// a proposal it cannot commit; the others elect a new leader; once the
// partition heals the proposal fails with ErrProposalDropped and appears
// nowhere.
func TestDeposedLeaderDropsItsProposal(t *testing.T) {
	c := newCluster(t, 4, 3, nil)
	old := c.waitLeader()
	c.proposeAndWait(old, "before")
	c.net.partition = map[uint64]bool{old: true}
	h, err := c.members[old].node.ProposeAsync([]byte("lost"))
	if err != nil {
		t.Fatal(err)
	}
	var next uint64
	if !c.stepUntil(unitStepsMax, func() bool {
		next = c.leader()
		return next != 0 && next != old && c.members[next].node.Status().LeaderReady
	}) {
		t.Fatalf("no new leader: %s", c.describe())
	}
	c.proposeAndWait(next, "after")
	c.net.partition = nil
	c.waitConverged()
	if !c.stepUntil(unitStepsMax, func() bool {
		select {
		case <-h.Done():
			return true
		default:
			return false
		}
	}) {
		t.Fatal("deposed leader's proposal never resolved")
	}
	if _, err := h.Result(); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("got %v, want ErrProposalDropped", err)
	}
	for _, id := range c.ids {
		if got := payloadsOf(c.members[id].sm); !slices.Equal(got, []string{"before", "after"}) {
			t.Fatalf("member %d applied %q", id, got)
		}
	}
}

// TestSnapshotCatchesUpLaggingFollower: while a follower is down the leader
// snapshots and compacts its log past what the follower has; on return the
// follower gets the snapshot, restores its state machine from it, and
// applies what follows.
func TestSnapshotCatchesUpLaggingFollower(t *testing.T) {
	c := newCluster(t, 5, 3, func(cfg *NodeConfig) {
		cfg.SnapshotEvery = 10
		cfg.SnapshotKeep = 2
	})
	leader := c.waitLeader()
	lagging := leader%3 + 1
	c.proposeAndWait(leader, "p0")
	c.waitConverged()
	c.crash(lagging)
	var payloads []string
	for i := range 40 {
		payloads = append(payloads, fmt.Sprintf("p%d", i+1))
	}
	c.proposeAndWait(leader, payloads...)
	lst := c.members[leader].node.Status()
	first, err := c.members[leader].store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	laggingLast, err := c.members[lagging].store.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if lst.SnapshotIndex == 0 || first <= laggingLast+1 {
		t.Fatalf("leader snapshot %d, first index %d, lagging member's last index %d: no snapshot needed",
			lst.SnapshotIndex, first, laggingLast)
	}
	c.restart(lagging)
	c.waitConverged()
	if c.net.snapshotsDelivered == 0 {
		t.Fatal("no snapshot was sent")
	}
	m := c.members[lagging]
	if m.sm.restores != 1 {
		t.Fatalf("lagging member restored %d times", m.sm.restores)
	}
	if got := payloadsOf(m.sm); !slices.Equal(got, append([]string{"p0"}, payloads...)) {
		t.Fatalf("lagging member applied %q", got)
	}
	if snap, _ := m.store.Snapshot(); snap.GetMetadata().GetIndex() == 0 {
		t.Fatal("lagging member's store holds no snapshot")
	}
}

// TestRestartRebuildsFromStore: a node restarted on its store restores the
// snapshot and replays the entries after it into a fresh state machine.
func TestRestartRebuildsFromStore(t *testing.T) {
	c := newCluster(t, 6, 1, func(cfg *NodeConfig) {
		cfg.SnapshotEvery = 5
		cfg.SnapshotKeep = 1
	})
	c.waitLeader()
	var payloads []string
	for i := range 12 {
		payloads = append(payloads, fmt.Sprintf("p%d", i))
	}
	c.proposeAndWait(1, payloads...)
	before := c.members[1].node.Status()
	c.crash(1)
	c.restart(1)
	m := c.members[1]
	if m.sm.restores != 1 {
		t.Fatalf("restored %d times", m.sm.restores)
	}
	c.waitLeader()
	if got := payloadsOf(m.sm); !slices.Equal(got, payloads) {
		t.Fatalf("after restart applied %q", got)
	}
	if st := m.node.Status(); st.Term <= before.Term || st.Applied <= before.Applied {
		t.Fatalf("before %+v after %+v", before, st)
	}
	// The previous life's proposals never complete this life's.
	c.proposeAndWait(1, "new")
}

func TestNewNodeRefusesIncompleteConfig(t *testing.T) {
	base := NodeConfig{ID: 1, Voters: []uint64{1}, Store: raft.NewMemoryStorage(), SM: &testSM{},
		Send: func([]*raftpb.Message) {}}
	for name, mutate := range map[string]func(*NodeConfig){
		"no id":     func(c *NodeConfig) { c.ID = 0 },
		"no store":  func(c *NodeConfig) { c.Store = nil },
		"no send":   func(c *NodeConfig) { c.Send = nil },
		"no sm":     func(c *NodeConfig) { c.SM = nil },
		"no voters": func(c *NodeConfig) { c.Voters = nil },
	} {
		cfg := base
		cfg.Store = raft.NewMemoryStorage()
		mutate(&cfg)
		if _, err := NewNode(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLearnerAppliesWithoutVoting(t *testing.T) {
	c := newCluster(t, 7, 4, func(cfg *NodeConfig) {
		cfg.Voters, cfg.Learners = []uint64{1, 2, 3}, []uint64{4}
	})
	leader := c.waitLeader()
	if leader == 4 {
		t.Fatal("the learner leads")
	}
	c.proposeAndWait(leader, "x", "y")
	c.waitConverged()
	st := c.members[leader].node.Status()
	if !slices.Equal(st.Voters, []uint64{1, 2, 3}) || !slices.Equal(st.Learners, []uint64{4}) {
		t.Fatalf("voters %v learners %v", st.Voters, st.Learners)
	}
	if got := payloadsOf(c.members[4].sm); !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("learner applied %q", got)
	}
	h, err := c.members[4].node.ProposeAsync([]byte("z"))
	if err != nil {
		t.Fatal(err)
	}
	c.step()
	if _, err := h.Result(); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("learner's proposal: %v", err)
	}
}

// failingSM refuses the payload "boom".
type failingSM struct{ testSM }

func (s *failingSM) Apply(index, term uint64, payload []byte) error {
	if string(payload) == "boom" {
		return errors.New("refused")
	}
	return s.testSM.Apply(index, term, payload)
}

func TestApplyErrorStopsTheNode(t *testing.T) {
	n, err := NewNode(NodeConfig{ID: 1, Voters: []uint64{1}, Store: raft.NewMemoryStorage(), SM: &failingSM{},
		Send: func([]*raftpb.Message) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	for range unitStepsMax {
		if n.Status().LeaderReady {
			break
		}
		n.Tick()
		if err := n.Process(); err != nil {
			t.Fatal(err)
		}
	}
	h, err := n.ProposeAsync([]byte("boom"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Process(); err == nil || n.Err() == nil {
		t.Fatal("the node kept running after Apply failed")
	}
	if _, err := h.Result(); err == nil {
		t.Fatal("the proposal succeeded")
	}
	if _, err := n.ProposeAsync([]byte("after")); err == nil {
		t.Fatal("a stopped node took a proposal")
	}
}

func TestProposalDuringTransferIsDropped(t *testing.T) {
	c := newCluster(t, 8, 3, nil)
	leader := c.waitLeader()
	target := leader%3 + 1
	// Cut the target off so the transfer stays pending.
	c.net.partition = map[uint64]bool{target: true}
	c.members[leader].node.TransferLeadership(target)
	c.step()
	h, err := c.members[leader].node.ProposeAsync([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	c.step()
	if _, err := h.Result(); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("got %v, want ErrProposalDropped", err)
	}
	c.net.partition = nil
	c.waitConverged()
}
