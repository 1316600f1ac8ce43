package txn

// __transaction_state records, in Apache Kafka's schemas
// (TransactionLogKey.json / TransactionLogValue.json, kmsg's TxnMetadataKey
// and TxnMetadataValue), so Kafka's tools and a Kafka broker reading the
// topic understand them:
//
//	key   (version 0, the only one)
//	+---------+----------------------------+
//	| int16 0 | string transactional id    |   int16 length + UTF-8 bytes
//	+---------+----------------------------+
//
//	value (version 0: classic encoding; version 1: flexible, compact
//	       strings/arrays, tagged fields)
//	+-------+-------------+---------------+-----------+--------+
//	| int16 | int64       | int16         | int32     | int8   |
//	| ver   | producer id | producer epoch| timeout ms| state  |
//	+-------+-------------+---------------+-----------+--------+
//	| partitions: nullable array of (topic string, []int32)    |
//	|   null when the state is Empty, [] when a transaction     |
//	|   state has no partitions (Complete*)                     |
//	+----------------------+-----------------------+------------+
//	| int64 last update ms | int64 start ms (-1)   | v1: tags   |
//	+----------------------+-----------------------+------------+
//	v1 tags: 0 previous producer id (default -1), 1 next producer id
//	(default -1), 2 client transaction version (default 0). A tag is
//	written only when it differs from its default, as Kafka does.
//
// A nil value is a tombstone: the id expired. Kafka writes value version 0
// while the cluster's transaction.version feature is 0 and version 1 from
// feature level 1 on (TransactionVersion.transactionLogValueVersion); the
// Coordinator follows Config.TransactionVersionLevel the same way.
//
// Decoding never panics and allocates in proportion to its input: kmsg's
// reader checks every array length against the bytes left before it
// allocates (FuzzDecodeTxnRecord).

import (
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrBadRecord is returned for a __transaction_state record that does not
// parse.
var ErrBadRecord = errors.New("txn: unparsable __transaction_state record")

// ErrUnknownKeyVersion is returned by DecodeKey for a key version other than
// 0. Kafka skips such records when loading ("a left over from an aborted
// upgrade"); so does Load.
var ErrUnknownKeyVersion = errors.New("txn: unknown __transaction_state key version")

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// LogValue is one __transaction_state value: an id's metadata as of a
// completed (or, for Prepare*, persisted) transition.
type LogValue struct {
	ProducerID int64
	// PreviousProducerID and NextProducerID are KIP-890 fields (value
	// version 1 only; -1 when absent).
	PreviousProducerID, NextProducerID int64
	ProducerEpoch                      int16
	TimeoutMs                          int32
	State                              State
	// Partitions is sorted by topic, then partition.
	Partitions                          []TopicPartition
	LastUpdateTimestamp, StartTimestamp int64
	// ClientTransactionVersion is the transaction.version feature level
	// the client used (0 or 2; value version 1 only).
	ClientTransactionVersion int16
}

// EncodeKey returns the key of txnID's records.
func EncodeKey(txnID string) []byte {
	k := kmsg.TxnMetadataKey{Version: 0, TransactionalID: txnID}
	return k.AppendTo(nil)
}

// EncodeValue returns v encoded at value version 0 or 1.
func EncodeValue(v *LogValue, version int16) []byte {
	m := kmsg.NewTxnMetadataValue()
	m.Version = version
	m.ProducerID, m.ProducerEpoch, m.TimeoutMillis = v.ProducerID, v.ProducerEpoch, v.TimeoutMs
	m.State = kmsg.TransactionState(v.State)
	m.LastUpdateTimestamp, m.StartTimestamp = v.LastUpdateTimestamp, v.StartTimestamp
	if version >= 1 {
		m.PreviousProducerID, m.NextProducerID = v.PreviousProducerID, v.NextProducerID
		m.ClientTransactionVersion = v.ClientTransactionVersion
	}
	// Kafka writes null partitions for Empty, an array (possibly empty)
	// for every other state.
	if v.State != Empty {
		m.Topics = []kmsg.TxnMetadataValueTopic{}
		for _, tp := range sortedPartitions(v.Partitions) {
			if n := len(m.Topics); n == 0 || m.Topics[n-1].Topic != tp.Topic {
				m.Topics = append(m.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
			}
			last := &m.Topics[len(m.Topics)-1]
			last.Partitions = append(last.Partitions, tp.Partition)
		}
	}
	return m.AppendTo(nil)
}

// DecodeKey returns the transactional id of a key; ErrUnknownKeyVersion
// for a version other than 0.
func DecodeKey(b []byte) (string, error) {
	if len(b) < 2 {
		return "", fmt.Errorf("%w: key of %d bytes", ErrBadRecord, len(b))
	}
	if version := int16(b[0])<<8 | int16(b[1]); version != 0 {
		return "", fmt.Errorf("%w %d", ErrUnknownKeyVersion, version)
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(b); err != nil {
		return "", fmt.Errorf("%w: key: %v", ErrBadRecord, err)
	}
	return k.TransactionalID, nil
}

// DecodeValue decodes a (non-tombstone) value. It rejects versions other
// than 0 and 1 (as Kafka does) and state ids outside Kafka's eight.
func DecodeValue(b []byte) (LogValue, error) {
	if len(b) < 2 {
		return LogValue{}, fmt.Errorf("%w: value of %d bytes", ErrBadRecord, len(b))
	}
	if version := int16(b[0])<<8 | int16(b[1]); version < 0 || version > 1 {
		return LogValue{}, fmt.Errorf("%w: value version %d", ErrBadRecord, version)
	}
	var m kmsg.TxnMetadataValue
	if err := m.ReadFrom(b); err != nil {
		return LogValue{}, fmt.Errorf("%w: value: %v", ErrBadRecord, err)
	}
	v := LogValue{ProducerID: m.ProducerID, PreviousProducerID: m.PreviousProducerID, NextProducerID: m.NextProducerID,
		ProducerEpoch: m.ProducerEpoch, TimeoutMs: m.TimeoutMillis, State: State(m.State),
		LastUpdateTimestamp: m.LastUpdateTimestamp, StartTimestamp: m.StartTimestamp,
		ClientTransactionVersion: m.ClientTransactionVersion}
	if !v.State.valid() {
		return LogValue{}, fmt.Errorf("%w: state id %d", ErrBadRecord, m.State)
	}
	// Kafka ignores the partitions of an Empty value.
	if v.State != Empty {
		n := 0
		for _, t := range m.Topics {
			n += len(t.Partitions)
		}
		// n is bounded by the input: kmsg checked each array against
		// the bytes left.
		v.Partitions = make([]TopicPartition, 0, n)
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				v.Partitions = append(v.Partitions, TopicPartition{t.Topic, p})
			}
		}
		v.Partitions = sortedPartitions(v.Partitions)
	}
	return v, nil
}

// sortedPartitions returns tps sorted by (topic, partition) without
// duplicates (a set, as Kafka keeps it). tps may be reordered.
func sortedPartitions(tps []TopicPartition) []TopicPartition {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	out := tps[:0]
	for _, tp := range tps {
		if len(out) > 0 && tp == out[len(out)-1] {
			continue
		}
		out = append(out, tp)
	}
	return out
}
