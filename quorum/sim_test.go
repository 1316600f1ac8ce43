package quorum

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/cryptotest"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The seeded simulation of the quorum: 3 or 5 members in one process, over a
// fake network that drops, delays, duplicates, reorders and partitions
// messages, with members that crash (their MemoryStorage is the disk that
// survives) and restart, and proposals made at random members. After the
// faulty schedule the network heals, every member restarts, and the run must
// converge within a bound; then every member must have applied the same
// sequence of payloads, every proposal reported applied must be there exactly
// once at its index, every proposal reported dropped must be absent, and no
// payload may appear twice.
//
// Time is virtual: one step ticks every live member once, delivers the
// messages due at that step (in a shuffled order when the network is faulty)
// and runs one loop round (Node.Process) of every live member, in id order.
// No goroutines run.
//
// Determinism: the schedule (crashes, restarts, partitions, proposals) comes
// from one generator seeded by the seed and draws the same numbers at every
// step whatever raft does, and the fate of each message (drop, duplicate,
// delay, delivery order) from a second generator of the same seed. The raft
// library draws its randomized election timeouts from crypto/rand, which
// cryptotest.SetGlobalRandom makes a deterministic stream of the same seed
// for the test. With no goroutines and virtual time, a seed replays the
// run exactly: every message sent, in the same order, with the same
// content (TestSimReplay checks this through a hash of every message).
//
//	go test ./quorum -run TestSim -sim.seeds=200    # more seeds
//	go test ./quorum -run TestSim -sim.seed=12345   # replay one seed
var (
	simSeed  = flag.Uint64("sim.seed", 0, "run the quorum simulation with this seed only")
	simSeeds = flag.Int("sim.seeds", 4, "number of seeds the quorum simulation runs")
)

func TestSim(t *testing.T) {
	seeds := make([]uint64, 0, *simSeeds)
	if *simSeed != 0 {
		seeds = append(seeds, *simSeed)
	} else {
		for i := range *simSeeds {
			seeds = append(seeds, uint64(1000+i))
		}
	}
	for _, seed := range seeds {
		for _, members := range []int{3, 5} {
			t.Run(fmt.Sprintf("seed=%d/members=%d", seed, members), func(t *testing.T) {
				runSim(t, seed, members)
			})
		}
	}
}

const (
	simScheduleSteps = 800
	simConvergeSteps = 3000
)

// TestSimReplay runs seeds twice and requires the same run: the same hash of
// every message sent, in order. If it fails, the simulation has a source of
// nondeterminism (map order, wall time, a goroutine, unseeded randomness)
// and a seed no longer replays a failure.
func TestSimReplay(t *testing.T) {
	for _, seed := range []uint64{7, 1001} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			var traces [2]uint64
			for i := range traces {
				t.Run(fmt.Sprintf("run=%d", i), func(t *testing.T) {
					traces[i] = runSim(t, seed, 3).trace.Sum64()
				})
			}
			if traces[0] != traces[1] {
				t.Fatalf("seed %d: two runs differ: message trace %016x then %016x", seed, traces[0], traces[1])
			}
		})
	}
}

