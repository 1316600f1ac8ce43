//go:build linux && clusterlong

package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterDynamicQuorum grows and shrinks a dynamic metadata quorum
// (KIP-853, controller.quorum.bootstrap.servers) on three daemons:
//   - node 1 starts alone as the standalone initial voter; nodes 2 and 3
//     start with neither bootstrap key and join as observers (raft
//     learners): they register as brokers and follow the metadata;
//   - AddRaftVoter (raw kmsg, through a node that forwards it) makes both
//     voters; DescribeQuorum then shows three voters and their endpoints;
//     a second add of a voter is DUPLICATE_VOTER, removing an unknown one
//     VOTER_NOT_FOUND;
//   - the leader is SIGKILLed: the two voters it added elect a leader and
//     CreateTopics is served;
//   - a voter restarted on another CONTROLLER port updates its endpoint
//     in the log (through the bootstrap servers) and the cluster goes on;
//   - RemoveRaftVoter of the active controller: it steps down, the other
//     two elect one, CreateTopics is served, the removed node stays an
//     observer;
//   - every node restarts: the voter set survived.
func TestClusterDynamicQuorum(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		var bootstrap []string
		for _, n := range c.nodes {
			bootstrap = append(bootstrap, n.ctlAddr())
		}
		c.editProps = func(n *clusterNode, props map[string]string) {
			delete(props, "controller.quorum.voters")
			props["controller.quorum.bootstrap.servers"] = strings.Join(bootstrap, ",")
			if n.id == 1 {
				props["controller.quorum.standalone"] = "true"
			}
		}
		c.startNodes(t, c.node(1))
		c.waitReady(t)
		c.startNodes(t, c.node(2), c.node(3))
		c.waitReady(t)
		waitQuorum(t, c.node(2), []int32{1}, []int32{2, 3})

		for _, id := range []int32{2, 3} {
			n := c.node(id)
			waitFor(t, fmt.Sprintf("AddRaftVoter %d", id), clusterStepTimeout, func() error {
				return voterChange(c.node(2), addVoterRequest(c, n))
			})
		}
		q := waitQuorum(t, c.node(3), []int32{1, 2, 3}, nil)
		if len(q.Nodes) != 3 {
			t.Fatalf("DescribeQuorum nodes %+v", q.Nodes)
		}
		for _, nd := range q.Nodes {
			n := c.node(nd.NodeID)
			if len(nd.Listeners) != 1 || nd.Listeners[0].Host != n.host || int(nd.Listeners[0].Port) != n.ctlPort || nd.Listeners[0].Name != "CONTROLLER" {
				t.Errorf("DescribeQuorum node %d listeners %+v", nd.NodeID, nd.Listeners)
			}
		}
		if err := voterChange(c.node(1), addVoterRequest(c, c.node(2))); !isKafkaErr(err, kerr.DuplicateVoter) {
			t.Errorf("adding voter 2 again: %v, want DUPLICATE_VOTER", err)
		}
		rm := kmsg.NewPtrRemoveRaftVoterRequest()
		rm.ClusterID, rm.VoterID = &c.clusterID, 9
		if err := voterChange(c.node(1), rm); !isKafkaErr(err, kerr.VoterNotFound) {
			t.Errorf("removing voter 9: %v, want VOTER_NOT_FOUND", err)
		}

		// Kill the leader: the quorum of the voters added dynamically elects.
		killed := c.controller(t)
		c.kill(t, killed)
		c.waitReady(t)
		createTopicVia(t, c.live()[0], "dyn-after-kill", 3, nil, clusterStepTimeout)
		c.startNode(t, killed)
		c.waitReady(t)
		waitQuorum(t, killed, []int32{1, 2, 3}, nil)

		// A voter restarted on another CONTROLLER port updates its
		// endpoint in the log (through the bootstrap servers) and stays a
		// voter.
		moved := c.nonController(t)
		for _, err := range stopParallel([]*Broker{moved.proc}) {
			t.Fatal(err)
		}
		moved.proc = nil
		moved.ctlPort = freePortOn(t, moved.host)
		c.startNode(t, moved)
		c.waitReady(t)
		waitFor(t, fmt.Sprintf("node %d's new controller endpoint in DescribeQuorum", moved.id), clusterStepTimeout, func() error {
			q := waitQuorum(t, c.controller(t), []int32{1, 2, 3}, nil)
			for _, nd := range q.Nodes {
				if nd.NodeID == moved.id && len(nd.Listeners) == 1 && int(nd.Listeners[0].Port) == moved.ctlPort {
					return nil
				}
			}
			return fmt.Errorf("nodes %+v", q.Nodes)
		})
		createTopicVia(t, moved, "dyn-after-move", 3, nil, clusterStepTimeout)
		c.waitTopicsEverywhere(t, map[string]int32{"dyn-after-kill": 3, "dyn-after-move": 3}, clusterStepTimeout)

		// Remove the active controller: it steps down.
		ctl := c.controller(t)
		rm = kmsg.NewPtrRemoveRaftVoterRequest()
		rm.ClusterID, rm.VoterID = &c.clusterID, ctl.id
		via := c.nonController(t)
		waitFor(t, fmt.Sprintf("RemoveRaftVoter %d (the controller)", ctl.id), clusterStepTimeout, func() error {
			return voterChange(via, rm)
		})
		var rest []int32
		for _, n := range c.nodes {
			if n != ctl {
				rest = append(rest, n.id)
			}
		}
		waitQuorum(t, via, rest, []int32{ctl.id})
		waitFor(t, "a new controller", clusterStepTimeout, func() error {
			id, err := c.checkWhole(true)
			if err == nil && id == ctl.id {
				err = fmt.Errorf("node %d, removed, is still the controller", id)
			}
			return err
		})
		createTopicVia(t, ctl, "dyn-after-remove", 3, nil, clusterStepTimeout)
		c.waitTopicsEverywhere(t, map[string]int32{"dyn-after-kill": 3, "dyn-after-move": 3, "dyn-after-remove": 3}, clusterStepTimeout)

		// A full restart keeps the voter set.
		c.stopAll(t)
		c.start(t)
		waitQuorum(t, c.node(1), rest, []int32{ctl.id})
		c.waitTopicsEverywhere(t, map[string]int32{"dyn-after-kill": 3, "dyn-after-move": 3, "dyn-after-remove": 3}, clusterStepTimeout)

	})
}

