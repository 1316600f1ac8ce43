package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createInternalTopic creates the internal topic name (one partition on
// replicas, the first its leader) straight through the controller, as the
// coordinators do (clients may not create it), and waits until node 1
// leads it with that ISR.
func (rc *replCluster) createInternalTopic(name string, replicas []int32) *Partition {
	t := rc.t
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, replicas
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	v := "compact"
	rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: "cleanup.policy", Value: &v})
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := rc.nodes[0].Forward(ctx, req)
	if err != nil || resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics %s: %v %+v", name, err, resp)
	}
	var p *Partition
	waitUntil(t, name+" led by node 1 with its ISR", func() bool {
		p = rc.tb.Reg.Partition(name, 0)
		if p == nil || p.notLeader.Load() {
			return false
		}
		p.lead.mu.Lock()
		defer p.lead.mu.Unlock()
		return p.lead.leading && len(p.lead.isr) == len(replicas)
	})
	return p
}

// TestGroupCoordinatorFollowsLeadership: on a replicated __consumer_offsets
// partition an OffsetCommit is answered only once the follower has the
// record (the high watermark passed it); losing the partition's leadership
// drops its groups (NOT_COORDINATOR), and leading it again loads them back
// from the log.
func TestGroupCoordinatorFollowsLeadership(t *testing.T) {
	rc := startReplCluster(t, 0, func(o *Options) { o.OffsetsTopicNumPartitions = 1 })
	b := rc.tb.Broker
	cl := rc.tb.client()
	follower := rc.tb.client()
	rc.createTopic(cl, "in", []int32{1}, nil)
	p := rc.createInternalTopic(offsetsTopic, []int32{1, 2})
	waitUntil(t, "the group's partition loaded", func() bool { return b.groupCode("g") == 0 })

	// Commits and fetches on their own connections: a connection's answers
	// go out in request order, so a fetch behind a waiting commit waits.
	adm, fadm := kadm.NewClient(cl), kadm.NewClient(rc.tb.client())
	commit := func(at int64) <-chan error {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var o kadm.Offsets
			o.Add(kadm.Offset{Topic: "in", Partition: 0, At: at, LeaderEpoch: -1})
			resp, err := adm.CommitOffsets(ctx, "g", o)
			if err == nil {
				err = resp.Error()
			}
			done <- err
		}()
		return done
	}
	fetched := func() int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := fadm.FetchOffsets(ctx, "g")
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("OffsetFetch: %v", err)
		}
		o, ok := resp.Lookup("in", 0)
		if !ok {
			return -1
		}
		return o.At
	}

	done := commit(5)
	waitUntil(t, "the commit's record appended", func() bool { return p.Log.LogEndOffset() == 1 })
	select {
	case err := <-done:
		t.Fatalf("commit answered (%v) before the follower had its record", err)
	default:
	}
	if at := fetched(); at != -1 {
		t.Fatalf("offset %d visible before the follower had its record", at)
	}
	if f := replFetch(t, follower, offsetsTopic, 2, 1, 0); f.ErrorCode != 0 || f.HighWatermark != 1 {
		t.Fatalf("follower fetch at 1: code %d hw %d", f.ErrorCode, f.HighWatermark)
	}
	if err := <-done; err != nil {
		t.Fatalf("commit once replicated: %v", err)
	}
	if at := fetched(); at != 5 {
		t.Fatalf("committed offset %d, want 5", at)
	}

	// The leadership moves to node 2: the group is dropped, never rewritten.
	end := p.Log.LogEndOffset()
	rc.moveLeader(cl, offsetsTopic, []int32{2, 1})
	waitUntil(t, "the group unloaded", func() bool { return b.groupCode("g") == kerr.NotCoordinator.Code })
	b.groups.mu.Lock()
	left := b.groups.g.Group("g")
	b.groups.mu.Unlock()
	if left != nil {
		t.Fatal("group still in memory after its partition's leadership moved")
	}
	if p.Log.LogEndOffset() != end {
		t.Fatalf("log end %d after the unload, want %d (nothing written)", p.Log.LogEndOffset(), end)
	}

	// And back: loaded from the log again.
	rc.moveLeader(cl, offsetsTopic, []int32{1, 2})
	waitUntil(t, "the group loaded again", func() bool { return b.groupCode("g") == 0 })
	if at := fetched(); at != 5 {
		t.Fatalf("committed offset %d after the reload, want 5", at)
	}
}
