// Package storage is ringbroker's storage engine: Kafka-format segmented
// partition logs with batched group-commit appends, a flush policy with
// Kafka's keys, zero-copy reads as file regions, ListOffsets, retention and
// crash recovery. It knows nothing about sockets or Kafka requests.
//
// # On disk (Apache Kafka's layout)
//
//	<log.dir>/
//	  .lock                              flock(2) held by the one process using the dir (LockDir)
//	  recovery-point-offset-checkpoint   "0\n<n>\n<topic> <partition> <offset>\n..."
//	  log-start-offset-checkpoint        same format
//	  replication-offset-checkpoint      same format: high watermarks (cluster mode only, hw_checkpoint.go)
//	  .kafka_cleanshutdown               present only after a clean Manager.Close
//	  <topic>-<partition>/
//	    leader-epoch-checkpoint          "0\n<n>\n<epoch> <startOffset>\n...": the leader-epoch cache
//	    00000000000000000000.log         record batches v2, byte-for-byte as produced
//	    00000000000000000000.index       (relOffset u32, position u32) every index.interval.bytes
//	    00000000000000000000.timeindex   (timestamp i64, relOffset u32), monotonic
//	    00000000000000000000.txnindex    aborted transactions, Kafka's 34-byte entries (txnindex.go);
//	                                     only once a transaction was aborted in the segment
//	    00000000000000001234.log ...     next segment, named by its base offset
//	  <topic>-<partition>.<32 hex>-delete/  a partition DeleteLog is removing (renamed first)
//
// Only baseOffset and partitionLeaderEpoch of a stored batch differ from
// what the producer sent (and, with message.timestamp.type=LogAppendTime,
// the timestamp-type attribute, maxTimestamp and the CRC). The active
// segment's indexes are mmap'd (advised MADV_RANDOM: no read-around when
// the writer first touches a page) and preallocated to segment.index.bytes,
// trimmed on roll and close; they are created at the segment's first
// write, so a partition never written to has only its empty .log.
//
// # API summary (for the broker)
//
//	lock, err := log.LockDir(dir)                 // first, before reading anything in dir; lock.Release() at exit
//	m, err := log.OpenManager(dir, log.ManagerOptions{Defaults: brokerCfg, NewIO: log.NewUringIO, Logf: ...})
//	tps, _ := m.Existing()                        // partitions found on disk, to reopen at startup
//	cfg := topicSettings.Log                      // config.Config.TopicSettings(overrides): keys are the config package's
//	l, err := m.OpenLog(topic, partition, cfg)    // recovers unless the dir was shut down cleanly
//	ls, err := m.OpenLogs(topic, partitions, cfg) // the same, several at a time (CreateTopics, startup)
//	l.SetLeaderEpoch(epoch)
//
//	err := l.Append(batches, cb)                  // non-blocking; cb.AppendDone(AppendResult) later, exactly once
//	run, err := l.AppendBatchInline(rb, cb)       // append.inline: run => the caller writes it: l.RunInline(), lock-free
//	reg, err := l.Read(offset, maxBytes)          // file region for splice/sendfile; reg.Release() after sending
//	reg, err := l.ReadBelow(offset, maxBytes, lso) // the same, only batches below lso (read_committed)
//	err := l.AppendAbortedTxn(storage.AbortedTxn{...}) // an ABORT marker's entry, into its segment's .txnindex
//	txns := l.AbortedTxns(from, upper)            // aborted transactions overlapping [from, upper)
//	err := l.SyncTxnIndexes()                     // before a producer state snapshot
//	l.SetStableOffset(func() int64 {...})         // the LSO, bounding the cleaner
//	off, ts, found := l.ListOffset(ts)            // TimestampLatest/-Earliest/-Max or a timestamp (ms)
//	l.HighWatermark(); l.LogStartOffset(); l.LogEndOffset()
//	ok := l.AddWaiter(w, fetchOffset)             // long-poll: w.HWAdvanced(hw) once, when hw advances
//	hw := l.SetHighWatermark(hw)                  // replicated mode: hw set by the caller, not by writes (hw.go)
//	reg, err := l.ReadReplica(offset, maxBytes)   // a follower's read: up to the log end, not the hw
//	ok := l.AddEndWaiter(w, fetchOffset)          // follower long-poll: woken when the log end advances
//	l.FollowWrites()                              // back to local mode: hw = log end
//	l.RemoveWaiter(w)                             // on max.wait.ms timeout
//	l.DeleteRecords(offset)                       // DeleteRecords API: moves the log start offset
//	e, end := l.EndOffsetForEpoch(epoch)          // OffsetForLeaderEpoch (…AsLeader(epoch, current) on a leader)
//	err := l.TruncateTo(offset)                   // follower: remove every record at or above offset
//	err := l.AppendReplica(batches, cb)           // follower: the leader's batches at their own offsets, unchanged
//	l.EnforceRetention(now)                       // call every log.retention.check.interval.ms
//	m.Checkpoint()                                // every log.flush.offset.checkpoint.interval.ms
//	stuck := m.Stalled(bound)                     // partitions whose writer spent > bound in one write/fdatasync (systemd watchdog)
//	m.Close()                                     // flush, checkpoints, clean-shutdown marker
//
// # Append: ownership, results, errors
//
// Append validates the input (one or more whole v2 batches: framing, magic
// 2, CRC32C) on the caller's goroutine and copies it into an appender-owned
// buffer drawn from size-classed pools, so the caller may recycle its
// receive buffer as soon as Append returns, and steady-state appends
// allocate nothing (TestAppendSteadyStateAllocs, -benchmem). A bad batch
// returns ErrCorruptBatch / ErrInvalidBatch and nothing is written. While
// more than append.pending.max.bytes are queued and not yet written, Append
// returns ErrBacklog and queues nothing (an append into an empty queue is
// always taken, however large). The log only refuses; retrying is the
// caller's business: the broker hands the batch to the partition's produce
// worker, which retries with a backoff of 1 to 20 ms until the produce
// request's timeout and then answers REQUEST_TIMED_OUT. The network loop
// does not see ErrBacklog; the unanswered request keeps counting against
// the connection's in-flight bounds, which is what mutes a producer that
// keeps sending. When Append returns an
// error the callback is never called; otherwise it is called exactly once
// with the assigned offsets (and LogAppendTime) or the write's error.
//
// Offsets are assigned in the order of Append calls, when the writer takes
// a group; a group that fails (EIO, ENOSPC, on write or fdatasync) is cut
// back off the file, its appends fail, and the next group reuses its
// offsets, so the log never has holes and never holds a failed append.
//
// # Group commit and flush policy
//
// See policy.go for the full rationale. In short: an idle writer writes at
// once; while a write (+ fdatasync) is in flight, appends queue and leave
// together in one pwritev / IORING_OP_WRITEV, capped by
// append.batch.max.bytes and IOVMax; append.linger.max.ms optionally makes
// an idle writer wait for more. An fdatasync follows a group when the
// records not yet flushed reach flush.messages (log.flush.interval.messages)
// or flush.ms (log.flush.interval.ms) has passed; its appends are then
// acknowledged only after that fdatasync (linked to the write on io_uring).
// By default (Kafka's defaults) nothing is fdatasync'd on the ack path;
// rolled segments are flushed in the background, as Kafka does. The
// decision is pure (policy.decide, policy.syncAfterGroup, policy.groupCut)
// and tested step by step with injected time.
//
// The log end advances only when a group's write (and its fdatasync, if
// any) completed; then waiters (AddEndWaiter; in local mode also
// AddWaiter, HWChanged) are woken, without polling. In local mode (the
// default) the high watermark is the log end; in replicated mode
// (SetHighWatermark, hw.go) the caller moves it.
//
// # Reads
//
// Read binary-searches the segment list, looks the offset up in the sparse
// .index, scans a few batch headers with pread, and returns one Region
// (file, position, length) of whole batches from one segment, bounded by
// the high watermark (ReadReplica: the log end) and maxBytes (the first batch is always whole, as in
// Kafka). The Region pins the segment: retention may unlink it meanwhile,
// and the descriptor stays valid until Release.
//
// # Recovery
//
// Without the clean-shutdown marker, every segment from the one holding the
// recovery point on is scanned (scanSegment: header, length, magic,
// increasing offsets, CRC32C of every batch), truncated at the first
// invalid byte (later segments are deleted), its indexes rebuilt, and the
// result fdatasync'd before it counts as the new recovery point. What was
// cut, deleted or rebuilt is logged through Warnf (Kafka's WARN level). Indexes of other segments are sanity-checked
// and rebuilt when missing or bad. testdata/recovery/*.txt are datadriven
// scripts of these cases (go test -run TestRecoveryScripts -rewrite).
//
// # Leader epochs and truncation (leader_epoch.go, log_epoch.go, truncate.go)
//
// The leader-epoch cache is Kafka's LeaderEpochFileCache: (epoch, first
// offset) entries, both strictly increasing, kept in
// leader-epoch-checkpoint (Kafka's text format) and replaced with
// WriteFileAtomic on every change. The writer assigns a group's epoch at
// the group's first offset before writing it (a new epoch writes the file
// first; a failed write fails the group); a batch stamped -1 assigns
// nothing. DeleteRecords and retention move its start (truncateFromStart:
// the epoch current at the new log start now starts there); TruncateTo
// cuts its end. Open reads the file; a missing one (on a log with batches)
// or a corrupt one (WARN) is rebuilt from the batches' partitionLeaderEpoch;
// otherwise recovery adds the epochs of the batches it scanned; then the
// cache is cut to the log's start and end and rewritten if that changed it.
// EndOffsetForEpoch is Kafka's endOffsetFor; EndOffsetForEpochAsLeader
// counts the leader's current epoch as started at the log end (Kafka's
// makeLeader assigns it there) without writing it. l.mu guards the
// entries; l.epochFileMu orders the file's writes (lock order: swapMu,
// epochFileMu, mu).
//
// TruncateTo(offset) is Kafka's UnifiedLog.truncateTo for a follower's
// divergence point: records at or above offset go (a batch is never
// split: the one holding offset goes whole); at or past the log end it
// only cuts the epoch cache; below every segment it starts over with an
// empty segment at offset. It pauses the cleaner (abort flag, then the
// cleaning mutex), holds swapMu, and runs on the writer goroutine between
// groups (queued appends are written after it, at the new log end). In
// memory first (readers stop seeing the records), then segments unlinked
// highest first with a directory fsync each, the holding segment cut and
// fdatasync'd, the epoch file rewritten: every crash leaves a prefix of
// the old log. A failure after the in-memory cut fails the log. Until the
// log end passes the highest recovery point the log had, a roll
// fdatasyncs the segment it closes, because a checkpoint may still hold
// that recovery point and Open trusts the segments below it unscanned.
// A Region over the cut part of the active segment becomes short; the
// sender must treat that as a failed transfer.
//
// AppendReplica (replica.go) is Kafka's appendAsFollower: validated and
// checked for contiguous offsets on the caller, queued like an Append but
// a group of its own, its first offset checked against the log end on the
// writer (ErrReplicaOffset), each batch's epoch assigned, bytes written as
// received.
//
// # Compaction (cleaner*.go)
//
// Logs with cleanup.policy=compact (Config.Compact) are cleaned by a
// Cleaner (Kafka's LogCleaner): log.cleaner.threads goroutines, none of
// them a ring thread or a log's writer, pick the log with the highest dirty
// ratio above min.cleanable.dirty.ratio (or one whose oldest dirty record
// passed max.compaction.lag.ms) and run a round on it:
//
//   - Snapshot under the lock; everything after runs without it, on
//     segments below the active one, which never change.
//   - Key map: the last offset of each key in the dirty section [first
//     dirty, first uncleanable), as 128-bit hashes in a table bounded by
//     log.cleaner.dedupe.buffer.size / threads (cleaner_map.go); a log with
//     more keys is cleaned in several rounds.
//   - Rewrite, from the log start to the round's end, in groups of up to
//     segment.bytes: for each key only the last record survives, at its
//     offset; tombstones get a delete horizon (KIP-534) the first time a
//     clean sees them and go once it passed; keyless records go; an
//     active producer's last batch survives at least as an empty batch
//     (cleaner_filter.go; not once the producer is older than
//     producer.id.expiration.ms: producerTails); aborted transactions' batches go, markers once
//     nothing they cover remains (cleaner_txn.go).
//   - Swap in each group's copy crash-safely (.cleaned, then .swap, then
//     renames; Open finishes or forgets an interrupted swap), under the
//     log's swapMu, which retention and DeleteRecords also take.
//   - Record the round's end as the first dirty offset
//     (cleaner-offset-checkpoint).
//
// Reads in flight keep the replaced segments' descriptors (Region pins).
// All reads and writes of the cleaner go through one throttle
// (log.cleaner.io.max.bytes.per.second). A compacted log's retention
// applies retention.ms/bytes only when the policy also says delete; an
// idle compacted log's active segment is rolled at the retention check
// once older than segment.ms (or max.compaction.lag.ms), so its records
// become cleanable.
//
// # Transactions (txnindex.go, read_stable.go, cleaner_txn.go)
//
// The log knows nothing of producers: the broker's producer state computes
// each aborted transaction's entry when its ABORT marker's append completes
// and calls AppendAbortedTxn, which appends it to the .txnindex of the
// segment holding the marker (page cache; fsync'd with the segment's
// indexes and by SyncTxnIndexes). AbortedTxns collects, as Kafka's
// collectAbortedTxns with an upper bound, from the segment holding the
// fetch offset onwards until an entry's lastStableOffset reaches the bound;
// entries are loaded once per segment and kept in memory. An unclean open
// drops entries whose marker is past the recovered end; the broker's state
// load re-derives lost or torn ones. The .txnindex goes with its segment
// (unlink: retention, DeleteRecords, the cleaner) and the cleaner carries
// the entries of the markers it keeps into X.txnindex.cleaned, renamed in
// place after the swap's commit point (finished at open if interrupted).
// The cleaner never passes the last stable offset (SetStableOffset), keeps
// aborted batches out of the key map and removes them, and removes markers
// covering nothing left once older than delete.retention.ms.
//
// # Concurrency
//
//   - Append, Read, ListOffset, AddWaiter, DeleteRecords, EnforceRetention,
//     HighWatermark... are safe from any goroutine (network loops included:
//     none of them blocks on I/O except Read/ListOffset's short preads of
//     page-cached batch headers).
//   - Each Log has one writer goroutine that owns the active segment's
//     write position, offset assignment, index appends and the IO backend
//     (a per-log io_uring with UringIO: never a network loop's ring).
//     TruncateTo hands its work to it (truncate.go). With append.inline
//     (append_inline.go) an appender that finds it idle may take this
//     role for one page-cache write (AppendBatchInline, RunInline); the
//     role is a state under Log.mu, so the two never write at once.
//   - Log.mu (RWMutex) guards the segment list, high watermark, log end, log start
//     offset, recovery point and the append queue. It is a leaf lock
//     (but for Log.dirSyncMu, which Close takes under it for one directory
//     fsync): callbacks and waiters run on the writer goroutine (high
//     watermark waiters in replicated mode: on SetHighWatermark's caller)
//     after it is released, so they may call back into the log. They must
//     not block.
//   - Directories are fsync'd lazily, as in Kafka: a new partition or
//     segment costs no directory fsync; its names are made durable just
//     before its first data fdatasync that an ack or the recovery point
//     depends on (Log.durableNames).
//   - Rolled segments are fdatasync'd off the writer goroutine by one
//     background flusher per log (IO.Datasync must allow that), started by
//     a roll and gone once its queue is empty. It syncs in roll order,
//     skips a segment retention already unlinked, and moves the recovery
//     point past a segment only after its sync succeeded (a failed sync is
//     logged and leaves the segment to recovery). Close waits for it.
//   - Retention and DeleteRecords delete no segment holding unsynced bytes:
//     one the flusher has not synced yet (or failed to) is fdatasync'd
//     first (retention.go deleteSegments). Their unlinks get no directory
//     fsync (as in Kafka), so a power loss may bring a deleted segment
//     back; it comes back intact, below the log start or past retention,
//     and the next retention check deletes it again. Left torn, it would
//     lie below the recovery point the log had claimed (trusted unscanned)
//     or, scanned, cut off the flushed segments after it.
//   - Manager.mu guards the map of open logs and is never held across
//     file I/O: opens of different partitions run in parallel (OpenLogs
//     does several at a time); a partition being opened or deleted is
//     marked busy so a second OpenLog/DeleteLog of it waits.
package storage