// addVoterRequest is AddRaftVoter for node n's CONTROLLER listener.
func addVoterRequest(c *testCluster, n *clusterNode) *kmsg.AddRaftVoterRequest {
	req := kmsg.NewPtrAddRaftVoterRequest()
	req.Version = 1
	req.ClusterID, req.VoterID, req.TimeoutMillis, req.AckWhenCommitted = &c.clusterID, n.id, 8000, true
	req.Listeners = []kmsg.AddRaftVoterRequestListener{{Name: "CONTROLLER", Host: n.host, Port: uint16(n.ctlPort)}}
	return req
}

// voterChange sends AddRaftVoter or RemoveRaftVoter to node n and returns
// the answer's error.
func voterChange(n *clusterNode, req kmsg.Request) error {
	resp, err := n.request(context.Background(), req)
	if err != nil {
		return err
	}
	var code int16
	var msg *string
	switch r := resp.(type) {
	case *kmsg.AddRaftVoterResponse:
		code, msg = r.ErrorCode, r.ErrorMessage
	case *kmsg.RemoveRaftVoterResponse:
		code, msg = r.ErrorCode, r.ErrorMessage
	}
	if err := kerr.ErrorForCode(code); err != nil {
		if msg != nil {
			return fmt.Errorf("%w: %s", err, *msg)
		}
		return err
	}
	return nil
}

func isKafkaErr(err error, want *kerr.Error) bool {
	return err != nil && strings.Contains(err.Error(), want.Message)
}

// waitQuorum waits until DescribeQuorum through node n lists these voters
// and observers (nil: any) and returns the answer.
func waitQuorum(t *testing.T, n *clusterNode, voters, observers []int32) *kmsg.DescribeQuorumResponse {
	t.Helper()
	var q *kmsg.DescribeQuorumResponse
	waitFor(t, fmt.Sprintf("DescribeQuorum via node %d: voters %v observers %v", n.id, voters, observers), clusterStepTimeout, func() error {
		dq := kmsg.NewPtrDescribeQuorumRequest()
		dq.Version = 2
		dt := kmsg.NewDescribeQuorumRequestTopic()
		dt.Topic = "__cluster_metadata"
		dt.Partitions = append(dt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
		dq.Topics = append(dq.Topics, dt)
		resp, err := n.request(context.Background(), dq)
		if err != nil {
			return err
		}
		q = resp.(*kmsg.DescribeQuorumResponse)
		if q.ErrorCode != 0 || len(q.Topics) != 1 || len(q.Topics[0].Partitions) != 1 {
			return fmt.Errorf("DescribeQuorum: %+v", q)
		}
		p := q.Topics[0].Partitions[0]
		ids := func(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) []int32 {
			var out []int32
			for _, r := range rs {
				out = append(out, r.ReplicaID)
			}
			slices.Sort(out)
			return out
		}
		if got := ids(p.CurrentVoters); !slices.Equal(got, voters) {
			return fmt.Errorf("voters %v", got)
		}
		if got := ids(p.Observers); observers != nil && !slices.Equal(got, observers) {
			return fmt.Errorf("observers %v", got)
		}
		if p.LeaderID < 0 || !slices.Contains(voters, p.LeaderID) {
			return fmt.Errorf("leader %d", p.LeaderID)
		}
		return nil
	})
	return q
}
