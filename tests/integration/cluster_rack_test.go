//go:build linux

package integration

// replica.selector.class: Kafka's RackAwareReplicaSelector is the one
// ringbroker has (fetch from the closest replica, KIP-392; the three-node
// scenario is TestClusterFetchFromClosestReplica in
// cluster_rack_long_test.go, make cluster-long).

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const rackAwareSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

// TestReplicaSelectorClassRefused: a server.properties naming a replica
// selector class ringbroker does not have stops the start with a message
// naming the key, the class and the one it has; nothing is created.
func TestReplicaSelectorClassRefused(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	props := filepath.Join(dir, "server.properties")
	conf := "log.dirs=" + data + "\nreplica.selector.class=com.example.ClosestReplicaSelector\n"
	if err := os.WriteFile(props, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, daemonPath, "--config", props).CombinedOutput()
	if err == nil {
		t.Fatalf("ringbrokerd started with an unknown replica.selector.class:\n%s", out)
	}
	for _, want := range []string{"replica.selector.class", "com.example.ClosestReplicaSelector", rackAwareSelector} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not name %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the refused start created %s (%v)", data, err)
	}
}
