package broker

import "testing"

// The produce tests again with append.inline=true: the ring thread (the
// portable backend's connection goroutine) writes an idle partition's batch
// itself and answers from there (storage/append_inline.go). Offsets,
// idempotent duplicates and sequence errors, acks 0/1/all, compression and
// LogAppendTime, acks=all waiting for followers must be exactly as with the log's writer goroutine.
// RINGBROKER_TEST_SET=append.inline=true runs the whole package that way.
func TestProduceInlineAppends(t *testing.T) {
	withSettings(t, "append.inline=true")
	t.Run("franz-acks", TestProduceFranzAcks)
	t.Run("compression", TestProduceCompression)
	t.Run("bad-input", TestProduceBadInput)
	t.Run("multi-partition-log-append-time", TestProduceMultiPartitionLogAppendTime)
	t.Run("idempotent-state", TestIdempotentProducerState)
	t.Run("snapshot-every", TestProducerStateSnapshotEvery)
	t.Run("leader-replication", TestLeaderReplication)
	t.Run("acks-all-duplicate", TestAcksAllDuplicateWaitsForFollowers)
}
