package broker

// Transactions v2's implicit add (KIP-890 part 2; Kafka's
// AddPartitionsToTxnManager with the addPartition operation): a client at
// transaction.version 2 sends no AddPartitionsToTxn or AddOffsetsToTxn.
// Instead the leader of a partition that a Produce v12+ writes a
// transactional batch to, and the group coordinator that takes a
// TxnOffsetCommit v5+, add that partition to the transaction through the
// transaction coordinator before the batch or the offsets are appended:
// the txn.Coordinator's AddPartitionsV2 when this broker coordinates the
// id, else AddPartitionsToTxn v5 (verify_only false) to the broker that
// does (txn_markers_cluster.go's inter-broker client).
//
// Order: the batches of one producer must reach a partition in the order
// they arrived (their sequences). So the adds of one transactional id run
// one at a time, and every v2 batch or commit of that id that arrives
// while an add is running waits behind it, even for a partition already
// in the transaction; waiters are released in arrival order, each through
// its done callback, while the id is still marked busy, so a batch
// arriving later cannot overtake them (a released produce batch is queued
// on its partition's worker, and later batches of that partition follow it
// there because the worker queue is not empty).
//
// A Produce's add answered CONCURRENT_TRANSACTIONS is retried for a short
// while (add.partitions.to.txn.retry.backoff.ms / .max.ms, Kafka 4's
// keys) on the coordinator glue's clock; a TxnOffsetCommit's is not (its
// client retries it), as in Kafka.
//
// Bounds: one add in flight per id (a remote one bounded by
// remoteTxnAddTimeout); the waiters are batches and commits of requests
// in flight, which netpoll bounds per connection and per process.
//
// Concurrency: txnAdder.mu guards busy; it is never held while calling the
// coordinator, another broker or a done callback. done callbacks run on
// the goroutine that finished the add (a ring thread, the
// __transaction_state writer's callback, or an inter-broker request's
// goroutine) and must not block.
//
// Transactions v1 in a cluster use the same queue to verify (KIP-890 part
// 1): a Produce before v12 whose transactional batch goes to a partition
// led here while another broker coordinates its id is checked with
// AddPartitionsToTxn v5 verify_only true on that broker (verifyTxnRemote)
// unless the producer already has a transaction open on the partition at
// the batch's epoch; a partition the client did not add is refused
// (TRANSACTION_ABORTABLE, as locally), so no transaction hangs on it.
//
// Differences from Apache Kafka: Kafka batches the adds of many ids per
// coordinator node into one request (AddPartitionsToTxnManager's
// nodesToTransactions) and answers a second request for an id in flight
// with NETWORK_EXCEPTION; here each id's adds are queued instead, and a
// remote add is one request per partition.

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/txn"
)

// remoteTxnAddTimeout bounds one AddPartitionsToTxn to another broker.
const remoteTxnAddTimeout = 10 * time.Second

// txnAdder queues the implicit adds of transactions v2 per transactional id.
type txnAdder struct {
	mu   sync.Mutex
	busy map[string]*txnAddQueue
}

// txnAddQueue is one id's adds: the waiters in arrival order, the first of
// which is being added while adding is set.
type txnAddQueue struct {
	waiters []*txnAddWaiter
	adding  bool
	// added holds what this queue's adds put in the transaction, so a
	// waiter behind the same partition needs no second round trip.
	added map[txnAddKey]struct{}
}

type txnAddKey struct {
	producerID int64
	epoch      int16
	tp         txn.TopicPartition
}

// txnAddWaiter is one batch (or offset commit) waiting for its partition
// to be in the transaction; done is called exactly once with 0 or the
// transaction coordinator's error.
type txnAddWaiter struct {
	txnID string
	key   txnAddKey
	done  func(code int16)
	// retryConcurrent: CONCURRENT_TRANSACTIONS is retried for a while
	// before done sees it (Produce; Kafka does not for TxnOffsetCommit).
	retryConcurrent bool
	// verifyOnly: the partition must already be in the transaction
	// (transactions v1); nothing is added.
	verifyOnly bool
}

// txnAddPartition makes sure tp is in txnID's transaction at (producerID,
// epoch), adding it when it is not, then calls done with 0 or the
// coordinator's error (the raw code: callers map it for their API). done
// may run before this returns. Calls for one txnID are answered in the
// order they were made.
//
// With retryConcurrent (Produce), an add answered CONCURRENT_TRANSACTIONS
// is tried again every add.partitions.to.txn.retry.backoff.ms while less
// than add.partitions.to.txn.retry.backoff.max.ms has passed, as Kafka 4
// does, so a producer that starts its next transaction while the markers
// of the last one are being written usually waits a few milliseconds here
// instead of a client retry backoff.
func (b *Broker) txnAddPartition(txnID string, producerID int64, epoch int16, tp txn.TopicPartition, retryConcurrent bool,
	done func(code int16)) {
	b.txnAddQueue(&txnAddWaiter{txnID: txnID, key: txnAddKey{producerID, epoch, tp}, done: done, retryConcurrent: retryConcurrent})
}

