package storage

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ringbroker/ringbroker/internal/codec"
	"github.com/ringbroker/ringbroker/proto"
)

// The cleaner's decision for one batch, Kafka's MemoryRecords.filterTo with
// the LogCleaner's filter, on our own batch view:
//
//   - A record at or past the round's end offset (not covered by the key
//     map) is kept. Below it, a record is kept when it has a key, no later
//     record of that key exists (its offset is the key map's), and it is
//     not a tombstone whose batch's delete horizon has passed. Keyless
//     records are removed (Kafka's rule; produce refuses them on a
//     compacted topic, but the policy may have been changed).
//   - A batch keeping every record is written as it was, byte for byte,
//     unless it keeps a tombstone and has no delete horizon yet.
//   - Otherwise the kept records are written in a new batch with the same
//     base offset, last offset delta (so the producer's last sequence stays
//     derivable), producer id, epoch, base sequence, partition leader
//     epoch, timestamp type and codec; records keep their offset deltas
//     (gaps inside the batch) and timestamps. A batch that keeps a
//     tombstone and has no delete horizon gets one (KIP-534: attribute bit
//     0x40, base timestamp = now + delete.retention.ms, record timestamp
//     deltas re-based on it), so a tombstone lives delete.retention.ms from
//     the first clean that saw it, across restarts.
//   - A batch keeping nothing is dropped, except when it must stay as an
//     empty batch (header only, 0 records, codec none, first timestamp -1,
//     Kafka's writeEmptyHeader): the last batch of an active producer,
//     and its last data batch (its sequence and epoch are what
//     idempotence checks against after a restart; producerTails).
//   - Transactions (cleaner_txn.go, applied in writeGroup before filter):
//     batches of aborted transactions go (or stay empty, as a producer's
//     last batch); markers go once nothing they cover remains and they
//     are older than delete.retention.ms; other control batches are kept
//     as they are.

// attrDeleteHorizon marks a batch whose base timestamp is its tombstones'
// delete horizon (KIP-534).
const attrDeleteHorizon = 0x40

type batchVerdict uint8

const (
	verdictDrop      batchVerdict = iota // nothing written
	verdictOriginal                      // the batch as it was
	verdictRewritten                     // a new batch with the kept records
	verdictEmpty                         // an empty batch header
)

// cleanRules is what filter needs about the round.
type cleanRules struct {
	keys              *offsetMap
	endOffset         int64 // records at or past it are not covered by keys: kept
	nowMs             int64
	deleteRetentionMs int64
	// txn follows transactions over the round's rewrite, from its first
	// group on (cleaner_txn.go); nil: no group.
	txn *txnCleanState
}

// filterStats count one batch's records.
type filterStats struct {
	read, kept int64
}

// filterScratch is reused across batches by one cleaner thread.
type filterScratch struct {
	raw  []byte // decompressed records
	recs []byte // kept records, encoded
}

