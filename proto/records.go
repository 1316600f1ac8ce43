package proto

import (
	"encoding/binary"
	"errors"
	"math"
)

// Records of a v2 batch (the layout is drawn in batch.go). Two walks read
// them, both as strictly as Kafka's DefaultRecord.readFrom: a field that
// runs past its record, a negative header count or header key length, a
// record whose fields do not fill exactly its length, and records that do
// not fill exactly their bytes are errors.
//
//   - ValidateRecords: the produce path's check of every record, one tight
//     allocation-free pass that yields only what admission needs
//     (timestamp bounds, whether a key is missing).
//   - RecordIter: yields each record's fields, for the cold readers (the
//     group coordinator's load, ListOffsets' record search).
//
// They are two loops on purpose: a per-record helper shared by both does
// not inline and cost the produce path ~10% of ValidateRecords' time.

// Errors of the record walks. Their text is what a Produce v8+ response's
// error_message carries.
var (
	ErrRecordCountBytes   = errors.New("record count does not fit the batch bytes")
	ErrRecordLength       = errors.New("record length does not fit the batch")
	ErrRecordOffsetDelta  = errors.New("record offset deltas are not sequential")
	ErrRecordKey          = errors.New("record key runs past the record")
	ErrRecordValue        = errors.New("record value runs past the record")
	ErrRecordStructure    = errors.New("invalid record structure")
	ErrRecordHeaderCount  = errors.New("invalid number of record headers")
	ErrRecordHeaderKey    = errors.New("invalid record header key length")
	ErrRecordHeaderValue  = errors.New("record header value runs past the record")
	ErrRecordFields       = errors.New("record fields do not fill the record length")
	ErrRecordTrailingData = errors.New("bytes after the last record of the batch")
)

// minRecordBytes is the smallest encoded record after its length prefix:
// attributes, timestampDelta, offsetDelta, key length, value length, header
// count (one byte each at minimum).
const minRecordBytes = 6

// RecordsSummary is what ValidateRecords learns about a batch's records.
type RecordsSummary struct {
	// MinTimestamp and MaxTimestamp are the smallest and largest record
	// timestamps other than -1 (Kafka's NO_TIMESTAMP, which it never
	// bounds); MinTimestamp > MaxTimestamp when every record has -1.
	MinTimestamp, MaxTimestamp int64
	// NullKey: some record has no key.
	NullKey bool
}

