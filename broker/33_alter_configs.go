package broker

// AlterConfigs (key 33), versions 0-2: the legacy, non-incremental form.
//
// Behaviour: a TOPIC resource's overrides are replaced by exactly the
// configs given (keys left out return to their defaults), validated as in
// CreateTopics (unknown key or bad value: INVALID_CONFIG; null value:
// INVALID_REQUEST; a key twice: INVALID_REQUEST), persisted (topic table
// fsync'd) and applied to the open logs, on the admin worker. Unknown
// topic: UNKNOWN_TOPIC_OR_PARTITION; invalid name: INVALID_TOPIC_EXCEPTION;
// a resource named twice in one request: INVALID_REQUEST. validate_only
// checks everything and changes nothing. Internal topics
// (__consumer_offsets) take config changes like any other, as in Kafka.
//
// BROKER resources: every broker key is read-only here (server.properties
// only), so altering any key is INVALID_REQUEST, as Kafka answers for keys
// it cannot update dynamically; an empty config list is a no-op success.
// The exception is a TLS listener's key and trust store keys
// (dynamic_tls.go): the broker's dynamic ones become exactly those given.
// A broker name other than ours or "": INVALID_REQUEST. Other resource
// types: INVALID_REQUEST.
//
// Differences from Apache Kafka: no dynamic broker configs but the TLS
// stores (Kafka can change some more, e.g. log.retention.ms cluster-wide),
// and an empty config list does not clear them; no
// alter.config.policy; a full admin queue answers REQUEST_TIMED_OUT.

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(adminDecoded(kmsg.AlterConfigs, 0, 2, (*Broker).alterConfigs))
}

// alterConfigs runs on the admin worker (adminDecoded).
func (b *Broker) alterConfigs(req netpoll.Request, h *proto.RequestHeader, r *kmsg.AlterConfigsRequest) {
	resp := kmsg.AlterConfigsResponse{Version: h.APIVersion}
	dups := duplicateResources(len(r.Resources), func(i int) (kmsg.ConfigResourceType, string) {
		return r.Resources[i].ResourceType, r.Resources[i].ResourceName
	})
	for i, res := range r.Resources {
		out := kmsg.AlterConfigsResponseResource{ResourceType: res.ResourceType, ResourceName: res.ResourceName}
		keys := make([]string, len(res.Configs))
		for j, c := range res.Configs {
			keys[j] = c.Name
		}
		if code := b.configAuthz(req, res.ResourceType, res.ResourceName, acl.OpAlterConfigs); code != 0 { // authz.go
			out.ErrorCode, out.ErrorMessage = code, errMsg("Authorization failed.")
			resp.Resources = append(resp.Resources, out)
			continue
		}
		if b.isDynamicTLSResource(res.ResourceType, keys) {
			// dynamic_tls.go: the broker's dynamic TLS keys become exactly
			// those given; one set in force and not given is deleted.
			out.ErrorCode, out.ErrorMessage = kafkaError(b.replaceTLS(res, dups[i], r.ValidateOnly))
			resp.Resources = append(resp.Resources, out)
			continue
		}
		out.ErrorCode, out.ErrorMessage = b.alterResourceCommon(res.ResourceType, res.ResourceName, keys, dups[i])
		if out.ErrorCode == 0 && res.ResourceType == kmsg.ConfigResourceTypeTopic {
			configs := make(map[string]string, len(res.Configs))
			for _, c := range res.Configs {
				if c.Value == nil {
					out.ErrorCode, out.ErrorMessage = kerr.InvalidRequest.Code, errMsg("null value not supported for topic config "+c.Name)
					break
				}
				configs[c.Name] = *c.Value
			}
			if out.ErrorCode == 0 {
				out.ErrorCode, out.ErrorMessage = kafkaError(b.setTopicConfigs(res.ResourceName, configs, r.ValidateOnly))
			}
		}
		resp.Resources = append(resp.Resources, out)
	}
	b.replyMsg(req, h, &resp)
}

// duplicateResources marks resources named more than once in a request.
func duplicateResources(n int, at func(int) (kmsg.ConfigResourceType, string)) []bool {
	type key struct {
		t    kmsg.ConfigResourceType
		name string
	}
	count := make(map[key]int, n)
	for i := 0; i < n; i++ {
		t, name := at(i)
		count[key{t, name}]++
	}
	out := make([]bool, n)
	for i := range out {
		t, name := at(i)
		out[i] = count[key{t, name}] > 1
	}
	return out
}

// alterResourceCommon runs the checks shared by AlterConfigs and
// IncrementalAlterConfigs: duplicates, resource type, broker resources
// (answered here in full), topic name and duplicate keys. A zero code for
// a TOPIC resource means "go on and apply".
func (b *Broker) alterResourceCommon(typ kmsg.ConfigResourceType, name string, keys []string, duplicate bool) (int16, *string) {
	if duplicate {
		return kerr.InvalidRequest.Code, errMsg("duplicate resource " + typ.String() + " " + name + " in the request")
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			return kerr.InvalidRequest.Code, errMsg("duplicate config key " + k)
		}
		seen[k] = true
	}
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if err := ValidateTopicName(name); err != nil {
			return kafkaError(err)
		}
		if b.reg == nil {
			return kerr.UnknownTopicOrPartition.Code, errMsg("topic " + name + " does not exist")
		}
		return 0, nil
	case kmsg.ConfigResourceTypeBroker:
		node := strconv.Itoa(int(b.opts.NodeID))
		if name != "" && name != node {
			return kerr.InvalidRequest.Code, errMsg("unexpected broker id, expected " + node + " or empty string, but received " + name)
		}
		if len(keys) > 0 {
			return kerr.InvalidRequest.Code, errMsg(fmt.Sprintf("cannot update these configs dynamically: %v (ringbroker broker configs are read-only: set them in server.properties)", keys))
		}
		return 0, nil
	default:
		return kerr.InvalidRequest.Code, errMsg("unsupported resource type " + typ.String())
	}
}

// setTopicConfigs replaces a topic's overrides via the registry, which
// validates (INVALID_CONFIG), persists and applies them to the open logs.
func (b *Broker) setTopicConfigs(name string, configs map[string]string, validateOnly bool) error {
	if b.reg.Topic(name) == nil {
		return fmt.Errorf("%w: topic %s does not exist", kerr.UnknownTopicOrPartition, name)
	}
	for k := range configs {
		if !config.IsTopicKey(k) {
			return fmt.Errorf("%w: unknown topic config name %s", kerr.InvalidConfig, k)
		}
	}
	return b.reg.SetTopicConfigs(name, configs, validateOnly)
}
