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

	// Compaction (cleaner.go). The zero value is cleanup.policy=delete.
	Compact                bool    // cleanup.policy includes compact: the cleaner keeps the last record of each key
	NoDeleteRetention      bool    // cleanup.policy is compact alone: retention.ms and retention.bytes delete nothing
	DeleteRetentionMs      int64   // delete.retention.ms / log.cleaner.delete.retention.ms (1 day): how long the cleaner keeps a tombstone after it first saw it
	MinCompactionLagMs     int64   // min.compaction.lag.ms / log.cleaner.min.compaction.lag.ms (0): records younger than this are not cleaned
	MaxCompactionLagMs     int64   // max.compaction.lag.ms / log.cleaner.max.compaction.lag.ms (MaxInt64): dirty records older than this are cleaned whatever the ratio
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio / log.cleaner.min.cleanable.ratio (0.5)

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
	// AppendInline (append.inline, false): AppendBatchInline lets its
	// caller write the batch itself when the writer is idle
	// (append_inline.go). Never changed on an open log.
	AppendInline bool
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
		SegmentBytes:           1 << 30,
		SegmentMs:              7 * 24 * 3600 * 1000,
		RetentionMs:            7 * 24 * 3600 * 1000,
		RetentionBytes:         -1,
		FlushMessages:          math.MaxInt64,
		FlushMs:                math.MaxInt64,
		IndexIntervalBytes:     4096,
		IndexMaxBytes:          10 << 20,
		AppendBatchMaxBytes:    1 << 20,
		TimeRollMinMs:          60_000,
		AppendLingerMs:         0,
		AppendPendingMaxBytes:  64 << 20,
		DeleteRetentionMs:      24 * 3600 * 1000,
		MaxCompactionLagMs:     math.MaxInt64,
		MinCleanableDirtyRatio: 0.5,
	}
}

// CleanerConfig configures the log cleaner (cleaner.go), Kafka's
// log.cleaner.* broker keys.
type CleanerConfig struct {
	Threads             int           // log.cleaner.threads (1)
	DedupeBufferBytes   int64         // log.cleaner.dedupe.buffer.size (128 MiB), shared by the threads: bounds each thread's key map
	IOBufferBytes       int           // log.cleaner.io.buffer.size (512 KiB): read and write buffers of each thread (grown for a larger batch)
	LoadFactor          float64       // log.cleaner.io.buffer.load.factor (0.9): how full a key map may get
	MaxIOBytesPerSecond float64       // log.cleaner.io.max.bytes.per.second (unlimited): reads plus writes of all threads
	Backoff             time.Duration // log.cleaner.backoff.ms (15 s): sleep when no log needs cleaning
	// ProducerIDExpirationMs is producer.id.expiration.ms (1 day): a
	// producer whose last batch is older no longer keeps it (producerTails).
	ProducerIDExpirationMs int64
	Clock                  Clock // nil = wall clock
	Logf                   func(format string, args ...any)
}

// DefaultCleanerConfig returns Kafka's defaults.
func DefaultCleanerConfig() CleanerConfig {
	return CleanerConfig{
		Threads:                1,
		DedupeBufferBytes:      128 << 20,
		IOBufferBytes:          512 << 10,
		LoadFactor:             0.9,
		MaxIOBytesPerSecond:    math.MaxFloat64,
		Backoff:                15 * time.Second,
		ProducerIDExpirationMs: 24 * 3600 * 1000,
	}
}

// rollMs is segment.ms, or max.compaction.lag.ms when that is shorter on
// a compacted log (Kafka's LogConfig.maxSegmentMs): the active segment is
// never cleaned, so it must roll for the lag to be met.
func (c Config) rollMs() int64 {
	if c.Compact && c.MaxCompactionLagMs > 0 {
		return min(c.SegmentMs, c.MaxCompactionLagMs)
	}
	return c.SegmentMs
}

func (c Config) lingerNanos() int64 { return c.AppendLingerMs * int64(time.Millisecond) }

// flushIntervalNanos returns the flush.ms interval in ns, or -1 for never.
func (c Config) flushIntervalNanos() int64 {
	if c.FlushMs >= math.MaxInt64/int64(time.Millisecond) {
		return -1
	}
	return c.FlushMs * int64(time.Millisecond)
}
