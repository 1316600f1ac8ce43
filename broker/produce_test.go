package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/proto"
)

// prodConn is a bare Kafka connection: requests at exactly the version set
// in them, so tests can reach versions and encodings a client would not
// send.
type prodConn struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dialProd(t *testing.T, addr string) *prodConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &prodConn{t: t, c: c}
}

// roundTrip sends req and decodes the response into resp; err is the read
// error (io.EOF when the broker closed the connection).
func (rc *prodConn) roundTrip(req kmsg.Request, resp kmsg.Response) error {
	rc.t.Helper()
	rc.corr++
	rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.c.Write(encodeFrame(req, rc.corr, "raw")); err != nil {
		return err
	}
	var lenBuf [4]byte
	if _, err := io.ReadFull(rc.c, lenBuf[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(lenBuf[:]))
	if _, err := io.ReadFull(rc.c, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != rc.corr {
		rc.t.Fatalf("correlation id %d, want %d", got, rc.corr)
	}
	resp.SetVersion(req.GetVersion())
	skip := 4
	if resp.IsFlexible() {
		skip++ // empty response header tags
	}
	return resp.ReadFrom(body[skip:])
}

// produceRaw sends one partition's records and returns its answer.
func (rc *prodConn) produceRaw(version int16, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	rc.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, -1, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: partition, Records: records}}}}
	resp := kmsg.NewPtrProduceResponse()
	if err := rc.roundTrip(req, resp); err != nil {
		rc.t.Fatalf("produce: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		rc.t.Fatalf("produce response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// testBatch builds an uncompressed v2 batch, with producer fields and a
// base timestamp.
func prodBatch(pid int64, epoch int16, seq int32, ts int64, values ...[]byte) []byte {
	return storedBatch(codecNone, pid, epoch, seq, ts, 0, values...)
}

// storedBatch is one v2 batch of values, the record i at firstTs+step*i,
// its records compressed with codec.
func storedBatch(codec int8, pid int64, epoch int16, seq int32, firstTs, step int64, values ...[]byte) []byte {
	var records []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: step * int64(i), Value: v}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // AppendTo writes Length as given
		records = r.AppendTo(records)
	}
	if codec != codecNone {
		var err error
		if records, err = compressRecords(codec, records, nil); err != nil {
			panic(err)
		}
	}
	rb := kmsg.RecordBatch{
		Magic: 2, PartitionLeaderEpoch: -1, Attributes: int16(codec), LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp: firstTs, MaxTimestamp: firstTs + step*int64(len(values)-1), ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq,
		NumRecords: int32(len(values)), Records: records,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	recrc(b)
	return b
}

func prodValues(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

// prodStored is a batch header as found in a segment file.
type prodStored struct {
	baseOffset int64
	attributes int16
	records    int32
	maxTs      int64
}

// segmentBatches reads every batch header of a partition's log from the
// segment files (Log.Read regions), bypassing Fetch.
func prodSegmentBatches(t *testing.T, p *Partition) []prodStored {
	t.Helper()
	var out []prodStored
	hw := p.Log.HighWatermark()
	var hdr [proto.RecordBatchHeaderSize]byte
	for off := p.Log.LogStartOffset(); off < hw; {
		r, err := p.Log.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		next := off
		for pos := r.Pos; pos < r.Pos+r.Len; {
			if _, err := r.File.ReadAt(hdr[:], pos); err != nil {
				t.Fatal(err)
			}
			sb := prodStored{
				baseOffset: int64(binary.BigEndian.Uint64(hdr[0:])),
				attributes: int16(binary.BigEndian.Uint16(hdr[proto.BatchPosAttributes:])),
				records:    int32(binary.BigEndian.Uint32(hdr[proto.BatchPosRecordCount:])),
				maxTs:      int64(binary.BigEndian.Uint64(hdr[proto.BatchPosMaxTimestamp:])),
			}
			out = append(out, sb)
			next = sb.baseOffset + int64(binary.BigEndian.Uint32(hdr[proto.BatchPosLastOffsetDelta:])) + 1
			pos += int64(binary.BigEndian.Uint32(hdr[proto.BatchPosBatchLength:])) + proto.RecordBatchLogOverhead
		}
		r.Release()
		if next <= off {
			t.Fatalf("no progress reading at %d", off)
		}
		off = next
	}
	return out
}

// consumeAll reads n records of topic from the start with franz-go.
func prodConsumeAll(t *testing.T, tb *testBroker, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := tb.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.FetchMaxPartitionBytes(4<<20), kgo.FetchMaxBytes(8<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s: %v", len(out), n, topic, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func prodCreate(t *testing.T, tb *testBroker, name string, partitions int32, configs map[string]string) *Topic {
	t.Helper()
	topic, err := tb.Reg.CreateTopic(name, partitions, configs, false)
	if err != nil {
		t.Fatal(err)
	}
	return topic
}

// Produce with franz-go at acks 0, 1 and all (idempotent), records up to
// 1 MiB, then read every record back.
func TestProduceFranzAcks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		big := bytes.Repeat([]byte("x"), 1<<20)
		cases := []struct {
			name string
			opts []kgo.Opt
		}{
			{"acks-all-idempotent", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}},
			{"acks-1", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
			{"acks-0", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				prodCreate(t, tb, c.name, 2, map[string]string{"max.message.bytes": "2000000"})
				cl := tb.client(append(c.opts, kgo.ProducerBatchMaxBytes(2000000), kgo.MaxBufferedBytes(64<<20))...)
				const n = 200
				want := map[string][]byte{}
				for i := 0; i < n; i++ {
					v := []byte(fmt.Sprintf("%s-%d", c.name, i))
					if i%50 == 7 {
						v = append(append([]byte{}, v...), big[:1<<20-len(v)]...) // exactly 1 MiB
					}
					want[string(v[:min(len(v), 24)])] = v
					cl.Produce(context.Background(), &kgo.Record{Topic: c.name, Key: v[:min(len(v), 24)], Value: v}, func(r *kgo.Record, err error) {
						if err != nil {
							t.Errorf("produce: %v", err)
						}
					})
				}
				if err := cl.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				got := prodConsumeAll(t, tb, c.name, n)
				if len(got) != n {
					t.Fatalf("got %d records, want %d", len(got), n)
				}
				for _, r := range got {
					if w, ok := want[string(r.Key)]; !ok || !bytes.Equal(w, r.Value) {
						t.Fatalf("record %q: value of %d bytes does not match", r.Key, len(r.Value))
					}
					delete(want, string(r.Key))
				}
			})
		}
	})
}

