package controller

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/metadata"
)

// Config is the controller's configuration: Kafka's controller settings
// with their defaults in DefaultConfig.
type Config struct {
	// NodeID is this controller's node id.
	NodeID int32
	// ClusterID is the cluster every registering broker must name.
	ClusterID string
	// SessionTimeout is broker.session.timeout.ms: a broker that sends no
	// heartbeat for this long is fenced.
	SessionTimeout time.Duration
	// DefaultPartitions is num.partitions, used for a topic created with
	// -1 partitions.
	DefaultPartitions int32
	// DefaultReplicationFactor is default.replication.factor, used for a
	// topic created with replication factor -1.
	DefaultReplicationFactor int16
	// AutoLeaderRebalance is auto.leader.rebalance.enable.
	AutoLeaderRebalance bool
	// LeaderImbalancePercent is leader.imbalance.per.broker.percentage:
	// a broker whose preferred partitions are led by others more than
	// this share of the time has them moved back.
	LeaderImbalancePercent int
	// LeaderImbalanceCheckInterval is
	// leader.imbalance.check.interval.seconds.
	LeaderImbalanceCheckInterval time.Duration
	// NewUUID returns a fresh topic id (a random one in production, a
	// counter in tests). It must never return the zero uuid.
	NewUUID func() metadata.UUID
	// Broker is the configuration topic configs are validated against (the
	// defaults a topic inherits, floors such as log.segment.bytes.min);
	// nil is config.Default(). Every controller of a cluster should have
	// the same.
	Broker *config.Config
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SessionTimeout:               9 * time.Second,
		DefaultPartitions:            1,
		DefaultReplicationFactor:     1,
		AutoLeaderRebalance:          true,
		LeaderImbalancePercent:       10,
		LeaderImbalanceCheckInterval: 300 * time.Second,
	}
}

// Controller is the active controller's state machine. Its hard state is
// the metadata image every method takes; its soft state is the broker
// sessions, which Activate rebuilds from the image when this node becomes
// raft leader. See the package doc for which image to pass and when to
// answer.
//
// A Controller is not safe for concurrent use: the raft leader loop owns
// it.
type Controller struct {
	cfg Config
	// topicCfg validates topic configs: Config.Broker, or Kafka's defaults.
	topicCfg *config.Config
	sessions map[int32]*session
	// nextRebalance is when Tick next looks for leader imbalance.
	nextRebalance time.Time
}

// session is a registered broker's liveness, soft state the controller
// keeps beside the image (Kafka's BrokerHeartbeatManager).
type session struct {
	epoch int64
	// registeredAt is the offset of the broker's latest registration
	// record, which it must have caught up to before it is unfenced. A
	// controller that activates takes the broker epoch (the offset of its
	// first registration record): the image does not say where an
	// amended registration is.
	registeredAt int64
	deadline     time.Time
	// shuttingDown is set by a heartbeat with WantShutdown from an
	// unfenced broker (Kafka's controlled shutdown): such a broker leads
	// nothing and joins no election until it registers again.
	shuttingDown bool
}

// New returns a controller with cfg; zero fields take DefaultConfig's.
func New(cfg Config) *Controller {
	def := DefaultConfig()
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = def.SessionTimeout
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = def.DefaultPartitions
	}
	if cfg.DefaultReplicationFactor <= 0 {
		cfg.DefaultReplicationFactor = def.DefaultReplicationFactor
	}
	if cfg.LeaderImbalancePercent <= 0 {
		cfg.LeaderImbalancePercent = def.LeaderImbalancePercent
	}
	if cfg.LeaderImbalanceCheckInterval <= 0 {
		cfg.LeaderImbalanceCheckInterval = def.LeaderImbalanceCheckInterval
	}
	if cfg.NewUUID == nil {
		panic("controller: Config.NewUUID is nil")
	}
	topicCfg := cfg.Broker
	if topicCfg == nil {
		topicCfg = config.Default()
	}
	return &Controller{cfg: cfg, topicCfg: topicCfg, sessions: map[int32]*session{}}
}

