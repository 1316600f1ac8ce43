package broker

// Coordinator appends wait for the ISR (issue 16). Kafka's group and
// transaction coordinators append their records with acks=all: an
// OffsetCommit, a TxnOffsetCommit or a transaction state transition is
// answered only once the record is on every in-sync replica of its
// internal-topic partition, so the broker that takes over the partition
// after a failure has it. The coordinators here do the same through the
// acks=all purgatory (produce_acks.go, waitReplicated): before the append
// the partition's ISR is checked against the topic's min.insync.replicas
// (coordRefuse), after it the answer waits for the high watermark
// (coordReplicated), bounded by coordAppendTimeout.
//
// A single node and a partition with one replica are in local mode: the
// answer comes when the append completed, as before.
//
// Codes, as Kafka's coordinators map the append's error for the client
// (GroupCoordinator's commit error mapping, TransactionStateManager):
// NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT
// and storage failures are COORDINATOR_NOT_AVAILABLE (retriable, same
// coordinator), a lost leadership NOT_COORDINATOR (look it up again).
// The record stays in the log whatever the answer: a retried commit
// writes it again, and the last value per key wins at load.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ringbroker/ringbroker/storage"
)

// coordAppendTimeout bounds a coordinator record's wait for the ISR
// (Kafka's offsets.commit.timeout.ms default).
const coordAppendTimeout = 5 * time.Second

// coordRefuse is NOT_ENOUGH_REPLICAS when p's ISR is smaller than its
// topic's min.insync.replicas (checked before the append, as Kafka's
// appendRecordsToLeader does for acks=all), else 0;
// NOT_LEADER_OR_FOLLOWER when this broker no longer leads p: a coordinator
// never appends to a follower's log.
func (b *Broker) coordRefuse(p *Partition) int16 {
	if b.opts.Cluster == nil {
		return 0
	}
	if p.notLeader.Load() {
		return kerr.NotLeaderForPartition.Code
	}
	if b.repl.inSync(p) < p.Topic.Settings().minInsync {
		return kerr.NotEnoughReplicas.Code
	}
	return 0
}

// coordReplicated calls done(0) once the completed append res to p is on
// every in-sync replica, or done with the reason it will not be
// (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT,
// NOT_ENOUGH_REPLICAS_AFTER_APPEND). done runs on the caller's goroutine
// (the log writer's, in the append callback), on the one that moved the
// high watermark (under the partition's hwMu: it must not take it) or on
// a timer's; never under a lock of the caller's.
func (b *Broker) coordReplicated(p *Partition, res storage.AppendResult, done func(code int16)) {
	if !b.repl.waitReplicated(p, res, p.Topic.Settings().minInsync, coordAppendTimeout, done) {
		done(0)
	}
}

// coordinatorCode maps an append's code to what a coordinator answers.
func coordinatorCode(code int16) int16 {
	switch code {
	case 0, kerr.NotCoordinator.Code, kerr.CoordinatorLoadInProgress.Code, kerr.CoordinatorNotAvailable.Code:
		return code
	case kerr.NotLeaderForPartition.Code:
		return kerr.NotCoordinator.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}
