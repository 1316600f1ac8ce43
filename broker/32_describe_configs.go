package broker

// DescribeConfigs (key 32), versions 0-4.
//
// Behaviour:
//   - TOPIC resources: every topic key we accept (topic_config.go) with its
//     effective value and source: DYNAMIC_TOPIC_CONFIG for a topic override,
//     STATIC_BROKER_CONFIG when server.properties changed the broker default,
//     DEFAULT_CONFIG otherwise. With include_synonyms (v1+) each entry lists
//     its synonyms in Kafka's order of precedence: the topic override, the
//     broker key (e.g. log.retention.ms) and the default. ConfigNames
//     filters (unknown names are left out, as in Kafka); an unknown topic is
//     UNKNOWN_TOPIC_OR_PARTITION, an invalid name INVALID_TOPIC_EXCEPTION.
//   - BROKER resources named by our node id: the broker's settings as
//     read-only STATIC_BROKER_CONFIG entries. An empty name (the cluster-wide
//     dynamic defaults) lists nothing: we have no dynamic broker configs.
//     Another broker id is INVALID_REQUEST, as in Kafka.
//   - Other resource types (BROKER_LOGGER, CLIENT_METRICS, GROUP) are
//     INVALID_REQUEST.
//
// Answered on the ring thread: it only reads the registry (short read
// locks, never held across I/O).
//
// Differences from Apache Kafka: documentation (v3+) is always null, even
// when include_documentation is set; the broker resource lists the keys
// ringbroker has (not Kafka's ~200), all as STATIC_BROKER_CONFIG whether or
// not server.properties set them; no sensitive keys exist.

import (
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(api{key: int16(kmsg.DescribeConfigs), min: 0, max: 4, serve: (*Broker).serveDescribeConfigs})
}

// configEntry is one described config with its synonyms (first = itself).
type configEntry struct {
	name     string
	value    string
	source   kmsg.ConfigSource
	readOnly bool
	typ      kmsg.ConfigType
	synonyms []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
}

// topicKeyTypes are Kafka's types of the topic keys (ConfigType, v3+).
var topicKeyTypes = map[string]kmsg.ConfigType{
	"cleanup.policy": kmsg.ConfigTypeList, "compression.type": kmsg.ConfigTypeString,
	"delete.retention.ms": kmsg.ConfigTypeLong, "file.delete.delay.ms": kmsg.ConfigTypeLong,
	"flush.messages": kmsg.ConfigTypeLong, "flush.ms": kmsg.ConfigTypeLong,
	"follower.replication.throttled.replicas": kmsg.ConfigTypeList, "index.interval.bytes": kmsg.ConfigTypeInt,
	"leader.replication.throttled.replicas": kmsg.ConfigTypeList, "local.retention.bytes": kmsg.ConfigTypeLong,
	"local.retention.ms": kmsg.ConfigTypeLong, "max.compaction.lag.ms": kmsg.ConfigTypeLong,
	"max.message.bytes": kmsg.ConfigTypeInt, "message.timestamp.after.max.ms": kmsg.ConfigTypeLong,
	"message.timestamp.before.max.ms": kmsg.ConfigTypeLong, "message.timestamp.type": kmsg.ConfigTypeString,
	"min.cleanable.dirty.ratio": kmsg.ConfigTypeDouble, "min.compaction.lag.ms": kmsg.ConfigTypeLong,
	"min.insync.replicas": kmsg.ConfigTypeInt, "preallocate": kmsg.ConfigTypeBoolean,
	"remote.storage.enable": kmsg.ConfigTypeBoolean, "retention.bytes": kmsg.ConfigTypeLong,
	"retention.ms": kmsg.ConfigTypeLong, "segment.bytes": kmsg.ConfigTypeInt,
	"segment.index.bytes": kmsg.ConfigTypeInt, "segment.jitter.ms": kmsg.ConfigTypeLong,
	"segment.ms": kmsg.ConfigTypeLong, "unclean.leader.election.enable": kmsg.ConfigTypeBoolean,
}

// topicConfigEntries describes every topic key of a topic with overrides
// configs (a snapshot). r must be non-nil.
func topicConfigEntries(r *Registry, configs map[string]string) []configEntry {
	out := make([]configEntry, 0, len(topicKeys))
	for i := range topicKeys {
		k := &topicKeys[i]
		e := configEntry{name: k.name, typ: topicKeyTypes[k.name]}
		syn := func(name, value string, src kmsg.ConfigSource) {
			v := value
			e.synonyms = append(e.synonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: name, Value: &v, Source: src})
		}
		brokerValue := r.topicDefault(k)
		_, brokerSet := r.opts.BrokerTopicDefaults[k.name]
		brokerSet = brokerSet || brokerValue != k.def
		if v, ok := configs[k.name]; ok {
			e.value, e.source = v, kmsg.ConfigSourceDynamicTopicConfig
			syn(k.name, v, kmsg.ConfigSourceDynamicTopicConfig)
		}
		if brokerSet && k.brokerKey != "" {
			if e.source == 0 {
				e.value, e.source = brokerValue, kmsg.ConfigSourceStaticBrokerConfig
			}
			syn(k.brokerKey, brokerValue, kmsg.ConfigSourceStaticBrokerConfig)
		}
		if e.source == 0 {
			e.value, e.source = k.def, kmsg.ConfigSourceDefaultConfig
		}
		defName := k.brokerKey
		if defName == "" {
			defName = k.name
		}
		syn(defName, k.def, kmsg.ConfigSourceDefaultConfig)
		out = append(out, e)
	}
	return out
}

