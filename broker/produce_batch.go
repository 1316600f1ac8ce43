package broker

import (
	"encoding/binary"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ringbroker/ringbroker/proto"
)

// In-place validation of a produced record batch (v2), without decompressing
// it: the produce hot path checks a batch where it lies in the request frame
// (a proto.RecordBatch view; proto/batch.go draws the layout) and hands the
// same view to the log (storage.Log.AppendBatch), so the header is parsed
// once.
//
// Every record is parsed as Kafka's DefaultRecord.readFrom does
// (proto.ValidateRecords): a field that runs past its record, a negative
// header count or header key length, a record whose fields do not fill
// exactly its length, and a batch whose records do not fill exactly its
// bytes all answer INVALID_RECORD. Uncompressed batches are walked here, on
// the ring thread, in place; compressed ones are decompressed and walked on
// a produce worker (produce_compression.go). The walk also yields the records'
// smallest and largest timestamps: admitRecords checks them against
// message.timestamp.before/after.max.ms and writes the records' true
// maxTimestamp into the header (+CRC) when the producer's differs, as
// Kafka's LogValidator does; the log trusts the header from then on (time
// index, retention, ListOffsets -3).

// Codec ids of the attributes' low bits (proto's, as broker-local names).
const (
	codecNone   = proto.CodecNone
	codecGzip   = proto.CodecGzip
	codecSnappy = proto.CodecSnappy
	codecLZ4    = proto.CodecLZ4
	codecZstd   = proto.CodecZstd
)

// batchInfo is a validated batch: the view and what the record walk found.
type batchInfo struct {
	// batch is the whole batch: over the request frame on the ring thread,
	// over a private copy on a produce worker (toWorker clones it).
	batch proto.RecordBatch

	// From the record walk (walkRecords): the smallest and largest record
	// timestamps other than -1 (Kafka's NO_TIMESTAMP, which it never
	// bounds); minTs > maxTs when every record has -1. nullKey: some
	// record has no key.
	minTs, maxTs int64
	nullKey      bool
}

func (bi *batchInfo) codec() int8          { return bi.batch.Codec() }
func (bi *batchInfo) idempotent() bool     { return bi.batch.ProducerID() >= 0 }
func (bi *batchInfo) logAppendTimed() bool { return bi.batch.LogAppendTime() }

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
	rb, rest, err := proto.ParseRecordBatch(records)
	switch {
	case err == proto.ErrBatchShort:
		return bi, &batchError{kerr.InvalidRecord, "produce request must contain exactly one record batch per partition"}
	case err == proto.ErrBatchMagic:
		return bi, &batchError{kerr.InvalidRecord, "produce requests v3+ must contain record batches with magic 2"}
	case err == proto.ErrBatchLength:
		if int32(binary.BigEndian.Uint32(records[proto.BatchPosBatchLength:])) > proto.RecordBatchMaxLength {
			// Longer than RecordBatchMaxLength yet within the request:
			// larger than any max.message.bytes.
			return bi, &batchError{kerr.MessageTooLarge, "record batch is larger than max.message.bytes"}
		}
		return bi, &batchError{kerr.CorruptMessage, "record batch length is smaller than the batch header"}
	case err == proto.ErrBatchTruncated:
		return bi, &batchError{kerr.InvalidRecord, "record batch is truncated: produce request must contain exactly one whole record batch"}
	case len(rest) != 0:
		return bi, &batchError{kerr.InvalidRecord, "produce request must contain exactly one record batch per partition"}
	}
	if rb.Size() > int(maxMessageBytes) {
		return bi, &batchError{kerr.MessageTooLarge, "record batch is larger than max.message.bytes"}
	}
	if !rb.CheckCRC() {
		return bi, &batchError{kerr.CorruptMessage, "record batch CRC32C mismatch"}
	}
	bi.batch = rb
	if rb.Control() {
		return bi, &batchError{kerr.InvalidRecord, "clients may not produce control batches"}
	}
	switch c := rb.Codec(); {
	case c > codecZstd:
		return bi, &batchError{kerr.InvalidRecord, "unknown compression codec"}
	case c == codecZstd && produceVersion < 7:
		return bi, &batchError{kerr.UnsupportedCompressionType, "zstd needs Produce v7 or later"}
	}
	count, lod := rb.RecordCount(), rb.LastOffsetDelta()
	if count <= 0 {
		return bi, &batchError{kerr.InvalidRecord, "record batch has no records"}
	}
	if lod < 0 || int64(lod)+1 != int64(count) {
		return bi, &batchError{kerr.InvalidRecord, "record batch offset range does not match its record count"}
	}
	if bi.idempotent() && (rb.ProducerEpoch() < 0 || rb.BaseSequence() < 0) {
		return bi, &batchError{kerr.InvalidRecord, "idempotent record batch without producer epoch or sequence"}
	}
	if rb.Codec() == codecNone {
		if err := walkRecords(rb.Records(), &bi); err != nil {
			return bi, err
		}
	}
	return bi, nil
}

