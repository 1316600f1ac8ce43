package broker

// The transaction coordinator glue: owns one I/O-free txn.Coordinator per
// __transaction_state partition this broker leads (txn/doc.go, "What the
// broker does"), their timer, their persistence and their marker work.
//
// Concurrency: txnCoordinator.mu serialises every call into the
// coordinators (a txn.Coordinator is not safe for concurrent use). It is
// held for in-memory work and non-blocking storage.Append calls only: the
// answers and the marker requests a call produces are collected under mu
// and run after it is released (txnAfter), so a reply or a marker
// completion that comes back synchronously never re-enters mu. Append
// callbacks (log writer goroutine), marker completions (data path) and the
// tick timer take mu with no other lock of ours held. Lock order: mu, then
// persist.qmu (internal_topic.go); mu, then the producer id allocator's mutex (NewProducerID) and the
// group coordinator's mutex is never taken under mu.
//
// Persistence: every Write of the coordinator of partition P is appended,
// in the order the coordinator produced them, to __transaction_state
// partition P (one uncompressed batch per record, as the group coordinator
// writes), and its outcome goes back through WriteDone. The topic is
// created on first use (transaction.state.log.num.partitions partitions,
// compacted, transaction.state.log.segment.bytes segments) by a goroutine,
// with writes queued meanwhile in order, as __consumer_offsets is
// (group_coordinator.go). At start an existing topic is read back into a
// Coordinator per local partition (Load); a partition that does not load is
// not served (its ids are answered COORDINATOR_NOT_AVAILABLE) and the error
// logged: the coordinator cannot guess the state of its transactions.
//
// Markers: each txn.Markers is sent as one WriteTxnMarkersRequest to the
// local data path (txnMarkerWriter, the broker's WriteTxnMarkers) with the
// coordinator's epoch. Partitions answered with an error are sent again
// after txnMarkerRetryBackoff, for ever (Kafka's
// TransactionMarkerChannelManager retries too), except
// UNKNOWN_TOPIC_OR_PARTITION, a partition deleted since: Kafka drops it as
// well. When every partition has its marker, transactional offsets held by
// the group coordinator for __consumer_offsets partitions are completed
// (onTxnMarker; for a partition led by another broker, that broker's
// WriteTxnMarkers handler calls it) and MarkersDone hands out the
// Complete* record. The offsets of
// a TxnOffsetCommit are appended through the __consumer_offsets
// partition's producer state (txn_offsets_append.go), so that partition's
// last stable offset, its cleaner bound and its .txnindex cover the
// transaction like any transactional produce.
//
// Time: Tick runs every transaction.abort.timed.out.transaction.cleanup.interval.ms
// on b.clock (aborts timed-out transactions, expires idle ids, retries
// failed Complete* writes).
//
// Cluster: the coordinator of a transactional id is the leader of its
// __transaction_state partition, as for groups (cluster_groups.go);
// another broker answers NOT_COORDINATOR. A partition's Coordinator is
// loaded when the image makes this broker its leader and dropped when it
// stops leading (coord_movement.go); its records are answered once on the
// partition's ISR (coord_append.go).
// Markers for partitions led by another broker are sent to that leader in
// a WriteTxnMarkers request (txn_markers_cluster.go); a partition without
// a reachable leader is retried until one writes it.
//
// Authorization is the handlers' (TRANSACTIONAL_ID and GROUP ACLs; see
// docs/ARCHITECTURE.md, "Authorization per API").
//
// Differences from Apache Kafka: on a single node the coordinator epoch
// is 0 (its leaderships never move; in a cluster it is the partition's
// leader epoch); a
// transactional id's first InitProducerId while the producer id block is
// being refilled answers COORDINATOR_LOAD_IN_PROGRESS (retriable) instead
// of waiting.

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
	"github.com/ringbroker/ringbroker/txn"
)

// transactionStateTopic is Kafka's internal topic of transaction state.
const transactionStateTopic = "__transaction_state"

