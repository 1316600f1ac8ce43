//go:build linux

package integration

// KIP-951 on a cluster with two client listeners (issue 16): a Produce or a
// Fetch sent to a node that does not lead the partition is answered
// NOT_LEADER_OR_FOLLOWER with the current leader and its endpoint on the
// listener the request came in on, as Metadata names brokers: a client on the
// second listener (EXTERNAL) is sent to the leader's EXTERNAL port, one on
// PLAINTEXT to its PLAINTEXT port.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestKIP951EndpointsOnRequestListener(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		extPort := map[int32]int{}
		for _, n := range c.nodes {
			extPort[n.id] = freePortOn(t, n.host)
		}
		extAddr := func(n *clusterNode) string { return net.JoinHostPort(n.host, strconv.Itoa(extPort[n.id])) }
		c.moreProps = map[string]string{"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,EXTERNAL:PLAINTEXT"}
		c.nodeProps = func(n *clusterNode) map[string]string {
			return map[string]string{"listeners": fmt.Sprintf("PLAINTEXT://%s,CONTROLLER://%s,EXTERNAL://%s", n.addr(), n.ctlAddr(), extAddr(n))}
		}
		c.start(t)
		via := c.nonController(t)
		const topic = "kip951-listeners"
		createTopicVia(t, via, topic, 3, nil, clusterStepTimeout)
		c.waitTopicsEverywhere(t, map[string]int32{topic: 3}, clusterStepTimeout)
		var part, leader int32 = -1, -1
		for p, reps := range partitionOwners(t, via, topic) {
			if reps[0] != via.id {
				part, leader = p, reps[0]
			}
		}
		if part < 0 {
			t.Fatalf("every partition of %s is on node %d", topic, via.id)
		}
		md, err := via.metadata()
		if err != nil {
			t.Fatal(err)
		}
		id := topicsOf(md)[topic].id
		ext := newClient(t, extAddr(via))
		ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
		defer cancel()

		for _, listener := range []struct {
			name string
			send func(kmsg.Request) (kmsg.Response, error)
			port int
		}{
			{"EXTERNAL", func(r kmsg.Request) (kmsg.Response, error) { return ext.SeedBrokers()[0].Request(ctx, r) }, extPort[leader]},
			{"PLAINTEXT", func(r kmsg.Request) (kmsg.Response, error) { return via.request(ctx, r) }, c.node(leader).port},
		} {
			pr := kmsg.NewPtrProduceRequest()
			pr.Version, pr.Acks, pr.TimeoutMillis = 11, 1, 5000
			pt := kmsg.NewProduceRequestTopic()
			pt.Topic = topic
			pp := kmsg.NewProduceRequestTopicPartition()
			pp.Partition = part
			pt.Partitions = append(pt.Partitions, pp)
			pr.Topics = append(pr.Topics, pt)
			resp, err := listener.send(pr)
			if err != nil {
				t.Fatalf("Produce on %s: %v", listener.name, err)
			}
			presp := resp.(*kmsg.ProduceResponse)
			got := presp.Topics[0].Partitions[0]
			if got.ErrorCode != kerr.NotLeaderForPartition.Code || got.CurrentLeader.LeaderID != leader ||
				len(presp.Brokers) != 1 || presp.Brokers[0].NodeID != leader || int(presp.Brokers[0].Port) != listener.port {
				t.Errorf("Produce v11 on %s to node %d for %s/%d (led by %d, its %s port %d): error %s, current leader %+v, endpoints %+v",
					listener.name, via.id, topic, part, leader, listener.name, listener.port, codeName(got.ErrorCode), got.CurrentLeader, presp.Brokers)
			}

			fr := kmsg.NewPtrFetchRequest()
			fr.Version, fr.MaxWaitMillis, fr.MaxBytes = 16, 10, 1<<20
			ft := kmsg.NewFetchRequestTopic()
			ft.TopicID = id
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.PartitionMaxBytes = part, 1<<20
			ft.Partitions = append(ft.Partitions, fp)
			fr.Topics = append(fr.Topics, ft)
			resp, err = listener.send(fr)
			if err != nil {
				t.Fatalf("Fetch on %s: %v", listener.name, err)
			}
			fresp := resp.(*kmsg.FetchResponse)
			fgot := fresp.Topics[0].Partitions[0]
			if fgot.ErrorCode != kerr.NotLeaderForPartition.Code || fgot.CurrentLeader.LeaderID != leader ||
				len(fresp.Brokers) != 1 || fresp.Brokers[0].NodeID != leader || int(fresp.Brokers[0].Port) != listener.port {
				t.Errorf("Fetch v16 on %s to node %d for %s/%d (led by %d, its %s port %d): error %s, current leader %+v, endpoints %+v",
					listener.name, via.id, topic, part, leader, listener.name, listener.port, codeName(fgot.ErrorCode), fgot.CurrentLeader, fresp.Brokers)
			}
			t.Logf("on %s: Produce and Fetch for %s/%d name leader %d at port %d", listener.name, topic, part, leader, listener.port)
		}
	})
}
