package proto

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkValidateRecords: the records of a 16 KiB batch of 160 records of
// 100-byte values, as ringbench's producer sends them (record lengths,
// value lengths and most offset deltas are 2-byte varints).
func BenchmarkValidateRecords(b *testing.B) {
	var recs []byte
	value := make([]byte, 100)
	const n = 160
	for i := 0; i < n; i++ {
		r := kmsg.Record{TimestampDelta64: int64(i / 40), OffsetDelta: int32(i), Value: value}
		recs = AppendRecord(recs, &r)
	}
	b.SetBytes(int64(len(recs)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ValidateRecords(recs, n, 1000); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVarint: the inlined one- and two-byte paths of varint read exactly
// what encoding/binary does (varintSlow), at every position, including
// failed reads (p < 0 in, or past the end).
func FuzzVarint(f *testing.F) {
	f.Add([]byte{0x80, 0x01, 0x7f, 0xff, 0x7f, 0x80})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		for p := -1; p <= len(b)+1; p++ {
			v, q := varint(b, p)
			wv, wq := varintSlow(b, p)
			if v != wv || q != wq {
				t.Fatalf("varint(%x, %d) = %d, %d; binary.Varint gives %d, %d", b, p, v, q, wv, wq)
			}
		}
	})
}
