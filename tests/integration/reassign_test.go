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
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
		// The node the replicas left deletes their logs once the move
		// completed (Kafka's ReplicaManager.applyDelta).
		took, err = pollUntil(replicationCatchUpTimeout, func() error {
			if left := partitionDirs(t, b.dir, topic); len(left) > 0 {
				return fmt.Errorf("node %d still holds %v", b.id, left)
			}
			return nil
		})
		if err != nil {
			t.Errorf("node %d, no longer a replica of %s, kept its logs: %v", b.id, topic, err)
		} else {
			t.Logf("node %d deleted its replicas of %s (%v)", b.id, topic, took.Round(time.Millisecond))
		}
	})
}

// TestReassignmentRemovesReplica: a replica a reassignment moves off a node
// goes from that node's disk, as in Kafka. RF 2 topic of two partitions on
// [A B] with 400 acknowledged records:
//
//   - live: partition 0 moves to [A C] while B runs; B deletes
//     <topic>-0 (bounded wait, no -delete directory left), C holds A's
//     bytes, every record reads back, and a restart of B does not bring the
//     directory back;
//   - offline: B stops, partition 1 moves to [A C], B starts again; its
//     first image no longer lists it among the replicas, so B sets
//     <topic>-1 aside as <topic>-1.<hex>-stray (kept, as Kafka's
//     LogManager does with a stray log at startup), and C holds A's bytes.
func TestReassignmentRemovesReplica(t *testing.T) {
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
		const topic = "reassign-remove"
		const parts = 2
		c.createReplicatedTopic(t, topic, 0, 0, [][]int32{{a.id, b.id}, {a.id, b.id}}, nil)
		before := c.checkReplicaSets(t, topic, parts, 2)
		c.expectISR(t, topic, before, nil)
		recs := spreadRecords(topic, 400, parts, 300, false)
		cl := seedClient(t, c.seeds(), kgo.RequiredAcks(kgo.AllISRAcks()))
		produceSync(t, cl, topic, recs)
		adm := kadm.NewClient(seedClient(t, c.seeds()))

		// Live.
		reassignAndWait(t, adm, topic, 0, []int32{a.id, dest.id})
		took, err := pollUntil(replicationCatchUpTimeout, func() error {
			if left := partitionDirsOf(t, b.dir, topic, 0); len(left) > 0 {
				return fmt.Errorf("node %d still holds %v", b.id, left)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("node %d kept %s/0 after it moved away: %v", b.id, topic, err)
		}
		t.Logf("node %d deleted %s/0 %v after the move completed", b.id, topic, took.Round(time.Millisecond))
		if got := partitionDirsOf(t, b.dir, topic, 1); !slices.Equal(got, []string{topic + "-1"}) {
			t.Errorf("node %d: %s/1, still its replica, is %v", b.id, topic, got)
		}
		checkMovedReplica(t, c, topic, parts, map[int32][]int32{0: {a.id, dest.id}}, recs)

		b.proc.Stop(t)
		b.proc = nil
		c.start(t)
		c.expectISR(t, topic, map[int32][]int32{0: {a.id, dest.id}, 1: {a.id, b.id}}, nil)
		if left := partitionDirsOf(t, b.dir, topic, 0); len(left) > 0 {
			t.Errorf("node %d, restarted, holds %v again", b.id, left)
		}

		// Offline.
		b.proc.Stop(t)
		b.proc = nil
		reassignAndWait(t, adm, topic, 1, []int32{a.id, dest.id})
		c.start(t)
		took, err = pollUntil(replicationCatchUpTimeout, func() error {
			got := partitionDirsOf(t, b.dir, topic, 1)
			if len(got) != 1 || !strings.HasSuffix(got[0], "-stray") {
				return fmt.Errorf("node %d holds %v", b.id, got)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("node %d, restarted after %s/1 moved away, did not set it aside as stray: %v", b.id, topic, err)
		}
		t.Logf("node %d set aside %s/1 as %v after its restart (%v)", b.id, topic, partitionDirsOf(t, b.dir, topic, 1), took.Round(time.Millisecond))
		checkMovedReplica(t, c, topic, parts, map[int32][]int32{0: {a.id, dest.id}, 1: {a.id, dest.id}}, recs)
	})
}

// reassignAndWait moves topic/p to replicas and waits (bounded) until
// ListPartitionReassignments shows it done.
func reassignAndWait(t *testing.T, adm *kadm.Client, topic string, p int32, replicas []int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), replicationCatchUpTimeout)
	defer cancel()
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign(topic, p, replicas)
	resp, err := adm.AlterPartitionAssignments(ctx, req)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("AlterPartitionAssignments %s/%d -> %v: %v", topic, p, replicas, err)
	}
	took, err := pollUntil(replicationCatchUpTimeout, func() error {
		listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {p: {}}})
		if err != nil {
			return err
		}
		n := 0
		listed.Each(func(kadm.ListPartitionReassignmentsResponse) { n++ })
		if n > 0 {
			return fmt.Errorf("%s/%d still being reassigned", topic, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reassignment of %s/%d to %v not done within %v: %v", topic, p, replicas, replicationCatchUpTimeout, err)
	}
	t.Logf("%s/%d reassigned to %v in %v", topic, p, replicas, took.Round(time.Millisecond))
}

// checkMovedReplica checks that moved's replicas hold their leader's bytes
// and that every record of recs reads back, in order, at its partition.
func checkMovedReplica(t *testing.T, c *testCluster, topic string, parts int32, moved map[int32][]int32, recs []sentRecord) {
	t.Helper()
	if _, err := pollUntil(replicationCatchUpTimeout, func() error { return c.compareReplicas(topic, moved) }); err != nil {
		t.Errorf("moved replicas of %s not byte-identical: %v", topic, err)
	}
	got := consumeToEnd(t, c.seeds(), topic, parts)
	want := map[int32][][]byte{}
	for _, r := range recs {
		want[r.partition] = append(want[r.partition], r.value)
	}
	for p := range parts {
		if len(got[p]) != len(want[p]) {
			t.Errorf("%s/%d: read %d records, want %d", topic, p, len(got[p]), len(want[p]))
			continue
		}
		for i, r := range got[p] {
			if !bytes.Equal(r.value, want[p][i]) {
				t.Errorf("%s/%d offset %d: not the record produced there", topic, p, r.offset)
				break
			}
		}
	}
}

// partitionDirsOf is partitionDirs of partition p alone.
func partitionDirsOf(t *testing.T, dir, topic string, p int32) []string {
	t.Helper()
	var out []string
	name := topic + "-" + strconv.Itoa(int(p))
	for _, d := range partitionDirs(t, dir, topic) {
		if d == name || strings.HasPrefix(d, name+".") {
			out = append(out, d)
		}
	}
	return out
}
