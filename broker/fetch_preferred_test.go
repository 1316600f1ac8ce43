package broker

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/storage"
)

// rackFetch sends one Fetch (kgo's newest version, >= 11) of partition 0
// of topic at offset from replica (-1: a consumer in rack) and returns the
// partition's answer. logStart is a follower's log_start_offset.
func rackFetch(t *testing.T, cl *kgo.Client, topic string, replica int32, offset int64, rack string, isolation int8, logStart int64) *kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.ReplicaState.ID, req.ReplicaState.Epoch = replica, replica, -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 1<<20
	req.SessionEpoch, req.Rack, req.IsolationLevel = -1, rack, isolation
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	ft.TopicID = topicIDOf(t, cl, topic)
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.LogStartOffset = 0, offset, 1<<20, logStart
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	fr := resp.(*kmsg.FetchResponse)
	if fr.Version < 11 || fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response: %+v", fr)
	}
	return &fr.Topics[0].Partitions[0]
}

// TestPreferredReadReplica: the leader (node 1, rack r1) sends a consumer
// in rack r2 to node 2 while node 2 is in the ISR, holds the fetch offset
// (log end and log start) and the consumer reads read_uncommitted; otherwise
// it reads from the leader.
func TestPreferredReadReplica(t *testing.T) {
	rc := startReplCluster(t, time.Second, func(o *Options) { o.RackAwareReplicaSelector = true })
	leaderAck, allAcks := rc.producer(1), rc.producer(-1)
	follower, consumer := rc.tb.client(), rc.tb.client()
	p := rc.createTopic(allAcks, "near", []int32{1, 2}, nil)

	if r := replProduce(t, leaderAck, "near", 10*time.Second, 3); r.ErrorCode != 0 {
		t.Fatalf("produce: %+v", r)
	}
	// The follower reads and reports its log end 3 and log start 0.
	if f := rackFetch(t, follower, "near", 2, 0, "", 0, 0); f.ErrorCode != 0 || recordsEnd(t, f) != 3 {
		t.Fatalf("follower fetch: %+v", f)
	}
	if f := rackFetch(t, follower, "near", 2, 3, "", 0, 0); f.ErrorCode != 0 || f.HighWatermark != 3 {
		t.Fatalf("follower fetch at its log end: %+v", f)
	}

	c := rackFetch(t, consumer, "near", -1, 0, "r2", 0, -1)
	if c.ErrorCode != 0 || c.PreferredReadReplica != 2 || len(c.RecordBatches) != 0 || c.HighWatermark != 3 || c.LastStableOffset != 3 {
		t.Fatalf("consumer in r2: error %d preferred %d, %d record bytes, hw %d lso %d; want node 2, no records",
			c.ErrorCode, c.PreferredReadReplica, len(c.RecordBatches), c.HighWatermark, c.LastStableOffset)
	}
	for _, tc := range []struct {
		what      string
		rack      string
		isolation int8
	}{{"the leader's rack", "r1", 0}, {"no rack", "", 0}, {"a rack without replicas", "r7", 0}} {
		c := rackFetch(t, consumer, "near", -1, 0, tc.rack, tc.isolation, -1)
		if c.ErrorCode != 0 || c.PreferredReadReplica != -1 || recordsEnd(t, c) != 3 {
			t.Errorf("consumer, %s: error %d preferred %d end %d; want the records from the leader", tc.what, c.ErrorCode, c.PreferredReadReplica, recordsEnd(t, c))
		}
	}

	// read_committed too (Kafka's selector does not look at the
	// isolation level): the follower keeps the producer state.
	if c := rackFetch(t, consumer, "near", -1, 0, "r2", 1, -1); c.ErrorCode != 0 || c.PreferredReadReplica != 2 || len(c.RecordBatches) != 0 || c.LastStableOffset != 3 {
		t.Errorf("read_committed consumer in r2: error %d preferred %d, %d record bytes, lso %d; want node 2, no records, lso 3",
			c.ErrorCode, c.PreferredReadReplica, len(c.RecordBatches), c.LastStableOffset)
	}

	// Past the follower's log end: the leader serves (its high watermark
	// has not moved either: nothing, no error).
	if r := replProduce(t, leaderAck, "near", 10*time.Second, 2); r.ErrorCode != 0 {
		t.Fatalf("produce: %+v", r)
	}
	if c := rackFetch(t, consumer, "near", -1, 4, "r2", 0, -1); c.ErrorCode != 0 || c.PreferredReadReplica != -1 || len(c.RecordBatches) != 0 {
		t.Errorf("consumer in r2 past the follower's log end: %+v", c)
	}
	// Below the follower's log start: the leader serves.
	if f := rackFetch(t, follower, "near", 2, 5, "", 0, 2); f.ErrorCode != 0 {
		t.Fatalf("follower fetch: %+v", f)
	}
	if c := rackFetch(t, consumer, "near", -1, 1, "r2", 0, -1); c.ErrorCode != 0 || c.PreferredReadReplica != -1 || recordsEnd(t, c) != 5 {
		t.Errorf("consumer in r2 below the follower's log start: preferred %d end %d", c.PreferredReadReplica, recordsEnd(t, c))
	}
	if c := rackFetch(t, consumer, "near", -1, 2, "r2", 0, -1); c.ErrorCode != 0 || c.PreferredReadReplica != 2 {
		t.Errorf("consumer in r2 at the follower's log start: preferred %d", c.PreferredReadReplica)
	}

	// The follower stops fetching: out of the ISR after
	// replica.lag.time.max.ms (once more records leave it behind), and no
	// longer named.
	if r := replProduce(t, leaderAck, "near", 10*time.Second, 1); r.ErrorCode != 0 {
		t.Fatalf("produce: %+v", r)
	}
	waitUntil(t, "node 2 out of the ISR", func() bool { return slices.Equal(rc.isr("near"), []int32{1}) })
	waitUntil(t, "the leader to follow the shrunk ISR", func() bool {
		p.lead.mu.Lock()
		defer p.lead.mu.Unlock()
		return len(p.lead.isr) == 1
	})
	if c := rackFetch(t, consumer, "near", -1, 2, "r2", 0, -1); c.ErrorCode != 0 || c.PreferredReadReplica != -1 || recordsEnd(t, c) != 6 {
		t.Errorf("consumer in r2 with node 2 out of the ISR: preferred %d end %d", c.PreferredReadReplica, recordsEnd(t, c))
	}
}

