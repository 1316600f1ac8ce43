package config

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ringbroker/ringbroker/storage"
)

// Topic keys: Kafka's topic-level configs (LogConfig), each with the
// server.properties keys that default it (its DescibeConfigs synonyms). Keys
// that only make sense with replication or tiered storage are validated,
// stored and described, and have no effect on a single broker.
//
// A topic's effective value of a key is its override, else the broker's value
// of the first synonym this table knows (log.retention.ms for retention.ms,
// which log.retention.hours and .minutes also write), else Kafka's default
// (def). TopicSettings turns those values into the settings the broker and
// the storage engine use; the broker-level storage.Config is TopicSettings
// with no override (StorageConfig).

// TopicSettings are a topic's effective settings, computed from the key
// table: the storage engine's (segment, retention, flush, timestamps,
// indexes, plus the broker's append.* tuning) and those the broker applies
// itself.
type TopicSettings struct {
	Log                         storage.Config
	MaxMessageBytes             int32  // max.message.bytes
	CompressionType             string // compression.type: producer | uncompressed | gzip | snappy | lz4 | zstd
	CleanupPolicy               string // cleanup.policy: delete | compact | compact,delete | delete,compact
	LogAppendTime               bool   // message.timestamp.type=LogAppendTime
	MessageTimestampBeforeMaxMs int64  // message.timestamp.before.max.ms
	MessageTimestampAfterMaxMs  int64  // message.timestamp.after.max.ms
	MinInsyncReplicas           int    // min.insync.replicas
}

var compressionTypes = []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}

