package integration

// Client quotas (issue 19): AlterClientQuotas / DescribeClientQuotas with
// kadm, durable across a restart; producer_byte_rate and
// consumer_byte_rate held by throttling; throttle_time_ms in answers and
// the connection muted for it (KIP-219).
//
// The rate tests set quota.window.num=2: with Kafka's default window (11
// samples of 1 s) a greedy client's quota is met over the window, but in
// bursts (the sample that held the first burst expires and frees ten
// seconds' worth at once), so a 30 s average swings by up to a quarter with
// the phase; with two samples the bursts are one second's worth and the
// tests' 20 s is many windows. The semantics are Kafka's either way
// (quota.Rate).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func quotaStr(s string) *string { return &s }

// alterQuota sets (or, with value 0, removes) key on entity via kadm and
// fails the test on any error.
func alterQuota(t *testing.T, adm *kadm.Client, entity kadm.ClientQuotaEntity, key string, value float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	op := kadm.AlterClientQuotaOp{Key: key, Value: value, Remove: value == 0}
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: entity, Ops: []kadm.AlterClientQuotaOp{op}}})
	if err != nil {
		t.Fatalf("AlterClientQuotas: %v", err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("AlterClientQuotas %v: %v (%s)", r.Entity, r.Err, r.ErrMessage)
		}
	}
}

func describeAllQuotas(t *testing.T, adm *kadm.Client) map[string]map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := adm.DescribeClientQuotas(ctx, false, nil)
	if err != nil {
		t.Fatalf("DescribeClientQuotas: %v", err)
	}
	out := map[string]map[string]float64{}
	for _, q := range got {
		name := ""
		for _, c := range q.Entity {
			n := "<default>"
			if c.Name != nil {
				n = *c.Name
			}
			name += c.Type + "=" + n + ";"
		}
		out[name] = map[string]float64{}
		for _, v := range q.Values {
			out[name][v.Key] = v.Value
		}
	}
	return out
}

func TestClientQuotasAlterDescribeRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		adm := kadm.NewClient(newClient(t, b.Addr))
		alice := kadm.ClientQuotaEntity{{Type: "user", Name: quotaStr("alice")}}
		aliceAnyClient := kadm.ClientQuotaEntity{{Type: "user", Name: quotaStr("alice")}, {Type: "client-id"}}
		anyClient := kadm.ClientQuotaEntity{{Type: "client-id"}}
		alterQuota(t, adm, alice, "producer_byte_rate", 1024)
		alterQuota(t, adm, alice, "consumer_byte_rate", 4096)
		alterQuota(t, adm, aliceAnyClient, "request_percentage", 25.5)
		alterQuota(t, adm, anyClient, "controller_mutation_rate", 10)
		alterQuota(t, adm, anyClient, "controller_mutation_rate", 0) // removed: the entity goes away

		// Refusals, as Kafka: fractional byte rate, unknown key, validate only.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
			{Entity: alice, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1.5}}},
			{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: quotaStr("bob")}}, Ops: []kadm.AlterClientQuotaOp{{Key: "no_such_key", Value: 1}}},
		})
		if err != nil || len(res) != 2 {
			t.Fatalf("AlterClientQuotas: %v, %d results", err, len(res))
		}
		for _, r := range res {
			if r.Err != kerr.InvalidRequest {
				t.Errorf("%v: %v, want INVALID_REQUEST", r.Entity, r.Err)
			}
		}
		if _, err := adm.ValidateAlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: alice, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 99}}}}); err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]float64{
			"user=alice;":                     {"producer_byte_rate": 1024, "consumer_byte_rate": 4096},
			"user=alice;client-id=<default>;": {"request_percentage": 25.5},
		}
		check := func(when string) {
			got := describeAllQuotas(t, adm)
			if len(got) != len(want) {
				t.Fatalf("%s: described %v, want %v", when, got, want)
			}
			for e, vals := range want {
				for k, v := range vals {
					if got[e][k] != v {
						t.Fatalf("%s: described %v, want %v", when, got, want)
					}
				}
			}
		}
		check("before the restart")
		// Strict match: only the entity with exactly user=alice.
		strict, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: quotaStr("alice")}})
		if err != nil || len(strict) != 1 {
			t.Fatalf("strict describe user=alice: %v, %d entries", err, len(strict))
		}
		adm.Close()
		b.Stop(t)
		b = startBroker(t, backend, map[string]string{"log.dirs": b.Dir})
		adm = kadm.NewClient(newClient(t, b.Addr))
		defer adm.Close()
		check("after the restart")
	})
}

