package proto

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record batch v2 (magic 2), as Kafka lays it out on the wire and on disk
// (all integers big-endian):
//
//	offset  size  field
//	     0     8  baseOffset            (the log rewrites it; outside the CRC)
//	     8     4  batchLength           (bytes after this field)
//	    12     4  partitionLeaderEpoch  (the log rewrites it; outside the CRC)
//	    16     1  magic (= 2)
//	    17     4  crc (CRC32C of bytes [21, end))
//	    21     2  attributes            bits 0-2 codec, 3 timestamp type
//	                                    (1 = LogAppendTime), 4 transactional,
//	                                    5 control
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
// baseOffset and partitionLeaderEpoch sit outside the CRC, which is why
// Kafka (and we) rewrite them in place without touching the checksum; any
// other rewrite (maxTimestamp and the timestamp-type bit for
// LogAppendTime, the codec after recompression) must StampCRC.
const (
	// RecordBatchHeaderSize is the fixed part of a v2 batch, before its records.
	RecordBatchHeaderSize = 61
	// RecordBatchLogOverhead is baseOffset + batchLength: the bytes of a
	// batch that batchLength does not count.
	RecordBatchLogOverhead = 12
	// RecordBatchMaxLength bounds batchLength so a corrupt length field
	// cannot make a reader reach for gigabytes.
	RecordBatchMaxLength = 1 << 30

	// Byte positions of the header fields in a batch (Kafka's
	// DefaultRecordBatch *_OFFSET constants), for tests and readers that
	// hold a header in a fixed array; code with a RecordBatch uses its
	// accessors.
	BatchPosBaseOffset      = 0
	BatchPosBatchLength     = 8
	BatchPosLeaderEpoch     = 12
	BatchPosMagic           = 16
	BatchPosCRC             = 17
	BatchPosAttributes      = 21
	BatchPosLastOffsetDelta = 23
	BatchPosBaseTimestamp   = 27
	BatchPosMaxTimestamp    = 35
	BatchPosProducerID      = 43
	BatchPosProducerEpoch   = 51
	BatchPosBaseSequence    = 53
	BatchPosRecordCount     = 57
)

// Attribute bits of a v2 batch.
const (
	AttrCodecMask     = 0x07
	AttrLogAppendTime = 0x08 // timestamp type: 0 CreateTime, 1 LogAppendTime
	AttrTransactional = 0x10
	AttrControl       = 0x20
)

// Codec ids of the attributes' low bits.
const (
	CodecNone   = 0
	CodecGzip   = 1
	CodecSnappy = 2
	CodecLZ4    = 3
	CodecZstd   = 4
)

// Castagnoli is the CRC32C table of record batch checksums.
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Framing errors of ParseRecordBatch and ParseRecordBatchHeader, in the
// order they are checked.
var (
	// ErrBatchShort: fewer bytes than the batch header (or, for
	// ParseRecordBatch, than up to and including magic).
	ErrBatchShort = errors.New("record batch shorter than its header")
	// ErrBatchMagic: magic is not 2.
	ErrBatchMagic = errors.New("record batch magic is not 2")
	// ErrBatchLength: batchLength is smaller than the header or larger
	// than RecordBatchMaxLength.
	ErrBatchLength = errors.New("record batch length out of range")
	// ErrBatchTruncated: batchLength runs past the bytes given.
	ErrBatchTruncated = errors.New("record batch truncated")
)

// RecordBatch is a view of one v2 record batch held in a byte slice (a
// flyweight: nothing is copied or decoded until asked). Its accessors read
// the header fields in place and its setters write them in place. A view
// made by ParseRecordBatch spans exactly the whole batch; one made by
// ParseRecordBatchHeader may span only the header (Size still reads the
// whole batch's size from batchLength), and then Bytes, Records, CheckCRC
// and StampCRC must not be used.
//
// The zero RecordBatch is empty: Bytes is nil and every other accessor
// panics.
type RecordBatch struct {
	b []byte
}

