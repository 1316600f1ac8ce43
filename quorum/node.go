package quorum

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ringbroker/ringbroker/invariants"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// StateMachine is what the node applies the committed log to. The node calls
// it from the loop goroutine only, never concurrently.
//
// The state machine handed to NewNode must be empty: if the store holds a
// snapshot, the node first calls Restore with it, then Apply for every
// committed entry after it, so after a restart the state machine is rebuilt
// from the store (the metadata image is such an in-memory state machine).
type StateMachine interface {
	// Apply applies the payload of the committed normal entry at index (of
	// raft term term). It is called in log order, exactly once per committed
	// entry that carries a proposal over the life of this state machine. The
	// empty entries raft appends when a leader takes office and
	// configuration changes are not given to it. A non-nil error stops the
	// node.
	Apply(index, term uint64, payload []byte) error
	// Snapshot returns the state as of the last applied entry. The node calls
	// it every SnapshotEvery applied entries; the bytes are stored in the log
	// store and sent to followers that fall behind the compacted log.
	Snapshot() ([]byte, error)
	// Restore replaces the whole state with snap, the result of Snapshot on
	// some replica at log index index. It is called at start when the store
	// holds a snapshot, and when the leader sends one to this follower.
	Restore(snap []byte, index uint64) error
}

// NodeConfig configures a Node. ID, Store, Send and SM are required, and
// Voters when the store is empty.
type NodeConfig struct {
	// ID is this node's raft id (non-zero).
	ID uint64
	// Voters and Learners are the initial configuration. They are used only
	// when the store is empty (no hard state, no entries, no snapshot): the
	// node then stores a snapshot at index 0 that carries only this
	// configuration (the way the raft library bootstraps its own tests), so
	// every member must be given the same lists. Later the configuration
	// comes from the store.
	Voters   []uint64
	Learners []uint64
	// Bootstrap, when set, makes an empty store a dynamic quorum (KIP-853)
	// whose initial voters are these members, with their controller
	// endpoints (Kafka's format --standalone or --initial-controllers):
	// the node writes raft's bootstrap entries, one configuration change
	// per member carrying its endpoint, which every member must write
	// identically. Ignored when the store is not empty.
	Bootstrap []Member
	// Join, with an empty store and no Bootstrap, starts the node with an
	// empty configuration: it neither votes nor campaigns until the leader
	// of an existing dynamic quorum adds it (as a learner, then perhaps a
	// voter) and sends it the log.
	Join bool
	// OnMembers, if set, is called from the loop after a configuration
	// change of a dynamic quorum is applied (and after a snapshot or the
	// start restored one), with the configuration and every member's
	// endpoint. It must not block.
	OnMembers func(m Membership)
	// Store is the raft log storage. Every write is durable when it returns.
	Store LogStore
	// Send hands outgoing messages to the transport. It is called from the
	// loop and must not block: a transport queues per peer and drops when a
	// queue is full (raft retransmits). The transport owns the messages and
	// must not modify them. For a MsgSnap it must call ReportSnapshot once the
	// snapshot was delivered or failed, and it should call ReportUnreachable
	// when a peer cannot be reached.
	Send func(msgs []*raftpb.Message)
	// SM is the state machine the committed log is applied to.
	SM StateMachine

	// ElectionTick and HeartbeatTick are in ticks (defaults 10 and 1).
	ElectionTick  int
	HeartbeatTick int
	// SnapshotEvery is the number of applied entries between two snapshots
	// (default 10000).
	SnapshotEvery uint64
	// SnapshotKeep is the number of entries kept in the log below a new
	// snapshot, so a follower a little behind catches up from the log
	// instead of receiving a whole snapshot (default SnapshotEvery/2).
	SnapshotKeep uint64
	// MaxInflight is the number of append messages in flight to one follower
	// (default 256); MaxSizePerMsg the bytes of entries in one append message
	// (default 1 MiB); MaxUncommittedBytes the bytes of uncommitted entries
	// the leader accepts before refusing proposals (default 64 MiB).
	MaxInflight         int
	MaxSizePerMsg       uint64
	MaxUncommittedBytes uint64
	// InboxMax and InboxBytesMax bound the received messages waiting for
	// the loop, in count (default 1024) and encoded bytes (default 64 MiB);
	// Step drops beyond them. ProposalsMax bounds the proposals queued
	// or waiting to be applied (default 1024); ProposeAsync refuses beyond
	// it with ErrBusy.
	InboxMax      int
	InboxBytesMax int
	ProposalsMax  int

	// OnLeader, if set, is called from the loop when the leader this node
	// knows of changes: leader is the new leader's id, or 0 when none is
	// known (an election is running), and term the current term.
	OnLeader func(term, leader uint64)
	// OnLeaderReady, if set, is called from the loop when this node, as
	// leader of term, has applied the first entry of its own term, and so
	// every entry of previous terms: from then on the state machine is
	// current and a controller may act on it. Status.LeaderReady says the
	// same.
	OnLeaderReady func(term uint64)

	// Now is the wall clock the leader stamps its followers' fetch and
	// caught-up times with (Status.Replicas; default time.Now). Only those
	// timestamps read it: raft itself runs on ticks.
	Now func() time.Time

	// Logger receives the node's and raft's log lines (default: none).
	Logger *zap.Logger
	// Incarnation, if non-zero, is the incarnation written in this node's
	// proposal envelopes instead of a random one. Only the deterministic
	// simulation sets it; two lives of a node must never share it.
	Incarnation uint64
}