// Batches compressed by the producer are stored as sent, and a topic
// compression.type other than producer recompresses into the topic codec.
func TestProduceCompression(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		codecs := []struct {
			name  string
			codec kgo.CompressionCodec
			id    int16
		}{
			{"gzip", kgo.GzipCompression(), codecGzip},
			{"snappy", kgo.SnappyCompression(), codecSnappy},
			{"lz4", kgo.Lz4Compression(), codecLZ4},
			{"zstd", kgo.ZstdCompression(), codecZstd},
		}
		check := func(t *testing.T, topic string, sent kgo.CompressionCodec, wantCodec int16) {
			cl := tb.client(kgo.ProducerBatchCompression(sent), kgo.ProducerLinger(50*time.Millisecond))
			const n = 100
			for i := 0; i < n; i++ {
				cl.Produce(context.Background(), &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("%s value %d %s", topic, i, bytes.Repeat([]byte("abc"), 20)))}, nil)
			}
			if err := cl.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			p := tb.Reg.Partition(topic, 0)
			sbs := prodSegmentBatches(t, p)
			if len(sbs) == 0 {
				t.Fatal("no batches stored")
			}
			for _, sb := range sbs {
				if sb.attributes&proto.AttrCodecMask != wantCodec {
					t.Fatalf("stored batch at %d has codec %d, want %d", sb.baseOffset, sb.attributes&proto.AttrCodecMask, wantCodec)
				}
			}
			got := prodConsumeAll(t, tb, topic, n)
			for i, r := range got {
				if want := fmt.Sprintf("%s value %d %s", topic, i, bytes.Repeat([]byte("abc"), 20)); string(r.Value) != want {
					t.Fatalf("record %d = %q, want %q", i, r.Value, want)
				}
			}
		}
		for _, c := range codecs {
			t.Run("as-sent-"+c.name, func(t *testing.T) {
				prodCreate(t, tb, "sent-"+c.name, 1, nil)
				check(t, "sent-"+c.name, c.codec, c.id)
			})
			t.Run("topic-"+c.name, func(t *testing.T) {
				prodCreate(t, tb, "topic-"+c.name, 1, map[string]string{"compression.type": c.name})
				check(t, "topic-"+c.name, kgo.NoCompression(), c.id)
			})
		}
		t.Run("topic-uncompressed", func(t *testing.T) {
			prodCreate(t, tb, "topic-uncompressed", 1, map[string]string{"compression.type": "uncompressed"})
			check(t, "topic-uncompressed", kgo.ZstdCompression(), codecNone)
		})
	})
}