// TestFollowerServesConsumer: node 1 follows a partition led by node 2 (a
// cluster node without a broker; this test plays node 1's replica fetcher
// on the log). Consumer fetches are served up to the leader's high
// watermark as the fetcher last set it (never the log's own when that is
// above), read_committed ones up to the last stable offset, and sent back to
// the leader (preferred_read_replica 2) before the first one and once node 1
// is out of the ISR.
func TestFollowerServesConsumer(t *testing.T) {
	rc := startReplCluster(t, 0, func(o *Options) { o.RackAwareReplicaSelector = true })
	consumer := rc.tb.client()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "far", -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{2, 1}
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	if kresp, err := consumer.SeedBrokers()[0].Request(context.Background(), req); err != nil || kresp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics: %v %+v", err, kresp)
	}
	var p *Partition
	waitUntil(t, "far followed by node 1", func() bool {
		p = rc.tb.Reg.Partition("far", 0)
		return p != nil && p.notLeader.Load() && p.leaderEpoch.Load() >= 0 && slices.Equal(rc.isr("far"), []int32{2, 1})
	})

	// No high watermark from the leader yet (local mode): back to it.
	if c := rackFetch(t, consumer, "far", -1, 0, "r1", 0, -1); c.ErrorCode != 0 || c.PreferredReadReplica != 2 || len(c.RecordBatches) != 0 {
		t.Fatalf("follower in local mode: %+v", c)
	}

	// The fetcher's work: two batches (offsets 0-1, 2-4), high watermark 2.
	second := makeBatch([]byte("c"), []byte("d"), []byte("e"))
	binary.BigEndian.PutUint64(second, 2) // base offset (outside the CRC)
	for _, b := range [][]byte{makeBatch([]byte("a"), []byte("b")), second} {
		done := make(chan error, 1)
		if err := p.Log.AppendReplica(b, storage.AppendFunc(func(r storage.AppendResult) { done <- r.Err })); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// The appends in local mode moved the log's own high watermark to
	// its end (5), and it never goes back: the leader's (2) bounds the
	// consumer reads here.
	if c := rackFetch(t, consumer, "far", -1, 0, "r1", 0, -1); c.ErrorCode != 0 || c.PreferredReadReplica != 2 || len(c.RecordBatches) != 0 {
		t.Fatalf("follower without the leader's high watermark: %+v", c)
	}
	p.FollowerLog().SetHighWatermark(2)

	c := rackFetch(t, consumer, "far", -1, 0, "r1", 0, -1)
	if c.ErrorCode != 0 || c.PreferredReadReplica != -1 || c.HighWatermark != 2 || recordsEnd(t, c) != 2 || c.LastStableOffset != -1 {
		t.Fatalf("follower read: error %d preferred %d hw %d end %d lso %d; want records 0-1, hw 2",
			c.ErrorCode, c.PreferredReadReplica, c.HighWatermark, recordsEnd(t, c), c.LastStableOffset)
	}
	// Between the high watermark and the log end: nothing, no error; past
	// the log end: OFFSET_OUT_OF_RANGE (Kafka's LocalLog.read).
	if c := rackFetch(t, consumer, "far", -1, 2, "r1", 0, -1); c.ErrorCode != 0 || len(c.RecordBatches) != 0 || c.PreferredReadReplica != -1 {
		t.Errorf("follower at its high watermark: %+v", c)
	}
	if c := rackFetch(t, consumer, "far", -1, 9, "r1", 0, -1); c.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Errorf("follower past its log end: error %d", c.ErrorCode)
	}
	// read_committed: the follower loads its producer state from the log
	// (no transaction there): the last stable offset is the high
	// watermark.
	if c := rackFetch(t, consumer, "far", -1, 0, "r1", 1, -1); c.ErrorCode != 0 || c.PreferredReadReplica != -1 || recordsEnd(t, c) != 2 || c.LastStableOffset != 2 {
		t.Errorf("follower, read_committed: error %d preferred %d end %d lso %d; want records 0-1, lso 2",
			c.ErrorCode, c.PreferredReadReplica, recordsEnd(t, c), c.LastStableOffset)
	}
	// A long poll at the high watermark wakes when the fetcher moves it.
	p.FollowerLog().SetHighWatermark(5)
	third := makeBatch([]byte("f"), []byte("g"), []byte("h"))
	binary.BigEndian.PutUint64(third, 5)
	done := make(chan error, 1)
	if err := p.Log.AppendReplica(third, storage.AppendFunc(func(r storage.AppendResult) { done <- r.Err })); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if hw := p.Log.HighWatermark(); hw != 5 {
		t.Fatalf("high watermark %d after a replicated-mode append, want 5", hw)
	}
	poll := kmsg.NewPtrFetchRequest()
	poll.ReplicaID, poll.ReplicaState.ID, poll.ReplicaState.Epoch = -1, -1, -1
	poll.MaxWaitMillis, poll.MinBytes, poll.MaxBytes, poll.SessionEpoch, poll.Rack = 20000, 1, 1<<20, -1, "r1"
	pt := kmsg.NewFetchRequestTopic()
	pt.Topic, pt.TopicID = "far", topicIDOf(t, consumer, "far")
	pp := kmsg.NewFetchRequestTopicPartition()
	pp.FetchOffset, pp.PartitionMaxBytes = 5, 1<<20
	pt.Partitions = append(pt.Partitions, pp)
	poll.Topics = append(poll.Topics, pt)
	type polledResp struct {
		resp kmsg.Response
		err  error
	}
	polled := make(chan polledResp, 1)
	start := time.Now()
	go func() {
		resp, err := consumer.SeedBrokers()[0].Request(context.Background(), poll)
		polled <- polledResp{resp, err}
	}()
	p.FollowerLog().SetHighWatermark(8)
	r := <-polled
	if r.err != nil {
		t.Fatalf("long poll: %v", r.err)
	}
	if c := &r.resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]; c.ErrorCode != 0 || recordsEnd(t, c) != 8 || c.HighWatermark != 8 {
		t.Errorf("long poll on the follower: error %d end %d hw %d", c.ErrorCode, recordsEnd(t, c), c.HighWatermark)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("long poll on the follower answered after %v: not woken by the high watermark", d)
	}

	// A stale leader epoch is fenced here too.
	if c := rackFetchEpoch(t, consumer, "far", p.leaderEpoch.Load()+1); c.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("follower, leader epoch ahead: error %d", c.ErrorCode)
	}

	// Node 2 (the leader) takes node 1 out of the ISR.
	im := rc.nodes[1].Image()
	tp, _ := im.TopicByName("far")
	mp := tp.Partitions[0]
	ap := kmsg.NewAlterPartitionRequestTopicPartition()
	ap.Partition, ap.LeaderEpoch, ap.PartitionEpoch = 0, mp.LeaderEpoch, mp.PartitionEpoch
	e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
	e.BrokerID, e.BrokerEpoch = 2, -1
	if br, ok := im.Broker(2); ok {
		e.BrokerEpoch = br.Epoch
	}
	ap.NewEpochISR, ap.NewISR = append(ap.NewEpochISR, e), []int32{2}
	at := kmsg.NewAlterPartitionRequestTopic()
	at.TopicID, at.Topic, at.Partitions = tp.ID, tp.Name, []kmsg.AlterPartitionRequestTopicPartition{ap}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if resp, err := rc.nodes[1].AlterPartition(ctx, []kmsg.AlterPartitionRequestTopic{at}); err != nil || resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AlterPartition: %v %+v", err, resp)
	}
	waitUntil(t, "node 1 out of the ISR here", func() bool { return !rc.tb.Broker.followerInSync(p) })
	if c := rackFetch(t, consumer, "far", -1, 0, "r1", 0, -1); c.ErrorCode != 0 || c.PreferredReadReplica != 2 || len(c.RecordBatches) != 0 {
		t.Errorf("follower out of the ISR: %+v", c)
	}
}

