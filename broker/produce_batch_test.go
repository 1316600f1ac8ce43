package broker

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ringbroker/ringbroker/proto"
)

// recrc restamps b's CRC after a test edited it.
func recrc(b []byte) []byte {
	rb, err := proto.ParseRecordBatchHeader(b)
	if err != nil {
		panic(err)
	}
	rb.StampCRC()
	return b
}

func TestValidateBatch(t *testing.T) {
	good := prodBatch(7, 1, 3, 1000, prodValues("x", 4)...)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		b    []byte
		max  int32
		ver  int16
		want *kerr.Error
	}{
		{"good", good, 1 << 20, 9, nil},
		{"empty", nil, 1 << 20, 9, kerr.InvalidRecord},
		{"magic1", mod(func(b []byte) []byte { b[proto.BatchPosMagic] = 1; return b }), 1 << 20, 9, kerr.InvalidRecord},
		{"short-length", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 10); return b }), 1 << 20, 9, kerr.CorruptMessage},
		{"too-large", good, int32(len(good) - 1), 9, kerr.MessageTooLarge},
		{"crc", mod(func(b []byte) []byte { b[len(b)-1]++; return b }), 1 << 20, 9, kerr.CorruptMessage},
		{"control", mod(func(b []byte) []byte { b[proto.BatchPosAttributes+1] |= proto.AttrControl; return recrc(b) }), 1 << 20, 9, kerr.InvalidRecord},
		{"codec7", mod(func(b []byte) []byte { b[proto.BatchPosAttributes+1] |= 7; return recrc(b) }), 1 << 20, 9, kerr.InvalidRecord},
		{"zero-count", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[proto.BatchPosRecordCount:], 0); return recrc(b) }), 1 << 20, 9, kerr.InvalidRecord},
		{"lod-mismatch", mod(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[proto.BatchPosLastOffsetDelta:], 9)
			return recrc(b)
		}), 1 << 20, 9, kerr.InvalidRecord},
		{"negative-seq", mod(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[proto.BatchPosBaseSequence:], 0xffffffff)
			return recrc(b)
		}), 1 << 20, 9, kerr.InvalidRecord},
		{"record-offsets", mod(func(b []byte) []byte {
			// second record's offsetDelta byte (after length, attributes, ts delta)
			p := proto.RecordBatchHeaderSize
			n, w := binary.Varint(b[p:])
			p += w + int(n)
			b[p+3] = 2 * 5 // zigzag(5)
			return recrc(b)
		}), 1 << 20, 9, kerr.InvalidRecord},
	}
	for _, c := range cases {
		bi, err := validateBatch(c.b, c.max, c.ver)
		switch {
		case c.want == nil && err != nil:
			t.Fatalf("%s: %v %s", c.name, err.err, err.msg)
		case c.want != nil && (err == nil || err.err != c.want):
			t.Fatalf("%s: got %+v, want %v", c.name, err, c.want)
		}
		if c.want == nil && (bi.batch.ProducerID() != 7 || bi.batch.ProducerEpoch() != 1 || bi.batch.BaseSequence() != 3 || bi.batch.LastSequence() != 6 || bi.batch.Size() != len(good)) {
			t.Fatalf("%s: info %+v", c.name, bi)
		}
	}
	if proto.AddSequence(2147483647, 1) != 0 || proto.AddSequence(2147483646, 3) != 1 || !inSequence(2147483647, 0) {
		t.Fatal("sequence wrap")
	}
	if n := testing.AllocsPerRun(100, func() { validateBatch(good, 1<<20, 9) }); n != 0 {
		t.Fatalf("validateBatch allocates %v", n)
	}
}

// Every codec recompresses to every other and back, keeping the records.
func TestRecompressRoundTrip(t *testing.T) {
	orig := prodBatch(-1, -1, -1, 1000, prodValues(string(bytes.Repeat([]byte("abc"), 50)), 20)...)
	bi, berr := validateBatch(orig, 1<<20, 9)
	if berr != nil {
		t.Fatal(berr.msg)
	}
	for _, c := range []int8{codecGzip, codecSnappy, codecLZ4, codecZstd} {
		comp, berr := recompressBatch(&bi, c)
		if berr != nil {
			t.Fatalf("codec %d: %s", c, berr.msg)
		}
		cbi, berr := validateBatch(comp, 1<<20, 9)
		if berr != nil || cbi.codec() != c || len(comp) >= len(orig) {
			t.Fatalf("codec %d: %v, %d vs %d bytes", c, berr, len(comp), len(orig))
		}
		back, berr := recompressBatch(&cbi, codecNone)
		if berr != nil || !bytes.Equal(back, orig) {
			t.Fatalf("codec %d: round trip differs (%v)", c, berr)
		}
	}
}

// FuzzValidateBatch: validateBatch never panics; what it accepts is one
// batch filling the input whose counts agree; an accepted uncompressed batch
// survives a recompression round trip through zstd byte for byte.
func FuzzValidateBatch(f *testing.F) {
	f.Add(prodBatch(-1, -1, -1, 1, prodValues("a", 1)...))
	f.Add(prodBatch(5, 0, 0, 1, prodValues("bb", 3)...))
	f.Add(prodBatch(5, 2, 2147483646, 99, []byte{}, nil, []byte("k"))[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		bi, err := validateBatch(b, 1<<20, 11)
		if err != nil {
			return
		}
		if bi.batch.Size() != len(b) || int64(bi.batch.LastOffsetDelta())+1 != int64(bi.batch.RecordCount()) {
			t.Fatalf("accepted inconsistent batch %+v (%d bytes)", bi, len(b))
		}
		if bi.codec() != codecNone {
			return
		}
		comp, berr := recompressBatch(&bi, codecZstd)
		if berr != nil {
			t.Fatalf("recompress: %s", berr.msg)
		}
		cbi, berr := validateBatch(comp, 1<<30, 11)
		if berr != nil {
			t.Fatalf("recompressed batch invalid: %s", berr.msg)
		}
		back, berr := recompressBatch(&cbi, codecNone)
		if berr != nil || !bytes.Equal(back, b) {
			t.Fatalf("round trip differs: %v", berr)
		}
	})
}

// BenchmarkProduceValidateBatch: the ring thread's check of one
// uncompressed 16-record batch (framing, CRC32C, every record walked).
func BenchmarkProduceValidateBatch(b *testing.B) {
	batch := prodBatch(7, 1, 3, 1000, prodValues("0123456789abcdef0123456789abcdef0123456789abcdef", 16)...)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := validateBatch(batch, 1<<20, 9); err != nil {
			b.Fatal(err.msg)
		}
	}
}