// Activate is called when this node becomes the raft leader, with the
// committed image: every registered broker gets a fresh session (a full
// timeout to heartbeat), as a new Kafka controller does, and a broker's
// controlled shutdown is taken from its registration.
func (c *Controller) Activate(now time.Time, img metadata.Image) {
	c.sessions = map[int32]*session{}
	for _, b := range img.Brokers() {
		c.sessions[b.ID] = &session{epoch: b.Epoch, registeredAt: b.Epoch, deadline: now.Add(c.cfg.SessionTimeout), shuttingDown: b.InControlledShutdown}
	}
	c.nextRebalance = now.Add(c.cfg.LeaderImbalanceCheckInterval)
}

// sessionOf returns broker b's session, starting one (with a full
// timeout) for a broker the image has and the controller had not seen, or
// whose registration changed under it.
func (c *Controller) sessionOf(now time.Time, b metadata.Broker) *session {
	s := c.sessions[b.ID]
	if s == nil || s.epoch != b.Epoch {
		s = &session{epoch: b.Epoch, registeredAt: b.Epoch, deadline: now.Add(c.cfg.SessionTimeout), shuttingDown: b.InControlledShutdown}
		c.sessions[b.ID] = s
	}
	return s
}

// active reports whether broker id may lead or join an election:
// registered, unfenced and not in controlled shutdown.
func (c *Controller) active(img metadata.Image, id int32) bool {
	b, ok := img.Broker(id)
	if !ok || b.Fenced || b.InControlledShutdown {
		return false
	}
	s := c.sessions[id]
	return s == nil || s.epoch != b.Epoch || !s.shuttingDown
}

// batch is the records one call emits, with the image they build: each
// record is applied as it is added, so later decisions in the same call
// see earlier ones. Applying is deferred to the next look at the image
// (ApplyAll copies each changed map once per run of records, where Apply
// would copy it per record: a topic of many partitions).
type batch struct {
	img     metadata.Image
	recs    []metadata.Record
	pending int // recs[len(recs)-pending:] are not applied to img yet
	// newPartitions counts the partitions this call creates.
	newPartitions int
	// placer places this call's new partitions (see placerFor).
	placer *placer
}

func newBatch(img metadata.Image) *batch { return &batch{img: img} }

func (b *batch) add(rec metadata.Record) {
	b.recs = append(b.recs, rec)
	b.pending++
}

// image returns the image with every added record applied.
func (b *batch) image() metadata.Image {
	if b.pending > 0 {
		next, _, err := b.img.ApplyAll(b.recs[len(b.recs)-b.pending:])
		if err != nil {
			panic(fmt.Sprintf("controller: emitted a record the image refuses: %v", err))
		}
		b.img, b.pending = next, 0
	}
	return b.img
}

// done checks the records apply and returns them.
func (b *batch) done() []metadata.Record {
	b.image()
	return b.recs
}