// rackFetchEpoch is a consumer fetch at offset 0 with current_leader_epoch.
func rackFetchEpoch(t *testing.T, cl *kgo.Client, topic string, epoch int32) *kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.ReplicaState.ID, req.ReplicaState.Epoch = -1, -1, -1
	req.MaxBytes, req.SessionEpoch = 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, topicIDOf(t, cl, topic)
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, epoch
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return &resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
}

// TestSingleNodeRack: a single node advertises broker.rack in Metadata and
// DescribeCluster (null when unset).
func TestSingleNodeRack(t *testing.T) {
	for _, rack := range []string{"r1", ""} {
		tb := startTestBroker(t, netpoll.BackendPortable, func(o *Options, _ *RegistryOptions) { o.Rack = rack })
		cl := tb.client()
		mresp, err := cl.SeedBrokers()[0].Request(context.Background(), kmsg.NewPtrMetadataRequest())
		if err != nil {
			t.Fatal(err)
		}
		dresp, err := cl.SeedBrokers()[0].Request(context.Background(), kmsg.NewPtrDescribeClusterRequest())
		if err != nil {
			t.Fatal(err)
		}
		m, d := mresp.(*kmsg.MetadataResponse), dresp.(*kmsg.DescribeClusterResponse)
		if len(m.Brokers) != 1 || len(d.Brokers) != 1 {
			t.Fatalf("brokers: metadata %d, describe cluster %d", len(m.Brokers), len(d.Brokers))
		}
		for what, got := range map[string]*string{"Metadata": m.Brokers[0].Rack, "DescribeCluster": d.Brokers[0].Rack} {
			if rack == "" && got != nil || rack != "" && (got == nil || *got != rack) {
				t.Errorf("broker.rack %q: %s rack %v", rack, what, got)
			}
		}
	}
}

