package broker

// Fetch from the closest replica (KIP-392), on with replica.selector.class
// set to Kafka's RackAwareReplicaSelector (Options.RackAwareReplicaSelector).
// 01_fetch.go calls in here for consumer fetches (replica_id -1) of v11+,
// where the request carries the client's rack (rack_id, client.rack).
//
// Leader side (Kafka's ReplicaManager.findPreferredReadReplica with
// RackAwareReplicaSelector.select): when the client named a rack that is
// not the leader's, the candidates are the replicas in the image's ISR
// other than the leader whose last fetch offset (log end) is at or past
// the fetch offset and whose log start (as their last fetch said) is at or
// before it, whose broker is registered, unfenced, not in controlled
// shutdown and has an endpoint, and whose rack is the client's. The most
// caught up one wins: largest log end, then shortest time since it was last
// caught up, then the lowest id (deterministic). The partition is then
// answered with preferred_read_replica = that id, no records, the leader's
// high watermark, last stable offset and log start, and the response
// leaves at once (no long poll), as Kafka's. No candidate, or the leader in
// the client's rack: -1 and the leader serves the read.
//
// Follower side (Kafka's Partition.fetchRecords for a consumer, with
// fetchOnlyLeader false): a partition this node holds but does not lead is
// read up to its high watermark: the smaller of the log's and the leader's
// as the replica fetcher last set it (FollowerLog; bounded by the local log
// end). An offset between that and the log end gives no records and no
// error (a long poll waits for the high watermark; while the log's own is
// above the leader's, a transient state after a restart, it may wait out
// max_wait_ms), one below the log start or past the log end
// OFFSET_OUT_OF_RANGE (what Kafka's LocalLog.read answers; clients then go
// back to the leader). The leader epoch is checked as on the leader. The
// follower's answer always has preferred_read_replica -1 unless it sends
// the client back to the leader (below).
//
// read_committed on a follower (Kafka's followers keep a
// ProducerStateManager through appendAsFollower): the follower loads the
// partition's producer state from its log as the leader does (loadStates),
// and its replica fetcher replays the batches it appends into that state
// (Broker.FollowerLog, followReplicated: producers, open transactions, and
// the transaction index entries of ABORT markers) before it moves the high
// watermark. The follower's last stable offset is the smallest of what its
// consumers may see (the high watermark above), the end of what was
// replayed, and the first offset of every open transaction; read_committed
// reads stop there and carry the aborted transactions below it. A parked
// read_committed fetch on a follower wakes with the high watermark (a
// marker that moves only the LSO is seen at the next move or at
// max_wait_ms).
//
// Differences from Apache Kafka:
//   - A follower serves consumer fetches only when the selector is set on
//     it (Kafka serves every v11+ consumer fetch on a follower); without
//     it such a fetch is NOT_LEADER_OR_FOLLOWER, as before KIP-392.
//   - A follower outside the partition's ISR, or whose replica fetcher has
//     not set a high watermark from the leader since this process started
//     (or whose log is still in local mode), answers
//     preferred_read_replica = the leader and no records
//     (NOT_LEADER_OR_FOLLOWER when the partition has no live leader), so
//     the client goes back to the leader at once; Kafka serves from a
//     lagging follower until the client's preferred replica expires.
//   - A follower's last_stable_offset is -1 for read_uncommitted fetches
//     (its producer state is loaded for read_committed ones only).

