//go:build linux && clusterlong

package integration

// Fetch from the closest replica (KIP-392) on the three-node cluster, node i
// in rack "ri", every node with replica.selector.class set to Kafka's
// RackAwareReplicaSelector: the leader names the in-sync replica in a
// consumer's rack, that follower serves the records up to its high
// watermark, and franz-go (kgo.Rack) and kcat (client.rack) end up reading
// from it: the client's fetch hook names the broker of every batch, and each
// node's per-topic fetched-bytes counter shows which served consumers.
//
// Opt-in (build tag clusterlong, make cluster-long): two clusters' worth of
// make test for what broker/fetch_preferred_test.go already checks with
// franz-go over real sockets (the leader names the replica in the
// consumer's rack, the follower serves up to its high watermark, and
// read_committed up to its last stable offset). TestReplicaSelectorClassRefused
// stays in make test (cluster_rack_test.go).

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestClusterFetchFromClosestReplica(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		metricsAddr := map[int32]string{}
		for _, n := range c.nodes {
			metricsAddr[n.id] = net.JoinHostPort(n.host, strconv.Itoa(freePortOn(t, n.host)))
		}
		c.nodeProps = func(n *clusterNode) map[string]string {
			return map[string]string{
				"broker.rack":                fmt.Sprintf("r%d", n.id),
				"replica.selector.class":     rackAwareSelector,
				"metrics.listener":           metricsAddr[n.id],
				"metrics.topic.bytes.enable": "true",
			}
		}
		c.start(t)

		// The racks are advertised by every node, in Metadata and DescribeCluster.
		for _, n := range c.nodes {
			checkAdvertisedRacks(t, n)
		}

		const topic = "rack-aware"
		createAssigned(t, c.nodes[0], topic, []int32{1, 2, 3})
		c.waitTopicsEverywhere(t, map[string]int32{topic: 1}, clusterStepTimeout)
		leaderID := waitFullISR(t, c.nodes[0], topic)
		leader := c.node(leaderID)
		// The follower in the client's rack: node 2 (rack r2) unless it leads.
		far := c.node(2)
		if leaderID == 2 {
			far = c.node(3)
		}
		var third *clusterNode
		for _, n := range c.nodes {
			if n != leader && n != far {
				third = n
			}
		}
		rack := fmt.Sprintf("r%d", far.id)
		t.Logf("leader node %d (r%d); the client's rack %s is node %d's", leader.id, leader.id, rack, far.id)

		recs := spreadRecords(topic, 300, 1, 1500, false)
		produceSync(t, seedClient(t, c.seeds()), topic, recs)
		end := int64(len(recs))

		// The leader answers a consumer in rack r<far> with that replica, no
		// records, at once.
		waitFor(t, "the leader to name node "+strconv.Itoa(int(far.id))+" as the preferred read replica", clusterStepTimeout, func() error {
			p, err := rackFetch(leader, topic, 0, rack, 0, 12)
			if err != nil {
				return err
			}
			if p.ErrorCode != 0 || p.PreferredReadReplica != far.id || len(p.RecordBatches) != 0 || p.HighWatermark != end {
				return fmt.Errorf("error %s, preferred %d, %d record bytes, high watermark %d (want %d)",
					codeName(p.ErrorCode), p.PreferredReadReplica, len(p.RecordBatches), p.HighWatermark, end)
			}
			return nil
		})
		// read_committed too (Kafka's selector ignores the isolation level).
		if p, err := rackFetch(leader, topic, 0, rack, 1, 12); err != nil || p.ErrorCode != 0 || p.PreferredReadReplica != far.id || len(p.RecordBatches) != 0 || p.LastStableOffset != end {
			t.Errorf("leader, rack %s, read_committed: %v, %+v; want preferred replica %d, no records, last stable offset %d", rack, err, fetchSummary(p), far.id, end)
		}
		// The leader's own rack, no rack and an unknown rack read from the
		// leader.
		for _, tc := range []struct {
			rack      string
			isolation int8
		}{{fmt.Sprintf("r%d", leader.id), 0}, {"", 0}, {"r9", 0}, {fmt.Sprintf("r%d", leader.id), 1}} {
			p, err := rackFetch(leader, topic, 0, tc.rack, tc.isolation, 12)
			if err != nil {
				t.Fatal(err)
			}
			if p.ErrorCode != 0 || p.PreferredReadReplica != -1 || len(p.RecordBatches) == 0 {
				t.Errorf("leader, rack %q, isolation %d: error %s, preferred %d, %d record bytes; want records from the leader",
					tc.rack, tc.isolation, codeName(p.ErrorCode), p.PreferredReadReplica, len(p.RecordBatches))
			}
		}

		// The follower serves records up to its high watermark: the whole
		// log (logBytes, one fetch) here.
		var logBytes float64
		waitFor(t, "node "+strconv.Itoa(int(far.id))+" to serve the records", clusterStepTimeout, func() error {
			p, err := rackFetch(far, topic, 0, rack, 0, 12)
			if err != nil {
				return err
			}
			if p.ErrorCode != 0 || p.PreferredReadReplica != -1 || p.HighWatermark != end || len(p.RecordBatches) == 0 {
				return fmt.Errorf("error %s, preferred %d, high watermark %d (want %d), %d record bytes",
					codeName(p.ErrorCode), p.PreferredReadReplica, p.HighWatermark, end, len(p.RecordBatches))
			}
			first, last, err := batchOffsets(p.RecordBatches)
			if err != nil {
				return err
			}
			if first != 0 || last >= p.HighWatermark {
				t.Fatalf("follower answered offsets %d..%d with high watermark %d", first, last, p.HighWatermark)
			}
			if last != end-1 {
				return fmt.Errorf("records up to %d, want the whole log up to %d in one fetch", last, end-1)
			}
			logBytes = float64(len(p.RecordBatches))
			return nil
		})
		// At its high watermark: nothing, no error. Past its log end:
		// OFFSET_OUT_OF_RANGE (Kafka's LocalLog.read on a follower).
		if p, err := rackFetch(far, topic, end, rack, 0, 12); err != nil || p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
			t.Errorf("follower at its high watermark: %v, %+v", err, fetchSummary(p))
		}
		if p, err := rackFetch(far, topic, end+1000, rack, 0, 12); err != nil || p.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Errorf("follower past its log end: %v, %+v; want OFFSET_OUT_OF_RANGE", err, fetchSummary(p))
		}
		// read_committed is served too, up to the follower's last stable
		// offset (no transaction here: its high watermark); a fetch before
		// KIP-392 (v10) is refused.
		if p, err := rackFetch(far, topic, 0, rack, 1, 12); err != nil || p.ErrorCode != 0 || p.PreferredReadReplica != -1 || len(p.RecordBatches) == 0 || p.LastStableOffset != end {
			t.Errorf("follower, read_committed: %v, %+v; want records, last stable offset %d", err, fetchSummary(p), end)
		}
		if p, err := rackFetch(far, topic, 0, "", 0, 10); err != nil || p.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Errorf("follower, Fetch v10: %v, %+v; want NOT_LEADER_OR_FOLLOWER", err, fetchSummary(p))
		}
		// ListOffsets stays with the leader.
		if code := listOffsetsCode(t, far, topic); code != kerr.NotLeaderForPartition.Code {
			t.Errorf("ListOffsets on the follower: %s, want NOT_LEADER_OR_FOLLOWER", codeName(code))
		}
		if code := listOffsetsCode(t, leader, topic); code != 0 {
			t.Errorf("ListOffsets on the leader: %s", codeName(code))
		}

		// franz-go in rack r<far>: every batch from node far.
		servedBefore := topicFetchedBytes(t, metricsAddr, topic)
		hook := &batchSources{nodes: map[int32]int{}}
		got := consumeFranz(t, leader.addr(), topic, fromStart(1), len(recs), kgo.Rack(rack), kgo.WithHooks(hook))
		verifyRecords(t, "franz-go with kgo.Rack("+rack+")", recs, got, nil)
		hook.mu.Lock()
		t.Logf("franz-go batches per node: %v", hook.nodes)
		if len(hook.nodes) != 1 || hook.nodes[far.id] == 0 {
			t.Errorf("franz-go in rack %s read batches from nodes %v, want node %d only", rack, hook.nodes, far.id)
		}
		hook.mu.Unlock()
		servedAfter := topicFetchedBytes(t, metricsAddr, topic)
		t.Logf("consumer-served fetched bytes per follower: before %v, after %v", servedBefore, servedAfter)
		if d := servedAfter[far.id] - servedBefore[far.id]; d < logBytes {
			t.Errorf("node %d served %v bytes to the consumer, want at least the log's %v", far.id, d, logBytes)
		}
		if servedAfter[third.id] != 0 {
			t.Errorf("node %d (another rack) served %v bytes", third.id, servedAfter[third.id])
		}

		// kcat (librdkafka) with client.rack, at its default isolation
		// level, read_committed: served by the follower too.
		t.Run("kcat", func(t *testing.T) {
			kcat := requireTool(t, "kcat")
			before := topicFetchedBytes(t, metricsAddr, topic)
			out, err := runClient(t, clientRunTimeout, nil, kcat, "-C", "-b", leader.addr(), "-t", topic, "-p", "0",
				"-o", "beginning", "-e", "-f", kcatFormat, "-X", "fetch.wait.max.ms=100",
				"-X", "client.rack="+rack, "-X", "isolation.level=read_committed")
			if err != nil {
				t.Fatalf("kcat -C: %v", err)
			}
			got, err := parseKcatOutput(out)
			if err != nil {
				t.Fatalf("kcat -C output: %v", err)
			}
			verifyRecords(t, "kcat -X client.rack="+rack, recs, got, nil)
			after := topicFetchedBytes(t, metricsAddr, topic)
			t.Logf("kcat: follower-served bytes before %v, after %v", before, after)
			if d := after[far.id] - before[far.id]; d < logBytes {
				t.Errorf("node %d served %v bytes to kcat, want at least the log's %v", far.id, d, logBytes)
			}
			if after[third.id] != 0 {
				t.Errorf("node %d (another rack) served %v bytes", third.id, after[third.id])
			}
		})

		// Transactions on a follower (Kafka's followers keep producer state
		// through appendAsFollower): a transactional producer commits,
		// aborts and commits; franz-go in rack r<far> at read_committed reads
		// exactly the committed records, every batch from node far.
		t.Run("read_committed", func(t *testing.T) {
			const txnTopic = "rack-aware-txn"
			createAssigned(t, c.nodes[0], txnTopic, []int32{leader.id, far.id, third.id})
			c.waitTopicsEverywhere(t, map[string]int32{txnTopic: 1}, clusterStepTimeout)
			if l := waitFullISR(t, c.nodes[0], txnTopic); l != leader.id {
				t.Fatalf("%s led by node %d, want node %d", txnTopic, l, leader.id)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*clusterStepTimeout)
			defer cancel()
			tp := seedClient(t, c.seeds(), kgo.TransactionalID("rack-txn"), kgo.DefaultProduceTopic(txnTopic), kgo.TransactionTimeout(20*time.Second))
			var committed []sentRecord
			for _, txn := range []struct {
				prefix string
				commit bool
			}{{"committed-1", true}, {"aborted", false}, {"committed-2", true}} {
				if err := tp.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				for i := range 20 {
					r := sentRecord{partition: 0, key: fmt.Appendf(nil, "%s-%d", txn.prefix, i), value: fmt.Appendf(nil, "%s-value-%d", txn.prefix, i)}
					if err := produceBounded(ctx, tp, &kgo.Record{Partition: 0, Key: r.key, Value: r.value}); err != nil {
						t.Fatalf("transactional produce: %v", err)
					}
					if txn.commit {
						committed = append(committed, r)
					}
				}
				if err := tp.EndTransaction(ctx, kgo.TransactionEndTry(txn.commit)); err != nil {
					t.Fatalf("end transaction %s: %v", txn.prefix, err)
				}
			}
			tp.Close()

			hook := &batchSources{nodes: map[int32]int{}}
			cl := newClient(t, leader.addr(), kgo.Rack(rack), kgo.WithHooks(hook), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{txnTopic: fromStart(1)}))
			var got []gotRecord
			for len(got) < len(committed) && ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					if strings.HasPrefix(string(r.Key), "aborted") {
						t.Errorf("read_committed returned an aborted record at offset %d: %s", r.Offset, r.Key)
					}
					got = append(got, gotRecord{partition: r.Partition, offset: r.Offset, key: r.Key, value: r.Value})
				})
			}
			if ctx.Err() != nil {
				t.Fatalf("read %d of %d committed records within %v", len(got), len(committed), 2*clusterStepTimeout)
			}
			// In order, at increasing offsets (markers and the aborted
			// transaction between them): verifyRecords wants consecutive
			// offsets.
			if len(got) != len(committed) {
				t.Errorf("read_committed read %d records, want the %d committed", len(got), len(committed))
			}
			for i := range min(len(got), len(committed)) {
				if !bytes.Equal(got[i].key, committed[i].key) || !bytes.Equal(got[i].value, committed[i].value) || i > 0 && got[i].offset <= got[i-1].offset {
					t.Fatalf("read_committed record %d: key %q at offset %d, want key %q after offset %d", i, got[i].key, got[i].offset, committed[i].key, got[max(i-1, 0)].offset)
				}
			}
			hook.mu.Lock()
			t.Logf("read_committed batches per node: %v", hook.nodes)
			if len(hook.nodes) != 1 || hook.nodes[far.id] == 0 {
				t.Errorf("read_committed in rack %s read batches from nodes %v, want node %d only", rack, hook.nodes, far.id)
			}
			hook.mu.Unlock()
		})

		// The follower a franz-go consumer reads from is SIGKILLed: the
		// consumer goes on from the other replicas (the leader names no
		// fenced replica) and misses nothing produced meanwhile. franz-go
		// stays with a preferred replica it cannot reach until its recheck
		// interval (30 min by default; with a Kafka cluster alike), hence 1 s.
		t.Run("follower-killed", func(t *testing.T) {
			hook := &batchSources{nodes: map[int32]int{}}
			cl := newClient(t, leader.addr(), kgo.SeedBrokers(c.seeds()...), kgo.Rack(rack), kgo.WithHooks(hook),
				kgo.RecheckPreferredReplicaInterval(time.Second),
				kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: fromStart(1)}))
			ctx, cancel := context.WithTimeout(context.Background(), 2*clusterStepTimeout)
			defer cancel()
			var got []gotRecord
			poll := func(want int) {
				for len(got) < want && ctx.Err() == nil {
					fs := cl.PollFetches(ctx)
					fs.EachRecord(func(r *kgo.Record) {
						got = append(got, gotRecord{partition: r.Partition, offset: r.Offset, key: r.Key, value: r.Value})
					})
				}
			}
			poll(len(recs))
			hook.mu.Lock()
			before := hook.nodes[far.id]
			hook.mu.Unlock()
			if before == 0 {
				t.Fatalf("the consumer read no batch from node %d before the kill: %v", far.id, hook.nodes)
			}
			c.kill(t, far)
			more := spreadRecords(topic+"-after", 100, 1, 1500, false)
			produceSync(t, seedClient(t, c.seeds(far.id)), topic, more)
			poll(len(recs) + len(more))
			if ctx.Err() != nil {
				t.Fatalf("got %d of %d records within %v of the kill", len(got), len(recs)+len(more), 2*clusterStepTimeout)
			}
			verifyRecords(t, "franz-go in rack "+rack+" across the kill of node "+strconv.Itoa(int(far.id)), append(slices.Clone(recs), more...), got, nil)
			hook.mu.Lock()
			t.Logf("batches per node across the kill: %v", hook.nodes)
			if hook.nodes[leader.id]+hook.nodes[third.id] == 0 {
				t.Errorf("no batch from a live replica after node %d was killed: %v", far.id, hook.nodes)
			}
			hook.mu.Unlock()
		})
	})
}

