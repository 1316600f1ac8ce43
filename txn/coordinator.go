package txn

import (
	"errors"
	"math"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/invariants"
)

// Defaults for Config.
const (
	// DefaultMaxTimeout is transaction.max.timeout.ms's default (900000).
	DefaultMaxTimeout = 15 * time.Minute
	// DefaultIDExpiration is transactional.id.expiration.ms's default
	// (604800000, 7 days).
	DefaultIDExpiration = 7 * 24 * time.Hour
	// DefaultMaxTransactionalIDs bounds the ids one Coordinator holds.
	DefaultMaxTransactionalIDs = 100000
	// DefaultMaxPartitionsPerTxn bounds the partitions of one transaction.
	DefaultMaxPartitionsPerTxn = 10000
	// DefaultOffsetsPartitions is offsets.topic.num.partitions's default,
	// used by the default Config.OffsetsPartition.
	DefaultOffsetsPartitions = 50
)

// OffsetsTopic is the topic AddOffsets adds a partition of.
const OffsetsTopic = "__consumer_offsets"

// noProducerID and noProducerEpoch are Kafka's RecordBatch.NO_PRODUCER_ID
// and NO_PRODUCER_EPOCH.
const (
	noProducerID    int64 = -1
	noProducerEpoch int16 = -1
)

// Config configures a Coordinator.
type Config struct {
	// MaxTimeout is transaction.max.timeout.ms: InitProducerId with a
	// larger (or non-positive) timeout is INVALID_TRANSACTION_TIMEOUT.
	// 0 means DefaultMaxTimeout.
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms: an id in Empty or
	// Complete* not updated for this long is removed (tombstone) by Tick.
	// 0 means DefaultIDExpiration.
	IDExpiration time.Duration
	// MaxTransactionalIDs bounds the ids held (Kafka has no bound). A new
	// id beyond it is answered COORDINATOR_NOT_AVAILABLE, as group/ answers
	// a new group beyond MaxGroups: retriable, so a client waits (up to its
	// max.block.ms) for ids to expire instead of failing fatally. Load keeps
	// every durable id even above the bound. 0 means
	// DefaultMaxTransactionalIDs.
	MaxTransactionalIDs int
	// MaxPartitionsPerTxn bounds the partitions of one transaction (Kafka
	// has no bound). An AddPartitions/AddOffsets that would exceed it is
	// answered TRANSACTION_ABORTABLE: the client aborts and may start over
	// with fewer partitions; clients older than KIP-890 see an unknown
	// error, which also makes them abort. 0 means DefaultMaxPartitionsPerTxn.
	MaxPartitionsPerTxn int
	// CoordinatorEpoch is the leader epoch of this __transaction_state
	// partition, stamped on marker work (WriteTxnMarkers' coordinator
	// epoch) so partition leaders reject markers from a stale coordinator.
	CoordinatorEpoch int32
	// TransactionVersionLevel is the cluster's transaction.version feature
	// level (0, 1 or 2): records are written at value version 0 at level
	// 0 and version 1 above, and aborts the coordinator starts itself
	// (fencing, timeouts) bump the epoch as transactions v2 does at level 2.
	TransactionVersionLevel int16
	// TransactionVersion, when set, is read instead of
	// TransactionVersionLevel at each use, so the level follows
	// UpdateFeatures (Kafka's coordinator reads the metadata cache's).
	TransactionVersion func() int16
	// NewProducerID allocates a producer id (the broker plugs its
	// persisted block allocator). An error that is a *kerr.Error is
	// answered with its code (e.g. COORDINATOR_LOAD_IN_PROGRESS while the
	// next block is being made durable, which clients retry); any other
	// error is UNKNOWN_SERVER_ERROR, as Kafka's Errors.forException. nil
	// counts up from 0 (tests only).
	NewProducerID func() (int64, error)
	// OffsetsPartition returns the __consumer_offsets partition of a
	// group (AddOffsets). nil uses group.PartitionFor with
	// DefaultOffsetsPartitions.
	OffsetsPartition func(groupID string) int32
}

// API names the request an Answer is for.
type API int8

// The APIs the Coordinator answers.
const (
	APIInitProducerID API = iota
	APIAddPartitions
	APIAddOffsets
	APIEndTxn
)

func (a API) String() string {
	return [...]string{"InitProducerId", "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn"}[a]
}

