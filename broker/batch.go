package broker

import (
	"encoding/binary"
	"hash/crc32"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
)

// In-place validation of a produced record batch (v2), without decompressing
// it: the produce hot path checks a batch where it lies in the request frame
// and hands the same bytes to the log.
//
// Record batch v2 as Kafka lays it out (all integers big-endian):
//
//	offset  size  field
//	     0     8  baseOffset            (the log rewrites it)
//	     8     4  batchLength           (bytes after this field)
//	    12     4  partitionLeaderEpoch  (the log rewrites it)
//	    16     1  magic (= 2)
//	    17     4  crc (CRC32C of bytes [21, end))
//	    21     2  attributes            bits 0-2 codec, 3 timestamp type,
//	                                    4 transactional, 5 control
//	    23     4  lastOffsetDelta
//	    27     8  baseTimestamp
//	    35     8  maxTimestamp
//	    43     8  producerId
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61     …  records (compressed as one block when codec != 0)
//
// Each record (uncompressed) is: length varint, then that many bytes:
//
//	attributes        int8
//	timestampDelta    varlong
//	offsetDelta       varint
//	keyLength         varint   (-1 = null key)
//	key               keyLength bytes
//	valueLength       varint   (-1 = null value)
//	value             valueLength bytes
//	headerCount       varint   (>= 0)
//	headers           headerCount x [keyLength varint (>= 0), key,
//	                                 valueLength varint (-1 = null), value]
//
// Every record is parsed as Kafka's DefaultRecord.readFrom does (walkRecords):
// a field that runs past its record, a negative header count or header key
// length, a record whose fields do not fill exactly its length, and a batch
// whose records do not fill exactly its bytes all answer INVALID_RECORD.
// Uncompressed batches are walked here, on the ring thread, in place;
// compressed ones are decompressed and walked on a produce worker
// (recompress.go). The walk also yields the records' smallest and largest
// timestamps: admitRecords checks them against
// message.timestamp.before/after.max.ms and writes the records' true
// maxTimestamp into the header (+CRC) when the producer's differs, as Kafka's
// LogValidator does; the log trusts the header from then on (time index,
// retention, ListOffsets -3).
const (
	v2HeaderSize        = 61
	v2LogOverhead       = 12 // baseOffset + batchLength
	v2OffBatchLength    = 8
	v2OffMagic          = 16
	v2OffCRC            = 17
	v2OffAttributes     = 21
	v2OffLastOffsetDelt = 23
	v2OffBaseTimestamp  = 27
	v2OffMaxTimestamp   = 35
	v2OffProducerID     = 43
	v2OffProducerEpoch  = 51
	v2OffBaseSequence   = 53
	v2OffRecordCount    = 57

	v2AttrCodecMask     = 0x07
	v2AttrTimestampType = 0x08
	v2AttrTransactional = 0x10
	v2AttrControl       = 0x20

	// minRecordBytes is the smallest encoded record after its length
	// prefix: attributes, timestampDelta, offsetDelta, key length, value
	// length, header count (one byte each at minimum).
	minRecordBytes = 6
)

// Codec ids of the attributes' low bits.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchInfo is what the produce path needs from a validated batch header.
type batchInfo struct {
	size            int // whole batch, including the 12-byte log overhead
	attributes      int16
	lastOffsetDelta int32
	baseTimestamp   int64
	maxTimestamp    int64
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
	recordCount     int32

	// From the record walk (walkRecords): the smallest and largest record
	// timestamps other than -1 (Kafka's NO_TIMESTAMP, which it never
	// bounds); minTs > maxTs when every record has -1. nullKey: some
	// record has no key.
	minTs, maxTs int64
	nullKey      bool
}

func (bi *batchInfo) codec() int8          { return int8(bi.attributes & v2AttrCodecMask) }
func (bi *batchInfo) idempotent() bool     { return bi.producerID >= 0 }
func (bi *batchInfo) logAppendTimed() bool { return bi.attributes&v2AttrTimestampType != 0 }
func (bi *batchInfo) lastSequence() int32  { return addSequence(bi.baseSequence, bi.lastOffsetDelta) }