// Role is a node's raft role.
type Role string

// The roles of Status.Role.
const (
	RoleFollower     Role = "follower"
	RolePreCandidate Role = "pre-candidate"
	RoleCandidate    Role = "candidate"
	RoleLeader       Role = "leader"
)

// Status is what a Node last published about itself, for DescribeQuorum and
// tests.
type Status struct {
	ID     uint64
	Role   Role
	Leader uint64 // 0: unknown
	Term   uint64
	// Commit is the highest index known committed, Applied the highest index
	// applied to the state machine, SnapshotIndex the index of the store's
	// latest snapshot.
	Commit        uint64
	Applied       uint64
	SnapshotIndex uint64
	// Voters and Learners are the current configuration, sorted.
	Voters   []uint64
	Learners []uint64
	// Match is, on the leader only, the highest log index known replicated
	// on each member (the leader included).
	Match map[uint64]uint64
	// LeaderReady: this node is leader and has applied the first entry of
	// its term (see NodeConfig.OnLeaderReady).
	LeaderReady bool
	// Endpoints are the members' controller endpoints of a dynamic quorum
	// (nil for a static one); DirectoryIDs the directory ids its log names
	// (KIP-853; absent: unknown).
	Endpoints    map[uint64]string
	DirectoryIDs map[uint64][16]byte
	// RecentActive is, on the leader only, whether each member was heard
	// from within the last election timeout.
	RecentActive map[uint64]bool
	// Replicas is, on the leader only, what it saw of each other member in
	// its current term (Kafka's LeaderState.ReplicaState): absent until
	// the member first answered it.
	Replicas map[uint64]ReplicaTimes
}

// ReplicaTimes is when the leader last heard from a member and when the
// member was last caught up with the leader's log, in milliseconds since
// the epoch (NodeConfig.Now), -1 when not yet.
//
// A raft follower's answer to an append or a heartbeat (MsgAppResp,
// MsgHeartbeatResp) is what a Kafka follower's Fetch is to a KRaft leader:
// LastFetchMs is when the last one arrived. LastCaughtUpMs follows Kafka's
// rule (ReplicaState.updateFollowerState): at an answer, if the member's
// match index reached the leader's last index, it is caught up now; else,
// if it reached the leader's last index as of the member's previous
// answer, it was caught up at that previous answer.
type ReplicaTimes struct {
	LastFetchMs    int64
	LastCaughtUpMs int64
	// leaderLastAtFetch is the leader's last index when the previous
	// answer arrived (0: none yet).
	leaderLastAtFetch uint64
}

