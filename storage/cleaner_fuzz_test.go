package storage

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ringbroker/ringbroker/internal/codec"
	"github.com/ringbroker/ringbroker/proto"
)

// FuzzCleanFilter: the cleaner's batch filter (cleanRules.filter) over
// arbitrary batch bytes (framed and CRC-stamped so the fuzzer reaches the
// records), a small key map and arbitrary rules never panics, and what it
// writes is sound: dropped means nothing written and nothing kept;
// original means the input's own bytes; otherwise one whole batch appended
// after what dst held (which stays as it was), with a valid CRC, the
// input's base offset, last offset delta, producer id, epoch and base
// sequence, and records that are a subset of the input's, in order, with
// the same offset deltas, keys, values, headers and absolute timestamps
// (none for an empty batch).
//
// The open path's decoders need no target of their own here:
// finishCleanerSwaps judges a swap file with scanSegment, which
// FuzzScanSegment covers, and the rest of a log's open is the recovery
// FuzzScanSegment and the datadriven recovery tests already cover.
func FuzzCleanFilter(f *testing.F) {
	for i, cd := range []int8{codec.None, codec.Gzip, codec.Snappy, codec.LZ4, codec.Zstd} {
		recs := []wrec{
			{key: []byte("a"), value: []byte("1"), ts: 1000, headers: 1},
			{key: []byte("b"), value: nil, ts: 1001},
			{key: nil, value: []byte("keyless"), ts: 1002},
			{key: []byte("a"), value: []byte("2"), ts: 1004, headers: 2},
		}
		pid := int64(-1)
		if i%2 == 1 {
			pid = 42
		}
		b := cleanTestBatch(recs, 1000, cd, pid, 7)
		binary.BigEndian.PutUint64(b, 100) // base offset
		keys := []byte{1, 'a', 3, 1, 'b', 0}
		f.Add(b, keys, uint8(10), int64(5000), int64(1000), i%2 == 0)
		f.Add(b, []byte{1, 'a', 0, 1, 'b', 9}, uint8(2), int64(0), int64(0), true)
	}
	f.Fuzz(func(t *testing.T, data, keySpec []byte, endDelta uint8, nowMs, retentionMs int64, retainEmpty bool) {
		in := append([]byte(nil), data...)
		rb, _, err := proto.ParseRecordBatch(in)
		if err != nil || rb.Size() < proto.RecordBatchHeaderSize {
			return
		}
		in = in[:rb.Size()]
		if _, err := parseBatchHeader(in); err != nil {
			return // the cleaner reads only batches the log's header check passes (segReader.next)
		}
		rb, _, _ = proto.ParseRecordBatch(in)
		rb.StampCRC() // the filter is only given CRC-checked batches
		orig := append([]byte(nil), in...)
		base := rb.BaseOffset()

		// The key map: entries of [key length, key..., offset delta].
		keys := newOffsetMap(1<<16, 0.75)
		for p := 0; p < len(keySpec) && p < 256; {
			n := int(keySpec[p])
			if p+1+n+1 > len(keySpec) {
				break
			}
			keys.put(keySpec[p+1:p+1+n], base+int64(keySpec[p+1+n]))
			p += n + 2
		}
		rules := &cleanRules{keys: keys, endOffset: base + int64(endDelta), nowMs: nowMs, deleteRetentionMs: retentionMs}
		prefix := []byte("prefix")
		dst := append(make([]byte, 0, 16), prefix...)
		var scratch filterScratch
		out, v, st, err := rules.filter(rb, retainEmpty, &scratch, dst)
		if !bytes.Equal(in, orig) {
			t.Fatal("the filter changed its input")
		}
		if err != nil {
			return
		}
		if rb.Control() { // transaction markers are kept as they are (no transactions yet)
			if v != verdictOriginal {
				t.Fatalf("control batch: verdict %d", v)
			}
			return
		}
		if st.kept > st.read || st.kept < 0 {
			t.Fatalf("kept %d of %d", st.kept, st.read)
		}
		switch v {
		case verdictDrop:
			if out != nil || st.kept != 0 || retainEmpty {
				t.Fatalf("dropped, with %d bytes out, %d records kept, retainEmpty %v", len(out), st.kept, retainEmpty)
			}
			return
		case verdictOriginal:
			if !bytes.Equal(out, orig) {
				t.Fatal("original verdict but not the input's bytes")
			}
			return
		}
		if !bytes.Equal(out[:len(prefix)], prefix) {
			t.Fatal("what dst held was changed")
		}
		nbBytes := out[len(prefix):]
		nb, rest, err := proto.ParseRecordBatch(nbBytes)
		if err != nil || len(rest) != 0 {
			t.Fatalf("output is not one whole batch: %v, %d bytes after it", err, len(rest))
		}
		if !nb.CheckCRC() {
			t.Fatal("output CRC mismatch")
		}
		if _, err := parseBatchHeader(nbBytes); err != nil {
			t.Fatalf("output batch refused by the log's header check: %v", err)
		}
		if nb.BaseOffset() != rb.BaseOffset() || nb.LastOffsetDelta() != rb.LastOffsetDelta() ||
			nb.ProducerID() != rb.ProducerID() || nb.ProducerEpoch() != rb.ProducerEpoch() || nb.BaseSequence() != rb.BaseSequence() {
			t.Fatalf("output header differs: base %d/%d last delta %d/%d producer %d/%d epoch %d/%d seq %d/%d",
				nb.BaseOffset(), rb.BaseOffset(), nb.LastOffsetDelta(), rb.LastOffsetDelta(), nb.ProducerID(), rb.ProducerID(),
				nb.ProducerEpoch(), rb.ProducerEpoch(), nb.BaseSequence(), rb.BaseSequence())
		}
		if int64(nb.RecordCount()) != st.kept {
			t.Fatalf("output has %d records, kept %d", nb.RecordCount(), st.kept)
		}
		if v == verdictEmpty {
			if st.kept != 0 || nb.RecordCount() != 0 || len(nbBytes) != proto.RecordBatchHeaderSize {
				t.Fatalf("empty batch with %d records, %d bytes", nb.RecordCount(), len(nbBytes))
			}
			return
		}
		inRecs := fuzzRecords(t, rb, "input")
		outRecs := fuzzRecords(t, nb, "output")
		j := 0
		for _, r := range outRecs {
			for j < len(inRecs) && !inRecs[j].same(r) {
				j++
			}
			if j == len(inRecs) {
				t.Fatalf("output record %+v is not one of the input's (in order)", r)
			}
			j++
		}
	})
}