// txnVerifyPartition is txnAddPartition for transactions v1: it checks
// that tp is in txnID's transaction at (producerID, epoch) on the
// coordinator's broker, adding nothing, in the same per-id order.
func (b *Broker) txnVerifyPartition(txnID string, producerID int64, epoch int16, tp txn.TopicPartition, done func(code int16)) {
	b.txnAddQueue(&txnAddWaiter{txnID: txnID, key: txnAddKey{producerID, epoch, tp}, done: done, verifyOnly: true})
}

// txnAddQueue queues w behind the adds of its id, or starts it.
func (b *Broker) txnAddQueue(w *txnAddWaiter) {
	a := &b.txns.adds
	txnID := w.txnID
	a.mu.Lock()
	if a.busy == nil {
		a.busy = map[string]*txnAddQueue{}
	}
	if q := a.busy[txnID]; q != nil {
		q.waiters = append(q.waiters, w)
		a.mu.Unlock()
		return
	}
	q := &txnAddQueue{waiters: []*txnAddWaiter{w}}
	a.busy[txnID] = q
	a.mu.Unlock()
	b.txnAddDrain(txnID, q)
}

// txnAddBusy reports whether txnID has adds queued: a v2 batch of that id
// must then queue behind them (txnAddPartition) even when its partition
// is known to be in the transaction.
func (b *Broker) txnAddBusy(txnID string) bool {
	a := &b.txns.adds
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.busy[txnID] != nil
}

// txnAddDrain releases q's waiters in order: each one already added by
// this queue is answered at once; the first that is not starts an add and
// the drain stops until it is answered (txnAddDone). The id stays busy
// until the queue is empty.
func (b *Broker) txnAddDrain(txnID string, q *txnAddQueue) {
	a := &b.txns.adds
	for {
		a.mu.Lock()
		if q.adding {
			a.mu.Unlock()
			return
		}
		if len(q.waiters) == 0 {
			delete(a.busy, txnID)
			a.mu.Unlock()
			return
		}
		w := q.waiters[0]
		if _, ok := q.added[w.key]; ok {
			q.waiters = q.waiters[1:]
			a.mu.Unlock()
			w.done(0)
			continue
		}
		q.adding = true
		a.mu.Unlock()
		b.txnAddStart(w, func(code int16) { b.txnAddDone(txnID, q, w.key, code) })
		return
	}
}

// txnAddDone records the outcome of the add of key: on success the
// partition is in the transaction for every waiter of it; on failure
// every waiter of that same partition and producer gets the error (the
// others go on to their own add).
func (b *Broker) txnAddDone(txnID string, q *txnAddQueue, key txnAddKey, code int16) {
	a := &b.txns.adds
	var failed []*txnAddWaiter
	a.mu.Lock()
	q.adding = false
	if code == 0 {
		if q.added == nil {
			q.added = map[txnAddKey]struct{}{}
		}
		q.added[key] = struct{}{}
	} else {
		kept := q.waiters[:0]
		for _, w := range q.waiters {
			if w.key == key {
				failed = append(failed, w)
			} else {
				kept = append(kept, w)
			}
		}
		clear(q.waiters[len(kept):])
		q.waiters = kept
	}
	a.mu.Unlock()
	// The id stays busy (q is in busy) while these are answered: only
	// this goroutine drains q, arrivals queue behind.
	for _, w := range failed {
		w.done(code)
	}
	b.txnAddDrain(txnID, q)
}

// txnAddStart adds w's partition through the coordinator of w.txnID and
// calls done with the outcome, retrying CONCURRENT_TRANSACTIONS for a
// retryConcurrent waiter (see txnAddPartition).
func (b *Broker) txnAddStart(w *txnAddWaiter, done func(code int16)) {
	if !w.retryConcurrent {
		b.txnAddOnce(w, done)
		return
	}
	tc := b.txns
	backoff, backoffMax := tc.addRetryBackoff, tc.addRetryBackoffMax
	start := tc.clock.Now()
	var attempt func()
	attempt = func() {
		b.txnAddOnce(w, func(code int16) {
			if code == kerr.ConcurrentTransactions.Code && tc.clock.Now().Sub(start) < backoffMax {
				tc.clock.AfterFunc(backoff, attempt)
				return
			}
			done(code)
		})
	}
	attempt()
}

