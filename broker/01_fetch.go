package broker

// Fetch (key 1), versions 4-16 (Kafka 4 serves 4-17; 17 adds replica
// directory ids for KRaft followers only).
//
// Behaviour:
//   - Record bytes leave straight from the segment files: the response is
//     encoded around holes that netpoll fills by splice (io_uring) or
//     sendfile (portable). fetch.zero.copy=false reads them with pread and
//     sends them from memory instead, for comparison, as long as the
//     process-wide copy budget (queued.max.request.bytes) has room; bytes
//     beyond it are spliced anyway. Regions up to fetch.copy.max.bytes are
//     copied too (copySmall): a splice hands each chunk to io_uring's kernel
//     workers twice, which dominated the tail of small answers
//     (docs/BENCHMARKS.md, tail investigation).
//   - Long polling: when fewer than min_bytes are available and max_wait_ms
//     is not over, the fetch registers as a waiter on every log it reads
//     and on a timer; an append that advances a high watermark wakes it (no
//     polling loop); in replicated mode the high watermark moves when the
//     followers report (replication.go), and a follower's fetch waits on
//     the log end instead. It then re-reads; until the deadline it waits again
//     while still under min_bytes.
//   - max_bytes and partition_max_bytes as KIP-74: the first batch of the
//     response is returned whole even when larger; later partitions stop
//     before exceeding max_bytes.
//   - Incremental fetch sessions (KIP-227), see fetch_session.go.
//   - Isolation: read_committed reads stop at the
//     partition's last stable offset (storage.Log.ReadBelow: the records
//     still leave from the file) and carry the aborted transactions
//     (producer id, first offset) overlapping [fetch offset, LSO), from the
//     transaction indexes (storage.Log.AbortedTxns); last_stable_offset is
//     the LSO at both isolation levels. A partition whose producer state
//     is not loaded yet (first fetch after a start) is loaded on its produce
//     worker first; the fetch waits for it like a long poll (at both
//     isolation levels: last_stable_offset comes from it).
//
//   - Cluster mode: current_leader_epoch is checked against the image's
//     (FENCED_LEADER_EPOCH below it, UNKNOWN_LEADER_EPOCH above; -1 skips;
//     a session partition not named in the request is not checked).
//   - Follower fetches (cluster mode; replica_id, v15+ replica_state.replica_id,
//     >= 0): the partition must be led here (NOT_LEADER_OR_FOLLOWER) and
//     the replica one of its followers, else UNKNOWN_LEADER_EPOCH when the
//     request gave a leader epoch, NOT_LEADER_OR_FOLLOWER otherwise, as
//     Kafka's followerReplicaOrThrow; with an authorizer the
//     principal needs CLUSTER_ACTION on the cluster (else every partition
//     is TOPIC_AUTHORIZATION_FAILED), as in Kafka. They read up to the log
//     end (storage.Log.ReadReplica), not the high watermark, long-poll on
//     the log end, and report the follower's log end (its fetch offset)
//     to the leader's ISR state (replication.go), which may move the high
//     watermark; the response's high watermark is the leader's after that.
//     A v15+ fetch whose replica_state.replica_epoch (not -1) is older than
//     the follower's registration is answered NOT_LEADER_OR_FOLLOWER and
//     recorded nowhere, as Kafka's updateFetchStateOrThrow.
//
//   - A follower fetch (v12+, sessionless) with last_fetched_epoch >= 0 is
//     checked as Kafka's Partition.readRecords does: the end of that epoch
//     in this leader's epoch cache (as OffsetForLeaderEpoch answers it);
//     when the epoch is unknown here OFFSET_OUT_OF_RANGE, when the fetch
//     offset is below the log start OFFSET_OUT_OF_RANGE, when the epoch
//     found is smaller or ends below the fetch offset no records but
//     diverging_epoch (tag 0: that epoch and its end offset), and the
//     follower's fetch is not recorded (replication.go:divergence).
//
//   - KIP-392 (fetch_preferred.go): with replica.selector.class set, a
//     consumer fetch (v11+) naming a rack may be answered with a
//     preferred_read_replica in that rack instead of records, and a
//     partition this node follows serves consumer fetches up to its high
//     watermark.
//
//   - Quotas (quota.go): a consumer's response bytes count toward
//     consumer_byte_rate; its size is capped, as Kafka's, to what the
//     quota window allows (quota x (quota.window.num - 1) x window), at
//     least one batch still going out (KIP-74). When the client owes a
//     throttle (consumer_byte_rate or request_percentage) the answer is
//     Kafka's throttled response (KIP-219): no partitions, the throttle in
//     throttle_time_ms, the response's bytes taken back off the rate, and
//     the connection is not read for that long.
//
// Differences from Apache Kafka:
//   - no preferred read replica unless replica.selector.class is set
//     (fetch_preferred.go); last_fetched_epoch is checked for follower
//     fetches only (Kafka checks a consumer's too), and not for a
//     partition a fetch session carries over unnamed;
//   - a single node (no cluster) serves replica fetches as consumer
//     fetches: it has no followers;
//   - a partition that does not exist is answered with its error and not
//     kept in the session; the cache also bounds partitions over all
//     sessions (fetch_session.go).

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/internal/reqtrace"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/quota"
	"github.com/ringbroker/ringbroker/storage"
)