// batchSources is a franz-go hook counting fetched batches per broker.
type batchSources struct {
	mu    sync.Mutex
	nodes map[int32]int
}

func (h *batchSources) OnFetchBatchRead(meta kgo.BrokerMetadata, _ string, _ int32, _ kgo.FetchBatchMetrics) {
	h.mu.Lock()
	h.nodes[meta.NodeID]++
	h.mu.Unlock()
}

// topicFetchedBytes scrapes every node's per-topic fetched-bytes counter.
// A follower's counts only consumers (followers fetch from the leader).
func topicFetchedBytes(t *testing.T, addrs map[int32]string, topic string) map[int32]float64 {
	t.Helper()
	out := map[int32]float64{}
	for id, addr := range addrs {
		m, err := scrapeMetrics(addr)
		if err != nil {
			t.Fatalf("scrape node %d (%s): %v", id, addr, err)
		}
		out[id] = m[`ringbroker_topic_fetched_bytes_total{topic="`+topic+`"}`]
	}
	return out
}

// checkAdvertisedRacks checks node n lists every node i with rack "ri" in
// Metadata and DescribeCluster.
func checkAdvertisedRacks(t *testing.T, n *clusterNode) {
	t.Helper()
	waitFor(t, "node "+strconv.Itoa(int(n.id))+" to advertise every rack", clusterStepTimeout, func() error {
		m, err := n.metadata()
		if err != nil {
			return err
		}
		if len(m.Brokers) != 3 {
			return fmt.Errorf("metadata lists %d brokers", len(m.Brokers))
		}
		for _, b := range m.Brokers {
			if b.Rack == nil || *b.Rack != fmt.Sprintf("r%d", b.NodeID) {
				return fmt.Errorf("metadata: broker %d rack %v", b.NodeID, b.Rack)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
		defer cancel()
		resp, err := n.request(ctx, kmsg.NewPtrDescribeClusterRequest())
		if err != nil {
			return err
		}
		dc := resp.(*kmsg.DescribeClusterResponse)
		if dc.ErrorCode != 0 || len(dc.Brokers) != 3 {
			return fmt.Errorf("DescribeCluster: error %s, %d brokers", codeName(dc.ErrorCode), len(dc.Brokers))
		}
		for _, b := range dc.Brokers {
			if b.Rack == nil || *b.Rack != fmt.Sprintf("r%d", b.NodeID) {
				return fmt.Errorf("DescribeCluster: broker %d rack %v", b.NodeID, b.Rack)
			}
		}
		return nil
	})
}

// createAssigned creates topic with one partition on replicas (the first
// is its preferred leader) through node n.
func createAssigned(t *testing.T, n *clusterNode, topic string, replicas []int32) {
	t.Helper()
	waitFor(t, "CreateTopics "+topic, clusterStepTimeout, func() error {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = int32(clusterRequestTimeout.Milliseconds())
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = 0, replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
		defer cancel()
		resp, err := n.request(ctx, req)
		if err != nil {
			return err
		}
		code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
		if code != 0 && code != kerr.TopicAlreadyExists.Code {
			return kerr.ErrorForCode(code)
		}
		return nil
	})
}

// waitFullISR waits until node n's metadata has every replica of topic's
// partition 0 in its ISR and returns its leader.
func waitFullISR(t *testing.T, n *clusterNode, topic string) int32 {
	t.Helper()
	var leader int32 = -1
	waitFor(t, topic+" with its three replicas in sync", clusterStepTimeout, func() error {
		m, err := n.metadata()
		if err != nil {
			return err
		}
		for _, mt := range m.Topics {
			if mt.Topic == nil || *mt.Topic != topic {
				continue
			}
			for _, p := range mt.Partitions {
				if p.Partition == 0 && p.Leader >= 0 && len(p.ISR) == 3 {
					leader = p.Leader
					return nil
				}
			}
		}
		return fmt.Errorf("partition 0 of %s not led with a full ISR yet", topic)
	})
	return leader
}

// rackFetch sends one consumer Fetch of topic's partition 0 at offset to
// node n (version >= 11 carries rack) and returns the partition's answer.
func rackFetch(n *clusterNode, topic string, offset int64, rack string, isolation int8, version int16) (kmsg.FetchResponseTopicPartition, error) {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = version, -1, 50, 1<<20
	req.IsolationLevel, req.Rack = isolation, rack
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// A connection of its own: the version is the one asked for (a kgo
	// client would pick its newest, by topic id).
	conn, err := net.DialTimeout("tcp", n.addr(), rawTimeout)
	if err != nil {
		return kmsg.FetchResponseTopicPartition{}, err
	}
	defer conn.Close()
	fr := kmsg.NewPtrFetchResponse()
	if err := roundTrip(conn, req, fr, 1, rawTimeout); err != nil {
		return kmsg.FetchResponseTopicPartition{}, err
	}
	if fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		return kmsg.FetchResponseTopicPartition{}, fmt.Errorf("fetch from node %d: error %s, %d topics", n.id, codeName(fr.ErrorCode), len(fr.Topics))
	}
	return fr.Topics[0].Partitions[0], nil
}

// fetchSummary is what a failure message needs of a fetch answer.
func fetchSummary(p kmsg.FetchResponseTopicPartition) string {
	return fmt.Sprintf("error %s, hw %d, preferred %d, %d record bytes", codeName(p.ErrorCode), p.HighWatermark, p.PreferredReadReplica, len(p.RecordBatches))
}

// batchOffsets returns the first and last offsets of the record batches in
// b (v2 batches: base offset at 0, length at 8, last offset delta at 23).
func batchOffsets(b []byte) (first, last int64, err error) {
	first = -1
	for len(b) > 0 {
		if len(b) < 27 {
			return 0, 0, fmt.Errorf("truncated batch header (%d bytes)", len(b))
		}
		base := int64(binary.BigEndian.Uint64(b))
		size := 12 + int(binary.BigEndian.Uint32(b[8:]))
		if size > len(b) {
			break // a partial batch at the end, as Kafka may send
		}
		if first < 0 {
			first = base
		}
		last = base + int64(int32(binary.BigEndian.Uint32(b[23:])))
		b = b[size:]
	}
	return first, last, nil
}

// listOffsetsCode is the error of a consumer's ListOffsets (latest) of
// topic's partition 0 on node n.
func listOffsetsCode(t *testing.T, n *clusterNode, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID = 7, -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
	defer cancel()
	resp, err := n.request(ctx, req)
	if err != nil {
		t.Fatalf("ListOffsets on node %d: %v", n.id, err)
	}
	lr := resp.(*kmsg.ListOffsetsResponse)
	if len(lr.Topics) != 1 || len(lr.Topics[0].Partitions) != 1 {
		t.Fatalf("ListOffsets on node %d: %d topics", n.id, len(lr.Topics))
	}
	return lr.Topics[0].Partitions[0].ErrorCode
}