// txnAddOnce is one attempt of txnAddStart.
func (b *Broker) txnAddOnce(w *txnAddWaiter, done func(code int16)) {
	var code int16
	if w.verifyOnly {
		// The coordinator may have moved here since the produce asked.
		var ok bool
		if code, ok = b.txns.verifyLocal(w.txnID, w.key.producerID, w.key.epoch, w.key.tp); ok {
			done(code)
			return
		}
		code = kerr.NotCoordinator.Code
	} else {
		tps := []txn.TopicPartition{w.key.tp}
		code = b.txns.call(w.txnID, func(ans txn.Answer) {
			done(ans.Err)
		}, func(co *txn.Coordinator, now time.Time) txn.Effects {
			return co.AddPartitionsV2(w.txnID, w.key.producerID, w.key.epoch, tps, now)
		})
		if code == 0 {
			return
		}
	}
	if code != kerr.NotCoordinator.Code || b.opts.Cluster == nil {
		done(code)
		return
	}
	cm, ok := b.txns.markers.(*clusterMarkers)
	if !ok {
		done(code)
		return
	}
	leader, _, _, code, _ := b.txnClusterCoordinator(w.txnID)
	if code != 0 {
		done(code)
		return
	}
	if leader == b.opts.NodeID {
		// The image names us but the coordinator is not loaded yet.
		done(kerr.CoordinatorLoadInProgress.Code)
		return
	}
	go cm.addPartitions(leader, w.txnID, w.key.producerID, w.key.epoch, w.key.tp, w.verifyOnly, done)
}

