package broker

// Dynamic TLS key and trust stores (issue 19): IncrementalAlterConfigs of
// a BROKER resource naming this node, with listener.name.<l>.ssl.* keys
// of config.DynamicSSLKeys, changes the listener's certificates at run
// time, as Kafka's DynamicBrokerConfig reconfigures a listener's
// SslFactory: the new stores are loaded and checked first (they load, the
// key matches its certificate, the subject and alternative names are the
// served certificate's unless ssl.allow.dn.changes / ssl.allow.san.changes
// say otherwise), then stored (dynamic_tls_store.go: the local store, or
// the metadata log in a cluster; secrets encrypted with
// password.encoder.secret), and only then served to new connections; open
// connections keep their session. A stored change is served again after a
// restart. A change that does not check out is INVALID_REQUEST (Kafka's
// ConfigAdminManager code for a dynamic config failing validation) and
// changes nothing (every resource of the request is checked before any is
// applied; validate_only applies none).
//
// Kafka's rules kept: per broker only (the resource name "" is
// INVALID_REQUEST: "broker id must be specified"); only with the listener
// prefix (an unprefixed ssl.keystore.location is INVALID_REQUEST); SET and
// DELETE (back to server.properties), APPEND/SUBTRACT INVALID_CONFIG. The
// legacy AlterConfigs (key 33) makes the broker's dynamic TLS keys exactly
// those it names (replaceTLS).
//
// Differences from Apache Kafka: in a cluster the request is checked by
// the node it names (not forwarded by another node), which then forwards
// the change to the controller. DescribeConfigs of the broker lists the
// values in force as DYNAMIC_BROKER_CONFIG (secrets without their value).

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/config"
)

// DynamicTLS changes TLS listeners' stores at run time (the daemon's TLS
// listeners, cmd/ringbrokerd/tls.go).
type DynamicTLS interface {
	// AlterTLS applies ops (full listener.name.<l>.ssl.* key to its new
	// value; nil: back to server.properties) to the listeners they name,
	// all or none; with validateOnly it only checks. Once every listener
	// touched has loaded and checked its new stores, persist (when not
	// nil) gets the dynamic values that will be in force, and only if it
	// succeeds are they served. Safe for concurrent use; changes are
	// serialised.
	AlterTLS(ops map[string]*string, validateOnly bool, persist func(next map[string]string) error) error
	// ReplaceTLS makes next (full keys to values) the dynamic values in
	// force, all or none: a start's stored set, or the metadata image's.
	ReplaceTLS(next map[string]string) error
	// DynamicTLSConfigs are the values in force that AlterTLS set (full
	// keys), for DescribeConfigs.
	DynamicTLSConfigs() map[string]string
}

