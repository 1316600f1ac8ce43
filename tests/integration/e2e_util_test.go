//go:build linux

package integration

// Helpers for the end-to-end produce/consume tests (e2e_*_test.go, issue 4):
// deterministic record contents every client can regenerate, franz-go produce and
// consume helpers, a verifier that checks every record (content, per-partition order
// and offsets, count), and a hand-built v2 record batch for the raw-wire tests.
//
// Records are identified by content: every value carries its own index, so a lost,
// duplicated or reordered record names itself in the failure message.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// e2eTimeout bounds one produce or consume phase of an end-to-end test.
const e2eTimeout = 60 * time.Second

// recordValue is the value of record i of a test run named prefix: the prefix and
// the index in fixed-width decimal (so a prefix of the value says which record it
// is), then filler up to size bytes. With random false the filler is a repeating
// pattern (compressible); with random true it is seeded pseudo-random bytes, so a
// compressed batch stays about as large as the record.
func recordValue(prefix string, i, size int, random bool) []byte {
	head := fmt.Sprintf("%s-%08d-", prefix, i)
	if size < len(head) {
		size = len(head)
	}
	v := make([]byte, size)
	n := copy(v, head)
	if random {
		r := rand.New(rand.NewPCG(uint64(i), uint64(len(prefix))))
		for j := n; j < size; j++ {
			v[j] = byte(r.Uint32())
		}
		return v
	}
	const pattern = "abcdefghijklmnopqrstuvwxyz0123456789"
	for j := n; j < size; j++ {
		v[j] = pattern[(j+i)%len(pattern)]
	}
	return v
}

// sentRecord is one record a test produced: where it must land and what it holds.
type sentRecord struct {
	partition int32
	key       []byte
	value     []byte
}

// gotRecord is one record a consumer returned.
type gotRecord struct {
	partition int32
	offset    int64
	key       []byte
	value     []byte
}

// verifyRecords checks that got holds exactly the records of sent: each exactly
// once, in the partition it was sent to, in send order within its partition, at
// consecutive offsets from firstOffset[partition] (0 when absent). It reports at
// most a handful of problems per kind so a broken run stays readable.
func verifyRecords(t *testing.T, what string, sent []sentRecord, got []gotRecord, firstOffset map[int32]int64) {
	t.Helper()
	wantBy := map[int32][]sentRecord{}
	for _, r := range sent {
		wantBy[r.partition] = append(wantBy[r.partition], r)
	}
	gotBy := map[int32][]gotRecord{}
	for _, r := range got {
		gotBy[r.partition] = append(gotBy[r.partition], r)
	}
	problems := 0
	report := func(format string, args ...any) {
		problems++
		if problems <= 10 {
			t.Errorf("%s: "+format, append([]any{what}, args...)...)
		}
	}
	for p, g := range gotBy {
		if _, ok := wantBy[p]; !ok {
			report("partition %d returned %d records, none were sent there", p, len(g))
		}
	}
	for p, want := range wantBy {
		g := gotBy[p]
		if len(g) != len(want) {
			report("partition %d: consumed %d records, produced %d", p, len(g), len(want))
		}
		for i := range min(len(g), len(want)) {
			if wantOff := firstOffset[p] + int64(i); g[i].offset != wantOff {
				report("partition %d record %d: offset %d, want %d", p, i, g[i].offset, wantOff)
			}
			if !bytes.Equal(g[i].value, want[i].value) {
				report("partition %d offset %d: value %q (%d bytes), want %q (%d bytes)", p, g[i].offset,
					head(g[i].value, 40), len(g[i].value), head(want[i].value, 40), len(want[i].value))
			}
			if want[i].key != nil && !bytes.Equal(g[i].key, want[i].key) {
				report("partition %d offset %d: key %q, want %q", p, g[i].offset, g[i].key, want[i].key)
			}
		}
	}
	if problems > 10 {
		t.Errorf("%s: %d more problems not shown", what, problems-10)
	}
	if problems == 0 {
		t.Logf("%s: all %d records verified (content, partition, order, offsets) over %d partitions", what, len(sent), len(wantBy))
	}
}

// newClient returns a franz-go client for addr with opts, closed at test end.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(20 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1048588), // the broker's default message.max.bytes
		kgo.FetchMaxWait(200 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceSync produces recs through cl (each to its partition) and fails the test
// on any error. It returns the offsets the broker assigned, in recs order.
func produceSync(t *testing.T, cl *kgo.Client, topic string, recs []sentRecord) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Topic: topic, Partition: r.partition, Key: r.key, Value: r.value}
	}
	index := make(map[*kgo.Record]int, len(krs))
	for i, r := range krs {
		index[r] = i
	}
	// ProduceSync lists results in completion order, not in krs order.
	offsets := make([]int64, len(krs))
	for _, res := range cl.ProduceSync(ctx, krs...) {
		i := index[res.Record]
		if res.Err != nil {
			t.Fatalf("produce record %d to %s/%d: %v", i, topic, recs[i].partition, res.Err)
		}
		offsets[i] = res.Record.Offset
	}
	return offsets
}

