package broker

import (
	"slices"
	"sync"
)

// The leader's side of Kafka's in-sync-replica protocol, for one partition
// (Kafka's Partition and the leader's ReplicaState per follower; Partition.scala
// maybeIncrementLeaderHW, maybeShrinkIsr, maybeExpandIsr). This file is the
// state and its decisions only: no I/O, no clock (times are inputs, in ms),
// so tests drive it step by step. replication.go applies the decisions: the
// log's high watermark, AlterPartition, the acks=all waiters.
//
// The ISR in the metadata image is the truth: isr here is the image's,
// refreshed on every image that touches the partition (follow), never
// changed locally. A change goes to the controller as an AlterPartition, at
// most one in flight per partition (alterInFlight), and takes effect when
// the image carrying it is applied.

// followerState is what the leader knows of one follower (Kafka's
// ReplicaState): its log end, as its last fetch offset said, and when it
// was last caught up with the leader's log end.
type followerState struct {
	// leo is the follower's log end offset: its last fetch offset, -1
	// while unknown (no fetch since this node became leader).
	leo int64
	// lastCaughtUpMs is the last time the follower's fetch offset reached
	// the leader's log end (Kafka's lastCaughtUpTimeMs).
	lastCaughtUpMs int64
	// lastFetchLeaderLEO and lastFetchMs are the leader's log end at the
	// follower's previous fetch, and that fetch's time: a fetch that
	// reaches it proves the follower was caught up then.
	lastFetchLeaderLEO int64
	lastFetchMs        int64
	// brokerEpoch is the broker epoch the follower's last fetch carried
	// (Fetch v15+ replica_state.replica_epoch; -1: not given, an older
	// fetch); brokerEpochKnown is false until its first fetch (Kafka's
	// ReplicaState.brokerEpoch = None). The ISR expansion and the
	// AlterPartition that carries it use it (KIP-903).
	brokerEpoch      int64
	brokerEpochKnown bool
	// logStart is the follower's log start offset as its last fetch said
	// (-1 while unknown): the rack-aware selector sends a consumer only to
	// a replica that still holds its fetch offset (fetch_preferred.go).
	logStart int64
}

// isrState is a partition's leader state. mu guards every field; it is a
// leaf lock (nothing is called under it but the decisions below). hwMu
// serializes the log's mode and high-watermark changes (replication.go);
// it is taken before mu.
type isrState struct {
	hwMu sync.Mutex
	mu   sync.Mutex
	// leading: this node leads the partition at leaderEpoch, per the
	// image. replicated: the partition has more replicas than this one and
	// its log is in replicated mode (storage.Log.SetHighWatermark).
	leading    bool
	replicated bool
	// set: follow has run once (leaderEpoch is meaningful).
	set            bool
	leaderEpoch    int32
	partitionEpoch int32
	// epochStartOffset is the log end when this node became leader at
	// leaderEpoch: a follower joins the ISR only once it has reached it
	// (Kafka's leaderEpochStartOffsetOpt).
	epochStartOffset int64
	replicas         []int32
	isr              []int32
	followers        map[int32]*followerState
	// alterInFlight: an AlterPartition for this partition was sent and
	// not answered; pending is the ISR it asks for (nil otherwise).
	alterInFlight bool
	pending       []int32
}

