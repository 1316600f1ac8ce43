package broker

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/proto"
)

// FuzzProduceParse feeds the Produce request flyweight (produceCtx.parse)
// arbitrary bodies. Invariants: it never panics; a body it accepts is one
// kmsg decodes to the same topics, partitions and record bytes, and every
// records slice lies inside the body (the flyweight never copies them).
func FuzzProduceParse(f *testing.F) {
	for _, v := range []int16{3, 7, 9, 11} {
		req := kmsg.ProduceRequest{Version: v, Acks: -1, TimeoutMillis: 1000}
		for _, name := range []string{"a", "topic-b"} {
			t := kmsg.ProduceRequestTopic{Topic: name}
			for p := int32(0); p < 2; p++ {
				t.Partitions = append(t.Partitions, kmsg.ProduceRequestTopicPartition{Partition: p, Records: makeBatch([]byte("v"), []byte("w"))})
			}
			req.Topics = append(req.Topics, t)
		}
		f.Add(v, req.AppendTo(nil))
	}
	f.Add(int16(9), []byte{0, 0xff, 0xff, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}) // array count 2^31
	f.Fuzz(func(t *testing.T, version int16, body []byte) {
		version = 3 + (version&0x7fff)%9 // the versions we parse: 3-11
		c := &produceCtx{}
		c.hdr.APIVersion = version
		ok := c.parse(body)
		if !ok {
			return
		}
		for _, s := range c.slots {
			if len(s.records) > 0 && !within(s.records, body) {
				t.Fatal("records slice outside the body")
			}
		}
		var k kmsg.ProduceRequest
		k.Version = version
		if err := k.ReadFrom(body); err != nil {
			return // kmsg is stricter about some encodings (e.g. null names)
		}
		if len(k.Topics) != len(c.topics) {
			t.Fatalf("topics: flyweight %d, kmsg %d", len(c.topics), len(k.Topics))
		}
		for i, kt := range k.Topics {
			ct := c.topics[i]
			if kt.Topic != ct.name || len(kt.Partitions) != ct.end-ct.first {
				t.Fatalf("topic %d: flyweight %q/%d, kmsg %q/%d", i, ct.name, ct.end-ct.first, kt.Topic, len(kt.Partitions))
			}
			for j, kp := range kt.Partitions {
				s := c.slots[ct.first+j]
				if s.partition != kp.Partition || !bytes.Equal(s.records, kp.Records) {
					t.Fatalf("topic %d partition %d differs", i, j)
				}
			}
		}
	})
}

// within reports whether sub is a sub-slice of b's memory.
func within(sub, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	start := &b[0]
	for i := range b {
		if &b[i] == &sub[0] {
			return i+len(sub) <= len(b)
		}
	}
	_ = start
	return false
}

// FuzzRecordWalk feeds the record validator (validateBatch's walk for
// uncompressed batches, inspectBatch for compressed ones, admitRecords)
// arbitrary records sections under a claimed count, in every codec.
// Invariants: it never panics; the verdict does not depend on the codec
// (compressed or not, the same records get the same answer); an accepted
// batch's records each parse with kmsg to exactly their length prefix (no
// header count or length a consumer would trip on), their offset deltas
// run 0..count-1, and the stored header's maxTimestamp is the largest
// record timestamp (or -1).
func FuzzRecordWalk(f *testing.F) {
	good := append(append(goodRecord(0, 0), goodRecord(1, 5)...), goodRecord(2, 9)...)
	f.Add(int32(3), good, uint8(codecNone), int64(0))
	f.Add(int32(3), good, uint8(codecZstd), int64(1<<62))
	f.Add(int32(1000), goodRecord(0, 0), uint8(codecGzip), int64(0))
	f.Add(int32(1), rawRecord([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), 1<<31-1), uint8(codecLZ4), int64(0))
	f.Add(int32(1), rawRecord([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), -2), uint8(codecSnappy), int64(0))
	f.Fuzz(func(t *testing.T, count int32, records []byte, codecSel uint8, headerMaxTs int64) {
		const firstTs, now = 1_000_000, 2_000_000
		rules := recordRules{beforeMaxMs: math.MaxInt64, afterMaxMs: math.MaxInt64}
		codec := int8(codecSel % 5)
		_, _, plainErr := admitForTest(rawBatch(codecNone, 0, count, firstTs, headerMaxTs, records), rules, now)
		_, out, berr := admitForTest(rawBatch(codec, 0, count, firstTs, headerMaxTs, records), rules, now)
		if (berr == nil) != (plainErr == nil) || (berr != nil && berr.err != plainErr.err) {
			t.Fatalf("codec %d: verdict %+v, uncompressed %+v", codec, berr, plainErr)
		}
		if berr != nil {
			return
		}
		maxTs, pos := int64(-1), 0
		for i := int32(0); i < count; i++ {
			n, w := binary.Varint(records[pos:])
			var r kmsg.Record
			if err := r.ReadFrom(records[pos : pos+w+int(n)]); err != nil {
				t.Fatalf("record %d accepted but kmsg cannot read it: %v", i, err)
			}
			if r.OffsetDelta != i {
				t.Fatalf("record %d has offset delta %d", i, r.OffsetDelta)
			}
			if ts := firstTs + r.TimestampDelta64; ts != -1 {
				maxTs = max(maxTs, ts)
			}
			pos += w + int(n)
		}
		if pos != len(records) {
			t.Fatalf("accepted with %d bytes after the records", len(records)-pos)
		}
		if got := int64(binary.BigEndian.Uint64(out[proto.BatchPosMaxTimestamp:])); got != maxTs {
			t.Fatalf("stored maxTimestamp %d, records' max %d", got, maxTs)
		}
	})
}
