package storage

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Config is the per-partition log configuration. Field comments name the
// Kafka topic key, then the broker key that supplies its default.
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

// DefaultConfig returns Apache Kafka's broker defaults plus ours. They are
// the defaults of the daemon's keys (config.Default) as well; a test in
// cmd/ringbrokerd holds the two equal.
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

// brokerKeys maps server.properties keys to the topic keys they default.
var brokerKeys = map[string]string{
	"log.segment.bytes":           "segment.bytes",
	"log.roll.ms":                 "segment.ms",
	"log.retention.ms":            "retention.ms",
	"log.retention.bytes":         "retention.bytes",
	"log.flush.interval.messages": "flush.messages",
	"log.flush.interval.ms":       "flush.ms",
	"log.message.timestamp.type":  "message.timestamp.type",
	"log.index.interval.bytes":    "index.interval.bytes",
	"log.index.size.max.bytes":    "segment.index.bytes",
	"append.batch.max.bytes":      "append.batch.max.bytes",
	"append.linger.max.ms":        "append.linger.max.ms",
	"append.pending.max.bytes":    "append.pending.max.bytes",
}

// BrokerConfig applies broker-level keys (server.properties names, e.g.
// log.flush.interval.messages) over base. Unknown keys are ignored: the
// broker owns the full key set. log.retention.hours/minutes are honoured
// when log.retention.ms is absent, as in Kafka.
func BrokerConfig(base Config, props map[string]string) (Config, error) {
	topic := map[string]string{}
	if v, ok := props["log.retention.hours"]; ok {
		h, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return base, fmt.Errorf("log.retention.hours: %w", err)
		}
		topic["retention.ms"] = strconv.FormatInt(h*3600*1000, 10)
	}
	if v, ok := props["log.retention.minutes"]; ok {
		m, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return base, fmt.Errorf("log.retention.minutes: %w", err)
		}
		topic["retention.ms"] = strconv.FormatInt(m*60*1000, 10)
	}
	if v, ok := props["log.roll.hours"]; ok {
		h, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return base, fmt.Errorf("log.roll.hours: %w", err)
		}
		topic["segment.ms"] = strconv.FormatInt(h*3600*1000, 10)
	}
	for bk, tk := range brokerKeys {
		if v, ok := props[bk]; ok {
			topic[tk] = v
		}
	}
	return TopicConfig(base, topic)
}

// TopicConfig applies topic-level keys (segment.bytes, flush.messages, ...)
// over defaults (normally the broker's). Unknown keys are ignored.
func TopicConfig(defaults Config, props map[string]string) (Config, error) {
	c := defaults
	i64 := func(key string, dst *int64, min int64) error {
		v, ok := props[key]
		if !ok {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			return fmt.Errorf("log config %s=%q: want an integer >= %d", key, v, min)
		}
		*dst = n
		return nil
	}
	var segIdx, idxInt, batchMax int64 = int64(c.IndexMaxBytes), int64(c.IndexIntervalBytes), int64(c.AppendBatchMaxBytes)
	for _, e := range []error{
		i64("segment.bytes", &c.SegmentBytes, 14),
		i64("segment.ms", &c.SegmentMs, 1),
		i64("retention.ms", &c.RetentionMs, -1),
		i64("retention.bytes", &c.RetentionBytes, -1),
		i64("flush.messages", &c.FlushMessages, 1),
		i64("flush.ms", &c.FlushMs, 0),
		i64("segment.index.bytes", &segIdx, 4),
		i64("index.interval.bytes", &idxInt, 0),
		i64("append.batch.max.bytes", &batchMax, 1),
		i64("append.linger.max.ms", &c.AppendLingerMs, 0),
		i64("append.pending.max.bytes", &c.AppendPendingMaxBytes, 1),
	} {
		if e != nil {
			return defaults, e
		}
	}
	if segIdx > math.MaxInt32 || idxInt > math.MaxInt32 || batchMax > math.MaxInt32 {
		return defaults, fmt.Errorf("log config: index/batch sizes must fit in int32")
	}
	c.IndexMaxBytes, c.IndexIntervalBytes, c.AppendBatchMaxBytes = int(segIdx), int(idxInt), int(batchMax)
	if v, ok := props["message.timestamp.type"]; ok {
		switch v {
		case "CreateTime":
			c.LogAppendTime = false
		case "LogAppendTime":
			c.LogAppendTime = true
		default:
			return defaults, fmt.Errorf("log config message.timestamp.type=%q: want CreateTime or LogAppendTime", v)
		}
	}
	return c, nil
}

func (c Config) lingerNanos() int64 { return c.AppendLingerMs * int64(time.Millisecond) }

// flushIntervalNanos returns the flush.ms interval in ns, or -1 for never.
func (c Config) flushIntervalNanos() int64 {
	if c.FlushMs >= math.MaxInt64/int64(time.Millisecond) {
		return -1
	}
	return c.FlushMs * int64(time.Millisecond)
}