// TxnOptions configure the transaction coordinator; zero values take the
// defaults noted.
type TxnOptions struct {
	// StateLogNumPartitions is transaction.state.log.num.partitions (0: 50);
	// an existing topic's partition count wins.
	StateLogNumPartitions int32
	// StateLogSegmentBytes is transaction.state.log.segment.bytes (0: 100 MiB).
	StateLogSegmentBytes int32
	// StateLogReplicationFactor is transaction.state.log.replication.factor,
	// in a cluster only (0: the controller's default.replication.factor).
	StateLogReplicationFactor int16
	// StateLogMinISR is transaction.state.log.min.isr, the topic's
	// min.insync.replicas when created in a cluster (0: not set).
	StateLogMinISR int32
	// MaxTimeout is transaction.max.timeout.ms (0: 15 min).
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms (0: 7 days).
	IDExpiration time.Duration
	// CleanupInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms (0: 10 s).
	CleanupInterval time.Duration
	// TransactionVersion is the transaction.version feature level the
	// broker finalizes (Kafka's finalized feature, which a Kafka cluster
	// takes from kafka-storage.sh format or kafka-features.sh): advertised
	// in ApiVersions, so clients that know transactions v2 use it at level
	// 2 and keep v1 below. Level 1 and 2 write __transaction_state values
	// at version 1 (flexible), level 0 at version 0. 0 means
	// DefaultTransactionVersion; TransactionVersionZero asks for level 0.
	TransactionVersion int16
	// AddPartitionsRetryBackoff and AddPartitionsRetryBackoffMax are
	// add.partitions.to.txn.retry.backoff.ms and .max.ms (0: 20 ms and
	// 100 ms): a Produce v12's implicit add answered
	// CONCURRENT_TRANSACTIONS (the previous transaction's markers are being
	// written) is tried again after the backoff while less than the max
	// has passed, before the produce is answered (txn_add.go).
	AddPartitionsRetryBackoff, AddPartitionsRetryBackoffMax time.Duration
}

// Transaction version levels (TxnOptions.TransactionVersion).
const (
	// DefaultTransactionVersion is the level of a new Kafka 4 cluster.
	DefaultTransactionVersion int16 = 2
	// MaxTransactionVersion is the highest level this broker supports.
	MaxTransactionVersion int16 = controller.MaxTransactionVersion
	// TransactionVersionZero is the option value for level 0 (the zero
	// value of the option means the default).
	TransactionVersionZero int16 = -1
)

// transactionVersion returns the finalized transaction.version level.
func (o *TxnOptions) transactionVersion() int16 {
	switch {
	case o.TransactionVersion == 0:
		return DefaultTransactionVersion
	case o.TransactionVersion < 0:
		return 0
	case o.TransactionVersion > MaxTransactionVersion:
		return MaxTransactionVersion
	}
	return o.TransactionVersion
}

const (
	defaultTxnStatePartitions   = 50
	defaultTxnStateSegmentBytes = 100 << 20
	defaultTxnCleanupInterval   = 10 * time.Second
	// Kafka's add.partitions.to.txn.retry.backoff.ms and .max.ms defaults.
	defaultAddPartitionsRetryBackoff    = 20 * time.Millisecond
	defaultAddPartitionsRetryBackoffMax = 100 * time.Millisecond
	// txnMarkerRetryBackoff: how long a marker that failed waits before it
	// is sent again (Kafka's retry.backoff.ms default).
	txnMarkerRetryBackoff = 100 * time.Millisecond
)

// txnMarkerWriter writes transaction markers on local partitions: the data
// path's Broker.WriteTxnMarkers (asynchronous; done is called once every
// marker of the request was appended or failed).
type txnMarkerWriter interface {
	WriteTxnMarkers(req *kmsg.WriteTxnMarkersRequest, done func(*kmsg.WriteTxnMarkersResponse))
}