// addSequence is baseSequence + delta with Kafka's wrap past MaxInt32 to 0.
func addSequence(base, delta int32) int32 {
	if base > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - base) - 1
	}
	return base + delta
}

// batchError is a validation failure: the Kafka code and a message for the
// response's error_message (v8+) and the log line.
type batchError struct {
	err *kerr.Error
	msg string
}

// validateBatch checks that records holds exactly one well-formed v2 record
// batch, as Kafka requires of Produce v3+: framing, magic, CRC32C, size
// against maxMessageBytes, the offset range against the record count, the
// codec (zstd only from Produce v7), no control batch, and for uncompressed
// batches that the records exactly fill the batch. It never modifies or
// retains records and never allocates on success.
//
// The order of checks follows Kafka's (ProduceRequest.validateRecords, then
// LogValidator): structure (INVALID_RECORD), size (MESSAGE_TOO_LARGE), CRC
// (CORRUPT_MESSAGE), then batch contents (INVALID_RECORD).
func validateBatch(records []byte, maxMessageBytes int32, produceVersion int16) (batchInfo, *batchError) {
	var bi batchInfo
	if len(records) < v2LogOverhead+5 { // up to and including magic
		return bi, &batchError{kerr.InvalidRecord, "produce request must contain exactly one record batch per partition"}
	}
	batchLength := int64(int32(binary.BigEndian.Uint32(records[v2OffBatchLength:])))
	if magic := records[v2OffMagic]; magic != 2 {
		return bi, &batchError{kerr.InvalidRecord, "produce requests v3+ must contain record batches with magic 2"}
	}
	if batchLength < v2HeaderSize-v2LogOverhead {
		return bi, &batchError{kerr.CorruptMessage, "record batch length is smaller than the batch header"}
	}
	size := batchLength + v2LogOverhead
	if size > int64(len(records)) {
		return bi, &batchError{kerr.InvalidRecord, "record batch is truncated: produce request must contain exactly one whole record batch"}
	}
	if size < int64(len(records)) {
		return bi, &batchError{kerr.InvalidRecord, "produce request must contain exactly one record batch per partition"}
	}
	if size > int64(maxMessageBytes) {
		return bi, &batchError{kerr.MessageTooLarge, "record batch is larger than max.message.bytes"}
	}
	if crc32.Checksum(records[v2OffAttributes:], castagnoli) != binary.BigEndian.Uint32(records[v2OffCRC:]) {
		return bi, &batchError{kerr.CorruptMessage, "record batch CRC32C mismatch"}
	}
	bi = batchInfo{
		size:            int(size),
		attributes:      int16(binary.BigEndian.Uint16(records[v2OffAttributes:])),
		lastOffsetDelta: int32(binary.BigEndian.Uint32(records[v2OffLastOffsetDelt:])),
		baseTimestamp:   int64(binary.BigEndian.Uint64(records[v2OffBaseTimestamp:])),
		maxTimestamp:    int64(binary.BigEndian.Uint64(records[v2OffMaxTimestamp:])),
		producerID:      int64(binary.BigEndian.Uint64(records[v2OffProducerID:])),
		producerEpoch:   int16(binary.BigEndian.Uint16(records[v2OffProducerEpoch:])),
		baseSequence:    int32(binary.BigEndian.Uint32(records[v2OffBaseSequence:])),
		recordCount:     int32(binary.BigEndian.Uint32(records[v2OffRecordCount:])),
	}
	if bi.attributes&v2AttrControl != 0 {
		return bi, &batchError{kerr.InvalidRecord, "clients may not produce control batches"}
	}
	switch c := bi.codec(); {
	case c > codecZstd:
		return bi, &batchError{kerr.InvalidRecord, "unknown compression codec"}
	case c == codecZstd && produceVersion < 7:
		return bi, &batchError{kerr.UnsupportedCompressionType, "zstd needs Produce v7 or later"}
	}
	if bi.recordCount <= 0 {
		return bi, &batchError{kerr.InvalidRecord, "record batch has no records"}
	}
	if bi.lastOffsetDelta < 0 || int64(bi.lastOffsetDelta)+1 != int64(bi.recordCount) {
		return bi, &batchError{kerr.InvalidRecord, "record batch offset range does not match its record count"}
	}
	if bi.idempotent() && (bi.producerEpoch < 0 || bi.baseSequence < 0) {
		return bi, &batchError{kerr.InvalidRecord, "idempotent record batch without producer epoch or sequence"}
	}
	if bi.codec() == codecNone {
		if err := walkRecords(records[v2HeaderSize:], &bi); err != nil {
			return bi, err
		}
	}
	return bi, nil
}

