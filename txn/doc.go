// Package txn is the transaction coordinator (Apache Kafka's
// TransactionCoordinator, TransactionStateManager and TransactionMetadata)
// as an I/O-free state machine with injected time. The broker drives it
// from broker/txn_coordinator.go.
//
// # Model
//
// One Coordinator holds the transactional ids of one __transaction_state
// partition while this broker leads it: the broker makes one with New and
// that leadership's epoch (Config.CoordinatorEpoch), fills it with Load,
// and drops it on resignation. It never reads a clock, never sleeps and
// never does I/O: every entry point takes `now` where time matters and
// returns Effects, the explicit work for the broker:
//
//   - Answers: Kafka error codes and fields for requests, either for the
//     request just made or, deferred, for one whose record has just been
//     written (like Kafka, a request that changes state is answered only
//     once its __transaction_state record is durable);
//   - Writes: __transaction_state records (key/value bytes in Kafka's
//     TransactionLogKey/TransactionLogValue format, records.go; a nil value
//     is the tombstone of an expired id). At most one write per id is
//     outstanding;
//   - Markers: COMMIT/ABORT control batches to write for (producer id,
//     epoch, coordinator epoch) on every partition of a decided transaction.
//
// Per id the Coordinator keeps Kafka's TransactionMetadata: producer id and
// epoch, previous/next producer id and last epoch (KIP-360, KIP-890),
// timeout, state, partitions, start and last-update times, the client's
// transaction version, and the pending transition while its record is
// being written (Kafka's pendingState): any request meanwhile is answered
// CONCURRENT_TRANSACTIONS.
//
// # States
//
//	from               event                                     to (once its record is written)
//	(new id)           InitProducerId                            Empty, epoch 0
//	Empty, Complete*   InitProducerId                            Empty, epoch+1 (or a new producer
//	                                                             id at epoch exhaustion)
//	Empty, Complete*,  AddPartitions, AddOffsets                 Ongoing
//	Ongoing
//	Ongoing            EndTxn commit                             PrepareCommit
//	Ongoing            EndTxn abort; timeout; InitProducerId     PrepareAbort (timeout and fencing
//	                   from a new producer instance              bump the epoch first: Kafka's
//	                                                             PrepareEpochFence, pending only)
//	PrepareCommit      MarkersDone                               CompleteCommit
//	PrepareAbort       MarkersDone                               CompleteAbort
//	Empty, Complete*   idle past transactional.id.expiration.ms  Dead: tombstone, then removed
//
// Transitions are checked against Kafka's validPreviousStates under the
// invariants build tag (state.go). Kafka's rules for every request, error
// code and epoch are mirrored in requests.go, with each deliberate
// difference commented where it is made.
//
// # What the broker does
//
//  1. Route InitProducerId (non-null transactional id), AddPartitionsToTxn
//     (v1-3 client form, v4+ verify-only batches from partition leaders,
//     and AddPartitionsV2: the implicit add of transactions v2, from the
//     leader of a partition a Produce v12+ writes to, or from the group
//     coordinator for TxnOffsetCommit v5+), AddOffsetsToTxn and EndTxn to the Coordinator of
//     PartitionFor(txnID, partitions) (Kafka's abs(hashCode) % partitions, as
//     group.PartitionFor), holding one mutex around every call (a
//     Coordinator is not safe for concurrent use; never hold the mutex
//     across I/O). Map PRODUCER_FENCED for old request versions with
//     FencedForVersion.
//  2. Append each Write to the __transaction_state partition (acks=all,
//     no compression, as Kafka enforces), then call WriteDone(txnID, ok,
//     now) with the outcome, and send the Effects it returns.
//  3. For each Markers, send WriteTxnMarkers to the partitions' leaders
//     (retrying until written or the partition is gone), then call
//     MarkersDone(txnID) and append the Complete* Write it returns.
//  4. Call Tick(now) every transaction.abort.timed.out.transaction.cleanup.interval.ms
//     (Kafka's default 10 s): it aborts timed-out transactions, writes
//     tombstones for expired ids and retries failed Complete* writes.
//  5. On becoming leader of a __transaction_state partition, New a
//     Coordinator with the leader epoch, Load the partition's records, and
//     act on the returned marker work (transactions that were decided but
//     not completed before the failover). On losing it, drop the
//     Coordinator; requests waiting on it get NOT_COORDINATOR.
//  6. Plug its producer id allocator into Config.NewProducerID.
//
// # Reference and differences from Apache Kafka
//
// The behaviour follows Kafka 4 (TransactionCoordinator.scala as of 4.0,
// TransactionMetadata.java and TransactionState.java of trunk), which for
// transactions v2 differs from Kafka 3.x: EndTxn
// takes a v1 or a v2 path by the request's version, and v2 accepts an abort
// from Empty and Complete*. Deliberate differences, each commented where
// it is made:
//
//   - ids and partitions per transaction are bounded (see Bounds);
//   - a v2 EndTxn that exhausts the epoch answers the next producer id at
//     epoch 0 (what the Java client expects), not the old id at MaxInt16;
//   - requests naming an id whose first InitProducerId was never written
//     get INVALID_PRODUCER_ID_MAPPING (Kafka: an internal error);
//   - a KIP-360 retry naming the last epoch at an exhausted epoch is
//     answered (Kafka throws before looking);
//   - a fencing abort at transaction.version 2 from MaxInt16-1 does not
//     overflow the epoch;
//   - the client forms of AddPartitions (AddPartitionsToTxn v0-3) and
//     AddOffsets keep the id's client transaction version on the Ongoing
//     record (Kafka writes 0 there); AddPartitionsV2 records 2, as Kafka
//     does for AddPartitionsToTxn v5;
//   - a failed write is answered COORDINATOR_NOT_AVAILABLE whatever the
//     cause (Kafka maps the append error: NOT_COORDINATOR after losing
//     leadership, which the broker signals by dropping the Coordinator);
//     a failed Complete* write is retried by the next Tick (Kafka retries
//     at once on COORDINATOR_NOT_AVAILABLE);
//   - id expiration runs in Tick, not on its own hourly timer
//     (transactional.id.expiration check interval);
//   - KIP-939 (two-phase commit) and DescribeTransactions /
//     ListTransactions are not here (Transaction and IDs expose the state).
//
// # Bounds
//
// Ids per Coordinator are bounded by Config.MaxTransactionalIDs (new ids
// beyond it: COORDINATOR_NOT_AVAILABLE), partitions per transaction by
// Config.MaxPartitionsPerTxn (TRANSACTION_ABORTABLE). Tick visits every id,
// as Kafka's periodic scans do. Decoding a record allocates in proportion
// to its bytes.
//
// # Tests
//
// testdata/*.txt are datadriven scripts (ddt_test.go: the harness plays
// the broker, writes into a simulated log that "load" replays);
// FuzzEvents drives random request, completion, failure and failover
// sequences and checks invariants after every step; FuzzDecodeTxnRecord
// fuzzes the record decoder.
package txn