func runSim(t *testing.T, seed uint64, memberCount int) *cluster {
	// Raft's election timeouts come from crypto/rand: seed it too.
	cryptotest.SetGlobalRandom(t, seed)
	c := newCluster(t, seed, memberCount, func(cfg *NodeConfig) {
		cfg.SnapshotEvery = 25
		cfg.SnapshotKeep = 5
		cfg.ProposalsMax = 64
	})
	sched := rand.New(rand.NewPCG(seed, 0x5c4ed))
	c.net.faulty = true
	c.net.dropPercent = 2 + sched.IntN(15)
	c.net.duplicatePercent = sched.IntN(10)
	c.net.delayMax = 1 + sched.IntN(6)

	var proposals []*simProposal
	partitionUntil := uint64(0)
	for range simScheduleSteps {
		// Every decision draws the same numbers whatever state raft is in.
		crashRoll, crashWho := sched.IntN(1000), c.ids[sched.IntN(len(c.ids))]
		restartRoll, restartWho := sched.IntN(100), c.ids[sched.IntN(len(c.ids))]
		partitionRoll, partitionLength, partitionMask, oneWayRoll := sched.IntN(1000), 10+sched.IntN(100), sched.Uint64(), sched.IntN(100)
		writeFailRoll, writeFailWho := sched.IntN(1000), c.ids[sched.IntN(len(c.ids))]
		proposeRoll, proposeWho, toLeaderRoll := sched.IntN(100), c.ids[sched.IntN(len(c.ids))], sched.IntN(100)

		if crashRoll < 8 && c.members[crashWho].node != nil {
			c.crash(crashWho)
		}
		if restartRoll < 5 && c.members[restartWho].node == nil {
			c.restart(restartWho)
		}
		if writeFailRoll < 5 && c.members[writeFailWho].node != nil {
			c.members[writeFailWho].store.failNextWrite = true
		}
		if c.now >= partitionUntil {
			c.net.partition, c.net.oneWay = nil, false
			if partitionRoll < 10 {
				c.net.oneWay = oneWayRoll < 30
				c.net.partition = make(map[uint64]bool, len(c.ids))
				for i, id := range c.ids {
					c.net.partition[id] = partitionMask&(1<<i) != 0
				}
				partitionUntil = c.now + uint64(partitionLength)
			}
		}
		if leader := c.leader(); toLeaderRoll < 60 && leader != 0 {
			proposeWho = leader
		}
		if proposeRoll < 30 && c.members[proposeWho].node != nil {
			p := &simProposal{member: proposeWho, payload: fmt.Sprintf("s%d-p%d", seed, len(proposals))}
			h, err := c.members[proposeWho].node.ProposeAsync([]byte(p.payload))
			p.handle, p.refused = h, err
			proposals = append(proposals, p)
		}
		c.step()
	}

	// Heal: no faults, everyone up, then converge.
	c.net.faulty, c.net.partition = false, nil
	for _, id := range c.ids {
		c.members[id].store.failNextWrite = false
		if c.members[id].node == nil {
			c.restart(id)
		}
	}
	if !c.stepUntil(simConvergeSteps, func() bool { return c.converged() && allDone(proposals) }) {
		c.fatalf("did not converge within %d steps after healing: %s", simConvergeSteps, c.describe())
	}
	c.checkSameApplied()
	c.checkProposals(proposals)
	outcomes := make(map[string]int)
	for _, p := range proposals {
		err := p.refused
		if err == nil {
			_, err = p.handle.Result()
		}
		switch {
		case err == nil:
			outcomes["applied"]++
		case errors.Is(err, ErrNotLeader):
			outcomes["not-leader"]++
		default:
			outcomes[err.Error()]++
		}
	}
	restores := 0
	for _, id := range c.ids {
		restores += c.members[id].sm.restores
	}
	t.Logf("%d proposals %v; %d entries applied; %d snapshots delivered, %d state machine restores, %d write failures; %s",
		len(proposals), outcomes, len(c.members[c.ids[0]].sm.entries), c.net.snapshotsDelivered, restores,
		c.writeFailures, c.describe())
	return c
}

type simProposal struct {
	member  uint64
	payload string
	handle  *Proposal
	refused error // ProposeAsync's error
}

func allDone(proposals []*simProposal) bool {
	for _, p := range proposals {
		if p.refused != nil {
			continue
		}
		select {
		case <-p.handle.Done():
		default:
			return false
		}
	}
	return true
}

// checkProposals checks each proposal's outcome against the applied log of
// the first member (all members have the same, see checkSameApplied).
func (c *cluster) checkProposals(proposals []*simProposal) {
	at := make(map[string]uint64)
	for _, e := range c.members[c.ids[0]].sm.entries {
		if prev, dup := at[string(e.payload)]; dup {
			c.fatalf("payload %q applied twice, at %d and %d", e.payload, prev, e.index)
		}
		at[string(e.payload)] = e.index
	}
	for _, p := range proposals {
		index, applied := at[p.payload]
		if p.refused != nil {
			if applied {
				c.fatalf("proposal %q refused (%v) but applied at %d", p.payload, p.refused, index)
			}
			continue
		}
		got, err := p.handle.Result()
		switch {
		case err == nil:
			if !applied || index != got {
				c.fatalf("proposal %q reported applied at %d; in the log: %v at %d", p.payload, got, applied, index)
			}
		case errors.Is(err, ErrProposalDropped), errors.Is(err, ErrNotLeader), errors.Is(err, ErrBusy):
			if applied {
				c.fatalf("proposal %q failed with %v but applied at %d", p.payload, err, index)
			}
		case errors.Is(err, ErrStopped), errors.Is(err, ErrOutcomeUnknown), errors.Is(err, errInjectedWrite):
			// Either way; at most once is checked above.
		default:
			c.fatalf("proposal %q: unexpected error %v", p.payload, err)
		}
	}
}

