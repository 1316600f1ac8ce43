package cluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// alterPartitionReq is one partition's AlterPartition, v3: the ISR with
// each member's broker epoch from im.
func alterPartitionReq(im *metadata.Image, topic metadata.UUID, pid int32, p metadata.Partition, isr []int32) []kmsg.AlterPartitionRequestTopic {
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = pid, p.LeaderEpoch, p.PartitionEpoch
	for _, id := range isr {
		b, _ := im.Broker(id)
		rp.NewEpochISR = append(rp.NewEpochISR, kmsg.AlterPartitionRequestTopicPartitionNewEpochISR{BrokerID: id, BrokerEpoch: b.Epoch})
	}
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID, rt.Partitions = topic, []kmsg.AlterPartitionRequestTopicPartition{rp}
	return []kmsg.AlterPartitionRequestTopic{rt}
}

// partitionOn is partition pid of topic as node n's image has it.
func partitionOn(n *Node, topic string, pid int32) (metadata.Partition, bool) {
	t, ok := n.Image().TopicByName(topic)
	if !ok {
		return metadata.Partition{}, false
	}
	p, ok := t.Partitions[pid]
	return p, ok
}

// A partition leader's AlterPartition goes through the active controller
// from whichever node leads: the ISR shrinks and grows back with the
// partition epoch bumped and the leader epoch kept, the leader's own image
// shows it when the call returns and every node applies it; a stale
// partition epoch and a sender that is not the leader get Kafka's codes.
// Then the leader stops: it leaves the ISR and its leadership moves to the
// first remaining ISR member in replica order.
func TestAlterPartitionThroughController(t *testing.T) {
	tc := newTestCluster(t)
	waitFor(t, "an active controller and three unfenced brokers", func() bool {
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "isr", 1, 3
	req.Topics = append(req.Topics, ct)
	resp, err := tc.nodes[0].Forward(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("CreateTopics: %v", kerr.ErrorForCode(code))
	}
	for i := range tc.nodes {
		waitFor(t, fmt.Sprintf("node %d to see the topic", i+1), func() bool { return tc.seen[i].has("isr") })
	}
	im := tc.nodes[0].Image()
	topic, _ := im.TopicByName("isr")
	p := topic.Partitions[0]
	if len(p.Replicas) != 3 || !slices.Equal(p.ISR, p.Replicas) || p.Leader != p.Replicas[0] {
		t.Fatalf("new partition: %+v", p)
	}
	leader := tc.nodes[p.Leader-1]

	check := func(what string, got *kmsg.AlterPartitionResponse, err error, code int16) kmsg.AlterPartitionResponseTopicPartition {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got.ErrorCode != 0 || len(got.Topics) != 1 || len(got.Topics[0].Partitions) != 1 {
			t.Fatalf("%s: answer %+v", what, got)
		}
		rp := got.Topics[0].Partitions[0]
		if rp.ErrorCode != code {
			t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(rp.ErrorCode), kerr.ErrorForCode(code))
		}
		return rp
	}

	// Shrink: the last replica leaves the ISR.
	shrunk := slices.Clone(p.ISR[:2])
	got, err := leader.AlterPartition(ctx, alterPartitionReq(im, topic.ID, 0, p, shrunk))
	rp := check("shrink", got, err, 0)
	if !slices.Equal(rp.ISR, shrunk) || rp.LeaderID != p.Leader || rp.LeaderEpoch != p.LeaderEpoch || rp.PartitionEpoch != p.PartitionEpoch+1 {
		t.Fatalf("shrink answered %+v, from %+v", rp, p)
	}
	if q, _ := partitionOn(leader, "isr", 0); !slices.Equal(q.ISR, shrunk) || q.PartitionEpoch != rp.PartitionEpoch {
		t.Fatalf("the leader's image lacks the shrink when AlterPartition returns: %+v", q)
	}
	for i := range tc.nodes {
		waitFor(t, fmt.Sprintf("node %d to apply the shrink", i+1), func() bool {
			q, _ := partitionOn(tc.nodes[i], "isr", 0)
			return slices.Equal(q.ISR, shrunk) && q.PartitionEpoch == rp.PartitionEpoch
		})
	}

	// The same request again carries a stale partition epoch; a follower
	// sending at the current epochs is not the leader.
	got, err = leader.AlterPartition(ctx, alterPartitionReq(im, topic.ID, 0, p, shrunk))
	check("stale partition epoch", got, err, kerr.InvalidUpdateVersion.Code)
	cur, _ := partitionOn(leader, "isr", 0)
	follower := tc.nodes[p.Replicas[1]-1]
	got, err = follower.AlterPartition(ctx, alterPartitionReq(im, topic.ID, 0, cur, p.Replicas))
	check("not the leader", got, err, kerr.InvalidRequest.Code)

	// Expand back, in an order other than the replicas'.
	expanded := []int32{p.Replicas[0], p.Replicas[2], p.Replicas[1]}
	got, err = leader.AlterPartition(ctx, alterPartitionReq(leader.Image(), topic.ID, 0, cur, expanded))
	rp = check("expand", got, err, 0)
	if !slices.Equal(rp.ISR, expanded) || rp.LeaderEpoch != p.LeaderEpoch || rp.PartitionEpoch != cur.PartitionEpoch+1 {
		t.Fatalf("expand answered %+v, from %+v", rp, cur)
	}

	// The leader stops (a controlled shutdown, or its session expires):
	// it leaves the ISR and the first replica in replica order that is
	// still in it leads, at a new leader epoch.
	old := p.Leader
	tc.stop(int(old - 1))
	survivor := tc.nodes[p.Replicas[1]-1]
	waitFor(t, "the leadership to move off the stopped leader", func() bool {
		q, _ := partitionOn(survivor, "isr", 0)
		return q.Leader == p.Replicas[1] && !slices.Contains(q.ISR, old)
	})
	q, _ := partitionOn(survivor, "isr", 0)
	if want := []int32{p.Replicas[2], p.Replicas[1]}; !slices.Equal(q.ISR, want) || q.LeaderEpoch <= rp.LeaderEpoch {
		t.Fatalf("after the leader stopped: %+v, want ISR %v and a leader epoch above %d", q, want, rp.LeaderEpoch)
	}
}
