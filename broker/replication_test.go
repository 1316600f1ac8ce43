package broker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/cluster"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/storage"
)

// The leader's side of replication over real sockets: a two-node cluster
// (two voters, real quorum and controller) where node 1 is a whole broker
// and node 2 a cluster node without a broker. The test plays node 2's
// replica fetcher with Fetch requests carrying replica id 2.

// nodeProxy is the broker's Cluster until the node has started (the node
// needs the broker's OnMetadata, the broker a Cluster).
type nodeProxy struct{ n atomic.Pointer[cluster.Node] }

func (p *nodeProxy) Image() *metadata.Image {
	if n := p.n.Load(); n != nil {
		return n.Image()
	}
	return &metadata.Image{}
}

func (p *nodeProxy) ControllerID() int32 {
	if n := p.n.Load(); n != nil {
		return n.ControllerID()
	}
	return -1
}

func (p *nodeProxy) Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if n := p.n.Load(); n != nil {
		return n.Forward(ctx, req)
	}
	return nil, kerr.NotController
}

func (p *nodeProxy) AllocateProducerIDs(ctx context.Context) (int64, int32, error) {
	if n := p.n.Load(); n != nil {
		return n.AllocateProducerIDs(ctx)
	}
	return 0, 0, kerr.NotController
}

func (p *nodeProxy) AlterPartition(ctx context.Context, topics []kmsg.AlterPartitionRequestTopic) (*kmsg.AlterPartitionResponse, error) {
	if n := p.n.Load(); n != nil {
		return n.AlterPartition(ctx, topics)
	}
	return nil, kerr.NotController
}

// replCluster is node 1 (broker) and node 2 (cluster node only).
type replCluster struct {
	t     *testing.T
	tb    *testBroker
	nodes [2]*cluster.Node
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startReplCluster starts the two nodes with replica.lag.time.max.ms lag
// and waits until both brokers are registered and unfenced.
// Options of node 1's broker may be adjusted by more.
func startReplCluster(t *testing.T, lag time.Duration, more ...func(*Options)) *replCluster {
	t.Helper()
	proxy := &nodeProxy{}
	tb := startTestBroker(t, netpoll.BackendPortable, func(o *Options, ro *RegistryOptions) {
		o.NodeID, ro.NodeID = 1, 1
		o.Cluster = proxy
		o.ReplicaLagTimeMax = lag
		for _, f := range more {
			f(o)
		}
	})
	rc := &replCluster{t: t, tb: tb}
	voters := []config.Voter{{ID: 1, Host: "127.0.0.1", Port: freePort(t)}, {ID: 2, Host: "127.0.0.1", Port: freePort(t)}}
	for i := range rc.nodes {
		ctl := controller.DefaultConfig()
		ctl.SessionTimeout = 5 * time.Second
		cfg := cluster.Config{
			NodeID:            int32(i + 1),
			ClusterID:         tb.Reg.ClusterID(),
			Voters:            voters,
			MetadataDir:       t.TempDir(),
			Endpoints:         []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(tb.Broker.opts.AdvertisedPort)}},
			HeartbeatInterval: 100 * time.Millisecond,
			TickInterval:      20 * time.Millisecond,
			Controller:        ctl,
			Logger:            zaptest.NewLogger(t).Named(fmt.Sprint("node", i+1)),
			// The nodes stop only at the test's end, both of them: a
			// controlled shutdown would wait for a controller that the
			// other node's exit took away (cluster/lifecycle.go).
			NoControlledShutdown: true,
		}
		if tb.Broker.opts.RackAwareReplicaSelector {
			cfg.Rack = fmt.Sprintf("r%d", i+1) // fetch_preferred_test.go
		}
		if i == 0 {
			cfg.OnMetadata = tb.Broker.OnMetadata
		} else {
			cfg.Endpoints[0].Port = uint16(freePort(t)) // nobody serves it
		}
		n, err := cluster.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rc.nodes[i] = n
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = n.Close(ctx)
		})
		if i == 0 {
			proxy.n.Store(n)
		}
	}
	waitUntil(t, "both brokers registered and unfenced", func() bool {
		im := rc.nodes[0].Image()
		return isLive(im, 1) && isLive(im, 2)
	})
	return rc
}

