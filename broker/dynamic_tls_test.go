package broker

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type fakeDynamicTLS struct{ got map[string]*string }

func (f *fakeDynamicTLS) AlterTLS(ops map[string]*string, _ bool, _ func(map[string]string) error) error {
	f.got = ops
	return nil
}
func (f *fakeDynamicTLS) ReplaceTLS(map[string]string) error   { return nil }
func (f *fakeDynamicTLS) DynamicTLSConfigs() map[string]string { return nil }

// TestDynamicTLSOps: the request-level rules of a BROKER resource of TLS
// keys (the stores themselves are checked by DynamicTLS).
func TestDynamicTLSOps(t *testing.T) {
	b := &Broker{opts: Options{NodeID: 7, DynamicTLS: &fakeDynamicTLS{}}}
	v := "/etc/broker.pem"
	const key = "listener.name.ssl.ssl.keystore.location"
	cfg := func(name string, op kmsg.IncrementalAlterConfigOp, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: op, Value: value}
	}
	for _, c := range []struct {
		what    string
		name    string
		configs []kmsg.IncrementalAlterConfigsRequestResourceConfig
		dup     bool
		want    *kerr.Error
	}{
		{"set", "7", []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg(key, kmsg.IncrementalAlterConfigOpSet, &v)}, false, nil},
		{"delete", "7", []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg(key, kmsg.IncrementalAlterConfigOpDelete, nil)}, false, nil},
		{"append", "7", []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg(key, kmsg.IncrementalAlterConfigOpAppend, &v)}, false, kerr.InvalidConfig},
		{"null set", "7", []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg(key, kmsg.IncrementalAlterConfigOpSet, nil)}, false, kerr.InvalidRequest},
		{"twice", "7", []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg(key, kmsg.IncrementalAlterConfigOpSet, &v), cfg(key, kmsg.IncrementalAlterConfigOpDelete, nil)}, false, kerr.InvalidRequest},
		{"with a static key", "7", []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg(key, kmsg.IncrementalAlterConfigOpSet, &v), cfg("log.retention.ms", kmsg.IncrementalAlterConfigOpSet, &v)}, false, kerr.InvalidRequest},
		{"unprefixed", "7", []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg("ssl.truststore.location", kmsg.IncrementalAlterConfigOpSet, &v)}, false, kerr.InvalidRequest},
		{"cluster default", "", []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg(key, kmsg.IncrementalAlterConfigOpSet, &v)}, false, kerr.InvalidRequest},
		{"another broker", "8", []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg(key, kmsg.IncrementalAlterConfigOpSet, &v)}, false, kerr.InvalidRequest},
		{"duplicate resource", "7", []kmsg.IncrementalAlterConfigsRequestResourceConfig{cfg(key, kmsg.IncrementalAlterConfigOpSet, &v)}, true, kerr.InvalidRequest},
	} {
		ops, err := b.dynamicTLSOps(c.name, c.configs, c.dup)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.what, err)
		case c.want == nil && len(ops) != 1:
			t.Errorf("%s: ops %v", c.what, ops)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.what, err, c.want)
		}
	}
	// Served here in a cluster only when every resource is this node's
	// TLS keys.
	req := func(name string, keys ...string) *kmsg.IncrementalAlterConfigsRequest {
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: name}
		for _, k := range keys {
			res.Configs = append(res.Configs, cfg(k, kmsg.IncrementalAlterConfigOpSet, &v))
		}
		r.Resources = append(r.Resources, res)
		return r
	}
	if !b.servedHere(req("7", key)) {
		t.Error("this node's TLS key is forwarded")
	}
	for what, r := range map[string]*kmsg.IncrementalAlterConfigsRequest{
		"another node": req("8", key), "the default": req("", key), "a static key": req("7", key, "log.retention.ms"),
	} {
		if b.servedHere(r) {
			t.Errorf("%s: served here, want forwarded", what)
		}
	}
	if b.servedHere(kmsg.NewPtrCreateTopicsRequest()) {
		t.Error("CreateTopics served here")
	}
}
