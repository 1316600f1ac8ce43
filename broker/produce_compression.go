package broker

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ringbroker/ringbroker/internal/codec"
	"github.com/ringbroker/ringbroker/proto"
)

// Recompression into a topic's compression.type, as Kafka's LogValidator
// does when the topic names a codec other than "producer" and the batch
// arrives in another one: the records section is decompressed and
// compressed again with the topic's codec; the records themselves (their
// bytes, offsets deltas, timestamps) and every header field except
// attributes' codec bits, batchLength and the CRC are kept. Runs only on
// the produce workers at the end of this file, never on a ring thread.
//
// Inspection of compressed batches: every compressed batch is decompressed
// into a pooled buffer and its records walked (walkRecords) before it is
// stored, on the ring thread when small (walkCompressed), else on the
// worker (inspectBatch), which also applies the timestamp rules there.
//
// Formats, as Kafka writes them: gzip (RFC 1952), snappy (we write raw
// snappy blocks as franz-go and librdkafka do and read both raw and the
// xerial framing of the Java client), lz4 (LZ4 frame format), zstd (frame).
//
// Difference from Kafka: decompressed records are bounded by
// maxDecompressedBytes (INVALID_RECORD past it) so a tiny compressed batch
// cannot make the broker allocate gigabytes.

const maxDecompressedBytes = codec.MaxDecompressedBytes

// Where a compressed batch's records are inspected (decompressed and
// walked): on the ring thread when the batch is at most ringInspectMaxBytes
// and its records at most ringDecompressMaxBytes, so a ring never spends
// more than about a quarter of a millisecond on one batch (gzip, the
// slowest codec, inflates ~300 MB/s here); past either bound, on the
// partition's produce worker. Measured with BenchmarkProduceCompressed:
// sending every compressed batch to the worker halved zstd produce
// throughput (the hop, the copy and the job cost more than decompressing a
// few KiB); inspecting on the ring costs a few percent.
const (
	ringInspectMaxBytes    = 64 << 10
	ringDecompressMaxBytes = codec.SmallLimit
)

// recompressBatch returns bi's batch (one validated v2 batch) with its
// records re-encoded in codec, or a batchError. The records are walked on
// the way (walkRecords), as Kafka's validator does when it has to look
// inside a compressed batch.
func recompressBatch(bi *batchInfo, codec int8) ([]byte, *batchError) {
	rb, berr := inspectBatch(bi, nil, 0, true, codec)
	return rb.Bytes(), berr
}

// inspectBatch is the produce worker's look inside a batch: decompress the
// records (into a pooled buffer), walk them (walkRecords), apply the
// timestamp rules when rules is non-nil (admitRecords, which may rewrite
// bi.batch's header in place: it must be a private copy), and with
// recompress re-encode them in codec. It returns the batch to append.
//
// A payload that does not decompress answers INVALID_RECORD. Kafka answers
// UNKNOWN_SERVER_ERROR there (its decompression error is a plain
// KafkaException); the defect is the client's and is not retriable, which
// INVALID_RECORD says.
func inspectBatch(bi *batchInfo, rules *recordRules, nowMs int64, recompress bool, codec int8) (proto.RecordBatch, *batchError) {
	batch := bi.batch
	raw := batch.Records()
	if bi.codec() != codecNone {
		bp := decompressBufs.Get().(*[]byte)
		defer func() {
			if cap(*bp) <= decompressBufKeepBytes {
				decompressBufs.Put(bp)
			}
		}()
		var err error
		raw, err = decompressRecords(bi.codec(), raw, (*bp)[:0])
		*bp = raw[:0]
		if err != nil {
			return proto.RecordBatch{}, &batchError{kerr.InvalidRecord, fmt.Sprintf("cannot decompress records: %v", err)}
		}
	}
	if berr := walkRecords(raw, bi); berr != nil {
		return proto.RecordBatch{}, berr
	}
	if rules != nil {
		if berr := admitRecords(bi, *rules, nowMs); berr != nil {
			return proto.RecordBatch{}, berr
		}
	}
	if !recompress {
		return batch, nil
	}
	out := make([]byte, proto.RecordBatchHeaderSize, proto.RecordBatchHeaderSize+len(raw)/2+64)
	copy(out, batch.Bytes()[:proto.RecordBatchHeaderSize])
	out, err := compressRecords(codec, raw, out)
	if err != nil {
		return proto.RecordBatch{}, &batchError{kerr.UnknownServerError, fmt.Sprintf("recompressing records: %v", err)}
	}
	if len(out)-proto.RecordBatchLogOverhead > proto.RecordBatchMaxLength {
		return proto.RecordBatch{}, &batchError{kerr.MessageTooLarge, "recompressed record batch is larger than max.message.bytes"}
	}
	binary.BigEndian.PutUint32(out[proto.BatchPosBatchLength:], uint32(len(out)-proto.RecordBatchLogOverhead))
	nb, _, perr := proto.ParseRecordBatch(out) // our own header, just framed: cannot fail
	if perr != nil {
		return proto.RecordBatch{}, &batchError{kerr.UnknownServerError, fmt.Sprintf("recompressed batch: %v", perr)}
	}
	nb.SetAttributes(nb.Attributes()&^proto.AttrCodecMask | int16(codec))
	nb.StampCRC()
	return nb, nil
}

// walkCompressed decompresses bi's compressed records into a pooled
// buffer, at most limit bytes, and walks them (walkRecords). handOff: the
// records are larger than limit allows (a ring thread's limit); the batch
// must be inspected on a worker instead.
func walkCompressed(bi *batchInfo, limit int) (handOff bool, berr *batchError) {
	bp := decompressBufs.Get().(*[]byte)
	raw, err := decompressLimited(bi.codec(), bi.batch.Records(), (*bp)[:0], limit)
	*bp = raw[:0]
	if cap(raw) <= decompressBufKeepBytes {
		defer decompressBufs.Put(bp)
	}
	switch {
	case err == errTooLarge && limit < maxDecompressedBytes:
		return true, nil
	case err != nil:
		return false, &batchError{kerr.InvalidRecord, "cannot decompress records: " + err.Error()}
	}
	return false, walkRecords(raw, bi)
}

// decompressBufs are the decompression buffers; one that grew past
// decompressBufKeepBytes is left to the GC rather than pinned in the pool.
var decompressBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const decompressBufKeepBytes = 4 << 20

var errTooLarge = codec.ErrTooLarge

// decompressRecords appends the decompressed form of src (c) to dst, at
// most maxDecompressedBytes.
func decompressRecords(c int8, src, dst []byte) ([]byte, error) {
	return codec.Decompress(c, src, dst, maxDecompressedBytes)
}

func decompressLimited(c int8, src, dst []byte, limit int) ([]byte, error) {
	return codec.Decompress(c, src, dst, limit)
}

func compressRecords(c int8, src, dst []byte) ([]byte, error) { return codec.Compress(c, src, dst) }

func codecByName(name string) (int8, bool) { return codec.ByName(name) }