// Errors returned by Node.
var (
	// ErrNotLeader: the proposal was refused because this node is not the
	// leader. The returned error is a *NotLeaderError naming the leader this
	// node knows of.
	ErrNotLeader = errors.New("quorum: not the leader")
	// ErrProposalDropped: the proposal will never be applied (leadership
	// moved before it committed, or raft refused it during a leadership
	// transfer or because too many bytes are uncommitted). Retrying is safe.
	ErrProposalDropped = errors.New("quorum: proposal dropped, not applied")
	// ErrOutcomeUnknown: the node lost track of the proposal (a snapshot
	// from the leader replaced the log that held it): it may or may not
	// have been applied.
	ErrOutcomeUnknown = errors.New("quorum: proposal outcome unknown")
	// ErrBusy: ProposalsMax proposals are already waiting.
	ErrBusy = errors.New("quorum: too many proposals waiting")
	// ErrStopped: the node was stopped.
	ErrStopped = errors.New("quorum: node stopped")
	// ErrConfChangePending: a configuration change proposed here is not
	// applied yet (one change at a time).
	ErrConfChangePending = errors.New("quorum: a configuration change is still in progress")
)

// NotLeaderError is the error of a proposal made on a node that is not the
// leader. It matches ErrNotLeader with errors.Is.
type NotLeaderError struct {
	Leader uint64 // 0: no leader known
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("quorum: not the leader (leader %d)", e.Leader)
}

// Is reports whether target is ErrNotLeader.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Proposal is a proposal in flight, returned by ProposeAsync.
type Proposal struct {
	sequence uint64
	conf     *raftpb.ConfChangeV2 // a configuration change, not a payload
	data     []byte               // enveloped
	term     uint64               // loop-owned: the leader term it was appended in
	done     chan struct{}
	index    uint64
	err      error
}

// Done is closed once the proposal is applied locally or failed.
func (p *Proposal) Done() <-chan struct{} { return p.done }

// Result returns the applied entry's index, or why the proposal failed. It
// is valid once Done is closed.
func (p *Proposal) Result() (index uint64, err error) {
	select {
	case <-p.done:
		return p.index, p.err
	default:
		return 0, errors.New("quorum: proposal still in flight")
	}
}

// Node runs this process's member of the metadata quorum. See the comment at
// the top of node_loop.go for the loop and its concurrency rules.
type Node struct {
	cfg         NodeConfig
	incarnation uint64
	log         *zap.Logger

	mu      sync.Mutex
	pending pendingInput
	// proposalsOpen counts proposals queued or waiting (<= ProposalsMax).
	proposalsOpen int
	stopped       bool
	running       bool // Run was called
	status        Status
	err           error // the fatal error that stopped the loop
	stopc         chan struct{}
	donec         chan struct{} // closed when Run's goroutine returns
	wakec         chan struct{} // capacity 1: pending input for Run's goroutine

	// nextSequence numbers the proposals (guarded by mu: proposals come
	// from any goroutine).
	nextSequence uint64

	// Loop-owned.
	rn            *raft.RawNode
	waiting       map[uint64]*Proposal // by sequence; appended, not yet applied
	confState     *raftpb.ConfState
	applied       uint64
	appliedTerm   uint64 // term of the entry at applied
	snapshotIndex uint64
	// endpoints are a dynamic quorum's member endpoints (empty: static),
	// directoryIDs the members' directory ids the log names (absent:
	// unknown).
	endpoints    map[uint64]string
	directoryIDs map[uint64][16]byte
	// confWaiting is the configuration change proposed here and not yet
	// applied (at most one).
	confWaiting *Proposal
	// snapshotNow: a member was added; snapshot at the end of this Ready.
	snapshotNow bool
	role        raft.StateType
	term        uint64 // raft's term when the current Ready was taken
	// leader and leaderTerm are what OnLeader was last told.
	leader, leaderTerm uint64
	// leaderReadyTerm is the term in which this node, as leader, applied
	// the first entry of its term.
	leaderReadyTerm uint64
	// replicas are, while leader, the members' fetch and caught-up times
	// in term replicasTerm (Status.Replicas); answered collects the
	// members that answered in the current round.
	replicas     map[uint64]ReplicaTimes
	replicasTerm uint64
	answered     []uint64
}

