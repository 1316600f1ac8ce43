package txn

import (
	"math"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// InitProducerID handles InitProducerId for a transactional id (Kafka's
// handleInitProducerId; a null transactional id is the broker's own
// idempotent path and never reaches here). expectedPID/expectedEpoch are
// the KIP-360 fields of v3+ (-1/-1 when absent). The answer comes back at
// once for errors, else from the WriteDone of the Empty record.
//
// On Ongoing the running transaction is aborted first (its epoch bumped,
// fencing the zombie): the answer is CONCURRENT_TRANSACTIONS once the
// PrepareAbort record is written, and the client's retry gets the epoch
// after the abort completes.
func (c *Coordinator) InitProducerID(txnID string, timeoutMs int32, expectedPID int64, expectedEpoch int16, now time.Time) Effects {
	const api = APIInitProducerID
	if txnID == "" {
		return c.reply(txnID, api, kerr.InvalidRequest.Code)
	}
	// KafkaApis: both set or both -1.
	if (expectedPID == noProducerID) != (expectedEpoch == noProducerEpoch) {
		return c.reply(txnID, api, kerr.InvalidRequest.Code)
	}
	if timeoutMs <= 0 || time.Duration(timeoutMs)*time.Millisecond > c.cfg.MaxTimeout {
		return c.reply(txnID, api, kerr.InvalidTransactionTimeout.Code)
	}
	m := c.ids[txnID]
	if m == nil {
		if len(c.ids) >= c.cfg.MaxTransactionalIDs {
			return c.reply(txnID, api, kerr.CoordinatorNotAvailable.Code)
		}
		pid, code := c.newProducerID()
		if code != 0 {
			return c.reply(txnID, api, code)
		}
		// Kept even if its first write fails, as Kafka keeps it in the
		// cache: it expires like any Empty id.
		m = &Metadata{TransactionalID: txnID, ProducerID: pid, PreviousProducerID: noProducerID,
			NextProducerID: noProducerID, ProducerEpoch: noProducerEpoch, LastProducerEpoch: noProducerEpoch,
			TimeoutMs: timeoutMs, State: Empty, StartTimestamp: -1, LastUpdateTimestamp: now.UnixMilli(),
			partitions: map[TopicPartition]struct{}{}}
		c.ids[txnID] = m
	}
	hasExpected := expectedPID != noProducerID
	if m.pending != nil {
		return c.reply(txnID, api, kerr.ConcurrentTransactions.Code)
	}
	// KIP-360: a producer naming its id and epoch is fenced unless the id
	// is new (epoch -1), the producer id is the current one (the epoch is
	// checked below), or it is the previous one at an exhausted epoch (a
	// retry of the call that rotated the id).
	if hasExpected && !(m.ProducerEpoch == noProducerEpoch || expectedPID == m.ProducerID ||
		(expectedPID == m.PreviousProducerID && epochExhausted(expectedEpoch))) {
		return c.reply(txnID, api, kerr.ProducerFenced.Code)
	}
	nowMs := now.UnixMilli()
	switch m.State {
	case Empty, CompleteCommit, CompleteAbort:
		var to transit
		if epochExhausted(m.ProducerEpoch) && (!hasExpected || expectedEpoch == m.ProducerEpoch) {
			// Out of epochs: a new producer id at epoch 0.
			pid, code := c.newProducerID()
			if code != 0 {
				return c.reply(txnID, api, code)
			}
			last := noProducerEpoch
			if hasExpected {
				last = m.ProducerEpoch
			}
			to = m.newTransit(Empty, pid, noProducerID, 0, last, timeoutMs, nil, -1, nowMs, m.ClientTransactionVersion)
		} else {
			var epoch, last int16
			switch {
			case !hasExpected:
				epoch, last = m.ProducerEpoch+1, noProducerEpoch
			case m.ProducerEpoch == noProducerEpoch || expectedEpoch == m.ProducerEpoch:
				epoch, last = m.ProducerEpoch+1, m.ProducerEpoch
			case expectedEpoch == m.LastProducerEpoch:
				// A retry of a bump that succeeded: the current epoch again.
				// (Kafka first throws when the epoch is exhausted, answering
				// UNKNOWN_SERVER_ERROR; no bump is needed here, so we answer.)
				epoch, last = m.ProducerEpoch, m.LastProducerEpoch
			default:
				return c.reply(txnID, api, kerr.ProducerFenced.Code)
			}
			to = m.newTransit(Empty, m.ProducerID, noProducerID, epoch, last, timeoutMs, nil, -1, nowMs, m.ClientTransactionVersion)
		}
		c.prepare(m, to, pendingClient, &Answer{TxnID: txnID, API: api})
		c.issue(m)
		return c.take()
	case Ongoing:
		c.fenceAndAbort(m, now, &Answer{TxnID: txnID, API: api})
		return c.take()
	default:
		// Prepare* always has its completion pending (answered above);
		// Dead and PrepareEpochFence never rest on an id.
		return c.reply(txnID, api, kerr.ConcurrentTransactions.Code)
	}
}

// fenceAndAbort aborts m's Ongoing transaction with a bumped epoch (Kafka's
// prepareFenceProducerEpoch followed by endTransaction(ABORT,
// isFromClient=false)), for InitProducerId fencing a zombie and for
// timeouts. answer, if not nil, is answered CONCURRENT_TRANSACTIONS once the
// PrepareAbort record is written.
func (c *Coordinator) fenceAndAbort(m *Metadata, now time.Time, answer *Answer) {
	epoch := m.ProducerEpoch
	// After a failed fence write the bumped epoch is already in memory
	// and was never handed out: do not bump again. MaxInt16 cannot be
	// bumped (Kafka throws); clients never get past MaxInt16-1.
	if !m.hasFailedEpochFence && epoch < math.MaxInt16 {
		epoch++
	}
	// As Kafka: the fenced epoch goes into memory now, before the write;
	// a failed write leaves it there with hasFailedEpochFence set, so the
	// zombie stays fenced.
	m.ProducerEpoch, m.LastProducerEpoch = epoch, noProducerEpoch
	to := c.abortOrCommitTransit(m, PrepareAbort, c.transactionVersion(), noProducerID, false, now)
	c.prepare(m, to, pendingFence, answer)
	c.issue(m)
}

// abortOrCommitTransit is Kafka's prepareAbortOrCommit: transactions v2
// bumps the epoch on every EndTxn (the old one becomes the last epoch). A
// v2 abort from Empty or Complete* (noPartitionAdded) starts now.
func (c *Coordinator) abortOrCommitTransit(m *Metadata, state State, clientTV int16, nextPID int64, noPartitionAdded bool,
	now time.Time) transit {
	epoch, last := m.ProducerEpoch, m.LastProducerEpoch
	// Doubt: Kafka bumps unconditionally here; after a fence at
	// MaxInt16-1 (-> MaxInt16) a v2 bump would overflow, so we keep the
	// epoch at MaxInt16 instead.
	if clientTV >= 2 && epoch < math.MaxInt16 {
		epoch, last = epoch+1, epoch
	}
	start := m.StartTimestamp
	if noPartitionAdded {
		start = now.UnixMilli()
	}
	return m.newTransit(state, m.ProducerID, nextPID, epoch, last, m.TimeoutMs, m.Partitions(), start, now.UnixMilli(), clientTV)
}

// completeTransit is Kafka's prepareComplete: Prepare* -> Complete*, no
// partitions; a v2 commit that exhausted the epoch moves to NextProducerID
// at epoch 0.
func (c *Coordinator) completeTransit(m *Metadata, now time.Time) transit {
	state := CompleteAbort
	if m.State == PrepareCommit {
		state = CompleteCommit
	}
	m.hasFailedEpochFence = false
	pid, epoch := m.ProducerID, m.ProducerEpoch
	if m.ClientTransactionVersion >= 2 && m.NextProducerID != noProducerID {
		pid, epoch = m.NextProducerID, 0
	}
	// The last epoch stays what the client last saw (Kafka 4).
	return m.newTransit(state, pid, noProducerID, epoch, m.LastProducerEpoch, m.TimeoutMs, []TopicPartition{},
		m.StartTimestamp, now.UnixMilli(), m.ClientTransactionVersion)
}

// AddPartitions handles AddPartitionsToTxn for one transaction (Kafka's
// handleAddPartitionsToTransaction, or with verifyOnly its
// handleVerifyPartitionsInTransaction: KIP-890's check by a partition
// leader that a transactional produce's partition is in the transaction;
// it never writes). The answer comes back at once, or from WriteDone of the
// Ongoing record.
func (c *Coordinator) AddPartitions(txnID string, pid int64, epoch int16, partitions []TopicPartition, verifyOnly bool, now time.Time) Effects {
	if verifyOnly {
		return c.verifyPartitions(txnID, pid, epoch, partitions)
	}
	return c.addPartitions(APIAddPartitions, txnID, pid, epoch, partitions, keepTxnVersion, now)
}

// AddPartitionsV2 is transactions v2's implicit add (KIP-890 part 2): a
// partition leader that takes a transactional produce (Produce v12+), or a
// group coordinator that takes TxnOffsetCommit v5+, for a partition not yet
// in the transaction adds it here (Kafka's AddPartitionsToTxn v5 with
// verify_only false, sent by AddPartitionsToTxnManager). It is AddPartitions
// with the request's transaction version (2) recorded on the Ongoing
// record, as Kafka's prepareAddPartitions does; errors and the answer are
// AddPartitions'.
func (c *Coordinator) AddPartitionsV2(txnID string, pid int64, epoch int16, partitions []TopicPartition, now time.Time) Effects {
	return c.addPartitions(APIAddPartitions, txnID, pid, epoch, partitions, 2, now)
}

// keepTxnVersion: a transition that keeps the id's client transaction
// version (AddPartitionsToTxn below v5, AddOffsetsToTxn).
const keepTxnVersion int16 = -1

// AddOffsets handles AddOffsetsToTxn: it adds the group's __consumer_offsets
// partition to the transaction (Kafka's KafkaApis does the same through
// handleAddPartitionsToTransaction).
func (c *Coordinator) AddOffsets(txnID string, pid int64, epoch int16, groupID string, now time.Time) Effects {
	tp := TopicPartition{OffsetsTopic, c.cfg.OffsetsPartition(groupID)}
	return c.addPartitions(APIAddOffsets, txnID, pid, epoch, []TopicPartition{tp}, keepTxnVersion, now)
}

func (c *Coordinator) addPartitions(api API, txnID string, pid int64, epoch int16, partitions []TopicPartition, clientTV int16,
	now time.Time) Effects {
	if txnID == "" {
		return c.reply(txnID, api, kerr.InvalidRequest.Code)
	}
	m := c.ids[txnID]
	switch {
	case m == nil, m.ProducerID != pid, m.ProducerEpoch == noProducerEpoch:
		// (An id whose first InitProducerId was never written has no
		// producer yet; Kafka fails the transition with an internal
		// error, UNKNOWN_SERVER_ERROR, on its epoch of -1.)
		return c.reply(txnID, api, kerr.InvalidProducerIDMapping.Code)
	case m.ProducerEpoch != epoch:
		return c.reply(txnID, api, kerr.ProducerFenced.Code)
	case m.pending != nil, m.State.isPrepare():
		return c.reply(txnID, api, kerr.ConcurrentTransactions.Code)
	}
	union := m.Partitions()
	added := 0
	for _, tp := range partitions {
		if _, ok := m.partitions[tp]; !ok && !containsPartition(union[len(union)-added:], tp) {
			union = append(union, tp)
			added++
		}
	}
	if m.State == Ongoing && added == 0 {
		// Already in the transaction: nothing to write.
		return c.reply(txnID, api, 0)
	}
	if len(union) > c.cfg.MaxPartitionsPerTxn {
		return c.reply(txnID, api, kerr.TransactionAbortable.Code)
	}
	nowMs := now.UnixMilli()
	start := m.StartTimestamp
	if m.State == Empty || m.State.isComplete() {
		start = nowMs
	}
	// Kafka 4 records the request's transaction version here: 2 for the
	// implicit add of transactions v2 (AddPartitionsV2). The client forms
	// (AddPartitionsToTxn v0-3, AddOffsetsToTxn) keep the id's current
	// one. Only the record's field depends on it: EndTxn goes by its own
	// request's version.
	if clientTV == keepTxnVersion {
		clientTV = m.ClientTransactionVersion
	}
	to := m.newTransit(Ongoing, m.ProducerID, noProducerID, m.ProducerEpoch, m.LastProducerEpoch, m.TimeoutMs,
		sortedPartitions(union), start, nowMs, clientTV)
	c.prepare(m, to, pendingClient, &Answer{TxnID: txnID, API: api})
	c.issue(m)
	return c.take()
}

func (c *Coordinator) verifyPartitions(txnID string, pid int64, epoch int16, partitions []TopicPartition) Effects {
	a := Answer{TxnID: txnID, API: APIAddPartitions, ProducerID: noProducerID, ProducerEpoch: noProducerEpoch}
	m := c.ids[txnID]
	var code int16
	switch {
	case txnID == "":
		code = kerr.InvalidRequest.Code
	case m == nil, m.ProducerID != pid, m.ProducerEpoch == noProducerEpoch:
		code = kerr.InvalidProducerIDMapping.Code
	case m.ProducerEpoch != epoch:
		code = kerr.ProducerFenced.Code
	case m.State.isPrepare():
		// Pending transitions are not checked (Kafka: the append is
		// validated again at the partition).
		code = kerr.ConcurrentTransactions.Code
	}
	a.Err = code
	for _, tp := range partitions {
		r := PartitionResult{TopicPartition: tp, Err: code}
		if code == 0 {
			if _, ok := m.partitions[tp]; !ok {
				r.Err = kerr.TransactionAbortable.Code
			}
		}
		a.Partitions = append(a.Partitions, r)
	}
	c.answer(a)
	return c.take()
}

// EndTxn handles EndTxn (Kafka 4's handleEndTransaction, which takes
// one of two paths by the request's transaction version). txnVersion is 2
// for EndTxn v5+ (KafkaApis maps versions above 4 to TV_2), else 0. The
// answer comes back at once (errors, and success for a retry of an EndTxn
// that already completed), or from the WriteDone of the Prepare* record;
// markers follow.
//
// Transactions v1: the epoch must be the current one; Complete* answers a
// retry with the same outcome NONE. Transactions v2: every EndTxn bumps the
// epoch and the answer carries the producer id and epoch to continue with; a
// retry names the epoch before the bump; an abort is accepted in Empty and
// Complete* too (the client may not know the state), with no partitions:
//
//	                 abort               commit
//	                 retry    current    retry    current
//	Empty            FENCED   bump       FENCED   INVALID_TXN_STATE
//	CompleteAbort    NONE     bump       INVALID  INVALID_TXN_STATE
//	CompleteCommit   INVALID  bump       NONE     INVALID_TXN_STATE
func (c *Coordinator) EndTxn(txnID string, pid int64, epoch int16, commit bool, txnVersion int16, now time.Time) Effects {
	const api = APIEndTxn
	if txnID == "" {
		return c.reply(txnID, api, kerr.InvalidRequest.Code)
	}
	m := c.ids[txnID]
	if m == nil || m.ProducerEpoch == noProducerEpoch {
		// (No producer yet: see addPartitions.)
		return c.reply(txnID, api, kerr.InvalidProducerIDMapping.Code)
	}
	if txnVersion < 2 {
		return c.endTxnV1(m, pid, epoch, commit, now)
	}
	// A retry after the commit moved to a new producer id at epoch 0.
	retryOnOverflow := m.PreviousProducerID == pid && epoch == math.MaxInt16-1 && m.ProducerEpoch == 0
	// A retry after the EndTxn bumped the epoch.
	retryOnEpochBump := int32(m.ProducerEpoch) == int32(epoch)+1
	isRetry := retryOnOverflow || retryOnEpochBump
	validEpoch := epoch == m.ProducerEpoch
	switch {
	case m.State.isPrepare():
		validEpoch = retryOnEpochBump
	case m.State.isComplete():
		validEpoch = validEpoch || isRetry
	}
	switch {
	case m.ProducerID != pid && !retryOnOverflow:
		return c.reply(txnID, api, kerr.InvalidProducerIDMapping.Code)
	case !validEpoch:
		return c.reply(txnID, api, kerr.ProducerFenced.Code)
	case m.pending != nil:
		// Including markers in flight (Kafka's pending Complete*), even
		// for an EndTxn that contradicts the decided outcome.
		return c.reply(txnID, api, kerr.ConcurrentTransactions.Code)
	}
	retrySucceeded := func() Effects {
		c.answer(Answer{TxnID: txnID, API: api, ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch})
		return c.take()
	}
	switch {
	case m.State == Ongoing:
		state := PrepareAbort
		if commit {
			state = PrepareCommit
		}
		return c.endTxnPrepare(m, state, 2, false, now)
	case m.State == CompleteCommit && commit, m.State == CompleteAbort && !commit:
		if isRetry {
			return retrySucceeded()
		}
		if !commit {
			return c.endTxnPrepare(m, PrepareAbort, 2, true, now)
		}
	case m.State == CompleteCommit && !commit, m.State == Empty && !commit:
		if !isRetry {
			return c.endTxnPrepare(m, PrepareAbort, 2, true, now)
		}
	}
	// Empty or Complete* asked for the other outcome (or, with the epoch
	// before the bump, for an abort after a commit). Prepare* always has
	// its completion pending, answered above.
	return c.reply(txnID, api, kerr.InvalidTxnState.Code)
}

// endTxnV1 is Kafka's endTransactionWithTV1 for a client's EndTxn: the
// epoch must be the current one and is not bumped; the answer carries no
// producer id (EndTxn below v5 has none).
func (c *Coordinator) endTxnV1(m *Metadata, pid int64, epoch int16, commit bool, now time.Time) Effects {
	const api = APIEndTxn
	txnID := m.TransactionalID
	switch {
	case m.ProducerID != pid:
		return c.reply(txnID, api, kerr.InvalidProducerIDMapping.Code)
	case epoch != m.ProducerEpoch:
		return c.reply(txnID, api, kerr.ProducerFenced.Code)
	case m.pending != nil:
		return c.reply(txnID, api, kerr.ConcurrentTransactions.Code)
	}
	switch {
	case m.State == Ongoing:
		state := PrepareAbort
		if commit {
			state = PrepareCommit
		}
		return c.endTxnPrepare(m, state, 0, false, now)
	case m.State == CompleteCommit && commit, m.State == CompleteAbort && !commit:
		// A retry of the EndTxn that completed.
		return c.reply(txnID, api, 0)
	}
	return c.reply(txnID, api, kerr.InvalidTxnState.Code)
}

// endTxnPrepare writes the Prepare* record of a client's EndTxn. v2 at the
// last epoch allocates the producer id the transaction completes onto.
func (c *Coordinator) endTxnPrepare(m *Metadata, state State, txnVersion int16, noPartitionAdded bool, now time.Time) Effects {
	nextPID := noProducerID
	if txnVersion >= 2 && epochExhausted(m.ProducerEpoch) {
		id, code := c.newProducerID()
		if code != 0 {
			return c.reply(m.TransactionalID, APIEndTxn, code)
		}
		nextPID = id
	}
	to := c.abortOrCommitTransit(m, state, txnVersion, nextPID, noPartitionAdded, now)
	c.prepare(m, to, pendingClient, &Answer{TxnID: m.TransactionalID, API: APIEndTxn})
	c.issue(m)
	return c.take()
}

// WriteDone reports the outcome of the Write last handed out for txnID.
// On success the transition completes (answering its request; a Prepare*
// record turns into marker work, a tombstone removes the id); on failure it
// is rolled back and its request answered COORDINATOR_NOT_AVAILABLE
// (Kafka's mapping of a failed append; the client retries or looks the
// coordinator up again), except a Complete* record, which stays pending and
// is written again by the next Tick. A WriteDone with no write outstanding
// (after a reload, say) is ignored.
func (c *Coordinator) WriteDone(txnID string, ok bool, now time.Time) Effects {
	m := c.ids[txnID]
	if m == nil || m.pending == nil || !m.pending.issued {
		return c.take()
	}
	p := m.pending
	if !ok {
		switch p.kind {
		case pendingComplete:
			p.issued, p.retry = false, true
			return c.take()
		case pendingFence:
			m.hasFailedEpochFence = true
		}
		m.pending = nil
		if p.answer != nil {
			a := *p.answer
			a.Err, a.ProducerID, a.ProducerEpoch = kerr.CoordinatorNotAvailable.Code, noProducerID, noProducerEpoch
			c.answer(a)
		}
		return c.take()
	}
	if p.to.State == Dead {
		delete(c.ids, txnID)
		return c.take()
	}
	c.complete(m, p.to)
	if !m.State.isPrepare() {
		if a := p.answer; a != nil {
			a.ProducerID, a.ProducerEpoch = noProducerID, noProducerEpoch
			if a.API == APIInitProducerID {
				a.ProducerID, a.ProducerEpoch = m.ProducerID, m.ProducerEpoch
			}
			c.answer(*a)
		}
		return c.take()
	}
	// Prepare* is durable: the outcome is decided. Answer, then write the
	// markers (Kafka's sendTxnMarkersCallback).
	to := c.completeTransit(m, now)
	c.prepare(m, to, pendingComplete, nil)
	if a := p.answer; a != nil {
		a.ProducerID, a.ProducerEpoch = noProducerID, noProducerEpoch
		switch {
		case p.kind == pendingFence:
			a.Err = kerr.ConcurrentTransactions.Code
		case p.to.ClientTransactionVersion >= 2:
			// The id and epoch the client continues with: after a
			// commit that exhausted the epoch, the next producer id at
			// epoch 0, as the Java client expects ("if the epoch
			// overflows, a new producerId is returned with epoch 0").
			// Kafka 4.0's coordinator answers the metadata's id and
			// epoch here, which are still the old id at MaxInt16.
			a.ProducerID, a.ProducerEpoch = to.ProducerID, to.ProducerEpoch
		}
		c.answer(*a)
	}
	c.startMarkers(m)
	return c.take()
}

// startMarkers hands out the marker work of m's Prepare* state; with no
// partitions there is nothing to mark and the Complete* record is written
// at once.
func (c *Coordinator) startMarkers(m *Metadata) {
	if len(m.partitions) == 0 {
		c.issue(m)
		return
	}
	c.out.Markers = append(c.out.Markers, Markers{TxnID: m.TransactionalID, ProducerID: m.ProducerID,
		ProducerEpoch: m.ProducerEpoch, Commit: m.State == PrepareCommit, CoordinatorEpoch: c.cfg.CoordinatorEpoch,
		Partitions: m.Partitions()})
}

// MarkersDone reports that every partition of txnID's marker work has its
// marker: the Complete* record is handed out. Ignored when no marker work
// is outstanding.
func (c *Coordinator) MarkersDone(txnID string) Effects {
	m := c.ids[txnID]
	if m == nil || m.pending == nil || m.pending.kind != pendingComplete || m.pending.issued || m.pending.retry {
		return c.take()
	}
	c.issue(m)
	return c.take()
}

// Tick runs the periodic work at now (the broker calls it every
// transaction.abort.timed.out.transaction.cleanup.interval.ms, Kafka's
// default 10s): it aborts Ongoing transactions older than their timeout
// with an epoch bump (Kafka's abortTimedOutTransactions), writes a
// tombstone for every id in Empty or Complete* not updated for
// IDExpiration (Kafka's removeExpiredTransactionalIds, which Kafka runs on
// its own hourly timer), and retries failed Complete* writes. Ids with a
// transition in flight are skipped. It visits every id (as Kafka does).
func (c *Coordinator) Tick(now time.Time) Effects {
	nowMs := now.UnixMilli()
	expireBefore := nowMs - c.cfg.IDExpiration.Milliseconds()
	ids := make([]string, 0, len(c.ids))
	for id := range c.ids {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := c.ids[id]
		switch {
		case m.pending != nil:
			if m.pending.retry {
				c.issue(m)
			}
		case m.State == Ongoing && m.StartTimestamp+int64(m.TimeoutMs) < nowMs:
			c.fenceAndAbort(m, now, nil)
		case m.State.expirationAllowed() && m.LastUpdateTimestamp <= expireBefore:
			c.prepare(m, m.newTransit(Dead, m.ProducerID, noProducerID, m.ProducerEpoch, m.LastProducerEpoch, m.TimeoutMs,
				nil, m.StartTimestamp, m.LastUpdateTimestamp, m.ClientTransactionVersion), pendingDead, nil)
			c.issue(m)
		}
	}
	return c.take()
}

// FencedForVersion maps PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for the
// request versions that predate it, as KafkaApis does (InitProducerId
// below v4, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn below v2);
// other codes pass through. The broker applies it to Answer.Err (and each
// PartitionResult.Err) before encoding the response.
func FencedForVersion(api API, version int16, code int16) int16 {
	if code != kerr.ProducerFenced.Code {
		return code
	}
	firstVersion := int16(2)
	if api == APIInitProducerID {
		firstVersion = 4
	}
	if version < firstVersion {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}
