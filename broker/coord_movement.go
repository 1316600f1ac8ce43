package broker

// Coordinators move with the leadership of their internal-topic partition
// (issue 16; Kafka's GroupCoordinator.onElection/onResignation and
// TransactionStateManager.loadTransactionsForTxnTopicPartition /
// removeTransactionsForTxnTopicPartition). Cluster mode only: a single
// node loads everything at start (load in group_coordinator.go and
// txn_coordinator.go) and its leaderships never move.
//
// After the broker applied an image to __consumer_offsets or
// __transaction_state (syncTopic, on the metadata applier goroutine, after
// the replica fetchers of the partitions this node now leads were retired
// and the partitions' leadership flags were set), followCoordinators
// compares, per partition, "led here" with what the coordinator serves:
//
//   - newly led: the partition is marked loading (its requests answered
//     COORDINATOR_LOAD_IN_PROGRESS) and a goroutine reads it from the log
//     start to the log end (ReadReplica: past the high watermark, as Kafka
//     loads; nothing is appended meanwhile, since nothing is served) and
//     installs the result under the coordinator's lock, unless the
//     partition's generation moved on meanwhile (lost again, or led at a
//     newer epoch: that later load wins). The transaction coordinator of
//     the partition gets the partition's leader epoch as its coordinator
//     epoch (WriteTxnMarkers' CoordinatorEpoch), and transactions left in
//     Prepare* send their markers again (txn.Coordinator.Load);
//   - no longer led: the partition's groups or transactions are dropped
//     from memory (never from the log), requests waiting on them answered
//     NOT_COORDINATOR, and every request after that answered
//     NOT_COORDINATOR; appends still in flight find the coordinator gone
//     and are ignored, the records staying in the log for the next leader.
//   - led at a new leader epoch (a leader that stayed leader through an
//     election): a __transaction_state partition is reloaded, so the
//     coordinator epoch follows (Kafka's TransactionStateManager replaces
//     the partition's cache with the newer epoch's); a __consumer_offsets
//     partition is left as it is (Kafka's group coordinator skips a
//     partition it owns).
//
// A load is bounded by the partition's log end read when it starts, and
// runs once per leadership change. A load that fails (an I/O error) leaves
// the partition not served (COORDINATOR_NOT_AVAILABLE) until its next
// leadership change; nothing is deleted.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/txn"
)

// coordLead is one partition of an internal topic as the image has it
// for this node: led here (with its log) at epoch, or not.
type coordLead struct {
	index int32
	p     *Partition // the local partition when led here
	epoch int32
}

// followCoordinators hands the leadership of the internal topic t's
// partitions to its coordinator. Called by syncTopic after the partitions
// followed the image. REQUIRES: cluster mode.
func (b *Broker) followCoordinators(t *metadata.Topic, parts []*Partition) {
	var coordFollow func([]coordLead)
	switch t.Name {
	case offsetsTopic:
		coordFollow = b.groups.follow
	case transactionStateTopic:
		coordFollow = b.txns.follow
	default:
		return
	}
	leads := make([]coordLead, 0, len(t.Partitions))
	for i, mp := range t.Partitions {
		l := coordLead{index: i, epoch: mp.LeaderEpoch}
		if mp.Leader == b.opts.NodeID && slices.Contains(mp.Replicas, b.opts.NodeID) && int(i) < len(parts) && parts[i].Local() {
			l.p = parts[i]
		}
		leads = append(leads, l)
	}
	coordFollow(leads)
}

// follow loads the groups of the __consumer_offsets partitions newly led
// here and drops those of the partitions no longer led.
func (c *coordinator) follow(leads []coordLead) {
	c.lock()
	defer c.unlock()
	if c.closed {
		return
	}
	if t := c.b.reg.Topic(offsetsTopic); t != nil {
		c.persist.topic.Store(t)
	}
	for _, l := range leads {
		part := l.index
		known := c.served[part] || c.loading[part] || c.broken[part]
		switch {
		case l.p == nil && known:
			c.unloadLocked(part)
		case l.p != nil && !known:
			// A new leader epoch on a partition already served here
			// changes nothing for its groups (Kafka's addLoadingPartition
			// skips an owned partition).
			c.loadGen[part]++
			c.loading[part] = true
			go c.loadPartition(l.p, l.epoch, c.loadGen[part])
		}
	}
}

// unloadLocked drops the groups of partition part from memory: their
// waiting joins and syncs are answered NOT_COORDINATOR. REQUIRES: mu held.
func (c *coordinator) unloadLocked(part int32) {
	c.loadGen[part]++ // a load in flight is stale
	delete(c.served, part)
	delete(c.loading, part)
	delete(c.broken, part)
	n := c.g.Unload(func(groupID string) bool { return group.PartitionFor(groupID, c.partitions) == part }, kerr.NotCoordinator.Code)
	c.log.Info("unloaded groups of a __consumer_offsets partition no longer led here", zap.Int32("partition", part), zap.Int("groups", n))
}

