package acl

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzDecodeACLs: Decode never panics, and whatever it accepts is
// canonical: re-encoding the decoded bindings gives the input back, and
// the bindings load into an authorizer.
func FuzzDecodeACLs(f *testing.F) {
	empty, _ := Encode(nil)
	f.Add(empty)
	some, _ := Encode([]Binding{
		{Pattern: ResourcePattern{Type: ResourceTopic, Name: "t", PatternType: PatternLiteral},
			Entry: Entry{Principal: "User:a", Host: "*", Operation: OpRead, Permission: Allow}},
		{Pattern: ResourcePattern{Type: ResourceGroup, Name: "g-", PatternType: PatternPrefixed},
			Entry: Entry{Principal: "User:*", Host: "10.0.0.1", Operation: OpAll, Permission: Deny}},
	})
	f.Add(some)
	f.Add([]byte("RACL\x01\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeCanonical(t, data)
		// The checksum would hide everything behind it from the fuzzer:
		// also try the input with its trailer recomputed.
		if len(data) >= codecTrailerLen {
			body := data[:len(data)-codecTrailerLen]
			checkDecodeCanonical(t, binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli)))
		}
	})
}

func checkDecodeCanonical(t *testing.T, data []byte) {
	bs, err := Decode(data)
	if err != nil {
		return
	}
	again, err := Encode(bs)
	if err != nil {
		t.Fatalf("decoded bindings do not encode: %v", err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("re-encoding differs:\n in  %x\n out %x", data, again)
	}
	if err := New(Config{}).Load(bs); err != nil {
		t.Fatalf("decoded bindings do not load: %v", err)
	}
}