// brokerConfigEntries lists the broker's settings (read-only, static).
func (b *Broker) brokerConfigEntries() []configEntry {
	seen := map[string]bool{}
	var out []configEntry
	add := func(name, value string, typ kmsg.ConfigType) {
		if seen[name] {
			return
		}
		seen[name] = true
		out = append(out, configEntry{name: name, value: value, source: kmsg.ConfigSourceStaticBrokerConfig, readOnly: true, typ: typ,
			synonyms: []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{{Name: name, Value: &value, Source: kmsg.ConfigSourceStaticBrokerConfig}}})
	}
	o := &b.opts
	add("node.id", strconv.Itoa(int(o.NodeID)), kmsg.ConfigTypeInt)
	add("broker.id", strconv.Itoa(int(o.NodeID)), kmsg.ConfigTypeInt)
	add("advertised.listeners", "PLAINTEXT://"+o.AdvertisedHost+":"+strconv.Itoa(int(o.AdvertisedPort)), kmsg.ConfigTypeString)
	add("auto.create.topics.enable", strconv.FormatBool(o.AutoCreateTopics), kmsg.ConfigTypeBoolean)
	add("num.partitions", strconv.Itoa(int(o.NumPartitions)), kmsg.ConfigTypeInt)
	add("default.replication.factor", "1", kmsg.ConfigTypeInt)
	add("message.max.bytes", strconv.Itoa(int(o.MessageMaxBytes)), kmsg.ConfigTypeInt)
	add("fetch.zero.copy", strconv.FormatBool(o.FetchZeroCopy), kmsg.ConfigTypeBoolean)
	if r := b.reg; r != nil {
		add("log.dirs", strings.Join(r.LogDirs(), ","), kmsg.ConfigTypeList)
		for i := range topicKeys {
			k := &topicKeys[i]
			if k.brokerKey != "" {
				add(k.brokerKey, r.topicDefault(k), topicKeyTypes[k.name])
			}
		}
		d := r.opts.Defaults
		add("append.batch.max.bytes", strconv.Itoa(d.AppendBatchMaxBytes), kmsg.ConfigTypeInt)
		add("append.linger.max.ms", strconv.FormatInt(d.AppendLingerMs, 10), kmsg.ConfigTypeLong)
		add("append.pending.max.bytes", strconv.FormatInt(d.AppendPendingMaxBytes, 10), kmsg.ConfigTypeLong)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (b *Broker) serveDescribeConfigs(req netpoll.Request, hdr proto.RequestHeader, body []byte) {
	h := &hdr
	r := kmsg.DescribeConfigsRequest{Version: h.APIVersion}
	if err := r.UnsafeReadFrom(body); err != nil {
		b.badRequest(req, h, err)
		return
	}
	resp := kmsg.DescribeConfigsResponse{Version: h.APIVersion}
	nodeName := strconv.Itoa(int(b.opts.NodeID))
	for _, res := range r.Resources {
		rr := kmsg.DescribeConfigsResponseResource{ResourceType: res.ResourceType, ResourceName: res.ResourceName}
		var entries []configEntry
		switch res.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if err := ValidateTopicName(res.ResourceName); err != nil {
				rr.ErrorCode, rr.ErrorMessage = kafkaError(err)
				break
			}
			v := lookupTopics(b.reg, []string{res.ResourceName}, nil)[0]
			if v.t == nil {
				rr.ErrorCode, rr.ErrorMessage = kerr.UnknownTopicOrPartition.Code, errMsg("topic "+res.ResourceName+" does not exist")
				break
			}
			entries = topicConfigEntries(b.reg, v.configs)
		case kmsg.ConfigResourceTypeBroker:
			switch res.ResourceName {
			case "":
				// cluster-wide dynamic defaults: none
			case nodeName:
				entries = b.brokerConfigEntries()
			default:
				rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, errMsg("unexpected broker id, expected "+nodeName+" or empty string, but received "+res.ResourceName)
			}
		default:
			rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, errMsg("unsupported resource type "+res.ResourceType.String())
		}
		for _, e := range entries {
			if res.ConfigNames != nil && !containsString(res.ConfigNames, e.name) {
				continue
			}
			value := e.value
			c := kmsg.DescribeConfigsResponseResourceConfig{
				Name: e.name, Value: &value, ReadOnly: e.readOnly,
				IsDefault: e.source == kmsg.ConfigSourceDefaultConfig, Source: e.source, ConfigType: e.typ,
			}
			if r.IncludeSynonyms {
				c.ConfigSynonyms = e.synonyms
			}
			rr.Configs = append(rr.Configs, c)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	b.replyMsg(req, h, &resp)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
