package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"

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

const maxDecompressedBytes = 64 << 20

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
	ringDecompressMaxBytes = 256 << 10
)

var (
	zstdEncoders = sync.Pool{New: func() any {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		return e
	}}
	zstdDecoders     = zstdDecoderPool(maxDecompressedBytes)
	zstdRingDecoders = zstdDecoderPool(ringDecompressMaxBytes)
	gzipWriters      = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	lz4Writers       = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}
	lz4Readers       = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	gzipReaders      = sync.Pool{New: func() any { return new(gzip.Reader) }}
	bytesReaders     = sync.Pool{New: func() any { return new(bytes.Reader) }}
)

// zstdDecoderPool pools decoders whose DecodeAll stops past limit bytes.
func zstdDecoderPool(limit int) *sync.Pool {
	return &sync.Pool{New: func() any {
		d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)))
		return d
	}}
}

var errTooLarge = errors.New("decompressed records too large")

// xerialMagic opens snappy data framed by the Java client's snappy-java
// stream format.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// decompressRecords appends the decompressed form of src (codec) to dst,
// at most maxDecompressedBytes.
func decompressRecords(codec int8, src, dst []byte) ([]byte, error) {
	return decompressLimited(codec, src, dst, maxDecompressedBytes)
}

// decompressLimited appends the decompressed form of src (codec) to dst and
// fails with errTooLarge once it passes limit bytes (maxDecompressedBytes
// or ringDecompressMaxBytes, the two limits the zstd decoder pools know).
// With pooled readers and a dst of enough capacity it allocates nothing.
func decompressLimited(codec int8, src, dst []byte, limit int) ([]byte, error) {
	switch codec {
	case codecNone:
		return append(dst, src...), nil
	case codecGzip:
		br := bytesReaders.Get().(*bytes.Reader)
		br.Reset(src)
		zr := gzipReaders.Get().(*gzip.Reader)
		out, err := dst, zr.Reset(br)
		if err == nil {
			out, err = readAllLimited(zr, dst, limit)
		}
		gzipReaders.Put(zr)
		bytesReaders.Put(br)
		return out, err
	case codecSnappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return decodeXerial(src, dst, limit)
		}
		return snappyBlock(src, dst, limit)
	case codecLZ4:
		br := bytesReaders.Get().(*bytes.Reader)
		br.Reset(src)
		r := lz4Readers.Get().(*lz4.Reader)
		r.Reset(br)
		out, err := readAllLimited(r, dst, limit)
		r.Reset(nil)
		lz4Readers.Put(r)
		bytesReaders.Put(br)
		return out, err
	case codecZstd:
		pool := zstdDecoders
		if limit <= ringDecompressMaxBytes {
			pool = zstdRingDecoders
		}
		d := pool.Get().(*zstd.Decoder)
		out, err := d.DecodeAll(src, dst)
		pool.Put(d)
		// A decoder's limit also caps the window a frame may declare: a
		// streaming producer's frame (window of a few MiB over a few KiB of
		// records) is too large for the ring's decoder, not invalid.
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) || len(out)-len(dst) > limit {
			return out, errTooLarge
		}
		return out, err
	}
	return dst, fmt.Errorf("unknown codec %d", codec)
}

func snappyBlock(src, dst []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return dst, err
	}
	if n > limit {
		return dst, errTooLarge
	}
	dst = slices.Grow(dst, n)
	out, err := snappy.Decode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+len(out)], err
}

// decodeXerial reads snappy-java's framing: the 8-byte magic, two 4-byte
// version fields, then chunks of [4-byte big-endian length][snappy block].
func decodeXerial(src, dst []byte, limit int) ([]byte, error) {
	if len(src) < 16 {
		return dst, errors.New("short xerial snappy header")
	}
	start := len(dst)
	src = src[16:]
	for len(src) > 0 {
		if len(src) < 4 {
			return dst, errors.New("torn xerial snappy chunk length")
		}
		n := binary.BigEndian.Uint32(src)
		if uint64(n) > uint64(len(src)-4) {
			return dst, errors.New("torn xerial snappy chunk")
		}
		var err error
		if dst, err = snappyBlock(src[4:4+n], dst, limit-(len(dst)-start)); err != nil {
			return dst, err
		}
		src = src[4+n:]
	}
	return dst, nil
}

// readAllLimited appends what r yields to dst, growing it as needed, and
// fails with errTooLarge past limit bytes (io.ReadAll without its
// allocations when dst has room).
func readAllLimited(r io.Reader, dst []byte, limit int) ([]byte, error) {
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, max(4096, len(dst)-start))
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst, errTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// compressRecords appends src compressed with codec to dst.
func compressRecords(codec int8, src, dst []byte) ([]byte, error) {
	switch codec {
	case codecNone:
		return append(dst, src...), nil
	case codecGzip:
		buf := bytes.NewBuffer(dst)
		w := gzipWriters.Get().(*gzip.Writer)
		w.Reset(buf)
		_, err := w.Write(src)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		w.Reset(nil)
		gzipWriters.Put(w)
		return buf.Bytes(), err
	case codecSnappy:
		return append(dst, snappy.Encode(nil, src)...), nil
	case codecLZ4:
		buf := bytes.NewBuffer(dst)
		w := lz4Writers.Get().(*lz4.Writer)
		w.Reset(buf)
		_, err := w.Write(src)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		w.Reset(nil)
		lz4Writers.Put(w)
		return buf.Bytes(), err
	case codecZstd:
		e := zstdEncoders.Get().(*zstd.Encoder)
		out := e.EncodeAll(src, dst)
		zstdEncoders.Put(e)
		return out, nil
	}
	return dst, fmt.Errorf("unknown codec %d", codec)
}

// codecByName maps compression.type to the attributes' codec id; ok=false
// for "producer" (keep what the producer sent).
func codecByName(name string) (codec int8, ok bool) {
	switch name {
	case "uncompressed":
		return codecNone, true
	case "gzip":
		return codecGzip, true
	case "snappy":
		return codecSnappy, true
	case "lz4":
		return codecLZ4, true
	case "zstd":
		return codecZstd, true
	}
	return 0, false
}

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
