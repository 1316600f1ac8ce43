package replica

import "github.com/ringbroker/ringbroker/storage"

// Log is what a fetcher needs from one follower partition log: the
// methods of *storage.Log it calls (*storage.Log satisfies it).
//
// Only the fetcher of the partition calls the mutating methods
// (AppendReplica, TruncateTo, SetHighWatermark, DeleteRecords), one call
// at a time.
type Log interface {
	// LogEndOffset is the offset after the last completed write: where
	// the next fetch starts.
	LogEndOffset() int64
	// LogStartOffset is the first offset still in the log.
	LogStartOffset() int64
	// HighWatermark is the consumer-visible end of the log.
	HighWatermark() int64
	// SetHighWatermark sets the follower's high watermark from the
	// leader's (the log clamps it to its end and switches to replicated
	// mode) and returns the resulting high watermark.
	SetHighWatermark(hw int64) int64
	// AppendReplica appends the leader's batches at their own offsets,
	// bytes unchanged (storage.Log.AppendReplica).
	AppendReplica(batches []byte, cb storage.AppendCallback) error
	// TruncateTo removes every record at or above offset
	// (storage.Log.TruncateTo). The fetcher calls it only with a proven
	// divergence point.
	TruncateTo(offset int64) error
	// TruncateFullyAndStartAt replaces the whole log by an empty one at
	// offset, at or past its log end, or anywhere when the log holds no
	// record (storage.Log.TruncateFullyAndStartAt). The fetcher calls it
	// only when the leader's log starts past the follower's log end, and
	// on an empty log at the base offset of a first fetched batch that
	// straddles its start.
	TruncateFullyAndStartAt(offset int64) error
	// DeleteRecords moves the log start offset up (storage.Log.DeleteRecords):
	// the fetcher follows the leader's log start with it, below the high
	// watermark.
	DeleteRecords(offset int64) (int64, error)
	// LatestEpoch is the newest leader epoch in the log's epoch cache.
	LatestEpoch() (epoch int32, ok bool)
	// EndOffsetForEpoch is the epoch cache's answer for epoch (Kafka's
	// endOffsetFor): the largest epoch <= epoch and where it ends.
	EndOffsetForEpoch(epoch int32) (int32, int64)
}

var _ Log = (*storage.Log)(nil)