// changeTo adds the PartitionChangeRecord taking partition id of topic
// from old to p (only the fields that differ, and the leader when a
// replica leaves; nothing when none do). A leader p takes from the ELR
// gets the ISR to itself (see takeLeaderFromELR). The record is version
// 2 only when it changes the ELR or LastKnownELR (see
// metadata.PartitionChangeRecord).
func (b *batch) changeTo(topic metadata.UUID, id int32, old, p metadata.Partition) bool {
	p = takeLeaderFromELR(old, p)
	rec := &metadata.PartitionChangeRecord{PartitionID: id, TopicID: topic, Leader: metadata.NoLeaderChange,
		LeaderRecoveryState: metadata.NoRecoveryStateChange}
	changed := false
	if !slices.Equal(old.ELR, p.ELR) {
		rec.Ver, rec.EligibleLeaderReplicas, changed = 2, nonNil(p.ELR), true
	}
	if !slices.Equal(old.LastKnownELR, p.LastKnownELR) {
		rec.Ver, rec.LastKnownELR, changed = 2, nonNil(p.LastKnownELR), true
	}
	if !slices.Equal(old.ISR, p.ISR) {
		rec.ISR, changed = nonNil(p.ISR), true
	}
	if !slices.Equal(old.Replicas, p.Replicas) {
		rec.Replicas, changed = nonNil(p.Replicas), true
	}
	if !slices.Equal(old.AddingReplicas, p.AddingReplicas) {
		rec.AddingReplicas, changed = nonNil(p.AddingReplicas), true
	}
	if !slices.Equal(old.RemovingReplicas, p.RemovingReplicas) {
		rec.RemovingReplicas, changed = nonNil(p.RemovingReplicas), true
	}
	// A replica leaving the replica set (a reassignment completing or
	// cancelled) bumps the leader epoch even when the leader stays, as
	// Kafka's PartitionChangeBuilder does, so that the removed replica's
	// requests at the old epoch are fenced.
	if old.Leader != p.Leader || slices.ContainsFunc(old.Replicas, func(r int32) bool { return !slices.Contains(p.Replicas, r) }) {
		rec.Leader, changed = p.Leader, true
	}
	if old.LeaderRecoveryState != p.LeaderRecoveryState {
		rec.LeaderRecoveryState, changed = p.LeaderRecoveryState, true
	}
	if changed {
		b.add(rec)
	}
	return changed
}

// nonNil returns s, or an empty non-nil slice (which a change record
// reads as "set to empty", where nil is "unchanged").
func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return slices.Clone(s)
}

// electLeader returns the leader partition p should have: its current
// leader while that is eligible (unless preferred asks for the first
// replica, and that one can lead), else the first eligible replica in
// replica order, else NoLeader. Eligible is active and in the ISR, or in
// the ELR when the ISR is empty (see eligible). Unclean election (a
// leader from outside both) is never chosen here.
func (c *Controller) electLeader(img metadata.Image, p metadata.Partition, preferred bool) int32 {
	eligible := func(id int32) bool { return c.eligible(img, p, id) }
	if preferred && len(p.Replicas) > 0 && eligible(p.Replicas[0]) {
		return p.Replicas[0]
	}
	if p.Leader != metadata.NoLeader && slices.Contains(p.Replicas, p.Leader) && eligible(p.Leader) {
		return p.Leader
	}
	for _, r := range p.Replicas {
		if eligible(r) {
			return r
		}
	}
	return metadata.NoLeader
}

// uncleanLeaderElectionKey is the topic config that lets an automatic
// election pick a replica outside the ISR.
const uncleanLeaderElectionKey = "unclean.leader.election.enable"

// uncleanEnabled reports whether topic has unclean.leader.election.enable
// set to true (Kafka's Boolean.parseBoolean: any case). Only the topic's
// own config counts: the key is not a broker config here (Kafka also
// reads the cluster-wide and static broker values).
func uncleanEnabled(img metadata.Image, topic string) bool {
	v, ok := img.Configs(metadata.ConfigResource{Type: metadata.ResourceTopic, Name: topic})[uncleanLeaderElectionKey]
	return ok && strings.EqualFold(v, "true")
}

// reelect returns p with the leader an automatic election gives it
// (Kafka's PartitionChangeBuilder with an online election): electLeader's;
// when that is none and the topic allows unclean election, the first
// active replica in replica order, with the ISR reduced to it and the
// leader recovering (LeaderRecoveryState 1), so that it may lose data the
// old ISR acknowledged. The record this makes is the trace of the
// unclean election (the caller logs it: see IsUncleanElection).
func (c *Controller) reelect(img metadata.Image, topic string, p metadata.Partition) metadata.Partition {
	next := p
	next.Leader = c.electLeader(img, p, false)
	if next.Leader == metadata.NoLeader && uncleanEnabled(img, topic) {
		if unclean, ok := c.electUnclean(img, p); ok {
			return unclean
		}
	}
	return next
}

