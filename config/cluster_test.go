package config

import (
	"strings"
	"testing"
)

func TestClusterKeys(t *testing.T) {
	base := map[string]string{
		"listeners":                      "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
		"controller.listener.names":      "CONTROLLER",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
	}
	build := func(extra map[string]string) (*Config, error) {
		c := Default()
		for _, m := range []map[string]string{base, extra} {
			for k, v := range m {
				if err := c.Set(k, v); err != nil {
					return nil, err
				}
			}
		}
		return c, c.Validate()
	}
	c, err := build(map[string]string{"process.roles": "controller,broker", "node.id": "2", "cluster.id": "c1",
		"controller.quorum.voters": "1@127.0.0.1:9093, 2@127.0.0.2:9093,3@[::1]:9093"})
	if err != nil {
		t.Fatal(err)
	}
	if b, ctl := c.Roles(); !b || !ctl || !c.Clustered() || len(c.QuorumVoters) != 3 || c.QuorumVoters[2].Host != "::1" {
		t.Errorf("roles %v %v voters %v", b, ctl, c.QuorumVoters)
	}
	if got := c.ControllerListeners(); len(got) != 1 || got[0].Port != 9093 || len(c.Listeners) != 1 {
		t.Errorf("controller listeners %v, client listeners %v", got, c.Listeners)
	}
	if c.MetadataDir() != c.LogDirs[0] || c.BrokerSessionTimeoutMs != 9000 || c.BrokerHeartbeatIntervalMs != 2000 || !c.AutoLeaderRebalanceEnable {
		t.Errorf("defaults: dir %s session %d heartbeat %d rebalance %v", c.MetadataDir(), c.BrokerSessionTimeoutMs, c.BrokerHeartbeatIntervalMs, c.AutoLeaderRebalanceEnable)
	}
	for _, tc := range []struct {
		extra map[string]string
		want  string
	}{
		{map[string]string{"process.roles": "broker,controller", "node.id": "1"}, "neither controller.quorum.voters nor"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.bootstrap.servers": "h:9093", "controller.quorum.voters": "1@h:9093"}, "both set"},
		{map[string]string{"process.roles": "broker", "node.id": "1", "controller.quorum.bootstrap.servers": "h:9093"}, "broker-only"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.bootstrap.servers": "h:9093", "controller.quorum.standalone": "true", "controller.quorum.initial.controllers": "1@h:9093"}, "exclusive"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "2", "controller.quorum.bootstrap.servers": "h:9093", "controller.quorum.initial.controllers": "1@h:9093"}, "not in controller.quorum.initial.controllers"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@h:9093", "controller.quorum.standalone": "true"}, "need controller.quorum.bootstrap.servers"},
		{map[string]string{"controller.quorum.bootstrap.servers": "0.0.0.0:9093"}, "reach"},
		{map[string]string{"controller.quorum.bootstrap.servers": "h"}, "missing port"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "4", "controller.quorum.voters": "1@h:9093"}, "not in controller.quorum.voters"},
		{map[string]string{"process.roles": "broker", "node.id": "1", "controller.quorum.voters": "1@h:9093"}, "lacks controller"},
		{map[string]string{"process.roles": "controller", "node.id": "1", "controller.quorum.voters": "1@h:9093"}, "controller-only"},
		{map[string]string{"process.roles": "broker,bogus"}, "unknown role"},
		{map[string]string{"controller.quorum.voters": "1@h:9093,1@g:9093"}, "appears twice"},
		{map[string]string{"controller.quorum.voters": "x@h:9093"}, "not a node id"},
		{map[string]string{"controller.quorum.voters": "1@0.0.0.0:9093"}, "reach"},
		{map[string]string{"controller.quorum.voters": "1@h:0"}, "port"},
		{map[string]string{"cluster.id": "a b"}, "without spaces"},
		// The quorum's connections serve PLAINTEXT and SSL, no SASL.
		{map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@h:9093",
			"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL"}, "PLAINTEXT and SSL only"},
		{map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@h:9093",
			"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"}, "only PEM key stores"},
	} {
		_, err := build(tc.extra)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.extra, err, tc.want)
		}
	}
	// A dynamic quorum: standalone, initial controllers, or joining.
	for _, extra := range []map[string]string{
		{"controller.quorum.standalone": "true"},
		{"controller.quorum.initial.controllers": "1@127.0.0.1:9093,2@127.0.0.2:9093"},
		{},
	} {
		extra["process.roles"], extra["node.id"], extra["controller.quorum.bootstrap.servers"] = "broker,controller", "1", "127.0.0.1:9093, 127.0.0.2:9093"
		c, err := build(extra)
		if err != nil || !c.DynamicQuorum() || len(c.QuorumBootstrapServers) != 2 {
			t.Errorf("%v: %v", extra, err)
		}
	}
	// No process.roles: the single node of before, whatever else is set.
	c, err = build(map[string]string{"controller.quorum.voters": "1@h:9093"})
	if err != nil || c.Clustered() {
		t.Errorf("single node: %v clustered=%v", err, c != nil && c.Clustered())
	}
}

// TestReplicaSelectorClass: empty (leader only) and Kafka's rack-aware
// selector are taken; any other class name is refused with the one we have.
func TestReplicaSelectorClass(t *testing.T) {
	c := Default()
	if c.ReplicaSelectorClass != "" {
		t.Fatalf("default replica.selector.class %q, want empty", c.ReplicaSelectorClass)
	}
	if err := c.Set("replica.selector.class", " "+RackAwareReplicaSelector+" "); err != nil || c.ReplicaSelectorClass != RackAwareReplicaSelector {
		t.Fatalf("rack-aware selector: %v (%q)", err, c.ReplicaSelectorClass)
	}
	err := c.Set("replica.selector.class", "com.example.MySelector")
	if err == nil || !strings.Contains(err.Error(), "com.example.MySelector") || !strings.Contains(err.Error(), RackAwareReplicaSelector) {
		t.Fatalf("unknown class: %v", err)
	}
	if err := c.Set("replica.selector.class", ""); err != nil || c.ReplicaSelectorClass != "" {
		t.Fatalf("empty: %v (%q)", err, c.ReplicaSelectorClass)
	}
}
