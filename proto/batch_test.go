package proto

import (
	"bytes"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testBatch builds a v2 batch of n records (key "k<i>", value "v<i>", one
// header on odd records) with kmsg, independent of the view under test.
func testBatch(n int, attrs int16, baseTs int64) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Key: []byte{'k', byte('0' + i)}, Value: []byte{'v', byte('0' + i)}}
		if i%2 == 1 {
			r.Headers = []kmsg.Header{{Key: "h", Value: []byte("x")}}
		}
		recs = AppendRecord(recs, &r)
	}
	b := kmsg.RecordBatch{
		FirstOffset: 7, PartitionLeaderEpoch: -1, Attributes: attrs, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: baseTs, MaxTimestamp: baseTs + int64(n) - 1, ProducerID: 42, ProducerEpoch: 3,
		FirstSequence: 100, NumRecords: int32(n), Records: recs,
	}
	return AppendRecordBatch(nil, &b)
}

func TestRecordBatchHeader(t *testing.T) {
	raw := testBatch(3, AttrTransactional, 1000)
	rb, rest, err := ParseRecordBatch(append(raw, 1, 2, 3))
	if err != nil || len(rest) != 3 {
		t.Fatalf("parse: %v rest %d", err, len(rest))
	}
	checks := []struct {
		name      string
		got, want int64
	}{
		{"BaseOffset", rb.BaseOffset(), 7},
		{"Size", int64(rb.Size()), int64(len(raw))},
		{"BatchLength", int64(rb.BatchLength()), int64(len(raw) - RecordBatchLogOverhead)},
		{"PartitionLeaderEpoch", int64(rb.PartitionLeaderEpoch()), -1},
		{"Magic", int64(rb.Magic()), 2},
		{"Attributes", int64(rb.Attributes()), AttrTransactional},
		{"LastOffsetDelta", int64(rb.LastOffsetDelta()), 2},
		{"BaseTimestamp", rb.BaseTimestamp(), 1000},
		{"MaxTimestamp", rb.MaxTimestamp(), 1002},
		{"ProducerID", rb.ProducerID(), 42},
		{"ProducerEpoch", int64(rb.ProducerEpoch()), 3},
		{"BaseSequence", int64(rb.BaseSequence()), 100},
		{"LastSequence", int64(rb.LastSequence()), 102},
		{"RecordCount", int64(rb.RecordCount()), 3},
		{"LastOffset", rb.LastOffset(), 9},
		{"Codec", int64(rb.Codec()), int64(CodecNone)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !rb.Transactional() || rb.Control() || rb.LogAppendTime() {
		t.Errorf("flags: transactional %v control %v logAppendTime %v", rb.Transactional(), rb.Control(), rb.LogAppendTime())
	}
	if !rb.CheckCRC() {
		t.Fatal("CRC of a fresh batch does not check")
	}
	if want := crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)); rb.CRC() != want {
		t.Fatalf("CRC %x, want %x", rb.CRC(), want)
	}
	if !bytes.Equal(rb.Bytes(), raw) {
		t.Fatal("Bytes is not the batch")
	}
}

func TestRecordBatchRestamp(t *testing.T) {
	rb, _, err := ParseRecordBatch(testBatch(2, 0, 50))
	if err != nil {
		t.Fatal(err)
	}
	// Outside the CRC: no restamp needed.
	rb.SetBaseOffset(1 << 40)
	rb.SetPartitionLeaderEpoch(9)
	if !rb.CheckCRC() || rb.BaseOffset() != 1<<40 || rb.PartitionLeaderEpoch() != 9 {
		t.Fatal("rewriting baseOffset/leader epoch broke the CRC or did not stick")
	}
	// Inside: the CRC breaks until restamped.
	rb.SetAttributes(rb.Attributes() | AttrLogAppendTime)
	rb.SetMaxTimestamp(777)
	if rb.CheckCRC() {
		t.Fatal("CRC still checks after rewriting covered fields")
	}
	rb.StampCRC()
	if !rb.CheckCRC() || !rb.LogAppendTime() || rb.MaxTimestamp() != 777 {
		t.Fatal("restamp")
	}
	c := rb.Clone()
	c.SetBaseOffset(0)
	if rb.BaseOffset() == 0 || !bytes.Equal(c.Bytes()[8:], rb.Bytes()[8:]) {
		t.Fatal("Clone shares bytes or differs")
	}
}