// ParseRecordBatch checks the framing of the batch at the start of b
// (magic, batchLength within [header, RecordBatchMaxLength] and within b)
// and returns a view of it and the bytes after it. It does not check the
// CRC (CheckCRC) or the records. It never allocates.
//
// The checks run in the order Kafka's produce validation reports them: a
// buffer too short for magic (ErrBatchShort), magic (ErrBatchMagic), a
// batchLength shorter than the header (ErrBatchLength), a batch running past
// b (ErrBatchTruncated), then a batchLength past RecordBatchMaxLength
// (ErrBatchLength).
func ParseRecordBatch(b []byte) (rb RecordBatch, rest []byte, err error) {
	if len(b) < BatchPosMagic+1 {
		return RecordBatch{}, b, ErrBatchShort
	}
	if b[BatchPosMagic] != 2 {
		return RecordBatch{}, b, ErrBatchMagic
	}
	bl := int64(int32(binary.BigEndian.Uint32(b[BatchPosBatchLength:])))
	if bl < RecordBatchHeaderSize-RecordBatchLogOverhead {
		return RecordBatch{}, b, ErrBatchLength
	}
	size := bl + RecordBatchLogOverhead
	if size > int64(len(b)) {
		return RecordBatch{}, b, ErrBatchTruncated
	}
	if bl > RecordBatchMaxLength {
		return RecordBatch{}, b, ErrBatchLength
	}
	return RecordBatch{b: b[:size:size]}, b[size:], nil
}

// ParseRecordBatchHeader checks the header at the start of h (at least
// RecordBatchHeaderSize bytes: batchLength within [header,
// RecordBatchMaxLength], magic 2) and returns a view of it; the records
// need not follow (a reader that fetched only the header). Size is the
// whole batch's size.
func ParseRecordBatchHeader(h []byte) (RecordBatch, error) {
	if len(h) < RecordBatchHeaderSize {
		return RecordBatch{}, ErrBatchShort
	}
	bl := int32(binary.BigEndian.Uint32(h[BatchPosBatchLength:]))
	if bl < RecordBatchHeaderSize-RecordBatchLogOverhead || bl > RecordBatchMaxLength {
		return RecordBatch{}, ErrBatchLength
	}
	if h[BatchPosMagic] != 2 {
		return RecordBatch{}, ErrBatchMagic
	}
	return RecordBatch{b: h}, nil
}

// Bytes is the whole batch.
func (rb RecordBatch) Bytes() []byte { return rb.b }

// Clone returns a view of a private copy of the batch.
func (rb RecordBatch) Clone() RecordBatch { return RecordBatch{b: append([]byte(nil), rb.b...)} }

// Size is the whole batch's size in bytes, batchLength plus the log
// overhead.
func (rb RecordBatch) Size() int { return int(rb.BatchLength()) + RecordBatchLogOverhead }

// BaseOffset is the offset of the first record (the log assigns it).
func (rb RecordBatch) BaseOffset() int64 {
	return int64(binary.BigEndian.Uint64(rb.b[BatchPosBaseOffset:]))
}

// BatchLength is the byte count after the batchLength field.
func (rb RecordBatch) BatchLength() int32 {
	return int32(binary.BigEndian.Uint32(rb.b[BatchPosBatchLength:]))
}

// PartitionLeaderEpoch is the leader epoch the log stamped.
func (rb RecordBatch) PartitionLeaderEpoch() int32 {
	return int32(binary.BigEndian.Uint32(rb.b[BatchPosLeaderEpoch:]))
}

// Magic is the format version (2).
func (rb RecordBatch) Magic() int8 { return int8(rb.b[BatchPosMagic]) }

// CRC is the stored CRC32C of bytes [21, end).
func (rb RecordBatch) CRC() uint32 { return binary.BigEndian.Uint32(rb.b[BatchPosCRC:]) }

// Attributes holds the codec, timestamp type, transactional and control bits.
func (rb RecordBatch) Attributes() int16 {
	return int16(binary.BigEndian.Uint16(rb.b[BatchPosAttributes:]))
}

// LastOffsetDelta is the offset of the last record relative to BaseOffset.
func (rb RecordBatch) LastOffsetDelta() int32 {
	return int32(binary.BigEndian.Uint32(rb.b[BatchPosLastOffsetDelta:]))
}

// BaseTimestamp is the timestamp record deltas are relative to.
func (rb RecordBatch) BaseTimestamp() int64 {
	return int64(binary.BigEndian.Uint64(rb.b[BatchPosBaseTimestamp:]))
}

// MaxTimestamp is the largest record timestamp (the append time for LogAppendTime).
func (rb RecordBatch) MaxTimestamp() int64 {
	return int64(binary.BigEndian.Uint64(rb.b[BatchPosMaxTimestamp:]))
}

// ProducerID is the idempotent producer id, or -1.
func (rb RecordBatch) ProducerID() int64 {
	return int64(binary.BigEndian.Uint64(rb.b[BatchPosProducerID:]))
}

// ProducerEpoch is the producer epoch, or -1.
func (rb RecordBatch) ProducerEpoch() int16 {
	return int16(binary.BigEndian.Uint16(rb.b[BatchPosProducerEpoch:]))
}

// BaseSequence is the sequence of the first record, or -1.
func (rb RecordBatch) BaseSequence() int32 {
	return int32(binary.BigEndian.Uint32(rb.b[BatchPosBaseSequence:]))
}

