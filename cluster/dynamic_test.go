package cluster

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/metadata"
)

// startDynamic starts node i (0-based) of a dynamic quorum whose
// controller endpoints are eps: node 0 is the standalone initial voter,
// the others join.
func startDynamic(t *testing.T, i int, eps []config.Voter, dirs []string) *Node {
	t.Helper()
	n, err := startDynamicErr(t, i, eps, dirs)
	if err != nil {
		t.Fatalf("node %d: %v", i+1, err)
	}
	return n
}

// startDynamicErr is startDynamic returning Start's error.
func startDynamicErr(t *testing.T, i int, eps []config.Voter, dirs []string) (*Node, error) {
	t.Helper()
	var bootstrap []string
	for _, v := range eps {
		bootstrap = append(bootstrap, v.Addr())
	}
	var initial []config.Voter
	if i == 0 {
		initial = eps[:1]
	}
	ctl := controller.DefaultConfig()
	ctl.SessionTimeout = 2 * time.Second
	return Start(Config{
		NodeID:            int32(i + 1),
		ClusterID:         "dyn-cluster",
		BootstrapServers:  bootstrap,
		InitialVoters:     initial,
		ControllerListen:  eps[i].Addr(),
		MetadataDir:       dirs[i],
		Endpoints:         []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(19100 + i)}},
		HeartbeatInterval: 200 * time.Millisecond,
		TickInterval:      20 * time.Millisecond,
		Controller:        ctl,
		Logger:            zaptest.NewLogger(t).Named(fmt.Sprint("node", i+1)),
	})
}

func addVoter(ctx context.Context, via *Node, clusterID string, v config.Voter, listener string) (int16, error) {
	req := kmsg.NewPtrAddRaftVoterRequest()
	req.Version = 1
	req.ClusterID, req.VoterID, req.TimeoutMillis = &clusterID, v.ID, 5000
	req.Listeners = []kmsg.AddRaftVoterRequestListener{{Name: listener, Host: v.Host, Port: uint16(v.Port)}}
	resp, err := via.Forward(ctx, req)
	if err != nil {
		return 0, err
	}
	return resp.(*kmsg.AddRaftVoterResponse).ErrorCode, nil
}

func removeVoter(ctx context.Context, via *Node, id int32) (int16, error) {
	req := kmsg.NewPtrRemoveRaftVoterRequest()
	cid := "dyn-cluster"
	req.ClusterID, req.VoterID = &cid, id
	resp, err := via.Forward(ctx, req)
	if err != nil {
		return 0, err
	}
	return resp.(*kmsg.RemoveRaftVoterResponse).ErrorCode, nil
}

