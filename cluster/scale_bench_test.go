package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/metadata"
)

// Metadata scale (issue 15) on three loopback Nodes: scaleClusterTopics
// topics of scaleClusterPartitions partitions, replication factor 3, created
// scaleClusterBatch topics per CreateTopics through a follower. The
// benchmarks report durations with ReportMetric and assert none. Each
// iteration is seconds long; run them once:
//
//	go test -run '^$' -bench ScaleCluster -benchtime 1x -timeout 30m ./cluster/
const (
	scaleClusterTopics     = 10_000
	scaleClusterPartitions = 10
	scaleClusterBatch      = 500
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadScale forms the cluster and loads it, and returns how long the
// load took (reported after the loop: ResetTimer drops metrics reported
// before it).
func loadScale(b *testing.B, snapshotEvery uint64) (*scaleCluster, time.Duration) {
	sc := newScaleCluster(b, snapshotEvery)
	sc.waitFormed()
	start := time.Now()
	sc.load("t", scaleClusterTopics, scaleClusterBatch, scaleClusterPartitions, 3)
	return sc, time.Since(start)
}

// BenchmarkScaleClusterFailover stops the active controller's node and
// times until another node's controller serves a CreateTopics: stop-ms is
// the stop itself, controller-ms until another node runs the active
// controller, failover-ms until the CreateTopics (forwarded through a
// surviving node) returned, all from the start of the stop. close: Close
// (a controlled shutdown that moves the node's leaderships, then a raft
// leadership transfer); crash: the node stops dead, and the others elect
// after an election timeout (10 ticks of 20 ms). The old node is then
// restarted and caught up before the next iteration.
func BenchmarkScaleClusterFailover(b *testing.B) {
	b.Run("close", func(b *testing.B) { benchFailover(b, (*scaleCluster).stop) })
	b.Run("crash", func(b *testing.B) { benchFailover(b, (*scaleCluster).crash) })
}

func benchFailover(b *testing.B, stop func(*scaleCluster, int)) {
	sc, loading := loadScale(b, 0)
	topics := scaleClusterTopics
	var stopping, electing, serving time.Duration
	b.ResetTimer()
	for i := range b.N {
		sc.waitFormed()
		old := sc.controller()
		start := time.Now()
		stop(sc, old)
		stopping += time.Since(start)
		sc.wait("another active controller", func() bool { return sc.controller() >= 0 })
		electing += time.Since(start)
		name := fmt.Sprintf("failover-%05d", i)
		// Two brokers are left: replication factor 2.
		if err := sc.createTopics((old+1)%3, []string{name}, scaleClusterPartitions, 2); err != nil {
			b.Fatal(err)
		}
		serving += time.Since(start)
		topics++
		sc.start(old)
		sc.wait("the old controller's node to catch up", func() bool { return sc.hasTopics(old, topics, name) })
	}
	b.ReportMetric(loading.Seconds(), "load-s")
	b.ReportMetric(ms(stopping)/float64(b.N), "stop-ms")
	b.ReportMetric(ms(electing)/float64(b.N), "controller-ms")
	b.ReportMetric(ms(serving)/float64(b.N), "failover-ms")
}

// BenchmarkScaleClusterCatchUp stops a follower, creates topics while it
// is down (missedBatches CreateTopics of 10 topics), restarts it from its
// metadata dir and times until its image has every topic (catchup-ms,
// from the Start call). In the snapshot variant the quorum snapshots
// every 4 entries and keeps 2 below a snapshot, so the leader has
// compacted past what the stopped node holds and catch-up goes through a
// raft snapshot; via-snapshot is the fraction of iterations where it did
// (the node's snapshot index passed what it had applied before stopping).
func BenchmarkScaleClusterCatchUp(b *testing.B) {
	for _, v := range []struct {
		name          string
		snapshotEvery uint64
	}{{"log", 0}, {"snapshot", 4}} {
		b.Run(v.name, func(b *testing.B) { benchCatchUp(b, v.snapshotEvery) })
	}
}

const missedBatches = 8

func benchCatchUp(b *testing.B, snapshotEvery uint64) {
	sc, loading := loadScale(b, snapshotEvery)
	topics := scaleClusterTopics
	var catchingUp, stopping time.Duration
	viaSnapshot := 0
	b.ResetTimer()
	for i := range b.N {
		sc.waitFormed()
		f := sc.follower()
		appliedBefore := sc.nodes[f].Applied()
		start := time.Now()
		sc.stop(f)
		stopping += time.Since(start)
		var last string
		for j := range missedBatches {
			names := topicNames(fmt.Sprintf("missed-%d-%d", i, j), 0, 10)
			if err := sc.createTopics(sc.follower(), names, scaleClusterPartitions, 2); err != nil {
				b.Fatal(err)
			}
			topics += len(names)
			last = names[len(names)-1]
		}
		start = time.Now()
		sc.start(f)
		sc.wait("the restarted node to catch up", func() bool { return sc.hasTopics(f, topics, last) })
		catchingUp += time.Since(start)
		if sc.nodes[f].Status().SnapshotIndex > appliedBefore {
			viaSnapshot++
		}
	}
	b.ReportMetric(loading.Seconds(), "load-s")
	b.ReportMetric(ms(stopping)/float64(b.N), "stop-ms")
	b.ReportMetric(ms(catchingUp)/float64(b.N), "catchup-ms")
	b.ReportMetric(float64(viaSnapshot)/float64(b.N), "via-snapshot")
}

// proposeToApplySamples is the number of records timed per iteration of
// BenchmarkScaleClusterProposeToApply.
const proposeToApplySamples = 300

// BenchmarkScaleClusterProposeToApply times the metadata flow end to end:
// from the active controller proposing one record (a topic ConfigRecord,
// through the controller's own propose path) to each node's broker being
// handed the image that holds it (OnMetadata, where the broker opens logs
// and takes leaderships). local is the controller's own node, remote the
// two others (a raft round trip, the commit reaching them with the next
// append or heartbeat, then their applier). Records are proposed one at a
// time, each once every node applied the previous one. empty: a cluster
// with no topic but the one written; scale: scaleClusterTopics topics of
// scaleClusterPartitions partitions loaded first. Reported: p50 and p99 in
// milliseconds over proposeToApplySamples records.
func BenchmarkScaleClusterProposeToApply(b *testing.B) {
	b.Run("empty", func(b *testing.B) {
		sc := newScaleCluster(b, 0)
		sc.waitFormed()
		if err := sc.createTopics(sc.follower(), []string{"t-00000"}, scaleClusterPartitions, 3); err != nil {
			b.Fatal(err)
		}
		benchProposeToApply(b, sc)
	})
	b.Run("scale", func(b *testing.B) {
		sc, _ := loadScale(b, 0)
		benchProposeToApply(b, sc)
	})
}

func benchProposeToApply(b *testing.B, sc *scaleCluster) {
	const topic = "t-00000" // the first topic loadScale creates
	res := metadata.ConfigResource{Type: metadata.ResourceTopic, Name: topic}
	var want atomic.Pointer[string]
	var seenMu sync.Mutex
	var seen [3]time.Time
	hook := func(node int, im *metadata.Image) {
		w := want.Load()
		if w == nil || im.Configs(res)["retention.ms"] != *w {
			return
		}
		seenMu.Lock()
		if seen[node].IsZero() {
			seen[node] = time.Now()
		}
		seenMu.Unlock()
	}
	sc.onApply.Store(&hook)
	defer sc.onApply.Store(nil)
	var local, remote []time.Duration
	b.ResetTimer()
	for i := range b.N {
		for k := range proposeToApplySamples {
			sc.waitFormed()
			c := sc.controller()
			n := sc.nodes[c]
			value := strconv.Itoa(1_000_000 + i*proposeToApplySamples + k)
			seenMu.Lock()
			seen = [3]time.Time{}
			seenMu.Unlock()
			want.Store(&value)
			ctx, cancel := context.WithTimeout(context.Background(), scaleForwardWait)
			start := time.Now()
			_, err := n.ctl.propose(ctx, n, []metadata.Record{&metadata.ConfigRecord{
				ResourceType: metadata.ResourceTopic, ResourceName: topic, Name: "retention.ms", Value: &value}})
			cancel()
			if err != nil {
				b.Fatalf("propose: %v\n%s", err, sc.statuses())
			}
			var got [3]time.Time
			sc.wait("every node to apply the record", func() bool {
				seenMu.Lock()
				defer seenMu.Unlock()
				got = seen
				return !got[0].IsZero() && !got[1].IsZero() && !got[2].IsZero()
			})
			for node, at := range got {
				if node == c {
					local = append(local, at.Sub(start))
				} else {
					remote = append(remote, at.Sub(start))
				}
			}
		}
	}
	b.StopTimer()
	pct := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return ms(ds[min(len(ds)-1, int(float64(len(ds))*p))])
	}
	b.ReportMetric(pct(local, 0.50), "local-p50-ms")
	b.ReportMetric(pct(local, 0.99), "local-p99-ms")
	b.ReportMetric(pct(remote, 0.50), "remote-p50-ms")
	b.ReportMetric(pct(remote, 0.99), "remote-p99-ms")
}
