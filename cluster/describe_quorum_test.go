package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/config"
)

// describeQuorumVia sends DescribeQuorum v2 for __cluster_metadata-0
// through node i (forwarded to the active controller).
func (tc *testCluster) describeQuorumVia(i int) (kmsg.DescribeQuorumResponseTopicPartition, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeQuorumRequest()
	req.Version = 2
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := tc.nodes[i].Forward(ctx, req)
	if err != nil {
		return kmsg.DescribeQuorumResponseTopicPartition{}, err
	}
	q := resp.(*kmsg.DescribeQuorumResponse)
	if len(q.Topics) != 1 || len(q.Topics[0].Partitions) != 1 {
		return kmsg.DescribeQuorumResponseTopicPartition{}, fmt.Errorf("answer %+v", q)
	}
	return q.Topics[0].Partitions[0], nil
}

// TestDescribeQuorumTimes: DescribeQuorum names each voter's log end
// offset and its last fetch and caught-up times as the leader saw them
// (the leader itself at the time of the answer): recent, ordered, moving
// on an idle quorum; a stopped voter's stand still and fall behind.
func TestDescribeQuorumTimes(t *testing.T) {
	tc := newTestCluster(t)
	waitFor(t, "an active controller and three registered brokers", func() bool {
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
	ctl := tc.controller()
	via := (ctl + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := createTopic(ctx, tc.nodes[via], "dq", 3); err != nil {
		t.Fatal(err)
	}

	var first kmsg.DescribeQuorumResponseTopicPartition
	waitFor(t, "every voter stamped", func() bool {
		p, err := tc.describeQuorumVia(via)
		if err != nil || p.ErrorCode != 0 || len(p.CurrentVoters) != 3 {
			return false
		}
		for _, v := range p.CurrentVoters {
			if v.LastFetchTimestamp < 0 || v.LastCaughtUpTimestamp < 0 || v.LogEndOffset < 0 {
				return false
			}
		}
		first = p
		return true
	})
	answered := time.Now().UnixMilli()
	if first.LeaderID != int32(ctl+1) || first.HighWatermark <= 1 || len(first.Observers) != 0 {
		t.Fatalf("leader %d (controller node %d), high watermark %d, observers %+v", first.LeaderID, ctl+1, first.HighWatermark, first.Observers)
	}
	for _, v := range first.CurrentVoters {
		// Recent: within a few seconds of the answer (heartbeats every
		// 20 ms tick); ordered: caught up no later than fetched; the log
		// end offset an exclusive offset at or past the high watermark's
		// neighbourhood (a follower may still be one append behind).
		if answered-v.LastFetchTimestamp > 5000 || v.LastCaughtUpTimestamp > v.LastFetchTimestamp ||
			v.LastFetchTimestamp > answered || v.LogEndOffset <= 1 || v.LogEndOffset > first.HighWatermark+10 {
			t.Errorf("voter %d: %+v (answered at %d, high watermark %d)", v.ReplicaID, v, answered, first.HighWatermark)
		}
		if v.ReplicaID == first.LeaderID && v.LogEndOffset < first.HighWatermark {
			t.Errorf("leader's log end offset %d below the high watermark %d", v.LogEndOffset, first.HighWatermark)
		}
	}

	// Idle: the times still move (heartbeat answers).
	byID := func(p kmsg.DescribeQuorumResponseTopicPartition, id int32) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		i := slices.IndexFunc(p.CurrentVoters, func(v kmsg.DescribeQuorumResponseTopicPartitionReplicaState) bool { return v.ReplicaID == id })
		if i < 0 {
			t.Fatalf("voter %d missing: %+v", id, p.CurrentVoters)
		}
		return p.CurrentVoters[i]
	}
	stopped := int32((ctl+2)%3 + 1)
	live := int32(via + 1)
	waitFor(t, "the followers' times to move", func() bool {
		p, err := tc.describeQuorumVia(via)
		if err != nil || p.ErrorCode != 0 {
			return false
		}
		for _, id := range []int32{live, stopped} {
			if byID(p, id).LastFetchTimestamp <= byID(first, id).LastFetchTimestamp ||
				byID(p, id).LastCaughtUpTimestamp <= byID(first, id).LastCaughtUpTimestamp {
				return false
			}
		}
		return true
	})

	// A stopped voter: its times stand still while the live one's move.
	tc.stop(int(stopped - 1))
	var atStop kmsg.DescribeQuorumResponseTopicPartition
	waitFor(t, "the leader to stop hearing from the stopped voter", func() bool {
		p, err := tc.describeQuorumVia(via)
		if err != nil || p.ErrorCode != 0 {
			return false
		}
		// Unchanged between two answers while the live voter's moved:
		// heartbeats went out meanwhile and the stopped voter answered none.
		done := atStop.CurrentVoters != nil && sameLine(byID(p, stopped), byID(atStop, stopped)) &&
			byID(p, live).LastFetchTimestamp > byID(atStop, live).LastFetchTimestamp
		atStop = p
		return done
	})
	if err := createTopic(ctx, tc.nodes[via], "dq-2", 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the live voter's times to pass the stopped one's", func() bool {
		p, err := tc.describeQuorumVia(via)
		if err != nil || p.ErrorCode != 0 {
			return false
		}
		s, l := byID(p, stopped), byID(p, live)
		if !sameLine(s, byID(atStop, stopped)) {
			t.Fatalf("stopped voter %d's line moved: %+v then %+v", stopped, byID(atStop, stopped), s)
		}
		return l.LastFetchTimestamp > s.LastFetchTimestamp+200 && l.LastCaughtUpTimestamp > s.LastCaughtUpTimestamp+200 &&
			l.LogEndOffset > s.LogEndOffset
	})
}

// sameLine: two answers show a member alike.
func sameLine(a, b kmsg.DescribeQuorumResponseTopicPartitionReplicaState) bool {
	return a.ReplicaID == b.ReplicaID && a.LogEndOffset == b.LogEndOffset &&
		a.LastFetchTimestamp == b.LastFetchTimestamp && a.LastCaughtUpTimestamp == b.LastCaughtUpTimestamp
}

// TestDynamicQuorumDirectoryIDs: a dynamic quorum's members carry the
// directory id of their metadata dir's meta.properties (the standalone
// voter its own at the bootstrap, a joining node in its join request,
// AddRaftVoter's), DescribeQuorum answers them, a RemoveRaftVoter naming
// another directory id is VOTER_NOT_FOUND (Kafka's voter key is the pair),
// and they survive a restart (replayed from the log's configuration
// changes; TestMembersEncodingDirectoryIDs covers the snapshot header).
func TestDynamicQuorumDirectoryIDs(t *testing.T) {
	var eps []config.Voter
	var dirs []string
	dirIDs := [][16]byte{{0xa1, 1}, {0xb2, 2}}
	for i := 1; i <= 2; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, config.Voter{ID: int32(i), Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port})
		l.Close()
		dir := t.TempDir()
		meta := fmt.Sprintf("version=1\ncluster.id=dyn-cluster\nnode.id=%d\ndirectory.id=%s\n", i, kafkaUUID(dirIDs[i-1]))
		if err := os.WriteFile(filepath.Join(dir, "meta.properties"), []byte(meta), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	nodes := make([]*Node, 2)
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
	describe := func(via *Node) (kmsg.DescribeQuorumResponseTopicPartition, error) {
		tc := &testCluster{t: t, nodes: []*Node{via}}
		return tc.describeQuorumVia(0)
	}
	dirOf := func(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState, id int32) ([16]byte, bool) {
		for _, r := range rs {
			if r.ReplicaID == id {
				return r.ReplicaDirectoryID, true
			}
		}
		return [16]byte{}, false
	}
	waitFor(t, "node 2 to join as an observer with its directory id", func() bool {
		p, err := describe(nodes[1])
		if err != nil || p.ErrorCode != 0 {
			return false
		}
		d1, ok1 := dirOf(p.CurrentVoters, 1)
		d2, ok2 := dirOf(p.Observers, 2)
		return ok1 && ok2 && d1 == dirIDs[0] && d2 == dirIDs[1]
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	add := kmsg.NewPtrAddRaftVoterRequest()
	add.Version = 1
	cid := "dyn-cluster"
	add.ClusterID, add.VoterID, add.VoterDirectoryID, add.TimeoutMillis = &cid, 2, dirIDs[1], 5000
	add.Listeners = []kmsg.AddRaftVoterRequestListener{{Name: "CONTROLLER", Host: eps[1].Host, Port: uint16(eps[1].Port)}}
	resp, err := nodes[0].Forward(ctx, add)
	if err != nil || resp.(*kmsg.AddRaftVoterResponse).ErrorCode != 0 {
		t.Fatalf("AddRaftVoter 2: %v %+v", err, resp)
	}
	waitFor(t, "two voters with their directory ids", func() bool {
		p, err := describe(nodes[0])
		if err != nil || p.ErrorCode != 0 || len(p.CurrentVoters) != 2 {
			return false
		}
		d1, _ := dirOf(p.CurrentVoters, 1)
		d2, _ := dirOf(p.CurrentVoters, 2)
		return d1 == dirIDs[0] && d2 == dirIDs[1]
	})

	rm := kmsg.NewPtrRemoveRaftVoterRequest()
	rm.ClusterID, rm.VoterID, rm.VoterDirectoryID = &cid, 2, [16]byte{0xee}
	resp, err = nodes[0].Forward(ctx, rm)
	if err != nil || resp.(*kmsg.RemoveRaftVoterResponse).ErrorCode != kerr.VoterNotFound.Code {
		t.Fatalf("RemoveRaftVoter 2 with another directory id: %v %+v, want VOTER_NOT_FOUND", err, resp)
	}

	// A restart of both rebuilds the members from the log.
	for i := range nodes {
		closeNode(t, nodes[i])
		nodes[i] = nil
	}
	for i := range nodes {
		nodes[i] = startDynamic(t, i, eps, dirs)
	}
	waitFor(t, "the directory ids after a restart", func() bool {
		for _, n := range nodes {
			st := n.Status()
			if st.DirectoryIDs[raftID(1)] != dirIDs[0] || st.DirectoryIDs[raftID(2)] != dirIDs[1] {
				return false
			}
		}
		return true
	})

	rm.VoterDirectoryID = dirIDs[1]
	waitFor(t, "RemoveRaftVoter 2 with its directory id", func() bool {
		resp, err := nodes[0].Forward(ctx, rm)
		return err == nil && resp.(*kmsg.RemoveRaftVoterResponse).ErrorCode == 0
	})
}