// waitUntil polls cond until it holds, failing the test after a bound.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// createTopic creates topic with one partition on replicas, through the
// broker (forwarded to the controller), and waits until node 1 leads it.
func (rc *replCluster) createTopic(cl *kgo.Client, topic string, replicas []int32, configs map[string]string) *Partition {
	t := rc.t
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, replicas
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	for k, v := range configs {
		v := v
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: &v})
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	// To node 1 itself (node 2 serves no clients): it forwards.
	kresp, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil || kresp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics %s: %v %+v", topic, err, kresp)
	}
	var p *Partition
	waitUntil(t, topic+" led by node 1 with its ISR", func() bool {
		p = rc.tb.Reg.Partition(topic, 0)
		if p == nil || p.notLeader.Load() {
			return false
		}
		p.lead.mu.Lock()
		defer p.lead.mu.Unlock()
		return p.lead.leading && len(p.lead.isr) == len(replicas)
	})
	return p
}

// isr is the partition's ISR in node 1's image.
func (rc *replCluster) isr(topic string) []int32 {
	tp, ok := rc.nodes[0].Image().TopicByName(topic)
	if !ok {
		return nil
	}
	return tp.Partitions[0].ISR
}

// replProducer is a client whose raw Produce requests carry acks (kgo
// sets a ProduceRequest's acks from its own configuration).
func (rc *replCluster) producer(acks int16) *kgo.Client {
	if acks == -1 {
		return rc.tb.client()
	}
	return rc.tb.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
}

// replProduce sends one Produce of n records to partition 0 of topic
// with cl (its acks) and timeout.
func replProduce(t *testing.T, cl *kgo.Client, topic string, timeout time.Duration, n int) *kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.TimeoutMillis = int32(timeout / time.Millisecond)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	values := make([][]byte, n)
	for i := range values {
		values[i] = []byte(fmt.Sprintf("v%d", i))
	}
	rp.Records = makeBatch(values...)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return &resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

// replFetch sends one Fetch for partition 0 of topic from replica (-1: a
// consumer) at offset.
func replFetch(t *testing.T, cl *kgo.Client, topic string, replica int32, offset int64, maxWait time.Duration) *kmsg.FetchResponseTopicPartition {
	t.Helper()
	return replFetchEpoch(t, cl, topic, replica, offset, maxWait, -1)
}

// replFetchEpoch is replFetch with current_leader_epoch epoch.
func replFetchEpoch(t *testing.T, cl *kgo.Client, topic string, replica int32, offset int64, maxWait time.Duration, epoch int32) *kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.ReplicaState.ID, req.ReplicaState.Epoch = replica, replica, -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = int32(maxWait/time.Millisecond), 1, 1<<20
	req.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	ft.TopicID = topicIDOf(t, cl, topic)
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset, fp.LastFetchedEpoch = 0, offset, 1<<20, epoch, -1, -1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	fr := resp.(*kmsg.FetchResponse)
	if fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response: %+v", fr)
	}
	return &fr.Topics[0].Partitions[0]
}

// topicIDOf is topic's id from a Metadata request (Fetch v13+ names
// topics by id).
func topicIDOf(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	kresp, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil || len(kresp.(*kmsg.MetadataResponse).Topics) != 1 {
		t.Fatalf("metadata: %v", err)
	}
	return kresp.(*kmsg.MetadataResponse).Topics[0].TopicID
}

// recordsEnd is the offset after the last record in a fetch response's
// record batches (-1 when there are none).
func recordsEnd(t *testing.T, p *kmsg.FetchResponseTopicPartition) int64 {
	t.Helper()
	end := int64(-1)
	raw := p.RecordBatches
	for len(raw) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			t.Fatalf("record batch: %v", err)
		}
		end = b.FirstOffset + int64(b.LastOffsetDelta) + 1
		raw = raw[12+int(b.Length):]
	}
	return end
}