// addPartitions sends transactions v2's implicit add of tp to broker id,
// the coordinator of txnID (AddPartitionsToTxn v5, verify_only false), or
// with verifyOnly transactions v1's check that tp is in the transaction,
// and calls done with the partition's code; a failed request answers
// NETWORK_EXCEPTION (retriable), a CLUSTER_AUTHORIZATION_FAILED
// INVALID_TXN_STATE, as Kafka's AddPartitionsToTxnManager does.
func (m *clusterMarkers) addPartitions(id int32, txnID string, producerID int64, epoch int16, tp txn.TopicPartition, verifyOnly bool,
	done func(code int16)) {
	cl, err := m.client()
	if err != nil {
		done(kerr.NetworkException.Code)
		return
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 5
	rt := kmsg.NewAddPartitionsToTxnRequestTransaction()
	rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, rt.VerifyOnly = txnID, producerID, epoch, verifyOnly
	topic := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	topic.Topic, topic.Partitions = tp.Topic, []int32{tp.Partition}
	rt.Topics = append(rt.Topics, topic)
	req.Transactions = append(req.Transactions, rt)
	ctx, cancel := context.WithTimeout(context.Background(), remoteTxnAddTimeout)
	defer cancel()
	// Pinned to v5: an older coordinator would take an add as verify-only.
	kresp, err := cl.Broker(int(id)).Request(ctx, req)
	if err != nil {
		if n, ok := remoteMarkerLog.Event(time.Second); ok {
			m.b.log.Warn("implicit add to a transaction on its coordinator failed", zap.Int32("broker", id),
				zap.Int64("failures_since_last_line", n), zap.Error(err))
		}
		done(kerr.NetworkException.Code)
		return
	}
	resp, ok := kresp.(*kmsg.AddPartitionsToTxnResponse)
	if !ok {
		done(kerr.NetworkException.Code)
		return
	}
	done(addPartitionsAnswer(resp, txnID, tp))
}

// addPartitionsAnswer is tp's code in an AddPartitionsToTxn v4+ response.
func addPartitionsAnswer(resp *kmsg.AddPartitionsToTxnResponse, txnID string, tp txn.TopicPartition) int16 {
	if resp.ErrorCode != 0 {
		if resp.ErrorCode == kerr.ClusterAuthorizationFailed.Code {
			return kerr.InvalidTxnState.Code
		}
		return resp.ErrorCode
	}
	for _, rt := range resp.Transactions {
		if rt.TransactionalID != txnID {
			continue
		}
		for _, t := range rt.Topics {
			if t.Topic != tp.Topic {
				continue
			}
			for _, p := range t.Partitions {
				if p.Partition == tp.Partition {
					return p.ErrorCode
				}
			}
		}
	}
	return kerr.UnknownServerError.Code
}

// produceAddCode maps the coordinator's answer to an implicit add into the
// Produce v12+ answer, as Kafka does (AddPartitionsToTxnManager, then
// ReplicaManager's postVerificationCallback): PRODUCER_FENCED is
// INVALID_PRODUCER_EPOCH, and errors the client should simply retry
// (CONCURRENT_TRANSACTIONS while the previous transaction's markers are
// being written, coordinator moves and loads, a lost inter-broker request)
// are NOT_ENOUGH_REPLICAS, which retries without a metadata refresh.
func produceAddCode(code int16) int16 {
	switch code {
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.ConcurrentTransactions.Code, kerr.NetworkException.Code, kerr.CoordinatorLoadInProgress.Code,
		kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code:
		return kerr.NotEnoughReplicas.Code
	}
	return code
}

// txnOffsetCommitAddCode maps the coordinator's answer to the implicit add
// of a TxnOffsetCommit v5+'s offsets partition: PRODUCER_FENCED is
// INVALID_PRODUCER_EPOCH (what Kafka's append answers), the transaction
// coordinator's own unavailability COORDINATOR_NOT_AVAILABLE (Kafka's
// group coordinator maps the verification's retriable errors so; the
// client looks the coordinator up again and retries), the rest as is
// (CONCURRENT_TRANSACTIONS and TRANSACTION_ABORTABLE are known to v5
// clients).
func txnOffsetCommitAddCode(code int16) int16 {
	switch code {
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.NetworkException.Code, kerr.CoordinatorLoadInProgress.Code, kerr.NotCoordinator.Code, kerr.NotEnoughReplicas.Code:
		return kerr.CoordinatorNotAvailable.Code
	}
	return code
}

// addToTxnV2 is the Produce v12+ path of a transactional batch
// (00_produce.go): unless its producer already has a transaction open on
// the partition at the batch's epoch (the partition was added, Kafka's
// hasOngoingTransaction shortcut) and no add of its id is queued, the
// batch is copied and waits for txnAddPartition, then goes to the
// partition's worker, or is answered the add's error. handled is false
// when the batch may go on at once. Runs on the ring thread.
func (c *produceCtx) addToTxnV2(ps *partState, s *partSlot, bi *batchInfo, topic string, inspect bool, rules recordRules,
	recompress bool, codec int8, maxMessageBytes int32) (handled bool) {
	return c.holdForTxnCheck(ps, s, bi, topic, inspect, rules, recompress, codec, maxMessageBytes, false)
}

// verifyTxnRemote is the Produce path (before v12) of a transactional
// batch whose id another broker coordinates (00_produce.go, when
// Broker.txnVerify says remote): the same as addToTxnV2, but the batch
// waits for txnVerifyPartition, a check that adds nothing (errors mapped
// as for transactions v2: retriable failures NOT_ENOUGH_REPLICAS,
// PRODUCER_FENCED INVALID_PRODUCER_EPOCH).
func (c *produceCtx) verifyTxnRemote(ps *partState, s *partSlot, bi *batchInfo, topic string, inspect bool, rules recordRules,
	recompress bool, codec int8, maxMessageBytes int32) (handled bool) {
	return c.holdForTxnCheck(ps, s, bi, topic, inspect, rules, recompress, codec, maxMessageBytes, true)
}

// holdForTxnCheck is addToTxnV2 (verifyOnly false) and verifyTxnRemote
// (verifyOnly true).
func (c *produceCtx) holdForTxnCheck(ps *partState, s *partSlot, bi *batchInfo, topic string, inspect bool, rules recordRules,
	recompress bool, codec int8, maxMessageBytes int32, verifyOnly bool) (handled bool) {
	b := c.b
	pid, epoch := bi.batch.ProducerID(), bi.batch.ProducerEpoch()
	if !b.txnAddBusy(c.txnID) && ps.hasOpenTxn(pid, epoch) {
		return false
	}
	job := c.newJob(ps, s, bi, inspect, rules, recompress, codec, maxMessageBytes)
	// Both names alias memory the next request reuses (c.txnID the frame,
	// topic the context's name buffer), and the coordinator keeps them.
	txnID, topic := strings.Clone(c.txnID), strings.Clone(topic)
	tp := txn.TopicPartition{Topic: topic, Partition: s.partition}
	done := func(code int16) {
		if code != 0 {
			s.done(produceAddCode(code), -1, -1, -1, "")
			return
		}
		enqueueProduceJob(job)
	}
	if verifyOnly {
		b.txnVerifyPartition(txnID, pid, epoch, tp, done)
	} else {
		b.txnAddPartition(txnID, pid, epoch, tp, true, done)
	}
	return true
}

// hasOpenTxn reports whether producer pid has a transaction open on the
// partition at epoch (only once the state is loaded: before, the caller
// asks the coordinator).
func (ps *partState) hasOpenTxn(pid int64, epoch int16) bool {
	if !ps.loaded.Load() {
		return false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	e := ps.producers[pid]
	return e != nil && e.epoch == epoch && e.txn != nil
}
