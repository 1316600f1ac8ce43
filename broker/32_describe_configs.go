package broker

// DescribeConfigs (key 32), versions 0-4.
//
// Behaviour: the entries, their values, sources, types, synonyms and
// documentation come from the config package's key table with Apache
// Kafka's rules (config/describe.go, after kafka.server.ConfigHelper): an
// entry's synonyms are the topic override (DYNAMIC_TOPIC_CONFIG), then the
// server.properties keys that default it as set there (STATIC_BROKER_CONFIG,
// e.g. log.segment.bytes for segment.bytes), then their built-in defaults
// (DEFAULT_CONFIG), cut as Kafka cuts them (see config/describe.go for
// log.retention.hours); the entry's source is its first synonym's.
//   - TOPIC resources: every topic key we accept. ConfigNames filters
//     (unknown names are left out, as in Kafka); an unknown topic is
//     UNKNOWN_TOPIC_OR_PARTITION, an invalid name INVALID_TOPIC_EXCEPTION.
//   - BROKER resources named by our node id: every server.properties key
//     (aliases such as log.retention.hours included), read-only, and the
//     Kafka broker keys that default topic keys we store without taking the
//     broker key (log.cleaner.*), with Kafka's default. An empty name (the
//     cluster-wide dynamic defaults) lists nothing: we have no dynamic
//     broker configs. Another broker id is INVALID_REQUEST, as in Kafka.
//   - Other resource types (BROKER_LOGGER, CLIENT_METRICS, GROUP) are
//     INVALID_REQUEST.
//   - include_documentation (v3+): each key's doc from the key table.
//
// Answered on the ring thread: it only reads the registry (short read
// locks, never held across I/O) and the read-only config.
//
// Differences from Apache Kafka: the broker resource lists the keys
// ringbroker has (not Kafka's ~200); a --set value is STATIC_BROKER_CONFIG;
// an alias shadowed by a higher-precedence key in the same file is not
// listed as a synonym; no sensitive keys exist.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.DescribeConfigs, 0, 4, aliasing, (*Broker).serveDescribeConfigs))
}

// brokerConfig is the configuration DescribeConfigs reports: the
// registry's (the daemon's server.properties), else the defaults.
func (b *Broker) brokerConfig() *config.Config {
	if b.reg != nil {
		return b.reg.cfg
	}
	return config.Default()
}

func (b *Broker) serveDescribeConfigs(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.DescribeConfigsRequest) {
	h := &hdr
	resp := kmsg.DescribeConfigsResponse{Version: h.APIVersion}
	nodeName := strconv.Itoa(int(b.opts.NodeID))
	for _, res := range r.Resources {
		rr := kmsg.DescribeConfigsResponseResource{ResourceType: res.ResourceType, ResourceName: res.ResourceName}
		if code := b.configAuthz(req, res.ResourceType, res.ResourceName, acl.OpDescribeConfigs); code != 0 { // authz.go
			rr.ErrorCode, rr.ErrorMessage = code, errMsg("Authorization failed.")
			resp.Resources = append(resp.Resources, rr)
			continue
		}
		var entries []config.Described
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
			entries = b.reg.cfg.DescribeTopic(v.configs)
		case kmsg.ConfigResourceTypeBroker:
			switch res.ResourceName {
			case "":
				// cluster-wide dynamic defaults: none
			case nodeName:
				entries = append(b.brokerConfig().DescribeBroker(), b.dynamicTLSDescribed()...) // dynamic_tls.go
			default:
				rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, errMsg("unexpected broker id, expected "+nodeName+" or empty string, but received "+res.ResourceName)
			}
		default:
			rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, errMsg("unsupported resource type "+res.ResourceType.String())
		}
		for _, e := range entries {
			if res.ConfigNames != nil && !containsString(res.ConfigNames, e.Name) {
				continue
			}
			c := kmsg.DescribeConfigsResponseResourceConfig{
				Name: e.Name, Value: e.Value, ReadOnly: e.ReadOnly,
				IsDefault: e.Source == config.SourceDefault, Source: kmsg.ConfigSource(e.Source), ConfigType: kmsg.ConfigType(e.Type),
			}
			if r.IncludeSynonyms {
				for _, syn := range e.Synonyms {
					c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: syn.Name, Value: syn.Value, Source: kmsg.ConfigSource(syn.Source)})
				}
			}
			if r.IncludeDocumentation {
				doc := e.Doc
				c.Documentation = &doc
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