// pendingInput is the input other goroutines left for the loop. Each part is
// bounded: the inbox by InboxMax, the proposals by ProposalsMax, the reports
// by the number of distinct peers (reportsMax).
type pendingInput struct {
	ticks       int
	inbox       []*raftpb.Message
	inboxBytes  int
	proposals   []*Proposal
	unreachable map[uint64]struct{}
	snapshots   map[uint64]raft.SnapshotStatus
	transferTo  uint64
}

const reportsMax = 1024

// NewNode builds a node from cfg and its store: it bootstraps an empty
// store with the configured voters, restores the state machine from the
// store's snapshot, and starts raft where the store left off. Nothing runs
// until Run or Process is called.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.ID == 0 || cfg.Store == nil || cfg.Send == nil || cfg.SM == nil {
		return nil, errors.New("quorum: NodeConfig needs ID, Store, Send and SM")
	}
	if cfg.ElectionTick == 0 {
		cfg.ElectionTick = 10
	}
	if cfg.HeartbeatTick == 0 {
		cfg.HeartbeatTick = 1
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 10000
	}
	if cfg.SnapshotKeep == 0 {
		cfg.SnapshotKeep = cfg.SnapshotEvery / 2
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = 256
	}
	if cfg.MaxSizePerMsg == 0 {
		cfg.MaxSizePerMsg = 1 << 20
	}
	if cfg.MaxUncommittedBytes == 0 {
		cfg.MaxUncommittedBytes = 64 << 20
	}
	if cfg.InboxMax == 0 {
		cfg.InboxMax = 1024
	}
	if cfg.InboxBytesMax == 0 {
		cfg.InboxBytesMax = 64 << 20
	}
	if cfg.ProposalsMax == 0 {
		cfg.ProposalsMax = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	n := &Node{
		cfg:          cfg,
		incarnation:  cfg.Incarnation,
		log:          cfg.Logger.With(zap.Uint64("raft_id", cfg.ID)),
		stopc:        make(chan struct{}),
		donec:        make(chan struct{}),
		wakec:        make(chan struct{}, 1),
		nextSequence: 1,
		waiting:      make(map[uint64]*Proposal),
	}
	for n.incarnation == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("quorum: incarnation: %w", err)
		}
		n.incarnation = binary.LittleEndian.Uint64(b[:])
	}

	empty, err := n.storeEmpty()
	if err != nil {
		return nil, err
	}
	if empty && len(cfg.Bootstrap) == 0 && !cfg.Join {
		if err := n.bootstrapIfEmpty(); err != nil {
			return nil, err
		}
	}
	_, confState, err := cfg.Store.InitialState()
	if err != nil {
		return nil, fmt.Errorf("quorum: store initial state: %w", err)
	}
	n.confState = proto.Clone(raftpb.EnsureConfState(confState)).(*raftpb.ConfState)
	snap, err := cfg.Store.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("quorum: store snapshot: %w", err)
	}
	if index := snap.GetMetadata().GetIndex(); index > 0 {
		members, data, err := splitSnapshotMembers(snap.GetData())
		if err != nil {
			return nil, fmt.Errorf("quorum: the snapshot at %d: %w", index, err)
		}
		n.setMembers(members)
		if err := cfg.SM.Restore(data, index); err != nil {
			return nil, fmt.Errorf("quorum: restore the state machine from the snapshot at %d: %w", index, err)
		}
		n.applied, n.appliedTerm, n.snapshotIndex = index, snap.GetMetadata().GetTerm(), index
	}

	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTick,
		HeartbeatTick:             cfg.HeartbeatTick,
		Storage:                   cfg.Store,
		Applied:                   n.applied,
		MaxSizePerMsg:             cfg.MaxSizePerMsg,
		MaxUncommittedEntriesSize: cfg.MaxUncommittedBytes,
		MaxInflightMsgs:           cfg.MaxInflight,
		CheckQuorum:               true,
		PreVote:                   true,
		// Followers refuse proposals (ErrNotLeader) rather than forwarding
		// them: a forwarded MsgProp that the transport duplicates would be
		// appended twice, and the proposer could not tell a lost forward from
		// a slow one. The controller forwards requests to the leader at the
		// RPC level, as KRaft brokers do.
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{n.log.Sugar()},
	})
	if err != nil {
		return nil, fmt.Errorf("quorum: raft: %w", err)
	}
	n.rn = rn
	if empty && len(cfg.Bootstrap) > 0 {
		peers := make([]raft.Peer, len(cfg.Bootstrap))
		for i, m := range cfg.Bootstrap {
			peers[i] = raft.Peer{ID: m.ID, Context: membersContext([]Member{m}, nil)}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, fmt.Errorf("quorum: bootstrap the dynamic quorum: %w", err)
		}
	}
	n.publishStatus()
	if len(n.endpoints) > 0 {
		n.notifyMembers()
	}
	return n, nil
}

