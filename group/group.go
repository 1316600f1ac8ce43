// Package group is the consumer group coordinator of the classic Kafka group
// protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) and the committed
// offsets store, as an I/O-free state machine with injected time.
//
// The Coordinator never reads a clock, never sleeps and never does I/O:
// every entry point takes `now`, delayed answers (JoinGroup and SyncGroup
// long-polls) are callbacks it calls later from Join/Sync/Leave/Tick, and
// records to persist (group metadata, offset tombstones) leave through
// Config.Persist. The broker's glue (broker/group_coordinator.go) owns the lock,
// the timer and the __consumer_offsets log; tests (testdata/*.txt) drive it
// step by step.
//
// States follow Apache Kafka's GroupMetadata:
//
//	Empty ──join──► PreparingRebalance ──all joined / rebalance timeout──► CompletingRebalance
//	  ▲                 ▲    │ no members left                                  │ leader SyncGroup
//	  └─────────────────┼────┘                                                  ▼
//	                    └──────── member joins/leaves/expires/changes ──────── Stable
//	DeleteGroups on Empty ──► Dead (removed)
//
// Concurrency: a Coordinator is not safe for concurrent use; the caller
// serialises every call (the broker holds one mutex around it, never across
// I/O). Callbacks (join/sync replies, Persist) are called with that
// serialisation held and must not block or call back into the Coordinator.
//
// Sessions: a member's session runs from its last heartbeat, join, sync or
// offset commit, with its session timeout, in every state; a member waiting
// on a JoinGroup or SyncGroup answer is kept alive, and its session restarts
// when the answer (including REBALANCE_IN_PROGRESS) is sent. Each expiry is
// reported through Config.SessionExpired (testdata/session.txt).
//
// Bounds: members (including pending KIP-394 members) per group are capped
// at Config.MaxMembers (default 1000, GROUP_MAX_SIZE_REACHED beyond; Kafka's
// group.max.size defaults to Integer.MAX_VALUE, which would let a join storm
// exhaust memory), and the number of groups at Config.MaxGroups.
package group

import (
	"container/heap"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ringbroker/ringbroker/invariants"
)

// State is a group's state.
type State int8

// Group states, as Kafka names them.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

// String returns Kafka's name of the state (DescribeGroups, ListGroups).
func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	default:
		return "Dead"
	}
}

// ParseState parses Kafka's state name (case-insensitive, as ListGroups v4
// filters compare).
func ParseState(s string) (State, bool) {
	for st := Empty; st <= Dead; st++ {
		if equalFold(st.String(), s) {
			return st, true
		}
	}
	return Dead, false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Defaults for the Config bounds.
const (
	DefaultMaxMembers = 1000
	DefaultMaxGroups  = 100000
)

// Config configures a Coordinator.
type Config struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: an Empty
	// group's first rebalance waits this long (extended by each new member,
	// up to the rebalance timeout) for more members.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound a member's session
	// timeout (group.min/max.session.timeout.ms).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// MaxMembers bounds members (and pending members) per group;
	// 0 means DefaultMaxMembers.
	MaxMembers int
	// MaxGroups bounds the number of groups; 0 means DefaultMaxGroups.
	MaxGroups int
	// NewMemberID returns a fresh member id for clientID; nil uses
	// clientID + "-" + a counter (deterministic, for tests). The broker
	// injects random UUIDs as Kafka does.
	NewMemberID func(clientID string) string
	// Persist receives a __consumer_offsets record (Kafka's key/value
	// schemas; value nil is a tombstone) whenever group metadata changes
	// or offsets are deleted. Called synchronously; must not block. nil
	// discards.
	Persist func(groupID string, key, value []byte)
	// SessionExpired is told of every member removed because its session
	// ran out: when it last heartbeated (or joined, synced, committed) and
	// its session timeout, so an operator can tell an expiry from a leave.
	// Called synchronously; nil discards.
	SessionExpired func(groupID, memberID string, lastSeen time.Time, session time.Duration)
}

// Protocol is one (name, metadata) a member supports, in preference order.
type Protocol struct {
	Name     string
	Metadata []byte
}