// ValidateRecords parses count uncompressed records that must exactly fill
// b (a batch's records section, decompressed if it was compressed), with
// timestamps relative to baseTimestamp. Offset deltas must run 0, 1, 2, ...
// (Kafka rewrites a compressed batch whose inner offsets do not, and does
// not look at an uncompressed batch's; every client we know writes them in
// order, so we refuse instead). Allocation-free; one pass, no call per
// record beyond multi-byte varints.
func ValidateRecords(b []byte, count int32, baseTimestamp int64) (RecordsSummary, error) {
	if int64(count)*(1+minRecordBytes) > int64(len(b)) {
		return RecordsSummary{}, ErrRecordCountBytes
	}
	minTs, maxTs := int64(math.MaxInt64), int64(math.MinInt64)
	nullKey := false
	pos := 0
	for i := int32(0); i < count; i++ {
		n, p := varint(b, pos)
		if p < 0 || n < minRecordBytes || n > int64(len(b)-p) {
			return RecordsSummary{}, ErrRecordLength
		}
		end := p + int(n)
		r := b[:end]
		p++ // attributes (unused in v2)
		tsDelta, p := varint(r, p)
		od, p := varint(r, p)
		if p < 0 || od != int64(i) {
			return RecordsSummary{}, ErrRecordOffsetDelta
		}
		kl, p := varint(r, p)
		nullKey = nullKey || kl < 0
		if p >= 0 && kl > 0 { // negative: null key (Kafka reads any negative length as null)
			if kl > int64(end-p) {
				return RecordsSummary{}, ErrRecordKey
			}
			p += int(kl)
		}
		vl, p := varint(r, p)
		if p >= 0 && vl > 0 {
			if vl > int64(end-p) {
				return RecordsSummary{}, ErrRecordValue
			}
			p += int(vl)
		}
		hc, p := varint(r, p)
		if p < 0 {
			return RecordsSummary{}, ErrRecordStructure
		}
		if hc < 0 || hc > int64(end-p) {
			return RecordsSummary{}, ErrRecordHeaderCount
		}
		for h := hc; h > 0 && p >= 0; h-- {
			var hk, hv int64
			if hk, p = varint(r, p); p >= 0 {
				if hk < 0 || hk > int64(end-p) {
					return RecordsSummary{}, ErrRecordHeaderKey
				}
				p += int(hk)
			}
			if hv, p = varint(r, p); p >= 0 && hv > 0 {
				if hv > int64(end-p) {
					return RecordsSummary{}, ErrRecordHeaderValue
				}
				p += int(hv)
			}
		}
		if p != end {
			return RecordsSummary{}, ErrRecordFields
		}
		if ts := baseTimestamp + tsDelta; ts != -1 {
			minTs, maxTs = min(minTs, ts), max(maxTs, ts)
		}
		pos = end
	}
	if pos != len(b) {
		return RecordsSummary{}, ErrRecordTrailingData
	}
	return RecordsSummary{MinTimestamp: minTs, MaxTimestamp: maxTs, NullKey: nullKey}, nil
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
	// Two bytes (64 to 8191 in magnitude: record and value lengths of
	// small records, offset deltas past 63) are the next most common.
	if p >= 0 && p+1 < len(b) && b[p+1] < 0x80 {
		x := int64(b[p]&0x7f) | int64(b[p+1])<<7
		return x>>1 ^ -(x & 1), p + 2
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

// Record is one record as RecordIter yields it. Key, Value and Headers
// alias the records the iterator walks.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte // nil: a null key
	Value          []byte // nil: a null value (a tombstone)
	HeaderCount    int32
	Headers        []byte // the encoded headers, HeaderCount of them
}

// RecordIter walks the records of one batch, yielding each whole record
// once it parsed; it stops at the first it cannot parse (Err).
//
//	it := rb.RecordIter() // or NewRecordIter(decompressed, rb.RecordCount())
//	var r Record
//	for it.Next(&r) { ... }
//	if err := it.Err(); err != nil { ... }
type RecordIter struct {
	b    []byte
	pos  int
	left int32
	err  error
}

// NewRecordIter walks count uncompressed records that must exactly fill b.
func NewRecordIter(b []byte, count int32) RecordIter {
	return RecordIter{b: b, left: max(count, 0)}
}

// RecordIter walks the batch's records. REQUIRES: Codec() == CodecNone
// (decompress the records and use NewRecordIter otherwise).
func (rb RecordBatch) RecordIter() RecordIter { return NewRecordIter(rb.Records(), rb.RecordCount()) }

// Pos is the byte position after the last record Next returned (the
// start of the next one), in the bytes the iterator walks.
func (it *RecordIter) Pos() int { return it.pos }

// Err is why the walk stopped early, or ErrRecordTrailingData when the
// records did not fill the bytes; nil after a whole walk.
func (it *RecordIter) Err() error { return it.err }

// Next parses the next record into r; false at the end or on an error.
func (it *RecordIter) Next(r *Record) bool {
	if it.err != nil {
		return false
	}
	if it.left == 0 {
		if it.pos != len(it.b) {
			it.err = ErrRecordTrailingData
		}
		return false
	}
	n, p := varint(it.b, it.pos)
	if p < 0 || n < minRecordBytes || n > int64(len(it.b)-p) {
		it.err = ErrRecordLength
		return false
	}
	end := p + int(n)
	rec := it.b[:end]
	attrs := int8(rec[p])
	p++
	tsDelta, p := varint(rec, p)
	od, p := varint(rec, p)
	if p < 0 || od < math.MinInt32 || od > math.MaxInt32 {
		it.err = ErrRecordStructure
		return false
	}
	var key, value []byte
	var ok bool
	if key, p, ok = varBytes(rec, p); !ok {
		it.err = ErrRecordKey
		return false
	}
	if value, p, ok = varBytes(rec, p); !ok {
		it.err = ErrRecordValue
		return false
	}
	hc, p := varint(rec, p)
	if p < 0 {
		it.err = ErrRecordStructure
		return false
	}
	if hc < 0 || hc > int64(end-p) {
		it.err = ErrRecordHeaderCount
		return false
	}
	hstart := p
	for h := hc; h > 0; h-- {
		hk, q := varint(rec, p)
		if q < 0 || hk < 0 || hk > int64(end-q) {
			it.err = ErrRecordHeaderKey
			return false
		}
		if _, p, ok = varBytes(rec, q+int(hk)); !ok {
			it.err = ErrRecordHeaderValue
			return false
		}
	}
	if p != end {
		it.err = ErrRecordFields
		return false
	}
	*r = Record{
		Attributes: attrs, TimestampDelta: tsDelta, OffsetDelta: int32(od),
		Key: key, Value: value, HeaderCount: int32(hc), Headers: rec[hstart:end:end],
	}
	it.pos = end
	it.left--
	return true
}

// varBytes reads a varint-length-prefixed byte string at b[p:] (any
// negative length: nil, as Kafka reads it) and the position after it.
func varBytes(b []byte, p int) ([]byte, int, bool) {
	l, p := varint(b, p)
	if p < 0 || l > int64(len(b)-p) {
		return nil, p, false
	}
	if l < 0 {
		return nil, p, true
	}
	return b[p : p+int(l) : p+int(l)], p + int(l), true
}

// Control record types: the key of the one record of a control batch
// (Kafka's ControlRecordType), written by a transaction coordinator.
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// ErrControlKey: a control record key that is not version 0 with a type.
var ErrControlKey = errors.New("invalid control record key")

// ParseControlKey reads a control record's key: int16 version (0), int16
// type (ControlAbort, ControlCommit, or a type this code does not know,
// which Kafka reads as UNKNOWN and skips).
func ParseControlKey(key []byte) (typ int16, err error) {
	if len(key) < 4 || binary.BigEndian.Uint16(key) != 0 {
		return 0, ErrControlKey
	}
	return int16(binary.BigEndian.Uint16(key[2:])), nil
}
