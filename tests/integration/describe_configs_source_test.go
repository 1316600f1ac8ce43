//go:build linux

package integration

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeConfigsSources: a topic key the broker config does not set is
// DEFAULT_CONFIG (it was STATIC_BROKER_CONFIG for compression.type,
// cleanup.policy and max.message.bytes, so kafka-topics.sh --describe showed
// them as overrides on every topic), one server.properties sets is
// STATIC_BROKER_CONFIG, a topic override DYNAMIC_TOPIC_CONFIG.
func TestDescribeConfigsSources(t *testing.T) {
	keys := []string{"compression.type", "cleanup.policy", "max.message.bytes"}
	forEachBackend(t, func(t *testing.T, backend string) {
		check := func(t *testing.T, b *Broker, topic string, want map[string]kmsg.ConfigSource) {
			t.Helper()
			adm := kadm.NewClient(newClient(t, b.Addr))
			rcs, err := adm.DescribeTopicConfigs(context.Background(), topic)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := rcs.On(topic, nil)
			if err != nil || rc.Err != nil {
				t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
			}
			got := map[string]kmsg.ConfigSource{}
			for _, c := range rc.Configs {
				got[c.Key] = c.Source
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s %s: source %v, want %v", topic, k, got[k], w)
				}
			}
		}
		t.Run("defaults", func(t *testing.T) {
			b := startBroker(t, backend, nil)
			createTopic(t, b.Addr, "plain", 1, nil)
			want := map[string]kmsg.ConfigSource{}
			for _, k := range keys {
				want[k] = kmsg.ConfigSourceDefaultConfig
			}
			check(t, b, "plain", want)
		})
		t.Run("broker and topic set", func(t *testing.T) {
			b := startBroker(t, backend, map[string]string{"compression.type": "lz4", "message.max.bytes": "2000000"})
			createTopic(t, b.Addr, "over", 1, map[string]string{"cleanup.policy": "compact", "compression.type": "zstd"})
			check(t, b, "over", map[string]kmsg.ConfigSource{
				"compression.type":  kmsg.ConfigSourceDynamicTopicConfig,
				"cleanup.policy":    kmsg.ConfigSourceDynamicTopicConfig,
				"max.message.bytes": kmsg.ConfigSourceStaticBrokerConfig,
			})
			createTopic(t, b.Addr, "inherit", 1, nil)
			check(t, b, "inherit", map[string]kmsg.ConfigSource{
				"compression.type":  kmsg.ConfigSourceStaticBrokerConfig,
				"cleanup.policy":    kmsg.ConfigSourceDefaultConfig,
				"max.message.bytes": kmsg.ConfigSourceStaticBrokerConfig,
			})
		})
	})
}