type txnCoordinator struct {
	b          *Broker
	log        *zap.Logger
	clock      clock.Clock
	partitions int32
	segBytes   int32
	interval   time.Duration
	cfg        txn.Config // template; CoordinatorEpoch per partition
	// markers is the data path: the Broker's WriteTxnMarkers (tests put a
	// fake here).
	markers txnMarkerWriter

	mu     sync.Mutex
	closed bool
	coords map[int32]*txn.Coordinator
	// broken are partitions whose records did not load: not served.
	broken map[int32]error
	// Cluster only (coord_movement.go): partitions being loaded, a
	// generation per partition that a load in flight checks before it
	// installs its Coordinator, and the leader epoch it was loaded for.
	loading   map[int32]bool
	loadGen   map[int32]uint64
	loadEpoch map[int32]int32
	// waiters are the requests whose answer the coordinator deferred until
	// a record is written: at most one per id (one transition in flight).
	waiters map[string]func(txn.Answer)
	tick    clock.Timer
	ticking bool

	// creatingTopic: a clustered broker is asking the controller for
	// __transaction_state (txnClusterCoordinator).
	creatingTopic atomic.Bool

	// persist is __transaction_state, created on first use.
	persist internalTopic

	// adds queues transactions v2's implicit adds per id (txn_add.go),
	// retrying CONCURRENT_TRANSACTIONS after addRetryBackoff for up to
	// addRetryBackoffMax.
	adds                                txnAdder
	addRetryBackoff, addRetryBackoffMax time.Duration
}

// txnAfter is the work a call leaves for after mu is released.
type txnAfter struct {
	answers []func()
	markers []txnMarkerJob
}

func (a *txnAfter) run(tc *txnCoordinator) {
	for _, f := range a.answers {
		f()
	}
	for _, m := range a.markers {
		tc.sendMarkers(m)
	}
}

// txnMarkerJob is one txn.Markers of the coordinator co (of partition part)
// still to be written on partitions.
type txnMarkerJob struct {
	part int32
	co   *txn.Coordinator
	m    txn.Markers
}

func newTxnCoordinator(b *Broker) *txnCoordinator {
	o := b.opts.Txn
	tc := &txnCoordinator{b: b, log: b.log.Named("txn"), clock: b.clock, partitions: o.StateLogNumPartitions,
		segBytes: o.StateLogSegmentBytes, interval: o.CleanupInterval,
		coords: map[int32]*txn.Coordinator{}, broken: map[int32]error{}, waiters: map[string]func(txn.Answer){},
		loading: map[int32]bool{}, loadGen: map[int32]uint64{}, loadEpoch: map[int32]int32{}}
	if tc.partitions <= 0 {
		tc.partitions = defaultTxnStatePartitions
	}
	if tc.segBytes <= 0 {
		tc.segBytes = defaultTxnStateSegmentBytes
	}
	if tc.interval <= 0 {
		tc.interval = defaultTxnCleanupInterval
	}
	tc.addRetryBackoff, tc.addRetryBackoffMax = o.AddPartitionsRetryBackoff, o.AddPartitionsRetryBackoffMax
	if tc.addRetryBackoff <= 0 {
		tc.addRetryBackoff = defaultAddPartitionsRetryBackoff
	}
	if tc.addRetryBackoffMax <= 0 {
		tc.addRetryBackoffMax = defaultAddPartitionsRetryBackoffMax
	}
	tc.persist = internalTopic{b: b, name: transactionStateTopic, log: tc.log,
		spec: func() (int32, int16, map[string]string) {
			return tc.partitions, tc.replicationFactor(), tc.topicConfig()
		}}
	tc.markers = b
	if b.opts.Cluster != nil {
		tc.markers = &clusterMarkers{b: b} // txn_markers_cluster.go
	}
	tc.cfg = txn.Config{MaxTimeout: o.MaxTimeout, IDExpiration: o.IDExpiration, NewProducerID: tc.newProducerID,
		TransactionVersionLevel: o.transactionVersion(),
		TransactionVersion:      func() int16 { return b.featureLevel(transactionVersionFeature) },
		OffsetsPartition:        func(groupID string) int32 { return group.PartitionFor(groupID, b.groups.partitions) }}
	tc.tick = tc.clock.AfterFunc(tc.interval, tc.onTick)
	tc.tick.Stop()
	b.txnVerify = b.verifyTxnPartition // KIP-890: a transactional produce needs its partition in the transaction
	return tc
}