// Answer is the answer to one request: a Kafka error code and, for
// InitProducerId and EndTxn, the producer id and epoch (-1 on error).
type Answer struct {
	TxnID         string
	API           API
	Err           int16
	ProducerID    int64
	ProducerEpoch int16
	// Partitions holds the per-partition results of a verify-only
	// AddPartitions (KIP-890); nil otherwise (Err applies to every
	// partition of the request).
	Partitions []PartitionResult
}

// PartitionResult is one partition's result of a verify-only AddPartitions.
type PartitionResult struct {
	TopicPartition
	Err int16
}

// Write is one record for the broker to append to the id's
// __transaction_state partition (acks=all) and then report with WriteDone.
// Value nil is a tombstone.
type Write struct {
	TxnID      string
	Key, Value []byte
}

// Markers is marker work: write a COMMIT or ABORT control batch for
// (ProducerID, ProducerEpoch) with CoordinatorEpoch to every partition
// (WriteTxnMarkers), retrying until each is written or the partition is
// gone, then call MarkersDone.
type Markers struct {
	TxnID            string
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	Partitions       []TopicPartition
}

// Effects is what one call asks of the broker: answers to send (including
// answers deferred from earlier calls), records to append, markers to
// write. Each slice is in a deterministic order.
type Effects struct {
	Answers []Answer
	Writes  []Write
	Markers []Markers
}

// Record is one __transaction_state record read back by Load.
type Record struct {
	Key, Value []byte
}

// Metadata is one transactional id's state (Kafka's TransactionMetadata).
// Read-only for callers.
type Metadata struct {
	TransactionalID string
	ProducerID      int64
	// PreviousProducerID is the producer id before the last rotation (or
	// of the last transition); NextProducerID the id a transactions-v2
	// commit at epoch exhaustion moves to when its markers are written.
	PreviousProducerID, NextProducerID int64
	ProducerEpoch                      int16
	// LastProducerEpoch is the epoch before the last bump (KIP-360: a
	// retried InitProducerId naming it gets the current epoch back). Not
	// persisted (Kafka does not either): -1 after Load.
	LastProducerEpoch int16
	TimeoutMs         int32
	State             State
	// StartTimestamp is when the current (or last) transaction started
	// (ms, -1 before the first); LastUpdateTimestamp the last completed
	// transition (ms).
	StartTimestamp, LastUpdateTimestamp int64
	// ClientTransactionVersion is the transaction version of the last
	// transition (2 after a transactions-v2 EndTxn, else 0).
	ClientTransactionVersion int16

	partitions map[TopicPartition]struct{}
	pending    *pending
	// hasFailedEpochFence: a fencing abort's write failed after the epoch
	// was bumped in memory; the next fence does not bump again (Kafka's
	// flag of the same name), so an epoch never returned to anyone is
	// not skipped over twice.
	hasFailedEpochFence bool
}

// Partitions returns the transaction's partitions, sorted.
func (m *Metadata) Partitions() []TopicPartition {
	out := make([]TopicPartition, 0, len(m.partitions))
	for tp := range m.partitions {
		out = append(out, tp)
	}
	return sortedPartitions(out)
}

// Pending returns the state a transition in flight goes to, if any (Kafka's
// pendingState).
func (m *Metadata) Pending() (State, bool) {
	if m.pending == nil {
		return 0, false
	}
	return m.pending.to.State, true
}

// transit is a transition's target (Kafka's TxnTransitMetadata): what
// the record says, plus the last epoch, which is not persisted.
type transit struct {
	LogValue
	LastProducerEpoch int16
}

type pendingKind int8

const (
	// pendingClient: a client request's transition; its answer waits for
	// WriteDone.
	pendingClient pendingKind = iota
	// pendingFence: an abort the coordinator started (InitProducerId
	// fencing an Ongoing transaction, or a timeout), epoch bumped.
	pendingFence
	// pendingComplete: Prepare* -> Complete*, waiting for the markers,
	// then for its write.
	pendingComplete
	// pendingDead: expiration, waiting for the tombstone's write.
	pendingDead
)

// pending is a transition in flight.
type pending struct {
	to     transit
	kind   pendingKind
	answer *Answer // the answer waiting for WriteDone; nil when nobody waits
	// issued: the record was handed out in a Write and WriteDone is due.
	// A pendingComplete is not issued until MarkersDone.
	issued bool
	// retry: a Complete* write failed; the next Tick issues it again
	// (Kafka retries that append rather than leave Prepare* stuck).
	retry bool
}