// RecordCount is the number of records.
func (rb RecordBatch) RecordCount() int32 {
	return int32(binary.BigEndian.Uint32(rb.b[BatchPosRecordCount:]))
}

// Codec is the compression codec of the records (CodecNone..CodecZstd, or
// an unknown id up to 7).
func (rb RecordBatch) Codec() int8 { return int8(rb.Attributes() & AttrCodecMask) }

// LogAppendTime: the timestamp-type bit says LogAppendTime.
func (rb RecordBatch) LogAppendTime() bool { return rb.Attributes()&AttrLogAppendTime != 0 }

// Transactional: the batch belongs to a transaction.
func (rb RecordBatch) Transactional() bool { return rb.Attributes()&AttrTransactional != 0 }

// Control: a control batch (transaction markers), not client records.
func (rb RecordBatch) Control() bool { return rb.Attributes()&AttrControl != 0 }

// LastOffset is BaseOffset + LastOffsetDelta.
func (rb RecordBatch) LastOffset() int64 { return rb.BaseOffset() + int64(rb.LastOffsetDelta()) }

// Records is the records section (compressed when Codec != CodecNone).
func (rb RecordBatch) Records() []byte { return rb.b[RecordBatchHeaderSize:] }

// SetBaseOffset and SetPartitionLeaderEpoch rewrite fields outside the
// CRC: no restamp needed.
func (rb RecordBatch) SetBaseOffset(o int64) {
	binary.BigEndian.PutUint64(rb.b[BatchPosBaseOffset:], uint64(o))
}

// SetPartitionLeaderEpoch: see SetBaseOffset.
func (rb RecordBatch) SetPartitionLeaderEpoch(e int32) {
	binary.BigEndian.PutUint32(rb.b[BatchPosLeaderEpoch:], uint32(e))
}

// SetAttributes, SetMaxTimestamp and SetBatchLength rewrite fields the CRC
// covers (batchLength is outside it but changes what it covers): call
// StampCRC after the last of them.
func (rb RecordBatch) SetAttributes(a int16) {
	binary.BigEndian.PutUint16(rb.b[BatchPosAttributes:], uint16(a))
}

// SetMaxTimestamp: see SetAttributes.
func (rb RecordBatch) SetMaxTimestamp(ts int64) {
	binary.BigEndian.PutUint64(rb.b[BatchPosMaxTimestamp:], uint64(ts))
}

// SetBatchLength: see SetAttributes.
func (rb RecordBatch) SetBatchLength(n int32) {
	binary.BigEndian.PutUint32(rb.b[BatchPosBatchLength:], uint32(n))
}

// ComputeCRC is the CRC32C of the bytes the crc field covers.
func (rb RecordBatch) ComputeCRC() uint32 {
	return crc32.Checksum(rb.b[BatchPosAttributes:], Castagnoli)
}

// CheckCRC reports whether the crc field matches the batch's bytes.
func (rb RecordBatch) CheckCRC() bool { return rb.ComputeCRC() == rb.CRC() }

// StampCRC recomputes and writes the crc field.
func (rb RecordBatch) StampCRC() { binary.BigEndian.PutUint32(rb.b[BatchPosCRC:], rb.ComputeCRC()) }

// AddSequence is baseSequence + delta with Kafka's wrap past MaxInt32 to 0.
func AddSequence(base, delta int32) int32 {
	if base > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - base) - 1
	}
	return base + delta
}

// LastSequence is the sequence of the batch's last record.
func (rb RecordBatch) LastSequence() int32 {
	return AddSequence(rb.BaseSequence(), rb.LastOffsetDelta())
}

// AppendRecord appends r encoded as a v2 record, computing its Length.
// Cold paths only (it encodes the record twice).
func AppendRecord(dst []byte, r *kmsg.Record) []byte {
	r.Length = 0
	n := len(r.AppendTo(nil)) - 1 // a zero Length is one varint byte
	r.Length = int32(n)
	return r.AppendTo(dst)
}

// AppendRecordBatch appends b as a v2 batch: it sets Magic 2, Length from
// b.Records and the CRC, and leaves every other field as the caller set it
// (NumRecords and LastOffsetDelta included). Cold paths only.
func AppendRecordBatch(dst []byte, b *kmsg.RecordBatch) []byte {
	b.Magic = 2
	b.Length = int32(RecordBatchHeaderSize - RecordBatchLogOverhead + len(b.Records))
	b.CRC = 0
	start := len(dst)
	dst = b.AppendTo(dst)
	rb := RecordBatch{b: dst[start:]}
	rb.StampCRC()
	b.CRC = int32(rb.CRC())
	return dst
}
