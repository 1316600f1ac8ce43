//go:build linux

package integration

// Record-level validation over the wire: batches whose CRC is right but whose
// records are not (garbage compressed payloads, impossible header counts, lengths
// past the record, record counts that disagree with the records, timestamps out
// of bounds, no key on a compacted topic) are refused with Kafka's code and write nothing; a batch whose
// header maxTimestamp lies is stored with the records' true maximum; a franz-go
// consumer then reads every good record.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Codec ids of a batch's attributes.
const (
	recCodecNone   = 0
	recCodecGzip   = 1
	recCodecSnappy = 2
	recCodecLZ4    = 3
	recCodecZstd   = 4
)

// recEncode encodes one record from its fields (int: zigzag varint, []byte: as
// is), length prefix included.
func recEncode(fields ...any) []byte {
	var body []byte
	for _, f := range fields {
		switch v := f.(type) {
		case int:
			body = binary.AppendVarint(body, int64(v))
		case int64:
			body = binary.AppendVarint(body, v)
		case []byte:
			body = append(body, v...)
		}
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// recCompress compresses records with codec as Kafka clients frame them.
func recCompress(t *testing.T, codec int, records []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case recCodecNone:
		return records
	case recCodecGzip:
		w := gzip.NewWriter(&buf)
		w.Write(records)
		w.Close()
	case recCodecSnappy:
		return s2.EncodeSnappy(nil, records)
	case recCodecLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(records)
		w.Close()
	case recCodecZstd:
		e, _ := zstd.NewWriter(nil)
		defer e.Close()
		return e.EncodeAll(records, nil)
	}
	return buf.Bytes()
}

// recBatch frames a records section (already compressed when codec != 0) as one
// v2 batch claiming count records, first and max timestamps as given.
func recBatch(codec int, count int32, firstTs, maxTs int64, section []byte) []byte {
	b := make([]byte, 0, 61+len(section))
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(61-12+len(section)))
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	b = append(b, 2)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(codec))
	b = binary.BigEndian.AppendUint32(b, uint32(count-1))
	b = binary.BigEndian.AppendUint64(b, uint64(firstTs))
	b = binary.BigEndian.AppendUint64(b, uint64(maxTs))
	b = binary.BigEndian.AppendUint64(b, math.MaxUint64) // producer id -1
	b = binary.BigEndian.AppendUint16(b, 0xffff)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	b = binary.BigEndian.AppendUint32(b, uint32(count))
	b = append(b, section...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func TestProduceRecordDefects(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		const topic, strict, compacted = "records", "records-strict", "records-compacted"
		createTopic(t, b.Addr, topic, 1, nil)
		createTopic(t, b.Addr, compacted, 1, map[string]string{"cleanup.policy": "compact"})
		createTopic(t, b.Addr, strict, 1, map[string]string{"message.timestamp.before.max.ms": "600000"})
		conn := dial(t, b.Addr)
		corr := int32(0)
		nextCorr := func() int32 { corr++; return corr }
		now := time.Now().UnixMilli()

		// good is a valid batch of one record with a fresh value, in codec.
		var sent []sentRecord
		good := func(codec int) []byte {
			v := []byte(fmt.Sprintf("good-%d", len(sent)))
			sent = append(sent, sentRecord{value: v})
			return recBatch(codec, 1, now, now, recCompress(t, codec, recEncode([]byte{0}, 0, 0, -1, len(v), v, 0)))
		}
		produce := func(topic string, batch []byte) producePartResult {
			return rawProduce(t, conn, produceRequest(9, -1, producePart{topic, 0, batch}), nextCorr())[topic+"/0"]
		}
		if r := produce(topic, good(recCodecNone)); r.code != 0 {
			t.Fatalf("first good batch: %s %q", codeName(r.code), r.message)
		}

		one := recEncode([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), 0)
		three := append(append(recEncode([]byte{0}, 0, 0, -1, -1, 0), recEncode([]byte{0}, 1, 1, -1, -1, 0)...), recEncode([]byte{0}, 2, 2, -1, -1, 0)...)
		garbage := bytes.Repeat([]byte{0x5a, 0xa5, 0x00, 0xff}, 16)
		type defect struct {
			name    string
			topic   string
			batch   func(codec int) []byte
			want    int16
			codecs  []int
			garbage bool // records section is not valid for the codec
		}
		all := []int{recCodecNone, recCodecGzip, recCodecSnappy, recCodecLZ4, recCodecZstd}
		defects := []defect{
			{"garbage-payload", topic, func(c int) []byte { return recBatch(c, 1, now, now, garbage) }, kerr.InvalidRecord.Code, all[1:], true},
			{"header-count-2^31-1", topic, func(c int) []byte {
				return recBatch(c, 1, now, now, recCompress(t, c, recEncode([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), math.MaxInt32)))
			}, kerr.InvalidRecord.Code, all, false},
			{"header-count-negative", topic, func(c int) []byte {
				return recBatch(c, 1, now, now, recCompress(t, c, recEncode([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), -5)))
			}, kerr.InvalidRecord.Code, all, false},
			{"key-length-past-record", topic, func(c int) []byte {
				return recBatch(c, 1, now, now, recCompress(t, c, recEncode([]byte{0}, 0, 0, 5000, []byte("k"), 1, []byte("v"), 0)))
			}, kerr.InvalidRecord.Code, all, false},
			{"claims-1000-holds-1", topic, func(c int) []byte { return recBatch(c, 1000, now, now, recCompress(t, c, one)) }, kerr.InvalidRecord.Code, all, false},
			{"claims-1-holds-3", topic, func(c int) []byte { return recBatch(c, 1, now, now, recCompress(t, c, three)) }, kerr.InvalidRecord.Code, all, false},
			{"timestamp-2h-ahead", topic, func(c int) []byte {
				return recBatch(c, 1, now+2*3600_000, now+2*3600_000, recCompress(t, c, one))
			}, kerr.InvalidTimestamp.Code, all, false},
			{"null-key-compacted-topic", compacted, func(c int) []byte {
				return recBatch(c, 1, now, now, recCompress(t, c, recEncode([]byte{0}, 0, 0, -1, 1, []byte("v"), 0)))
			}, kerr.InvalidRecord.Code, all, false},
			{"timestamp-1h-old-strict-topic", strict, func(c int) []byte {
				return recBatch(c, 1, now-3600_000, now-3600_000, recCompress(t, c, one))
			}, kerr.InvalidTimestamp.Code, all, false},
		}
		for _, d := range defects {
			for _, c := range d.codecs {
				t.Run(fmt.Sprintf("%s/codec=%d", d.name, c), func(t *testing.T) {
					r := produce(d.topic, d.batch(c))
					if r.code != d.want {
						t.Errorf("error %s, want %s (message %q)", codeName(r.code), codeName(d.want), r.message)
					}
					if !b.Alive() {
						t.Fatal("broker died")
					}
				})
			}
		}
		if end := endOffsets(t, b.Addr, topic); end[0] != 1 {
			t.Errorf("high watermark after the refused batches: %d, want 1", end[0])
		}
		for _, other := range []string{strict, compacted} {
			if end := endOffsets(t, b.Addr, other); end[0] != 0 {
				t.Errorf("high watermark of %s after the refused batches: %d, want 0", other, end[0])
			}
		}

		// A lying maxTimestamp is replaced with the records' maximum, in
		// every codec: ListOffsets(-3) answers the truth.
		for _, c := range all {
			v := []byte(fmt.Sprintf("good-%d", len(sent)))
			sent = append(sent, sentRecord{value: v})
			lying := recBatch(c, 1, now, math.MaxInt64, recCompress(t, c, recEncode([]byte{0}, 0, 0, -1, len(v), v, 0)))
			if r := produce(topic, lying); r.code != 0 {
				t.Fatalf("codec %d: lying maxTimestamp batch: %s %q", c, codeName(r.code), r.message)
			}
		}
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 8
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -3
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrListOffsetsResponse()
		if err := roundTrip(conn, req, resp, nextCorr(), rawTimeout); err != nil {
			t.Fatalf("ListOffsets: %v", err)
		}
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Timestamp != now {
			t.Errorf("ListOffsets(-3): error %s, timestamp %d offset %d; want timestamp %d", codeName(p.ErrorCode), p.Timestamp, p.Offset, now)
		}

		// Good batches after the bad ones land, and a consumer reads them all.
		for _, c := range all {
			if r := produce(topic, good(c)); r.code != 0 {
				t.Fatalf("codec %d: good batch after the bad input: %s %q", c, codeName(r.code), r.message)
			}
		}
		got := consumeFranz(t, b.Addr, topic, fromStart(1), len(sent))
		verifyRecords(t, "good records around the defects", sent, got, nil)
	})
}