// Coordinator holds the transactional ids of one __transaction_state
// partition. See the package comment.
type Coordinator struct {
	cfg    Config
	ids    map[string]*Metadata
	nextID int64
	out    Effects
}

// New returns an empty Coordinator.
func New(cfg Config) *Coordinator {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	if cfg.IDExpiration <= 0 {
		cfg.IDExpiration = DefaultIDExpiration
	}
	if cfg.MaxTransactionalIDs <= 0 {
		cfg.MaxTransactionalIDs = DefaultMaxTransactionalIDs
	}
	if cfg.MaxPartitionsPerTxn <= 0 {
		cfg.MaxPartitionsPerTxn = DefaultMaxPartitionsPerTxn
	}
	if cfg.OffsetsPartition == nil {
		cfg.OffsetsPartition = func(g string) int32 { return group.PartitionFor(g, DefaultOffsetsPartitions) }
	}
	return &Coordinator{cfg: cfg, ids: map[string]*Metadata{}}
}

// Transaction returns txnID's metadata or nil.
func (c *Coordinator) Transaction(txnID string) *Metadata { return c.ids[txnID] }

// IDs returns every transactional id, sorted.
func (c *Coordinator) IDs() []string {
	out := make([]string, 0, len(c.ids))
	for id := range c.ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// NumIDs returns the number of transactional ids held.
func (c *Coordinator) NumIDs() int { return len(c.ids) }

// take returns the effects gathered by the current call and resets them.
func (c *Coordinator) take() Effects {
	e := c.out
	c.out = Effects{}
	return e
}

func (c *Coordinator) answer(a Answer) { c.out.Answers = append(c.out.Answers, a) }

// reply answers an error (or NONE) with no producer id, as Kafka's
// initTransactionError and EndTxn error answers.
func (c *Coordinator) reply(txnID string, api API, code int16) Effects {
	c.answer(Answer{TxnID: txnID, API: api, Err: code, ProducerID: noProducerID, ProducerEpoch: noProducerEpoch})
	return c.take()
}

func (c *Coordinator) newProducerID() (int64, int16) {
	if c.cfg.NewProducerID == nil {
		id := c.nextID
		c.nextID++
		return id, 0
	}
	id, err := c.cfg.NewProducerID()
	if err != nil {
		var ke *kerr.Error
		if errors.As(err, &ke) {
			return 0, ke.Code
		}
		return 0, kerr.UnknownServerError.Code
	}
	return id, 0
}

// epochExhausted is Kafka's TransactionMetadata.isEpochExhausted: the last
// epoch a client may use is MaxInt16-1, so the coordinator can always fence
// it with one more.
func epochExhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// newTransit returns a transition of m (Kafka's prepareTransitionTo
// arguments); the previous producer id is always m's current one.
func (m *Metadata) newTransit(state State, producerID, nextProducerID int64, epoch, lastEpoch int16, timeoutMs int32,
	partitions []TopicPartition, start, update int64, clientTV int16) transit {
	return transit{LogValue: LogValue{ProducerID: producerID, PreviousProducerID: m.ProducerID, NextProducerID: nextProducerID,
		ProducerEpoch: epoch, TimeoutMs: timeoutMs, State: state, Partitions: partitions, LastUpdateTimestamp: update,
		StartTimestamp: start, ClientTransactionVersion: clientTV}, LastProducerEpoch: lastEpoch}
}

// prepare sets m's pending transition (Kafka's prepareTransitionTo checks).
func (c *Coordinator) prepare(m *Metadata, to transit, kind pendingKind, answer *Answer) {
	if invariants.Enabled {
		invariants.Check(m.pending == nil, "txn %s: preparing %v while %v is pending", m.TransactionalID, to.State, m.pending)
		invariants.Check(validTransition(m.State, to.State), "txn %s: %v -> %v is not an edge Kafka allows",
			m.TransactionalID, m.State, to.State)
		invariants.Check(to.ProducerID >= 0, "txn %s: producer id %d", m.TransactionalID, to.ProducerID)
		invariants.Check(to.State == Dead || to.ProducerEpoch >= 0, "txn %s: epoch %d", m.TransactionalID, to.ProducerEpoch)
	}
	m.pending = &pending{to: to, kind: kind, answer: answer}
}

// issue hands out m's pending transition as a Write.
func (c *Coordinator) issue(m *Metadata) {
	p := m.pending
	p.issued, p.retry = true, false
	w := Write{TxnID: m.TransactionalID, Key: EncodeKey(m.TransactionalID)}
	if p.to.State != Dead {
		version := int16(0)
		if c.transactionVersion() >= 1 {
			version = 1
		}
		w.Value = EncodeValue(&p.to.LogValue, version)
	}
	c.out.Writes = append(c.out.Writes, w)
}

// transactionVersion is the transaction.version level now.
func (c *Coordinator) transactionVersion() int16 {
	if c.cfg.TransactionVersion != nil {
		return c.cfg.TransactionVersion()
	}
	return c.cfg.TransactionVersionLevel
}

// complete applies a written transition to m (Kafka's completeTransitionTo,
// which in Kafka 4 takes every field of the transition).
func (c *Coordinator) complete(m *Metadata, to transit) {
	if invariants.Enabled {
		c.checkComplete(m, to)
	}
	m.ProducerID, m.PreviousProducerID, m.NextProducerID = to.ProducerID, to.PreviousProducerID, to.NextProducerID
	m.ProducerEpoch, m.LastProducerEpoch = to.ProducerEpoch, to.LastProducerEpoch
	m.TimeoutMs = to.TimeoutMs
	clear(m.partitions)
	for _, tp := range to.Partitions {
		m.partitions[tp] = struct{}{}
	}
	m.StartTimestamp, m.LastUpdateTimestamp = to.StartTimestamp, to.LastUpdateTimestamp
	m.ClientTransactionVersion = to.ClientTransactionVersion
	m.State = to.State
	m.pending = nil
}

// checkComplete asserts Kafka's completeTransitionTo conditions.
func (c *Coordinator) checkComplete(m *Metadata, to transit) {
	id := m.TransactionalID
	invariants.Check(m.pending != nil && m.pending.to.State == to.State, "txn %s: completing %v without it pending", id, to.State)
	switch to.State {
	case Empty:
		invariants.Check(len(to.Partitions) == 0 && to.StartTimestamp == -1, "txn %s: Empty with partitions or start", id)
		invariants.Check(to.ProducerEpoch == m.ProducerEpoch || to.ProducerEpoch == m.ProducerEpoch+1 ||
			(to.ProducerEpoch == 0 && to.ProducerID != m.ProducerID), "txn %s: epoch %d -> %d", id, m.ProducerEpoch, to.ProducerEpoch)
	case Ongoing:
		invariants.Check(to.ProducerID == m.ProducerID && to.ProducerEpoch == m.ProducerEpoch, "txn %s: Ongoing changes the producer", id)
		for tp := range m.partitions {
			invariants.Check(containsPartition(to.Partitions, tp), "txn %s: Ongoing drops %v", id, tp)
		}
	case PrepareCommit, PrepareAbort:
		epoch := to.ProducerEpoch
		if to.ClientTransactionVersion >= 2 && to.ProducerEpoch != m.ProducerEpoch {
			epoch = to.LastProducerEpoch
		}
		invariants.Check(to.ProducerID == m.ProducerID && epoch == m.ProducerEpoch, "txn %s: %v changes the producer", id, to.State)
		// A v2 abort from Empty or Complete* starts a transaction of its own.
		emptyAbort := to.State == PrepareAbort && m.State != Ongoing
		invariants.Check(len(to.Partitions) == len(m.partitions) && (to.StartTimestamp == m.StartTimestamp || emptyAbort),
			"txn %s: %v changes the transaction", id, to.State)
	case CompleteCommit, CompleteAbort:
		invariants.Check(to.StartTimestamp != -1, "txn %s: %v without a start", id, to.State)
		invariants.Check(len(to.Partitions) == 0, "txn %s: %v with partitions", id, to.State)
	}
}

func containsPartition(tps []TopicPartition, tp TopicPartition) bool {
	for _, p := range tps {
		if p == tp {
			return true
		}
	}
	return false
}

// PartitionFor returns the __transaction_state partition of txnID, as Kafka
// computes it: abs(Java String.hashCode(txnID)) % partitions (the rule
// group.PartitionFor implements for __consumer_offsets).
func PartitionFor(txnID string, partitions int32) int32 { return group.PartitionFor(txnID, partitions) }
