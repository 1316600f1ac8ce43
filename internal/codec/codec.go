// Package codec compresses and decompresses the records section of Kafka
// record batches, in the formats Kafka writes: gzip (RFC 1952), snappy (raw
// blocks, as franz-go and librdkafka write them; the xerial framing of the
// Java client is read too), lz4 (frame format) and zstd (frame). The
// produce path (broker) and the log cleaner (storage) share it.
//
// Decompression is bounded: Decompress fails with ErrTooLarge once the
// output passes its limit, so a tiny compressed batch cannot make the
// broker allocate gigabytes. Encoders and decoders are pooled; with a dst of
// enough capacity a call allocates nothing.
package codec

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

	"github.com/ringbroker/ringbroker/proto"
)

// The codec ids of a batch's attributes.
const (
	None   = proto.CodecNone
	Gzip   = proto.CodecGzip
	Snappy = proto.CodecSnappy
	LZ4    = proto.CodecLZ4
	Zstd   = proto.CodecZstd
)

// MaxDecompressedBytes is the largest records section Decompress yields
// for a batch anywhere (the produce workers, the cleaner).
const MaxDecompressedBytes = 64 << 20

// SmallLimit is the limit of a ring thread's decompression (see the
// broker's produce path); zstd keeps a decoder pool per limit because a
// decoder's limit also caps the window a frame may declare.
const SmallLimit = 256 << 10

var (
	zstdEncoders = sync.Pool{New: func() any {
		e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		return e
	}}
	zstdDecoders     = zstdDecoderPool(MaxDecompressedBytes)
	zstdRingDecoders = zstdDecoderPool(SmallLimit)
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

// ErrTooLarge: the decompressed records passed the limit.
var ErrTooLarge = errors.New("decompressed records too large")

// xerialMagic opens snappy data framed by the Java client's snappy-java
// stream format.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// Decompress appends the decompressed form of src (codec) to dst and
// fails with ErrTooLarge once it passes limit bytes (MaxDecompressedBytes
// or SmallLimit, the two limits the zstd decoder pools know).
// With pooled readers and a dst of enough capacity it allocates nothing.
func Decompress(codec int8, src, dst []byte, limit int) ([]byte, error) {
	switch codec {
	case None:
		return append(dst, src...), nil
	case Gzip:
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
	case Snappy:
		if bytes.HasPrefix(src, xerialMagic) {
			return decodeXerial(src, dst, limit)
		}
		return snappyBlock(src, dst, limit)
	case LZ4:
		br := bytesReaders.Get().(*bytes.Reader)
		br.Reset(src)
		r := lz4Readers.Get().(*lz4.Reader)
		r.Reset(br)
		out, err := readAllLimited(r, dst, limit)
		r.Reset(nil)
		lz4Readers.Put(r)
		bytesReaders.Put(br)
		return out, err
	case Zstd:
		pool := zstdDecoders
		if limit <= SmallLimit {
			pool = zstdRingDecoders
		}
		d := pool.Get().(*zstd.Decoder)
		out, err := d.DecodeAll(src, dst)
		pool.Put(d)
		// A decoder's limit also caps the window a frame may declare: a
		// streaming producer's frame (window of a few MiB over a few KiB of
		// records) is too large for the ring's decoder, not invalid.
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) || len(out)-len(dst) > limit {
			return out, ErrTooLarge
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
		return dst, ErrTooLarge
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
// fails with ErrTooLarge past limit bytes (io.ReadAll without its
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
			return dst, ErrTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// Compress appends src compressed with codec to dst.
func Compress(codec int8, src, dst []byte) ([]byte, error) {
	switch codec {
	case None:
		return append(dst, src...), nil
	case Gzip:
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
	case Snappy:
		return append(dst, snappy.Encode(nil, src)...), nil
	case LZ4:
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
	case Zstd:
		e := zstdEncoders.Get().(*zstd.Encoder)
		out := e.EncodeAll(src, dst)
		zstdEncoders.Put(e)
		return out, nil
	}
	return dst, fmt.Errorf("unknown codec %d", codec)
}

// ByName maps compression.type to the attributes' codec id; ok=false
// for "producer" (keep what the producer sent).
func ByName(name string) (codec int8, ok bool) {
	switch name {
	case "uncompressed":
		return None, true
	case "gzip":
		return Gzip, true
	case "snappy":
		return Snappy, true
	case "lz4":
		return LZ4, true
	case "zstd":
		return Zstd, true
	}
	return 0, false
}
