//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterStandaloneLostLogRefused: a daemon started with
// controller.quorum.standalone forms a dynamic quorum and records that it
// is a member; stopped, its __cluster_metadata-0 deleted, and started again
// with the key still set, it exits with an error instead of bootstrapping a
// second quorum under the same cluster id, leaving the metadata log absent
// and the marker as it was; with the marker moved away (the documented way
// to form a new cluster on purpose) it starts.
func TestClusterStandaloneLostLogRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		n := c.node(1)
		c.editProps = func(n *clusterNode, props map[string]string) {
			delete(props, "controller.quorum.voters")
			props["controller.quorum.bootstrap.servers"] = n.ctlAddr()
			props["controller.quorum.standalone"] = "true"
		}
		c.startNodes(t, n)
		c.waitReady(t)
		marker := filepath.Join(n.dir, "quorum-member.properties")
		logDir := filepath.Join(n.dir, "__cluster_metadata-0")
		before, err := os.ReadFile(marker)
		if err != nil {
			t.Fatalf("no member marker after the first start: %v", err)
		}
		for _, err := range stopParallel([]*Broker{n.proc}) {
			t.Fatal(err)
		}
		n.proc = nil
		if err := os.RemoveAll(logDir); err != nil {
			t.Fatal(err)
		}

		d, err := c.launch(n)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-d.Exited():
		case <-time.After(3 * startTimeout):
			t.Fatalf("the daemon neither exited nor was refused within %v; output:\n%s", 3*startTimeout, d.Logs())
		}
		n.proc = nil
		if d.WaitErr() == nil || !strings.Contains(d.Logs(), "refusing to bootstrap a new quorum") || !strings.Contains(d.Logs(), marker) {
			t.Fatalf("restart with the metadata log gone: exit %v, output:\n%s", d.WaitErr(), d.Logs())
		}
		if _, err := os.Stat(logDir); !os.IsNotExist(err) {
			t.Fatalf("the refused start created %s: %v", logDir, err)
		}
		if after, err := os.ReadFile(marker); err != nil || string(after) != string(before) {
			t.Fatalf("the refused start changed the marker: %v\n%q\n%q", err, before, after)
		}

		if err := os.Rename(marker, marker+".old"); err != nil {
			t.Fatal(err)
		}
		c.startNodes(t, n)
		c.waitReady(t)
		createTopicVia(t, n, "after-new-quorum", 1, nil, clusterStepTimeout)
	})
}