// walkRecords parses bi.recordCount uncompressed records that must exactly
// fill b, as Kafka's DefaultRecord.readFrom does, and sets bi.minTs and
// bi.maxTs. Offset deltas must run 0, 1, 2, ... (Kafka rewrites a compressed
// batch whose inner offsets do not, and does not look at an uncompressed
// batch's; every client we know writes them in order, so we refuse instead).
// Allocation-free; one pass, no call per record beyond multi-byte varints.
func walkRecords(b []byte, bi *batchInfo) *batchError {
	count := bi.recordCount
	if int64(count)*(1+minRecordBytes) > int64(len(b)) {
		return &batchError{kerr.InvalidRecord, "record count does not fit the batch bytes"}
	}
	minTs, maxTs := int64(math.MaxInt64), int64(math.MinInt64)
	nullKey := false
	pos := 0
	for i := int32(0); i < count; i++ {
		n, p := varint(b, pos)
		if p < 0 || n < minRecordBytes || n > int64(len(b)-p) {
			return &batchError{kerr.InvalidRecord, "record length does not fit the batch"}
		}
		end := p + int(n)
		r := b[:end]
		p++ // attributes (unused in v2)
		tsDelta, p := varint(r, p)
		od, p := varint(r, p)
		if p < 0 || od != int64(i) {
			return &batchError{kerr.InvalidRecord, "record offset deltas are not sequential"}
		}
		kl, p := varint(r, p)
		nullKey = nullKey || kl < 0
		if p >= 0 && kl > 0 { // negative: null key (Kafka reads any negative length as null)
			if kl > int64(end-p) {
				return &batchError{kerr.InvalidRecord, "record key runs past the record"}
			}
			p += int(kl)
		}
		vl, p := varint(r, p)
		if p >= 0 && vl > 0 {
			if vl > int64(end-p) {
				return &batchError{kerr.InvalidRecord, "record value runs past the record"}
			}
			p += int(vl)
		}
		hc, p := varint(r, p)
		if p < 0 {
			return &batchError{kerr.InvalidRecord, "invalid record structure"}
		}
		if hc < 0 || hc > int64(end-p) {
			return &batchError{kerr.InvalidRecord, "invalid number of record headers"}
		}
		for h := hc; h > 0 && p >= 0; h-- {
			var hk, hv int64
			if hk, p = varint(r, p); p >= 0 {
				if hk < 0 || hk > int64(end-p) {
					return &batchError{kerr.InvalidRecord, "invalid record header key length"}
				}
				p += int(hk)
			}
			if hv, p = varint(r, p); p >= 0 && hv > 0 {
				if hv > int64(end-p) {
					return &batchError{kerr.InvalidRecord, "record header value runs past the record"}
				}
				p += int(hv)
			}
		}
		if p != end {
			return &batchError{kerr.InvalidRecord, "record fields do not fill the record length"}
		}
		if ts := bi.baseTimestamp + tsDelta; ts != -1 {
			minTs, maxTs = min(minTs, ts), max(maxTs, ts)
		}
		pos = end
	}
	if pos != len(b) {
		return &batchError{kerr.InvalidRecord, "bytes after the last record of the batch"}
	}
	bi.minTs, bi.maxTs, bi.nullKey = minTs, maxTs, nullKey
	return nil
}