// TestThrottledConnectionMuted: a produce over producer_byte_rate is
// answered at once with throttle_time_ms, and the next request on the
// connection is answered only after that time.
func TestThrottledConnectionMuted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{"quota.window.num": "2"})
		createTopic(t, b.Addr, "quota-raw", 1, nil)
		adm := kadm.NewClient(newClient(t, b.Addr))
		defer adm.Close()
		alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: quotaStr(testClientID)}}, "producer_byte_rate", 1024)

		conn := dial(t, b.Addr)
		defer conn.Close()
		value := make([]byte, 8<<10)
		req := produceRequest(7, 1, producePart{topic: "quota-raw", partition: 0, batch: plainBatch(value)})
		resp := kmsg.NewPtrProduceResponse()
		start := time.Now()
		if err := roundTrip(conn, req, resp, 1, rawTimeout); err != nil {
			t.Fatal(err)
		}
		answered := time.Since(start)
		throttle := time.Duration(resp.ThrottleMillis) * time.Millisecond
		// 8 KiB against 1 KiB/s over a 1 s minimum window: (8-1)/1 x 1 s,
		// bounded by the 2 s window span.
		if throttle < time.Second {
			t.Fatalf("throttle_time_ms %d, want about 2000", resp.ThrottleMillis)
		}
		if answered > throttle/2 {
			t.Errorf("the throttled answer took %v: it must leave at once (KIP-219)", answered)
		}
		mresp := kmsg.NewPtrMetadataResponse()
		if err := roundTrip(conn, metadataRequest(9), mresp, 2, rawTimeout); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got < throttle-50*time.Millisecond {
			t.Errorf("next request answered %v after the throttled one, inside its %v throttle", got, throttle)
		}
		t.Logf("throttle %v; throttled answer after %v; next answer after %v", throttle, answered, time.Since(start))
	})
}

// TestThrottledFetchEmpty: a consumer over consumer_byte_rate gets Kafka's
// throttled Fetch answer (KIP-219): throttle_time_ms and no partitions, not
// the records; a full fetch asking for a session then gets none (session id
// 0); once the throttle has passed, the same offset is served again.
func TestThrottledFetchEmpty(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{"quota.window.num": "2"})
		createTopic(t, b.Addr, "quota-fetch", 1, nil)
		conn := dial(t, b.Addr)
		corr := int32(1)
		value := make([]byte, 2<<10)
		for i := 0; i < 12; i++ {
			presp := kmsg.NewPtrProduceResponse()
			if err := roundTrip(conn, produceRequest(7, 1, producePart{topic: "quota-fetch", partition: 0, batch: plainBatch(value)}), presp, corr, rawTimeout); err != nil {
				t.Fatal(err)
			}
			corr++
		}
		adm := kadm.NewClient(newClient(t, b.Addr, kgo.ClientID("quota-admin")))
		defer adm.Close()
		// 10 KiB/s over a 1 s minimum window: a fetch is capped to 10 KiB
		// (about four of the 2 KiB batches), so the second one goes over.
		alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: quotaStr(testClientID)}}, "consumer_byte_rate", 10<<10)

		fetch := func(c net.Conn, offset int64, sessionEpoch int32) *kmsg.FetchResponse {
			t.Helper()
			req := kmsg.NewPtrFetchRequest()
			req.Version = 12
			req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 1, 1<<20
			req.SessionID, req.SessionEpoch = 0, sessionEpoch
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = "quota-fetch"
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, offset, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := kmsg.NewPtrFetchResponse()
			if err := roundTrip(c, req, resp, corr, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			corr++
			return resp
		}
		offset := int64(0)
		served, throttled := 0, 0
		for i := 0; i < 20 && throttled == 0; i++ {
			resp := fetch(conn, offset, -1)
			if resp.ThrottleMillis > 0 {
				throttled++
				if len(resp.Topics) != 0 {
					t.Fatalf("a throttled fetch (throttle_time_ms %d) carries %d topics: Kafka answers none", resp.ThrottleMillis, len(resp.Topics))
				}
				// Another connection of the same client, still over its
				// rate, asks for a session: it gets none.
				other := dial(t, b.Addr)
				sresp := fetch(other, offset, 0)
				if sresp.ThrottleMillis == 0 {
					t.Logf("the second connection was not throttled (the rate fell under the quota in between)")
				} else if sresp.SessionID != 0 || len(sresp.Topics) != 0 {
					t.Fatalf("throttled full fetch: session id %d and %d topics, want 0 and none", sresp.SessionID, len(sresp.Topics))
				}
				t.Logf("fetch %d throttled for %d ms after %d served", i, resp.ThrottleMillis, served)
				break
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("unthrottled fetch: %d topics", len(resp.Topics))
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 {
				t.Fatalf("fetch error %v", kerr.ErrorForCode(p.ErrorCode))
			}
			next := nextFetchOffset(t, p.RecordBatches, offset)
			if next == offset {
				t.Fatalf("unthrottled fetch at %d returned no records (hw %d)", offset, p.HighWatermark)
			}
			offset = next
			served++
		}
		if throttled == 0 || served == 0 {
			t.Fatalf("%d fetches served, %d throttled: want some of each", served, throttled)
		}
		// Past the throttle the client is served again from where it was.
		for i := 0; ; i++ {
			if i == 20 {
				t.Fatal("no records in 20 fetches after the throttle")
			}
			resp := fetch(conn, offset, -1)
			if resp.ThrottleMillis == 0 && len(resp.Topics) == 1 && nextFetchOffset(t, resp.Topics[0].Partitions[0].RecordBatches, offset) > offset {
				break
			}
		}
	})
}