var topicSpecs = []spec{
	topicEnum("cleanup.policy", "delete", TypeList, []string{"delete", "compact", "compact,delete", "delete,compact"}, []string{"log.cleanup.policy"},
		"`delete` (retention removes old segments), `compact` (the log cleaner keeps the last record of each key; retention deletes nothing) or both. A keyless record on a compacted topic is refused (INVALID_RECORD), and DeleteRecords on a `compact`-only topic (POLICY_VIOLATION), as in Kafka.",
		func(t *TopicSettings, v string) {
			t.CleanupPolicy = v
			t.Log.Compact = strings.Contains(v, "compact")
			t.Log.NoDeleteRetention = !strings.Contains(v, "delete")
		}),
	topicInt("delete.retention.ms", "86400000", 0, math.MaxInt64, TypeLong, []string{"log.cleaner.delete.retention.ms"}, "How long the log cleaner keeps a tombstone (a record with a key and no value) after it first cleaned past it, so that a consumer reading from the start sees the delete.",
		func(t *TopicSettings, n int64) { t.Log.DeleteRetentionMs = n }),
	topicInt("file.delete.delay.ms", "60000", 0, math.MaxInt64, TypeLong, []string{"log.segment.delete.delay.ms"}, "Stored; no effect (segments are unlinked at once; open readers keep their fd).", nil),
	topicInt("flush.messages", "9223372036854775807", 1, math.MaxInt64, TypeLong, []string{"log.flush.interval.messages"}, "fdatasync the partition after this many messages.",
		func(t *TopicSettings, n int64) { t.Log.FlushMessages = n }),
	topicInt("flush.ms", "9223372036854775807", 0, math.MaxInt64, TypeLong, []string{"log.flush.interval.ms"}, "fdatasync the partition when its oldest unsynced data is this old.",
		func(t *TopicSettings, n int64) { t.Log.FlushMs = n }),
	topicAny("follower.replication.throttled.replicas", "", TypeList, nil, "Stored; no effect (no replication)."),
	topicInt("index.interval.bytes", "4096", 0, kafkaIntMax, TypeInt, []string{"log.index.interval.bytes"}, "Bytes of log between offset-index entries.",
		func(t *TopicSettings, n int64) { t.Log.IndexIntervalBytes = int(n) }),
	topicAny("leader.replication.throttled.replicas", "", TypeList, nil, "Stored; no effect (no replication)."),
	topicInt("local.retention.bytes", "-2", -2, math.MaxInt64, TypeLong, []string{"log.local.retention.bytes"}, "Stored; no effect (no tiered storage).", nil),
	topicInt("local.retention.ms", "-2", -2, math.MaxInt64, TypeLong, []string{"log.local.retention.ms"}, "Stored; no effect (no tiered storage).", nil),
	topicInt("max.compaction.lag.ms", "9223372036854775807", 1, math.MaxInt64, TypeLong, []string{"log.cleaner.max.compaction.lag.ms"}, "A record dirty (not yet cleaned) for longer than this makes the log cleanable whatever its dirty ratio; the active segment is never cleaned. At least `min.compaction.lag.ms`.",
		func(t *TopicSettings, n int64) { t.Log.MaxCompactionLagMs = n }),
	topicInt("max.message.bytes", "1048588", 0, math.MaxInt64, TypeInt, []string{"message.max.bytes"}, "Largest record batch Produce accepts for the topic (MESSAGE_TOO_LARGE above it).",
		func(t *TopicSettings, n int64) { t.MaxMessageBytes = int32(min(n, kafkaIntMax)) }),
	topicInt("message.timestamp.after.max.ms", "3600000", 0, math.MaxInt64, TypeLong, []string{"log.message.timestamp.after.max.ms"}, "A CreateTime record more than this many ms ahead of the broker's clock is refused (INVALID_TIMESTAMP).",
		func(t *TopicSettings, n int64) { t.MessageTimestampAfterMaxMs = n }),
	topicInt("message.timestamp.before.max.ms", "9223372036854775807", 0, math.MaxInt64, TypeLong, []string{"log.message.timestamp.before.max.ms"}, "A CreateTime record more than this many ms older than the broker's clock is refused (INVALID_TIMESTAMP).",
		func(t *TopicSettings, n int64) { t.MessageTimestampBeforeMaxMs = n }),
	topicEnum("message.timestamp.type", "CreateTime", TypeString, []string{"CreateTime", "LogAppendTime"}, []string{"log.message.timestamp.type"}, "`CreateTime` keeps the producer's timestamps; `LogAppendTime` stamps the broker's append time.",
		func(t *TopicSettings, v string) {
			t.LogAppendTime = v == "LogAppendTime"
			t.Log.LogAppendTime = t.LogAppendTime
		}),
	topicDouble("min.cleanable.dirty.ratio", "0.5", 0, 1, []string{"log.cleaner.min.cleanable.ratio"}, "The log cleaner cleans a compacted log when its dirty (not yet cleaned) bytes are at least this fraction of its cleanable bytes (0 to 1), or when a record is dirty for longer than `max.compaction.lag.ms`.",
		func(t *TopicSettings, f float64) { t.Log.MinCleanableDirtyRatio = f }),
	topicInt("min.compaction.lag.ms", "0", 0, math.MaxInt64, TypeLong, []string{"log.cleaner.min.compaction.lag.ms"}, "Records younger than this (by timestamp) are not cleaned: a consumer has that long to see every update of a key. At most `max.compaction.lag.ms` (INVALID_CONFIG otherwise).",
		func(t *TopicSettings, n int64) { t.Log.MinCompactionLagMs = n }),
	topicInt("min.insync.replicas", "1", 1, math.MaxInt64, TypeInt, []string{"min.insync.replicas"}, "In a cluster, a Produce with acks=all is refused (NOT_ENOUGH_REPLICAS) when the partition's ISR is smaller than this, and answered NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank below it while the produce waited. A single node ignores it (acks=all means its own write).",
		func(t *TopicSettings, n int64) { t.MinInsyncReplicas = int(min(n, math.MaxInt32)) }),
	topicEnum("preallocate", "false", TypeBoolean, []string{"true", "false"}, []string{"log.preallocate"}, "Stored; no effect (segments grow as written).", nil),
	topicEnum("remote.storage.enable", "false", TypeBoolean, []string{"false"}, nil, "Only `false`: no tiered storage.", nil),
	topicInt("retention.bytes", "-1", -1, math.MaxInt64, TypeLong, []string{"log.retention.bytes"}, "Delete the oldest segments while the partition is larger than this; -1 = no size limit.",
		func(t *TopicSettings, n int64) { t.Log.RetentionBytes = n }),
	topicInt("retention.ms", "604800000", -1, math.MaxInt64, TypeLong, []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}, "Delete segments older than this; -1 = no time limit.",
		func(t *TopicSettings, n int64) { t.Log.RetentionMs = n }),
	topicInt("segment.bytes", "1073741824", 14, math.MaxInt64, TypeInt, []string{"log.segment.bytes"}, "Roll a new segment when the active one reaches this size. CreateTopics and AlterConfigs refuse less than `log.segment.bytes.min` (INVALID_CONFIG).",
		func(t *TopicSettings, n int64) { t.Log.SegmentBytes = n }),
	topicInt("segment.index.bytes", "10485760", 4, kafkaIntMax, TypeInt, []string{"log.index.size.max.bytes"}, "Maximum size of an offset or time index file; a full index rolls the segment.",
		func(t *TopicSettings, n int64) { t.Log.IndexMaxBytes = int(n) }),
	topicInt("segment.jitter.ms", "0", 0, math.MaxInt64, TypeLong, []string{"log.roll.jitter.ms"}, "Stored; no effect (segments roll at segment.ms exactly).", nil),
	topicInt("segment.ms", "604800000", 1, math.MaxInt64, TypeLong, []string{"log.roll.ms", "log.roll.hours"}, "Roll a new segment after this long even if not full (never sooner than 60 s after the segment's creation: a segment per append would exhaust descriptors).",
		func(t *TopicSettings, n int64) { t.Log.SegmentMs = n }),
	topicEnum("unclean.leader.election.enable", "false", TypeBoolean, []string{"true", "false"}, []string{"unclean.leader.election.enable"}, "With a cluster (process.roles), lets the controller elect an active replica outside the ISR when no ISR member is active (the ISR becomes the new leader alone, recovering; acknowledged records may be lost). A single broker has no other replica.", nil),
}