// consumeFranz reads want records of topic from the given start offsets with a
// group-less franz-go consumer (ConsumePartitions) and returns them in the order
// fetched. It stops at want records or after e2eTimeout, then waits briefly for any
// extra record a broken broker might still deliver.
func consumeFranz(t *testing.T, addr, topic string, start map[int32]kgo.Offset, want int, opts ...kgo.Opt) []gotRecord {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchMaxBytes(64 << 20),
	}, opts...)
	cl := newClient(t, addr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var got []gotRecord
	extraUntil := time.Time{}
	for {
		if len(got) >= want && extraUntil.IsZero() {
			extraUntil = time.Now().Add(300 * time.Millisecond)
		}
		pollCtx := ctx
		var pollCancel context.CancelFunc = func() {}
		if !extraUntil.IsZero() {
			if time.Now().After(extraUntil) {
				break
			}
			pollCtx, pollCancel = context.WithDeadline(ctx, extraUntil)
		}
		fs := cl.PollFetches(pollCtx)
		pollCancel()
		if ctx.Err() != nil {
			t.Errorf("consume %s: got %d of %d records within %v", topic, len(got), want, e2eTimeout)
			break
		}
		fs.EachError(func(tp string, p int32, err error) {
			if pollCtx.Err() == nil && err != context.DeadlineExceeded && err != context.Canceled {
				t.Errorf("fetch %s/%d: %v", tp, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, gotRecord{partition: r.Partition, offset: r.Offset, key: r.Key, value: r.Value})
		})
		if t.Failed() && len(got) < want {
			break
		}
	}
	return got
}

// fromStart returns ConsumePartitions start offsets at the log start of
// partitions 0..n-1.
func fromStart(n int32) map[int32]kgo.Offset {
	m := make(map[int32]kgo.Offset, n)
	for p := range n {
		m[p] = kgo.NewOffset().AtStart()
	}
	return m
}

// createTopic creates topic with partitions and configs through kadm.
func createTopic(t *testing.T, addr, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = &v
	}
	resp, err := newAdmin(t, addr).CreateTopic(ctx, partitions, 1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s (%d partitions, %v): %v", topic, partitions, configs, err)
	}
}

