package quota

import (
	"bytes"
	"testing"
)

// FuzzDecodeSet: Decode never panics, and what it accepts re-encodes to the
// same bytes (the encoding is canonical).
func FuzzDecodeSet(f *testing.F) {
	var s Set
	_, _, changes := s.Alter([]Alteration{
		{Types: []string{TypeUser, TypeClientID}, Names: []*string{str("alice"), nil}, Ops: []Op{{Key: KeyProducerByteRate, Value: 1024}}},
		{Types: []string{TypeIP}, Names: []*string{nil}, Ops: []Op{{Key: KeyConnectionCreationRate, Value: 5}}},
	})
	seed, err := s.Apply(changes...).Encode()
	if err != nil {
		f.Fatal(err)
	}
	empty, _ := Set{}.Encode()
	f.Add(seed)
	f.Add(empty)
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Decode(data)
		if err != nil {
			return
		}
		again, err := set.Encode()
		if err != nil {
			t.Fatalf("decoded set does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n% x\n% x", again, data)
		}
	})
}
