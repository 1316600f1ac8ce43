package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/proto"
)

// rawRecord encodes one record from its fields: an int64 is written as a
// zigzag varint, a []byte as is; the length prefix is added.
func rawRecord(fields ...any) []byte {
	var body []byte
	for _, f := range fields {
		switch v := f.(type) {
		case int64:
			body = binary.AppendVarint(body, v)
		case int:
			body = binary.AppendVarint(body, int64(v))
		case []byte:
			body = append(body, v...)
		}
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// goodRecord is record i at timestamp delta tsDelta: key "k", value "v",
// one header.
func goodRecord(i int, tsDelta int64) []byte {
	return rawRecord([]byte{0}, tsDelta, i, 1, []byte("k"), 1, []byte("v"), 1, 2, []byte("hk"), -1)
}

// rawBatch frames records (compressed with codec) as one v2 batch claiming
// count records, with the given first and max timestamps and attribute
// bits beyond the codec.
func rawBatch(codec int8, attrs int16, count int32, firstTs, maxTs int64, records []byte) []byte {
	if codec != codecNone && records != nil {
		var err error
		if records, err = compressRecords(codec, records, nil); err != nil {
			panic(err)
		}
	}
	rb := kmsg.RecordBatch{
		Magic: 2, PartitionLeaderEpoch: -1, Attributes: int16(codec) | attrs, LastOffsetDelta: count - 1,
		FirstTimestamp: firstTs, MaxTimestamp: maxTs, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: count, Records: records,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	recrc(b)
	return b
}

// garbageBatch is a batch whose records section is bytes that are not a
// valid payload of codec, with a correct CRC.
func garbageBatch(codec int8) []byte {
	b := rawBatch(codecNone, 0, 1, 1000, 1000, bytes.Repeat([]byte{0x5a, 0xa5, 0x00, 0xff}, 16))
	b[proto.BatchPosAttributes+1] |= byte(codec)
	return recrc(b)
}

// admitForTest runs a batch through the produce path's checks as
// produceAll and the worker do: validateBatch, then for uncompressed
// admitRecords in place, for compressed inspectBatch.
func admitForTest(b []byte, rules recordRules, nowMs int64) (batchInfo, []byte, *batchError) {
	bi, berr := validateBatch(b, 1<<20, 11)
	if berr != nil {
		return bi, nil, berr
	}
	if bi.codec() == codecNone {
		berr = admitRecords(&bi, rules, nowMs)
		return bi, b, berr
	}
	// The ring thread's walk (walkCompressed) and the worker's (inspectBatch)
	// must agree; a batch too large for the ring has only the worker's.
	ringBi := bi
	handOff, ringErr := walkCompressed(&ringBi, ringDecompressMaxBytes)
	if ringErr == nil && !handOff {
		ringBi.batch = ringBi.batch.Clone()
		ringErr = admitRecords(&ringBi, rules, nowMs)
	}
	rb, berr := inspectBatch(&bi, &rules, nowMs, false, 0)
	out := rb.Bytes()
	if !handOff && (ringErr == nil) != (berr == nil) {
		panic(fmt.Sprintf("ring walk %+v, worker walk %+v", ringErr, berr))
	}
	return bi, out, berr
}

var kafkaDefaultTimestamps = recordRules{beforeMaxMs: math.MaxInt64, afterMaxMs: 3600000}

// Every record-level defect, in every codec, is refused with Kafka's code;
// the good batches are accepted with maxTimestamp made the records' own.
func TestRecordValidation(t *testing.T) {
	const now = 1_700_000_000_000
	good3 := append(append(goodRecord(0, 0), goodRecord(1, 5)...), goodRecord(2, 9)...)
	type tc struct {
		name  string
		b     func(codec int8) []byte
		rules recordRules
		want  *kerr.Error
		maxTs int64 // for accepted batches: the stored header's maxTimestamp
	}
	cases := []tc{
		{"good", func(c int8) []byte { return rawBatch(c, 0, 3, now, now+9, good3) }, kafkaDefaultTimestamps, nil, now + 9},
		{"null-key-and-value", func(c int8) []byte {
			return rawBatch(c, 0, 1, now, now, rawRecord([]byte{0}, 0, 0, -1, -1, 0))
		}, kafkaDefaultTimestamps, nil, now},
		{"header-count-2^31-1", func(c int8) []byte {
			return rawBatch(c, 0, 1, now, now, rawRecord([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), math.MaxInt32))
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"header-count-negative", func(c int8) []byte {
			return rawBatch(c, 0, 1, now, now, rawRecord([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), -3))
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"header-key-negative", func(c int8) []byte {
			return rawBatch(c, 0, 1, now, now, rawRecord([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), 1, -1, -1))
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"header-value-past-record", func(c int8) []byte {
			return rawBatch(c, 0, 1, now, now, rawRecord([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), 1, 1, []byte("h"), 40, []byte("x")))
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"key-past-record", func(c int8) []byte {
			return rawBatch(c, 0, 1, now, now, rawRecord([]byte{0}, 0, 0, 1000, []byte("k"), 1, []byte("v"), 0))
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"value-past-record", func(c int8) []byte {
			return rawBatch(c, 0, 1, now, now, rawRecord([]byte{0}, 0, 0, 1, []byte("k"), 1<<30, []byte("v"), 0))
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"fields-short-of-length", func(c int8) []byte {
			return rawBatch(c, 0, 1, now, now, rawRecord([]byte{0}, 0, 0, 1, []byte("k"), 1, []byte("v"), 0, []byte("trailing")))
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"count-claims-1000-holds-1", func(c int8) []byte {
			return rawBatch(c, 0, 1000, now, now, goodRecord(0, 0))
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"count-claims-2^31-1-holds-1", func(c int8) []byte {
			return rawBatch(c, 0, math.MaxInt32, now, now, goodRecord(0, 0))
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"count-claims-1-holds-3", func(c int8) []byte {
			return rawBatch(c, 0, 1, now, now, good3)
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"offset-deltas-skip", func(c int8) []byte {
			return rawBatch(c, 0, 2, now, now, append(goodRecord(0, 0), goodRecord(2, 0)...))
		}, kafkaDefaultTimestamps, kerr.InvalidRecord, 0},
		{"lying-max-timestamp", func(c int8) []byte { return rawBatch(c, 0, 3, now, math.MaxInt64, good3) }, kafkaDefaultTimestamps, nil, now + 9},
		{"low-max-timestamp", func(c int8) []byte { return rawBatch(c, 0, 3, now, 0, good3) }, kafkaDefaultTimestamps, nil, now + 9},
		{"no-timestamps", func(c int8) []byte {
			return rawBatch(c, 0, 1, -1, 12345, rawRecord([]byte{0}, 0, 0, -1, -1, 0))
		}, kafkaDefaultTimestamps, nil, -1},
		{"after-max", func(c int8) []byte {
			return rawBatch(c, 0, 3, now+3600000-8, now+3600000-8, good3) // last record 1 ms past now+1h
		}, kafkaDefaultTimestamps, kerr.InvalidTimestamp, 0},
		{"after-max-edge", func(c int8) []byte {
			return rawBatch(c, 0, 3, now+3600000-9, now+3600000, good3)
		}, kafkaDefaultTimestamps, nil, now + 3600000},
		{"before-max", func(c int8) []byte {
			return rawBatch(c, 0, 3, now-1001, now, good3) // first record 1 ms too old
		}, recordRules{beforeMaxMs: 1000, afterMaxMs: math.MaxInt64}, kerr.InvalidTimestamp, 0},
		{"before-max-min-int64", func(c int8) []byte {
			return rawBatch(c, 0, 1, math.MinInt64, math.MinInt64, goodRecord(0, 0))
		}, recordRules{beforeMaxMs: math.MaxInt64 - 1, afterMaxMs: math.MaxInt64}, kerr.InvalidTimestamp, 0},
		{"producer-log-append-time-on-lat-topic", func(c int8) []byte {
			return rawBatch(c, proto.AttrLogAppendTime, 3, now, now, good3)
		}, recordRules{logAppendTime: true, beforeMaxMs: math.MaxInt64, afterMaxMs: math.MaxInt64}, kerr.InvalidTimestamp, 0},
		{"compacted-null-key", func(c int8) []byte {
			return rawBatch(c, 0, 2, now, now, append(goodRecord(0, 0), rawRecord([]byte{0}, 0, 1, -1, 1, []byte("v"), 0)...))
		}, recordRules{compacted: true, beforeMaxMs: math.MaxInt64, afterMaxMs: math.MaxInt64}, kerr.InvalidRecord, 0},
		{"compacted-keyed", func(c int8) []byte { return rawBatch(c, 0, 3, now, now+9, good3) },
			recordRules{compacted: true, beforeMaxMs: math.MaxInt64, afterMaxMs: math.MaxInt64}, nil, now + 9},
		{"producer-log-append-time-far-future", func(c int8) []byte {
			return rawBatch(c, proto.AttrLogAppendTime, 3, now, math.MaxInt64, good3)
		}, kafkaDefaultTimestamps, kerr.InvalidTimestamp, 0},
	}
	for _, codec := range []int8{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		for _, c := range cases {
			b := c.b(codec)
			bi, out, berr := admitForTest(b, c.rules, now)
			switch {
			case c.want == nil && berr != nil:
				t.Errorf("codec %d %s: %v %s", codec, c.name, berr.err, berr.msg)
			case c.want != nil && (berr == nil || berr.err != c.want):
				t.Errorf("codec %d %s: got %+v, want %v", codec, c.name, berr, c.want)
			case c.want == nil:
				if got := int64(binary.BigEndian.Uint64(out[proto.BatchPosMaxTimestamp:])); got != c.maxTs || bi.batch.MaxTimestamp() != c.maxTs {
					t.Errorf("codec %d %s: stored maxTimestamp %d (info %d), want %d", codec, c.name, got, bi.batch.MaxTimestamp(), c.maxTs)
				}
				if _, berr := validateBatch(out, 1<<20, 11); berr != nil {
					t.Errorf("codec %d %s: rewritten batch invalid: %s", codec, c.name, berr.msg)
				}
			}
		}
		if codec == codecNone {
			continue
		}
		if _, _, berr := admitForTest(garbageBatch(codec), kafkaDefaultTimestamps, now); berr == nil || berr.err != kerr.InvalidRecord {
			t.Errorf("codec %d: garbage payload with a valid CRC: %+v", codec, berr)
		}
	}
	// A batch marked LogAppendTime by its producer on a CreateTime topic is
	// read at its header maxTimestamp (Kafka's reading) and stored as
	// CreateTime.
	b := rawBatch(codecNone, proto.AttrLogAppendTime, 3, now, now+1, good3)
	if bi, _, berr := admitForTest(b, kafkaDefaultTimestamps, now); berr != nil || bi.logAppendTimed() || b[proto.BatchPosAttributes+1]&proto.AttrLogAppendTime != 0 || bi.batch.MaxTimestamp() != now+1 {
		t.Fatalf("producer LogAppendTime on a CreateTime topic: %+v %+v", berr, bi)
	}
	// Records too large for a ring thread are handed to the worker.
	big := rawBatch(codecZstd, 0, 1, now, now, rawRecord([]byte{0}, 0, 0, -1, ringDecompressMaxBytes, make([]byte, ringDecompressMaxBytes), 0))
	bi, berr := validateBatch(big, 1<<20, 11)
	if handOff, werr := walkCompressed(&bi, ringDecompressMaxBytes); berr != nil || werr != nil || !handOff {
		t.Fatalf("large zstd batch: handOff %v, %+v %+v", handOff, berr, werr)
	}
	if _, _, berr := admitForTest(big, kafkaDefaultTimestamps, now); berr != nil {
		t.Fatalf("large zstd batch on the worker: %+v", berr)
	}
	// A zstd frame declaring a window larger than the ring decoder's limit
	// (as a streaming producer writes) over a few records is valid, wherever
	// it is inspected.
	enc, _ := zstd.NewWriter(nil, zstd.WithWindowSize(4<<20), zstd.WithSingleSegment(false))
	wide := rawBatch(codecNone, 0, 3, now, now+9, enc.EncodeAll(good3, nil))
	enc.Close()
	wide[proto.BatchPosAttributes+1] |= codecZstd
	recrc(wide)
	bi, berr = validateBatch(wide, 1<<20, 11)
	if handOff, werr := walkCompressed(&bi, ringDecompressMaxBytes); berr != nil || werr != nil {
		t.Fatalf("zstd frame with a 4 MiB window: handOff %v, %+v %+v", handOff, berr, werr)
	}
	if _, _, berr := admitForTest(wide, kafkaDefaultTimestamps, now); berr != nil {
		t.Fatalf("zstd frame with a 4 MiB window on the worker: %+v", berr)
	}
	// The ring thread's walk of small compressed batches allocates nothing
	// once the pools are warm (the race detector drops pooled items).
	for _, codec := range []int8{codecGzip, codecSnappy, codecLZ4, codecZstd} {
		if raceEnabled {
			break
		}
		cb := rawBatch(codec, 0, 3, now, now+9, good3)
		if n := testing.AllocsPerRun(100, func() {
			bi, _ := validateBatch(cb, 1<<20, 11)
			walkCompressed(&bi, ringDecompressMaxBytes)
		}); n != 0 {
			t.Errorf("codec %d: ring walk allocates %v", codec, n)
		}
	}
	// The uncompressed walk allocates nothing, a lying header included.
	lying := rawBatch(codecNone, 0, 3, now, math.MaxInt64, good3)
	if n := testing.AllocsPerRun(100, func() {
		bi, _ := validateBatch(lying, 1<<20, 11)
		admitRecords(&bi, kafkaDefaultTimestamps, now)
	}); n != 0 {
		t.Fatalf("uncompressed admission allocates %v", n)
	}
}