// storeEmpty reports whether the store holds nothing yet (no hard state,
// no entries, no configuration).
func (n *Node) storeEmpty() (bool, error) {
	hardState, confState, err := n.cfg.Store.InitialState()
	if err != nil {
		return false, fmt.Errorf("quorum: store initial state: %w", err)
	}
	last, err := n.cfg.Store.LastIndex()
	if err != nil {
		return false, fmt.Errorf("quorum: store last index: %w", err)
	}
	return raft.IsEmptyHardState(hardState) && last == 0 &&
		len(confState.GetVoters()) == 0 && len(confState.GetLearners()) == 0, nil
}

// bootstrapIfEmpty stores the configured initial configuration in an empty
// store, as a snapshot at index 0 with no data.
func (n *Node) bootstrapIfEmpty() error {
	store := n.cfg.Store
	hardState, confState, err := store.InitialState()
	if err != nil {
		return fmt.Errorf("quorum: store initial state: %w", err)
	}
	last, err := store.LastIndex()
	if err != nil {
		return fmt.Errorf("quorum: store last index: %w", err)
	}
	if !raft.IsEmptyHardState(hardState) || last != 0 ||
		len(confState.GetVoters()) != 0 || len(confState.GetLearners()) != 0 {
		return nil
	}
	if len(n.cfg.Voters) == 0 {
		return errors.New("quorum: empty store and no voters to bootstrap with")
	}
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		ConfState: &raftpb.ConfState{Voters: slices.Clone(n.cfg.Voters), Learners: slices.Clone(n.cfg.Learners)},
		Index:     new(uint64(0)),
		Term:      new(uint64(0)),
	}}
	if err := store.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("quorum: bootstrap the configuration: %w", err)
	}
	return nil
}

// Run starts the loop goroutine, ticking raft every tickInterval. Stop ends
// it. REQUIRES: Run is called at most once and Process never.
func (n *Node) Run(tickInterval time.Duration) {
	n.mu.Lock()
	if n.running {
		n.mu.Unlock()
		panic("quorum: Node.Run called twice")
	}
	n.running = true
	n.mu.Unlock()
	go func() {
		defer close(n.donec)
		ticker := time.NewTicker(tickInterval)
		defer ticker.Stop()
		for {
			select {
			case <-n.stopc:
				return
			case <-ticker.C:
				n.rn.Tick()
			case <-n.wakec:
			}
			if err := n.process(); err != nil {
				return
			}
		}
	}()
}