// loadPartition reads partition p, led here at epoch (gen its generation
// when scheduled), and installs its groups, unless the partition moved on
// meanwhile. Its own goroutine: it reads the log.
func (c *coordinator) loadPartition(p *Partition, epoch int32, gen uint64) {
	recs, skipped, err := c.readPartition(p)
	now := c.clock.Now()
	c.lock()
	defer c.unlock()
	if c.closed || c.loadGen[p.Index] != gen {
		return
	}
	delete(c.loading, p.Index)
	if err != nil {
		c.broken[p.Index] = true
		c.log.Error("__consumer_offsets partition not loaded: its groups are not served until its leadership changes",
			zap.Int32("partition", p.Index), zap.Error(err))
		return
	}
	in := func(groupID string) bool { return group.PartitionFor(groupID, c.partitions) == p.Index }
	// Anything left of the partition's groups (a request that raced the
	// last unload) gives way to the log.
	c.g.Unload(in, kerr.NotCoordinator.Code)
	records := c.replayLocked(now, p.Index, recs)
	c.g.FinishLoadOf(now, in)
	c.served[p.Index] = true
	c.log.Info("loaded groups of a __consumer_offsets partition led here", zap.Int32("partition", p.Index),
		zap.Int32("leader_epoch", epoch), zap.Int("records", records), zap.Int("skipped", skipped))
}

// follow loads a Coordinator for each __transaction_state partition newly
// led here and drops those of the partitions no longer led.
func (tc *txnCoordinator) follow(leads []coordLead) {
	var after txnAfter
	tc.mu.Lock()
	if tc.closed {
		tc.mu.Unlock()
		return
	}
	if t := tc.b.reg.Topic(transactionStateTopic); t != nil {
		tc.persist.topic.Store(t)
	}
	for _, l := range leads {
		part := l.index
		_, loaded := tc.coords[part]
		_, broken := tc.broken[part]
		known := loaded || broken || tc.loading[part]
		switch {
		case l.p == nil && known:
			tc.unloadLocked(part, &after)
		case l.p != nil && (!known || tc.loadEpoch[part] != l.epoch):
			if known {
				tc.unloadLocked(part, &after)
			}
			tc.loadGen[part]++
			tc.loadEpoch[part] = l.epoch
			tc.loading[part] = true
			go tc.loadPartition(l.p, l.epoch, tc.loadGen[part])
		}
	}
	tc.mu.Unlock()
	after.run(tc)
}

// unloadLocked drops partition part's Coordinator: requests waiting on
// its records are answered NOT_COORDINATOR; writes and markers in flight
// find it gone. REQUIRES: mu held.
func (tc *txnCoordinator) unloadLocked(part int32, after *txnAfter) {
	tc.loadGen[part]++
	delete(tc.loading, part)
	delete(tc.broken, part)
	ids := 0
	if co := tc.coords[part]; co != nil {
		ids = co.NumIDs()
	}
	delete(tc.coords, part)
	for id, w := range tc.waiters {
		if tc.partitionFor(id) == part {
			delete(tc.waiters, id)
			w := w
			after.answers = append(after.answers, func() {
				w(txn.Answer{TxnID: id, Err: kerr.NotCoordinator.Code, ProducerID: -1, ProducerEpoch: -1})
			})
		}
	}
	tc.log.Info("unloaded transactions of a __transaction_state partition no longer led here",
		zap.Int32("partition", part), zap.Int("transactional_ids", ids))
}

// loadPartition reads partition p into a new Coordinator with coordinator
// epoch epoch (gen its generation when scheduled) and installs it, unless
// the partition moved on meanwhile; transactions decided but not
// completed send their markers again. Its own goroutine: it reads the log.
func (tc *txnCoordinator) loadPartition(p *Partition, epoch int32, gen uint64) {
	var records []txn.Record
	err := readCompactedRecords(p.Log, func(key, value []byte) {
		records = append(records, txn.Record{Key: key, Value: value})
	})
	var after txnAfter
	tc.mu.Lock()
	if tc.closed || tc.loadGen[p.Index] != gen {
		tc.mu.Unlock()
		return
	}
	delete(tc.loading, p.Index)
	cfg := tc.cfg
	cfg.CoordinatorEpoch = epoch
	co := txn.New(cfg)
	var eff txn.Effects
	if err == nil {
		eff, err = co.Load(records, tc.clock.Now())
	}
	if err != nil {
		tc.broken[p.Index] = err
		tc.mu.Unlock()
		tc.log.Error("__transaction_state partition not loaded: its transactional ids are not served until its leadership changes",
			zap.Int32("partition", p.Index), zap.Error(err))
		return
	}
	tc.coords[p.Index] = co
	tc.armTickLocked()
	tc.processLocked(p.Index, co, eff, &after)
	ids := co.NumIDs() // under mu: requests change co once it is installed
	tc.mu.Unlock()
	tc.log.Info("loaded transactions of a __transaction_state partition led here", zap.Int32("partition", p.Index),
		zap.Int32("coordinator_epoch", epoch), zap.Int("transactional_ids", ids))
	after.run(tc)
}