// nextFetchOffset is the offset after the last whole batch in records
// (offset when there is none).
func nextFetchOffset(t *testing.T, records []byte, offset int64) int64 {
	t.Helper()
	for len(records) >= 61 {
		base := int64(binary.BigEndian.Uint64(records))
		size := int(binary.BigEndian.Uint32(records[8:])) + 12
		if size > len(records) {
			break
		}
		offset = base + int64(binary.BigEndian.Uint32(records[23:])) + 1
		records = records[size:]
	}
	return offset
}

// byteMeter counts the bytes a client wrote or read for one API key, by
// time. Its window starts at the first throttled answer: before it the
// client spends the allowance an empty quota window gives (Kafka's too),
// after it the client is held to its quota.
type byteMeter struct {
	key       int16
	mu        sync.Mutex
	first     time.Time
	samples   []meterSample
	throttles int
}

type meterSample struct {
	at    time.Time
	bytes int
}

func (m *byteMeter) add(key int16, n int, err error) {
	if key != m.key || err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = append(m.samples, meterSample{time.Now(), n})
}

func (m *byteMeter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	m.add(key, n, err)
}

func (m *byteMeter) OnBrokerRead(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	m.add(key, n, err)
}

func (m *byteMeter) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	if d > 0 {
		m.mu.Lock()
		m.throttles++
		if m.first.IsZero() {
			m.first = time.Now()
		}
		m.mu.Unlock()
	}
}

// window returns the start of the window and the bytes within window of
// it, once that much time has passed.
func (m *byteMeter) window(window time.Duration) (time.Time, int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.first.IsZero() || time.Since(m.first) < window {
		return m.first, 0, false
	}
	n := 0
	for _, s := range m.samples {
		if d := s.at.Sub(m.first); d >= 0 && d < window {
			n += s.bytes
		}
	}
	return m.first, n, true
}

func checkRate(t *testing.T, what string, bytes int, window time.Duration, rate float64, throttles int) {
	t.Helper()
	got := float64(bytes) / window.Seconds()
	t.Logf("%s: %.0f B/s over %v against a quota of %.0f B/s (%.3f), %d throttled answers", what, got, window, rate, got/rate, throttles)
	if got < rate*0.9 || got > rate*1.1 {
		t.Errorf("%s: %.0f B/s, want %.0f within 10%%", what, got, rate)
	}
	if throttles == 0 {
		t.Errorf("%s: no answer carried throttle_time_ms", what)
	}
}

