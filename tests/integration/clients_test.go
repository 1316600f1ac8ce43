//go:build linux

package integration

// Real clients against a fresh broker: each proves the broker's ApiVersions and
// Metadata answers are what that client library expects from Apache Kafka.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const clientTimeout = 30 * time.Second

// TestKcatListsBroker: librdkafka's metadata listing shows exactly this broker.
func TestKcatListsBroker(t *testing.T) {
	kcat := requireTool(t, "kcat")
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		out, err := runClient(t, clientTimeout, nil, kcat, "-b", b.Addr, "-L", "-m", "10")
		if err != nil {
			t.Fatalf("kcat -L: %v", err)
		}
		t.Logf("kcat -L:\n%s", out)
		if !regexp.MustCompile(`(?m)^\s*1 brokers:\s*$`).MatchString(out) {
			t.Errorf("kcat -L output lacks %q", "1 brokers:")
		}
		want := regexp.MustCompile(`(?m)^\s*broker 0 at ` + regexp.QuoteMeta(b.Addr) + `\b`)
		if !want.MatchString(out) {
			t.Errorf("kcat -L output lacks %q", "broker 0 at "+b.Addr)
		}
	})
}

// newAdmin returns a franz-go admin client seeded with addr, closed at test end.
func newAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.RequestRetries(0),
		kgo.RetryTimeout(5*time.Second),
		kgo.DialTimeout(5*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// brokerMetadata fetches metadata through kadm and checks it names exactly this
// broker as node 0 (host, port, controller) with a cluster id; it returns the id.
func brokerMetadata(t *testing.T, b *Broker) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	adm := newAdmin(t, b.Addr)
	m, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("kadm BrokerMetadata: %v", err)
	}
	t.Logf("kadm BrokerMetadata: cluster=%q controller=%d brokers=%+v", m.Cluster, m.Controller, m.Brokers)
	if len(m.Brokers) != 1 {
		t.Fatalf("metadata lists %d brokers, want 1: %+v", len(m.Brokers), m.Brokers)
	}
	br := m.Brokers[0]
	if br.NodeID != 0 || br.Host != "127.0.0.1" || br.Port != int32(b.Port) {
		t.Errorf("broker = node %d at %s:%d, want node 0 at %s", br.NodeID, br.Host, br.Port, b.Addr)
	}
	if m.Controller != 0 {
		t.Errorf("controller id = %d, want 0 (the only broker; kafka-python's admin client asks the controller)", m.Controller)
	}
	if m.Cluster == "" {
		t.Errorf("metadata has no cluster id")
	}

	// Metadata for all topics: this issue has none yet, and the answer must still
	// carry the same broker and cluster.
	all, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatalf("kadm Metadata: %v", err)
	}
	if all.Cluster != m.Cluster || len(all.Brokers) != 1 || all.Brokers[0].NodeID != 0 {
		t.Errorf("kadm Metadata (all topics) = cluster %q brokers %+v, want cluster %q and node 0", all.Cluster, all.Brokers, m.Cluster)
	}
	t.Logf("kadm Metadata: %d topics", len(all.Topics))
	return m.Cluster
}

// TestFranzGoApiVersionsAndMetadata: kadm reads ApiVersions and broker metadata.
func TestFranzGoApiVersionsAndMetadata(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
		defer cancel()
		adm := newAdmin(t, b.Addr)
		vs, err := adm.ApiVersions(ctx)
		if err != nil {
			t.Fatalf("kadm ApiVersions: %v", err)
		}
		v, ok := vs[0]
		if !ok || len(vs) != 1 {
			t.Fatalf("kadm ApiVersions answered for nodes %v, want exactly node 0", keysOf(vs))
		}
		if v.Err != nil {
			t.Fatalf("kadm ApiVersions node 0: %v", v.Err)
		}
		var listed []string
		v.EachKeySorted(func(key, lo, hi int16) {
			listed = append(listed, fmt.Sprintf("%s(%d) v%d-%d", kmsg.NameForKey(key), key, lo, hi))
		})
		t.Logf("ApiVersions: %s", strings.Join(listed, ", "))
		for _, want := range []struct {
			key    int16
			maxMin int16
		}{{18, 4}, {3, 12}} {
			lo, hi, ok := v.KeyVersions(want.key)
			if !ok {
				t.Errorf("ApiVersions lacks %s (%d)", kmsg.NameForKey(want.key), want.key)
				continue
			}
			if lo != 0 || hi < want.maxMin {
				t.Errorf("%s versions %d-%d, want 0-%d (or higher max)", kmsg.NameForKey(want.key), lo, hi, want.maxMin)
			}
		}
		brokerMetadata(t, b)
	})
}