// Process runs one round of the loop on the caller's goroutine: it takes the
// pending input (ticks, messages, proposals, reports) and handles every
// Ready. The deterministic simulation drives nodes with Tick, Step and
// Process. It returns the fatal error that stopped the node, if any.
// REQUIRES: Run was not called; calls do not overlap.
func (n *Node) Process() error {
	n.mu.Lock()
	running, stopped, err := n.running, n.stopped, n.err
	n.mu.Unlock()
	if running {
		panic("quorum: Node.Process called on a running node")
	}
	if err != nil {
		return err
	}
	if stopped {
		return ErrStopped
	}
	return n.process()
}

// Tick advances raft's clock by one tick at the next round of the loop.
// Run ticks by itself; tests and the simulation call Tick then Process.
func (n *Node) Tick() {
	n.mu.Lock()
	n.pending.ticks++
	n.mu.Unlock()
	n.wake()
}

// Step queues a message received from a peer; the node owns it from then
// on. It never blocks: when the inbox is full (InboxMax, InboxBytesMax) the
// message is dropped (raft retransmits) and Step returns false. A single
// message larger than InboxBytesMax is still taken into an empty inbox, so a
// snapshot bigger than the bound is not refused forever.
func (n *Node) Step(m *raftpb.Message) bool {
	size := proto.Size(m)
	n.mu.Lock()
	if n.stopped || len(n.pending.inbox) >= n.cfg.InboxMax ||
		(len(n.pending.inbox) > 0 && n.pending.inboxBytes+size > n.cfg.InboxBytesMax) {
		n.mu.Unlock()
		return false
	}
	n.pending.inbox = append(n.pending.inbox, m)
	n.pending.inboxBytes += size
	n.mu.Unlock()
	n.wake()
	return true
}

// ReportUnreachable tells raft that the last messages to peer id were not
// delivered, so the leader probes it again instead of streaming.
func (n *Node) ReportUnreachable(id uint64) {
	n.mu.Lock()
	if n.pending.unreachable == nil {
		n.pending.unreachable = make(map[uint64]struct{})
	}
	if len(n.pending.unreachable) < reportsMax {
		n.pending.unreachable[id] = struct{}{}
	}
	n.mu.Unlock()
	n.wake()
}

// ReportSnapshot tells raft whether the snapshot sent to peer id arrived
// (failed false) or not. The transport must call it for every MsgSnap: until
// it does, the leader sends that follower nothing else.
func (n *Node) ReportSnapshot(id uint64, failed bool) {
	status := raft.SnapshotFinish
	if failed {
		status = raft.SnapshotFailure
	}
	n.mu.Lock()
	if n.pending.snapshots == nil {
		n.pending.snapshots = make(map[uint64]raft.SnapshotStatus)
	}
	if _, ok := n.pending.snapshots[id]; ok || len(n.pending.snapshots) < reportsMax {
		n.pending.snapshots[id] = status
	}
	n.mu.Unlock()
	n.wake()
}

// TransferLeadership asks this node, if leader, to hand leadership to the
// member to (for a controlled shutdown). It returns at once; OnLeader and
// Status show the outcome. Raft refuses proposals while the transfer runs
// and gives up after an election timeout.
func (n *Node) TransferLeadership(to uint64) {
	n.mu.Lock()
	n.pending.transferTo = to
	n.mu.Unlock()
	n.wake()
}

