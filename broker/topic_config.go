package broker

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ringbroker/ringbroker/storage"
)

// topicSettings are a topic's effective settings: the log's (segment,
// retention, flush, timestamps, indexes) and those the broker applies itself.
// The keys, their defaults and their validation are the config package's
// (config/topic_keys.go); this is the broker's view of config.TopicSettings.
type topicSettings struct {
	log             storage.Config
	maxMessageBytes int32  // max.message.bytes
	compression     string // compression.type: producer | uncompressed | gzip | snappy | lz4 | zstd
	cleanupPolicy   string // cleanup.policy: delete | compact | compact,delete | delete,compact (log.Compact, log.NoDeleteRetention)
	logAppendTime   bool   // message.timestamp.type=LogAppendTime
	minInsync       int    // min.insync.replicas (cluster mode: produce_acks.go)

	// rules are checked on every produced batch (produce_batch.go: admitRecords).
	rules recordRules
}

// resolveClientSettings is resolveSettings for overrides a client sets
// (CreateTopics, AlterConfigs, IncrementalAlterConfigs): it also enforces
// the segment.bytes floor (log.segment.bytes.min, Kafka 4's minimum by
// default: a tiny segment.bytes makes one segment per batch until the
// process runs out of descriptors). Overrides read back from the metadata
// file go through resolveSettings alone, so a topic stored before the floor
// existed still opens.
func (r *Registry) resolveClientSettings(configs map[string]string) (topicSettings, error) {
	if v, ok := configs["segment.bytes"]; ok {
		floor := int64(r.cfg.LogSegmentBytesMin)
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n < floor {
			return topicSettings{}, fmt.Errorf("segment.bytes: want an integer >= %d (Kafka 4's minimum; log.segment.bytes.min), got %q", floor, v)
		}
	}
	// Kafka's rules across keys (min.compaction.lag.ms <= max.compaction.lag.ms)
	// hold for what a client sets, not for what a topic already has.
	if _, err := r.cfg.TopicSettings(configs); err != nil {
		return topicSettings{}, err
	}
	return r.resolveSettings(configs)
}

// resolveSettings validates overrides and computes the effective settings
// from the config package's key table (config.StoredTopicSettings).
func (r *Registry) resolveSettings(configs map[string]string) (topicSettings, error) {
	ts, err := r.cfg.StoredTopicSettings(configs)
	if err != nil {
		return topicSettings{}, err
	}
	s := topicSettings{
		log:             ts.Log,
		maxMessageBytes: ts.MaxMessageBytes,
		compression:     ts.CompressionType,
		cleanupPolicy:   ts.CleanupPolicy,
		logAppendTime:   ts.LogAppendTime,
		minInsync:       ts.MinInsyncReplicas,
	}
	s.rules.compacted = strings.Contains(s.cleanupPolicy, "compact")
	s.rules.logAppendTime = s.logAppendTime
	s.rules.beforeMaxMs = ts.MessageTimestampBeforeMaxMs
	s.rules.afterMaxMs = ts.MessageTimestampAfterMaxMs
	return s, nil
}
