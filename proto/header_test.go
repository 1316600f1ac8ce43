package proto

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// encodeRequest builds a frame (no length prefix) the way a client would.
func encodeRequest(req kmsg.Request, correlationID int32, clientID *string) []byte {
	var b []byte
	b = append(b, byte(req.Key()>>8), byte(req.Key()))
	v := req.GetVersion()
	b = append(b, byte(v>>8), byte(v))
	b = append(b, byte(correlationID>>24), byte(correlationID>>16), byte(correlationID>>8), byte(correlationID))
	if clientID == nil {
		b = append(b, 0xff, 0xff)
	} else {
		b = append(b, byte(len(*clientID)>>8), byte(len(*clientID)))
		b = append(b, *clientID...)
	}
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

func TestParseRequestHeader(t *testing.T) {
	id := "client-1"
	cases := []struct {
		name     string
		req      kmsg.Request
		clientID *string
		flexible bool
	}{
		{"api_versions_v0", &kmsg.ApiVersionsRequest{Version: 0}, &id, false},
		{"api_versions_v3", &kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "x", ClientSoftwareVersion: "1"}, &id, true},
		{"metadata_v1_null_client", &kmsg.MetadataRequest{Version: 1}, nil, false},
		{"metadata_v12", &kmsg.MetadataRequest{Version: 12}, &id, true},
		{"produce_v9", &kmsg.ProduceRequest{Version: 9}, &id, true},
		{"fetch_v4", &kmsg.FetchRequest{Version: 4}, &id, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frame := encodeRequest(tc.req, 77, tc.clientID)
			h, err := ParseRequestHeader(frame)
			if err != nil {
				t.Fatal(err)
			}
			if h.APIKey.Int16() != tc.req.Key() || h.APIVersion != tc.req.GetVersion() || h.CorrelationID != 77 {
				t.Fatalf("header = %+v", h)
			}
			if h.Flexible != tc.flexible {
				t.Fatalf("flexible = %v, want %v", h.Flexible, tc.flexible)
			}
			if (tc.clientID == nil) != (h.ClientID == nil) || (tc.clientID != nil && string(h.ClientID) != *tc.clientID) {
				t.Fatalf("client id = %q", h.ClientID)
			}
			body := tc.req.AppendTo(nil)
			if !bytes.Equal(frame[h.BodyOffset:], body) {
				t.Fatalf("body offset %d wrong", h.BodyOffset)
			}
		})
	}
}

func TestParseRequestHeaderErrors(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrTruncatedHeader},
		{"short", []byte{0, 18, 0, 3, 0, 0}, ErrTruncatedHeader},
		{"no_client_id_len", []byte{0, 18, 0, 0, 0, 0, 0, 1}, ErrTruncatedHeader},
		{"client_id_cut", []byte{0, 18, 0, 0, 0, 0, 0, 1, 0, 5, 'a'}, ErrTruncatedHeader},
		{"negative_client_id", []byte{0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xfe}, ErrBadHeader},
		{"tags_missing", []byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 0}, ErrTruncatedHeader},
		{"tag_size_past_end", []byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 1, 0, 9}, ErrTruncatedHeader},
		{"varint_overflow", []byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrBadHeader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRequestHeader(tc.frame)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestResponseHeader(t *testing.T) {
	h := RequestHeader{APIKey: kmsg.Metadata, APIVersion: 12, CorrelationID: 0x01020304, Flexible: true}
	got := AppendResponseHeader(nil, &h)
	if !bytes.Equal(got, []byte{1, 2, 3, 4, 0}) || ResponseHeaderSize(&h) != 5 {
		t.Fatalf("flexible header = %v", got)
	}
	h.APIKey = kmsg.ApiVersions // KIP-511: always header v0
	got = AppendResponseHeader(nil, &h)
	if !bytes.Equal(got, []byte{1, 2, 3, 4}) || ResponseHeaderSize(&h) != 4 {
		t.Fatalf("api versions header = %v", got)
	}
}

func TestFlexibleTable(t *testing.T) {
	if !IsFlexible(kmsg.Metadata, 9) || IsFlexible(kmsg.Metadata, 8) {
		t.Fatal("metadata flexible from v9")
	}
	if !IsFlexible(kmsg.ApiVersions, 3) || IsFlexible(kmsg.ApiVersions, 2) {
		t.Fatal("api versions flexible from v3")
	}
	if KnownKey(9999) || KnownKey(-1) || kmsg.Key(9999).Name() != "Unknown" || kmsg.Key(0).Name() != "Produce" {
		t.Fatal("unknown keys")
	}
}

func TestParseRequestHeaderAllocs(t *testing.T) {
	id := "c"
	frame := encodeRequest(&kmsg.MetadataRequest{Version: 12}, 1, &id)
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseRequestHeader(frame) }); n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}

// FuzzParseRequestHeader: never panics; a parsed header's body offset lies
// within the frame; the client id aliases the frame.
func FuzzParseRequestHeader(f *testing.F) {
	id := "seed"
	f.Add(encodeRequest(&kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "a", ClientSoftwareVersion: "b"}, 1, &id))
	f.Add(encodeRequest(&kmsg.MetadataRequest{Version: 1}, 2, nil))
	f.Add([]byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 1, 0, 9})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, err := ParseRequestHeader(frame)
		if err != nil {
			return
		}
		if h.BodyOffset < 10 || h.BodyOffset > len(frame) {
			t.Fatalf("body offset %d outside frame of %d", h.BodyOffset, len(frame))
		}
		if len(h.ClientID) > 0 && &h.ClientID[0] != &frame[10] {
			t.Fatal("client id does not alias the frame")
		}
	})
}