// dynamicTLSDescribed describes the TLS keys set through
// IncrementalAlterConfigs, as DYNAMIC_BROKER_CONFIG; secrets without
// their value, as Kafka answers a password.
func (b *Broker) dynamicTLSDescribed() []config.Described {
	if b.opts.DynamicTLS == nil {
		return nil
	}
	var out []config.Described
	for k, v := range b.opts.DynamicTLS.DynamicTLSConfigs() {
		_, key, _ := config.DynamicSSLKey(k)
		d := config.Described{Name: k, Source: config.SourceDynamicBroker, Type: config.TypeString,
			Doc: "Set on this broker by IncrementalAlterConfigs (stored; it outlives a restart)."}
		if key == "ssl.key.password" || key == "ssl.keystore.key" {
			d.Type = config.TypePassword
		} else {
			value := v
			d.Value = &value
		}
		d.Synonyms = []config.Synonym{{Name: k, Value: d.Value, Source: config.SourceDynamicBroker}}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// isDynamicTLSResource reports whether a BROKER resource's keys are TLS
// keys this broker handles itself (dynamicTLSOps), any of them.
func (b *Broker) isDynamicTLSResource(typ kmsg.ConfigResourceType, keys []string) bool {
	if b.opts.DynamicTLS == nil || typ != kmsg.ConfigResourceTypeBroker {
		return false
	}
	for _, k := range keys {
		if _, _, ok := config.DynamicSSLKey(k); ok || config.DynamicSSLKeys[k] {
			return true
		}
	}
	return false
}

// servedHere reports whether an admin request that is forwarded in a
// cluster is served by this node instead: an IncrementalAlterConfigs or
// AlterConfigs whose every resource is this node's dynamic TLS keys.
func (b *Broker) servedHere(r any) bool {
	type resource struct {
		typ  kmsg.ConfigResourceType
		name string
		keys []string
	}
	var resources []resource
	switch req := r.(type) {
	case *kmsg.IncrementalAlterConfigsRequest:
		for _, res := range req.Resources {
			rs := resource{typ: res.ResourceType, name: res.ResourceName}
			for _, c := range res.Configs {
				rs.keys = append(rs.keys, c.Name)
			}
			resources = append(resources, rs)
		}
	case *kmsg.AlterConfigsRequest:
		for _, res := range req.Resources {
			rs := resource{typ: res.ResourceType, name: res.ResourceName}
			for _, c := range res.Configs {
				rs.keys = append(rs.keys, c.Name)
			}
			resources = append(resources, rs)
		}
	}
	if len(resources) == 0 || b.opts.DynamicTLS == nil {
		return false
	}
	node := strconv.Itoa(int(b.opts.NodeID))
	for _, res := range resources {
		if res.typ != kmsg.ConfigResourceTypeBroker || res.name != node || len(res.keys) == 0 {
			return false
		}
		for _, k := range res.keys {
			if _, _, ok := config.DynamicSSLKey(k); !ok {
				return false
			}
		}
	}
	return true
}

// dynamicTLSOps checks a BROKER resource of TLS keys and returns its
// operations for DynamicTLS.AlterTLS.
func (b *Broker) dynamicTLSOps(name string, configs []kmsg.IncrementalAlterConfigsRequestResourceConfig, duplicate bool) (map[string]*string, error) {
	if duplicate {
		return nil, fmt.Errorf("%w: duplicate resource BROKER %s in the request", kerr.InvalidRequest, name)
	}
	var keys, unprefixed, fixed []string
	seen := map[string]bool{}
	for _, c := range configs {
		if seen[c.Name] {
			return nil, fmt.Errorf("%w: duplicate config key %s", kerr.InvalidRequest, c.Name)
		}
		seen[c.Name] = true
		keys = append(keys, c.Name)
		switch _, _, ok := config.DynamicSSLKey(c.Name); {
		case ok:
		case config.DynamicSSLKeys[c.Name]:
			unprefixed = append(unprefixed, c.Name)
		default:
			fixed = append(fixed, c.Name)
		}
	}
	if node := strconv.Itoa(int(b.opts.NodeID)); name != node {
		if name == "" {
			return nil, fmt.Errorf("%w: Cannot update these configs at default cluster level, broker id must be specified: [%s]", kerr.InvalidRequest, strings.Join(keys, ", "))
		}
		return nil, fmt.Errorf("%w: unexpected broker id, expected %s or empty string, but received %s", kerr.InvalidRequest, node, name)
	}
	if len(fixed) > 0 {
		return nil, fmt.Errorf("%w: cannot update these configs dynamically: %v (ringbroker broker configs are read-only but for the listeners' TLS stores: set them in server.properties)", kerr.InvalidRequest, fixed)
	}
	if len(unprefixed) > 0 {
		return nil, fmt.Errorf("%w: These security configs can be dynamically updated only per-listener using the listener prefix: [%s]", kerr.InvalidRequest, strings.Join(unprefixed, ", "))
	}
	ops := make(map[string]*string, len(configs))
	for _, c := range configs {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return nil, fmt.Errorf("%w: null value not supported for %s %s", kerr.InvalidRequest, c.Op, c.Name)
			}
			v := *c.Value
			ops[c.Name] = &v
		case kmsg.IncrementalAlterConfigOpDelete:
			ops[c.Name] = nil
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			return nil, fmt.Errorf("%w: config %s is not a list: %s is not allowed", kerr.InvalidConfig, c.Name, c.Op)
		default:
			return nil, fmt.Errorf("%w: unknown operation %d for %s", kerr.InvalidRequest, c.Op, c.Name)
		}
	}
	return ops, nil
}

// replaceTLS is AlterConfigs (legacy, not incremental) of a BROKER
// resource of TLS keys: the keys given are set, the dynamic ones in force
// and not given go back to server.properties.
func (b *Broker) replaceTLS(res kmsg.AlterConfigsRequestResource, duplicate, validateOnly bool) error {
	configs := make([]kmsg.IncrementalAlterConfigsRequestResourceConfig, 0, len(res.Configs))
	given := map[string]bool{}
	for _, c := range res.Configs {
		configs = append(configs, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: c.Name, Op: kmsg.IncrementalAlterConfigOpSet, Value: c.Value})
		if l, k, ok := config.DynamicSSLKey(c.Name); ok {
			given[config.ListenerKey(l, k)] = true
		}
	}
	ops, err := b.dynamicTLSOps(res.ResourceName, configs, duplicate)
	if err != nil {
		return err
	}
	for k := range b.opts.DynamicTLS.DynamicTLSConfigs() {
		if !given[k] {
			ops[k] = nil
		}
	}
	return b.alterTLS(ops, validateOnly)
}