func TestProducerByteRateQuota(t *testing.T) {
	const rate = 1 << 20 // 1 MiB/s: far below what this machine produces
	// Ten spans of the quota window, as the consumer's.
	const window = 20 * time.Second
	forEachBackend(t, func(t *testing.T, backend string) {
		// The backends side by side: a throttled client mostly waits, so
		// two brokers at 1 MiB/s each do not disturb each other's rate,
		// and make test spends the window once, not twice.
		t.Parallel()
		b := startBroker(t, backend, map[string]string{"quota.window.num": "2"})
		createTopic(t, b.Addr, "quota-produce", 1, nil)
		adm := kadm.NewClient(newClient(t, b.Addr))
		defer adm.Close()
		alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: quotaStr("quota-producer")}}, "producer_byte_rate", rate)

		meter := &byteMeter{key: 0}
		cl := newClient(t, b.Addr, kgo.ClientID("quota-producer"), kgo.WithHooks(meter),
			kgo.ProducerBatchMaxBytes(64<<10), kgo.MaxBufferedRecords(64), kgo.ProducerLinger(time.Millisecond),
			kgo.ProducerBatchCompression(kgo.NoCompression()), // the bytes on the wire are the bytes counted
			kgo.DefaultProduceTopic("quota-produce"))
		ctx, cancel := context.WithTimeout(context.Background(), window+30*time.Second)
		defer cancel()
		value := make([]byte, 4<<10)
		deadline := time.Now().Add(window + 20*time.Second)
		for i := 0; time.Now().Before(deadline) && i < 1_000_000; i++ {
			if _, _, done := meter.window(window); done {
				break
			}
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		_, n, done := meter.window(window)
		if !done {
			t.Fatalf("the producer did not run for %v", window)
		}
		meter.mu.Lock()
		throttles := meter.throttles
		meter.mu.Unlock()
		checkRate(t, "producer", n, window, rate, throttles)
		cancel()
	})
}

func TestConsumerByteRateQuota(t *testing.T) {
	const rate = 1 << 20
	const window = 20 * time.Second // shorter than the producer's: still ten spans of the quota window
	forEachBackend(t, func(t *testing.T, backend string) {
		// The backends side by side: a throttled client mostly waits, so
		// two brokers at 1 MiB/s each do not disturb each other's rate,
		// and make test spends the window once, not twice.
		t.Parallel()
		b := startBroker(t, backend, map[string]string{"quota.window.num": "2"})
		createTopic(t, b.Addr, "quota-consume", 1, nil)
		// More than the window can read at the quota.
		// Small batches: a fetch answers at least one whole batch, and the
		// quota is checked per answer.
		pcl := newClient(t, b.Addr, kgo.DefaultProduceTopic("quota-consume"), kgo.ProducerLinger(time.Millisecond),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(64<<10))
		value := make([]byte, 8<<10)
		ctx, cancel := context.WithTimeout(context.Background(), window+60*time.Second)
		defer cancel()
		total := int(window.Seconds()*rate*1.5) / len(value)
		for i := 0; i < total; i++ {
			pcl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := pcl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		adm := kadm.NewClient(newClient(t, b.Addr))
		defer adm.Close()
		alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: quotaStr("quota-consumer")}}, "consumer_byte_rate", rate)

		meter := &byteMeter{key: 1}
		ccl := newClient(t, b.Addr, kgo.ClientID("quota-consumer"), kgo.WithHooks(meter),
			kgo.ConsumeTopics("quota-consume"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxBytes(64<<10), kgo.FetchMaxPartitionBytes(64<<10))
		for {
			if _, _, done := meter.window(window); done {
				break
			}
			fs := ccl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatal("the consumer did not run for the window in time")
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch: %v", err) })
		}
		_, n, _ := meter.window(window)
		meter.mu.Lock()
		throttles := meter.throttles
		meter.mu.Unlock()
		checkRate(t, "consumer", n, window, rate, throttles)
	})
}