func init() {
	register(decoded(kmsg.Fetch, 4, 16, scoped, (*Broker).serveFetch))
}

// maxFetchWait bounds max_wait_ms so a client cannot park a request (and
// its connection's queue) for ever.
const maxFetchWait = 5 * time.Minute

type fetchItem struct {
	key         sessionKey
	topic       *Topic
	part        *Partition
	fetchOffset int64
	maxBytes    int32
	sp          *sessionPartition // nil outside a session
	// notLeader: the partition exists in the cluster but this node does
	// not lead it, or the fetching replica is not its follower (part is
	// nil): NOT_LEADER_OR_FOLLOWER.
	notLeader bool
	// reported: a follower fetch's offset went to the ISR state (once per
	// request, on its first read).
	reported bool
	// currentEpoch is the request's current_leader_epoch for the
	// partition (-1: not given), checked in a cluster (read).
	currentEpoch int32
	// denied: the principal may not READ the topic (part is nil):
	// TOPIC_AUTHORIZATION_FAILED (authz.go).
	denied bool
	// lastFetchedEpoch: a follower fetch's last_fetched_epoch (v12+,
	// sessionless; -1: not given), checked for divergence (replication.go).
	lastFetchedEpoch int32
	// follower: a consumer fetch of a partition this node follows, served
	// here (KIP-392, fetch_preferred.go).
	follower bool
	// followerLogStart: a follower fetch's log_start_offset (-1: not
	// given), for the rack-aware selector.
	followerLogStart int64
}

// fetchOp is one Fetch request from parse to response.
type fetchOp struct {
	b        *Broker
	req      netpoll.Request
	hdr      proto.RequestHeader
	maxBytes int32
	minBytes int32
	deadline time.Time
	session  *fetchSession // nil: sessionless
	full     bool          // full fetch: every item goes in the response
	items    []fetchItem
	// readCommitted: the request's isolation_level is 1. loadTried:
	// producer state loads were asked for once (loadStates).
	readCommitted, loadTried bool
	// replica is the fetching follower's broker id, -1 for a consumer.
	// replicaDenied: a follower fetch without CLUSTER_ACTION.
	replica       int32
	replicaDenied bool
	// replicaEpoch is a follower fetch's broker epoch (v15+
	// replica_state.replica_epoch; -1 before), checked by the ISR state.
	replicaEpoch int64
	// clientRack is a consumer's rack_id (v11+, KIP-392), "" when none.
	clientRack string
	// epochs: the current_leader_epoch of this request's partitions, for
	// the items a session adds (cluster mode; nil when none was given).
	epochs map[sessionKey]int32
	// quota is who the response's bytes count for (consumer_byte_rate;
	// quota.go); zero for a follower.
	quota        quotaClient
	requestQuota quotaClient // request_percentage
	// dropSession: a throttled full fetch's new session, not handed out
	// (replyThrottled); guarded by session.mu.
	dropSession bool

	// long poll: mu guards timer and waiting between wait (registering)
	// and wake (which may start before wait has finished registering).
	state   atomic.Int32 // 0 waiting, 1 woken
	mu      sync.Mutex
	timer   clock.Timer
	waiting []*storage.Log
	// lsoWaiting: partitions whose LSO the fetch waits on (read_committed).
	lsoWaiting []*partState
	// woken: evaluate runs on the goroutine of a wake-up (op.wake), not on
	// a ring thread (the one that received the request, or the loop a
	// wake-up ran on: wakeOnLoop); attach may pread there.
	woken bool
}

