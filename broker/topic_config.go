package broker

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ringbroker/ringbroker/storage"
)

// topicSettings are a topic's effective settings: the log's (segment,
// retention, flush, timestamps, indexes) and those the broker applies itself.
type topicSettings struct {
	log             storage.Config
	maxMessageBytes int32  // max.message.bytes
	compression     string // compression.type: producer | uncompressed | gzip | snappy | lz4 | zstd
	cleanupPolicy   string // cleanup.policy: delete | compact | compact,delete (stored; compaction not yet run)
	logAppendTime   bool   // message.timestamp.type=LogAppendTime

	// rules are checked on every produced batch (batch.go: admitRecords).
	rules recordRules
}

// topicKey describes one topic-level config key.
type topicKey struct {
	name string
	// brokerKey is the server.properties key supplying the default (the
	// DescribeConfigs synonym), "" if none.
	brokerKey string
	// def is Apache Kafka's default, used when neither the topic nor the
	// broker sets it.
	def   string
	check func(string) error
}

func checkInt(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			return fmt.Errorf("want an integer >= %d, got %q", min, v)
		}
		return nil
	}
}

func checkOneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("want one of %v, got %q", vals, v)
	}
}

func checkAny(string) error { return nil }

// topicKeys are the topic config keys we accept: Kafka's. Keys that only make
// sense with replication or tiered storage are stored and described but have
// no effect on a single broker.
var topicKeys = []topicKey{
	{"cleanup.policy", "log.cleanup.policy", "delete", checkOneOf("delete", "compact", "compact,delete", "delete,compact")},
	{"compression.type", "compression.type", "producer", checkOneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
	{"delete.retention.ms", "log.cleaner.delete.retention.ms", "86400000", checkInt(0)},
	{"file.delete.delay.ms", "log.segment.delete.delay.ms", "60000", checkInt(0)},
	{"flush.messages", "log.flush.interval.messages", "9223372036854775807", checkInt(1)},
	{"flush.ms", "log.flush.interval.ms", "9223372036854775807", checkInt(0)},
	{"follower.replication.throttled.replicas", "", "", checkAny},
	{"index.interval.bytes", "log.index.interval.bytes", "4096", checkInt(0)},
	{"leader.replication.throttled.replicas", "", "", checkAny},
	{"local.retention.bytes", "log.local.retention.bytes", "-2", checkInt(-2)},
	{"local.retention.ms", "log.local.retention.ms", "-2", checkInt(-2)},
	{"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", "9223372036854775807", checkInt(1)},
	{"max.message.bytes", "message.max.bytes", "1048588", checkInt(0)},
	{"message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", "3600000", checkInt(0)},
	{"message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", "9223372036854775807", checkInt(0)},
	{"message.timestamp.type", "log.message.timestamp.type", "CreateTime", checkOneOf("CreateTime", "LogAppendTime")},
	{"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", "0.5", checkAny},
	{"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "0", checkInt(0)},
	{"min.insync.replicas", "min.insync.replicas", "1", checkInt(1)},
	{"preallocate", "log.preallocate", "false", checkOneOf("true", "false")},
	{"remote.storage.enable", "", "false", checkOneOf("false")},
	{"retention.bytes", "log.retention.bytes", "-1", checkInt(-1)},
	{"retention.ms", "log.retention.ms", "604800000", checkInt(-1)},
	{"segment.bytes", "log.segment.bytes", "1073741824", checkInt(14)},
	{"segment.index.bytes", "log.index.size.max.bytes", "10485760", checkInt(4)},
	{"segment.jitter.ms", "log.roll.jitter.ms", "0", checkInt(0)},
	{"segment.ms", "log.roll.ms", "604800000", checkInt(1)},
	{"unclean.leader.election.enable", "unclean.leader.election.enable", "false", checkOneOf("true", "false")},
}

var topicKeyIndex = func() map[string]*topicKey {
	m := make(map[string]*topicKey, len(topicKeys))
	for i := range topicKeys {
		m[topicKeys[i].name] = &topicKeys[i]
	}
	return m
}()

// lookupTopicKey returns the description of a topic config key, or nil.
func lookupTopicKey(name string) *topicKey { return topicKeyIndex[name] }

// topicDefault is the value a topic key takes without a topic override:
// the broker's setting, else Kafka's default.
func (r *Registry) topicDefault(k *topicKey) string {
	if v, ok := r.opts.BrokerTopicDefaults[k.name]; ok {
		return v
	}
	switch k.name { // the broker-level log settings live in Defaults
	case "segment.bytes":
		return strconv.FormatInt(r.opts.Defaults.SegmentBytes, 10)
	case "segment.ms":
		return strconv.FormatInt(r.opts.Defaults.SegmentMs, 10)
	case "retention.ms":
		return strconv.FormatInt(r.opts.Defaults.RetentionMs, 10)
	case "retention.bytes":
		return strconv.FormatInt(r.opts.Defaults.RetentionBytes, 10)
	case "flush.messages":
		return strconv.FormatInt(r.opts.Defaults.FlushMessages, 10)
	case "flush.ms":
		return strconv.FormatInt(r.opts.Defaults.FlushMs, 10)
	case "index.interval.bytes":
		return strconv.Itoa(r.opts.Defaults.IndexIntervalBytes)
	case "segment.index.bytes":
		return strconv.Itoa(r.opts.Defaults.IndexMaxBytes)
	case "message.timestamp.type":
		if r.opts.Defaults.LogAppendTime {
			return "LogAppendTime"
		}
	}
	return k.def
}

// segmentBytesMinKafka is Kafka 4's minimum segment.bytes (KIP-1030): a
// tiny segment.bytes makes one segment per batch until the process runs out
// of descriptors.
const segmentBytesMinKafka = 1 << 20

// resolveClientSettings is resolveSettings for overrides a client sets
// (CreateTopics, AlterConfigs, IncrementalAlterConfigs): it also enforces
// the segment.bytes floor (RegistryOptions.SegmentBytesMin). Overrides read
// back from the metadata file go through resolveSettings alone, so a topic
// stored before the floor existed still opens.
func (r *Registry) resolveClientSettings(configs map[string]string) (topicSettings, error) {
	if v, ok := configs["segment.bytes"]; ok {
		floor := r.opts.SegmentBytesMin
		if floor <= 0 {
			floor = segmentBytesMinKafka
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n < floor {
			return topicSettings{}, fmt.Errorf("segment.bytes: want an integer >= %d (Kafka 4's minimum; log.segment.bytes.min), got %q", floor, v)
		}
	}
	return r.resolveSettings(configs)
}

// resolveSettings validates overrides and computes the effective settings.
func (r *Registry) resolveSettings(configs map[string]string) (topicSettings, error) {
	names := make([]string, 0, len(configs))
	for k := range configs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		tk := lookupTopicKey(k)
		if tk == nil {
			return topicSettings{}, fmt.Errorf("unknown topic config %q", k)
		}
		if err := tk.check(configs[k]); err != nil {
			return topicSettings{}, fmt.Errorf("%s: %v", k, err)
		}
	}
	value := func(name string) string {
		if v, ok := configs[name]; ok {
			return v
		}
		return r.topicDefault(lookupTopicKey(name))
	}
	lc, err := storage.TopicConfig(r.opts.Defaults, configs)
	if err != nil {
		return topicSettings{}, err
	}
	mmb, _ := strconv.ParseInt(value("max.message.bytes"), 10, 32)
	s := topicSettings{
		log:             lc,
		maxMessageBytes: int32(mmb),
		compression:     value("compression.type"),
		cleanupPolicy:   value("cleanup.policy"),
		logAppendTime:   value("message.timestamp.type") == "LogAppendTime",
	}
	s.log.LogAppendTime = s.logAppendTime
	s.rules.compacted = strings.Contains(s.cleanupPolicy, "compact")
	s.rules.logAppendTime = s.logAppendTime
	s.rules.beforeMaxMs, _ = strconv.ParseInt(value("message.timestamp.before.max.ms"), 10, 64)
	s.rules.afterMaxMs, _ = strconv.ParseInt(value("message.timestamp.after.max.ms"), 10, 64)
	return s, nil
}

// ConfigValue is one described config entry.
type ConfigValue struct {
	Name      string
	Value     string
	IsDefault bool
	// Source: "topic" (a topic override), "broker" (server.properties
	// supplies it), "default".
	Source string
}

// DescribeTopicConfigs lists every topic key with its effective value.
func (r *Registry) DescribeTopicConfigs(t *Topic) []ConfigValue {
	out := make([]ConfigValue, 0, len(topicKeys))
	overrides := t.ConfigOverrides()
	for i := range topicKeys {
		k := &topicKeys[i]
		if v, ok := overrides[k.name]; ok {
			out = append(out, ConfigValue{Name: k.name, Value: v, Source: "topic"})
			continue
		}
		src := "default"
		if _, ok := r.opts.BrokerTopicDefaults[k.name]; ok {
			src = "broker"
		}
		out = append(out, ConfigValue{Name: k.name, Value: r.topicDefault(k), IsDefault: true, Source: src})
	}
	return out
}