// cluster is the in-process quorum of the simulation and the unit tests.
type cluster struct {
	t       testing.TB
	seed    uint64
	ids     []uint64
	members map[uint64]*member
	tweak   func(*NodeConfig)
	net     network
	now     uint64 // steps
	lives   uint64 // node lives started, for distinct incarnations
	// writeFailures counts nodes that died of an injected write failure.
	writeFailures int
	// trace hashes every message sent, in order (TestSimReplay).
	trace hash.Hash64
}

type member struct {
	id    uint64
	store *faultStore // "the disk": survives crashes
	sm    *testSM     // rebuilt at every restart
	node  *Node       // nil while crashed
	// leaderCalls and readyCalls count OnLeader and OnLeaderReady calls.
	leaderCalls, readyCalls int
}

func newCluster(t testing.TB, seed uint64, memberCount int, tweak func(*NodeConfig)) *cluster {
	c := &cluster{
		t:       t,
		seed:    seed,
		members: make(map[uint64]*member),
		tweak:   tweak,
		net:     network{rng: rand.New(rand.NewPCG(seed, 0x6e6574))},
		trace:   fnv.New64a(),
	}
	for i := range memberCount {
		id := uint64(i + 1)
		c.ids = append(c.ids, id)
		c.members[id] = &member{id: id, store: &faultStore{MemoryStorage: raft.NewMemoryStorage()}}
	}
	for _, id := range c.ids {
		c.restart(id)
	}
	t.Cleanup(func() {
		for _, id := range c.ids {
			if m := c.members[id]; m.node != nil {
				m.node.Stop()
			}
		}
	})
	return c
}

func (c *cluster) fatalf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("seed %d (replay: go test ./quorum -run TestSim -sim.seed=%d), step %d: %s",
		c.seed, c.seed, c.now, fmt.Sprintf(format, args...))
}