// Member is one group member. Read-only for callers.
type Member struct {
	ID, InstanceID, ClientID, ClientHost string
	SessionTimeout, RebalanceTimeout     time.Duration
	ProtocolType                         string
	Protocols                            []Protocol
	Assignment                           []byte

	joinReply func(JoinResult)
	syncReply func(SyncResult)
	// deadline is when the member's session expires (heartbeat, join or
	// sync resets it). Members waiting on a join or sync answer are kept
	// alive, as in Kafka.
	deadline time.Time
	isNew    bool // joined during the current rebalance (for the new-member timeout)
}

// Metadata returns the member's metadata for protocol name.
func (m *Member) Metadata(name string) []byte {
	for _, p := range m.Protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// Group is one consumer group. Fields are read-only for callers.
type Group struct {
	ID           string
	State        State
	ProtocolType string
	Protocol     string // selected protocol of the current generation
	Generation   int32
	Leader       string
	// StateTimestamp is when the group last changed state (ms).
	StateTimestamp int64

	members map[string]*Member
	order   []string // member ids in join order (leader choice, output order)
	static  map[string]string
	// pending are member ids handed out with MEMBER_ID_REQUIRED and not yet
	// joined, with their expiry.
	pending map[string]time.Time
	// pendingMin is at or before the earliest pending expiry (it may be
	// stale-early after a pending member joined; expire recomputes it).
	pendingMin time.Time

	// rebalanceDeadline ends PreparingRebalance; initialDelayEnd ends the
	// initial delay of an Empty group's first rebalance.
	rebalanceDeadline time.Time
	initialDelayEnd   time.Time
	// syncDeadline ends CompletingRebalance when the leader never syncs.
	syncDeadline time.Time

	offsets map[TopicPartition]Offset
	// txnOffsets are transactional offsets (TxnOffsetCommit) written but
	// not yet decided, per producer id (txn_offsets.go).
	txnOffsets map[int64]map[TopicPartition]Offset

	heapIndex int
	nextCheck time.Time
}

// Members returns the members in join order.
func (g *Group) Members() []*Member {
	out := make([]*Member, 0, len(g.order))
	for _, id := range g.order {
		out = append(out, g.members[id])
	}
	return out
}

// Member returns the member with id or nil.
func (g *Group) Member(id string) *Member { return g.members[id] }

// NumMembers returns the number of members (not counting pending ones).
func (g *Group) NumMembers() int { return len(g.members) }

// Coordinator holds every group. See the package comment.
type Coordinator struct {
	cfg     Config
	groups  map[string]*Group
	timers  groupHeap
	idCount uint64
}

// New returns an empty Coordinator.
func New(cfg Config) *Coordinator {
	if cfg.MaxMembers <= 0 {
		cfg.MaxMembers = DefaultMaxMembers
	}
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = DefaultMaxGroups
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = 30 * time.Minute
	}
	return &Coordinator{cfg: cfg, groups: map[string]*Group{}}
}

// Group returns the group with id or nil.
func (c *Coordinator) Group(id string) *Group { return c.groups[id] }