// ---- topic spec constructors

// topicInt is an integer topic key: a client's value must be a decimal in
// [lo, hi] (not trimmed, as the topic keys always were).
func topicInt(name, def string, lo, hi int64, typ Type, synonyms []string, doc string, store func(t *TopicSettings, n int64)) spec {
	sp := spec{name: name, def: def, doc: doc, scope: ScopeTopic, typ: typ, synonyms: synonyms,
		check: func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < lo {
				return fmt.Errorf("want an integer >= %d, got %q", lo, v)
			}
			if n > hi {
				return fmt.Errorf("want an integer <= %d, got %q", hi, v)
			}
			return nil
		}}
	if store != nil {
		sp.store = func(t *TopicSettings, v string) {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64) // checked, or the broker's own typed value
			store(t, n)
		}
	}
	return sp
}

// topicDouble is a DOUBLE topic key in [lo, hi] (trimmed, as Kafka parses
// a DOUBLE).
func topicDouble(name, def string, lo, hi float64, synonyms []string, doc string, store func(t *TopicSettings, f float64)) spec {
	return spec{name: name, def: def, doc: doc, scope: ScopeTopic, typ: TypeDouble, synonyms: synonyms,
		check: func(v string) error {
			_, err := parseDouble(v, lo, hi, false)
			return err
		},
		store: func(t *TopicSettings, v string) {
			f, _ := parseDouble(v, lo, hi, false) // checked, or the broker's own typed value
			store(t, f)
		}}
}

func topicEnum(name, def string, typ Type, values, synonyms []string, doc string, store func(t *TopicSettings, v string)) spec {
	return spec{name: name, def: def, doc: doc, scope: ScopeTopic, typ: typ, synonyms: synonyms, store: store,
		check: func(v string) error { return checkOneOf(v, values) }}
}

func topicAny(name, def string, typ Type, synonyms []string, doc string) spec {
	return spec{name: name, def: def, doc: doc, scope: ScopeTopic, typ: typ, synonyms: synonyms,
		check: func(string) error { return nil }}
}

// bothScopes makes a server.properties enum key a topic key of the same
// name too, defaulted by itself (compression.type).
func bothScopes(sp spec, store func(t *TopicSettings, v string)) spec {
	values := slices.Clone(compressionTypes)
	sp.scope, sp.synonyms, sp.store = ScopeBoth, []string{sp.name}, store
	sp.check = func(v string) error { return checkOneOf(v, values) }
	return sp
}

func checkOneOf(v string, values []string) error {
	if slices.Contains(values, v) {
		return nil
	}
	return fmt.Errorf("want one of %v, got %q", values, v)
}

// ---- topic settings

// IsTopicKey reports whether name is a topic config key.
func IsTopicKey(name string) bool { return lookupTopic(name) != nil }

// TopicKeyType returns Kafka's type of topic key name (0 if unknown).
func TopicKeyType(name string) Type {
	if sp := lookupTopic(name); sp != nil {
		return sp.typ
	}
	return 0
}

// TopicDefault returns the value topic key name takes without a topic
// override: the broker's setting of its synonym, else Kafka's default. ""
// for an unknown key.
func (c *Config) TopicDefault(name string) string {
	sp := lookupTopic(name)
	if sp == nil {
		return ""
	}
	return c.topicDefault(sp)
}

