package cluster

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/metadata"
)

// testCluster is three Nodes in this process over real loopback sockets,
// each with its own metadata dir: the quorum, the controller and the
// broker lifecycle as the daemon runs them, with a recorder standing in for
// the broker's OnMetadata.
type testCluster struct {
	t      *testing.T
	voters []config.Voter
	dirs   []string
	nodes  []*Node
	seen   []*recorder
}

// recorder keeps what OnMetadata was given.
type recorder struct {
	mu     sync.Mutex
	topics map[string]metadata.UUID
	calls  int
}

func (r *recorder) onMetadata(im *metadata.Image, _ []metadata.Delta, _ bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.topics = map[string]metadata.UUID{}
	for _, t := range im.Topics() {
		r.topics[t.Name] = t.ID
	}
}

func (r *recorder) has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.topics[name]
	return ok
}

func newTestCluster(t *testing.T) *testCluster {
	tc := &testCluster{t: t}
	for i := 1; i <= 3; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		tc.voters = append(tc.voters, config.Voter{ID: int32(i), Host: "127.0.0.1", Port: port})
		tc.dirs = append(tc.dirs, t.TempDir())
	}
	tc.nodes = make([]*Node, 3)
	tc.seen = make([]*recorder, 3)
	for i := range tc.nodes {
		tc.start(i)
	}
	t.Cleanup(func() {
		for i, n := range tc.nodes {
			if n != nil {
				tc.stop(i)
			}
		}
	})
	return tc
}

func (tc *testCluster) start(i int) {
	tc.t.Helper()
	rec := &recorder{}
	ctl := controller.DefaultConfig()
	ctl.SessionTimeout = 2 * time.Second
	n, err := Start(Config{
		NodeID:            int32(i + 1),
		ClusterID:         "test-cluster",
		Voters:            tc.voters,
		MetadataDir:       tc.dirs[i],
		Endpoints:         []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(19000 + i)}},
		HeartbeatInterval: 200 * time.Millisecond,
		TickInterval:      20 * time.Millisecond,
		Controller:        ctl,
		Logger:            zaptest.NewLogger(tc.t).Named(fmt.Sprint("node", i+1)),
		OnMetadata:        rec.onMetadata,
	})
	if err != nil {
		tc.t.Fatalf("node %d: %v", i+1, err)
	}
	tc.nodes[i], tc.seen[i] = n, rec
}

func (tc *testCluster) stop(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tc.nodes[i].Close(ctx); err != nil {
		tc.t.Errorf("closing node %d: %v", i+1, err)
	}
	tc.nodes[i] = nil
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tc *testCluster) controller() int {
	for i, n := range tc.nodes {
		if n != nil && n.ControllerID() == int32(i+1) && n.ctlActive() {
			return i
		}
	}
	return -1
}

func createTopic(ctx context.Context, n *Node, name string, partitions int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, -1
	req.Topics = append(req.Topics, t)
	resp, err := n.Forward(ctx, req)
	if err != nil {
		return err
	}
	if code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		return fmt.Errorf("CreateTopics %s: error %d", name, code)
	}
	return nil
}

// A topic created through a follower is applied on every node (the call
// returns once the follower applied it), survives the loss of the active
// controller, and a full restart from the metadata logs keeps it.
func TestClusterFormsForwardsAndFailsOver(t *testing.T) {
	tc := newTestCluster(t)
	waitFor(t, "an active controller and three registered brokers", func() bool {
		c := tc.controller()
		if c < 0 {
			return false
		}
		n := 0
		for _, b := range tc.nodes[c].Image().Brokers() {
			if !b.Fenced {
				n++
			}
		}
		return n == 3
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	follower := (tc.controller() + 1) % 3
	if err := createTopic(ctx, tc.nodes[follower], "orders", 6); err != nil {
		t.Fatal(err)
	}
	if !tc.seen[follower].has("orders") && func() bool { _, ok := tc.nodes[follower].Image().TopicByName("orders"); return !ok }() {
		t.Fatal("Forward returned before the follower applied the topic")
	}
	for i := range tc.nodes {
		waitFor(t, fmt.Sprintf("node %d to see the topic", i+1), func() bool { return tc.seen[i].has("orders") })
	}
	im := tc.nodes[follower].Image()
	topic, _ := im.TopicByName("orders")
	leaders := map[int32]int{}
	for _, p := range topic.Partitions {
		leaders[p.Leader]++
	}
	if len(leaders) != 3 || leaders[1] != 2 || leaders[2] != 2 || leaders[3] != 2 {
		t.Errorf("leaders not spread evenly over three brokers: %v", leaders)
	}

	// Lose the active controller: another takes over and serves creates.
	old := tc.controller()
	tc.stop(old)
	waitFor(t, "a new controller", func() bool { c := tc.controller(); return c >= 0 && c != old })
	other := (old + 1) % 3
	if err := createTopic(ctx, tc.nodes[other], "payments", 2); err != nil {
		t.Fatal(err)
	}
	tc.start(old)
	waitFor(t, "the restarted node to catch up", func() bool { return tc.seen[old].has("payments") && tc.seen[old].has("orders") })

	// Full restart from the metadata logs alone.
	for i := range tc.nodes {
		tc.stop(i)
	}
	for i := range tc.nodes {
		tc.start(i)
	}
	for i := range tc.nodes {
		waitFor(t, fmt.Sprintf("node %d to replay both topics", i+1), func() bool {
			return tc.seen[i].has("orders") && tc.seen[i].has("payments")
		})
	}
	a, _ := tc.nodes[0].Image().TopicByName("orders")
	b, _ := tc.nodes[2].Image().TopicByName("orders")
	if a.ID != topic.ID || b.ID != topic.ID {
		t.Errorf("topic id changed across restarts: %x %x, want %x", a.ID, b.ID, topic.ID)
	}
}

// ctlActive reports whether this node runs the active controller.
func (n *Node) ctlActive() bool {
	n.ctl.mu.Lock()
	defer n.ctl.mu.Unlock()
	return n.ctl.ctl != nil
}