// restart builds member id's node from its store with an empty state machine.
func (c *cluster) restart(id uint64) {
	m := c.members[id]
	c.lives++
	m.sm = &testSM{}
	cfg := NodeConfig{
		ID:            id,
		Voters:        c.ids,
		Store:         m.store,
		SM:            m.sm,
		Send:          func(msgs []*raftpb.Message) { c.net.send(c, msgs) },
		Incarnation:   c.seed<<20 + c.lives,
		OnLeader:      func(term, leader uint64) { m.leaderCalls++ },
		OnLeaderReady: func(term uint64) { m.readyCalls++ },
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	n, err := NewNode(cfg)
	if err != nil {
		c.fatalf("restart %d: %v", id, err)
	}
	m.node = n
}

// crash stops member id's node; its store stays.
func (c *cluster) crash(id uint64) {
	m := c.members[id]
	m.node.Stop()
	m.node = nil
}

// step advances virtual time by one step.
func (c *cluster) step() {
	c.now++
	for _, id := range c.ids {
		if n := c.members[id].node; n != nil {
			n.Tick()
		}
	}
	c.net.deliver(c)
	for _, id := range c.ids {
		if n := c.members[id].node; n != nil {
			if err := n.Process(); err != nil {
				if !errors.Is(err, errInjectedWrite) {
					c.fatalf("member %d stopped: %v", id, err)
				}
				// The node died halfway through persisting a Ready: a crash.
				c.writeFailures++
				c.crash(id)
			}
		}
	}
}

// stepUntil steps until cond holds, at most maxSteps times.
func (c *cluster) stepUntil(maxSteps int, cond func() bool) bool {
	for range maxSteps {
		if cond() {
			return true
		}
		c.step()
	}
	return cond()
}

// leader returns the live member that leads the highest term, or 0.
func (c *cluster) leader() uint64 {
	var leader, term uint64
	for _, id := range c.ids {
		if n := c.members[id].node; n != nil {
			if st := n.Status(); st.Role == RoleLeader && st.Term > term {
				leader, term = id, st.Term
			}
		}
	}
	return leader
}

// converged: one ready leader, everyone live, every log fully replicated and
// applied.
func (c *cluster) converged() bool {
	leader := c.leader()
	if leader == 0 {
		return false
	}
	lst := c.members[leader].node.Status()
	if !lst.LeaderReady {
		return false
	}
	for _, id := range c.ids {
		n := c.members[id].node
		if n == nil {
			return false
		}
		st := n.Status()
		if st.Applied != lst.Commit || lst.Match[id] != lst.Match[leader] || st.Leader != leader {
			return false
		}
	}
	return lst.Commit == lst.Match[leader]
}

func (c *cluster) describe() string {
	s := fmt.Sprintf("leader %d", c.leader())
	for _, id := range c.ids {
		if n := c.members[id].node; n == nil {
			s += fmt.Sprintf("; %d down", id)
		} else {
			st := n.Status()
			s += fmt.Sprintf("; %d %s term %d commit %d applied %d snapshot %d match %v",
				id, st.Role, st.Term, st.Commit, st.Applied, st.SnapshotIndex, st.Match)
		}
	}
	return s
}

// checkSameApplied checks that every member applied the same entries.
func (c *cluster) checkSameApplied() {
	first := c.members[c.ids[0]].sm
	for _, id := range c.ids[1:] {
		sm := c.members[id].sm
		if len(sm.entries) != len(first.entries) {
			c.fatalf("member %d applied %d entries, member %d %d", id, len(sm.entries), c.ids[0], len(first.entries))
		}
		for i, e := range sm.entries {
			f := first.entries[i]
			if e.index != f.index || e.term != f.term || string(e.payload) != string(f.payload) {
				c.fatalf("member %d applied %d/%d %q where member %d applied %d/%d %q",
					id, e.index, e.term, e.payload, c.ids[0], f.index, f.term, f.payload)
			}
		}
	}
}

// network is the fake network. When faulty it drops, duplicates, delays
// (1..delayMax steps) and reorders messages; a partition (true/false side
// per member) drops every message across sides, or with oneWay only those
// from the true side to the false side. Messages to a crashed member are
// dropped at delivery.
type network struct {
	rng              *rand.Rand
	faulty           bool
	dropPercent      int
	duplicatePercent int
	delayMax         int
	partition        map[uint64]bool
	oneWay           bool
	inflight         []inflightMessage
	// snapshotsDelivered counts MsgSnap deliveries.
	snapshotsDelivered int
}

type inflightMessage struct {
	at uint64 // step of delivery
	m  *raftpb.Message
}

// inflightMax bounds the messages on the fake wire; beyond it sends drop,
// as a transport's full queue would.
const inflightMax = 100000

func (nw *network) send(c *cluster, msgs []*raftpb.Message) {
	for _, m := range msgs {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			c.fatalf("marshal %v: %v", m.GetType(), err)
		}
		var step [8]byte
		binary.LittleEndian.PutUint64(step[:], c.now)
		c.trace.Write(step[:])
		c.trace.Write(b)
		copies := 1
		if nw.faulty {
			if nw.rng.IntN(100) < nw.dropPercent {
				copies = 0
			} else if nw.rng.IntN(100) < nw.duplicatePercent {
				copies = 2
			}
		}
		if copies == 0 || len(nw.inflight) >= inflightMax {
			c.reportFailedSnapshot(m)
			continue
		}
		for range copies {
			delay := uint64(1)
			if nw.faulty {
				delay += uint64(nw.rng.IntN(nw.delayMax))
			}
			// The wire carries bytes: the receiver gets its own copy.
			nw.inflight = append(nw.inflight, inflightMessage{at: c.now + delay, m: proto.Clone(m).(*raftpb.Message)})
		}
	}
}