// TestClusterClientQuotas: a quota altered through one node is replicated
// through the metadata quorum (ClientQuotaRecord): another node describes it
// and enforces it on a partition it leads.
func TestClusterClientQuotas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.moreProps = map[string]string{"quota.window.num": "2"}
		c.start(t)
		c.waitReady(t)
		n1 := c.node(1)
		createTopicVia(t, n1, "quota-cluster", 3, nil, clusterStepTimeout)

		alter := kmsg.NewPtrAlterClientQuotasRequest()
		entry := kmsg.NewAlterClientQuotasRequestEntry()
		entry.Entity = []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id", Name: quotaStr(testClientID)}}
		entry.Ops = []kmsg.AlterClientQuotasRequestEntryOp{{Key: "producer_byte_rate", Value: 1024}}
		alter.Entries = append(alter.Entries, entry)
		waitFor(t, "AlterClientQuotas via node 1", clusterStepTimeout, func() error {
			resp, err := n1.request(context.Background(), alter)
			if err != nil {
				return err
			}
			for _, e := range resp.(*kmsg.AlterClientQuotasResponse).Entries {
				if err := kerr.ErrorForCode(e.ErrorCode); err != nil {
					return err
				}
			}
			return nil
		})

		// The leader of a partition on another node than 1.
		var leader *clusterNode
		var partition int32
		waitFor(t, "a partition led by node 2 or 3", clusterStepTimeout, func() error {
			m, err := n1.metadata()
			if err != nil {
				return err
			}
			for _, tp := range m.Topics {
				if tp.Topic == nil || *tp.Topic != "quota-cluster" {
					continue
				}
				for _, p := range tp.Partitions {
					if p.Leader == 2 || p.Leader == 3 {
						leader, partition = c.node(p.Leader), p.Partition
						return nil
					}
				}
			}
			return errors.New("no partition led by node 2 or 3 yet")
		})
		describe := kmsg.NewPtrDescribeClientQuotasRequest()
		describe.Components = []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "client-id", MatchType: 0, Match: quotaStr(testClientID)}}
		waitFor(t, "node "+strconv.Itoa(int(leader.id))+" describes the quota", clusterStepTimeout, func() error {
			resp, err := leader.request(context.Background(), describe)
			if err != nil {
				return err
			}
			r := resp.(*kmsg.DescribeClientQuotasResponse)
			if len(r.Entries) != 1 || len(r.Entries[0].Values) != 1 || r.Entries[0].Values[0].Value != 1024 {
				return fmt.Errorf("described %+v", r.Entries)
			}
			return nil
		})
		conn := dial(t, leader.addr())
		defer conn.Close()
		req := produceRequest(7, 1, producePart{topic: "quota-cluster", partition: partition, batch: plainBatch(make([]byte, 8<<10))})
		resp := kmsg.NewPtrProduceResponse()
		if err := roundTrip(conn, req, resp, 1, rawTimeout); err != nil {
			t.Fatal(err)
		}
		if resp.ThrottleMillis < 1000 {
			t.Fatalf("node %d answered a produce over the quota with throttle_time_ms %d", leader.id, resp.ThrottleMillis)
		}
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode != 0 {
					t.Fatalf("produce to node %d: %v", leader.id, kerr.ErrorForCode(p.ErrorCode))
				}
			}
		}
		t.Logf("node %d throttles the client by %d ms", leader.id, resp.ThrottleMillis)
	})
}

