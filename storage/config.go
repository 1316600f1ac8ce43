package storage

import (
	"math"
	"time"
)

// Config is the per-partition log configuration. Field comments name the
// Kafka topic key, then the broker key that supplies its default. The keys
// themselves (names, parsing, validation, precedence) are the config
// package's: config.Config.TopicSettings builds a Config from them, and
// StorageConfig the broker-level one.
type Config struct {
	SegmentBytes       int64 // segment.bytes / log.segment.bytes (1 GiB): roll when the active segment would exceed it
	SegmentMs          int64 // segment.ms / log.roll.ms (7 days): roll when the active segment is this old
	RetentionMs        int64 // retention.ms / log.retention.ms (7 days; -1 = keep forever)
	RetentionBytes     int64 // retention.bytes / log.retention.bytes (-1 = no size limit)
	FlushMessages      int64 // flush.messages / log.flush.interval.messages (MaxInt64 = never by count)
	FlushMs            int64 // flush.ms / log.flush.interval.ms (MaxInt64 = never by time)
	LogAppendTime      bool  // message.timestamp.type=LogAppendTime (default CreateTime)
	IndexIntervalBytes int   // index.interval.bytes / log.index.interval.bytes (4096)
	IndexMaxBytes      int   // segment.index.bytes / log.index.size.max.bytes (10 MiB)

	// ringbroker keys (no Kafka equivalent):

	// AppendBatchMaxBytes (append.batch.max.bytes, 1 MiB) caps one group
	// write; a single batch larger than it is still written alone.
	AppendBatchMaxBytes int
	// AppendLingerMs (append.linger.max.ms, 0): how long an idle writer may
	// wait for more batches before writing a group smaller than
	// AppendBatchMaxBytes. 0 = adaptive only (idle writer writes at once;
	// batching comes from accumulating behind the in-flight write).
	AppendLingerMs int64
	// AppendPendingMaxBytes (append.pending.max.bytes, 64 MiB) bounds bytes
	// accepted but not yet written; Append returns ErrBacklog past it.
	AppendPendingMaxBytes int64
	// TimeRollMinMs (60000): a segment is rolled by time (SegmentMs) only
	// once it is at least this old. Kafka 4 accepts segment.ms=1, which rolls
	// a segment per append until the process runs out of descriptors; this
	// floor is the minimum KIP-1030 plans for segment.ms in Kafka 5.
	TimeRollMinMs int64
}

// DefaultConfig returns Apache Kafka's broker defaults plus ours: the
// storage engine's defaults for in-process users and tests. They are the
// defaults of the daemon's keys (config.Default().StorageConfig()) as well;
// config's TestStorageConfigDefaultsMatchStorage holds the two equal.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:          1 << 30,
		SegmentMs:             7 * 24 * 3600 * 1000,
		RetentionMs:           7 * 24 * 3600 * 1000,
		RetentionBytes:        -1,
		FlushMessages:         math.MaxInt64,
		FlushMs:               math.MaxInt64,
		IndexIntervalBytes:    4096,
		IndexMaxBytes:         10 << 20,
		AppendBatchMaxBytes:   1 << 20,
		TimeRollMinMs:         60_000,
		AppendLingerMs:        0,
		AppendPendingMaxBytes: 64 << 20,
	}
}

func (c Config) lingerNanos() int64 { return c.AppendLingerMs * int64(time.Millisecond) }

// flushIntervalNanos returns the flush.ms interval in ns, or -1 for never.
func (c Config) flushIntervalNanos() int64 {
	if c.FlushMs >= math.MaxInt64/int64(time.Millisecond) {
		return -1
	}
	return c.FlushMs * int64(time.Millisecond)
}