func (b *Broker) serveFetch(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.FetchRequest) {
	req.Trace().Mark(reqtrace.Parsed) // internal/reqtrace (benchmarks)
	op := &fetchOp{b: b, req: req, hdr: hdr, maxBytes: r.MaxBytes, minBytes: r.MinBytes}
	if replica := r.ReplicaID; (hdr.APIVersion < 15 && replica < 0) || (hdr.APIVersion >= 15 && r.ReplicaState.ID < 0) {
		op.quota = b.quotaClientOf(req, &hdr, quota.Fetch) // a consumer, not a follower
		op.requestQuota = b.quotaClientOf(req, &hdr, quota.Request)
	}
	op.hdr.ClientID = nil // aliases the frame
	op.readCommitted = r.IsolationLevel == 1
	op.replica, op.replicaEpoch = -1, -1
	if hdr.APIVersion >= 11 {
		op.clientRack = r.Rack
	}
	if b.opts.Cluster != nil {
		op.replica = r.ReplicaID
		if hdr.APIVersion >= 15 {
			op.replica, op.replicaEpoch = r.ReplicaState.ID, r.ReplicaState.Epoch
		}
		if op.replica >= 0 {
			op.readCommitted = false // a follower reads up to the log end
			op.replicaDenied = !b.authorize(req, acl.OpClusterAction, acl.ResourceCluster, acl.ClusterName)
		}
	}
	if op.maxBytes <= 0 {
		op.maxBytes = 1 << 30
	}
	if op.quota.on { // quota.go: no more than the quota window allows
		op.maxBytes = int32(min(int64(op.maxBytes), b.quotas.mgr.MaxValueInWindow(quota.Fetch, op.quota.user, op.quota.clientID)))
	}
	wait := time.Duration(r.MaxWaitMillis) * time.Millisecond
	if wait > maxFetchWait {
		wait = maxFetchWait
	}
	op.deadline = b.clock.Now().Add(wait)
	if code := op.resolve(r); code != 0 {
		op.replyError(code)
		return
	}
	if op.session != nil {
		op.session.mu.Lock()
		defer op.unlockSession()
	}
	op.evaluate(wait <= 0)
}

// resolve applies the session rules and fills op.items; a non-zero result
// is a top-level error code.
func (op *fetchOp) resolve(r *kmsg.FetchRequest) int16 {
	b := op.b
	v := op.hdr.APIVersion
	id, epoch := r.SessionID, r.SessionEpoch
	if v < 7 {
		id, epoch = 0, -1
	}
	switch {
	case epoch == -1:
		if id != 0 {
			b.fetchSessions.remove(id)
		}
		op.full = true
	case epoch == 0:
		if id != 0 {
			b.fetchSessions.remove(id)
		}
		op.full = true
		op.session = b.fetchSessions.create(op.countExisting(r)) // nil: no room, sessionless
	default:
		s := b.fetchSessions.get(id)
		if s == nil {
			return kerr.FetchSessionIDNotFound.Code
		}
		s.mu.Lock()
		if s.epoch != epoch {
			s.mu.Unlock()
			return kerr.InvalidFetchSessionEpoch.Code
		}
		s.epoch = nextSessionEpoch(s.epoch)
		s.mu.Unlock()
		op.session = s
	}
	s := op.session
	if s == nil {
		for _, t := range r.Topics {
			topic := op.lookup(t.Topic, t.TopicID)
			for _, p := range t.Partitions {
				k := sessionKey{topic: t.Topic, id: t.TopicID, partition: p.Partition}
				it := op.item(k, topic, p.FetchOffset, p.PartitionMaxBytes, nil, p.CurrentLeaderEpoch)
				if op.replica >= 0 && op.hdr.APIVersion >= 12 {
					it.lastFetchedEpoch = p.LastFetchedEpoch
				}
				if op.replica >= 0 && op.hdr.APIVersion >= 5 {
					it.followerLogStart = p.LogStartOffset
				}
				op.items = append(op.items, it)
			}
		}
		return 0
	}
	s.lastUsed.Store(b.fetchSessions.now().UnixNano())
	s.mu.Lock()
	for _, ft := range r.ForgottenTopics {
		for _, p := range ft.Partitions {
			s.forget(sessionKey{topic: ft.Topic, id: ft.TopicID, partition: p})
		}
	}
	// A full fetch's partitions were reserved by create; an incremental one
	// reserves what it may add, and gives back what it did not.
	reserved := s.size.Load()
	if !op.full {
		reserved = int64(op.countExisting(r))
		if !s.reserve(b.fetchSessions, reserved) {
			s.mu.Unlock()
			b.fetchSessions.remove(s.id) // cache.mu before session.mu
			op.session = nil
			return kerr.FetchSessionIDNotFound.Code
		}
	}
	added := int64(0)
	for _, t := range r.Topics {
		topic := op.lookup(t.Topic, t.TopicID)
		for _, p := range t.Partitions {
			k := sessionKey{topic: t.Topic, id: t.TopicID, partition: p.Partition}
			it := op.item(k, topic, p.FetchOffset, p.PartitionMaxBytes, nil, p.CurrentLeaderEpoch)
			if p.CurrentLeaderEpoch >= 0 && b.opts.Cluster != nil {
				if op.epochs == nil {
					op.epochs = map[sessionKey]int32{}
				}
				op.epochs[it.key] = p.CurrentLeaderEpoch
			}
			if it.part == nil {
				// Answered with its error now, not remembered.
				op.items = append(op.items, it)
				continue
			}
			if s.upsert(k, p.FetchOffset, p.PartitionMaxBytes) {
				added++
			}
		}
	}
	s.release(reserved - added)
	var gone []sessionKey
	for _, sp := range s.order {
		if sp.removed {
			continue
		}
		epoch, ok := op.epochs[sp.key]
		if !ok {
			epoch = -1 // not in this request: unknown
		}
		it := op.item(sp.key, op.lookup(sp.key.topic, sp.key.id), sp.fetchOffset, sp.maxBytes, sp, epoch)
		if it.part == nil {
			// Deleted since: answered with its error once, then dropped.
			it.sp = nil
			gone = append(gone, sp.key)
		}
		op.items = append(op.items, it)
	}
	for _, k := range gone {
		s.forget(k)
	}
	s.mu.Unlock()
	return 0
}

