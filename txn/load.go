package txn

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Load rebuilds the Coordinator from its __transaction_state partition when
// this broker becomes its leader (Kafka's loadTransactionsForTxnTopicPartition):
// records in log order, the last value of a key winning and a tombstone
// removing it; keys of an unknown version are skipped, as Kafka does. Then
// every id in Prepare* resumes: its Complete* transition is made pending
// and its marker work handed out again (markers are idempotent at the
// partitions, so markers written before the failover are harmless).
//
// REQUIRES: a Coordinator fresh from New, with the CoordinatorEpoch of this
// leadership. Every durable id is kept, even beyond MaxTransactionalIDs. An
// unparsable record, or a value in Dead or PrepareEpochFence (states Kafka
// never writes), stops the load with an error wrapping ErrBadRecord; the
// broker must then not serve this partition.
func (c *Coordinator) Load(records []Record, now time.Time) (Effects, error) {
	for i, r := range records {
		id, err := DecodeKey(r.Key)
		if errors.Is(err, ErrUnknownKeyVersion) {
			continue
		}
		if err != nil {
			return c.take(), fmt.Errorf("record %d: %w", i, err)
		}
		if r.Value == nil {
			delete(c.ids, id)
			continue
		}
		v, err := DecodeValue(r.Value)
		if err != nil {
			return c.take(), fmt.Errorf("record %d (%s): %w", i, id, err)
		}
		if v.State == Dead || v.State == PrepareEpochFence {
			return c.take(), fmt.Errorf("record %d (%s): %w: state %v is never written", i, id, ErrBadRecord, v.State)
		}
		m := &Metadata{TransactionalID: id, ProducerID: v.ProducerID, PreviousProducerID: v.PreviousProducerID,
			NextProducerID: v.NextProducerID, ProducerEpoch: v.ProducerEpoch, LastProducerEpoch: noProducerEpoch,
			TimeoutMs: v.TimeoutMs, State: v.State, StartTimestamp: v.StartTimestamp,
			LastUpdateTimestamp: v.LastUpdateTimestamp, ClientTransactionVersion: v.ClientTransactionVersion,
			partitions: make(map[TopicPartition]struct{}, len(v.Partitions))}
		for _, tp := range v.Partitions {
			m.partitions[tp] = struct{}{}
		}
		c.ids[id] = m
	}
	ids := make([]string, 0, len(c.ids))
	for id, m := range c.ids {
		if m.State.isPrepare() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := c.ids[id]
		c.prepare(m, c.completeTransit(m, now), pendingComplete, nil)
		c.startMarkers(m)
	}
	return c.take(), nil
}
