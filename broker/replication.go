package broker

// Replication, the leader's side (issue 16; Kafka's Partition.scala on a
// leader). Cluster mode only; a single node and a partition with one
// replica are untouched: their logs stay in storage's local mode, where
// the high watermark follows completed writes.
//
//   - Follower fetches (01_fetch.go, replica_id >= 0) read up to the log
//     end (storage.Log.ReadReplica), long-poll on the log end, and report
//     the follower's log end (its fetch offset): isrState.fetched, then
//     advanceHW.
//   - The high watermark of a partition led here whose ISR has more than
//     this node is the smallest log end over the ISR, plus the followers an
//     expansion in flight adds (isrState.maximalISR, highWatermark),
//     set with storage.Log.SetHighWatermark (replicated mode). An ISR of
//     this node alone puts the log back in local mode (FollowWrites).
//   - acks=all produces wait for the high watermark (produce_acks.go).
//   - The ISR changes through the controller: a periodic check (every
//     replica.lag.time.max.ms / 2, as Kafka's isr-expiration task) sends an
//     AlterPartition removing the followers that have not caught up for
//     replica.lag.time.max.ms, and a follower fetch that reaches the high
//     watermark sends one adding it back; at most one in flight per
//     partition. The image's ISR is the truth: nothing changes here until
//     the image carrying the change is applied (follow).
//
// Locks: isrState.hwMu serializes the log's mode and high-watermark
// changes of one partition (so a stale fetch cannot put a log back in
// replicated mode after the ISR shrank to this node); it is taken before
// isrState.mu, and the log's waiters (acks=all, fetches) run under it:
// they must not take it.
//
// The high watermark survives a restart as in Kafka: the registry opens
// every log of a cluster node in replicated mode from its entry in the log
// dir's replication-offset-checkpoint (storage/hw_checkpoint.go, written
// every replica.high.watermark.checkpoint.interval.ms and at shutdown), so
// a restarted leader neither exposes records above the high watermark it
// had nor makes consumers wait for one it knew.

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/ratelog"
	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/proto"
)

// defaultReplicaLagTimeMax is replica.lag.time.max.ms's default (Kafka's).
const defaultReplicaLagTimeMax = 30 * time.Second

// alterPartitionTimeout bounds one AlterPartition round trip.
const alterPartitionTimeout = 30 * time.Second

// replication is the broker's leader side. led holds the partitions this
// node leads that have more than one replica: those the ISR check visits.
type replication struct {
	b     *Broker
	lagMs int64

	mu      sync.Mutex
	led     map[*Partition]struct{}
	started bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}

	acks ackWaits // produce_acks.go
	// stopped: close ran; acks=all produces no longer wait.
	stopped atomic.Bool
}