// TestFollowerReadCommitted: node 1 follows a partition led by node 2 (this
// test plays node 1's replica fetcher through Broker.FollowerLog). Its
// read_committed consumers get the last stable offset of the producer state
// it loads from its log and replays the replicated batches into: an open
// transaction holds it, an ABORT marker releases it with the transaction in
// aborted_transactions, a COMMIT marker releases it without.
func TestFollowerReadCommitted(t *testing.T) {
	rc := startReplCluster(t, 0, func(o *Options) { o.RackAwareReplicaSelector = true })
	consumer := rc.tb.client()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "far-txn", -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{2, 1}
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	if kresp, err := consumer.SeedBrokers()[0].Request(context.Background(), req); err != nil || kresp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics: %v %+v", err, kresp)
	}
	var p *Partition
	waitUntil(t, "far-txn followed by node 1", func() bool {
		p = rc.tb.Reg.Partition("far-txn", 0)
		return p != nil && p.notLeader.Load() && p.leaderEpoch.Load() >= 0 && slices.Equal(rc.isr("far-txn"), []int32{2, 1})
	})
	fl := rc.tb.Broker.FollowerLog(p)
	replicate := func(base int64, b []byte) {
		t.Helper()
		binary.BigEndian.PutUint64(b, uint64(base)) // outside the CRC
		done := make(chan error, 1)
		if err := fl.AppendReplica(b, storage.AppendFunc(func(r storage.AppendResult) { done <- r.Err })); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("append at %d: %v", base, err)
		}
	}
	now := time.Now().UnixMilli()
	committed := func(wantEnd, wantLSO int64, wantAborted ...int64) {
		t.Helper()
		c := rackFetch(t, consumer, "far-txn", -1, 0, "r1", 1, -1)
		var aborted []int64
		for _, a := range c.AbortedTransactions {
			aborted = append(aborted, a.ProducerID, a.FirstOffset)
		}
		end := int64(0)
		if len(c.RecordBatches) > 0 {
			end = recordsEnd(t, c)
		}
		if c.ErrorCode != 0 || c.PreferredReadReplica != -1 || end != wantEnd || c.LastStableOffset != wantLSO || !slices.Equal(aborted, wantAborted) {
			t.Fatalf("read_committed on the follower: error %d preferred %d end %d lso %d aborted (pid, first) %v; want end %d lso %d aborted %v",
				c.ErrorCode, c.PreferredReadReplica, end, c.LastStableOffset, aborted, wantEnd, wantLSO, wantAborted)
		}
	}

	// Producer 7's transaction (0-1) is open, then a plain record (2).
	replicate(0, txnBatch(7, 0, 0, []byte("a"), []byte("b")))
	replicate(2, makeBatch([]byte("c")))
	fl.SetHighWatermark(3)
	committed(0, 0) // the state is loaded from the log: the transaction holds the LSO at 0

	// Producer 7 aborts (3); producer 8's transaction opens (4); a plain
	// record (5). Replayed before the high watermark moves.
	replicate(3, buildMarker(7, 0, false, 0, now))
	replicate(4, txnBatch(8, 0, 0, []byte("d")))
	replicate(5, makeBatch([]byte("e")))
	fl.SetHighWatermark(6)
	committed(4, 4, 7, 0)

	// Producer 8 commits (6): everything up to the high watermark.
	replicate(6, buildMarker(8, 0, true, 0, now))
	fl.SetHighWatermark(7)
	committed(7, 7, 7, 0)

	// read_uncommitted sees everything below the high watermark.
	if c := rackFetch(t, consumer, "far-txn", -1, 0, "r1", 0, -1); c.ErrorCode != 0 || recordsEnd(t, c) != 7 {
		t.Fatalf("read_uncommitted on the follower: error %d end %d", c.ErrorCode, recordsEnd(t, c))
	}
	// The aborted transaction's index entry is on the follower's log.
	if got := p.Log.AbortedTxns(0, 7); len(got) != 1 || got[0].ProducerID != 7 || got[0].FirstOffset != 0 || got[0].LastOffset != 3 {
		t.Fatalf("follower's transaction index: %+v", got)
	}
}