// TestLeaderReplication: the high watermark is the ISR's smallest log end,
// a follower reads past it, consumers do not, and acks=all waits for the
// follower.
func TestLeaderReplication(t *testing.T) {
	rc := startReplCluster(t, 0) // replica.lag.time.max.ms: Kafka's 30 s
	leaderAck, allAcks := rc.producer(1), rc.producer(-1)
	follower := rc.tb.client()
	consumer := rc.tb.client()
	p := rc.createTopic(allAcks, "repl", []int32{1, 2}, nil)
	if !slices.Equal(rc.isr("repl"), []int32{1, 2}) || !p.Log.Replicated() {
		t.Fatalf("ISR %v replicated %v, want [1 2] and replicated", rc.isr("repl"), p.Log.Replicated())
	}

	// acks=1: appended, not yet on the follower.
	if r := replProduce(t, leaderAck, "repl", 10*time.Second, 3); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("produce acks=1: %+v", r)
	}
	if leo, hw := p.Log.LogEndOffset(), p.Log.HighWatermark(); leo != 3 || hw != 0 {
		t.Fatalf("log end %d hw %d, want 3 and 0", leo, hw)
	}
	// A consumer sees nothing below the high watermark.
	if c := replFetch(t, consumer, "repl", -1, 0, 0); c.ErrorCode != 0 || c.HighWatermark != 0 || recordsEnd(t, c) != -1 {
		t.Fatalf("consumer fetch: code %d hw %d end %d", c.ErrorCode, c.HighWatermark, recordsEnd(t, c))
	}
	// A replica that is not a follower of the partition is refused
	// (Kafka: UNKNOWN_LEADER_EPOCH when the request names the epoch).
	if f := replFetch(t, follower, "repl", 3, 0, 0); f.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch from replica 3: code %d", f.ErrorCode)
	}
	epoch := p.leaderEpoch.Load()
	if f := replFetchEpoch(t, follower, "repl", 3, 0, 0, epoch); f.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("fetch from replica 3 at epoch %d: code %d", epoch, f.ErrorCode)
	}
	// Leader epochs are fenced.
	if f := replFetchEpoch(t, follower, "repl", 2, 0, 0, epoch+1); f.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("follower fetch at epoch %d: code %d", epoch+1, f.ErrorCode)
	}
	if epoch > 0 {
		if c := replFetchEpoch(t, consumer, "repl", -1, 0, 0, epoch-1); c.ErrorCode != kerr.FencedLeaderEpoch.Code {
			t.Fatalf("consumer fetch at epoch %d: code %d", epoch-1, c.ErrorCode)
		}
	}
	// The follower reads past the high watermark, up to the log end.
	f := replFetch(t, follower, "repl", 2, 0, 0)
	if f.ErrorCode != 0 || recordsEnd(t, f) != 3 || f.HighWatermark != 0 {
		t.Fatalf("follower fetch at 0: code %d end %d hw %d", f.ErrorCode, recordsEnd(t, f), f.HighWatermark)
	}
	// Its next fetch offset is its log end: the high watermark follows.
	f = replFetch(t, follower, "repl", 2, 3, 0)
	if f.ErrorCode != 0 || f.HighWatermark != 3 || p.Log.HighWatermark() != 3 {
		t.Fatalf("follower fetch at 3: code %d hw %d (log %d)", f.ErrorCode, f.HighWatermark, p.Log.HighWatermark())
	}
	if c := replFetch(t, consumer, "repl", -1, 0, 0); c.ErrorCode != 0 || c.HighWatermark != 3 || recordsEnd(t, c) != 3 {
		t.Fatalf("consumer fetch after: code %d hw %d end %d", c.ErrorCode, c.HighWatermark, recordsEnd(t, c))
	}
	// Fetch before v15 names the replica in replica_id.
	old := rc.tb.client(kgo.MaxVersions(kversion.V3_4_0()))
	if f := replFetch(t, old, "repl", 2, 0, 0); f.ErrorCode != 0 || recordsEnd(t, f) != 3 || f.HighWatermark != 3 {
		t.Fatalf("follower fetch v13: code %d end %d hw %d", f.ErrorCode, recordsEnd(t, f), f.HighWatermark)
	}
	if c := replFetch(t, old, "repl", 3, 0, 0); c.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch v13 from replica 3: code %d", c.ErrorCode)
	}
	// Past the log end is out of range for the follower too.
	if f := replFetch(t, follower, "repl", 2, 4, 0); f.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("follower fetch at 4: code %d", f.ErrorCode)
	}

	// acks=all waits for the follower: a follower long poll at the log
	// end is woken by the append; the produce is answered only after the
	// follower's next fetch reports it.
	polled := make(chan *kmsg.FetchResponseTopicPartition, 1)
	go func() { polled <- replFetch(t, follower, "repl", 2, 3, 10*time.Second) }()
	acked := make(chan *kmsg.ProduceResponseTopicPartition, 1)
	go func() { acked <- replProduce(t, allAcks, "repl", 20*time.Second, 2) }()
	f = <-polled
	if f.ErrorCode != 0 || recordsEnd(t, f) != 5 || f.HighWatermark != 3 {
		t.Fatalf("follower long poll: code %d end %d hw %d", f.ErrorCode, recordsEnd(t, f), f.HighWatermark)
	}
	waitUntil(t, "the acks=all produce waits", func() bool { return rc.tb.Broker.repl.acks.n.Load() == 1 })
	select {
	case r := <-acked:
		t.Fatalf("acks=all answered before the follower had the records: %+v", r)
	default:
	}
	if f := replFetch(t, follower, "repl", 2, 5, 0); f.HighWatermark != 5 {
		t.Fatalf("follower fetch at 5: hw %d", f.HighWatermark)
	}
	if r := <-acked; r.ErrorCode != 0 || r.BaseOffset != 3 {
		t.Fatalf("acks=all: %+v", r)
	}

	// Without a follower fetch, acks=all times out; the records stay.
	if r := replProduce(t, allAcks, "repl", 200*time.Millisecond, 1); r.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("acks=all without the follower: %+v, want REQUEST_TIMED_OUT", r)
	}
	if leo, hw := p.Log.LogEndOffset(), p.Log.HighWatermark(); leo != 6 || hw != 5 {
		t.Fatalf("log end %d hw %d, want 6 and 5", leo, hw)
	}
	if n := rc.tb.Broker.repl.acks.n.Load(); n != 0 {
		t.Fatalf("%d acks=all waits left", n)
	}
	// acks=1 is answered at once, as before.
	if r := replProduce(t, leaderAck, "repl", 10*time.Second, 1); r.ErrorCode != 0 || r.BaseOffset != 6 {
		t.Fatalf("produce acks=1: %+v", r)
	}

	// Stopping (before the server drains) answers a waiting acks=all
	// at once, and any later one.
	go func() { acked <- replProduce(t, allAcks, "repl", 20*time.Second, 1) }()
	waitUntil(t, "the acks=all produce waits", func() bool { return rc.tb.Broker.repl.acks.n.Load() == 1 })
	rc.tb.Broker.StopReplication()
	if r := <-acked; r.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("acks=all at shutdown: %+v, want NOT_LEADER_OR_FOLLOWER", r)
	}
	if r := replProduce(t, allAcks, "repl", 20*time.Second, 1); r.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("acks=all after StopReplication: %+v, want NOT_LEADER_OR_FOLLOWER", r)
	}
}

