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
// attributes int8, timestampDelta varlong, offsetDelta varint, key, value,
// headers. The validator walks the length prefixes of an uncompressed batch
// (and the offset deltas) so the record count is checked against the bytes;
// a compressed batch's records are checked only when the broker recompresses
// it (recompress.go).
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
	maxTimestamp    int64
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
	recordCount     int32
}

func (bi *batchInfo) codec() int8         { return int8(bi.attributes & v2AttrCodecMask) }
func (bi *batchInfo) idempotent() bool    { return bi.producerID >= 0 }
func (bi *batchInfo) lastSequence() int32 { return addSequence(bi.baseSequence, bi.lastOffsetDelta) }

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
		if err := checkRecords(records[v2HeaderSize:], bi.recordCount); err != nil {
			return bi, err
		}
	}
	return bi, nil
}

// checkRecords walks uncompressed records: each length prefix must fit, the
// offset deltas must run 0, 1, 2, … and count records must exactly fill b.
// Allocation-free; one varint pair per record.
func checkRecords(b []byte, count int32) *batchError {
	if int64(count)*(1+minRecordBytes) > int64(len(b)) {
		return &batchError{kerr.InvalidRecord, "record count does not fit the batch bytes"}
	}
	pos := 0
	for i := int32(0); i < count; i++ {
		n, w := binary.Varint(b[pos:])
		if w <= 0 || n < minRecordBytes || n > int64(len(b)-pos-w) {
			return &batchError{kerr.InvalidRecord, "record length does not fit the batch"}
		}
		rec := b[pos+w : pos+w+int(n)]
		// attributes (1 byte), timestampDelta varlong, offsetDelta varint
		_, tw := binary.Varint(rec[1:])
		if tw <= 0 {
			return &batchError{kerr.InvalidRecord, "bad record timestamp delta"}
		}
		od, ow := binary.Varint(rec[1+tw:])
		if ow <= 0 || od != int64(i) {
			return &batchError{kerr.InvalidRecord, "record offset deltas are not sequential"}
		}
		pos += w + int(n)
	}
	if pos != len(b) {
		return &batchError{kerr.InvalidRecord, "bytes after the last record of the batch"}
	}
	return nil
}
