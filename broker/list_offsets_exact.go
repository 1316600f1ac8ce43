package broker

import (
	"errors"

	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

// storage.ListOffset is batch granular: it finds the batch holding the answer
// through the .timeindex without reading records. Kafka answers with the
// record (LogSegment.findOffsetByTimestamp: the first record whose
// timestamp is >= the target and whose offset is >= the log start offset;
// RecordBatch.offsetOfMaxTimestamp for -3), so the batch is read back,
// decompressed if needed, and its records walked. This runs only for
// ListOffsets with a real timestamp or -3, off the ring thread (it preads
// and may decompress).

// errNoRecord: the batch holds no record that answers the query.
var errNoRecord = errors.New("no matching record in the batch")

// exactListOffset refines a batch-granular answer (batchOffset, found by
// l.ListOffset for ts) to the record Kafka would answer. ts is the target
// timestamp, or storage.TimestampMax for the first record carrying the batch's
// max timestamp. On any failure to read or decode the batch it returns the
// batch-granular answer unchanged (it is still a correct lower bound).
func exactListOffset(l *storage.Log, ts, batchOffset, batchTs int64) (offset, timestamp int64) {
	region, err := l.Read(batchOffset, 1) // just the first batch, whole
	if err != nil {
		return batchOffset, batchTs
	}
	defer region.Release()
	if region.Len < proto.RecordBatchHeaderSize || region.Len > maxDecompressedBytes {
		return batchOffset, batchTs
	}
	batch := make([]byte, region.Len)
	if _, err := region.File.ReadAt(batch, region.Pos); err != nil {
		return batchOffset, batchTs
	}
	off, at, err := matchRecord(batch, ts, l.LogStartOffset())
	if err != nil {
		return batchOffset, batchTs
	}
	return off, at
}

// readsBatch reports whether ListOffsets for ts reads a batch back
// (exactListOffset): a real timestamp or -3.
func readsBatch(ts int64) bool { return ts >= 0 || ts == storage.TimestampMax }

// matchRecord walks the records of one stored v2 batch for the first whose
// timestamp answers ts (>= ts; or == the batch max for TimestampMax) at an
// offset >= logStart, and returns its offset and timestamp.
func matchRecord(batch []byte, ts, logStart int64) (int64, int64, error) {
	rb, _, err := proto.ParseRecordBatch(batch)
	if err != nil {
		return 0, 0, err
	}
	base, firstTs, maxTs := rb.BaseOffset(), rb.BaseTimestamp(), rb.MaxTimestamp()
	want := func(recTs int64) bool { return recTs >= ts }
	if ts == storage.TimestampMax {
		want = func(recTs int64) bool { return recTs == maxTs }
	}
	if rb.LogAppendTime() {
		// LogAppendTime: every record's timestamp is the batch's max.
		if !want(maxTs) {
			return 0, 0, errNoRecord
		}
		return max(base, logStart), maxTs, nil
	}
	records := rb.Records()
	if codec := rb.Codec(); codec != codecNone {
		if records, err = decompressRecords(codec, records, nil); err != nil {
			return 0, 0, err
		}
	}
	it := proto.NewRecordIter(records, rb.RecordCount())
	var r proto.Record
	for it.Next(&r) {
		if recTs, off := firstTs+r.TimestampDelta, base+int64(r.OffsetDelta); off >= logStart && want(recTs) {
			return off, recTs, nil
		}
	}
	return 0, 0, errNoRecord
}