type fuzzRec struct {
	offsetDelta    int32
	key, value     []byte
	keyNil, valNil bool
	headers        []byte
	ts             int64
}

func (a fuzzRec) same(b fuzzRec) bool {
	return a.offsetDelta == b.offsetDelta && bytes.Equal(a.key, b.key) && bytes.Equal(a.value, b.value) &&
		a.keyNil == b.keyNil && a.valNil == b.valNil && bytes.Equal(a.headers, b.headers) && a.ts == b.ts
}

func fuzzRecords(t *testing.T, rb proto.RecordBatch, what string) []fuzzRec {
	t.Helper()
	raw := rb.Records()
	if rb.Codec() != codec.None {
		var err error
		if raw, err = codec.Decompress(rb.Codec(), raw, nil, codec.MaxDecompressedBytes); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	var out []fuzzRec
	it := proto.NewRecordIter(raw, rb.RecordCount())
	var r proto.Record
	for it.Next(&r) {
		out = append(out, fuzzRec{r.OffsetDelta, append([]byte(nil), r.Key...), append([]byte(nil), r.Value...), r.Key == nil, r.Value == nil,
			append([]byte(nil), r.Headers...), rb.BaseTimestamp() + r.TimestampDelta})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("%s records: %v", what, err)
	}
	if len(out) != int(rb.RecordCount()) {
		t.Fatalf("%s: %d records of %d", what, len(out), rb.RecordCount())
	}
	return out
}
