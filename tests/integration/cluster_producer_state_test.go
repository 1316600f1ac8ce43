//go:build linux

package integration

// An idempotent producer's sequence state when a partition's leadership moves
// to a follower (issue 16). The new leader must go on from the producer's last
// sequence in its log: the next batch is taken, a retried one deduplicated. A
// follower that was sent a Produce (a client with stale metadata, as
// librdkafka after inconsistent Metadata answers during a failover) must
// answer NOT_LEADER_OR_FOLLOWER, and must not keep a view of the producer's
// sequences that its later replicated appends leave behind: librdkafka's
// idempotent producer failed with a fatal OUT_OF_ORDER_SEQUENCE_NUMBER from a
// restarted node that became leader again (TestClusterLongFailoverClients).
//
// Raw Produce requests with a producer id from InitProducerId, so the
// sequences are exactly the test's.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestClusterProducerStateFollowsLeaderMove(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		for _, misdirected := range []bool{false, true} {
			name := "plain"
			if misdirected {
				name = "after-a-produce-sent-to-the-follower"
			}
			t.Run(name, func(t *testing.T) { testProducerStateLeaderMove(t, c, "ps-move-"+name, misdirected) })
		}
	})
}

func testProducerStateLeaderMove(t *testing.T, c *testCluster, topic string, misdirected bool) {
	ctl := c.controller(t)
	leader := c.nonController(t)
	var follower *clusterNode
	for _, n := range c.nodes {
		if n != ctl && n != leader {
			follower = n
		}
	}
	c.createReplicatedTopic(t, topic, 0, 0, [][]int32{{leader.id, follower.id, ctl.id}}, map[string]string{"min.insync.replicas": "2"})
	waitFor(t, fmt.Sprintf("%s/0 led by node %d", topic, leader.id), clusterStepTimeout, func() error {
		l, err := c.leaderOf(topic, 0)
		if err == nil && l != leader.id {
			err = fmt.Errorf("led by node %d", l)
		}
		return err
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterStepTimeout)
	defer cancel()
	initReq := kmsg.NewPtrInitProducerIDRequest()
	initReq.TransactionTimeoutMillis = 60000
	resp, err := leader.request(ctx, initReq)
	if err != nil {
		t.Fatalf("InitProducerId: %v", err)
	}
	ir := resp.(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %s", codeName(ir.ErrorCode))
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch

	// produce sends records seq..seq+9 of the producer to n (acks=all).
	produce := func(n *clusterNode, seq int32) (int16, int64) {
		t.Helper()
		var values [][]byte
		for i := range int32(10) {
			values = append(values, fmt.Appendf(nil, "seq-%d", seq+i))
		}
		batch := rawBatch(batchSpec{producerID: pid, producerEpoch: epoch, baseSequence: seq, values: values})
		resp, err := n.request(ctx, produceRequest(9, -1, producePart{topic: topic, partition: 0, batch: batch}))
		if err != nil {
			t.Fatalf("Produce seq %d to node %d: %v", seq, n.id, err)
		}
		pr := resp.(*kmsg.ProduceResponse)
		if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
			t.Fatalf("Produce seq %d to node %d: answered %+v", seq, n.id, pr.Topics)
		}
		p := pr.Topics[0].Partitions[0]
		return p.ErrorCode, p.BaseOffset
	}
	mustTake := func(n *clusterNode, seq int32, wantOffset int64) {
		t.Helper()
		code, off := produce(n, seq)
		if code != 0 || off != wantOffset {
			t.Fatalf("Produce seq %d-%d to node %d (leader): %s at offset %d, want NONE at offset %d", seq, seq+9, n.id, codeName(code), off, wantOffset)
		}
	}

	mustTake(leader, 0, 0)
	if misdirected {
		if code, _ := produce(follower, 10); code != kerr.NotLeaderForPartition.Code {
			t.Errorf("Produce seq 10-19 to node %d, a follower of %s/0: %s, want NOT_LEADER_OR_FOLLOWER", follower.id, topic, codeName(code))
		}
	}
	mustTake(leader, 10, 10)
	mustTake(leader, 20, 20)

	// Leadership to the follower, the leader staying up: the replicas
	// reordered (a reassignment adding nobody completes at once) and a
	// preferred election.
	adm := kadm.NewClient(seedClient(t, c.seeds()))
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign(topic, 0, []int32{follower.id, leader.id, ctl.id})
	ar, err := adm.AlterPartitionAssignments(ctx, req)
	if err == nil {
		err = ar.Error()
	}
	if err != nil {
		t.Fatalf("reorder the replicas of %s/0: %v", topic, err)
	}
	c.expectISR(t, topic, map[int32][]int32{0: {follower.id, leader.id, ctl.id}}, nil)
	waitFor(t, fmt.Sprintf("%s/0 led by node %d after a preferred election", topic, follower.id), clusterStepTimeout, func() error {
		if l, err := c.leaderOf(topic, 0); err == nil && l == follower.id {
			return nil
		}
		res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			return err
		}
		for _, ps := range res {
			for _, r := range ps {
				if r.Err != nil && r.Err != kerr.ElectionNotNeeded {
					return fmt.Errorf("ElectLeaders: %v", r.Err)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
		l, err := c.leaderOf(topic, 0)
		if err == nil && l != follower.id {
			err = fmt.Errorf("led by node %d", l)
		}
		return err
	})

	// The new leader goes on from sequence 29: a retry of the last batch
	// is answered with its offset, the next batch is taken.
	if code, off := produce(follower, 20); code != 0 || off != 20 {
		t.Errorf("retry of seq 20-29 to node %d, the new leader: %s at offset %d, want NONE at offset 20 (deduplicated)", follower.id, codeName(code), off)
	}
	if code, off := produce(follower, 30); code != 0 || off != 30 {
		t.Errorf("Produce seq 30-39 to node %d, the new leader: %s at offset %d, want NONE at offset 30", follower.id, codeName(code), off)
	}
}