func newReplication(b *Broker) *replication {
	lag := b.opts.ReplicaLagTimeMax
	if lag <= 0 {
		lag = defaultReplicaLagTimeMax
	}
	return &replication{b: b, lagMs: lag.Milliseconds(), led: map[*Partition]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// follow applies the image's view of a local partition: leadership, the
// replica set and ISR, the log's mode and high watermark. Called by
// syncTopic on the metadata applier goroutine.
func (r *replication) follow(p *Partition, mp metadata.Partition) {
	self := r.b.opts.NodeID
	s := &p.lead
	s.hwMu.Lock()
	defer s.hwMu.Unlock()
	s.mu.Lock()
	_, lost := s.follow(self, mp.Leader, mp.LeaderEpoch, mp.PartitionEpoch, mp.Replicas, mp.ISR, p.Log.LogEndOffset(), r.b.clock.Now().UnixMilli())
	leading := s.leading
	multi := leading && len(s.replicas) > 1
	s.mu.Unlock()
	if lost {
		r.acks.failPartition(p, kerr.NotLeaderForPartition.Code)
	}
	r.mu.Lock()
	if multi {
		r.led[p] = struct{}{}
		r.startLocked()
	} else {
		delete(r.led, p)
	}
	r.mu.Unlock()
	if leading {
		r.applyHWLocked(p)
	}
}

// forget drops a partition whose log is going away (topic deleted,
// replica moved off this node).
func (r *replication) forget(p *Partition) {
	r.mu.Lock()
	delete(r.led, p)
	r.mu.Unlock()
	r.acks.failPartition(p, kerr.NotLeaderForPartition.Code)
}

// applyHWLocked puts a partition led here in the log mode its ISR calls
// for and moves the high watermark: replicated mode with the smallest log
// end over the ISR when the ISR has another member, else local mode.
// REQUIRES: p.lead.hwMu held.
func (r *replication) applyHWLocked(p *Partition) {
	s := &p.lead
	leo := p.Log.LogEndOffset()
	s.mu.Lock()
	if !s.leading {
		s.mu.Unlock()
		return
	}
	s.replicated = len(s.maximalISR()) > 1
	replicated := s.replicated
	hw := s.highWatermark(r.b.opts.NodeID, leo)
	s.mu.Unlock()
	switch {
	case replicated:
		p.Log.SetHighWatermark(hw) // wakes consumer fetches and acks=all waiters
	case p.Log.Replicated():
		p.Log.FollowWrites()
	}
}

// followerFetched records a follower's fetch of a partition led here
// (fetch offset = its log end, leaderLEO = the leader's log end when the
// fetch read, brokerEpoch = the fetch's replica_state.replica_epoch, -1
// before v15), moves the high watermark, and asks the controller to add
// the follower back to the ISR when it caught up. It reports false when
// replica is not a follower of the partition here, or when brokerEpoch is
// older than the follower's registration in the image (a fetcher of the
// follower's previous incarnation: Kafka answers NOT_LEADER_OR_FOLLOWER).
func (r *replication) followerFetched(p *Partition, replica int32, fetchOffset, leaderLEO, brokerEpoch int64) bool {
	registered := int64(-1)
	if br, ok := r.b.image().Broker(replica); ok {
		registered = br.Epoch
	}
	s := &p.lead
	s.hwMu.Lock()
	s.mu.Lock()
	ok := s.fetched(replica, fetchOffset, leaderLEO, r.b.clock.Now().UnixMilli(), brokerEpoch, registered)
	s.mu.Unlock()
	if !ok && brokerEpochStale(brokerEpoch, registered) {
		if n, logIt := staleFetchLog.Event(10 * time.Second); logIt {
			r.b.log.Info("follower fetch with a stale broker epoch refused (NOT_LEADER_OR_FOLLOWER)", zap.String("topic", p.Topic.Name), zap.Int32("partition", p.Index),
				zap.Int32("replica", replica), zap.Int64("fetch_broker_epoch", brokerEpoch), zap.Int64("registered_broker_epoch", registered), zap.Int64("refusals_since_last_line", n))
		}
	}
	if ok {
		r.applyHWLocked(p)
	}
	s.hwMu.Unlock()
	if ok {
		r.maybeExpand(p)
	}
	return ok
}

// isFollower reports whether replica is another replica of a partition led
// here.
func (r *replication) isFollower(p *Partition, replica int32) bool {
	s := &p.lead
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.followers[replica]
	return ok && s.leading
}

// inSync is the size of p's ISR in the image (min.insync.replicas counts
// it), math.MaxInt before the image was followed (a partition being
// created: nothing to refuse on).
func (r *replication) inSync(p *Partition) int {
	s := &p.lead
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isrSizeLocked()
}

// isrSizeLocked is inSync's answer. REQUIRES: s.mu held.
func (s *isrState) isrSizeLocked() int {
	if !s.set {
		return math.MaxInt
	}
	return len(s.isr)
}

// ackState says how an acks=all append to p is answered: wait for the
// high watermark (replicated: led here with a maximal ISR beyond this
// node), or at once, with NOT_LEADER_OR_FOLLOWER when this node no longer
// leads a partition with other replicas (lost: the append may never reach
// them), else NONE. isr is inSync's answer, read under the same lock.
func (r *replication) ackState(p *Partition) (replicated, lost bool, isr int) {
	s := &p.lead
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading && s.replicated, s.set && !s.leading && len(s.replicas) > 1, s.isrSizeLocked()
}

// maybeExpand sends an AlterPartition adding the followers that caught
// up, unless one is in flight. The followers count in the maximal ISR at
// once: the log goes to replicated mode (if it was not) and the high
// watermark stops at their log ends. The check and that switch are one
// step under hwMu; if the high watermark had already moved past a
// follower's log end (a local-mode write meanwhile), the expansion is
// dropped and the next fetch tries again.
func (r *replication) maybeExpand(p *Partition) {
	s := &p.lead
	s.hwMu.Lock()
	defer s.hwMu.Unlock()
	hw := p.Log.HighWatermark()
	im := r.b.image()
	s.mu.Lock()
	if !s.leading || s.alterInFlight {
		s.mu.Unlock()
		return
	}
	add := s.caughtUp(hw, func(id int32) (int64, bool) {
		br, ok := im.Broker(id)
		return br.Epoch, ok && !br.Fenced && !br.InControlledShutdown
	})
	if len(add) == 0 {
		s.mu.Unlock()
		return
	}
	lowest := int64(math.MaxInt64)
	for _, id := range add {
		lowest = min(lowest, s.followers[id].leo)
	}
	isr := append(slices.Clone(s.isr), add...)
	s.pending = isr
	s.mu.Unlock()
	r.applyHWLocked(p)
	if p.Log.HighWatermark() > lowest {
		s.mu.Lock()
		s.pending = nil
		s.mu.Unlock()
		r.applyHWLocked(p)
		return
	}
	s.mu.Lock()
	r.alterLocked(p, isr)
	s.mu.Unlock()
	r.b.log.Info("follower caught up: adding it to the ISR", zap.String("topic", p.Topic.Name), zap.Int32("partition", p.Index), zap.Int32s("add", add), zap.Int32s("isr", isr))
}

// maybeShrink sends an AlterPartition removing the ISR followers that
// have not caught up for replica.lag.time.max.ms, unless one is in flight.
func (r *replication) maybeShrink(p *Partition, nowMs int64) {
	leo := p.Log.LogEndOffset()
	s := &p.lead
	s.mu.Lock()
	if !s.leading || s.alterInFlight {
		s.mu.Unlock()
		return
	}
	out := s.outOfSync(r.b.opts.NodeID, leo, nowMs, r.lagMs)
	if len(out) == 0 {
		s.mu.Unlock()
		return
	}
	isr := minus(s.isr, out)
	r.alterLocked(p, isr)
	s.mu.Unlock()
	r.b.log.Info("followers out of sync: removing them from the ISR", zap.String("topic", p.Topic.Name), zap.Int32("partition", p.Index),
		zap.Int32s("remove", out), zap.Int32s("isr", isr), zap.Int64("replica_lag_time_max_ms", r.lagMs))
}

var alterErrLog, staleFetchLog ratelog.Every

// divergingEpoch is a Fetch response's diverging_epoch (Kafka's
// FetchResponseData.EpochEndOffset): the largest epoch of this leader's
// log not above the follower's last fetched epoch, and where it ends.
type divergingEpoch struct {
	epoch     int32
	endOffset int64
}

// appendTag writes a partition's tagged-field section holding
// diverging_epoch (tag 0 of Fetch v12+ partitions): epoch, end offset,
// and the struct's own empty tag section.
func (d *divergingEpoch) appendTag(w *proto.Writer) {
	w.Uvarint(1) // one tagged field
	w.Uvarint(0) // diverging_epoch
	w.Uvarint(4 + 8 + 1)
	w.Int32(d.epoch)
	w.Int64(d.endOffset)
	w.Tags()
}

// divergence checks a follower fetch carrying lastFetchedEpoch at
// fetchOffset against p's epoch cache, as Kafka's Partition.readRecords:
// the end of lastFetchedEpoch as OffsetForLeaderEpoch would answer it
// (the leader's current epoch counted at its log end); an epoch this log
// cannot place, or a fetch offset below the log start, is
// OFFSET_OUT_OF_RANGE; a smaller epoch found, or an end below the fetch
// offset, is a divergence: the follower truncates there (and asks again)
// before it fetches. Otherwise (0, nil): read as usual.
func (r *replication) divergence(p *Partition, lastFetchedEpoch int32, fetchOffset int64) (int16, *divergingEpoch) {
	epoch, end := p.Log.EndOffsetForEpochAsLeader(lastFetchedEpoch, p.leaderEpoch.Load())
	if epoch < 0 || end < 0 {
		return kerr.OffsetOutOfRange.Code, nil
	}
	if fetchOffset < p.Log.LogStartOffset() {
		return kerr.OffsetOutOfRange.Code, nil
	}
	if epoch < lastFetchedEpoch || end < fetchOffset {
		return 0, &divergingEpoch{epoch: epoch, endOffset: end}
	}
	return 0, nil
}

// alterLocked sends an AlterPartition asking for isr, on a goroutine of
// its own. REQUIRES: p.lead.mu held.
func (r *replication) alterLocked(p *Partition, isr []int32) {
	s := &p.lead
	s.alterInFlight, s.pending = true, isr
	im := r.b.image()
	ap := kmsg.NewAlterPartitionRequestTopicPartition()
	ap.Partition, ap.LeaderEpoch, ap.PartitionEpoch = p.Index, s.leaderEpoch, s.partitionEpoch
	for _, id := range isr {
		// This node's own epoch from the image; a follower's from its
		// last fetch, -1 when none came yet (Kafka's addBrokerEpochToIsr):
		// the controller refuses a member whose given epoch is not its
		// registration's (INELIGIBLE_REPLICA), so a follower that
		// restarted since its fetch does not enter the ISR on the strength
		// of its previous incarnation's log.
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = id, -1
		if epoch, ok := s.followerBrokerEpoch(id); ok {
			e.BrokerEpoch = epoch
		} else if br, ok := im.Broker(id); ok && id == r.b.opts.NodeID {
			e.BrokerEpoch = br.Epoch
		}
		ap.NewEpochISR = append(ap.NewEpochISR, e)
		ap.NewISR = append(ap.NewISR, id)
	}
	t := kmsg.NewAlterPartitionRequestTopic()
	t.TopicID, t.Topic = p.Topic.ID, p.Topic.Name
	t.Partitions = []kmsg.AlterPartitionRequestTopicPartition{ap}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), alterPartitionTimeout)
		defer cancel()
		resp, err := r.b.opts.Cluster.AlterPartition(ctx, []kmsg.AlterPartitionRequestTopic{t})
		code := int16(0)
		if err == nil {
			code = resp.ErrorCode
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if code == 0 {
						code = rp.ErrorCode
					}
				}
			}
		}
		// The image carrying the change was applied before the answer
		// (cluster.Node.AlterPartition): the next check sees the new ISR.
		// A refused expansion leaves the maximal ISR: the log may go back
		// to local mode.
		s.hwMu.Lock()
		s.mu.Lock()
		s.alterInFlight, s.pending = false, nil
		s.mu.Unlock()
		r.applyHWLocked(p)
		s.hwMu.Unlock()
		if err != nil || code != 0 {
			if n, ok := alterErrLog.Event(time.Second); ok {
				b := r.b
				b.log.Warn("AlterPartition refused or failed; the next check retries", zap.String("topic", p.Topic.Name), zap.Int32("partition", p.Index),
					zap.Int32s("isr", isr), zap.Int16("error_code", code), zap.Error(err), zap.Int64("failures_since_last_line", n))
			}
		}
	}()
}