// varint reads a zigzag varint at b[p:] and returns it with the position
// after it; p < 0 in or out means a failed read (p stays < 0, so a walk
// checks once after several reads). The one-byte case is inlined: most
// record fields (deltas, small lengths, header counts) fit in one byte.
func varint(b []byte, p int) (int64, int) {
	if uint(p) < uint(len(b)) && b[p] < 0x80 {
		x := int64(b[p])
		return x>>1 ^ -(x & 1), p + 1
	}
	return varintSlow(b, p)
}

func varintSlow(b []byte, p int) (int64, int) {
	if p < 0 || p >= len(b) {
		return 0, -1
	}
	v, w := binary.Varint(b[p:])
	if w <= 0 {
		return 0, -1
	}
	return v, p + w
}

// recordRules are the topic settings records are checked against.
type recordRules struct {
	compacted     bool  // cleanup.policy includes compact: every record needs a key
	logAppendTime bool  // message.timestamp.type=LogAppendTime: the log stamps the batch
	beforeMaxMs   int64 // message.timestamp.before.max.ms
	afterMaxMs    int64 // message.timestamp.after.max.ms
}

// admitRecords applies Kafka's LogValidator key and timestamp rules to a
// walked batch (bi.minTs/maxTs/nullKey set) at nowMs, then makes the
// header's maxTimestamp the records' true maximum (rewriting batch's
// attributes, maxTimestamp and CRC in place when they differ):
//   - Compacted topic: a record without a key is INVALID_RECORD.
//   - LogAppendTime topic: a batch the producer marked LogAppendTime is
//     INVALID_TIMESTAMP; otherwise nothing to check (the log stamps it).
//   - CreateTime topic: any record timestamp (other than -1) earlier than
//     now - before.max.ms or later than now + after.max.ms is
//     INVALID_TIMESTAMP. A batch marked LogAppendTime has every record at its
//     header maxTimestamp (Kafka reads it so) and is stored as CreateTime.
func admitRecords(batch []byte, bi *batchInfo, rules recordRules, nowMs int64) *batchError {
	if rules.compacted && bi.nullKey {
		return &batchError{kerr.InvalidRecord, "compacted topic cannot accept a record without a key"}
	}
	if rules.logAppendTime {
		if bi.logAppendTimed() {
			return &batchError{kerr.InvalidTimestamp, "producer should not set timestamp type to LogAppendTime"}
		}
		return nil
	}
	minTs, maxTs := bi.minTs, bi.maxTs
	if bi.logAppendTimed() {
		minTs, maxTs = bi.maxTimestamp, bi.maxTimestamp
		if maxTs == -1 {
			minTs, maxTs = math.MaxInt64, math.MinInt64
		}
	}
	if minTs <= maxTs && (minTs < subSat(nowMs, rules.beforeMaxMs) || maxTs > addSat(nowMs, rules.afterMaxMs)) {
		return &batchError{kerr.InvalidTimestamp, "record timestamp out of range: message.timestamp.before.max.ms / message.timestamp.after.max.ms"}
	}
	want := max(maxTs, -1) // Kafka's maxTimestamp starts at NO_TIMESTAMP
	if want != bi.maxTimestamp || bi.logAppendTimed() {
		bi.attributes &^= v2AttrTimestampType
		bi.maxTimestamp = want
		binary.BigEndian.PutUint16(batch[v2OffAttributes:], uint16(bi.attributes))
		binary.BigEndian.PutUint64(batch[v2OffMaxTimestamp:], uint64(want))
		binary.BigEndian.PutUint32(batch[v2OffCRC:], crc32.Checksum(batch[v2OffAttributes:], castagnoli))
	}
	return nil
}

// addSat and subSat are a+b and a-b for b >= 0, saturating at the int64
// bounds (the defaults are Long.MAX_VALUE).
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func subSat(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}