// endOffsets returns each partition's high watermark (ListOffsets latest).
func endOffsets(t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	lo, err := newAdmin(t, addr).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets %s: %v", topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Errorf("ListEndOffsets %s/%d: %v", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// sumOffsets adds up the high watermarks of every partition.
func sumOffsets(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// ---- raw record batches -------------------------------------------------------

// castagnoli is the CRC32C table record batches are checksummed with.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchSpec describes one hand-built v2 record batch.
type batchSpec struct {
	producerID    int64 // -1 when not idempotent
	producerEpoch int16
	baseSequence  int32
	values        [][]byte
	timestampMs   int64
}

// rawBatch encodes spec as an uncompressed magic-2 record batch:
//
//	baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 (2)
//	| crc uint32 (CRC32C of everything after it) | attributes int16 | lastOffsetDelta int32
//	| baseTimestamp int64 | maxTimestamp int64 | producerId int64 | producerEpoch int16
//	| baseSequence int32 | recordCount int32 | records
//
// with each record: length varint | attributes int8 | timestampDelta varint |
// offsetDelta varint | keyLength varint (-1) | valueLength varint | value | headers varint (0).
func rawBatch(spec batchSpec) []byte {
	if spec.timestampMs == 0 {
		spec.timestampMs = time.Now().UnixMilli()
	}
	var recs []byte
	for i, v := range spec.values {
		var body []byte
		body = append(body, 0)                          // attributes
		body = binary.AppendVarint(body, 0)             // timestamp delta
		body = binary.AppendVarint(body, int64(i))      // offset delta
		body = binary.AppendVarint(body, -1)            // null key
		body = binary.AppendVarint(body, int64(len(v))) // value length
		body = append(body, v...)
		body = binary.AppendVarint(body, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	b := make([]byte, 0, 61+len(recs))
	b = binary.BigEndian.AppendUint64(b, 0)                          // base offset
	b = binary.BigEndian.AppendUint32(b, uint32(61-12+len(recs)))    // batch length
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)                 // partition leader epoch -1
	b = append(b, 2)                                                 // magic
	b = binary.BigEndian.AppendUint32(b, 0)                          // crc, filled below
	b = binary.BigEndian.AppendUint16(b, 0)                          // attributes
	b = binary.BigEndian.AppendUint32(b, uint32(len(spec.values)-1)) // last offset delta
	b = binary.BigEndian.AppendUint64(b, uint64(spec.timestampMs))   // base timestamp
	b = binary.BigEndian.AppendUint64(b, uint64(spec.timestampMs))   // max timestamp
	b = binary.BigEndian.AppendUint64(b, uint64(spec.producerID))    // producer id
	b = binary.BigEndian.AppendUint16(b, uint16(spec.producerEpoch)) // producer epoch
	b = binary.BigEndian.AppendUint32(b, uint32(spec.baseSequence))  // base sequence
	b = binary.BigEndian.AppendUint32(b, uint32(len(spec.values)))   // record count
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli)) // crc over attributes..end
	return b
}

// plainBatch is a non-idempotent batch of values.
func plainBatch(values ...[]byte) []byte {
	return rawBatch(batchSpec{producerID: -1, producerEpoch: -1, baseSequence: -1, values: values})
}

// produceRequest is a Produce request (version, acks) carrying one batch per
// (topic, partition) part.
type producePart struct {
	topic     string
	partition int32
	batch     []byte
}

func produceRequest(version int16, acks int16, parts ...producePart) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = acks
	req.TimeoutMillis = 10_000
	for _, p := range parts {
		var topic *kmsg.ProduceRequestTopic
		for i := range req.Topics {
			if req.Topics[i].Topic == p.topic {
				topic = &req.Topics[i]
			}
		}
		if topic == nil {
			req.Topics = append(req.Topics, kmsg.ProduceRequestTopic{Topic: p.topic})
			topic = &req.Topics[len(req.Topics)-1]
		}
		part := kmsg.NewProduceRequestTopicPartition()
		part.Partition = p.partition
		part.Records = p.batch
		topic.Partitions = append(topic.Partitions, part)
	}
	return req
}

// producePartResult is one partition's answer to a raw Produce.
type producePartResult struct {
	code       int16
	baseOffset int64
	message    string
}

// rawProduce sends req on conn and returns each partition's answer keyed by
// "topic/partition". The answer must name exactly the partitions asked for.
func rawProduce(t *testing.T, conn net.Conn, req *kmsg.ProduceRequest, corr int32) map[string]producePartResult {
	t.Helper()
	resp := kmsg.NewPtrProduceResponse()
	if err := roundTrip(conn, req, resp, corr, rawTimeout); err != nil {
		t.Fatalf("Produce v%d: %v", req.Version, err)
	}
	out := map[string]producePartResult{}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			msg := ""
			if p.ErrorMessage != nil {
				msg = *p.ErrorMessage
			}
			out[tp.Topic+"/"+strconv.Itoa(int(p.Partition))] = producePartResult{p.ErrorCode, p.BaseOffset, msg}
		}
	}
	var asked, answered []string
	for _, tp := range req.Topics {
		for _, p := range tp.Partitions {
			asked = append(asked, tp.Topic+"/"+strconv.Itoa(int(p.Partition)))
		}
	}
	for k := range out {
		answered = append(answered, k)
	}
	sort.Strings(asked)
	sort.Strings(answered)
	if fmt.Sprint(asked) != fmt.Sprint(answered) {
		t.Errorf("Produce v%d answered partitions %v, asked %v", req.Version, answered, asked)
	}
	return out
}

// codeName renders a Kafka error code with its name.
func codeName(code int16) string {
	if code == 0 {
		return "0 (NONE)"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return fmt.Sprintf("%d (%v)", code, err)
	}
	return strconv.Itoa(int(code))
}

// stopWithin is Broker.Stop with a caller-chosen bound instead of stopTimeout, for
// tests whose broker holds many partitions (TestThousandPartitionsStopTime). It logs how long the stop took, fails on a
// non-zero exit or a stop slower than timeout, and returns the duration.
func stopWithin(t *testing.T, b *Broker, timeout time.Duration) time.Duration {
	t.Helper()
	if b.stopped {
		return 0
	}
	b.stopped = true
	took, err := b.Daemon.Stop(timeout)
	if err != nil {
		t.Errorf("ringbrokerd (%s): %v", b.Backend, err)
		return took
	}
	t.Logf("ringbrokerd (%s) exited %v after SIGTERM", b.Backend, took.Round(time.Millisecond))
	return took
}
