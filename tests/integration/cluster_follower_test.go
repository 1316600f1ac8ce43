//go:build linux

package integration

// The follower side of replication (issue 16) on the three-node cluster: every
// replica of a topic with replication factor 3 that does not lead fetches the
// leader's log (package replica) and ends up with the same segment bytes.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterFollowersCopyLeader: records produced to each partition's leader
// reach both followers byte for byte (segment files compared), then more
// records do too; a leader killed and restarted follows its successor.
func TestClusterFollowersCopyLeader(t *testing.T) {
	c := newTestCluster(t, "portable")
	c.start(t)
	const topic, partitions = "replicated", 2
	waitFor(t, "CreateTopics "+topic+" with replication factor 3", clusterStepTimeout, func() error {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = int32(clusterRequestTimeout.Milliseconds())
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 3
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
		defer cancel()
		resp, err := c.nodes[0].request(ctx, req)
		if err != nil {
			return err
		}
		code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
		if code != 0 && code != kerr.TopicAlreadyExists.Code {
			return kerr.ErrorForCode(code)
		}
		return nil
	})
	c.waitTopicsEverywhere(t, map[string]int32{topic: partitions}, clusterStepTimeout)

	produce := func(prefix string) {
		var recs []sentRecord
		for p := int32(0); p < partitions; p++ {
			for i := range 30 {
				recs = append(recs, sentRecord{partition: p, value: fmt.Appendf(nil, "%s-%d-%d", prefix, p, i)})
			}
		}
		produceSync(t, seedClient(t, c.seeds()), topic, recs)
	}
	segment := func(n *clusterNode, p int32) []byte {
		b, _ := os.ReadFile(filepath.Join(n.dir, fmt.Sprintf("%s-%d", topic, p), "00000000000000000000.log"))
		return b
	}
	same := func(what string) {
		m, err := c.live()[0].metadata()
		if err != nil {
			t.Fatal(err)
		}
		view := topicsOf(m)[topic]
		for p := int32(0); p < partitions; p++ {
			leader := c.node(view.partitions[p].Leader)
			if leader == nil {
				t.Fatalf("partition %d has no leader", p)
			}
			for _, n := range c.nodes {
				if n == leader {
					continue
				}
				waitFor(t, fmt.Sprintf("%s: node %d's copy of partition %d equal to leader %d's", what, n.id, p, leader.id), clusterStepTimeout, func() error {
					lb, fb := segment(leader, p), segment(n, p)
					if len(lb) == 0 || !bytes.Equal(lb, fb) {
						return fmt.Errorf("leader %d bytes, follower %d bytes (or different)", len(lb), len(fb))
					}
					return nil
				})
			}
		}
	}
	produce("a")
	same("first records")
	produce("b")
	same("more records")

	// Partition 0's leader dies: once it is fenced another replica (which
	// copied every record) leads and takes more records; the old leader,
	// back as a follower, checks its log against the new leader's epochs
	// (OffsetForLeaderEpoch) and copies on, byte for byte.
	m, err := c.nodes[0].metadata()
	if err != nil {
		t.Fatal(err)
	}
	old := c.node(topicsOf(m)[topic].partitions[0].Leader)
	c.kill(t, old)
	c.waitReady(t)
	if m, err = c.live()[0].metadata(); err != nil {
		t.Fatal(err)
	}
	next := topicsOf(m)[topic].partitions[0]
	if next.Leader == old.id || next.Leader < 0 {
		t.Fatalf("partition 0 led by %d after its leader %d was fenced", next.Leader, old.id)
	}
	t.Logf("partition 0: leader %d killed, node %d leads at epoch %d", old.id, next.Leader, next.LeaderEpoch)
	produce("c")
	c.startNode(t, old)
	c.waitReady(t)
	same("after the old leader came back")
	produce("d")
	same("records after the old leader came back")
}
