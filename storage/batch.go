package storage

import (
	"errors"
	"fmt"

	"github.com/ringbroker/ringbroker/proto"
)

// Record batches are stored exactly as Kafka lays them out (proto/batch.go
// draws the layout; proto.RecordBatch reads and rewrites it). The appender
// rewrites baseOffset and partitionLeaderEpoch, which sit outside the CRC,
// and for LogAppendTime the timestamp-type bit and maxTimestamp (then
// restamps the CRC), as Kafka does.
const (
	batchHeaderSize = proto.RecordBatchHeaderSize
	logOverhead     = proto.RecordBatchLogOverhead // baseOffset + batchLength: the part outside batchLength
)

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
	leaderEpoch     int32 // partitionLeaderEpoch as stored (-1: none)
}

func (b batchInfo) lastOffset() int64 { return b.baseOffset + int64(b.lastOffsetDelta) }

// parseBatchHeader reads the header fields without checking the CRC.
// REQUIRES: len(h) >= batchHeaderSize.
func parseBatchHeader(h []byte) (batchInfo, error) {
	rb, err := proto.ParseRecordBatchHeader(h)
	if err != nil {
		return batchInfo{}, headerError(h, err)
	}
	lod := rb.LastOffsetDelta()
	if lod < 0 {
		return batchInfo{}, fmt.Errorf("%w: lastOffsetDelta %d", ErrInvalidBatch, lod)
	}
	return batchInfo{
		baseOffset:      rb.BaseOffset(),
		length:          rb.Size(),
		lastOffsetDelta: lod,
		maxTimestamp:    rb.MaxTimestamp(),
		recordCount:     rb.RecordCount(),
		leaderEpoch:     rb.PartitionLeaderEpoch(),
	}, nil
}

// headerError wraps a proto framing error of header h as ErrInvalidBatch,
// naming the offending field.
func headerError(h []byte, err error) error {
	switch {
	case errors.Is(err, proto.ErrBatchLength):
		return fmt.Errorf("%w: batchLength %d", ErrInvalidBatch, int32(uint32(h[8])<<24|uint32(h[9])<<16|uint32(h[10])<<8|uint32(h[11])))
	case errors.Is(err, proto.ErrBatchMagic):
		return fmt.Errorf("%w: magic %d (only v2 is stored)", ErrInvalidBatch, h[16])
	}
	return fmt.Errorf("%w: %v", ErrInvalidBatch, err)
}

// checkBatchCRC verifies the CRC32C of a whole batch b (len(b) == info.length).
func checkBatchCRC(b []byte) bool {
	rb, err := proto.ParseRecordBatchHeader(b)
	return err == nil && rb.CheckCRC()
}

// validateBatches walks buf, which must hold one or more whole v2 batches
// back to back, checking framing and CRC. It returns the number of batches,
// the number of offsets they span and their record count. Nothing is modified.
func validateBatches(buf []byte) (batches int, offsets int64, records int64, err error) {
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
		if !checkBatchCRC(buf[p : p+bi.length]) {
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
	for len(buf) > 0 {
		rb, rest, err := proto.ParseRecordBatch(buf)
		if err != nil {
			break // REQUIRES broken: validated batches always parse
		}
		buf = rest
		lod := int64(rb.LastOffsetDelta())
		rb.SetBaseOffset(base)
		rb.SetPartitionLeaderEpoch(leaderEpoch)
		if appendTime >= 0 {
			rb.SetAttributes(rb.Attributes() | proto.AttrLogAppendTime)
			rb.SetMaxTimestamp(appendTime)
			rb.StampCRC()
		}
		if ts := rb.MaxTimestamp(); ts > maxTs {
			maxTs, maxTsOffset = ts, base+lod
		}
		base += lod + 1
	}
	return base, maxTs, maxTsOffset
}