// Bad input gets Kafka's code, nothing is written and the broker keeps
// serving.
func TestProduceBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) { o.AutoCreateTopics = false })
		prodCreate(t, tb, "bad", 1, map[string]string{"max.message.bytes": "1000"})
		p := tb.Reg.Partition("bad", 0)
		rc := dialProd(t, tb.Addr)
		now := time.Now().UnixMilli()
		good := prodBatch(-1, -1, -1, now, prodValues("ok", 3)...)
		corrupt := append([]byte(nil), good...)
		corrupt[len(corrupt)-1] ^= 0xff
		oversized := prodBatch(-1, -1, -1, now, bytes.Repeat([]byte("y"), 2000))
		zstdBatch := append([]byte(nil), good...)
		binary.BigEndian.PutUint16(zstdBatch[proto.BatchPosAttributes:], codecZstd)
		recrc(zstdBatch)
		badCount := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(badCount[proto.BatchPosRecordCount:], 2)
		recrc(badCount)
		cases := []struct {
			name      string
			version   int16
			topic     string
			partition int32
			records   []byte
			want      *kerr.Error
		}{
			{"crc", 9, "bad", 0, corrupt, kerr.CorruptMessage},
			{"oversized", 9, "bad", 0, oversized, kerr.MessageTooLarge},
			{"two-batches", 9, "bad", 0, append(append([]byte(nil), good...), good...), kerr.InvalidRecord},
			{"truncated", 9, "bad", 0, good[:len(good)-3], kerr.InvalidRecord},
			{"no-records", 9, "bad", 0, nil, kerr.InvalidRecord},
			{"count-mismatch", 9, "bad", 0, badCount, kerr.InvalidRecord},
			{"zstd-before-v7", 6, "bad", 0, zstdBatch, kerr.UnsupportedCompressionType},
			{"dot-dot-slash", 9, "../x", 0, good, kerr.InvalidTopicException},
			{"bad-char", 3, "a b", 0, good, kerr.InvalidTopicException},
			{"unknown-topic", 9, "nope", 0, good, kerr.UnknownTopicOrPartition},
			{"unknown-partition", 9, "bad", 7, good, kerr.UnknownTopicOrPartition},
			{"negative-partition", 11, "bad", -1, good, kerr.UnknownTopicOrPartition},
			{"v2-unsupported", 2, "bad", 0, good, kerr.UnsupportedVersion},
			{"v0-unsupported", 0, "bad", 0, good, kerr.UnsupportedVersion},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got := rc.produceRaw(c.version, c.topic, c.partition, c.records)
				if got.ErrorCode != c.want.Code {
					t.Fatalf("error %v, want %v", kerr.ErrorForCode(got.ErrorCode), c.want)
				}
				if hw := p.Log.HighWatermark(); hw != 0 {
					t.Fatalf("high watermark %d after a refused produce", hw)
				}
			})
		}
		// The connection still works, and a good batch is written.
		if got := rc.produceRaw(11, "bad", 0, good); got.ErrorCode != 0 || got.BaseOffset != 0 || got.LogStartOffset != 0 {
			t.Fatalf("good produce after errors: %+v", got)
		}
		// acks=0 with an error: Kafka closes the connection.
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks = 9, 0
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "bad", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: corrupt}}}}
		if err := rc.roundTrip(req, kmsg.NewPtrProduceResponse()); err == nil {
			t.Fatal("acks=0 produce with a corrupt batch: connection still open")
		}
		if hw := p.Log.HighWatermark(); hw != 3 {
			t.Fatalf("high watermark %d, want 3", hw)
		}
	})
}

// Several topics and partitions in one request: one response once all are
// written; LogAppendTime topics report the append time.
func TestProduceMultiPartitionLogAppendTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		prodCreate(t, tb, "m1", 3, nil)
		prodCreate(t, tb, "m2", 2, map[string]string{"message.timestamp.type": "LogAppendTime"})
		rc := dialProd(t, tb.Addr)
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 11, 1, 5000
		old := time.Now().Add(-time.Hour).UnixMilli()
		for _, tp := range []struct {
			topic string
			parts int32
		}{{"m1", 3}, {"m2", 2}} {
			rt := kmsg.ProduceRequestTopic{Topic: tp.topic}
			for i := int32(0); i < tp.parts; i++ {
				rt.Partitions = append(rt.Partitions, kmsg.ProduceRequestTopicPartition{Partition: i, Records: prodBatch(-1, -1, -1, old, prodValues(tp.topic, int(i)+1)...)})
			}
			req.Topics = append(req.Topics, rt)
		}
		before := time.Now().UnixMilli()
		resp := kmsg.NewPtrProduceResponse()
		if err := rc.roundTrip(req, resp); err != nil {
			t.Fatal(err)
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 || rp.BaseOffset != 0 {
					t.Fatalf("%s/%d: %+v", rt.Topic, rp.Partition, rp)
				}
				if rt.Topic == "m2" && rp.LogAppendTime < before {
					t.Fatalf("m2/%d: log append time %d, want >= %d", rp.Partition, rp.LogAppendTime, before)
				}
				if rt.Topic == "m1" && rp.LogAppendTime != -1 {
					t.Fatalf("m1/%d: log append time %d on a CreateTime topic", rp.Partition, rp.LogAppendTime)
				}
				if hw := tb.Reg.Partition(rt.Topic, rp.Partition).Log.HighWatermark(); hw != int64(rp.Partition)+1 {
					t.Fatalf("%s/%d: high watermark %d", rt.Topic, rp.Partition, hw)
				}
			}
		}
		sb := prodSegmentBatches(t, tb.Reg.Partition("m2", 1))
		if len(sb) != 1 || sb[0].maxTs < before || sb[0].attributes&proto.AttrLogAppendTime == 0 {
			t.Fatalf("LogAppendTime batch stored as %+v", sb)
		}
	})
}
