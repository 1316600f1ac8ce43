package cluster

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/metadata"
)

// scaleCluster is newTestCluster's three loopback Nodes for a benchmark:
// any testing.TB, a snapshot interval, a quiet logger, no recorder (the
// waits read Node.Image, which is what OnMetadata is handed), and bounds
// sized for a metadata image of 100,000 partitions.
type scaleCluster struct {
	tb            testing.TB
	snapshotEvery uint64
	voters        []config.Voter
	dirs          []string
	nodes         []*Node
	// onApply, when set, is called from each node's OnMetadata (the
	// broker's side of the metadata flow) with the node's index and the
	// image it is handed.
	onApply atomic.Pointer[func(node int, im *metadata.Image)]
}

// scaleLog is the level the scale benchmarks' nodes log at (through the
// benchmark's log, printed when it fails or with -v): -scale.log=info
// shows elections, controller activations and snapshots.
var scaleLog = zap.LevelFlag("scale.log", zap.WarnLevel, "log level of the scale benchmarks' nodes")

// scaleWait bounds every wait of the scale benchmarks: loading 10,000
// topics on a shared two-core machine is slow, but never this slow.
const scaleWait = 5 * time.Minute

// scaleForwardWait bounds one CreateTopics: a batch of 500 topics takes
// well under a second.
const scaleForwardWait = time.Minute

func newScaleCluster(tb testing.TB, snapshotEvery uint64) *scaleCluster {
	sc := &scaleCluster{tb: tb, snapshotEvery: snapshotEvery}
	for i := 1; i <= 3; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		sc.voters = append(sc.voters, config.Voter{ID: int32(i), Host: "127.0.0.1", Port: port})
		sc.dirs = append(sc.dirs, tb.TempDir())
	}
	sc.nodes = make([]*Node, 3)
	for i := range sc.nodes {
		sc.start(i)
	}
	tb.Cleanup(func() {
		// The last node's controlled shutdown cannot reach a quorum:
		// a short bound, as in the measured stops it never comes into play.
		for i, n := range sc.nodes {
			if n != nil {
				sc.stopWithin(i, 5*time.Second)
			}
		}
	})
	return sc
}

func (sc *scaleCluster) start(i int) {
	sc.tb.Helper()
	ctl := controller.DefaultConfig()
	ctl.SessionTimeout = 2 * time.Second
	n, err := Start(Config{
		NodeID:            int32(i + 1),
		ClusterID:         "scale-cluster",
		Voters:            sc.voters,
		MetadataDir:       sc.dirs[i],
		Endpoints:         []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(19100 + i)}},
		HeartbeatInterval: 200 * time.Millisecond,
		TickInterval:      20 * time.Millisecond,
		SnapshotEvery:     sc.snapshotEvery,
		Controller:        ctl,
		Logger:            zaptest.NewLogger(sc.tb, zaptest.Level(*scaleLog)).Named(fmt.Sprint("node", i+1)),
		OnMetadata: func(im *metadata.Image, _ []metadata.Delta, _ bool) {
			if f := sc.onApply.Load(); f != nil {
				(*f)(i, im)
			}
		},
	})
	if err != nil {
		sc.tb.Fatalf("node %d: %v", i+1, err)
	}
	sc.nodes[i] = n
}

// stop closes node i, bounding its controlled shutdown by a minute.
func (sc *scaleCluster) stop(i int) { sc.stopWithin(i, time.Minute) }

func (sc *scaleCluster) stopWithin(i int, bound time.Duration) {
	sc.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := sc.nodes[i].Close(ctx); err != nil {
		sc.tb.Errorf("closing node %d: %v", i+1, err)
	}
	sc.nodes[i] = nil
}

// crash stops node i the way a killed process stops: no controlled
// shutdown and no raft leadership transfer (Close without its first
// steps), so the quorum notices only when heartbeats stop.
func (sc *scaleCluster) crash(i int) {
	sc.tb.Helper()
	n := sc.nodes[i]
	n.shutdownOnce.Do(func() { close(n.closing) })
	n.ctl.mu.Lock()
	n.ctl.ctl = nil
	n.ctl.mu.Unlock()
	n.rn.Stop()
	err := n.tr.Close()
	n.wg.Wait()
	if cerr := n.store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		sc.tb.Errorf("crashing node %d: %v", i+1, err)
	}
	sc.nodes[i] = nil
}