// TestLeaderShrinksAndExpandsISR: a follower that stops fetching leaves
// the ISR after replica.lag.time.max.ms (through the controller); an
// acks=all produce waiting then is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND
// (min.insync.replicas=2), later ones NOT_ENOUGH_REPLICAS; the follower
// rejoins once it fetches up to the high watermark.
func TestLeaderShrinksAndExpandsISR(t *testing.T) {
	rc := startReplCluster(t, time.Second)
	leaderAck, allAcks := rc.producer(1), rc.producer(-1)
	follower := rc.tb.client()
	p := rc.createTopic(allAcks, "shrink", []int32{1, 2}, map[string]string{"min.insync.replicas": "2"})
	// The follower is caught up (at the log end, 0), then stops fetching.
	if f := replFetch(t, follower, "shrink", 2, 0, 0); f.ErrorCode != 0 {
		t.Fatalf("follower fetch: code %d", f.ErrorCode)
	}
	acked := make(chan *kmsg.ProduceResponseTopicPartition, 1)
	go func() { acked <- replProduce(t, allAcks, "shrink", 30*time.Second, 1) }()
	waitUntil(t, "the acks=all produce waits", func() bool { return rc.tb.Broker.repl.acks.n.Load() == 1 })
	// It leaves the ISR: the waiting produce is answered.
	if r := <-acked; r.ErrorCode != kerr.NotEnoughReplicasAfterAppend.Code || r.BaseOffset != 0 {
		t.Fatalf("acks=all while the ISR shrank below min.insync.replicas: %+v, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", r)
	}
	if isr := rc.isr("shrink"); !slices.Equal(isr, []int32{1}) {
		t.Fatalf("ISR %v, want [1]", isr)
	}
	// An ISR of the leader alone: the log follows its writes again.
	waitUntil(t, "the log back in local mode", func() bool { return !p.Log.Replicated() })
	if hw := p.Log.HighWatermark(); hw != 1 {
		t.Fatalf("hw %d after the shrink, want 1 (the log end)", hw)
	}
	if r := replProduce(t, allAcks, "shrink", 10*time.Second, 1); r.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with ISR [1] and min.insync.replicas=2: %+v, want NOT_ENOUGH_REPLICAS", r)
	}
	// An append that passed the check before the ISR shrank to [1] and
	// completes after it (the log is in local mode, nothing to wait for)
	// is still answered NOT_ENOUGH_REPLICAS_AFTER_APPEND, never NONE: a
	// later leader from the old ISR may lack it.
	codes := make(chan int16, 1)
	res := storage.AppendResult{BaseOffset: 0, LastOffset: 0}
	if !rc.tb.Broker.repl.waitReplicated(p, res, 2, time.Second, func(code int16) { codes <- code }) {
		t.Fatal("an append completing with the ISR below min.insync.replicas was answered as acknowledged")
	}
	if c := <-codes; c != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("append completing after the ISR shrank to [1]: %s, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", codeName(c))
	}
	if r := replProduce(t, leaderAck, "shrink", 10*time.Second, 1); r.ErrorCode != 0 || r.BaseOffset != 1 {
		t.Fatalf("acks=1 with a small ISR: %+v", r)
	}
	// The follower catches up to the log end: it rejoins.
	if f := replFetch(t, follower, "shrink", 2, 0, 0); f.ErrorCode != 0 || recordsEnd(t, f) != 2 {
		t.Fatalf("follower fetch: code %d end %d", f.ErrorCode, recordsEnd(t, f))
	}
	replFetch(t, follower, "shrink", 2, 2, 0)
	waitUntil(t, "the ISR grows back to [1 2]", func() bool { return slices.Equal(rc.isr("shrink"), []int32{1, 2}) })
	waitUntil(t, "the log in replicated mode", func() bool { return p.Log.Replicated() })
	// acks=all works again once the follower has the records.
	go func() { acked <- replProduce(t, allAcks, "shrink", 30*time.Second, 1) }()
	waitUntil(t, "the append", func() bool { return p.Log.LogEndOffset() == 3 })
	replFetch(t, follower, "shrink", 2, 3, 0)
	if r := <-acked; r.ErrorCode != 0 || r.BaseOffset != 2 {
		t.Fatalf("acks=all after the rejoin: %+v", r)
	}
}