// maximalISR is the ISR the high watermark must respect: the image's,
// plus the members an AlterPartition in flight adds (Kafka's maximalIsr,
// KIP-497): a follower being added counts at once, so the high watermark
// never passes its log end before the controller has it in the ISR (were
// this node to fail then, that follower could lead without records below
// the high watermark). A shrink in flight changes nothing until applied.
// REQUIRES: s.mu held.
func (s *isrState) maximalISR() []int32 {
	if len(s.pending) == 0 {
		return s.isr
	}
	out := slices.Clone(s.isr)
	for _, id := range s.pending {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// follow takes a new image's view of the partition: this node leads it
// when leader == self. On a leadership this node did not hold at that
// epoch, every follower's state is reset: its log end unknown, and the ISR
// members count as caught up now (Kafka's resetReplicaState: they get
// replica.lag.time.max.ms to fetch). It reports whether this node just
// became leader (a new epoch) and whether it just stopped leading.
// REQUIRES: s.mu held.
func (s *isrState) follow(self, leader, leaderEpoch, partitionEpoch int32, replicas, isr []int32, leaderLEO, nowMs int64) (became, lost bool) {
	was := s.leading
	s.leading = leader == self
	newEpoch := !s.set || leaderEpoch != s.leaderEpoch
	s.set = true
	s.leaderEpoch, s.partitionEpoch = leaderEpoch, partitionEpoch
	s.replicas = slices.Clone(replicas)
	s.isr = slices.Clone(isr)
	if !s.leading {
		s.followers = nil
		s.alterInFlight = false
		return false, was
	}
	if !was || newEpoch {
		s.epochStartOffset = leaderLEO
		s.followers = make(map[int32]*followerState, len(replicas))
		for _, id := range replicas {
			if id == self {
				continue
			}
			f := &followerState{leo: -1, logStart: -1, lastFetchLeaderLEO: leaderLEO, lastFetchMs: nowMs}
			if slices.Contains(isr, id) {
				f.lastCaughtUpMs = nowMs
			}
			s.followers[id] = f
		}
		return true, false
	}
	// Same epoch, new replica set (a reassignment): keep what is known.
	for id := range s.followers {
		if !slices.Contains(replicas, id) {
			delete(s.followers, id)
		}
	}
	for _, id := range replicas {
		if _, ok := s.followers[id]; !ok && id != self {
			s.followers[id] = &followerState{leo: -1, logStart: -1, lastFetchLeaderLEO: leaderLEO, lastFetchMs: nowMs}
		}
	}
	return false, false
}

// fetched records a follower's fetch at fetchOffset when the leader's log
// end was leaderLEO (Kafka's ReplicaState.updateFetchStateOrThrow): caught
// up now when it reached the leader's log end, or as of its previous fetch
// when it reached the log end the leader had then. brokerEpoch is the
// fetch's broker epoch (-1: not given); registered is the follower's
// broker epoch in the image (-1: not registered). It reports false, and
// records nothing, when id is not a follower of the partition here, or
// when the fetch's broker epoch is older than the registration's: the
// fetcher of an earlier incarnation of the follower, which must not move
// the high watermark or the ISR (Kafka fences it with
// NOT_LEADER_OR_FOLLOWER).
// REQUIRES: s.mu held.
func (s *isrState) fetched(id int32, fetchOffset, leaderLEO, nowMs, brokerEpoch, registered int64) bool {
	f, ok := s.followers[id]
	if !ok || !s.leading {
		return false
	}
	if brokerEpochStale(brokerEpoch, registered) {
		return false
	}
	f.brokerEpoch, f.brokerEpochKnown = brokerEpoch, true
	switch {
	case fetchOffset >= leaderLEO:
		f.lastCaughtUpMs = max(f.lastCaughtUpMs, nowMs)
	case fetchOffset >= f.lastFetchLeaderLEO:
		f.lastCaughtUpMs = max(f.lastCaughtUpMs, f.lastFetchMs)
	}
	f.leo = fetchOffset
	f.lastFetchLeaderLEO, f.lastFetchMs = leaderLEO, nowMs
	return true
}

// highWatermark is the smallest log end over the maximal ISR, the
// leader's own (leaderLEO) included: what every in-sync replica holds
// (Kafka's maybeIncrementLeaderHW). A member whose log end is unknown
// gives -1: the high watermark cannot move until it reports.
// REQUIRES: s.mu held.
func (s *isrState) highWatermark(self int32, leaderLEO int64) int64 {
	hw := leaderLEO
	for _, id := range s.maximalISR() {
		if id == self {
			continue
		}
		f, ok := s.followers[id]
		if !ok {
			return -1
		}
		hw = min(hw, f.leo)
	}
	return hw
}

// outOfSync lists the ISR followers that have not caught up with the
// leader's log end for longer than lagMs (Kafka's getOutOfSyncReplicas:
// a follower at the leader's log end is in sync whatever its time).
// REQUIRES: s.mu held.
func (s *isrState) outOfSync(self int32, leaderLEO, nowMs, lagMs int64) []int32 {
	var out []int32
	for _, id := range s.isr {
		if id == self {
			continue
		}
		f, ok := s.followers[id]
		if !ok {
			continue
		}
		if f.leo != leaderLEO && nowMs-f.lastCaughtUpMs > lagMs {
			out = append(out, id)
		}
	}
	return out
}

// caughtUp lists the followers outside the ISR whose log end reached the
// high watermark and this leader epoch's start offset (Kafka's
// isFollowerInSync), and that eligible accepts (the image's view: a live,
// unfenced broker not shutting down, with its registered broker epoch)
// with the broker epoch their last fetch carried equal to the registered
// one, or -1 (Kafka's isBrokerEpochIsrEligible).
// REQUIRES: s.mu held.
func (s *isrState) caughtUp(hw int64, eligible func(id int32) (brokerEpoch int64, ok bool)) []int32 {
	var out []int32
	for _, id := range s.replicas {
		f, ok := s.followers[id]
		if !ok || slices.Contains(s.isr, id) {
			continue
		}
		if f.leo < 0 || f.leo < hw || f.leo < s.epochStartOffset || !f.brokerEpochKnown {
			continue
		}
		if epoch, ok := eligible(id); ok && (f.brokerEpoch == -1 || f.brokerEpoch == epoch) {
			out = append(out, id)
		}
	}
	return out
}

// brokerEpochStale reports whether a follower fetch's broker epoch is
// older than the follower's registration (-1 on either side: no check),
// Kafka's check in updateFetchStateOrThrow.
func brokerEpochStale(fetchEpoch, registered int64) bool {
	return fetchEpoch != -1 && registered >= 0 && registered > fetchEpoch
}

// followerBrokerEpoch is the broker epoch an AlterPartition gives for
// follower id: what its last fetch carried, -1 when unknown (Kafka's
// addBrokerEpochToIsr; -1 skips the controller's check). ok is false when
// id is not a follower here. REQUIRES: s.mu held.
func (s *isrState) followerBrokerEpoch(id int32) (epoch int64, ok bool) {
	f, ok := s.followers[id]
	if !ok {
		return -1, false
	}
	if !f.brokerEpochKnown {
		return -1, true
	}
	return f.brokerEpoch, true
}

// minus is isr without the ids in drop, in isr's order.
func minus(isr, drop []int32) []int32 {
	out := make([]int32, 0, len(isr))
	for _, id := range isr {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}
