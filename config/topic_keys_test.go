package config

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/storage"
)

// The broker-level log configuration derived from the key table's defaults
// is the storage engine's own default: storage.DefaultConfig (what
// in-process users and storage's tests get) and the key table (what the
// daemon runs with) must not drift apart. append.batch.max.bytes once said
// 4 MiB in one and 1 MiB in the other. (Was cmd/ringbrokerd's
// TestLogDefaultsMatchConfigDefaults.)
func TestStorageConfigDefaultsMatchStorage(t *testing.T) {
	got, want := Default().StorageConfig(), storage.DefaultConfig()
	if got != want {
		t.Fatalf("log config from the key table's defaults:\n%+v\nstorage.DefaultConfig():\n%+v", got, want)
	}
}

// Broker keys (aliases included) default the topic keys; a topic override
// beats them; a bad override is an error (was storage's TestConfigParsing).
func TestTopicSettingsFromBrokerKeys(t *testing.T) {
	c, _ := parse(t, "log.flush.interval.messages=1\nlog.retention.hours=1\nlog.segment.bytes=1048576\n")
	b := c.StorageConfig()
	if b.FlushMessages != 1 || b.RetentionMs != 3600_000 || b.SegmentBytes != 1<<20 {
		t.Fatalf("%+v", b)
	}
	ts, err := c.TopicSettings(map[string]string{"flush.messages": "10", "message.timestamp.type": "LogAppendTime"})
	if err != nil || ts.Log.FlushMessages != 10 || !ts.Log.LogAppendTime || !ts.LogAppendTime || ts.Log.RetentionMs != 3600_000 {
		t.Fatalf("%+v %v", ts, err)
	}
	for _, bad := range []map[string]string{
		{"segment.bytes": "x"},
		{"retention.ms": "-7"},
		{"nope": "1"},
		{"segment.index.bytes": "4294967296"},
		{"cleanup.policy": "compact,nope"},
		{"remote.storage.enable": "true"},
	} {
		if _, err := c.TopicSettings(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestTopicSettingsBrokerDefaults(t *testing.T) {
	c, _ := parse(t, "message.max.bytes=2000000\ncompression.type=lz4\nlog.cleanup.policy=compact\nlog.message.timestamp.type=LogAppendTime\nlog.message.timestamp.after.max.ms=5\nappend.linger.max.ms=3\n")
	ts, err := c.TopicSettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := TopicSettings{Log: c.StorageConfig(), MaxMessageBytes: 2000000, CompressionType: "lz4", CleanupPolicy: "compact",
		LogAppendTime: true, MessageTimestampBeforeMaxMs: 1<<63 - 1, MessageTimestampAfterMaxMs: 5, MinInsyncReplicas: 1}
	if !reflect.DeepEqual(ts, want) || ts.Log.AppendLingerMs != 3 || !ts.Log.LogAppendTime {
		t.Fatalf("got %+v\nwant %+v", ts, want)
	}
	if ts, _ := c.TopicSettings(map[string]string{"max.message.bytes": "99999999999"}); ts.MaxMessageBytes != 1<<31-1 {
		t.Fatalf("max.message.bytes above int32: %d", ts.MaxMessageBytes)
	}
}

// Every topic key's synonyms name broker keys (taken or not), never a topic
// key; every key has a type and a doc; a broker key is not also ignored.
func TestKeyTableConsistent(t *testing.T) {
	for i := range specs {
		sp := &specs[i]
		if sp.typ == 0 || sp.doc == "" || sp.scope == 0 {
			t.Errorf("%s: type %v, scope %v, doc %q", sp.name, sp.typ, sp.scope, sp.doc)
		}
		if sp.broker() && sp.set == nil || sp.broker() && sp.canon == "" && sp.get == nil {
			t.Errorf("%s: broker key without set/get", sp.name)
		}
		if sp.topic() && sp.check == nil {
			t.Errorf("%s: topic key without a validator", sp.name)
		}
		for _, s := range sp.synonyms {
			if lookupTopic(s) != nil && s != sp.name {
				t.Errorf("%s: synonym %s is a topic key", sp.name, s)
			}
		}
		if sp.topic() {
			if err := sp.check(sp.def); err != nil {
				t.Errorf("%s: Kafka default %q fails its own check: %v", sp.name, sp.def, err)
			}
			if err := sp.check(Default().TopicDefault(sp.name)); err != nil {
				t.Errorf("%s: broker default %q fails the topic check: %v", sp.name, Default().TopicDefault(sp.name), err)
			}
		}
	}
}

func synonymString(d Described) string {
	var parts []string
	for _, s := range d.Synonyms {
		v := "null"
		if s.Value != nil {
			v = *s.Value
		}
		parts = append(parts, s.Name+"="+v+"/"+sourceName(s.Source))
	}
	return strings.Join(parts, " ")
}

func sourceName(s Source) string {
	switch s {
	case SourceDynamicTopic:
		return "topic"
	case SourceStaticBroker:
		return "static"
	case SourceDefault:
		return "default"
	}
	return "?"
}

func describedMap(ds []Described) map[string]Described {
	m := make(map[string]Described, len(ds))
	for _, d := range ds {
		m[d.Name] = d
	}
	return m
}

// describeCase is one expected DescribeConfigs entry; value "null" is no
// value, synonyms as synonymString writes them.
type describeCase struct {
	key, value string
	src        Source
	synonyms   string
}

func checkDescribed(t *testing.T, ds []Described, readOnly bool, cases []describeCase) {
	t.Helper()
	m := describedMap(ds)
	for _, tc := range cases {
		d, ok := m[tc.key]
		if !ok {
			t.Errorf("%s not described", tc.key)
			continue
		}
		v := "null"
		if d.Value != nil {
			v = *d.Value
		}
		if v != tc.value || d.Source != tc.src || synonymString(d) != tc.synonyms || d.ReadOnly != readOnly {
			t.Errorf("%s = %s (%s, read-only %v) synonyms %q; want %s (%s) synonyms %q", tc.key, v, sourceName(d.Source), d.ReadOnly, synonymString(d), tc.value, sourceName(tc.src), tc.synonyms)
		}
	}
}

// DescribeConfigs sources and synonyms as Kafka's ConfigHelper gives them.
func TestDescribeTopic(t *testing.T) {
	c, _ := parse(t, "log.retention.hours=1\ncompression.type=lz4\n")
	ds := c.DescribeTopic(map[string]string{"segment.bytes": "1048576", "compression.type": "zstd"})
	checkDescribed(t, ds, false, []describeCase{
		{"segment.bytes", "1048576", SourceDynamicTopic, "segment.bytes=1048576/topic log.segment.bytes=1073741824/default"},
		// Kafka's rule: the list starts at log.retention.ms, which is neither
		// set nor has a default, so log.retention.hours alone leaves none.
		{"retention.ms", "3600000", SourceDefault, ""},
		{"segment.ms", "604800000", SourceDefault, ""},
		{"flush.ms", "9223372036854775807", SourceDefault, ""},
		{"compression.type", "zstd", SourceDynamicTopic, "compression.type=zstd/topic compression.type=lz4/static compression.type=producer/default"},
		{"cleanup.policy", "delete", SourceDefault, "log.cleanup.policy=delete/default"},
		{"delete.retention.ms", "86400000", SourceDefault, "log.cleaner.delete.retention.ms=86400000/default"},
		{"remote.storage.enable", "false", SourceDefault, ""},
	})
	if len(ds) != len(topicIndex) {
		t.Errorf("described %d topic keys, the table has %d", len(ds), len(topicIndex))
	}
	c, _ = parse(t, "log.retention.ms=5000\nlog.retention.hours=2\nlog.flush.interval.ms=7\n")
	checkDescribed(t, c.DescribeTopic(nil), false, []describeCase{
		{"retention.ms", "5000", SourceStaticBroker, "log.retention.ms=5000/static log.retention.hours=168/default"},
		{"flush.ms", "7", SourceStaticBroker, "log.flush.interval.ms=7/static"},
	})
}

func TestDescribeBroker(t *testing.T) {
	c, _ := parse(t, "log.retention.minutes=5\nnode.id=3\n")
	if err := c.Set("num.partitions", "4"); err != nil {
		t.Fatal(err)
	}
	ds := c.DescribeBroker()
	checkDescribed(t, ds, true, []describeCase{
		{"log.retention.ms", "300000", SourceDefault, ""}, // Kafka's rule, as for retention.ms
		{"log.retention.minutes", "5", SourceStaticBroker, "log.retention.minutes=5/static log.retention.hours=168/default"},
		{"log.retention.hours", "168", SourceDefault, "log.retention.hours=168/default"},
		{"log.roll.ms", "604800000", SourceDefault, ""},
		{"num.partitions", "4", SourceStaticBroker, "num.partitions=4/static num.partitions=1/default"},
		{"node.id", "3", SourceStaticBroker, "node.id=3/static node.id=0/default"},
		{"broker.id", "3", SourceDefault, "broker.id=-1/default"},
		{"log.segment.bytes", "1073741824", SourceDefault, "log.segment.bytes=1073741824/default"},
		{"log.cleaner.delete.retention.ms", "86400000", SourceDefault, "log.cleaner.delete.retention.ms=86400000/default"},
		{"advertised.listeners", "PLAINTEXT://127.0.0.1:9092", SourceDefault, ""},
	})
	if _, ok := describedMap(ds)["retention.ms"]; ok {
		t.Error("a topic-only key is described as a broker key")
	}
}

// Broker defaults of stored-only topic keys: taken as Kafka takes them,
// inherited by topics, reported as set.
func TestStoredBrokerKeys(t *testing.T) {
	c, _ := parse(t, "log.preallocate=TRUE\nlog.cleaner.min.cleanable.ratio=0.7\nlog.local.retention.ms=-2\n")
	if got := c.TopicDefault("preallocate"); got != "true" {
		t.Errorf("preallocate default %q, want true", got)
	}
	m := describedMap(c.DescribeTopic(nil))
	if d := m["min.cleanable.dirty.ratio"]; *d.Value != "0.7" || d.Source != SourceStaticBroker {
		t.Errorf("min.cleanable.dirty.ratio %s (%s)", *d.Value, sourceName(d.Source))
	}
	if _, err := c.TopicSettings(map[string]string{"preallocate": "false"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"log.cleaner.min.cleanable.ratio=2", "log.preallocate=yes", "log.local.retention.ms=-3"} {
		if _, _, err := Parse(strings.NewReader(bad), "bad.properties"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// The log.cleaner.* keys at their defaults are the storage engine's
// DefaultCleanerConfig, as StorageConfig is DefaultConfig.
func TestCleanerConfigDefaultsMatchStorage(t *testing.T) {
	c := Default()
	if got, want := c.CleanerConfig(), storage.DefaultCleanerConfig(); !reflect.DeepEqual(got, want) {
		t.Fatalf("cleaner config from the key table's defaults:\n%+v\nstorage.DefaultCleanerConfig():\n%+v", got, want)
	}
	if !c.LogCleanerEnable {
		t.Error("log.cleaner.enable defaults to false, Kafka's default is true")
	}
}

func TestCleanerConfigFromKeys(t *testing.T) {
	c, _ := parse(t, "log.cleaner.enable=FALSE\nlog.cleaner.threads=3\nlog.cleaner.dedupe.buffer.size=33554432\nlog.cleaner.io.buffer.size=4096\n"+
		"log.cleaner.io.buffer.load.factor=0.75\nlog.cleaner.io.max.bytes.per.second=1e6\nlog.cleaner.backoff.ms=250\n")
	want := storage.DefaultCleanerConfig()
	want.Threads, want.DedupeBufferBytes, want.IOBufferBytes = 3, 32<<20, 4096
	want.LoadFactor, want.MaxIOBytesPerSecond, want.Backoff = 0.75, 1e6, 250*time.Millisecond
	if got := c.CleanerConfig(); c.LogCleanerEnable || !reflect.DeepEqual(got, want) {
		t.Fatalf("enable %v, %+v\nwant %+v", c.LogCleanerEnable, got, want)
	}
	// A LONG of ms past what a Duration holds saturates instead of wrapping.
	c, _ = parse(t, "log.cleaner.backoff.ms=9223372036854775807\n")
	if got := c.CleanerConfig().Backoff; got != math.MaxInt64 {
		t.Errorf("backoff %v, want the largest Duration", got)
	}
	// log.cleaner.threads=0 runs no cleaner (Kafka divides by it and fails
	// to start): the dedupe rule does not apply.
	c, _ = parse(t, "log.cleaner.threads=0\nlog.cleaner.dedupe.buffer.size=0\n")
	if c.CleanerConfig().Threads != 0 {
		t.Errorf("threads %d", c.CleanerConfig().Threads)
	}
	// DescribeConfigs and Print give a DOUBLE's value as Java prints it
	// (the static synonym keeps the text as written, like every key's).
	c, _ = parse(t, "log.cleaner.io.max.bytes.per.second= 2000000 \nlog.cleaner.io.buffer.load.factor=1\n")
	checkDescribed(t, c.DescribeBroker(), true, []describeCase{
		{"log.cleaner.io.max.bytes.per.second", "2000000.0", SourceStaticBroker, "log.cleaner.io.max.bytes.per.second=2000000/static log.cleaner.io.max.bytes.per.second=1.7976931348623157E308/default"},
		{"log.cleaner.io.buffer.load.factor", "1.0", SourceStaticBroker, "log.cleaner.io.buffer.load.factor=1/static log.cleaner.io.buffer.load.factor=0.9/default"},
		{"log.cleaner.enable", "true", SourceDefault, "log.cleaner.enable=true/default"},
		{"log.cleaner.min.cleanable.ratio", "0.5", SourceDefault, "log.cleaner.min.cleanable.ratio=0.5/default"},
	})
}

// Kafka's validation of the cleaner keys (CleanerConfig's ConfigDef,
// KafkaConfig's dedupe rule, LogManager's validateBrokerLogConfigValues),
// and ours where Kafka checks nothing (NaN, a zero throttle or load factor).
func TestCleanerKeysRefused(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"log.cleaner.threads=-1", "log.cleaner.threads=\"-1\": must be between 0 and"},
		{"log.cleaner.enable=yes", "must be true or false"},
		{"log.cleaner.backoff.ms=-1", "log.cleaner.backoff.ms=\"-1\": must be at least 0"},
		{"log.cleaner.io.buffer.size=0", "log.cleaner.io.buffer.size=\"0\": must be between 1 and"},
		{"log.cleaner.dedupe.buffer.size=1048576", "log.cleaner.dedupe.buffer.size=1048576 must be more than 1 MiB (1048576) per cleaner thread (log.cleaner.threads=1)"},
		{"log.cleaner.threads=128", "must be more than 1 MiB (1048576) per cleaner thread (log.cleaner.threads=128)"},
		{"log.cleaner.io.buffer.load.factor=0", "log.cleaner.io.buffer.load.factor=\"0\": must be above 0.0 and at most 1.0"},
		{"log.cleaner.io.buffer.load.factor=1.01", "must be above 0.0 and at most 1.0"},
		{"log.cleaner.io.max.bytes.per.second=0", "log.cleaner.io.max.bytes.per.second=\"0\": must be above 0.0"},
		{"log.cleaner.io.max.bytes.per.second=Infinity", "not a finite number"},
		{"log.cleaner.min.cleanable.ratio=NaN", "not a finite number"},
		{"log.cleaner.min.cleanable.ratio=1.5", "must be between 0.0 and 1.0"},
		{"log.cleaner.min.cleanable.ratio=-0.1", "must be between 0.0 and 1.0"},
		{"log.cleaner.delete.retention.ms=-1", "log.cleaner.delete.retention.ms=\"-1\": must be at least 0"},
		{"log.cleaner.max.compaction.lag.ms=0", "log.cleaner.max.compaction.lag.ms=\"0\": must be at least 1"},
		{"log.cleaner.min.compaction.lag.ms=-1", "must be at least 0"},
		{"log.cleaner.min.compaction.lag.ms=10\nlog.cleaner.max.compaction.lag.ms=9", "log.cleaner.min.compaction.lag.ms=10 is above log.cleaner.max.compaction.lag.ms=9"},
	} {
		_, _, err := Parse(strings.NewReader(tt.in), "test.properties")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
	// Just above the floor, and equal lags, are fine.
	parse(t, "log.cleaner.dedupe.buffer.size=1048577\nlog.cleaner.min.compaction.lag.ms=9\nlog.cleaner.max.compaction.lag.ms=9\n")
}

// The compaction keys reach storage.Config: cleanup.policy as Compact and
// NoDeleteRetention, the others as they are; the broker's log.cleaner.*
// and log.cleanup.policy default them; a topic override beats those.
func TestTopicCompactionSettings(t *testing.T) {
	c := Default()
	for _, tt := range []struct {
		policy                     string
		compact, noDeleteRetention bool
	}{
		{"delete", false, false},
		{"compact", true, true},
		{"compact,delete", true, false},
		{"delete,compact", true, false},
	} {
		ts, err := c.TopicSettings(map[string]string{"cleanup.policy": tt.policy})
		if err != nil || ts.CleanupPolicy != tt.policy || ts.Log.Compact != tt.compact || ts.Log.NoDeleteRetention != tt.noDeleteRetention {
			t.Errorf("cleanup.policy=%s: %v compact %v no-delete-retention %v", tt.policy, err, ts.Log.Compact, ts.Log.NoDeleteRetention)
		}
	}
	ts, err := c.TopicSettings(map[string]string{"delete.retention.ms": "5", "min.compaction.lag.ms": "6", "max.compaction.lag.ms": "7", "min.cleanable.dirty.ratio": " 0.25 "})
	if l := ts.Log; err != nil || l.DeleteRetentionMs != 5 || l.MinCompactionLagMs != 6 || l.MaxCompactionLagMs != 7 || l.MinCleanableDirtyRatio != 0.25 {
		t.Fatalf("%v %+v", err, l)
	}

	c, _ = parse(t, "log.cleanup.policy=compact\nlog.cleaner.delete.retention.ms=11\nlog.cleaner.min.compaction.lag.ms=12\nlog.cleaner.max.compaction.lag.ms=13\nlog.cleaner.min.cleanable.ratio=0.125\n")
	l := c.StorageConfig()
	if !l.Compact || !l.NoDeleteRetention || l.DeleteRetentionMs != 11 || l.MinCompactionLagMs != 12 || l.MaxCompactionLagMs != 13 || l.MinCleanableDirtyRatio != 0.125 {
		t.Fatalf("broker defaults: %+v", l)
	}
	ts, err = c.TopicSettings(map[string]string{"cleanup.policy": "delete", "min.cleanable.dirty.ratio": "1"})
	if err != nil || ts.Log.Compact || ts.Log.NoDeleteRetention || ts.Log.MinCleanableDirtyRatio != 1 || ts.Log.DeleteRetentionMs != 11 {
		t.Fatalf("override: %v %+v", err, ts.Log)
	}

	for _, bad := range []map[string]string{
		{"min.cleanable.dirty.ratio": "1.5"},
		{"min.cleanable.dirty.ratio": "NaN"},
		{"min.cleanable.dirty.ratio": "half"},
		{"max.compaction.lag.ms": "0"},
		{"delete.retention.ms": "-1"},
		{"min.compaction.lag.ms": "-1"},
	} {
		if _, err := c.TopicSettings(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := c.TopicSettings(map[string]string{"min.cleanable.dirty.ratio": "-0"}); err != nil {
		t.Errorf("-0 refused (Java's -0.0 >= 0 too): %v", err)
	}
}

// Kafka's LogConfig.validateValues: min.compaction.lag.ms above
// max.compaction.lag.ms is refused, over the broker's defaults, for what
// a client sets; a topic that already has it still opens
// (StoredTopicSettings).
func TestTopicCompactionLagConflict(t *testing.T) {
	c, _ := parse(t, "log.cleaner.max.compaction.lag.ms=1000\n")
	for _, tt := range []struct {
		overrides map[string]string
		refused   bool
	}{
		{map[string]string{"min.compaction.lag.ms": "1000"}, false},
		{map[string]string{"min.compaction.lag.ms": "1001"}, true}, // against the broker's max
		{map[string]string{"min.compaction.lag.ms": "1001", "max.compaction.lag.ms": "1001"}, false},
		{map[string]string{"min.compaction.lag.ms": "5", "max.compaction.lag.ms": "4"}, true},
	} {
		_, err := c.TopicSettings(tt.overrides)
		if (err != nil) != tt.refused {
			t.Errorf("%v: err %v, want refused %v", tt.overrides, err, tt.refused)
		}
		if err != nil && !strings.Contains(err.Error(), "min.compaction.lag.ms") {
			t.Errorf("%v: error %q does not name the keys", tt.overrides, err)
		}
		ts, err := c.StoredTopicSettings(tt.overrides)
		if err != nil || ts.Log.MinCompactionLagMs == 0 {
			t.Errorf("%v stored: %v %+v", tt.overrides, err, ts.Log)
		}
	}
}

func TestJavaDouble(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		want string
	}{
		{0, "0.0"}, {0.5, "0.5"}, {0.9, "0.9"}, {1, "1.0"}, {15, "15.0"}, {0.001, "0.001"}, {0.0001, "1.0E-4"},
		{9999999, "9999999.0"}, {1e7, "1.0E7"}, {1.25e-10, "1.25E-10"}, {math.MaxFloat64, "1.7976931348623157E308"},
		{-2.5, "-2.5"}, {-3e9, "-3.0E9"}, {math.Inf(1), "Infinity"}, {math.NaN(), "NaN"},
	} {
		if got := javaDouble(tt.f); got != tt.want {
			t.Errorf("javaDouble(%v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}
