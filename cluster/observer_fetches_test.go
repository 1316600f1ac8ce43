package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/metadata"
)

// TestObserverFetchTimes: an observer's caught-up time follows Kafka's
// ReplicaState rule, and an observer that stopped fetching is forgotten
// after the session.
func TestObserverFetchTimes(t *testing.T) {
	var o observerFetches
	none := func(uint64) bool { return false }
	line := func(nowMs int64) (int64, int64, int64) {
		s := o.states(nowMs, none)
		if len(s) != 1 || s[0].ReplicaID != 4 {
			t.Fatalf("states %+v", s)
		}
		return s[0].LogEndOffset, s[0].LastFetchTimestamp, s[0].LastCaughtUpTimestamp
	}
	o.fetched(5, [16]byte{7}, 1, 100, 1000) // raft id 5 is node 4
	if s := o.states(1000, none); len(s) != 1 || s[0].ReplicaDirectoryID != [16]byte{7} {
		t.Fatalf("directory id: %+v", s)
	}
	if end, fetch, caught := line(1000); end != 1 || fetch != 1000 || caught != -1 {
		t.Fatalf("behind: %d %d %d", end, fetch, caught)
	}
	// It reached the leader's end at its previous fetch: caught up as of
	// that fetch.
	o.fetched(5, [16]byte{7}, 100, 150, 1100)
	if end, fetch, caught := line(1100); end != 100 || fetch != 1100 || caught != 1000 {
		t.Fatalf("reached the previous end: %d %d %d", end, fetch, caught)
	}
	// At the leader's end now: caught up now.
	o.fetched(5, [16]byte{7}, 150, 150, 1200)
	if _, _, caught := line(1200); caught != 1200 {
		t.Fatalf("at the end: caught up %d", caught)
	}
	// Skipped (a voter) and expired.
	if s := o.states(1200, func(id uint64) bool { return id == 5 }); len(s) != 0 {
		t.Fatalf("skipped observer listed: %+v", s)
	}
	if s := o.states(1200+observerSessionMs+1, none); len(s) != 0 {
		t.Fatalf("expired observer listed: %+v", s)
	}
}

// TestMetadataFetchRequestSizes: v0 is the index alone, v1 adds the
// directory id; a v1 request to a v0 voter is refused with "want 8", which
// the observer takes as the cue to fall back to v0 (observer.go fetchFrom).
func TestMetadataFetchRequestSizes(t *testing.T) {
	n := &Node{}
	for _, c := range []struct {
		version int16
		size    int
		want    string
	}{{0, 24, "want 8"}, {0, 0, "want 8"}, {1, 8, "want 24"}, {1, 25, "want 24"}} {
		_, err := n.serveMetadataFetch(5, c.version, make([]byte, c.size))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("v%d, %d bytes: %v, want %q", c.version, c.size, err, c.want)
		}
	}
}

// TestDescribeQuorumBrokerOnlyObserver: a broker-only node is listed as an
// observer of DescribeQuorum, with its directory id, its fetch and
// caught-up times and log end offset as the leader saw them, and not as a
// voter.
func TestDescribeQuorumBrokerOnlyObserver(t *testing.T) {
	tc := newTestCluster(t)
	ctl := controller.DefaultConfig()
	ctl.SessionTimeout = 2 * time.Second
	// The observer's directory id, from its meta.properties.
	dir := t.TempDir()
	dirID := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	props := "version=1\ncluster.id=test-cluster\nnode.id=9\ndirectory.id=" + kafkaUUID(dirID) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "meta.properties"), []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	obs, err := Start(Config{
		NodeID:            9,
		ClusterID:         "test-cluster",
		Voters:            tc.voters,
		MetadataDir:       dir,
		Endpoints:         []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 19009}},
		HeartbeatInterval: 200 * time.Millisecond,
		Controller:        ctl,
		Logger:            zaptest.NewLogger(t).Named("observer"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		obs.Close(ctx)
	}()
	waitFor(t, "the observer registered", func() bool {
		c := tc.controller()
		if c < 0 {
			return false
		}
		b, ok := tc.nodes[c].Image().Broker(9)
		return ok && !b.Fenced
	})
	via := (tc.controller() + 1) % 3
	waitFor(t, "observer 9 in DescribeQuorum, caught up", func() bool {
		p, err := tc.describeQuorumVia(via)
		if err != nil || p.ErrorCode != 0 || len(p.CurrentVoters) != 3 || len(p.Observers) != 1 {
			return false
		}
		o := p.Observers[0]
		now := time.Now().UnixMilli()
		if o.ReplicaID != 9 || o.LastFetchTimestamp <= 0 || o.LastCaughtUpTimestamp <= 0 {
			return false
		}
		if o.ReplicaDirectoryID != dirID {
			t.Fatalf("observer directory id %x, want %x", o.ReplicaDirectoryID, dirID)
		}
		if o.LastCaughtUpTimestamp > o.LastFetchTimestamp || now-o.LastFetchTimestamp > 5000 ||
			o.LogEndOffset <= 1 || o.LogEndOffset > p.HighWatermark+10 {
			t.Fatalf("observer line %+v (now %d, high watermark %d)", o, now, p.HighWatermark)
		}
		for _, v := range p.CurrentVoters {
			if v.ReplicaID == 9 {
				t.Fatalf("the observer is listed as a voter: %+v", p.CurrentVoters)
			}
		}
		return true
	})
}