// controller returns the index of the node running the active
// controller, or -1.
func (sc *scaleCluster) controller() int {
	for i, n := range sc.nodes {
		if n != nil && n.ControllerID() == int32(i+1) && n.ctlActive() {
			return i
		}
	}
	return -1
}

// follower returns the index of a running node that is not the active
// controller.
func (sc *scaleCluster) follower() int {
	c := sc.controller()
	for i, n := range sc.nodes {
		if n != nil && i != c {
			return i
		}
	}
	sc.tb.Fatal("no running follower")
	return -1
}

// statuses describes every running node's quorum status, for a failure
// message.
func (sc *scaleCluster) statuses() string {
	var out string
	for i, n := range sc.nodes {
		if n == nil {
			out += fmt.Sprintf("node %d: stopped\n", i+1)
			continue
		}
		out += fmt.Sprintf("node %d: controller %d active %v quorum %+v err %v\n", i+1, n.ControllerID(), n.ctlActive(), n.Status(), n.rn.Err())
	}
	return out
}

// wait polls cond every 5 ms until it holds or scaleWait passes; then it
// fails with every node's quorum status.
func (sc *scaleCluster) wait(what string, cond func() bool) {
	sc.tb.Helper()
	deadline := time.Now().Add(scaleWait)
	for !cond() {
		if time.Now().After(deadline) {
			sc.tb.Fatalf("timed out after %v waiting for %s\n%s", scaleWait, what, sc.statuses())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitFormed waits for an active controller with three unfenced brokers.
func (sc *scaleCluster) waitFormed() {
	sc.tb.Helper()
	sc.wait("an active controller and three unfenced brokers", func() bool {
		c := sc.controller()
		if c < 0 {
			return false
		}
		n := 0
		for _, b := range sc.nodes[c].Image().Brokers() {
			if !b.Fenced {
				n++
			}
		}
		return n == 3
	})
}

// createTopics creates topics names through node i (Forward: it returns
// once node i applied them), each of partitions partitions and replication
// factor rf.
func (sc *scaleCluster) createTopics(i int, names []string, partitions int32, rf int16) error {
	ctx, cancel := context.WithTimeout(context.Background(), scaleForwardWait)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	req.TimeoutMillis = int32(scaleForwardWait / time.Millisecond)
	for _, name := range names {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, rf
		req.Topics = append(req.Topics, t)
	}
	resp, err := sc.nodes[i].Forward(ctx, req)
	if err != nil {
		return fmt.Errorf("CreateTopics through node %d: %w\n%s", i+1, err, sc.statuses())
	}
	for _, t := range resp.(*kmsg.CreateTopicsResponse).Topics {
		if t.ErrorCode != 0 {
			return fmt.Errorf("CreateTopics %s: error %d", t.Topic, t.ErrorCode)
		}
	}
	return nil
}

// topicNames returns count names from prefix-first.
func topicNames(prefix string, first, count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, first+i)
	}
	return out
}

// load creates topics topics of partitions partitions in batches of batch
// topics and replication factor rf through a follower, as brokers forward
// them.
func (sc *scaleCluster) load(prefix string, topics, batch int, partitions int32, rf int16) {
	sc.tb.Helper()
	for first := 0; first < topics; first += batch {
		if err := sc.createTopics(sc.follower(), topicNames(prefix, first, min(batch, topics-first)), partitions, rf); err != nil {
			sc.tb.Fatal(err)
		}
	}
}

// hasTopics reports whether node i's image holds count topics, the last
// of them named last.
func (sc *scaleCluster) hasTopics(i int, count int, last string) bool {
	n := sc.nodes[i]
	if n == nil {
		return false
	}
	im := n.Image()
	if _, ok := im.TopicByName(last); !ok {
		return false
	}
	return len(im.Topics()) == count
}