// Groups returns every group sorted by id.
func (c *Coordinator) Groups() []*Group {
	out := make([]*Group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// NumGroups returns the number of groups.
func (c *Coordinator) NumGroups() int { return len(c.groups) }

func (c *Coordinator) newGroup(id string, now time.Time) *Group {
	g := &Group{ID: id, State: Empty, members: map[string]*Member{}, static: map[string]string{},
		pending: map[string]time.Time{}, offsets: map[TopicPartition]Offset{}, heapIndex: -1,
		StateTimestamp: now.UnixMilli()}
	c.groups[id] = g
	return g
}

func (c *Coordinator) newMemberID(clientID string) string {
	if c.cfg.NewMemberID != nil {
		return c.cfg.NewMemberID(clientID)
	}
	c.idCount++
	return fmt.Sprintf("%s-%d", clientID, c.idCount)
}

// validPreviousStates is Kafka's transition table (GroupMetadata's
// validPreviousStates): the states a group may enter each state from.
// Loading (FinishLoad) sets a restored group's state directly; it is not
// a transition.
var validPreviousStates = [...][]State{
	Empty:               {PreparingRebalance},
	PreparingRebalance:  {Stable, CompletingRebalance, Empty},
	CompletingRebalance: {PreparingRebalance},
	Stable:              {CompletingRebalance},
	Dead:                {Stable, PreparingRebalance, CompletingRebalance, Empty, Dead},
}

// validTransition reports whether Kafka allows from -> to.
func validTransition(from, to State) bool {
	if int(to) < 0 || int(to) >= len(validPreviousStates) {
		return false
	}
	for _, p := range validPreviousStates[to] {
		if p == from {
			return true
		}
	}
	return false
}

func (g *Group) setState(s State, now time.Time) {
	if invariants.Enabled {
		invariants.Check(validTransition(g.State, s), "group %s: state %v -> %v is not an edge Kafka allows", g.ID, g.State, s)
	}
	g.State = s
	g.StateTimestamp = now.UnixMilli()
}

// JoinRequest is a JoinGroup request.
type JoinRequest struct {
	Group, MemberID, InstanceID, ClientID, ClientHost string
	ProtocolType                                      string
	Protocols                                         []Protocol
	SessionTimeout, RebalanceTimeout                  time.Duration
	// RequireKnownMemberID: JoinGroup v4+ (KIP-394): a first join without
	// a member id is answered MEMBER_ID_REQUIRED with a new id.
	RequireKnownMemberID bool
}

// JoinMember is one member in the leader's JoinGroup answer.
type JoinMember struct {
	MemberID, InstanceID string
	Metadata             []byte
}

// JoinResult is a JoinGroup answer.
type JoinResult struct {
	Err            int16
	Generation     int32
	ProtocolType   string
	Protocol       string
	Leader         string
	MemberID       string
	SkipAssignment bool
	Members        []JoinMember
}

// SyncRequest is a SyncGroup request.
type SyncRequest struct {
	Group, MemberID, InstanceID string
	Generation                  int32
	ProtocolType, Protocol      string // v5+; "" when absent
	Assignments                 map[string][]byte
}

// SyncResult is a SyncGroup answer.
type SyncResult struct {
	Err          int16
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// LeaveMember is one member of a LeaveGroup request.
type LeaveMember struct{ MemberID, InstanceID string }

func joinErr(code int16, memberID string) JoinResult {
	return JoinResult{Err: code, Generation: -1, MemberID: memberID}
}

// Join handles JoinGroup. reply is called exactly once, now or later.
func (c *Coordinator) Join(now time.Time, r JoinRequest, reply func(JoinResult)) {
	switch {
	case r.Group == "":
		reply(joinErr(kerr.InvalidGroupID.Code, r.MemberID))
		return
	case r.SessionTimeout < c.cfg.MinSessionTimeout || r.SessionTimeout > c.cfg.MaxSessionTimeout:
		reply(joinErr(kerr.InvalidSessionTimeout.Code, r.MemberID))
		return
	case r.ProtocolType == "" || len(r.Protocols) == 0:
		reply(joinErr(kerr.InconsistentGroupProtocol.Code, r.MemberID))
		return
	}
	if r.RebalanceTimeout <= 0 {
		r.RebalanceTimeout = r.SessionTimeout // v0: the session timeout is the rebalance timeout
	}
	g := c.groups[r.Group]
	if g == nil {
		if r.MemberID != "" {
			reply(joinErr(kerr.UnknownMemberID.Code, r.MemberID))
			return
		}
		if len(c.groups) >= c.cfg.MaxGroups {
			reply(joinErr(kerr.CoordinatorNotAvailable.Code, r.MemberID))
			return
		}
		g = c.newGroup(r.Group, now)
	}
	if !g.supports(r.ProtocolType, r.Protocols) {
		reply(joinErr(kerr.InconsistentGroupProtocol.Code, r.MemberID))
		return
	}
	if r.MemberID == "" {
		c.joinUnknown(now, g, r, reply)
	} else {
		c.joinKnown(now, g, r, reply)
	}
	c.schedule(g, now)
}

// supports reports whether a member with these protocols may join: the
// group is empty, or the type matches and some protocol is shared by every
// current member.
func (g *Group) supports(ptype string, ps []Protocol) bool {
	if len(g.members) == 0 {
		return g.ProtocolType == "" || g.ProtocolType == ptype || g.State == Empty
	}
	if g.ProtocolType != ptype {
		return false
	}
	for _, p := range ps {
		all := true
		for _, m := range g.members {
			if m.Metadata(p.Name) == nil && !hasProtocol(m, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func hasProtocol(m *Member, name string) bool {
	for _, p := range m.Protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (c *Coordinator) full(g *Group) bool {
	return len(g.members)+len(g.pending) >= c.cfg.MaxMembers
}

func (c *Coordinator) joinUnknown(now time.Time, g *Group, r JoinRequest, reply func(JoinResult)) {
	if r.InstanceID != "" {
		if old, ok := g.static[r.InstanceID]; ok && g.members[old] != nil {
			c.replaceStatic(now, g, old, r, reply)
			return
		}
	}
	if c.full(g) {
		reply(joinErr(kerr.GroupMaxSizeReached.Code, ""))
		return
	}
	id := c.newMemberID(r.ClientID)
	if r.InstanceID == "" && r.RequireKnownMemberID {
		// KIP-394: hand out the id and wait for the member to come back
		// with it, so a client that never returns costs one map entry
		// for a session timeout, not a member that blocks the rebalance.
		at := now.Add(r.SessionTimeout)
		g.pending[id] = at
		if g.pendingMin.IsZero() || at.Before(g.pendingMin) {
			g.pendingMin = at
		}
		reply(joinErr(kerr.MemberIDRequired.Code, id))
		return
	}
	c.addMember(now, g, id, r, reply)
}

// replaceStatic handles a static member rejoining with a new member id
// (KIP-345): the old id is fenced; a Stable group keeps its assignment and
// generation (no rebalance).
func (c *Coordinator) replaceStatic(now time.Time, g *Group, oldID string, r JoinRequest, reply func(JoinResult)) {
	m := g.members[oldID]
	newID := c.newMemberID(r.ClientID)
	if m.joinReply != nil {
		m.joinReply(joinErr(kerr.FencedInstanceID.Code, oldID))
		m.joinReply = nil
	}
	if m.syncReply != nil {
		m.syncReply(SyncResult{Err: kerr.FencedInstanceID.Code})
		m.syncReply = nil
	}
	delete(g.members, oldID)
	m.ID = newID
	g.members[newID] = m
	for i, id := range g.order {
		if id == oldID {
			g.order[i] = newID
		}
	}
	g.static[r.InstanceID] = newID
	wasLeader := g.Leader == oldID
	if wasLeader {
		g.Leader = newID
	}
	m.ClientID, m.ClientHost = r.ClientID, r.ClientHost
	m.SessionTimeout, m.RebalanceTimeout = r.SessionTimeout, r.RebalanceTimeout
	m.deadline = now.Add(m.SessionTimeout)
	m.Protocols = r.Protocols
	switch {
	case g.State == Stable && g.selectProtocol() == g.Protocol:
		// Kafka's rule: rebalance only if the group's protocol would
		// change; new metadata (franz-go's carries owned partitions and
		// the generation) is just recorded.
		res := JoinResult{Generation: g.Generation, ProtocolType: g.ProtocolType, Protocol: g.Protocol,
			Leader: g.Leader, MemberID: newID}
		if wasLeader {
			// KIP-814: the leader learns the members but must not
			// reassign (v9 SkipAssignment; older clients' SyncGroup in
			// Stable just gets the current assignment back).
			res.SkipAssignment = true
			res.Members = g.joinMembers()
		}
		c.persistGroup(g)
		reply(res)
	case g.State == PreparingRebalance:
		m.joinReply = reply
		c.tryCompleteJoin(now, g)
	default:
		m.joinReply = reply
		c.prepareRebalance(now, g)
	}
}

func protocolsEqual(a, b []Protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}

func (c *Coordinator) addMember(now time.Time, g *Group, id string, r JoinRequest, reply func(JoinResult)) {
	m := &Member{ID: id, InstanceID: r.InstanceID, ClientID: r.ClientID, ClientHost: r.ClientHost,
		SessionTimeout: r.SessionTimeout, RebalanceTimeout: r.RebalanceTimeout, ProtocolType: r.ProtocolType,
		Protocols: r.Protocols, joinReply: reply, isNew: true, deadline: now.Add(r.SessionTimeout)}
	if len(g.members) == 0 {
		g.ProtocolType = r.ProtocolType
	}
	g.members[id] = m
	g.order = append(g.order, id)
	if r.InstanceID != "" {
		g.static[r.InstanceID] = id
	}
	if g.State == PreparingRebalance {
		if !g.initialDelayEnd.IsZero() {
			// Each new member during the initial delay extends it, up
			// to the rebalance timeout (Kafka's InitialDelayedJoin).
			ext := now.Add(c.cfg.InitialRebalanceDelay)
			if ext.After(g.rebalanceDeadline) {
				ext = g.rebalanceDeadline
			}
			if ext.After(g.initialDelayEnd) {
				g.initialDelayEnd = ext
			}
		}
		c.tryCompleteJoin(now, g)
		return
	}
	c.prepareRebalance(now, g)
}

func (c *Coordinator) joinKnown(now time.Time, g *Group, r JoinRequest, reply func(JoinResult)) {
	if _, ok := g.pending[r.MemberID]; ok {
		delete(g.pending, r.MemberID)
		c.addMember(now, g, r.MemberID, r, reply)
		return
	}
	m := g.members[r.MemberID]
	if r.InstanceID != "" {
		if cur, ok := g.static[r.InstanceID]; ok && cur != r.MemberID {
			reply(joinErr(kerr.FencedInstanceID.Code, r.MemberID))
			return
		}
	}
	if m == nil || g.State == Dead {
		reply(joinErr(kerr.UnknownMemberID.Code, r.MemberID))
		return
	}
	m.deadline = now.Add(r.SessionTimeout)
	m.SessionTimeout, m.RebalanceTimeout = r.SessionTimeout, r.RebalanceTimeout
	m.ClientID, m.ClientHost = r.ClientID, r.ClientHost
	switch g.State {
	case PreparingRebalance:
		if m.joinReply != nil {
			m.joinReply(joinErr(kerr.RebalanceInProgress.Code, m.ID)) // superseded by this join
		}
		m.Protocols = r.Protocols
		m.joinReply = reply
		c.tryCompleteJoin(now, g)
	case CompletingRebalance, Stable:
		if protocolsEqual(m.Protocols, r.Protocols) && (g.State == CompletingRebalance || g.Leader != m.ID) {
			// Nothing changed: answer with the current generation (a
			// follower that lost the JoinGroup response).
			res := JoinResult{Generation: g.Generation, ProtocolType: g.ProtocolType, Protocol: g.Protocol,
				Leader: g.Leader, MemberID: m.ID}
			if g.Leader == m.ID {
				res.Members = g.joinMembers()
			}
			reply(res)
			return
		}
		m.Protocols = r.Protocols
		m.joinReply = reply
		c.prepareRebalance(now, g)
	default:
		reply(joinErr(kerr.UnknownMemberID.Code, r.MemberID))
	}
}

// prepareRebalance moves g to PreparingRebalance: pending SyncGroups are
// answered REBALANCE_IN_PROGRESS and the join phase's deadline is set.
func (c *Coordinator) prepareRebalance(now time.Time, g *Group) {
	if g.State == CompletingRebalance {
		for _, m := range g.members {
			m.Assignment = nil
			if m.syncReply != nil {
				m.syncReply(SyncResult{Err: kerr.RebalanceInProgress.Code})
				m.syncReply = nil
				// Kept alive while it waited: its session restarts now,
				// so it has a whole session to rejoin. Left at the
				// deadline of its SyncGroup, a member that waited longer
				// than its session (a slow leader) was expired in the
				// same Tick that answered it, with no chance to rejoin.
				m.deadline = now.Add(m.SessionTimeout)
			}
		}
	}
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.RebalanceTimeout)
	}
	g.rebalanceDeadline = now.Add(timeout)
	g.initialDelayEnd = time.Time{}
	if g.State == Empty && c.cfg.InitialRebalanceDelay > 0 {
		g.initialDelayEnd = now.Add(min(c.cfg.InitialRebalanceDelay, timeout))
	}
	g.setState(PreparingRebalance, now)
	c.tryCompleteJoin(now, g)
}

// tryCompleteJoin completes the join phase when every member has rejoined
// and no KIP-394 member is pending (and the initial delay is over).
func (c *Coordinator) tryCompleteJoin(now time.Time, g *Group) {
	if g.State != PreparingRebalance {
		return
	}
	if !g.initialDelayEnd.IsZero() && now.Before(g.initialDelayEnd) {
		return
	}
	for _, m := range g.members {
		if m.joinReply == nil {
			return
		}
	}
	if len(g.pending) > 0 {
		return
	}
	c.completeJoin(now, g)
}

// completeJoin ends the join phase: members that did not rejoin are
// removed, the generation advances, a protocol is selected and every
// joined member is answered (the leader with everyone's metadata).
func (c *Coordinator) completeJoin(now time.Time, g *Group) {
	for _, id := range append([]string(nil), g.order...) {
		if m := g.members[id]; m.joinReply == nil {
			c.removeMember(g, m)
		}
	}
	g.pending = map[string]time.Time{}
	g.pendingMin = time.Time{}
	g.initialDelayEnd = time.Time{}
	g.Generation++
	if len(g.members) == 0 {
		// Kafka keeps the protocol type of an Empty group ("consumer"
		// for an idle consumer group: tools list consumer groups by
		// it); only the protocol and leader go.
		g.Protocol, g.Leader = "", ""
		g.setState(Empty, now)
		c.persistGroup(g)
		return
	}
	g.Protocol = g.selectProtocol()
	if g.members[g.Leader] == nil {
		g.Leader = g.order[0]
	}
	g.setState(CompletingRebalance, now)
	g.syncDeadline = now.Add(maxRebalanceTimeout(g))
	all := g.joinMembers()
	for _, id := range g.order {
		m := g.members[id]
		res := JoinResult{Generation: g.Generation, ProtocolType: g.ProtocolType, Protocol: g.Protocol,
			Leader: g.Leader, MemberID: m.ID}
		if m.ID == g.Leader {
			res.Members = all
		}
		reply := m.joinReply
		m.joinReply = nil
		m.isNew = false
		m.deadline = now.Add(m.SessionTimeout)
		reply(res)
	}
}

func (g *Group) joinMembers() []JoinMember {
	out := make([]JoinMember, 0, len(g.order))
	for _, id := range g.order {
		m := g.members[id]
		out = append(out, JoinMember{MemberID: m.ID, InstanceID: m.InstanceID, Metadata: m.Metadata(g.Protocol)})
	}
	return out
}

// selectProtocol picks, among the protocols every member supports, the one
// most members prefer (each votes for its first supported candidate); ties
// go to the earliest in the first member's preference order.
func (g *Group) selectProtocol() string {
	first := g.members[g.order[0]]
	var candidates []string
	for _, p := range first.Protocols {
		all := true
		for _, m := range g.members {
			if !hasProtocol(m, p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	if len(candidates) == 0 {
		return "" // cannot happen: supports() checked every join
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.Protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := candidates[0]
	for _, cnd := range candidates[1:] {
		if votes[cnd] > votes[best] {
			best = cnd
		}
	}
	return best
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// removeMember drops m from g (no state change). A pending join or sync is
// answered UNKNOWN_MEMBER_ID.
func (c *Coordinator) removeMember(g *Group, m *Member) {
	if m.joinReply != nil {
		m.joinReply(joinErr(kerr.UnknownMemberID.Code, m.ID))
		m.joinReply = nil
	}
	if m.syncReply != nil {
		m.syncReply(SyncResult{Err: kerr.UnknownMemberID.Code})
		m.syncReply = nil
	}
	delete(g.members, m.ID)
	for i, id := range g.order {
		if id == m.ID {
			g.order = append(g.order[:i], g.order[i+1:]...)
			break
		}
	}
	if m.InstanceID != "" && g.static[m.InstanceID] == m.ID {
		delete(g.static, m.InstanceID)
	}
}

// memberGone removes m and rebalances the rest (leave or session expiry).
func (c *Coordinator) memberGone(now time.Time, g *Group, m *Member) {
	c.removeMember(g, m)
	switch g.State {
	case Stable, CompletingRebalance:
		c.prepareRebalance(now, g)
	case PreparingRebalance:
		c.tryCompleteJoin(now, g)
	}
}

// checkMember validates a (member, instance, generation) against g for
// SyncGroup, Heartbeat and OffsetCommit; 0 when valid.
func (g *Group) checkMember(memberID, instanceID string, gen int32) int16 {
	if instanceID != "" {
		if cur, ok := g.static[instanceID]; ok && cur != memberID {
			return kerr.FencedInstanceID.Code
		}
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	if gen != g.Generation {
		return kerr.IllegalGeneration.Code
	}
	return 0
}

// Sync handles SyncGroup. reply is called exactly once, now or later.
func (c *Coordinator) Sync(now time.Time, r SyncRequest, reply func(SyncResult)) {
	if r.Group == "" {
		reply(SyncResult{Err: kerr.InvalidGroupID.Code})
		return
	}
	g := c.groups[r.Group]
	if g == nil || g.State == Empty || g.State == Dead {
		reply(SyncResult{Err: kerr.UnknownMemberID.Code})
		return
	}
	if code := g.checkMember(r.MemberID, r.InstanceID, r.Generation); code != 0 {
		reply(SyncResult{Err: code})
		return
	}
	if (r.ProtocolType != "" && r.ProtocolType != g.ProtocolType) || (r.Protocol != "" && r.Protocol != g.Protocol) {
		reply(SyncResult{Err: kerr.InconsistentGroupProtocol.Code})
		return
	}
	m := g.members[r.MemberID]
	m.deadline = now.Add(m.SessionTimeout)
	switch g.State {
	case PreparingRebalance:
		reply(SyncResult{Err: kerr.RebalanceInProgress.Code})
	case CompletingRebalance:
		if m.syncReply != nil {
			m.syncReply(SyncResult{Err: kerr.RebalanceInProgress.Code})
		}
		m.syncReply = reply
		if m.ID == g.Leader {
			for _, mm := range g.members {
				mm.Assignment = r.Assignments[mm.ID]
			}
			g.setState(Stable, now)
			c.persistGroup(g)
			for _, id := range g.order {
				mm := g.members[id]
				if mm.syncReply != nil {
					rep := mm.syncReply
					mm.syncReply = nil
					mm.deadline = now.Add(mm.SessionTimeout)
					rep(SyncResult{ProtocolType: g.ProtocolType, Protocol: g.Protocol, Assignment: mm.Assignment})
				}
			}
		}
	case Stable:
		reply(SyncResult{ProtocolType: g.ProtocolType, Protocol: g.Protocol, Assignment: m.Assignment})
	}
	c.schedule(g, now)
}

// Heartbeat handles Heartbeat and returns its error code.
func (c *Coordinator) Heartbeat(now time.Time, groupID, memberID, instanceID string, gen int32) int16 {
	if groupID == "" {
		return kerr.InvalidGroupID.Code
	}
	g := c.groups[groupID]
	if g == nil || g.State == Empty || g.State == Dead {
		return kerr.UnknownMemberID.Code
	}
	if code := g.checkMember(memberID, instanceID, gen); code != 0 {
		return code
	}
	m := g.members[memberID]
	m.deadline = now.Add(m.SessionTimeout)
	c.schedule(g, now)
	if g.State == PreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// Leave handles LeaveGroup: one code per member (a missing group answers
// UNKNOWN_MEMBER_ID for each, as Kafka does).
func (c *Coordinator) Leave(now time.Time, groupID string, members []LeaveMember) []int16 {
	out := make([]int16, len(members))
	g := c.groups[groupID]
	for i, lm := range members {
		switch {
		case groupID == "":
			out[i] = kerr.InvalidGroupID.Code
		case g == nil || g.State == Dead:
			out[i] = kerr.UnknownMemberID.Code
		default:
			out[i] = c.leaveOne(now, g, lm)
		}
	}
	if g != nil {
		c.schedule(g, now)
	}
	return out
}

func (c *Coordinator) leaveOne(now time.Time, g *Group, lm LeaveMember) int16 {
	id := lm.MemberID
	if lm.InstanceID != "" {
		cur, ok := g.static[lm.InstanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if id != "" && cur != id {
			return kerr.FencedInstanceID.Code
		}
		id = cur
	}
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		c.tryCompleteJoin(now, g)
		return 0
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	c.memberGone(now, g, m)
	return 0
}

// NextDeadline returns the earliest time Tick has work, false if none.
func (c *Coordinator) NextDeadline() (time.Time, bool) {
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].nextCheck, true
}

// Tick runs every timeout due at now: expired sessions and KIP-394 pending
// members, the end of the initial delay, and the rebalance timeout.
func (c *Coordinator) Tick(now time.Time) {
	// Pop every due group first and handle each once, so a deadline that
	// stays due cannot spin this loop.
	var due []*Group
	for len(c.timers) > 0 && !c.timers[0].nextCheck.After(now) {
		due = append(due, heap.Pop(&c.timers).(*Group))
	}
	for _, g := range due {
		if c.groups[g.ID] != g {
			continue
		}
		c.expire(now, g)
		if c.groups[g.ID] == g {
			c.schedule(g, now)
		}
	}
}

func (c *Coordinator) expire(now time.Time, g *Group) {
	g.pendingMin = time.Time{}
	for id, at := range g.pending {
		if !at.After(now) {
			delete(g.pending, id)
		} else if g.pendingMin.IsZero() || at.Before(g.pendingMin) {
			g.pendingMin = at
		}
	}
	for _, id := range append([]string(nil), g.order...) {
		m := g.members[id]
		if m == nil || m.joinReply != nil || m.syncReply != nil || m.deadline.After(now) {
			continue
		}
		if c.cfg.SessionExpired != nil {
			c.cfg.SessionExpired(g.ID, m.ID, m.deadline.Add(-m.SessionTimeout), m.SessionTimeout)
		}
		c.memberGone(now, g, m)
	}
	if g.State == PreparingRebalance {
		if !now.Before(g.rebalanceDeadline) {
			c.completeJoin(now, g)
		} else {
			c.tryCompleteJoin(now, g)
		}
	}
	if g.State == CompletingRebalance && !now.Before(g.syncDeadline) {
		// The leader never sent SyncGroup: Kafka times the sync phase out
		// with the rebalance timeout and rebalances without the members
		// that did not sync.
		for _, id := range append([]string(nil), g.order...) {
			if m := g.members[id]; m.syncReply == nil {
				c.removeMember(g, m)
			}
		}
		c.prepareRebalance(now, g)
	}
}

func maxRebalanceTimeout(g *Group) time.Duration {
	var t time.Duration
	for _, m := range g.members {
		t = max(t, m.RebalanceTimeout)
	}
	return t
}

// schedule recomputes g's next timer check and (re)positions it in the heap.
func (c *Coordinator) schedule(g *Group, now time.Time) {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	// pendingMin, not a scan of pending: a join storm adds up to
	// MaxMembers pending ids, one schedule each.
	consider(g.pendingMin)
	for _, m := range g.members {
		if m.joinReply == nil && m.syncReply == nil { // waiting members are kept alive
			consider(m.deadline)
		}
	}
	switch g.State {
	case PreparingRebalance:
		consider(g.rebalanceDeadline)
		if g.initialDelayEnd.After(now) {
			consider(g.initialDelayEnd)
		}
	case CompletingRebalance:
		consider(g.syncDeadline)
	}
	if !next.IsZero() && !next.After(now) {
		// Overdue (a deadline Tick has not run yet): check on the next
		// tick rather than spinning at now.
		next = now.Add(time.Millisecond)
	}
	g.nextCheck = next
	switch {
	case next.IsZero() && g.heapIndex >= 0:
		heap.Remove(&c.timers, g.heapIndex)
		g.heapIndex = -1
	case next.IsZero():
	case g.heapIndex >= 0:
		heap.Fix(&c.timers, g.heapIndex)
	default:
		heap.Push(&c.timers, g)
	}
}

// groupHeap orders groups by nextCheck.
type groupHeap []*Group

func (h groupHeap) Len() int           { return len(h) }
func (h groupHeap) Less(i, j int) bool { return h[i].nextCheck.Before(h[j].nextCheck) }
func (h groupHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}
func (h *groupHeap) Push(x any) {
	g := x.(*Group)
	g.heapIndex = len(*h)
	*h = append(*h, g)
}
func (h *groupHeap) Pop() any {
	old := *h
	g := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	g.heapIndex = -1
	return g
}

func heapRemove(h *groupHeap, g *Group) {
	heap.Remove(h, g.heapIndex)
	g.heapIndex = -1
}
