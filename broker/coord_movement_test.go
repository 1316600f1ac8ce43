package broker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createInternalTopic creates the internal topic name (one partition on
// replicas, the first its leader) straight through the controller, as the
// coordinators do (clients may not create it), with configs (name, value
// pairs) besides cleanup.policy=compact, and waits until node 1 leads it
// with that ISR.
func (rc *replCluster) createInternalTopic(name string, replicas []int32, configs ...string) *Partition {
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
	for i := 0; i+1 < len(configs); i += 2 {
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: configs[i], Value: &configs[i+1]})
	}
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

// TestTxnCoordinatorFollowsLeadership: on a replicated __transaction_state
// partition InitProducerId is answered once the follower has its record;
// losing the leadership drops the partition's Coordinator
// (NOT_COORDINATOR), and leading it again loads it from the log with the
// new leader epoch as its coordinator epoch: the id's next InitProducerId
// bumps the epoch of the producer id it already had.
func TestTxnCoordinatorFollowsLeadership(t *testing.T) {
	rc := startReplCluster(t, 0, func(o *Options) { o.Txn.StateLogNumPartitions = 1 })
	b := rc.tb.Broker
	tc := b.txns
	follower := rc.tb.client()
	p := rc.createInternalTopic(transactionStateTopic, []int32{1, 2})
	loaded := func() bool {
		tc.mu.Lock()
		defer tc.mu.Unlock()
		return tc.coords[0] != nil && !tc.loading[0]
	}
	waitUntil(t, "the partition's Coordinator loaded", loaded)

	// initPID sends InitProducerId for "tx" on a connection of its own
	// until it is not COORDINATOR_LOAD_IN_PROGRESS (the producer id block
	// being fetched), bounded.
	initPID := func() <-chan *kmsg.InitProducerIDResponse {
		out := make(chan *kmsg.InitProducerIDResponse, 1)
		cl := rc.tb.client()
		go func() {
			deadline := time.Now().Add(30 * time.Second)
			for {
				req := kmsg.NewPtrInitProducerIDRequest()
				req.TransactionalID = kmsg.StringPtr("tx")
				req.TransactionTimeoutMillis = 60000
				req.ProducerID, req.ProducerEpoch = -1, -1
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				resp, err := cl.SeedBrokers()[0].Request(ctx, req)
				cancel()
				if err != nil {
					r := kmsg.NewPtrInitProducerIDResponse()
					r.ErrorCode = kerr.UnknownServerError.Code
					out <- r
					return
				}
				r := resp.(*kmsg.InitProducerIDResponse)
				if r.ErrorCode != kerr.CoordinatorLoadInProgress.Code || time.Now().After(deadline) {
					out <- r
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		return out
	}

	first := initPID()
	waitUntil(t, "the InitProducerId record appended", func() bool { return p.Log.LogEndOffset() == 1 })
	select {
	case r := <-first:
		t.Fatalf("InitProducerId answered (%+v) before the follower had its record", r)
	default:
	}
	if f := replFetch(t, follower, transactionStateTopic, 2, 1, 0); f.ErrorCode != 0 || f.HighWatermark != 1 {
		t.Fatalf("follower fetch at 1: code %d hw %d", f.ErrorCode, f.HighWatermark)
	}
	r1 := <-first
	if r1.ErrorCode != 0 || r1.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId once replicated: %+v", r1)
	}
	epoch := p.leaderEpoch.Load()

	cl := rc.tb.client()
	rc.moveLeader(cl, transactionStateTopic, []int32{2, 1})
	waitUntil(t, "the Coordinator unloaded", func() bool {
		tc.mu.Lock()
		defer tc.mu.Unlock()
		return tc.coords[0] == nil
	})
	if r := <-initPID(); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("InitProducerId on a broker no longer leading the partition: %+v, want NOT_COORDINATOR", r)
	}

	rc.moveLeader(cl, transactionStateTopic, []int32{1, 2})
	waitUntil(t, "the Coordinator loaded again", loaded)
	tc.mu.Lock()
	coordEpoch := tc.loadEpoch[0]
	tc.mu.Unlock()
	if now := p.leaderEpoch.Load(); coordEpoch != now || now <= epoch {
		t.Fatalf("coordinator epoch %d, want the partition's new leader epoch %d (was %d)", coordEpoch, now, epoch)
	}
	second := initPID()
	end := p.Log.LogEndOffset()
	waitUntil(t, "the second InitProducerId record appended", func() bool { return p.Log.LogEndOffset() > end })
	if f := replFetch(t, follower, transactionStateTopic, 2, p.Log.LogEndOffset(), 0); f.ErrorCode != 0 {
		t.Fatalf("follower fetch at the new epoch: code %d", f.ErrorCode)
	}
	r2 := <-second
	if r2.ErrorCode != 0 || r2.ProducerID != r1.ProducerID || r2.ProducerEpoch != r1.ProducerEpoch+1 {
		t.Fatalf("InitProducerId after the reload: %+v, want producer id %d at epoch %d", r2, r1.ProducerID, r1.ProducerEpoch+1)
	}
}

// TestCoordinatorMinISR: with its ISR below the internal topic's
// min.insync.replicas an OffsetCommit is refused before the append with
// COORDINATOR_NOT_AVAILABLE (Kafka's mapping of NOT_ENOUGH_REPLICAS).
func TestCoordinatorMinISR(t *testing.T) {
	rc := startReplCluster(t, 300*time.Millisecond, func(o *Options) { o.OffsetsTopicNumPartitions = 1 })
	b := rc.tb.Broker
	cl := rc.tb.client()
	rc.createTopic(cl, "in", []int32{1}, nil)
	p := rc.createInternalTopic(offsetsTopic, []int32{1, 2}, "min.insync.replicas", "2")
	waitUntil(t, "the group's partition loaded", func() bool { return b.groupCode("g") == 0 })
	// Node 2 never fetches: it leaves the ISR after the lag time.
	waitUntil(t, "the ISR shrunk to node 1", func() bool { return slices.Equal(rc.isr(offsetsTopic), []int32{1}) })
	waitUntil(t, "node 1 applied the shrink", func() bool { return b.repl.inSync(p) == 1 })

	end := p.Log.LogEndOffset()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = "g", -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "in"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 5
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit below min.insync.replicas: %v, want COORDINATOR_NOT_AVAILABLE", kerr.ErrorForCode(code))
	}
	if got := p.Log.LogEndOffset(); got != end {
		t.Fatalf("log end %d after the refused commit, want %d (nothing appended)", got, end)
	}
}