// walkRecords parses bi's records, uncompressed in b, as Kafka's
// DefaultRecord.readFrom does (proto.ValidateRecords), and sets bi.minTs,
// bi.maxTs and bi.nullKey. Allocation-free.
func walkRecords(b []byte, bi *batchInfo) *batchError {
	sum, err := proto.ValidateRecords(b, bi.batch.RecordCount(), bi.batch.BaseTimestamp())
	if err != nil {
		return &batchError{kerr.InvalidRecord, err.Error()}
	}
	bi.minTs, bi.maxTs, bi.nullKey = sum.MinTimestamp, sum.MaxTimestamp, sum.NullKey
	return nil
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
// header's maxTimestamp the records' true maximum (rewriting bi.batch's
// attributes, maxTimestamp and CRC in place when they differ):
//   - Compacted topic: a record without a key is INVALID_RECORD.
//   - LogAppendTime topic: a batch the producer marked LogAppendTime is
//     INVALID_TIMESTAMP; otherwise nothing to check (the log stamps it).
//   - CreateTime topic: any record timestamp (other than -1) earlier than
//     now - before.max.ms or later than now + after.max.ms is
//     INVALID_TIMESTAMP. A batch marked LogAppendTime has every record at its
//     header maxTimestamp (Kafka reads it so) and is stored as CreateTime.
func admitRecords(bi *batchInfo, rules recordRules, nowMs int64) *batchError {
	if rules.compacted && bi.nullKey {
		return &batchError{kerr.InvalidRecord, "compacted topic cannot accept a record without a key"}
	}
	if rules.logAppendTime {
		if bi.logAppendTimed() {
			return &batchError{kerr.InvalidTimestamp, "producer should not set timestamp type to LogAppendTime"}
		}
		return nil
	}
	rb := bi.batch
	minTs, maxTs := bi.minTs, bi.maxTs
	if bi.logAppendTimed() {
		minTs, maxTs = rb.MaxTimestamp(), rb.MaxTimestamp()
		if maxTs == -1 {
			minTs, maxTs = math.MaxInt64, math.MinInt64
		}
	}
	if minTs <= maxTs && (minTs < subSat(nowMs, rules.beforeMaxMs) || maxTs > addSat(nowMs, rules.afterMaxMs)) {
		return &batchError{kerr.InvalidTimestamp, "record timestamp out of range: message.timestamp.before.max.ms / message.timestamp.after.max.ms"}
	}
	want := max(maxTs, -1) // Kafka's maxTimestamp starts at NO_TIMESTAMP
	if want != rb.MaxTimestamp() || bi.logAppendTimed() {
		rb.SetAttributes(rb.Attributes() &^ proto.AttrLogAppendTime)
		rb.SetMaxTimestamp(want)
		rb.StampCRC()
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