// moveLeader makes leader the preferred replica of topic's partition 0
// (a reassignment to the same replicas, leader first) and elects it.
func (rc *replCluster) moveLeader(cl *kgo.Client, topic string, replicas []int32) {
	t := rc.t
	t.Helper()
	ra := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	rp.Partition, rp.Replicas = 0, replicas
	rt.Partitions = append(rt.Partitions, rp)
	ra.Topics = append(ra.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(context.Background(), ra)
	if err != nil || resp.(*kmsg.AlterPartitionAssignmentsResponse).ErrorCode != 0 ||
		resp.(*kmsg.AlterPartitionAssignmentsResponse).Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("reassign %s to %v: %v %+v", topic, replicas, err, resp)
	}
	el := kmsg.NewPtrElectLeadersRequest()
	el.ElectionType, el.TimeoutMillis = 0, 30000 // preferred
	et := kmsg.NewElectLeadersRequestTopic()
	et.Topic, et.Partitions = topic, []int32{0}
	el.Topics = append(el.Topics, et)
	eresp, err := cl.SeedBrokers()[0].Request(context.Background(), el)
	if err != nil || eresp.(*kmsg.ElectLeadersResponse).ErrorCode != 0 {
		t.Fatalf("elect %s: %v %+v", topic, err, eresp)
	}
	waitUntil(t, fmt.Sprintf("%s led by %d", topic, replicas[0]), func() bool {
		tp, ok := rc.nodes[0].Image().TopicByName(topic)
		return ok && tp.Partitions[0].Leader == replicas[0]
	})
}