func (nw *network) deliver(c *cluster) {
	var due []*raftpb.Message
	kept := nw.inflight[:0]
	for _, im := range nw.inflight {
		if im.at <= c.now {
			due = append(due, im.m)
		} else {
			kept = append(kept, im)
		}
	}
	nw.inflight = kept
	if nw.faulty {
		nw.rng.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	}
	for _, m := range due {
		to := c.members[m.GetTo()]
		cut := nw.partition != nil && nw.partition[m.GetFrom()] != nw.partition[m.GetTo()] &&
			(!nw.oneWay || nw.partition[m.GetFrom()])
		if to == nil || to.node == nil || cut || !to.node.Step(m) {
			c.reportFailedSnapshot(m)
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			nw.snapshotsDelivered++
			if from := c.members[m.GetFrom()]; from.node != nil {
				from.node.ReportSnapshot(m.GetTo(), false)
			}
		}
	}
}

// reportFailedSnapshot tells the sender of a lost MsgSnap, as a transport
// must.
func (c *cluster) reportFailedSnapshot(m *raftpb.Message) {
	if m.GetType() != raftpb.MsgSnap {
		return
	}
	if from := c.members[m.GetFrom()]; from != nil && from.node != nil {
		from.node.ReportSnapshot(m.GetTo(), true)
	}
}

// testSM records what is applied. Its snapshot is the whole record, so a
// member restored from a snapshot still shows the full sequence.
type testSM struct {
	entries  []smEntry
	index    uint64 // last applied or restored index
	restores int
}

type smEntry struct {
	index, term uint64
	payload     []byte
}

func (sm *testSM) Apply(index, term uint64, payload []byte) error {
	if index <= sm.index {
		return fmt.Errorf("apply %d after %d", index, sm.index)
	}
	sm.index = index
	sm.entries = append(sm.entries, smEntry{index: index, term: term, payload: slices.Clone(payload)})
	return nil
}

func (sm *testSM) Snapshot() ([]byte, error) {
	var b []byte
	b = binary.AppendUvarint(b, sm.index)
	for _, e := range sm.entries {
		b = binary.AppendUvarint(b, e.index)
		b = binary.AppendUvarint(b, e.term)
		b = binary.AppendUvarint(b, uint64(len(e.payload)))
		b = append(b, e.payload...)
	}
	return b, nil
}

func (sm *testSM) Restore(snap []byte, index uint64) error {
	errBad := errors.New("testSM: bad snapshot")
	uvarint := func() (uint64, error) {
		v, n := binary.Uvarint(snap)
		if n <= 0 {
			return 0, errBad
		}
		snap = snap[n:]
		return v, nil
	}
	last, err := uvarint()
	if err != nil {
		return err
	}
	var entries []smEntry
	for len(snap) > 0 {
		var e smEntry
		var size uint64
		if e.index, err = uvarint(); err != nil {
			return err
		}
		if e.term, err = uvarint(); err != nil {
			return err
		}
		if size, err = uvarint(); err != nil {
			return err
		}
		if size > uint64(len(snap)) {
			return errBad
		}
		e.payload, snap = snap[:size:size], snap[size:]
		entries = append(entries, e)
	}
	if last > index {
		return fmt.Errorf("testSM: snapshot of index %d restored as %d", last, index)
	}
	sm.entries, sm.index = entries, index
	sm.restores++
	return nil
}

// faultStore is the simulation's disk: a MemoryStorage whose next write
// fails, without effect, when failNextWrite is set.
type faultStore struct {
	*raft.MemoryStorage
	failNextWrite bool
}

var errInjectedWrite = errors.New("sim: injected write failure")

func (s *faultStore) fail() bool {
	failed := s.failNextWrite
	s.failNextWrite = false
	return failed
}

func (s *faultStore) Append(entries []*raftpb.Entry) error {
	if len(entries) > 0 && s.fail() {
		return errInjectedWrite
	}
	return s.MemoryStorage.Append(entries)
}

func (s *faultStore) SetHardState(st *raftpb.HardState) error {
	if s.fail() {
		return errInjectedWrite
	}
	return s.MemoryStorage.SetHardState(st)
}

func (s *faultStore) ApplySnapshot(snap *raftpb.Snapshot) error {
	if s.fail() {
		return errInjectedWrite
	}
	return s.MemoryStorage.ApplySnapshot(snap)
}

func (s *faultStore) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	if s.fail() {
		return nil, errInjectedWrite
	}
	return s.MemoryStorage.CreateSnapshot(i, cs, data)
}

func (s *faultStore) Compact(compactIndex uint64) error {
	if s.fail() {
		return errInjectedWrite
	}
	return s.MemoryStorage.Compact(compactIndex)
}
