package cluster

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/metadata"
)

// A broker-only node (not a voter) follows the quorum: it registers and is
// unfenced, gets partitions, sees every topic, forwards creates, and keeps
// following after the active controller changes.
func TestObserverFollowsTheQuorum(t *testing.T) {
	tc := newTestCluster(t)
	rec := &recorder{}
	ctl := controller.DefaultConfig()
	ctl.SessionTimeout = 2 * time.Second
	obs, err := Start(Config{
		NodeID:            9,
		ClusterID:         "test-cluster",
		Voters:            tc.voters,
		MetadataDir:       t.TempDir(),
		Endpoints:         []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 19009}},
		HeartbeatInterval: 200 * time.Millisecond,
		Controller:        ctl,
		Logger:            zaptest.NewLogger(t).Named("observer"),
		OnMetadata:        rec.onMetadata,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		obs.Close(ctx)
	}()
	unfenced := func(n *Node, id int32) bool {
		b, ok := n.Image().Broker(id)
		return ok && !b.Fenced
	}
	waitFor(t, "the observer registered and unfenced", func() bool {
		c := tc.controller()
		return c >= 0 && unfenced(tc.nodes[c], 9) && unfenced(obs, 9)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := createTopic(ctx, obs, "from-observer", 8); err != nil {
		t.Fatal(err)
	}
	if _, ok := obs.Image().TopicByName("from-observer"); !ok {
		t.Fatal("Forward returned before the observer applied the topic")
	}
	waitFor(t, "the observer's broker to see the topic", func() bool { return rec.has("from-observer") })
	topic, _ := obs.Image().TopicByName("from-observer")
	onObserver := 0
	for _, p := range topic.Partitions {
		if p.Leader == 9 {
			onObserver++
		}
	}
	if onObserver != 2 {
		t.Errorf("%d of 8 partitions led by the observer, want 2 (four brokers)", onObserver)
	}
	// The active controller goes: the observer follows the new one.
	old := tc.controller()
	tc.stop(old)
	other := (old + 1) % 3
	if err := createTopic(ctx, tc.nodes[other], "after-failover", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the observer to follow the new controller", func() bool { return rec.has("after-failover") })
	if obs.Status().Role != "" {
		t.Errorf("an observer reports a raft role %q", obs.Status().Role)
	}
}

// FuzzMetadataFetch: an observer's decoder of a voter's answer never
// panics and never trusts a count past the bytes that could hold it.
func FuzzMetadataFetch(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 42})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 9, 1, 2, 3})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeMetadataFetch(b)
		if err != nil {
			return
		}
		for _, e := range a.entries {
			if e.Index >= a.next {
				t.Fatalf("entry %d at or past next %d", e.Index, a.next)
			}
		}
	})
}