// filter judges batch rb (one whole, CRC-checked v2 batch). retainEmpty:
// rb must be written at least as an empty batch. The batch to write (for
// verdictOriginal, rb's own bytes; else appended to dst) is returned.
func (r *cleanRules) filter(rb proto.RecordBatch, retainEmpty bool, s *filterScratch, dst []byte) ([]byte, batchVerdict, filterStats, error) {
	var st filterStats
	if rb.Control() {
		st.read, st.kept = int64(rb.RecordCount()), int64(rb.RecordCount())
		return rb.Bytes(), verdictOriginal, st, nil
	}
	raw := rb.Records()
	if c := rb.Codec(); c != codec.None {
		var err error
		if s.raw, err = codec.Decompress(c, raw, s.raw[:0], codec.MaxDecompressedBytes); err != nil {
			return nil, verdictDrop, st, fmt.Errorf("batch at offset %d: decompressing records: %w", rb.BaseOffset(), err)
		}
		raw = s.raw
	}
	base, baseTs := rb.BaseOffset(), rb.BaseTimestamp()
	hasHorizon := rb.Attributes()&attrDeleteHorizon != 0
	horizonPassed := hasHorizon && r.nowMs >= baseTs
	var keptTombstone bool
	newBaseTs := baseTs
	setHorizon := false
	// First pass: which records stay. The kept ones are re-encoded into
	// s.recs only once we know the batch must be rewritten, which needs
	// the decision about the horizon, which needs every record: two passes
	// over the (decompressed, cached) records.
	keep := func(rec *proto.Record) bool {
		off := base + int64(rec.OffsetDelta)
		if off >= r.endOffset {
			return true
		}
		if rec.Key == nil {
			return false
		}
		if r.keys.get(rec.Key) > off {
			return false
		}
		return rec.Value != nil || !horizonPassed
	}
	it := proto.NewRecordIter(raw, rb.RecordCount())
	var rec proto.Record
	for it.Next(&rec) {
		st.read++
		if keep(&rec) {
			st.kept++
			keptTombstone = keptTombstone || rec.Value == nil
		}
	}
	if err := it.Err(); err != nil {
		return nil, verdictDrop, st, fmt.Errorf("batch at offset %d: %w", rb.BaseOffset(), err)
	}
	if keptTombstone && !hasHorizon {
		setHorizon = true
		newBaseTs = r.nowMs + min(r.deleteRetentionMs, math.MaxInt64-r.nowMs) // saturating: delete.retention.ms may be Long.MAX_VALUE
	}
	switch {
	case st.kept == 0 && retainEmpty && st.read == 0:
		return rb.Bytes(), verdictOriginal, st, nil // already empty
	case st.kept == 0 && retainEmpty:
		return appendEmptyBatch(dst, rb), verdictEmpty, st, nil
	case st.kept == 0:
		return nil, verdictDrop, st, nil // an empty batch kept by an earlier round goes too, as in Kafka
	case st.kept == st.read && !setHorizon:
		return rb.Bytes(), verdictOriginal, st, nil
	}
	s.recs = s.recs[:0]
	maxTs := int64(-1)
	it = proto.NewRecordIter(raw, rb.RecordCount())
	pos := 0
	for it.Next(&rec) {
		end := it.Pos()
		if keep(&rec) {
			ts := baseTs + rec.TimestampDelta
			maxTs = max(maxTs, ts)
			if setHorizon {
				s.recs = appendRecord(s.recs, &rec, ts-newBaseTs)
			} else {
				s.recs = append(s.recs, raw[pos:end]...) // the record as it was, length prefix included
			}
		}
		pos = end
	}
	if rb.LogAppendTime() {
		maxTs = rb.MaxTimestamp()
	}
	start := len(dst)
	dst = append(dst, rb.Bytes()[:proto.RecordBatchHeaderSize]...)
	var err error
	if dst, err = codec.Compress(rb.Codec(), s.recs, dst); err != nil {
		return nil, verdictDrop, st, fmt.Errorf("batch at offset %d: recompressing records: %w", rb.BaseOffset(), err)
	}
	out := dst[start:]
	binary.BigEndian.PutUint32(out[proto.BatchPosBatchLength:], uint32(len(out)-proto.RecordBatchLogOverhead))
	nb, _, err := proto.ParseRecordBatch(out)
	if err != nil {
		return nil, verdictDrop, st, fmt.Errorf("batch at offset %d: rewritten batch: %w", rb.BaseOffset(), err)
	}
	attrs := rb.Attributes()
	if setHorizon {
		attrs |= attrDeleteHorizon
		binary.BigEndian.PutUint64(out[proto.BatchPosBaseTimestamp:], uint64(newBaseTs))
	}
	nb.SetAttributes(attrs)
	nb.SetMaxTimestamp(maxTs)
	binary.BigEndian.PutUint32(out[proto.BatchPosRecordCount:], uint32(st.kept))
	nb.StampCRC()
	return dst, verdictRewritten, st, nil
}

// appendEmptyBatch appends rb as an empty batch: its base offset, last
// offset delta, partition leader epoch, producer id, epoch and base
// sequence, its timestamp type, transactional and control bits, codec
// none, first timestamp -1, its max timestamp and no records (Kafka's
// DefaultRecordBatch.writeEmptyHeader).
func appendEmptyBatch(dst []byte, rb proto.RecordBatch) []byte {
	start := len(dst)
	dst = append(dst, rb.Bytes()[:proto.RecordBatchHeaderSize]...)
	out := dst[start:]
	binary.BigEndian.PutUint32(out[proto.BatchPosBatchLength:], uint32(proto.RecordBatchHeaderSize-proto.RecordBatchLogOverhead))
	attrs := rb.Attributes() & (proto.AttrLogAppendTime | proto.AttrTransactional | proto.AttrControl)
	binary.BigEndian.PutUint16(out[proto.BatchPosAttributes:], uint16(attrs))
	binary.BigEndian.PutUint64(out[proto.BatchPosBaseTimestamp:], ^uint64(0)) // -1
	binary.BigEndian.PutUint32(out[proto.BatchPosRecordCount:], 0)
	nb, _, _ := proto.ParseRecordBatch(out) // a whole header: cannot fail
	nb.StampCRC()
	return dst
}

// appendRecord encodes r as a v2 record with timestamp delta tsDelta
// (KIP-534 re-basing), everything else as it was.
func appendRecord(dst []byte, r *proto.Record, tsDelta int64) []byte {
	var body [binary.MaxVarintLen64 * 4]byte
	n := 0
	body[n] = byte(r.Attributes)
	n++
	n += binary.PutVarint(body[n:], tsDelta)
	n += binary.PutVarint(body[n:], int64(r.OffsetDelta))
	kl := int64(-1)
	if r.Key != nil {
		kl = int64(len(r.Key))
	}
	n += binary.PutVarint(body[n:], kl)
	vl := int64(-1)
	if r.Value != nil {
		vl = int64(len(r.Value))
	}
	var tail [binary.MaxVarintLen64 * 2]byte
	t := binary.PutVarint(tail[:], vl)
	var hc [binary.MaxVarintLen64]byte
	h := binary.PutVarint(hc[:], int64(r.HeaderCount))
	length := n + len(r.Key) + t + len(r.Value) + h + len(r.Headers)
	dst = binary.AppendVarint(dst, int64(length))
	dst = append(dst, body[:n]...)
	dst = append(dst, r.Key...)
	dst = append(dst, tail[:t]...)
	dst = append(dst, r.Value...)
	dst = append(dst, hc[:h]...)
	return append(dst, r.Headers...)
}