// TestLeaderLosesAndRegainsLeadership: losing the leadership answers a
// waiting acks=all NOT_LEADER_OR_FOLLOWER and refuses follower fetches;
// leading again at a new epoch starts the followers' state over (log ends
// unknown, the high watermark kept until they report).
func TestLeaderLosesAndRegainsLeadership(t *testing.T) {
	rc := startReplCluster(t, 0)
	allAcks := rc.producer(-1)
	follower := rc.tb.client()
	p := rc.createTopic(allAcks, "lose", []int32{1, 2}, nil)
	acked := make(chan *kmsg.ProduceResponseTopicPartition, 1)
	go func() { acked <- replProduce(t, allAcks, "lose", 30*time.Second, 2) }()
	waitUntil(t, "the acks=all produce waits", func() bool { return rc.tb.Broker.repl.acks.n.Load() == 1 })
	if f := replFetch(t, follower, "lose", 2, 1, 0); f.ErrorCode != 0 || f.HighWatermark != 1 {
		t.Fatalf("follower fetch at 1: code %d hw %d", f.ErrorCode, f.HighWatermark)
	}
	epoch := p.leaderEpoch.Load()

	rc.moveLeader(allAcks, "lose", []int32{2, 1})
	if r := <-acked; r.ErrorCode != kerr.NotLeaderForPartition.Code || r.CurrentLeader.LeaderID != 2 {
		t.Fatalf("acks=all when the leadership moved: %+v, want NOT_LEADER_OR_FOLLOWER naming leader 2 (KIP-951)", r)
	}
	if f := replFetch(t, follower, "lose", 2, 1, 0); f.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("follower fetch from a non-leader: code %d", f.ErrorCode)
	}

	rc.moveLeader(allAcks, "lose", []int32{1, 2})
	waitUntil(t, "node 1 leads again", func() bool { return !p.notLeader.Load() && p.leaderEpoch.Load() > epoch })
	p.lead.mu.Lock()
	leo := p.lead.followers[2].leo
	p.lead.mu.Unlock()
	if leo != -1 {
		t.Fatalf("follower 2's log end %d at the new epoch, want -1 (unknown)", leo)
	}
	if hw := p.Log.HighWatermark(); hw != 1 || !p.Log.Replicated() {
		t.Fatalf("hw %d (replicated %v) at the new epoch, want 1, replicated", hw, p.Log.Replicated())
	}
	if f := replFetch(t, follower, "lose", 2, 2, 0); f.ErrorCode != 0 || f.HighWatermark != 2 {
		t.Fatalf("follower fetch at 2 at the new epoch: code %d hw %d", f.ErrorCode, f.HighWatermark)
	}
}

// replProduceBatch sends one Produce of the raw batch to partition 0 of
// topic with cl (its acks) and timeout.
func replProduceBatch(t *testing.T, cl *kgo.Client, topic string, timeout time.Duration, batch []byte) *kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.TimeoutMillis = int32(timeout / time.Millisecond)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return &resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

// TestAcksAllDuplicateWaitsForFollowers: an idempotent retry of a batch the
// leader appended but no follower has yet is not acknowledged at once
// (it would be lost with the leader's unreplicated tail when a new leader
// truncates it: the fault schedule lost records so); it waits for the high
// watermark like the first attempt, as Kafka's delayed produce does.
func TestAcksAllDuplicateWaitsForFollowers(t *testing.T) {
	rc := startReplCluster(t, 0)
	allAcks := rc.producer(-1)
	follower := rc.tb.client()
	p := rc.createTopic(allAcks, "dup", []int32{1, 2}, nil)
	batch := prodBatch(4242, 0, 0, time.Now().UnixMilli(), prodValues("d", 3)...)

	// The first attempt is appended and times out waiting for the follower.
	if r := replProduceBatch(t, allAcks, "dup", 200*time.Millisecond, batch); r.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("first attempt: %+v, want REQUEST_TIMED_OUT", r)
	}
	if leo, hw := p.Log.LogEndOffset(), p.Log.HighWatermark(); leo != 3 || hw != 0 {
		t.Fatalf("log end %d hw %d, want 3 and 0", leo, hw)
	}
	// The retry is a duplicate: not appended again, and not acknowledged
	// while the follower lacks it.
	if r := replProduceBatch(t, allAcks, "dup", 200*time.Millisecond, batch); r.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("retry before the follower has it: %+v, want REQUEST_TIMED_OUT", r)
	}
	acked := make(chan *kmsg.ProduceResponseTopicPartition, 1)
	go func() { acked <- replProduceBatch(t, allAcks, "dup", 20*time.Second, batch) }()
	waitUntil(t, "the duplicate acks=all produce waits", func() bool { return rc.tb.Broker.repl.acks.n.Load() == 1 })
	if f := replFetch(t, follower, "dup", 2, 0, 0); f.ErrorCode != 0 || recordsEnd(t, f) != 3 {
		t.Fatalf("follower fetch at 0: code %d end %d", f.ErrorCode, recordsEnd(t, f))
	}
	if f := replFetch(t, follower, "dup", 2, 3, 0); f.HighWatermark != 3 {
		t.Fatalf("follower fetch at 3: hw %d", f.HighWatermark)
	}
	if r := <-acked; r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("retry after the follower has it: %+v, want base offset 0", r)
	}
	if leo := p.Log.LogEndOffset(); leo != 3 {
		t.Fatalf("log end %d after the retries, want 3 (no duplicate appended)", leo)
	}
}