// electUnclean returns p led by its first active replica with the ISR
// reduced to it, the leader recovering and the ELR cleared (its members
// no longer know more than the ISR); false when no replica is active.
func (c *Controller) electUnclean(img metadata.Image, p metadata.Partition) (metadata.Partition, bool) {
	i := slices.IndexFunc(p.Replicas, func(r int32) bool { return c.active(img, r) })
	if i < 0 {
		return p, false
	}
	next := p
	next.Leader, next.ISR, next.LeaderRecoveryState = p.Replicas[i], []int32{p.Replicas[i]}, 1
	next.ELR, next.LastKnownELR = nil, nil
	return next, true
}

// IsUncleanElection reports whether rec elects a leader from outside the
// ISR (it starts a leader's recovery), for the caller to log: such an
// election may lose acknowledged records.
func IsUncleanElection(rec metadata.Record) bool {
	r, ok := rec.(*metadata.PartitionChangeRecord)
	return ok && r.LeaderRecoveryState == 1 && r.Leader != metadata.NoLeaderChange && r.Leader != metadata.NoLeader
}

// removeFromISR moves every partition whose ISR holds broker id off it
// (Kafka's handleBrokerFenced): id leaves the ISR, the ELR takes it when
// that leaves the ISR below min ISR (see populateELR), and a partition it
// led gets a new leader (see reelect), or none. With the ELR off, the
// last ISR member stays instead, so that it can lead again when it comes
// back (Kafka's KRaft rule without KIP-966). The caller has made id
// inactive (fenced, shutting down, or a new incarnation) first.
func (c *Controller) removeFromISR(b *batch, id int32) {
	c.removeReplica(b, id, false)
}

// uncleanShutdown moves broker id, which registered again after an
// unclean shutdown, out of every ISR and ELR (Kafka's
// handleBrokerUncleanShutdown): its log may have lost records it
// acknowledged, so it must not lead without catching up. LastKnownELR
// keeps it. The caller has registered the new incarnation (fenced)
// first.
func (c *Controller) uncleanShutdown(b *batch, id int32) {
	c.removeReplica(b, id, true)
}

func (c *Controller) removeReplica(b *batch, id int32, unclean bool) {
	img := b.image()
	elr := elrEnabled(img)
	shutdown := metadata.NoLeader
	if unclean {
		shutdown = id
	}
	for _, t := range img.Topics() {
		minISR := -1 // read once per topic, when needed
		for _, pid := range partitionIDs(t) {
			p := t.Partitions[pid]
			if !slices.Contains(p.ISR, id) && !(unclean && slices.Contains(p.ELR, id)) {
				continue
			}
			if minISR < 0 {
				minISR = c.minISR(img, t)
			}
			next := p
			if len(p.ISR) > 1 || elr {
				next.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return r == id })
			}
			next = populateELR(img, p, next, minISR, shutdown)
			next = c.reelect(img, t.Name, next)
			b.changeTo(t.ID, pid, p, next)
		}
	}
}

// electOffline gives a leader to every partition without an active one
// that has an eligible replica (an active ISR member, or ELR member when
// the ISR is empty), or, with unclean election on for its topic, an
// active replica (see reelect).
func (c *Controller) electOffline(b *batch) {
	img := b.image()
	for _, t := range img.Topics() {
		minISR := -1
		for _, pid := range partitionIDs(t) {
			p := t.Partitions[pid]
			if p.Leader != metadata.NoLeader && c.active(img, p.Leader) {
				continue
			}
			if minISR < 0 {
				minISR = c.minISR(img, t)
			}
			b.changeTo(t.ID, pid, p, c.reelect(img, t.Name, populateELR(img, p, p, minISR, metadata.NoLeader)))
		}
	}
}

// partitionIDs returns t's partition ids in order.
func partitionIDs(t *metadata.Topic) []int32 {
	ids := make([]int32, 0, len(t.Partitions))
	for id := range t.Partitions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func errMsg(format string, args ...any) *string {
	s := fmt.Sprintf(format, args...)
	return &s
}
