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
// max timestamp. On any failure to read or decode a batch it returns the
// batch-granular answer unchanged (it is still a correct lower bound).
//
// For a target timestamp the found batch may hold no answer: when the log
// start is inside it, its records reaching ts can all be below the log start.
// Then, as Kafka's LogSegment.findOffsetByTimestamp does, the batches after it
// are walked (headers first; records only of a batch whose max timestamp
// reaches ts) until one answers; found is false when none does.
func exactListOffset(l *storage.Log, ts, batchOffset, batchTs int64) (offset, timestamp int64, found bool) {
	logStart := l.LogStartOffset()
	for at := batchOffset; ; {
		rb, batch, err := readBatchAt(l, at, ts)
		if err != nil {
			if errors.Is(err, storage.ErrOffsetOutOfRange) || errors.Is(err, errEndOfLog) {
				if at == batchOffset {
					return batchOffset, batchTs, true
				}
				return -1, -1, false // walked to the end: no record reaches ts
			}
			return batchOffset, batchTs, true
		}
		if batch != nil {
			off, recTs, err := matchRecord(batch, ts, logStart)
			if err == nil {
				return off, recTs, true
			}
			if !errors.Is(err, errNoRecord) || ts == storage.TimestampMax {
				return batchOffset, batchTs, true
			}
		}
		at = rb.LastOffset() + 1
	}
}

// errEndOfLog: no batch at or after the offset below the high watermark.
var errEndOfLog = errors.New("end of log")

// readBatchAt reads the batch holding offset: its header, and the whole batch
// (batch != nil) only if its max timestamp can answer ts.
func readBatchAt(l *storage.Log, offset, ts int64) (rb proto.RecordBatch, batch []byte, err error) {
	region, err := l.Read(offset, 1) // just the first batch, whole
	if err != nil {
		return rb, nil, err
	}
	defer region.Release()
	if region.Len == 0 {
		return rb, nil, errEndOfLog
	}
	if region.Len < proto.RecordBatchHeaderSize || region.Len > maxDecompressedBytes {
		return rb, nil, errNoRecord
	}
	var hdr [proto.RecordBatchHeaderSize]byte
	if _, err := region.File.ReadAt(hdr[:], region.Pos); err != nil {
		return rb, nil, err
	}
	if rb, err = proto.ParseRecordBatchHeader(hdr[:]); err != nil {
		return rb, nil, err
	}
	if ts != storage.TimestampMax && rb.MaxTimestamp() < ts && !rb.LogAppendTime() {
		return rb, nil, nil
	}
	batch = make([]byte, region.Len)
	if _, err := region.File.ReadAt(batch, region.Pos); err != nil {
		return rb, nil, err
	}
	return rb, batch, nil
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