func TestRecordBatchFraming(t *testing.T) {
	good := testBatch(1, 0, 0)
	withLen := func(n int32) []byte {
		b := append([]byte(nil), good...)
		RecordBatch{b: b}.SetBatchLength(n)
		return b
	}
	badMagic := append([]byte(nil), good...)
	badMagic[BatchPosMagic] = 1
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrBatchShort},
		{"short", good[:16], ErrBatchShort},
		{"magic", badMagic, ErrBatchMagic},
		{"length below header", withLen(48), ErrBatchLength},
		{"negative length", withLen(-1), ErrBatchLength},
		{"truncated", good[:len(good)-1], ErrBatchTruncated},
		{"huge length", withLen(RecordBatchMaxLength + 1), ErrBatchTruncated},
	} {
		if _, _, err := ParseRecordBatch(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := ParseRecordBatchHeader(good[:RecordBatchHeaderSize]); err != nil {
		t.Errorf("header only: %v", err)
	}
	if _, err := ParseRecordBatchHeader(withLen(RecordBatchMaxLength + 1)); !errors.Is(err, ErrBatchLength) {
		t.Errorf("header huge length: %v", err)
	}
	if _, err := ParseRecordBatchHeader(badMagic); !errors.Is(err, ErrBatchMagic) {
		t.Errorf("header magic: %v", err)
	}
	if _, err := ParseRecordBatchHeader(good[:60]); !errors.Is(err, ErrBatchShort) {
		t.Errorf("header short: %v", err)
	}
}

func TestRecordBatchControlAndCodec(t *testing.T) {
	rb, _, _ := ParseRecordBatch(testBatch(1, AttrControl|int16(CodecZstd), 0))
	if !rb.Control() || rb.Codec() != CodecZstd || rb.Transactional() {
		t.Fatalf("control %v codec %d", rb.Control(), rb.Codec())
	}
}

func TestRecordIter(t *testing.T) {
	rb, _, _ := ParseRecordBatch(testBatch(4, 0, 10))
	it := rb.RecordIter()
	var r Record
	n := 0
	for it.Next(&r) {
		if r.OffsetDelta != int32(n) || r.TimestampDelta != int64(n) || string(r.Key) != "k"+string(rune('0'+n)) || string(r.Value) != "v"+string(rune('0'+n)) {
			t.Fatalf("record %d: %+v", n, r)
		}
		if want := int32(n % 2); r.HeaderCount != want {
			t.Fatalf("record %d: %d headers, want %d", n, r.HeaderCount, want)
		}
		n++
	}
	if it.Err() != nil || n != 4 {
		t.Fatalf("walked %d records, err %v", n, it.Err())
	}
	sum, err := ValidateRecords(rb.Records(), rb.RecordCount(), rb.BaseTimestamp())
	if err != nil || sum.MinTimestamp != 10 || sum.MaxTimestamp != 13 || sum.NullKey {
		t.Fatalf("validate: %+v %v", sum, err)
	}

	// Null key and value, trailing bytes, a record count past the bytes.
	var recs []byte
	recs = AppendRecord(recs, &kmsg.Record{TimestampDelta64: -11})
	it = NewRecordIter(recs, 1)
	if !it.Next(&r) || r.Key != nil || r.Value != nil || it.Next(&r) || it.Err() != nil {
		t.Fatalf("null key/value: %+v %v", r, it.Err())
	}
	if sum, err := ValidateRecords(recs, 1, 10); err != nil || !sum.NullKey || sum.MinTimestamp <= sum.MaxTimestamp {
		t.Fatalf("null key/ts -1: %+v %v", sum, err)
	}
	it = NewRecordIter(append(recs, 0), 1)
	for it.Next(&r) {
	}
	if !errors.Is(it.Err(), ErrRecordTrailingData) {
		t.Fatalf("trailing: %v", it.Err())
	}
	if _, err := ValidateRecords(append(recs, 0), 1, 0); !errors.Is(err, ErrRecordTrailingData) {
		t.Fatalf("validate trailing: %v", err)
	}
	it = NewRecordIter(recs, 2)
	for it.Next(&r) {
	}
	if it.Err() == nil {
		t.Fatal("a record count past the bytes walked cleanly")
	}
	out := AppendRecord(nil, &kmsg.Record{OffsetDelta: 1, Key: []byte("k")})
	if _, err := ValidateRecords(out, 1, 0); !errors.Is(err, ErrRecordOffsetDelta) {
		t.Fatalf("offset delta: %v", err)
	}
}

func TestAddSequence(t *testing.T) {
	for _, c := range []struct{ base, delta, want int32 }{
		{0, 4, 4}, {2147483647, 0, 2147483647}, {2147483647, 1, 0}, {2147483640, 10, 2},
	} {
		if got := AddSequence(c.base, c.delta); got != c.want {
			t.Errorf("AddSequence(%d, %d) = %d, want %d", c.base, c.delta, got, c.want)
		}
	}
}

// FuzzBatch: parsing never panics and never reads outside its input; a
// parsed header re-encodes (kmsg) to the same bytes; restamping a batch
// whose CRC checks changes nothing; ValidateRecords and RecordIter agree
// on which record lists are well formed, and on their timestamps and keys.
func FuzzBatch(f *testing.F) {
	f.Add(testBatch(1, 0, 0))
	f.Add(testBatch(3, AttrTransactional, 1<<40))
	f.Add(testBatch(2, AttrControl, -1))
	f.Add(append(testBatch(1, 0, 5), testBatch(2, 0, 6)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if rb, err := ParseRecordBatchHeader(data); err == nil {
			_ = rb.Size() + int(rb.RecordCount()) + int(rb.Codec())
		}
		for rest := data; len(rest) > 0; {
			rb, next, err := ParseRecordBatch(rest)
			if err != nil {
				return
			}
			if len(next) >= len(rest) || rb.Size() != len(rest)-len(next) {
				t.Fatalf("size %d, consumed %d", rb.Size(), len(rest)-len(next))
			}
			rest = next
			k := kmsg.RecordBatch{
				FirstOffset: rb.BaseOffset(), Length: rb.BatchLength(), PartitionLeaderEpoch: rb.PartitionLeaderEpoch(),
				Magic: rb.Magic(), CRC: int32(rb.CRC()), Attributes: rb.Attributes(), LastOffsetDelta: rb.LastOffsetDelta(),
				FirstTimestamp: rb.BaseTimestamp(), MaxTimestamp: rb.MaxTimestamp(), ProducerID: rb.ProducerID(),
				ProducerEpoch: rb.ProducerEpoch(), FirstSequence: rb.BaseSequence(), NumRecords: rb.RecordCount(), Records: rb.Records(),
			}
			if re := k.AppendTo(nil); !bytes.Equal(re, rb.Bytes()) {
				t.Fatalf("re-encoded header differs")
			}
			if rb.CheckCRC() {
				c := rb.Clone()
				c.StampCRC()
				if !bytes.Equal(c.Bytes(), rb.Bytes()) {
					t.Fatal("restamping a valid CRC changed the batch")
				}
			}
			sum, verr := ValidateRecords(rb.Records(), rb.RecordCount(), rb.BaseTimestamp())
			it := rb.RecordIter()
			var r Record
			n := int32(0)
			minTs, maxTs, nullKey := int64(1<<63-1), int64(-1<<63), false
			for it.Next(&r) {
				if ts := rb.BaseTimestamp() + r.TimestampDelta; ts != -1 {
					minTs, maxTs = min(minTs, ts), max(maxTs, ts)
				}
				nullKey = nullKey || r.Key == nil
				if r.OffsetDelta != n {
					break // ValidateRecords refuses out-of-sequence deltas
				}
				n++
			}
			if verr == nil {
				if it.Err() != nil || n != max(rb.RecordCount(), 0) {
					t.Fatalf("ValidateRecords accepted what RecordIter refused at %d: %v", n, it.Err())
				}
				if sum.MinTimestamp != minTs || sum.MaxTimestamp != maxTs || sum.NullKey != nullKey {
					t.Fatalf("summaries differ: %+v vs %d %d %v", sum, minTs, maxTs, nullKey)
				}
			}
		}
	})
}

func TestControlBatch(t *testing.T) {
	recs := AppendRecord(nil, &kmsg.Record{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}})
	raw := AppendRecordBatch(nil, &kmsg.RecordBatch{
		Attributes: AttrControl | AttrTransactional, ProducerID: 5, ProducerEpoch: 1, FirstSequence: -1,
		NumRecords: 1, Records: recs,
	})
	rb, _, err := ParseRecordBatch(raw)
	if err != nil || !rb.Control() || !rb.Transactional() || !rb.CheckCRC() {
		t.Fatalf("control batch: %v control %v", err, rb.Control())
	}
	it := rb.RecordIter()
	var r Record
	if !it.Next(&r) {
		t.Fatal(it.Err())
	}
	if typ, err := ParseControlKey(r.Key); err != nil || typ != ControlCommit {
		t.Fatalf("control key: %d %v", typ, err)
	}
	for _, bad := range [][]byte{nil, {0, 0, 1}, {0, 1, 0, 0}} {
		if _, err := ParseControlKey(bad); !errors.Is(err, ErrControlKey) {
			t.Errorf("key % x: %v", bad, err)
		}
	}
}