func (c *Config) topicDefault(sp *spec) string {
	for _, s := range sp.synonyms {
		if b := lookup(s); b != nil {
			return lookup(b.canonical()).get(c)
		}
	}
	return sp.def
}

// TopicSettings validates a topic's overrides (an unknown key or a bad
// value is an error naming the key), then Kafka's rules across keys of the
// effective settings (checkTopicSettings), and returns those settings. It
// is the check of what a client sets (CreateTopics, AlterConfigs).
func (c *Config) TopicSettings(overrides map[string]string) (TopicSettings, error) {
	t, err := c.StoredTopicSettings(overrides)
	if err != nil {
		return TopicSettings{}, err
	}
	if err := checkTopicSettings(&t); err != nil {
		return TopicSettings{}, err
	}
	return t, nil
}

// StoredTopicSettings is TopicSettings without the rules across keys, for
// overrides a topic already has (read back at start, applied from the
// cluster metadata): such a topic opens even when a broker default changed
// since, or it was stored before the rule existed, as Kafka builds a
// loaded topic's LogConfig without validateValues.
func (c *Config) StoredTopicSettings(overrides map[string]string) (TopicSettings, error) {
	names := make([]string, 0, len(overrides))
	for k := range overrides {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		sp := lookupTopic(k)
		if sp == nil {
			return TopicSettings{}, fmt.Errorf("unknown topic config %q", k)
		}
		if err := sp.check(overrides[k]); err != nil {
			return TopicSettings{}, fmt.Errorf("%s: %v", k, err)
		}
	}
	return c.topicSettings(overrides), nil
}

// topicSettings computes settings from valid overrides.
func (c *Config) topicSettings(overrides map[string]string) TopicSettings {
	// TimeRollMinMs is the only field not a key: the storage engine's.
	t := TopicSettings{Log: storage.Config{TimeRollMinMs: storage.DefaultConfig().TimeRollMinMs}}
	t.Log.AppendBatchMaxBytes = c.AppendBatchMaxBytes
	t.Log.AppendLingerMs = int64(c.AppendLingerMaxMs)
	t.Log.AppendPendingMaxBytes = c.AppendPendingMaxBytes
	t.Log.AppendInline = c.AppendInline
	for i := range specs {
		sp := &specs[i]
		if !sp.topic() || sp.store == nil {
			continue
		}
		v, ok := overrides[sp.name]
		if !ok {
			v = c.topicDefault(sp)
		}
		sp.store(&t, v)
	}
	return t
}

// checkTopicSettings holds Kafka's rules across keys of a topic's
// effective settings (LogConfig.validateValues: the overrides over the
// broker's defaults).
func checkTopicSettings(t *TopicSettings) error {
	if t.Log.MinCompactionLagMs > t.Log.MaxCompactionLagMs {
		return fmt.Errorf("conflicting topic configs: min.compaction.lag.ms (%d) > max.compaction.lag.ms (%d)", t.Log.MinCompactionLagMs, t.Log.MaxCompactionLagMs)
	}
	return nil
}

// StorageConfig is the broker-level log configuration: every topic key at
// the broker's default, and the append.* tuning.
func (c *Config) StorageConfig() storage.Config { return c.topicSettings(nil).Log }

// CleanerConfig is the log cleaner's configuration (the log.cleaner.*
// keys). Whether to run one at all is LogCleanerEnable and
// LogCleanerThreads > 0.
func (c *Config) CleanerConfig() storage.CleanerConfig {
	cc := storage.DefaultCleanerConfig()
	cc.Threads = c.LogCleanerThreads
	cc.DedupeBufferBytes = c.LogCleanerDedupeBufferSize
	cc.IOBufferBytes = c.LogCleanerIOBufferSize
	cc.LoadFactor = c.LogCleanerIOBufferLoadFactor
	cc.MaxIOBytesPerSecond = c.LogCleanerIOMaxBytesPerSecond
	cc.Backoff = msDuration(c.LogCleanerBackoffMs)
	cc.ProducerIDExpirationMs = int64(c.ProducerIDExpirationMs)
	return cc
}

// msDuration converts milliseconds to a Duration, saturating where the
// nanoseconds would overflow (a Kafka LONG of ms goes to Long.MAX_VALUE).
func msDuration(ms int64) time.Duration {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}