// lookup finds a request's topic by name (v12 and older) or id.
func (op *fetchOp) lookup(name string, id [16]byte) *Topic {
	if op.b.reg == nil {
		return nil
	}
	if op.hdr.APIVersion >= 13 {
		return op.b.reg.TopicByID(id)
	}
	return op.b.reg.Topic(name)
}

// countExisting counts the partitions r names that exist: what a session
// may have to remember for it.
func (op *fetchOp) countExisting(r *kmsg.FetchRequest) int {
	n := 0
	for _, t := range r.Topics {
		topic := op.lookup(t.Topic, t.TopicID)
		if topic == nil {
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition >= 0 && int(p.Partition) < len(topic.Partitions) {
				n++
			}
		}
	}
	return n
}

func (op *fetchOp) item(k sessionKey, topic *Topic, offset int64, maxBytes int32, sp *sessionPartition, epoch int32) fetchItem {
	it := fetchItem{key: k, topic: topic, fetchOffset: offset, maxBytes: maxBytes, sp: sp, currentEpoch: epoch, lastFetchedEpoch: -1, followerLogStart: -1}
	if op.replica >= 0 {
		if op.replicaDenied {
			it.denied = true
			return it
		}
	} else if name := k.topic; op.b.authzOn() && (topic != nil || op.hdr.APIVersion < 13) {
		if topic != nil {
			name = topic.Name
		}
		if !op.b.authorize(op.req, acl.OpRead, acl.ResourceTopic, name) {
			it.denied = true
			return it
		}
	}
	if topic != nil {
		parts := topic.Partitions
		if k.partition >= 0 && int(k.partition) < len(parts) {
			it.part = parts[k.partition]
			switch {
			case !it.part.Local():
				it.part, it.notLeader = nil, true
			case it.part.notLeader.Load():
				if op.followerServes() {
					it.follower = true // a replica here: read up to its high watermark
				} else {
					it.part, it.notLeader = nil, true
				}
			}
		}
		if op.hdr.APIVersion < 13 {
			it.key.id = topic.ID
		} else {
			it.key.topic = topic.Name
		}
	} else if op.b.opts.Cluster != nil {
		// A topic of the cluster this broker has not synced yet, or
		// holds no partition of: someone else's to serve.
		im := op.b.image()
		t, ok := im.TopicByName(k.topic)
		if op.hdr.APIVersion >= 13 {
			t, ok = im.TopicByID(k.id)
		}
		if ok {
			if _, has := t.Partitions[k.partition]; has {
				it.notLeader = true
				it.key.topic = t.Name
			}
		}
	}
	return it
}

// fetchResult is what one item read found.
type fetchResult struct {
	errorCode int16
	hw        int64
	leo       int64 // follower fetches: the log end before the read
	lso       int64
	logStart  int64
	region    storage.Region
	// aborted: read_committed only (nil otherwise: encoded as null).
	aborted []proto.AbortedTransaction
	// leader: with NOT_LEADER_OR_FOLLOWER in a cluster, the partition's
	// current leader (KIP-951, v12+ tag 1; endpoints in v16+).
	leader *currentLeader
	// diverging: a follower's log diverges from this leader's
	// (last_fetched_epoch; v12+ tag 0, diverging_epoch); no records.
	diverging *divergingEpoch
	// preferred is the preferred_read_replica (KIP-392), -1 for none; an
	// answer that names one has no records and leaves at once.
	preferred int32
	// waitHW: a consumer read on a follower (fetch_preferred.go), the
	// log's high watermark its long poll waits past when above hw.
	waitHW int64
}

// evaluate reads every item; it answers when final, when min_bytes is met
// or on an error, and otherwise waits for appends.
func (op *fetchOp) evaluate(final bool) {
	if op.loadStates() {
		return // re-evaluated once the producer states are loaded
	}
	results := make([]fetchResult, len(op.items))
	var total int64
	anyError := false
	budget := int64(op.maxBytes)
	for i := range op.items {
		res := op.read(&op.items[i], budget, total == 0)
		results[i] = res
		total += res.region.Len
		budget -= res.region.Len
		if res.errorCode != 0 || res.diverging != nil || res.preferred >= 0 {
			anyError = true // answered at once (Kafka: a diverging epoch or a preferred replica too)
		}
	}
	if !final && !anyError && total < int64(op.minBytes) && op.b.clock.Now().Before(op.deadline) {
		for i := range results {
			results[i].region.Release()
		}
		op.wait(results)
		return
	}
	op.respond(results)
}

