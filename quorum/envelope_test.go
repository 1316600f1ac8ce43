package quorum

import (
	"bytes"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, e := range []envelope{
		{proposer: 1, incarnation: 0, sequence: 1, payload: nil},
		{proposer: 3, incarnation: ^uint64(0), sequence: 1 << 40, payload: []byte("record")},
		{proposer: 1 << 63, incarnation: 12345, sequence: 127, payload: []byte{0}},
	} {
		b := appendEnvelope(nil, e)
		if len(b) > envelopeHeaderMax+len(e.payload) {
			t.Fatalf("%+v: %d bytes, header bound %d", e, len(b), envelopeHeaderMax)
		}
		got, err := decodeEnvelope(b)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if got.proposer != e.proposer || got.incarnation != e.incarnation || got.sequence != e.sequence ||
			!bytes.Equal(got.payload, e.payload) {
			t.Fatalf("decoded %+v, want %+v", got, e)
		}
	}
}

func TestEnvelopeRefuses(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":          nil,
		"version 2":      {2, 1, 1, 1},
		"truncated":      {1, 1, 1},
		"overlong":       {1, 0x81, 0x00, 1, 1},
		"unterminated":   {1, 1, 1, 0x80},
		"uvarint > 2^64": {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 1},
	} {
		if _, err := decodeEnvelope(b); err == nil {
			t.Errorf("%s: decoded % x", name, b)
		}
	}
}

// FuzzEnvelope: decoding never panics, and what decodes re-encodes to the
// same bytes.
func FuzzEnvelope(f *testing.F) {
	f.Add(appendEnvelope(nil, envelope{proposer: 1, incarnation: 99, sequence: 7, payload: []byte("x")}))
	f.Add([]byte{1, 0x80, 0x00, 1, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		if again := appendEnvelope(nil, e); !bytes.Equal(again, b) {
			t.Fatalf("% x decoded to %+v re-encodes to % x", b, e, again)
		}
	})
}