// TestClusterIDPersists: the cluster id lives in the data dir and survives a restart.
func TestClusterIDPersists(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := filepath.Join(t.TempDir(), "data")
		first := startBroker(t, backend, map[string]string{"log.dirs": dir})
		id1 := brokerMetadata(t, first)
		first.Stop(t)
		if t.Failed() {
			t.FailNow()
		}
		second := startBroker(t, backend, map[string]string{"log.dirs": dir})
		id2 := brokerMetadata(t, second)
		if id1 != id2 {
			t.Errorf("cluster id changed across restart with the same log dir: %q then %q", id1, id2)
		}
		third := startBroker(t, backend, nil)
		if id3 := brokerMetadata(t, third); id3 == id1 {
			t.Errorf("a fresh log dir got the same cluster id %q: it is not generated per data dir", id3)
		}
	})
}

// TestKafkaPythonDescribeCluster: kafka-python's KafkaAdminClient.describe_cluster().
func TestKafkaPythonDescribeCluster(t *testing.T) {
	python := requireTool(t, "/usr/bin/python3")
	script := filepath.Join(repoRoot, "tests", "python", "describe_cluster.py")
	if _, err := runClient(t, clientTimeout, nil, python, "-c", "import kafka"); err != nil {
		t.Fatalf("kafka-python missing (%v): %s", err, installHint)
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		out, err := runClient(t, clientTimeout, nil, python, script, b.Addr)
		if err != nil {
			t.Fatalf("describe_cluster.py: %v", err)
		}
		var got struct {
			ClusterID    *string `json:"cluster_id"`
			ControllerID *int32  `json:"controller_id"`
			Brokers      []struct {
				NodeID int32  `json:"node_id"`
				Host   string `json:"host"`
				Port   int    `json:"port"`
			} `json:"brokers"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("describe_cluster.py printed %q: %v", out, err)
		}
		t.Logf("kafka-python describe_cluster: %s", strings.TrimSpace(out))
		if len(got.Brokers) != 1 || got.Brokers[0].NodeID != 0 || got.Brokers[0].Host != "127.0.0.1" || got.Brokers[0].Port != b.Port {
			t.Errorf("brokers = %+v, want node 0 at %s", got.Brokers, b.Addr)
		}
		if got.ClusterID == nil || *got.ClusterID == "" {
			t.Errorf("cluster_id missing")
		} else if want := brokerMetadata(t, b); *got.ClusterID != want {
			t.Errorf("kafka-python cluster_id %q, franz-go says %q", *got.ClusterID, want)
		}
	})
}

// TestKafkaJSDescribeCluster: KafkaJS admin describeCluster().
func TestKafkaJSDescribeCluster(t *testing.T) {
	node := requireTool(t, "node")
	jsDir := filepath.Join(repoRoot, "tests", "js")
	requireTool(t, filepath.Join(jsDir, "node_modules", "kafkajs", "package.json"))
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		out, err := runClient(t, clientTimeout, []string{"KAFKAJS_NO_PARTITIONER_WARNING=1"}, node, filepath.Join(jsDir, "describe_cluster.js"), b.Addr)
		if err != nil {
			t.Fatalf("describe_cluster.js: %v", err)
		}
		var got struct {
			ClusterID  string `json:"clusterId"`
			Controller *int32 `json:"controller"`
			Brokers    []struct {
				NodeID int32  `json:"nodeId"`
				Host   string `json:"host"`
				Port   int    `json:"port"`
			} `json:"brokers"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("describe_cluster.js printed %q: %v", out, err)
		}
		t.Logf("KafkaJS describeCluster: %s", strings.TrimSpace(out))
		if len(got.Brokers) != 1 || got.Brokers[0].NodeID != 0 || got.Brokers[0].Host != "127.0.0.1" || got.Brokers[0].Port != b.Port {
			t.Errorf("brokers = %+v, want node 0 at %s", got.Brokers, b.Addr)
		}
		if got.ClusterID == "" {
			t.Errorf("clusterId missing")
		}
		if got.Controller == nil || *got.Controller != 0 {
			t.Errorf("controller = %v, want 0", got.Controller)
		}
	})
}

func keysOf(vs kadm.BrokersApiVersions) []int32 {
	var ids []int32
	for id := range vs {
		ids = append(ids, id)
	}
	return ids
}
