//go:build linux

package integration

// Partition reassignment under load (issue 16): what kafka-reassign-partitions.sh
// sends (AlterPartitionReassignments, here through kadm) moves a replica while an
// idempotent acks=all franz-go producer writes, on the three-node cluster of
// cluster_util_test.go, both backends.
//
// An RF 2 topic (min.insync.replicas=2) of two partitions on nodes A and B:
// partition 0 [A B] moves its follower to C ([A C]), partition 1 [B A] moves its
// leader to C ([C A]: leadership leaves B when the move completes). Once a third
// of the load is acknowledged the move is asked for; ListPartitionReassignments
// must then show nothing in progress (bounded), the replicas and the ISR must be
// the targets on every node, C's segment files must be the leader's bytes, and
// every acknowledged record must be read back exactly once, in order.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// reassignTotal records are produced, at most replicationInflightMax
// unacknowledged at a time; the move is asked for at a third.
const reassignTotal = 30000

func TestReassignmentUnderLoad(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		a, b := c.controller(t), c.nonController(t)
		var dest *clusterNode
		for _, n := range c.nodes {
			if n != a && n != b {
				dest = n
			}
		}
		const topic = "reassign-load"
		const parts = 2
		c.createReplicatedTopic(t, topic, 0, 0, [][]int32{{a.id, b.id}, {b.id, a.id}}, map[string]string{"min.insync.replicas": "2"})
		before := c.checkReplicaSets(t, topic, parts, 2)
		c.expectISR(t, topic, before, nil)
		target := map[int32][]int32{0: {a.id, dest.id}, 1: {dest.id, a.id}}

		cl := seedClient(t, c.seeds(), kgo.RequiredAcks(kgo.AllISRAcks())) // idempotent: kgo's default
		load := startAckedLoad(cl, topic, parts, reassignTotal, reassignTotal/3)
		select {
		case <-load.third:
		case <-load.done:
			t.Fatalf("the load ended before a third was acknowledged: %d acknowledged, %d failed: %v", load.ackCount.Load(), load.failCount.Load(), load.firstErr())
		case <-time.After(replicationProduceTimeout):
			load.abort(t, cl)
			t.Fatalf("%d of %d records acknowledged within %v", load.ackCount.Load(), reassignTotal, replicationProduceTimeout)
		}

		adm := kadm.NewClient(seedClient(t, c.seeds()))
		ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
		defer cancel()
		req := kadm.AlterPartitionAssignmentsReq{}
		for p, reps := range target {
			req.Assign(topic, p, reps)
		}
		asked := time.Now()
		resp, err := adm.AlterPartitionAssignments(ctx, req)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			load.abort(t, cl)
			t.Fatalf("AlterPartitionAssignments %v: %v", target, err)
		}
		t.Logf("reassignment %v -> %v asked for after %d of %d records were acknowledged", before, target, load.ackCount.Load(), reassignTotal)

		// Bounded: ListPartitionReassignments shows nothing in progress.
		sawInProgress := false
		took, err := pollUntil(replicationCatchUpTimeout, func() error {
			listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}}})
			if err != nil {
				return err
			}
			var inProgress []kadm.ListPartitionReassignmentsResponse
			listed.Each(func(r kadm.ListPartitionReassignmentsResponse) { inProgress = append(inProgress, r) })
			if len(inProgress) > 0 {
				sawInProgress = true
				return fmt.Errorf("in progress: %+v", inProgress)
			}
			return nil
		})
		if err != nil {
			t.Errorf("reassignment not done within %v: %v", replicationCatchUpTimeout, err)
		} else {
			t.Logf("reassignment done (ListPartitionReassignments empty) %v after it was asked for (seen in progress: %v), %d of %d records acknowledged by then",
				took.Round(time.Millisecond), sawInProgress, load.ackCount.Load(), reassignTotal)
		}
		if !sawInProgress {
			t.Logf("the reassignment was never listed in progress (it completed between two polls)")
		}

		select {
		case <-load.done:
		case <-time.After(replicationProduceTimeout):
			load.abort(t, cl)
			t.Errorf("%d of %d records acknowledged within %v of the reassignment", load.ackCount.Load(), reassignTotal, replicationProduceTimeout)
		}
		if n := load.failCount.Load(); n > 0 {
			t.Errorf("%d of %d records failed; first: %v", n, reassignTotal, load.firstErr())
		}
		t.Logf("load done %v after the reassignment was asked for: %d acknowledged, %d failed", time.Since(asked).Round(time.Millisecond),
			load.ackCount.Load(), load.failCount.Load())

		// The targets everywhere: replicas in order, ISR all of them, a
		// leader among them.
		took, err = pollUntil(replicationCatchUpTimeout, func() error {
			for _, n := range c.live() {
				ps, err := partitionsOf(n, topic)
				if err != nil {
					return err
				}
				for p, want := range target {
					if got := ps[p].Replicas; !slices.Equal(got, want) {
						return fmt.Errorf("node %d: %s/%d has replicas %v, want %v", n.id, topic, p, got, want)
					}
				}
			}
			return c.checkISR(topic, target)
		})
		if err != nil {
			t.Errorf("replicas and ISR of %s not %v on every node within %v: %v", topic, target, replicationCatchUpTimeout, err)
		} else {
			t.Logf("replicas and ISR %v on every node (%v)", target, took.Round(time.Millisecond))
		}
		for p := range int32(parts) {
			if leader, err := c.leaderOf(topic, p); err != nil {
				t.Errorf("%s/%d: %v", topic, p, err)
			} else {
				t.Logf("%s/%d led by node %d", topic, p, leader)
			}
		}

		// Every acknowledged record exactly once, in order ...
		acked := load.ackedSnapshot()
		got := consumeToEnd(t, c.seeds(), topic, parts)
		for p := range int32(parts) {
			for i, problem := range checkAckedOnce(acked[p], got[p]) {
				if i == 10 {
					t.Errorf("%s/%d: more problems not shown", topic, p)
					break
				}
				t.Errorf("%s/%d: %s", topic, p, problem)
			}
		}
		// ... and node C holds the leader's bytes.
		took, err = pollUntil(replicationCatchUpTimeout, func() error { return c.compareReplicas(topic, target) })
		if err != nil {
			t.Errorf("the moved replicas of %s are not byte-identical within %v: %v", topic, replicationCatchUpTimeout, err)
		} else {
			t.Logf("node %d's new replicas of %s byte-identical to their leaders' (%v)", dest.id, topic, took.Round(time.Millisecond))
		}
		// What stays on the node the replicas left (reported: Kafka deletes a
		// removed replica's log once the move completes; we keep it).
		t.Logf("node %d (no longer a replica) still holds %v", b.id, partitionDirs(t, b.dir, topic))
	})
}