// newProducerID is txn.Config.NewProducerID: an id from the broker's
// durable blocks, or COORDINATOR_LOAD_IN_PROGRESS (retriable) while the
// next block is being made durable.
func (tc *txnCoordinator) newProducerID() (int64, error) {
	if id, ok := tc.b.produce.pids.tryTake(tc.b); ok {
		return id, nil
	}
	return 0, kerr.CoordinatorLoadInProgress
}

// tryTake is take for a caller that cannot wait: an id from the current
// block, or false, having started a refill.
func (a *pidAllocator) tryTake(b *Broker) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.loaded && a.next < a.limit && len(a.waiting) == 0 {
		id := a.next
		a.next++
		return id, true
	}
	if !a.refilling {
		a.refilling = true
		go a.refill(b)
	}
	return 0, false
}

// partitionFor is txnID's __transaction_state partition.
func (tc *txnCoordinator) partitionFor(txnID string) int32 {
	return txn.PartitionFor(txnID, tc.partitions)
}

// owns reports whether this broker coordinates partition part.
func (tc *txnCoordinator) owns(part int32) bool {
	if tc.b.opts.Cluster == nil {
		return true
	}
	p, _ := tc.b.servedPartition(transactionStateTopic, part)
	return p != nil
}

// coordLocked returns the Coordinator of part, making an empty one for a
// partition with no records yet, or an error code. REQUIRES: mu held.
func (tc *txnCoordinator) coordLocked(part int32) (*txn.Coordinator, int16) {
	if tc.closed {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	if !tc.owns(part) {
		return nil, kerr.NotCoordinator.Code
	}
	if _, ok := tc.broken[part]; ok {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	co := tc.coords[part]
	if co == nil && tc.b.opts.Cluster != nil {
		// Led in the image, its Coordinator not loaded yet
		// (coord_movement.go).
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	if co == nil {
		co = txn.New(tc.cfg)
		tc.coords[part] = co
		tc.armTickLocked()
	}
	return co, 0
}

// armTickLocked starts the periodic Tick once a Coordinator exists.
// REQUIRES: mu held.
func (tc *txnCoordinator) armTickLocked() {
	if !tc.ticking && !tc.closed {
		tc.ticking = true
		tc.tick.Reset(tc.interval)
	}
}

func (tc *txnCoordinator) onTick() {
	var after txnAfter
	tc.mu.Lock()
	if tc.closed {
		tc.mu.Unlock()
		return
	}
	now := tc.clock.Now()
	for part, co := range tc.coords {
		tc.processLocked(part, co, co.Tick(now), &after)
	}
	tc.tick.Reset(tc.interval)
	tc.mu.Unlock()
	after.run(tc)
}

// close stops the timer; later completions find the coordinator closed
// and do nothing. Requests waiting for a write are not answered: their
// connections close with the broker.
func (tc *txnCoordinator) close() {
	tc.mu.Lock()
	tc.closed = true
	tc.tick.Stop()
	tc.mu.Unlock()
	if cm, ok := tc.markers.(*clusterMarkers); ok {
		cm.close()
	}
}

// call runs f on the Coordinator of txnID's partition and answers through
// reply: at once when f answered, else when the coordinator releases the
// deferred answer (after its record is written). code != 0 when there is
// no Coordinator here for txnID (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE):
// reply is then not called.
func (tc *txnCoordinator) call(txnID string, reply func(txn.Answer), f func(co *txn.Coordinator, now time.Time) txn.Effects) int16 {
	var after txnAfter
	part := tc.partitionFor(txnID)
	tc.mu.Lock()
	co, code := tc.coordLocked(part)
	if code != 0 {
		tc.mu.Unlock()
		return code
	}
	eff := f(co, tc.clock.Now())
	// A request's own answer, if the call gave one, is for txnID; deferred
	// answers of other requests only come out of WriteDone.
	answered := false
	for i, a := range eff.Answers {
		if a.TxnID == txnID {
			a := a
			after.answers = append(after.answers, func() { reply(a) })
			eff.Answers = append(eff.Answers[:i:i], eff.Answers[i+1:]...)
			answered = true
			break
		}
	}
	if !answered {
		tc.waiters[txnID] = reply
	}
	tc.processLocked(part, co, eff, &after)
	tc.mu.Unlock()
	after.run(tc)
	return 0
}

// processLocked carries out e for the Coordinator co of partition part:
// answers to their waiters, writes appended in order, marker work
// collected. A write refused at once is reported failed (WriteDone) and
// its effects processed in turn. REQUIRES: mu held.
func (tc *txnCoordinator) processLocked(part int32, co *txn.Coordinator, e txn.Effects, after *txnAfter) {
	queue := []txn.Effects{e}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		for _, a := range e.Answers {
			if w := tc.waiters[a.TxnID]; w != nil {
				delete(tc.waiters, a.TxnID)
				a := a
				after.answers = append(after.answers, func() { w(a) })
			}
		}
		for _, w := range e.Writes {
			if !tc.appendLocked(part, co, w) {
				queue = append(queue, co.WriteDone(w.TxnID, false, tc.clock.Now()))
			}
		}
		for _, m := range e.Markers {
			after.markers = append(after.markers, txnMarkerJob{part: part, co: co, m: m})
		}
	}
}

// appendLocked appends w to partition part of __transaction_state; its
// completion calls WriteDone. False when it was refused at once (the queue
// for the topic's creation is full). REQUIRES: mu held.
func (tc *txnCoordinator) appendLocked(part int32, co *txn.Coordinator, w txn.Write) bool {
	batch := appendRecordBatch(nil, tc.clock.Now().UnixMilli(), [][2][]byte{{w.Key, w.Value}})
	txnID := w.TxnID
	return tc.persist.with(func(t *Topic, locked bool) {
		fail := func(err error) {
			tc.log.Warn("__transaction_state append refused", zap.String("transactional.id", txnID), zap.Error(err))
			if locked {
				// f runs under mu here: report from outside it.
				go tc.writeDone(part, co, txnID, false)
				return
			}
			tc.writeDone(part, co, txnID, false)
		}
		p := partitionOf(t, part)
		if p == nil {
			fail(fmt.Errorf("partition %d is not local", part))
			return
		}
		if code := tc.b.coordRefuse(p); code != 0 {
			fail(kerr.ErrorForCode(code))
			return
		}
		err := p.Log.Append(batch, storage.AppendFunc(func(r storage.AppendResult) {
			if r.Err != nil {
				tc.log.Warn("__transaction_state append failed", zap.String("transactional.id", txnID), zap.Error(r.Err))
				tc.writeDone(part, co, txnID, false)
				return
			}
			// Done once on the ISR (coord_append.go), as Kafka's
			// TransactionStateManager appends with acks=all.
			tc.b.coordReplicated(p, r, func(code int16) {
				if code == kerr.NotLeaderForPartition.Code {
					// The partition's leadership moved: the unload
					// that follows (coord_movement.go) drops the
					// Coordinator and answers the waiter
					// NOT_COORDINATOR, as Kafka maps the append's
					// NOT_LEADER_OR_FOLLOWER.
					return
				}
				if code != 0 {
					tc.log.Warn("__transaction_state record not replicated", zap.String("transactional.id", txnID),
						zap.Error(kerr.ErrorForCode(code)))
				}
				tc.writeDone(part, co, txnID, code == 0)
			})
		}))
		if err != nil {
			fail(err)
		}
	})
}

// writeDone reports a write's outcome to its Coordinator (if still the one
// serving part).
func (tc *txnCoordinator) writeDone(part int32, co *txn.Coordinator, txnID string, ok bool) {
	var after txnAfter
	tc.mu.Lock()
	if !tc.closed && tc.coords[part] == co {
		tc.processLocked(part, co, co.WriteDone(txnID, ok, tc.clock.Now()), &after)
	}
	tc.mu.Unlock()
	after.run(tc)
}

// sendMarkers writes job's markers through the data path, retrying the
// partitions that failed, then completes them. Runs without mu.
func (tc *txnCoordinator) sendMarkers(job txnMarkerJob) {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed = job.m.ProducerID, job.m.ProducerEpoch, job.m.Commit
	mk.CoordinatorEpoch = job.m.CoordinatorEpoch
	for _, tp := range job.m.Partitions {
		addMarkerPartition(req, mk, tp.Topic, tp.Partition) // txn_markers_cluster.go
	}
	tc.markers.WriteTxnMarkers(req, func(resp *kmsg.WriteTxnMarkersResponse) { tc.markersWritten(job, resp) })
}

// markersWritten handles the data path's answer to job's markers.
func (tc *txnCoordinator) markersWritten(job txnMarkerJob, resp *kmsg.WriteTxnMarkersResponse) {
	failed := map[txn.TopicPartition]int16{}
	for _, tp := range job.m.Partitions {
		failed[tp] = kerr.UnknownServerError.Code // unless answered
	}
	var written []txn.TopicPartition
	if resp != nil {
		for _, m := range resp.Markers {
			if m.ProducerID != job.m.ProducerID {
				continue
			}
			for _, t := range m.Topics {
				for _, p := range t.Partitions {
					tp := txn.TopicPartition{Topic: t.Topic, Partition: p.Partition}
					if _, ok := failed[tp]; !ok {
						continue
					}
					switch p.ErrorCode {
					case 0:
						written = append(written, tp)
						delete(failed, tp)
					case kerr.UnknownTopicOrPartition.Code:
						// Deleted since it joined the transaction:
						// nothing to mark (Kafka drops it too).
						delete(failed, tp)
					default:
						failed[tp] = p.ErrorCode
					}
				}
			}
		}
	}
	for _, tp := range written {
		// A partition led by another broker was told by that broker's
		// WriteTxnMarkers handler (serveWriteTxnMarkers).
		if p, _ := tc.b.servedPartition(tp.Topic, tp.Partition); tp.Topic == offsetsTopic && p != nil {
			tc.b.onTxnMarker(tp.Topic, tp.Partition, job.m.ProducerID, job.m.Commit)
		}
	}
	if len(failed) > 0 {
		rest := job
		rest.m.Partitions = nil
		for _, tp := range job.m.Partitions {
			if code, ok := failed[tp]; ok {
				rest.m.Partitions = append(rest.m.Partitions, tp)
				tc.log.Debug("transaction marker not written; retrying", zap.String("transactional.id", job.m.TxnID),
					zap.Stringer("partition", tp), zap.Error(kerr.ErrorForCode(code)))
			}
		}
		tc.retryMarkers(rest)
		return
	}
	var after txnAfter
	tc.mu.Lock()
	if !tc.closed && tc.coords[job.part] == job.co {
		tc.processLocked(job.part, job.co, job.co.MarkersDone(job.m.TxnID), &after)
	}
	tc.mu.Unlock()
	after.run(tc)
}

// retryMarkers sends job again after txnMarkerRetryBackoff, unless the
// coordinator closed or no longer serves the partition meanwhile.
func (tc *txnCoordinator) retryMarkers(job txnMarkerJob) {
	tc.clock.AfterFunc(txnMarkerRetryBackoff, func() {
		tc.mu.Lock()
		live := !tc.closed && tc.coords[job.part] == job.co
		tc.mu.Unlock()
		if live {
			tc.sendMarkers(job)
		}
	})
}

// topicConfig is Kafka's TransactionLog config: compacted, with
// transaction.state.log.segment.bytes segments, and in a cluster
// transaction.state.log.min.isr as min.insync.replicas.
func (tc *txnCoordinator) topicConfig() map[string]string {
	cfg := map[string]string{"cleanup.policy": "compact", "segment.bytes": strconv.Itoa(int(tc.segBytes))}
	if minISR := tc.b.opts.Txn.StateLogMinISR; minISR > 0 && tc.b.opts.Cluster != nil {
		cfg["min.insync.replicas"] = strconv.Itoa(int(minISR))
	}
	return cfg
}

// replicationFactor is what __transaction_state is created with in a
// cluster: transaction.state.log.replication.factor, or -1 (the
// controller's default) when unset.
func (tc *txnCoordinator) replicationFactor() int16 {
	if rf := tc.b.opts.Txn.StateLogReplicationFactor; rf > 0 {
		return rf
	}
	return -1
}

// load reads an existing __transaction_state into one Coordinator per local
// partition (New, before serving). A partition whose records do not load
// is marked broken and not served. The effects (markers of transactions
// decided before the stop) are carried out at once.
func (tc *txnCoordinator) load() error {
	if tc.b.reg == nil {
		return nil
	}
	t := tc.b.reg.Topic(transactionStateTopic)
	if t == nil {
		return nil
	}
	tc.persist.topic.Store(t)
	view := viewTopic(tc.b.reg, t)
	tc.partitions = int32(len(view.partitions))
	if tc.b.opts.Cluster != nil {
		// Loaded partition by partition as the image makes this broker
		// their leader (coord_movement.go).
		return nil
	}
	now := tc.clock.Now()
	var after txnAfter
	tc.mu.Lock()
	ids := 0
	for _, p := range view.partitions {
		if !p.Local() {
			continue
		}
		var records []txn.Record
		err := readCompactedRecords(p.Log, func(key, value []byte) {
			records = append(records, txn.Record{Key: key, Value: value})
		})
		co := txn.New(tc.cfg)
		var eff txn.Effects
		if err == nil {
			eff, err = co.Load(records, now)
		}
		if err != nil {
			tc.broken[p.Index] = err
			tc.log.Error("__transaction_state partition not loaded: its transactional ids are not served",
				zap.Int32("partition", p.Index), zap.Error(err))
			continue
		}
		tc.coords[p.Index] = co
		ids += co.NumIDs()
		tc.processLocked(p.Index, co, eff, &after)
	}
	if len(tc.coords) > 0 {
		tc.armTickLocked()
	}
	tc.mu.Unlock()
	tc.log.Info("loaded transactions from __transaction_state", zap.Int("partitions", len(tc.coords)),
		zap.Int("broken", len(tc.broken)), zap.Int("transactional_ids", ids))
	after.run(tc)
	return nil
}

// readCompactedRecords calls f with every record (key, value; value nil
// for a tombstone) of l's plain batches in log order. Control batches are
// skipped; a record it cannot parse is an error (the coordinator cannot
// load around a hole).
func readCompactedRecords(l *storage.Log, f func(key, value []byte)) error {
	// Up to the log end, as Kafka loads: on a replicated leader the high
	// watermark may be below it.
	off, hw := l.LogStartOffset(), l.LogEndOffset()
	for off < hw {
		reg, err := l.ReadReplica(off, 1<<20)
		if err != nil {
			return fmt.Errorf("reading at %d: %w", off, err)
		}
		if reg.Len == 0 {
			reg.Release()
			return nil
		}
		buf := make([]byte, reg.Len)
		_, err = reg.File.ReadAt(buf, reg.Pos)
		reg.Release()
		if err != nil {
			return fmt.Errorf("reading at %d: %w", off, err)
		}
		var skipErr error
		next, err := forEachRecord(buf, func(_ int64, key, value []byte) { f(key, value) }, func(base int64, why error) {
			if skipErr == nil {
				skipErr = fmt.Errorf("batch at %d: %w", base, why)
			}
		})
		if err == nil {
			err = skipErr
		}
		if err != nil {
			return err
		}
		if next <= off {
			return nil
		}
		off = next
	}
	return nil
}

// verifyLocal is the transaction coordinator's verify-only check
// (KIP-890) that (producerID, epoch) is txnID's current producer and tp is
// in its transaction: the code, and ok=false when this broker does not
// coordinate txnID (the check is then not made).
func (tc *txnCoordinator) verifyLocal(txnID string, producerID int64, epoch int16, tp txn.TopicPartition) (int16, bool) {
	part := tc.partitionFor(txnID)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	co, code := tc.coordLocked(part)
	if code != 0 {
		return code, code != kerr.NotCoordinator.Code
	}
	eff := co.AddPartitions(txnID, producerID, epoch, []txn.TopicPartition{tp}, true, tc.clock.Now())
	for _, a := range eff.Answers {
		if a.TxnID == txnID {
			if len(a.Partitions) == 1 {
				return a.Partitions[0].Err, true
			}
			return a.Err, true
		}
	}
	return kerr.UnknownServerError.Code, true
}

// verifyTxnPartition is the data path's KIP-890 verification hook
// (Broker.txnVerify): before a transactional produce to (topic, partition)
// is appended, the transaction coordinator confirms the partition is in
// txnID's transaction at (producerID, epoch). 0 when it is; the
// coordinator's code otherwise (TRANSACTION_ABORTABLE when not added,
// PRODUCER_FENCED, INVALID_PRODUCER_ID_MAPPING, CONCURRENT_TRANSACTIONS).
//
// When another broker of a cluster coordinates txnID, remote is true and
// the data path asks that broker with AddPartitionsToTxn v5 verify-only
// (Produce.verifyTxnRemote in txn_add.go, as Kafka's
// AddPartitionsToTxnManager does), since waiting for it here would block
// the network loop this runs on.
func (b *Broker) verifyTxnPartition(txnID string, producerID int64, epoch int16, topic string, partition int32) (code int16, remote bool) {
	code, ok := b.txns.verifyLocal(txnID, producerID, epoch, txn.TopicPartition{Topic: topic, Partition: partition})
	if !ok && b.opts.Cluster != nil {
		return 0, true
	}
	return code, false
}

// txnClusterCoordinator answers FindCoordinator for a transactional id in a
// cluster: the leader of its __transaction_state partition, or
// COORDINATOR_NOT_AVAILABLE (retriable) while there is none; a missing
// topic is then created through the controller, once at a time.
func (b *Broker) txnClusterCoordinator(key string) (int32, string, int32, int16, *string) {
	im := b.image()
	if t, ok := im.TopicByName(transactionStateTopic); ok {
		p, ok := t.Partitions[txn.PartitionFor(key, int32(len(t.Partitions)))]
		if ok && p.Leader >= 0 && isLive(im, p.Leader) {
			if br, ok := im.Broker(p.Leader); ok {
				if e, ok := b.brokerEndpoint(br); ok {
					return p.Leader, e.Host, int32(e.Port), 0, nil
				}
			}
		}
	} else if tc := b.txns; tc.creatingTopic.CompareAndSwap(false, true) {
		if !b.admin.submit(func() {
			defer tc.creatingTopic.Store(false)
			b.forwardCreate([]string{transactionStateTopic}, tc.partitions, tc.replicationFactor(), tc.topicConfig())
		}) {
			tc.creatingTopic.Store(false)
		}
	}
	return -1, "", -1, kerr.CoordinatorNotAvailable.Code, errMsg("the transaction coordinator is not available yet")
}

// initTransactionalProducerID answers InitProducerId for a transactional
// id (22_init_producer_id.go).
func (b *Broker) initTransactionalProducerID(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.InitProducerIDRequest) {
	h := hdr
	h.ClientID = nil
	txnID := *r.TransactionalID
	reply := func(a txn.Answer) {
		resp := kmsg.InitProducerIDResponse{Version: h.APIVersion, ProducerID: a.ProducerID, ProducerEpoch: a.ProducerEpoch,
			ErrorCode: txn.FencedForVersion(txn.APIInitProducerID, h.APIVersion, a.Err)}
		b.replyMsg(req, &h, &resp)
	}
	expectedPID, expectedEpoch := int64(-1), int16(-1)
	if h.APIVersion >= 3 {
		expectedPID, expectedEpoch = r.ProducerID, r.ProducerEpoch
	}
	if code := b.txns.call(txnID, reply, func(co *txn.Coordinator, now time.Time) txn.Effects {
		return co.InitProducerID(txnID, r.TransactionTimeoutMillis, expectedPID, expectedEpoch, now)
	}); code != 0 {
		reply(txn.Answer{Err: code, ProducerID: -1, ProducerEpoch: -1})
	}
}
