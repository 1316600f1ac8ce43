package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record batch v2 header, as Kafka lays it out on the wire and on disk
// (all integers big-endian):
//
//	offset  size  field
//	     0     8  baseOffset            <- rewritten by the appender
//	     8     4  batchLength           (bytes after this field)
//	    12     4  partitionLeaderEpoch  <- rewritten by the appender
//	    16     1  magic (= 2)
//	    17     4  crc (CRC32C of bytes [21, end))
//	    21     2  attributes            (bit 3: timestamp type, 1 = LogAppendTime)
//	    23     4  lastOffsetDelta
//	    27     8  baseTimestamp
//	    35     8  maxTimestamp          <- rewritten for LogAppendTime (+ crc)
//	    43     8  producerId
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61     …  records
//
// baseOffset and partitionLeaderEpoch sit outside the CRC, which is why Kafka
// (and we) can rewrite them in place without touching the checksum.
const (
	batchHeaderSize       = 61
	logOverhead           = 12 // baseOffset + batchLength: the part outside batchLength
	offBaseOffset         = 0
	offBatchLength        = 8
	offLeaderEpoch        = 12
	offMagic              = 16
	offCRC                = 17
	offAttributes         = 21
	offLastOffsetDelta    = 23
	offBaseTimestamp      = 27
	offMaxTimestamp       = 35
	offRecordCount        = 57
	attrLogAppendTimeMask = 0x08
	attrCompressionMask   = 0x07
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Typed errors returned by Append and the scanner. The broker maps them to
// Kafka error codes (CORRUPT_MESSAGE, INVALID_RECORD, ...).
var (
	// ErrCorruptBatch: the batch's CRC32C does not match its contents.
	ErrCorruptBatch = errors.New("log: record batch CRC32C mismatch")
	// ErrInvalidBatch: the bytes are not a well-formed v2 record batch
	// (short, bad length, bad magic, negative lastOffsetDelta).
	ErrInvalidBatch = errors.New("log: invalid record batch")
)

// batchInfo is what the log needs from one batch header.
type batchInfo struct {
	baseOffset      int64
	length          int // whole batch, including the 12-byte log overhead
	lastOffsetDelta int32
	maxTimestamp    int64
	recordCount     int32
}

func (b batchInfo) lastOffset() int64 { return b.baseOffset + int64(b.lastOffsetDelta) }

// parseBatchHeader reads the header fields without checking the CRC.
// REQUIRES: len(h) >= batchHeaderSize.
func parseBatchHeader(h []byte) (batchInfo, error) {
	bl := int32(binary.BigEndian.Uint32(h[offBatchLength:]))
	if bl < batchHeaderSize-logOverhead || int64(bl) > maxBatchLength {
		return batchInfo{}, fmt.Errorf("%w: batchLength %d", ErrInvalidBatch, bl)
	}
	if h[offMagic] != 2 {
		return batchInfo{}, fmt.Errorf("%w: magic %d (only v2 is stored)", ErrInvalidBatch, h[offMagic])
	}
	lod := int32(binary.BigEndian.Uint32(h[offLastOffsetDelta:]))
	if lod < 0 {
		return batchInfo{}, fmt.Errorf("%w: lastOffsetDelta %d", ErrInvalidBatch, lod)
	}
	return batchInfo{
		baseOffset:      int64(binary.BigEndian.Uint64(h[offBaseOffset:])),
		length:          int(bl) + logOverhead,
		lastOffsetDelta: lod,
		maxTimestamp:    int64(binary.BigEndian.Uint64(h[offMaxTimestamp:])),
		recordCount:     int32(binary.BigEndian.Uint32(h[offRecordCount:])),
	}, nil
}

// maxBatchLength bounds batchLength so a corrupt length field cannot make
// the scanner or the appender reach for gigabytes.
const maxBatchLength = 1 << 30

// checkBatchCRC verifies the CRC32C of a whole batch b (len(b) == info.length).
func checkBatchCRC(b []byte) bool {
	return crc32.Checksum(b[offAttributes:], crcTable) == binary.BigEndian.Uint32(b[offCRC:])
}

// validateBatches walks buf, which must hold one or more whole v2 batches
// back to back, checking framing and CRC. It returns the number of batches,
// the number of offsets they span and their record count. Nothing is modified.
func validateBatches(buf []byte) (batches int, offsets int64, records int64, err error) {
	return walkBatches(buf, true)
}

// walkBatches is validateBatches with the CRC check optional (the broker
// has already checked it when it calls AppendVerified).
func walkBatches(buf []byte, checkCRC bool) (batches int, offsets int64, records int64, err error) {
	for p := 0; p < len(buf); {
		if len(buf)-p < batchHeaderSize {
			return 0, 0, 0, fmt.Errorf("%w: %d trailing bytes", ErrInvalidBatch, len(buf)-p)
		}
		bi, err := parseBatchHeader(buf[p:])
		if err != nil {
			return 0, 0, 0, err
		}
		if bi.length > len(buf)-p {
			return 0, 0, 0, fmt.Errorf("%w: batchLength %d past end of input", ErrInvalidBatch, bi.length-logOverhead)
		}
		if checkCRC && !checkBatchCRC(buf[p:p+bi.length]) {
			return 0, 0, 0, ErrCorruptBatch
		}
		batches++
		offsets += int64(bi.lastOffsetDelta) + 1
		records += int64(bi.recordCount)
		p += bi.length
	}
	if batches == 0 {
		return 0, 0, 0, fmt.Errorf("%w: empty", ErrInvalidBatch)
	}
	return batches, offsets, records, nil
}

// stampBatches rewrites, in place, baseOffset and partitionLeaderEpoch of
// every batch in buf (already validated), assigning offsets from base. When
// appendTime >= 0 (message.timestamp.type=LogAppendTime) it also sets the
// timestamp-type attribute bit, maxTimestamp = appendTime, and recomputes the
// CRC, as Kafka does. It returns the next offset and the largest
// maxTimestamp seen with the offset of the batch carrying it (last offset of
// that batch: Kafka's "shallow" offset of max timestamp).
func stampBatches(buf []byte, base int64, leaderEpoch int32, appendTime int64) (next int64, maxTs int64, maxTsOffset int64) {
	maxTs, maxTsOffset = -1, -1
	for p := 0; p < len(buf); {
		b := buf[p:]
		bl := int(binary.BigEndian.Uint32(b[offBatchLength:])) + logOverhead
		lod := int64(int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])))
		binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
		binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(leaderEpoch))
		if appendTime >= 0 {
			attr := binary.BigEndian.Uint16(b[offAttributes:])
			binary.BigEndian.PutUint16(b[offAttributes:], attr|attrLogAppendTimeMask)
			binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(appendTime))
			binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:bl], crcTable))
		}
		ts := int64(binary.BigEndian.Uint64(b[offMaxTimestamp:]))
		if ts > maxTs {
			maxTs, maxTsOffset = ts, base+lod
		}
		base += lod + 1
		p += bl
	}
	return base, maxTs, maxTsOffset
}