import (
	"errors"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

// leaderHW is what a follower's replica fetcher last learnt of the
// leader's high watermark (bounded by the local log end, as the fetcher
// sets it): known is false until the first time since the process started.
type leaderHW struct {
	known atomic.Bool
	hw    atomic.Int64
}

// FollowerLog is a partition's log as its replica fetcher writes it
// (replica.Log): SetHighWatermark also remembers the value. The log's own
// high watermark never goes back and may be above the leader's: it starts
// at the log end when the log opens, and a write in local mode (before the
// fetcher's first SetHighWatermark) moves it to the log end. Consumer reads
// on a follower stop at the smaller of the two, and wait for the leader's
// before the first one (readAsFollower).
type FollowerLog struct {
	*storage.Log
	p *Partition
	// b replays into the producer state (nil: no replay). A pointer, not
	// a func: the replica manager compares assignments, logs included.
	b *Broker
}

// FollowerLog must stay comparable (a map key type must be): the replica
// manager compares assignments with ==, and an uncomparable one panics.
var _ map[FollowerLog]struct{}

// FollowerLog returns p's log for its replica fetcher, without producer
// state replay (Broker.FollowerLog has it): a follower's read_committed
// reads then stop at the end of what its state covers.
func (p *Partition) FollowerLog() FollowerLog { return FollowerLog{Log: p.Log, p: p} }

// FollowerLog returns p's log for its replica fetcher: SetHighWatermark
// first replays what the fetcher appended into p's producer state when it
// is loaded (followReplicated).
func (b *Broker) FollowerLog(p *Partition) FollowerLog {
	return FollowerLog{Log: p.Log, p: p, b: b}
}

// SetHighWatermark replays the appended batches into the producer state
// (when b is set), records hw as the leader's, then sets the log's
// (storage.Log.SetHighWatermark). The replay and the record come first, so
// that a consumer fetch the log's move wakes reads a last stable offset
// covering every batch below hw.
func (f FollowerLog) SetHighWatermark(hw int64) int64 {
	if f.b != nil {
		f.b.followReplicated(f.p)
	}
	f.p.fromLeader.hw.Store(hw)
	f.p.fromLeader.known.Store(true)
	return f.Log.SetHighWatermark(hw)
}

// followerServes reports whether this fetch may be served from the
// partitions this node follows: a consumer fetch of v11+ in a cluster with
// the rack-aware selector set here.
func (op *fetchOp) followerServes() bool {
	b := op.b
	return b.opts.RackAwareReplicaSelector && b.opts.Cluster != nil && op.replica < 0 && op.hdr.APIVersion >= 11
}

// preferredReadReplica is the replica a consumer in clientRack fetching
// p (led here) at fetchOffset should read from, -1 for this leader (see the
// file comment).
func (b *Broker) preferredReadReplica(p *Partition, clientRack string, fetchOffset int64) int32 {
	if !b.opts.RackAwareReplicaSelector || clientRack == "" || b.opts.Cluster == nil {
		return -1
	}
	im := b.image()
	if self, ok := im.Broker(b.opts.NodeID); ok && self.Rack == clientRack {
		return -1 // the leader is in the client's rack
	}
	type candidate struct {
		id           int32
		leo, sinceMs int64
	}
	var buf [4]candidate
	cands := buf[:0]
	nowMs := b.clock.Now().UnixMilli()
	s := &p.lead
	s.mu.Lock()
	if s.leading {
		for _, id := range s.isr {
			f, ok := s.followers[id]
			if !ok || id == b.opts.NodeID || f.leo < fetchOffset || f.logStart > fetchOffset {
				continue
			}
			cands = append(cands, candidate{id: id, leo: f.leo, sinceMs: nowMs - f.lastCaughtUpMs})
		}
	}
	s.mu.Unlock()
	best := candidate{id: -1}
	for _, c := range cands {
		br, ok := im.Broker(c.id)
		if !ok || br.Fenced || br.InControlledShutdown || br.Rack != clientRack {
			continue
		}
		if _, ok := b.brokerEndpoint(br); !ok {
			continue
		}
		if best.id < 0 || c.leo > best.leo || c.leo == best.leo && (c.sinceMs < best.sinceMs || c.sinceMs == best.sinceMs && c.id < best.id) {
			best = c
		}
	}
	return best.id
}

// setFollowerLogStart records the log start offset a follower's fetch
// reported (the selector's lower bound). A replica that is not a follower
// here is ignored.
func (s *isrState) setFollowerLogStart(id int32, logStart int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.followers[id]; ok && s.leading {
		f.logStart = logStart
	}
}

// followerInSync reports whether this node is in the image's ISR of p,
// which it follows.
func (b *Broker) followerInSync(p *Partition) bool {
	s := &p.lead
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.set {
		return false
	}
	for _, id := range s.isr {
		if id == b.opts.NodeID {
			return true
		}
	}
	return false
}

// readAsFollower is read for a consumer fetch of a partition this node
// follows (it.follower; see the file comment). res is read's empty result.
func (op *fetchOp) readAsFollower(it *fetchItem, res fetchResult, budget int64, first bool) fetchResult {
	p := it.part
	if code := checkPartitionEpoch(p, it.currentEpoch); code != 0 {
		res.errorCode = code
		return res
	}
	l := p.Log
	if !l.Replicated() || !p.fromLeader.known.Load() || !op.b.followerInSync(p) {
		leader := op.b.currentLeader(p.Topic.Name, p.Index)
		if leader == nil || leader.id == op.b.opts.NodeID {
			res.errorCode = kerr.NotLeaderForPartition.Code
			return res
		}
		res.preferred = leader.id
		res.hw, res.logStart = l.HighWatermark(), l.LogStartOffset()
		return res
	}
	upper := min(l.HighWatermark(), p.fromLeader.hw.Load())
	if op.readCommitted {
		ps := op.b.produce.part(p)
		if !ps.loaded.Load() {
			res.errorCode = kerr.KafkaStorageError.Code // its load failed (logged)
			return res
		}
		upper = ps.followerStableOffset(upper)
		res.lso = upper
	}
	if budget > 0 || first {
		max := int64(it.maxBytes)
		if !first && budget < max {
			max = budget
		}
		reg, err := l.ReadBelow(it.fetchOffset, int(max), upper)
		switch {
		case errors.Is(err, storage.ErrOffsetOutOfRange):
			res.errorCode = kerr.OffsetOutOfRange.Code
		case errors.Is(err, storage.ErrClosed):
			res.errorCode = kerr.UnknownTopicOrPartition.Code // deleted meanwhile (as on the leader)
		case err != nil:
			res.errorCode = kerr.KafkaStorageError.Code
			if !errors.Is(err, storage.ErrLogDirOffline) { // (logged once: log_dir_failure.go)
				op.b.log.Warn("follower fetch read failed", zap.String("topic", p.Topic.Name), zap.Int32("partition", p.Index), zap.Error(err))
			}
		case !first && reg.Len > budget:
			reg.Release()
		default:
			res.region = reg
		}
	}
	// After the read, as on the leader: the high watermark covers what
	// was read. A long poll waits for the log's own to move (waitHW) when
	// it is above the leader's; such a wait may last until max_wait_ms.
	res.waitHW = l.HighWatermark()
	res.hw = min(res.waitHW, p.fromLeader.hw.Load())
	res.logStart = l.LogStartOffset()
	if op.readCommitted && res.errorCode == 0 {
		res.aborted = []proto.AbortedTransaction{}
		if res.region.Len > 0 {
			for _, a := range l.AbortedTxns(it.fetchOffset, res.lso) {
				res.aborted = append(res.aborted, proto.AbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
			}
		}
	}
	return res
}

// followerStableOffset is a follower partition's last stable offset for a
// consumer that may see up to visible: below it, the end of what the
// state replayed, and the first offset of every open transaction.
func (ps *partState) followerStableOffset(visible int64) int64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	lso := min(visible, ps.completedEnd)
	for t := range ps.ongoing {
		lso = min(lso, t.first)
	}
	return lso
}

// followReplicated brings a follower's loaded producer state up to the log
// end: the batches the replica fetcher appended since the state's end are
// replayed as a load replays the log (scanProducerBatches: producers, open
// transactions, markers and the transaction index entries of ABORTs), as
// Kafka's appendAsFollower updates its ProducerStateManager. It runs on the
// fetcher's goroutine before the high watermark moves (FollowerLog). The
// state's lock is held across the reads: only this partition's fetches
// and snapshot wait on it, and the batches were just written (page
// cache). An unloaded state is left alone (its load reads the log); a
// failed replay forgets the state, which the next reader loads again.
func (b *Broker) followReplicated(p *Partition) {
	v, ok := b.produce.parts.Load(p)
	if !ok {
		return
	}
	ps := v.(*partState)
	if !ps.loaded.Load() {
		return
	}
	l := p.Log
	ps.mu.Lock()
	from, to := max(ps.completedEnd, l.LogStartOffset()), l.LogEndOffset()
	var err error
	if to > from {
		if err = scanProducerBatches(l, from, to, ps.producers, ps.ongoing); err == nil {
			ps.completedEnd = to
		}
	}
	ps.mu.Unlock()
	if err != nil {
		b.log.Warn("replaying replicated batches into a follower's producer state failed; it is read from the log again when next needed",
			zap.String("topic", p.Topic.Name), zap.Int32("partition", p.Index), zap.Error(err))
		b.forgetProducerState([]*Partition{p})
	}
}