// startLocked starts the ISR check the first time a partition needs it.
// REQUIRES: r.mu held.
func (r *replication) startLocked() {
	if r.started || r.closed {
		return
	}
	r.started = true
	go r.checkLoop()
}

// checkLoop runs the ISR shrink (and expand) check every
// replica.lag.time.max.ms / 2 until close.
func (r *replication) checkLoop() {
	defer close(r.done)
	every := max(time.Duration(r.lagMs)*time.Millisecond/2, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var parts []*Partition
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		parts = parts[:0]
		for p := range r.led {
			parts = append(parts, p)
		}
		r.mu.Unlock()
		now := r.b.clock.Now().UnixMilli()
		for _, p := range parts {
			r.maybeShrink(p, now)
			r.maybeExpand(p)
		}
	}
}

// close stops the ISR check and answers every waiting acks=all produce
// with NOT_LEADER_OR_FOLLOWER (retriable: the producer retries against the
// next leader).
func (r *replication) close() {
	r.stopped.Store(true)
	r.mu.Lock()
	started := r.started
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	r.mu.Unlock()
	if started {
		<-r.done
	}
	r.acks.failAll(kerr.NotLeaderForPartition.Code)
}

// StopReplication stops the leader's ISR check and answers the acks=all
// produces still waiting for followers (NOT_LEADER_OR_FOLLOWER, so their
// producers retry against the next leader). Call it before draining the
// server: those answers would otherwise wait out their timeouts. Close
// calls it too.
func (b *Broker) StopReplication() { b.repl.close() }

// ReplicaStartedOver is the replica fetcher's word that the follower log
// of topic/partition was replaced by an empty one at start (its leader's
// log starts past what this node had: storage.Log.TruncateFullyAndStartAt).
// The producer state is dropped and every producer state snapshot
// removed, as Kafka's truncateFullyAndStartAt empties its
// ProducerStateManager: each described records that are gone, and a
// later load (when this node leads) must read the state from the new log
// alone, not from a snapshot of the old one. A snapshot that cannot be
// removed is logged.
func (b *Broker) ReplicaStartedOver(topic string, partition int32, start int64) {
	if !b.dropReplicaProducerState(topic, partition, -1, "removing a producer state snapshot of a follower log that started over") {
		return
	}
	b.log.Info("follower log started over at its leader's log start: producer state dropped", zap.String("topic", topic), zap.Int32("partition", partition), zap.Int64("start", start))
}