// TestControllerMutationQuota: past controller_mutation_rate, a strict
// CreateTopics (v6+) is refused THROTTLING_QUOTA_EXCEEDED with a throttle;
// an older version is counted but served (Kafka's permissive mode).
func TestControllerMutationQuota(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{"quota.window.num": "2"})
		adm := kadm.NewClient(newClient(t, b.Addr))
		defer adm.Close()
		alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: quotaStr(testClientID)}}, "controller_mutation_rate", 1)
		conn := dial(t, b.Addr)
		defer conn.Close()
		create := func(version int16, topic string, corr int32) *kmsg.CreateTopicsResponse {
			t.Helper()
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Version = version
			req.TimeoutMillis = 10_000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 5, 1
			req.Topics = append(req.Topics, rt)
			resp := kmsg.NewPtrCreateTopicsResponse()
			if err := roundTrip(conn, req, resp, corr, 2*rawTimeout); err != nil {
				t.Fatal(err)
			}
			return resp
		}
		if r := create(7, "mutation-a", 1); r.Topics[0].ErrorCode != 0 {
			t.Fatalf("first CreateTopics: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
		}
		r := create(7, "mutation-b", 2)
		if r.Topics[0].ErrorCode != kerr.ThrottlingQuotaExceeded.Code || r.ThrottleMillis <= 0 {
			t.Fatalf("CreateTopics v7 over the quota: %v, throttle %d ms; want THROTTLING_QUOTA_EXCEEDED and a throttle",
				kerr.ErrorForCode(r.Topics[0].ErrorCode), r.ThrottleMillis)
		}
		if r := create(5, "mutation-c", 3); r.Topics[0].ErrorCode != 0 {
			t.Fatalf("CreateTopics v5 (permissive) over the quota: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
		}
	})
}

// TestIPConnectionCreationQuota: past an ip entity's
// connection_creation_rate, new connections from that address are closed
// at accept; other addresses are not affected.
func TestIPConnectionCreationQuota(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{"quota.window.num": "2"})
		adm := kadm.NewClient(newClient(t, b.Addr))
		defer adm.Close()
		alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "ip", Name: quotaStr("127.0.0.5")}}, "connection_creation_rate", 2)
		answered := func(src string) bool {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: rawTimeout}
			conn, err := d.Dial("tcp", b.Addr)
			if err != nil {
				return false
			}
			defer conn.Close()
			return apiVersionsOn(conn, 1, rawTimeout) == nil
		}
		n := 0
		for i := 0; i < 6; i++ {
			if answered("127.0.0.5") {
				n++
			}
		}
		// A 1 s minimum window: the third connection makes 3/s > 2.
		if n < 2 || n > 3 {
			t.Fatalf("%d of 6 connections from 127.0.0.5 answered at once, want 2 or 3 (rate 2/s)", n)
		}
		for i := 0; i < 6; i++ {
			if !answered("127.0.0.6") {
				t.Fatalf("connection %d from 127.0.0.6 (no quota) refused", i)
			}
		}
	})
}

// TestRequestPercentageQuota: a client whose requests take more handler
// time than its request_percentage gets answers carrying throttle_time_ms,
// and its connection is muted for that long.
func TestRequestPercentageQuota(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{"quota.window.num": "2"})
		adm := kadm.NewClient(newClient(t, b.Addr))
		defer adm.Close()
		// 0.01 % of a ring thread: 100 µs of handler time a second.
		alterQuota(t, adm, kadm.ClientQuotaEntity{{Type: "client-id", Name: quotaStr(testClientID)}}, "request_percentage", 0.01)
		conn := dial(t, b.Addr)
		defer conn.Close()
		deadline := time.Now().Add(20 * time.Second)
		for i := int32(1); i <= 5000 && time.Now().Before(deadline); i++ {
			// The broker mutes the connection from (at the earliest) the
			// moment it handled request i, which is after sent: the next
			// answer cannot come within the throttle of sent, however
			// late this client reads or writes (a bound that holds on a
			// loaded machine; timing from the throttled answer's arrival
			// would not).
			sent := time.Now()
			resp := kmsg.NewPtrMetadataResponse()
			if err := roundTrip(conn, metadataRequest(9), resp, i, rawTimeout); err != nil {
				t.Fatal(err)
			}
			if resp.ThrottleMillis > 0 {
				next := kmsg.NewPtrMetadataResponse()
				if err := roundTrip(conn, metadataRequest(9), next, i+1, rawTimeout); err != nil {
					t.Fatal(err)
				}
				wait := time.Since(sent)
				t.Logf("request %d answered with throttle_time_ms %d; the next answer %v after request %d was sent", i, resp.ThrottleMillis, wait, i)
				if wait < time.Duration(resp.ThrottleMillis)*time.Millisecond {
					t.Errorf("the next request was answered %v after the throttled one was sent, inside the %d ms throttle", wait, resp.ThrottleMillis)
				}
				return
			}
		}
		t.Fatal("no Metadata answer carried a throttle under request_percentage=0.01")
	})
}
