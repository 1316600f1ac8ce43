package cluster

import (
	"fmt"
	"testing"
	"time"
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