// The controller's side of AddRaftVoter and RemoveRaftVoter, with Kafka's
// error codes, on three in-process nodes over loopback.
func TestDynamicQuorumVoterChanges(t *testing.T) {
	var eps []config.Voter
	var dirs []string
	for i := 1; i <= 3; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, config.Voter{ID: int32(i), Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port})
		l.Close()
		dirs = append(dirs, t.TempDir())
	}
	nodes := make([]*Node, 3)
	for i := range nodes {
		nodes[i] = startDynamic(t, i, eps, dirs)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = n.Close(ctx)
				cancel()
			}
		}
	})
	waitFor(t, "nodes 2 and 3 to join as learners", func() bool {
		st := nodes[0].Status()
		return slices.Equal(st.Voters, []uint64{2}) && slices.Equal(st.Learners, []uint64{3, 4}) &&
			nodes[1].isMember() && nodes[2].isMember()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, tc := range []struct {
		what     string
		voter    config.Voter
		cluster  string
		listener string
		want     int16
	}{
		{"another cluster id", eps[1], "other", "CONTROLLER", kerr.InconsistentClusterID.Code},
		{"no CONTROLLER listener", eps[1], "dyn-cluster", "PLAINTEXT", kerr.InvalidRequest.Code},
		{"an existing voter", eps[0], "dyn-cluster", "CONTROLLER", kerr.DuplicateVoter.Code},
		{"node 2", eps[1], "dyn-cluster", "CONTROLLER", 0},
		{"node 3", eps[2], "dyn-cluster", "CONTROLLER", 0},
	} {
		code, err := addVoter(ctx, nodes[2], tc.cluster, tc.voter, tc.listener)
		if err != nil || code != tc.want {
			t.Fatalf("AddRaftVoter %s: code %d, error %v; want %d", tc.what, code, err, tc.want)
		}
	}
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d to see three voters", i+1), func() bool {
			st := n.Status()
			return slices.Equal(st.Voters, []uint64{2, 3, 4}) && len(st.Learners) == 0 && len(st.Endpoints) == 3
		})
	}
	if code, err := removeVoter(ctx, nodes[1], 7); err != nil || code != kerr.VoterNotFound.Code {
		t.Fatalf("RemoveRaftVoter 7: %d %v", code, err)
	}

	// With node 3 down, removing node 2 would leave voters 1 and 3 of
	// which only 1 answers: refused.
	ctl := -1
	for i, n := range nodes {
		if n.ControllerID() == int32(i+1) {
			ctl = i
		}
	}
	down := (ctl + 1) % 3
	victim := (ctl + 2) % 3
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = nodes[down].Close(cctx)
	ccancel()
	nodes[down] = nil
	waitFor(t, "the controller to see the node down", func() bool {
		connected, _ := nodes[ctl].tr.PeerStatus(raftID(int32(down + 1)))
		return !connected
	})
	if code, err := removeVoter(ctx, nodes[victim], int32(victim+1)); err != nil || code != kerr.RequestTimedOut.Code {
		t.Fatalf("RemoveRaftVoter %d, which would lose the quorum: %d %v", victim+1, code, err)
	}
	if st := nodes[ctl].Status(); len(st.Voters) != 3 {
		t.Fatalf("voters after the refused removal: %v", st.Voters)
	}
	// Removing the node that is down is safe: the two that answer remain.
	if code, err := removeVoter(ctx, nodes[victim], int32(down+1)); err != nil || code != 0 {
		t.Fatalf("RemoveRaftVoter %d (down): %d %v", down+1, code, err)
	}
	waitFor(t, "two voters", func() bool {
		st := nodes[ctl].Status()
		return len(st.Voters) == 2 && slices.Equal(st.Learners, []uint64{raftID(int32(down + 1))})
	})

	// UpdateRaftVoter: a member's new endpoint reaches every member's log.
	update := func(id int32, listener string, port uint16) int16 {
		req := kmsg.NewPtrUpdateRaftVoterRequest()
		cid := "dyn-cluster"
		req.ClusterID, req.VoterID = &cid, id
		req.Listeners = []kmsg.UpdateRaftVoterRequestListener{{Name: listener, Host: "127.0.0.1", Port: port}}
		resp, err := nodes[victim].Forward(ctx, req)
		if err != nil {
			t.Fatalf("UpdateRaftVoter %d: %v", id, err)
		}
		return resp.(*kmsg.UpdateRaftVoterResponse).ErrorCode
	}
	if code := update(9, "CONTROLLER", 1); code != kerr.VoterNotFound.Code {
		t.Fatalf("UpdateRaftVoter of a non-member: %d", code)
	}
	if code := update(int32(down+1), "OTHER", 1); code != kerr.InvalidRequest.Code {
		t.Fatalf("UpdateRaftVoter without a CONTROLLER listener: %d", code)
	}
	if code := update(int32(down+1), "CONTROLLER", 1); code != 0 {
		t.Fatalf("UpdateRaftVoter: %d", code)
	}
	for _, i := range []int{ctl, victim} {
		waitFor(t, fmt.Sprintf("node %d to see the new endpoint", i+1), func() bool {
			return nodes[i].Status().Endpoints[raftID(int32(down+1))] == "127.0.0.1:1"
		})
	}
}

// A static quorum's voter set does not change: UNSUPPORTED_VERSION, as
// Kafka answers with kraft.version 0.
func TestStaticQuorumRefusesVoterChanges(t *testing.T) {
	tc := newTestCluster(t)
	waitFor(t, "an active controller", func() bool { return tc.controller() >= 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := addVoter(ctx, tc.nodes[0], "test-cluster", config.Voter{ID: 4, Host: "127.0.0.1", Port: 1}, "CONTROLLER")
	if err != nil || code != kerr.UnsupportedVersion.Code {
		t.Fatalf("AddRaftVoter: %d %v", code, err)
	}
	req := kmsg.NewPtrRemoveRaftVoterRequest()
	req.VoterID = 2
	resp, err := tc.nodes[1].Forward(ctx, req)
	if err != nil || resp.(*kmsg.RemoveRaftVoterResponse).ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("RemoveRaftVoter: %v %v", resp, err)
	}
}
