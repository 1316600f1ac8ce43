package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

var codecs = []int8{None, Gzip, Snappy, LZ4, Zstd}

func sample() []byte {
	var b []byte
	for i := 0; i < 2000; i++ {
		b = append(b, byte(i%17), byte(i%251), 'k', 'v')
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	raw := sample()
	for _, c := range codecs {
		comp, err := Compress(c, raw, []byte("prefix"))
		if err != nil || !bytes.HasPrefix(comp, []byte("prefix")) {
			t.Fatalf("codec %d: compress: %v", c, err)
		}
		back, err := Decompress(c, comp[len("prefix"):], nil, MaxDecompressedBytes)
		if err != nil || !bytes.Equal(back, raw) {
			t.Fatalf("codec %d: round trip: %v", c, err)
		}
		if c != None {
			if _, err := Decompress(c, comp[len("prefix"):], nil, 100); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("codec %d: limit 100: got %v, want ErrTooLarge", c, err)
			}
		}
	}
	if _, err := Decompress(7, raw, nil, MaxDecompressedBytes); err == nil {
		t.Fatal("unknown codec accepted")
	}
}

// The Java client's snappy-java framing: magic, two versions, then
// length-prefixed raw blocks.
func TestXerialSnappy(t *testing.T) {
	raw := sample()
	block, _ := Compress(Snappy, raw, nil)
	x := append([]byte(nil), xerialMagic...)
	x = binary.BigEndian.AppendUint32(x, 1)
	x = binary.BigEndian.AppendUint32(x, 1)
	x = binary.BigEndian.AppendUint32(x, uint32(len(block)))
	x = append(x, block...)
	if got, err := Decompress(Snappy, x, nil, MaxDecompressedBytes); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("xerial: %v", err)
	}
	if _, err := Decompress(Snappy, x[:len(x)-3], nil, MaxDecompressedBytes); err == nil {
		t.Fatal("torn xerial chunk accepted")
	}
}

func TestByName(t *testing.T) {
	for name, want := range map[string]int8{"uncompressed": None, "gzip": Gzip, "snappy": Snappy, "lz4": LZ4, "zstd": Zstd} {
		if c, ok := ByName(name); !ok || c != want {
			t.Fatalf("%s: %d %v", name, c, ok)
		}
	}
	if _, ok := ByName("producer"); ok {
		t.Fatal("producer is not a codec")
	}
}

// FuzzDecompress: arbitrary bytes under every codec never panic and never
// yield more than the limit (plus what a codec may hand back before it
// notices).
func FuzzDecompress(f *testing.F) {
	raw := sample()
	for _, c := range codecs {
		comp, _ := Compress(c, raw, nil)
		f.Add(uint8(c), comp)
	}
	f.Add(uint8(Snappy), append([]byte(nil), xerialMagic...))
	f.Fuzz(func(t *testing.T, c uint8, src []byte) {
		const limit = 1 << 16
		out, err := Decompress(int8(c%5), src, nil, limit)
		if err == nil && len(out) > limit && int8(c%5) != None {
			t.Fatalf("codec %d: %d bytes past limit %d without error", c%5, len(out), limit)
		}
	})
}
