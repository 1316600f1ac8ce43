package txn

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

// TestRecordRoundTrip: every state at both value versions decodes to what
// was encoded (fields a version does not carry come back as defaults).
func TestRecordRoundTrip(t *testing.T) {
	for _, version := range []int16{0, 1} {
		for s := Empty; s <= PrepareEpochFence; s++ {
			v := LogValue{ProducerID: 7, PreviousProducerID: 6, NextProducerID: 8, ProducerEpoch: 3, TimeoutMs: 60000,
				State: s, LastUpdateTimestamp: 1234, StartTimestamp: 1000, ClientTransactionVersion: 2,
				Partitions: []TopicPartition{{"b", 1}, {"a", 2}, {"a", 0}, {"b", 1}}}
			got, err := DecodeValue(EncodeValue(&v, version))
			if err != nil {
				t.Fatalf("v%d %v: %v", version, s, err)
			}
			want := v
			want.Partitions = []TopicPartition{{"a", 0}, {"a", 2}, {"b", 1}}
			if s == Empty {
				want.Partitions = nil
			}
			if version == 0 {
				want.PreviousProducerID, want.NextProducerID, want.ClientTransactionVersion = -1, -1, 0
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("v%d %v: got %+v, want %+v", version, s, got, want)
			}
		}
	}
	id, err := DecodeKey(EncodeKey("tx-1"))
	if err != nil || id != "tx-1" {
		t.Fatalf("key: %q %v", id, err)
	}
}

// TestRecordBytes pins the exact bytes against Kafka's layout: key version
// 0 + string; value v0 with null partitions for Empty; v1 with a compact
// array and tag 2 (client transaction version) only when non-zero.
func TestRecordBytes(t *testing.T) {
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"key", EncodeKey("t"), "0000" + "0001" + "74"},
		{"empty v0", EncodeValue(&LogValue{ProducerID: 1, ProducerEpoch: 0, TimeoutMs: 1000, State: Empty,
			LastUpdateTimestamp: 5, StartTimestamp: -1}, 0),
			"0000" + "0000000000000001" + "0000" + "000003e8" + "00" + "ffffffff" + "0000000000000005" + "ffffffffffffffff"},
		{"complete v0", EncodeValue(&LogValue{ProducerID: 1, ProducerEpoch: 2, TimeoutMs: 1000, State: CompleteCommit,
			LastUpdateTimestamp: 5, StartTimestamp: 4}, 0),
			"0000" + "0000000000000001" + "0002" + "000003e8" + "04" + "00000000" + "0000000000000005" + "0000000000000004"},
		{"ongoing v1", EncodeValue(&LogValue{ProducerID: 1, PreviousProducerID: -1, NextProducerID: -1, ProducerEpoch: 2,
			TimeoutMs: 1000, State: Ongoing, Partitions: []TopicPartition{{"t", 3}}, LastUpdateTimestamp: 5, StartTimestamp: 4,
			ClientTransactionVersion: 2}, 1),
			"0001" + "0000000000000001" + "0002" + "000003e8" + "01" +
				"02" + "0274" + "0200000003" + "00" + // one topic "t", partitions [3], no tags
				"0000000000000005" + "0000000000000004" + "01" + "02" + "02" + "0002"},
	} {
		if hex.EncodeToString(c.got) != c.want {
			t.Errorf("%s:\n got %x\nwant %s", c.name, c.got, c.want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	if _, err := DecodeKey([]byte{0, 1, 0, 0}); !errors.Is(err, ErrUnknownKeyVersion) {
		t.Fatalf("key v1: %v", err)
	}
	v := EncodeValue(&LogValue{State: Ongoing}, 0)
	v[1] = 2
	if _, err := DecodeValue(v); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("value v2: %v", err)
	}
	v = EncodeValue(&LogValue{State: Ongoing}, 0)
	v[2+8+2+4] = 8 // state id
	if _, err := DecodeValue(v); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("state 8: %v", err)
	}
}

// FuzzDecodeTxnRecord: decoding a key or value never panics; a value that
// decodes re-encodes (at its own version) to bytes that decode to the same
// value and re-encode to the same bytes; a decoded value holds no more
// partitions than its bytes can describe (allocation bounded by input).
func FuzzDecodeTxnRecord(f *testing.F) {
	f.Add(EncodeKey("tx"))
	f.Add(EncodeValue(&LogValue{ProducerID: 1, State: Empty, StartTimestamp: -1}, 0))
	f.Add(EncodeValue(&LogValue{ProducerID: 1, State: Ongoing, Partitions: []TopicPartition{{"a", 1}, {"b", 2}}}, 0))
	f.Add(EncodeValue(&LogValue{ProducerID: 1, PreviousProducerID: 4, NextProducerID: 9, State: PrepareCommit,
		Partitions: []TopicPartition{{"a", 1}}, ClientTransactionVersion: 2}, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeKey(b)
		v, err := DecodeValue(b)
		if err != nil {
			return
		}
		// Each partition id costs at least 4 bytes of input.
		if len(v.Partitions)*4 > len(b) {
			t.Fatalf("%d partitions from %d bytes", len(v.Partitions), len(b))
		}
		version := int16(b[0])<<8 | int16(b[1])
		enc := EncodeValue(&v, version)
		v2, err := DecodeValue(enc)
		if err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip changed the value:\n%+v\n%+v", v, v2)
		}
		if enc2 := EncodeValue(&v2, version); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding is not stable:\n%x\n%x", enc, enc2)
		}
	})
}