func (op *fetchOp) read(it *fetchItem, budget int64, first bool) fetchResult {
	res := fetchResult{hw: -1, leo: -1, lso: -1, logStart: -1, region: storage.Region{BaseOffset: -1}, preferred: -1, waitHW: -1}
	if it.part == nil {
		res.errorCode = kerr.UnknownTopicOrPartition.Code
		if it.denied {
			res.errorCode = kerr.TopicAuthorizationFailed.Code
			return res
		}
		if it.notLeader {
			res.errorCode = kerr.NotLeaderForPartition.Code
			if op.hdr.APIVersion >= 12 {
				res.leader = op.b.currentLeader(it.key.topic, it.key.partition)
			}
		}
		if it.topic == nil && !it.notLeader && op.hdr.APIVersion >= 13 {
			res.errorCode = kerr.UnknownTopicID.Code
		}
		return res
	}
	if it.follower {
		return op.readAsFollower(it, res, budget, first)
	}
	if op.b.opts.Cluster != nil {
		// Kafka's order: the leader epoch (FENCED_LEADER_EPOCH,
		// UNKNOWN_LEADER_EPOCH), then whether the fetching replica is one
		// of the partition's (followerReplicaOrThrow: UNKNOWN_LEADER_EPOCH
		// when the request gave an epoch, a reassignment the leader has not
		// seen yet, else NOT_LEADER_OR_FOLLOWER).
		if code := checkPartitionEpoch(it.part, it.currentEpoch); code != 0 {
			res.errorCode = code
			return res
		}
		if op.replica >= 0 && !op.b.repl.isFollower(it.part, op.replica) {
			res.errorCode = kerr.NotLeaderForPartition.Code
			if it.currentEpoch >= 0 {
				res.errorCode = kerr.UnknownLeaderEpoch.Code
			}
			return res
		}
	}
	l := it.part.Log
	ps := op.b.produce.part(it.part)
	if !ps.loaded.Load() {
		res.errorCode = kerr.KafkaStorageError.Code // its load failed (logged)
		return res
	}
	lso := ps.lastStableOffset()
	if op.replica >= 0 && it.lastFetchedEpoch >= 0 {
		// Kafka's readRecords: a follower whose last fetched epoch ends
		// below its fetch offset here learns where to truncate instead of
		// records, and its fetch state is not updated.
		if code, div := op.b.repl.divergence(it.part, it.lastFetchedEpoch, it.fetchOffset); code != 0 || div != nil {
			res.errorCode, res.diverging = code, div
			if code == 0 {
				res.hw, res.logStart, res.lso = l.HighWatermark(), l.LogStartOffset(), lso
			}
			return res
		}
	}
	if op.clientRack != "" && op.replica < 0 {
		// KIP-392: a replica in the client's rack, if one fits, instead of
		// a read here (fetch_preferred.go).
		if id := op.b.preferredReadReplica(it.part, op.clientRack, it.fetchOffset); id >= 0 {
			res.preferred, res.hw, res.logStart, res.lso = id, l.HighWatermark(), l.LogStartOffset(), lso
			return res
		}
	}
	if budget > 0 || first {
		// Kafka's readFromLog: the partition's max bytes, at most what the
		// request has left (for the first partition too: a quota caps
		// op.maxBytes); the first batch of the response still goes whole
		// (KIP-74, storage.Log.Read).
		max := int64(it.maxBytes)
		if budget > 0 && budget < max {
			max = budget
		}
		var reg storage.Region
		var err error
		switch {
		case op.replica >= 0:
			res.leo = l.LogEndOffset()
			reg, err = l.ReadReplica(it.fetchOffset, int(max))
		case op.readCommitted:
			reg, err = l.ReadBelow(it.fetchOffset, int(max), lso)
		default:
			reg, err = l.Read(it.fetchOffset, int(max))
		}
		switch {
		case errors.Is(err, storage.ErrOffsetOutOfRange):
			res.errorCode = kerr.OffsetOutOfRange.Code
		case errors.Is(err, storage.ErrClosed):
			res.errorCode = kerr.UnknownTopicOrPartition.Code // deleted meanwhile
		case err != nil:
			res.errorCode = kerr.KafkaStorageError.Code
			if !errors.Is(err, storage.ErrLogDirOffline) { // (logged once: log_dir_failure.go)
				op.b.log.Warn("fetch read failed", zap.String("topic", it.part.Topic.Name), zap.Int32("partition", it.part.Index), zap.Error(err))
			}
		case !first && reg.Len > budget:
			reg.Release()
		default:
			res.region = reg
		}
	}
	if op.replica >= 0 && res.errorCode == 0 {
		if res.leo < 0 {
			res.leo = l.LogEndOffset()
		}
		if !it.reported {
			// The fetch offset is the follower's log end (Kafka's
			// updateFollowerFetchState, after the read). It may move the
			// high watermark read below.
			it.reported = true
			if !op.b.repl.followerFetched(it.part, op.replica, it.fetchOffset, res.leo, op.replicaEpoch) {
				res.region.Release()
				res.region = storage.Region{BaseOffset: -1}
				res.errorCode = kerr.NotLeaderForPartition.Code
			} else if it.followerLogStart >= 0 {
				it.part.lead.setFollowerLogStart(op.replica, it.followerLogStart)
			}
		}
	}
	// Read after the records so the high watermark covers them.
	res.hw = l.HighWatermark()
	res.logStart = l.LogStartOffset()
	res.lso = lso
	if op.readCommitted && res.errorCode == 0 {
		res.aborted = []proto.AbortedTransaction{}
		if res.region.Len > 0 {
			for _, a := range l.AbortedTxns(it.fetchOffset, lso) {
				res.aborted = append(res.aborted, proto.AbortedTransaction{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
			}
		}
	}
	return res
}

// loadStates asks, once per fetch, for the producer state of every
// partition whose state is not loaded (the LSO comes from it). It reports whether it did: the fetch is then evaluated
// again, from a worker's callback, when the last load finished.
func (op *fetchOp) loadStates() bool {
	if op.loadTried {
		return false
	}
	op.loadTried = true
	var missing []*partState
	for i := range op.items {
		if p := op.items[i].part; p != nil && (!op.items[i].follower || op.readCommitted) {
			if ps := op.b.produce.part(p); !ps.loaded.Load() {
				missing = append(missing, ps)
			}
		}
	}
	if len(missing) == 0 {
		return false
	}
	op.mu.Lock()
	op.state.Store(0)
	op.mu.Unlock()
	var left atomic.Int32
	left.Store(int32(len(missing)))
	for _, ps := range missing {
		ps.ensureLoaded(func(err error) {
			if err != nil {
				op.b.log.Warn("loading producer state for a fetch", zap.String("dir", ps.p.Log.Dir()), zap.Error(err))
			}
			if left.Add(-1) == 0 {
				op.fire()
			}
		})
	}
	return true
}

// wait parks the fetch until an append advances a high watermark past
// what it saw, or the deadline.
func (op *fetchOp) wait(seen []fetchResult) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.state.Store(0)
	op.waiting = op.waiting[:0]
	for i := range op.items {
		it := &op.items[i]
		if it.part == nil {
			continue
		}
		added := false
		if op.replica >= 0 {
			added = it.part.Log.AddEndWaiter(op, seen[i].leo) // a follower waits for the log end
		} else {
			added = it.part.Log.AddWaiter(op, max(seen[i].hw, seen[i].waitHW))
		}
		if !added {
			// Moved since we looked: read again now.
			op.fire()
			return
		}
		op.waiting = append(op.waiting, it.part.Log)
		if op.readCommitted && seen[i].lso >= 0 && !it.follower {
			// (A follower's LSO moves only with its replica fetcher's
			// SetHighWatermark, whose high watermark waiters cover it:
			// fetch_preferred.go.)
			ps := op.b.produce.part(it.part)
			if !ps.addLSOWaiter(op, seen[i].lso) {
				op.fire()
				return
			}
			op.lsoWaiting = append(op.lsoWaiting, ps)
		}
	}
	op.timer = op.b.clock.AfterFunc(clock.Until(op.b.clock, op.deadline), op.fire)
}

// HWAdvanced implements storage.Waiter. It runs on a log writer goroutine and
// must not block: the re-read happens on a goroutine of its own.
func (op *fetchOp) HWAdvanced(int64) { op.fire() }

func (op *fetchOp) fire() {
	if !op.state.CompareAndSwap(0, 1) {
		return
	}
	op.req.Trace().Mark(reqtrace.Woken)
	if op.b.opts.FetchWakeOnLoop && op.req.RunOnLoop(op.wakeOnLoop) {
		return
	}
	go op.wake()
}

// wake re-reads on a goroutine of its own, which may wait for the disk.
func (op *fetchOp) wake() { op.rerun(true) }

// wakeOnLoop re-reads on the loop thread of the fetch's connection
// (fetch.wake.on.loop), which must not wait for the disk: it reads as an
// answer given at once does (copySmall).
func (op *fetchOp) wakeOnLoop() {
	loopWakes.Add(1)
	op.rerun(false)
}

// loopWakes counts the wake-ups run by wakeOnLoop (process-wide; tests read
// it).
var loopWakes atomic.Int64

func (op *fetchOp) rerun(goroutine bool) {
	op.req.Trace().Mark(reqtrace.WakeRun)
	op.mu.Lock()
	if op.timer != nil {
		op.timer.Stop()
		op.timer = nil
	}
	for _, l := range op.waiting {
		l.RemoveWaiter(op)
	}
	op.waiting = op.waiting[:0]
	for _, ps := range op.lsoWaiting {
		ps.removeLSOWaiter(op)
	}
	op.lsoWaiting = op.lsoWaiting[:0]
	op.mu.Unlock()
	if op.session != nil {
		op.session.mu.Lock()
		defer op.unlockSession()
	}
	op.woken = goroutine
	op.evaluate(!op.b.clock.Now().Before(op.deadline))
}

// respond encodes and sends the response, updating the session.
func (op *fetchOp) respond(results []fetchResult) {
	e := proto.NewFetchEncoder(op.hdr.APIVersion)
	buf := netpoll.GetBuffer()
	buf.B = proto.AppendResponseHeader(buf.B, &op.hdr)
	throttleAt := len(buf.B) // throttle_time_ms is the body's first field

	include := make([]bool, len(op.items))
	for i := range op.items {
		include[i] = op.full || op.items[i].sp == nil || changed(op.items[i].sp, &results[i])
	}
	// Group consecutive items of the same topic.
	var topics int
	for i := range op.items {
		if include[i] && (i == 0 || !sameTopic(op.items, include, i)) {
			topics++
		}
	}
	sessionID := int32(0)
	if op.session != nil {
		sessionID = op.session.id
	}
	buf.B = e.AppendHeader(buf.B, 0, sessionID, topics)
	var leaders []int32 // KIP-951: brokers named in current_leader tags
	for i := 0; i < len(op.items); {
		if !include[i] {
			results[i].region.Release()
			i++
			continue
		}
		j := i
		n := 0
		for ; j < len(op.items) && (j == i || op.items[j].key.topic == op.items[i].key.topic); j++ {
			if include[j] {
				n++
			}
		}
		it := &op.items[i]
		buf.B = e.AppendTopic(buf.B, it.key.topic, it.key.id, n)
		for k := i; k < j; k++ {
			if !include[k] {
				results[k].region.Release()
				continue
			}
			res := &results[k]
			buf.B = e.AppendPartitionPreferred(buf.B, op.items[k].key.partition, res.errorCode, res.hw, res.lso, res.logStart, res.aborted, res.preferred, res.region.Len)
			if res.region.Len > 0 {
				op.attach(buf, res)
			}
			if res.diverging != nil {
				w := proto.Writer{B: buf.B, Flexible: true}
				res.diverging.appendTag(&w) // diverging_epoch (tag 0)
				buf.B = w.B
			} else if res.leader != nil {
				w := proto.Writer{B: buf.B, Flexible: true}
				res.leader.appendTag(&w, 1) // current_leader
				buf.B = w.B
				leaders = append(leaders, res.leader.id)
			} else {
				buf.B = e.EndPartition(buf.B)
			}
		}
		buf.B = e.EndTopic(buf.B)
		i = j
	}
	if len(leaders) > 0 && op.hdr.APIVersion >= 16 {
		w := proto.Writer{B: buf.B, Flexible: true}
		op.b.appendNodeEndpoints(&w, op.req, leaders) // node_endpoints, tag 0
		buf.B = w.B
	} else {
		buf.B = e.EndResponse(buf.B)
	}
	size := int64(len(buf.B) - 4)
	for _, f := range buf.Files {
		size += f.Len
	}
	ms := max(op.b.recordQuota(op.quota, quota.Fetch, float64(size)), op.b.requestThrottle(op.requestQuota))
	if ms > 0 {
		// KIP-219, as Kafka's handleFetchRequest: a throttled client gets
		// no records, only the throttle, and the bytes it did not get are
		// taken back off its rate; the session remembers nothing as sent.
		buf.Release()
		op.b.unrecordQuota(op.quota, quota.Fetch, float64(size))
		op.replyThrottled(ms)
		return
	}
	for k := range op.items {
		if !include[k] {
			continue
		}
		res := &results[k]
		if res.region.Len > 0 {
			op.b.topicMetrics(op.items[k].part.Topic).Fetched(int(res.region.Len))
		}
		if sp := op.items[k].sp; sp != nil {
			sp.sentHW, sp.sentLogStart, sp.sentError, sp.sentLSO = res.hw, res.logStart, res.errorCode, res.lso
		}
	}
	binary.BigEndian.PutUint32(buf.B[throttleAt:], uint32(ms))
	op.req.Reply(buf)
}

// replyThrottled answers a throttled fetch as Kafka's
// FetchContext.getThrottledResponse: no partitions, throttle_time_ms, and
// the session id of an incremental fetch; a full fetch's new session is
// not handed out (session id 0) and is dropped once op is done with it
// (dropSession), as Kafka creates a full fetch's session only for a
// response it sends. The connection is not read for ms.
func (op *fetchOp) replyThrottled(ms int32) {
	sessionID := int32(0)
	if op.session != nil {
		if op.full {
			op.dropSession = true
		} else {
			sessionID = op.session.id
		}
	}
	e := proto.NewFetchEncoder(op.hdr.APIVersion)
	buf := netpoll.GetBuffer()
	buf.B = proto.AppendResponseHeader(buf.B, &op.hdr)
	throttleAt := len(buf.B)
	buf.B = e.AppendHeader(buf.B, 0, sessionID, 0)
	buf.B = e.EndResponse(buf.B)
	binary.BigEndian.PutUint32(buf.B[throttleAt:], uint32(ms))
	replyQuota(op.req, buf, ms)
}

// unlockSession releases the session op holds and drops it when a
// throttled full fetch created it (replyThrottled). The cache's lock comes
// before a session's, so the drop waits for the unlock.
func (op *fetchOp) unlockSession() {
	s := op.session
	drop := op.dropSession
	s.mu.Unlock()
	if drop {
		op.b.fetchSessions.remove(s.id)
	}
}

// attach adds a region's records to the response: spliced from the file, or
// copied in when fetch.zero.copy is off or the region is small
// (copySmall). A copy first reserves its bytes
// from netpoll's process-wide copy budget: responses held for consumers that
// do not read must not add up without bound (40 such consumers held 3.4 GB).
// What does not fit is spliced, as with zero copy.
func (op *fetchOp) attach(buf *netpoll.Buffer, res *fetchResult) {
	reg := res.region
	if !op.b.opts.FetchZeroCopy && op.req.ReserveCopy(buf, reg.Len) {
		at := len(buf.B)
		buf.B = slices.Grow(buf.B, int(reg.Len))[:at+int(reg.Len)]
		if _, err := op.b.fs().Pread(reg.File, buf.B[at:], reg.Pos); err != nil {
			op.b.log.Error("fetch pread failed", zap.Error(err))
		}
		reg.Release()
		return
	}
	if op.copySmall(buf, reg) {
		return
	}
	ref := new(storage.Region)
	*ref = reg
	buf.Files = append(buf.Files, netpoll.FileRegion{At: len(buf.B), Fd: int(reg.File.Fd()), Off: reg.Pos, Len: reg.Len, Ref: ref})
}

// copySmall copies a region of at most fetch.copy.max.bytes into buf instead
// of splicing it and reports whether it did. A fetch woken from its long
// poll runs on its own goroutine and may wait for the disk (pread; the bytes
// were just appended anyway). One answered at once runs on the ring thread
// that received it, which must not block: it copies only if the page cache
// holds the whole region (preadv2 with RWF_NOWAIT answers EAGAIN instead of
// reading the disk: storage.Region.ReadCached) and splices otherwise.
func (op *fetchOp) copySmall(buf *netpoll.Buffer, reg storage.Region) bool {
	if reg.Len > int64(op.b.opts.FetchCopyMaxBytes) {
		return false
	}
	at := len(buf.B)
	buf.B = slices.Grow(buf.B, int(reg.Len))[:at+int(reg.Len)]
	var read bool
	if op.woken {
		n, err := op.b.fs().Pread(reg.File, buf.B[at:], reg.Pos)
		read = err == nil && int64(n) == reg.Len
	} else {
		read = reg.ReadCached(buf.B[at:])
	}
	if !read || !op.req.ReserveCopy(buf, reg.Len) {
		buf.B = buf.B[:at]
		return false
	}
	reg.Release()
	return true
}

func sameTopic(items []fetchItem, include []bool, i int) bool {
	for k := i - 1; k >= 0; k-- {
		if include[k] {
			return items[k].key.topic == items[i].key.topic
		}
	}
	return false
}

// changed reports whether an incremental response must carry the partition.
func changed(sp *sessionPartition, res *fetchResult) bool {
	return res.region.Len > 0 || res.errorCode != 0 || res.preferred >= 0 || res.errorCode != sp.sentError ||
		res.hw != sp.sentHW || res.logStart != sp.sentLogStart || res.lso != sp.sentLSO
}

func (op *fetchOp) replyError(code int16) {
	e := proto.NewFetchEncoder(op.hdr.APIVersion)
	buf := netpoll.GetBuffer()
	buf.B = proto.AppendResponseHeader(buf.B, &op.hdr)
	buf.B = e.AppendHeader(buf.B, code, 0, 0)
	buf.B = e.EndResponse(buf.B)
	op.req.Reply(buf)
}