// Propose proposes data and returns once it is applied locally, with the
// index of its entry. It fails with ErrNotLeader (a *NotLeaderError) on a
// follower, ErrProposalDropped or ErrOutcomeUnknown (see them), ErrBusy,
// ErrStopped, the fatal error that stopped the node (outcome unknown), or
// ctx's error: after a ctx error the proposal may still be applied later.
//
// Only the leader takes proposals: followers refuse them rather than
// forwarding them through raft (see DisableProposalForwarding in NewNode).
// The payload travels in an envelope (envelope.go) naming this node, its
// incarnation and a sequence number, by which the loop recognises the entry
// when it applies it. A proposal that was appended in term T but not yet
// applied when an entry of a later term is applied has been overwritten (log
// terms never decrease along the log), so it fails with ErrProposalDropped.
func (n *Node) Propose(ctx context.Context, data []byte) (uint64, error) {
	p, err := n.ProposeAsync(data)
	if err != nil {
		return 0, err
	}
	select {
	case <-p.done:
		return p.index, p.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// newProposalLocked numbers a new proposal, or says why none may be made
// (stopped, failed, or ProposalsMax open). REQUIRES: n.mu held.
func (n *Node) newProposalLocked() (*Proposal, error) {
	if n.stopped {
		return nil, ErrStopped
	}
	if n.err != nil {
		return nil, n.err
	}
	if n.proposalsOpen >= n.cfg.ProposalsMax {
		return nil, ErrBusy
	}
	p := &Proposal{sequence: n.nextSequence, done: make(chan struct{})}
	n.nextSequence++
	return p, nil
}

// ProposeAsync queues a proposal of data and returns at once; the
// Proposal's Done channel closes when it is applied or failed. The
// simulation uses it where the goroutine that would wait also drives the loop.
func (n *Node) ProposeAsync(data []byte) (*Proposal, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p, err := n.newProposalLocked()
	if err != nil {
		return nil, err
	}
	p.data = appendEnvelope(make([]byte, 0, envelopeHeaderMax+len(data)), envelope{
		proposer: n.cfg.ID, incarnation: n.incarnation, sequence: p.sequence, payload: data,
	})
	n.proposalsOpen++
	n.pending.proposals = append(n.pending.proposals, p)
	n.wake()
	return p, nil
}

// ProposeConfChange proposes a configuration change of a dynamic quorum
// and returns once it is applied here. adds names the endpoints of the
// members the change adds (carried in the entry, so every node learns
// them). Only one change proposed on this node may be in flight
// (ErrConfChangePending); raft itself refuses a change while one is
// uncommitted. Errors as Propose's; a change raft dropped (a leadership
// change) fails when an entry of a later term applies, or with ctx.
func (n *Node) ProposeConfChange(ctx context.Context, changes []*raftpb.ConfChangeSingle, adds []Member) (uint64, error) {
	p, err := n.ProposeConfChangeAsync(changes, adds)
	if err != nil {
		return 0, err
	}
	select {
	case <-p.done:
		return p.index, p.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// ProposeConfChangeAsync queues a configuration change and returns at
// once, as ProposeAsync does for a payload.
func (n *Node) ProposeConfChangeAsync(changes []*raftpb.ConfChangeSingle, adds []Member) (*Proposal, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p, err := n.newProposalLocked()
	if err != nil {
		return nil, err
	}
	nonce := binary.AppendUvarint(binary.AppendUvarint(nil, n.incarnation), p.sequence)
	p.conf = &raftpb.ConfChangeV2{
		Transition: raftpb.ConfChangeTransitionAuto.Enum(),
		Changes:    changes,
		Context:    membersContext(adds, nonce),
	}
	n.proposalsOpen++
	n.pending.proposals = append(n.pending.proposals, p)
	n.wake()
	return p, nil
}

// Status returns what the node last published: after every loop round.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.status
	st.Voters = slices.Clone(st.Voters)
	st.Learners = slices.Clone(st.Learners)
	if st.Match != nil {
		match := make(map[uint64]uint64, len(st.Match))
		for id, m := range st.Match {
			match[id] = m
		}
		st.Match = match
	}
	if st.Endpoints != nil {
		st.Endpoints = maps.Clone(st.Endpoints)
	}
	if st.DirectoryIDs != nil {
		st.DirectoryIDs = maps.Clone(st.DirectoryIDs)
	}
	if st.RecentActive != nil {
		st.RecentActive = maps.Clone(st.RecentActive)
	}
	if st.Replicas != nil {
		st.Replicas = maps.Clone(st.Replicas)
	}
	return st
}

// Err returns the fatal error that stopped the loop, or nil.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Stop ends the loop and fails every queued or waiting proposal with
// ErrStopped. It waits for Run's goroutine. In the Process mode it must be
// called by the goroutine that calls Process. The store is left as it is.
func (n *Node) Stop() {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	n.stopped = true
	close(n.stopc)
	running := n.running
	n.mu.Unlock()
	if running {
		<-n.donec
	}
	n.failAll(ErrStopped)
}

func (n *Node) wake() {
	select {
	case n.wakec <- struct{}{}:
	default:
	}
}

// failAll fails every proposal, queued or waiting. REQUIRES: the loop is not
// running (Stop, or the loop itself on a fatal error).
func (n *Node) failAll(err error) {
	n.mu.Lock()
	queued := n.pending.proposals
	n.pending.proposals = nil
	n.mu.Unlock()
	for _, p := range queued {
		n.finish(p, 0, err)
	}
	for seq, p := range n.waiting {
		delete(n.waiting, seq)
		n.finish(p, 0, err)
	}
	if p := n.confWaiting; p != nil {
		n.confWaiting = nil
		n.finish(p, 0, err)
	}
}

// finish completes p. Loop-owned (or after the loop ended).
func (n *Node) finish(p *Proposal, index uint64, err error) {
	p.index, p.err = index, err
	close(p.done)
	n.mu.Lock()
	n.proposalsOpen--
	if invariants.Enabled {
		invariants.Check(n.proposalsOpen >= 0, "raft %d: %d proposals open", n.cfg.ID, n.proposalsOpen)
	}
	n.mu.Unlock()
}

// AppliedEntry is one applied entry's payload, as the state machine got it.
type AppliedEntry struct {
	Index, Term uint64
	Payload     []byte
}

// ReadApplied serves an observer (a node following the quorum without
// voting): the payloads of the entries applied here from index from on, up
// to maxBytes of payload (at least one entry when there is one); entries
// without a payload (a leader's empty entry, configuration changes) are
// skipped but counted, so next is where to read from next time. When from
// is below the store's first index the entries are gone: snap is the
// store's newest snapshot instead (its data is what StateMachine.Snapshot
// returned), to restore before reading on from its index + 1.
func (n *Node) ReadApplied(from, maxBytes uint64) (entries []AppliedEntry, next uint64, snap *raftpb.Snapshot, err error) {
	applied := n.Status().Applied
	first, err := n.cfg.Store.FirstIndex()
	if err != nil {
		return nil, from, nil, err
	}
	if from < first {
		s, err := n.storeSnapshot()
		if err != nil {
			return nil, from, nil, err
		}
		return nil, s.GetMetadata().GetIndex() + 1, s, nil
	}
	if from > applied {
		return nil, from, nil, nil
	}
	ents, err := n.cfg.Store.Entries(from, applied+1, maxBytes)
	if errors.Is(err, raft.ErrCompacted) {
		s, err := n.storeSnapshot()
		if err != nil {
			return nil, from, nil, err
		}
		return nil, s.GetMetadata().GetIndex() + 1, s, nil
	}
	if err != nil {
		return nil, from, nil, err
	}
	next = from
	for _, e := range ents {
		next = e.GetIndex() + 1
		if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		env, err := decodeEnvelope(e.GetData())
		if err != nil {
			return nil, from, nil, fmt.Errorf("quorum: entry %d: %w", e.GetIndex(), err)
		}
		entries = append(entries, AppliedEntry{Index: e.GetIndex(), Term: e.GetTerm(), Payload: env.payload})
	}
	return entries, next, nil, nil
}

// storeSnapshot is the store's newest snapshot with its data as the state
// machine wrote it (a dynamic quorum's member list taken off).
func (n *Node) storeSnapshot() (*raftpb.Snapshot, error) {
	s, err := n.cfg.Store.Snapshot()
	if err != nil {
		return nil, err
	}
	_, data, err := splitSnapshot(s.GetData())
	if err != nil {
		return nil, err
	}
	if len(data) == len(s.GetData()) {
		return s, nil
	}
	out := proto.Clone(s).(*raftpb.Snapshot)
	out.Data = data
	return out, nil
}
