package storage

import (
	"errors"
	"fmt"
	"io"
)

// scanResult is what a segment scan found: the byte length of the valid
// prefix, the offset after its last batch and, if the scan stopped before
// size, why.
type scanResult struct {
	validBytes int64
	nextOffset int64
	batches    int
	stopReason error // nil when the whole input was valid
	// readErr: the scan stopped because the file could not be read (EIO,
	// not EOF). That says nothing about the bytes: recovery must fail,
	// not truncate at validBytes.
	readErr error
}

// scanSegment walks the record batches of one segment from position 0,
// checking for each batch: a whole header, a sane batchLength, magic 2, a
// baseOffset not below the previous batch's end (and not below the segment's
// base offset), a relative last offset that fits the u32 index, the whole
// body present, and the CRC32C. It stops at the first byte that fails any of
// these; everything before it is the valid prefix. fn, if not nil, is called
// for every valid batch with its position. buf is scratch that may be grown
// and is returned for reuse.
//
// This is the scanner recovery trusts; FuzzScanSegment checks it never panics
// and that re-scanning its valid prefix finds the same batches.
func scanSegment(r io.ReaderAt, size, baseOffset int64, buf []byte, fn func(pos int64, bi batchInfo)) (scanResult, []byte) {
	res := scanResult{nextOffset: baseOffset}
	var hdr [batchHeaderSize]byte
	for pos := int64(0); pos < size; {
		if size-pos < batchHeaderSize {
			res.stopReason = fmt.Errorf("torn batch header: %d bytes left", size-pos)
			return res, buf
		}
		if _, err := r.ReadAt(hdr[:], pos); err != nil {
			res.stopReason = fmt.Errorf("read header at %d: %w", pos, err)
			if !errors.Is(err, io.EOF) {
				res.readErr = res.stopReason
			}
			return res, buf
		}
		bi, err := parseBatchHeader(hdr[:])
		if err != nil {
			res.stopReason = err
			return res, buf
		}
		if bi.baseOffset < res.nextOffset {
			res.stopReason = fmt.Errorf("%w: baseOffset %d below expected %d", ErrInvalidBatch, bi.baseOffset, res.nextOffset)
			return res, buf
		}
		if bi.lastOffset()-baseOffset > maxRelativeOffset {
			res.stopReason = fmt.Errorf("%w: offset %d does not fit the index of segment %d", ErrInvalidBatch, bi.lastOffset(), baseOffset)
			return res, buf
		}
		if int64(bi.length) > size-pos {
			res.stopReason = fmt.Errorf("torn batch: %d of %d bytes present", size-pos, bi.length)
			return res, buf
		}
		if cap(buf) < bi.length {
			buf = make([]byte, bi.length)
		}
		b := buf[:bi.length]
		if _, err := r.ReadAt(b, pos); err != nil && !(errors.Is(err, io.EOF) && int64(bi.length) == size-pos) {
			res.stopReason = fmt.Errorf("read batch at %d: %w", pos, err)
			if !errors.Is(err, io.EOF) {
				res.readErr = res.stopReason
			}
			return res, buf
		}
		if !checkBatchCRC(b) {
			res.stopReason = ErrCorruptBatch
			return res, buf
		}
		if fn != nil {
			fn(pos, bi)
		}
		pos += int64(bi.length)
		res.validBytes = pos
		res.nextOffset = bi.lastOffset() + 1
		res.batches++
	}
	return res, buf
}

// maxRelativeOffset: index entries store offset - segment base as u32.
const maxRelativeOffset = 1<<32 - 1
