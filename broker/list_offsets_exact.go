package broker

import (
	"encoding/binary"
	"errors"

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
	if region.Len < v2HeaderSize || region.Len > maxDecompressedBytes {
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
	base := int64(binary.BigEndian.Uint64(batch))
	attrs := int16(binary.BigEndian.Uint16(batch[v2OffAttributes:]))
	firstTs := int64(binary.BigEndian.Uint64(batch[v2OffBaseTimestamp:]))
	maxTs := int64(binary.BigEndian.Uint64(batch[v2OffMaxTimestamp:]))
	count := int32(binary.BigEndian.Uint32(batch[v2OffRecordCount:]))
	want := func(recTs int64) bool { return recTs >= ts }
	if ts == storage.TimestampMax {
		want = func(recTs int64) bool { return recTs == maxTs }
	}
	if attrs&v2AttrTimestampType != 0 {
		// LogAppendTime: every record's timestamp is the batch's max.
		if !want(maxTs) {
			return 0, 0, errNoRecord
		}
		return max(base, logStart), maxTs, nil
	}
	records := batch[v2HeaderSize:]
	if codec := int8(attrs & v2AttrCodecMask); codec != codecNone {
		var err error
		if records, err = decompressRecords(codec, records, nil); err != nil {
			return 0, 0, err
		}
	}
	// The same walk as walkRecords (produce validation), kept separate on
	// purpose: a shared per-record helper does not inline and cost the
	// produce path ~10% of walkRecords' time.
	pos := 0
	for i := int32(0); i < count; i++ {
		n, w := binary.Varint(records[pos:])
		if w <= 0 || n < minRecordBytes || n > int64(len(records)-pos-w) {
			return 0, 0, errNoRecord
		}
		rec := records[pos+w : pos+w+int(n)]
		// attributes (1 byte), timestampDelta varlong, offsetDelta varint
		tsDelta, tw := binary.Varint(rec[1:])
		if tw <= 0 {
			return 0, 0, errNoRecord
		}
		offDelta, ow := binary.Varint(rec[1+tw:])
		if ow <= 0 {
			return 0, 0, errNoRecord
		}
		if recTs, off := firstTs+tsDelta, base+offDelta; off >= logStart && want(recTs) {
			return off, recTs, nil
		}
		pos += w + int(n)
	}
	return 0, 0, errNoRecord
}
