package broker

// IncrementalAlterConfigs (key 44), versions 0-1.
//
// Behaviour: for a TOPIC resource the operations are applied in order to
// the topic's current overrides, then the result is validated, persisted
// and applied to the open logs (on the admin worker, off the ring thread):
//   - SET: set the key (null value: INVALID_REQUEST);
//   - DELETE: drop the override (the default applies again);
//   - APPEND / SUBTRACT: only for list keys (cleanup.policy and the
//     replication throttle lists), else INVALID_CONFIG; the value is a
//     comma-separated list of items added (if absent) to, or removed from,
//     the current value (the override, else the default, as Kafka does);
//   - an unknown key or a bad resulting value: INVALID_CONFIG; a key named
//     twice in one resource, or an unknown operation: INVALID_REQUEST.
//
// Resource-level checks and BROKER resources are as in AlterConfigs
// (33_alter_configs.go): every broker key is read-only, INVALID_REQUEST,
// but for a TLS listener's key and trust store keys
// (listener.name.<l>.ssl.keystore.location and the like), which change
// the listener's certificates at run time (dynamic_tls.go).
// validate_only checks everything and changes nothing.
//
// Differences from Apache Kafka: no other dynamic broker configs; no
// alter.config.policy; a full admin queue answers REQUEST_TIMED_OUT.

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(adminDecoded(kmsg.IncrementalAlterConfigs, 0, 1, (*Broker).incrementalAlterConfigs))
}

// incrementalAlterConfigs runs on the admin worker (adminDecoded).
func (b *Broker) incrementalAlterConfigs(req netpoll.Request, h *proto.RequestHeader, r *kmsg.IncrementalAlterConfigsRequest) {
	resp := kmsg.IncrementalAlterConfigsResponse{Version: h.APIVersion}
	dups := duplicateResources(len(r.Resources), func(i int) (kmsg.ConfigResourceType, string) {
		return r.Resources[i].ResourceType, r.Resources[i].ResourceName
	})
	// The TLS stores of every resource are checked together and applied
	// only when all check out (dynamic_tls.go).
	tlsOps := map[string]*string{}
	var tlsAt []int
	for i, res := range r.Resources {
		out := kmsg.IncrementalAlterConfigsResponseResource{ResourceType: res.ResourceType, ResourceName: res.ResourceName}
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
			ops, err := b.dynamicTLSOps(res.ResourceName, res.Configs, dups[i])
			out.ErrorCode, out.ErrorMessage = kafkaError(err)
			if err == nil {
				for k, v := range ops {
					tlsOps[k] = v
				}
				tlsAt = append(tlsAt, len(resp.Resources))
			}
			resp.Resources = append(resp.Resources, out)
			continue
		}
		out.ErrorCode, out.ErrorMessage = b.alterResourceCommon(res.ResourceType, res.ResourceName, keys, dups[i])
		if out.ErrorCode == 0 && res.ResourceType == kmsg.ConfigResourceTypeTopic {
			out.ErrorCode, out.ErrorMessage = kafkaError(b.incrementalAlterTopic(res.ResourceName, res.Configs, r.ValidateOnly))
		}
		resp.Resources = append(resp.Resources, out)
	}
	if len(tlsAt) > 0 {
		code, msg := kafkaError(b.alterTLS(tlsOps, r.ValidateOnly))
		for _, i := range tlsAt {
			resp.Resources[i].ErrorCode, resp.Resources[i].ErrorMessage = code, msg
		}
	}
	b.replyMsg(req, h, &resp)
}

// incrementalAlterTopic applies ops to a topic's overrides.
func (b *Broker) incrementalAlterTopic(name string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig, validateOnly bool) error {
	cur := lookupTopics(b.reg, []string{name}, nil)[0]
	if cur.t == nil {
		return fmt.Errorf("%w: topic %s does not exist", kerr.UnknownTopicOrPartition, name)
	}
	configs := make(map[string]string, len(cur.configs)+len(ops))
	for k, v := range cur.configs {
		configs[k] = v
	}
	for _, op := range ops {
		if !config.IsTopicKey(op.Name) {
			return fmt.Errorf("%w: unknown topic config name %s", kerr.InvalidConfig, op.Name)
		}
		if op.Op != kmsg.IncrementalAlterConfigOpDelete && op.Value == nil {
			return fmt.Errorf("%w: null value not supported for %s %s", kerr.InvalidRequest, op.Op, op.Name)
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			configs[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(configs, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !isListKey(op.Name) {
				return fmt.Errorf("%w: config %s is not a list: %s is not allowed", kerr.InvalidConfig, op.Name, op.Op)
			}
			current, ok := configs[op.Name]
			if !ok {
				current = b.reg.cfg.TopicDefault(op.Name)
			}
			items := splitList(current)
			for _, v := range splitList(*op.Value) {
				at := indexOf(items, v)
				if op.Op == kmsg.IncrementalAlterConfigOpAppend && at < 0 {
					items = append(items, v)
				} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract && at >= 0 {
					items = append(items[:at], items[at+1:]...)
				}
			}
			configs[op.Name] = strings.Join(items, ",")
		default:
			return fmt.Errorf("%w: unknown operation %d for %s", kerr.InvalidRequest, op.Op, op.Name)
		}
	}
	return b.setTopicConfigs(name, configs, validateOnly)
}

// isListKey reports whether a topic key holds a comma-separated list
// (APPEND and SUBTRACT apply to it).
func isListKey(name string) bool { return config.TopicKeyType(name) == config.TypeList }

// splitList splits a list value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
