package quorum

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func sampleHandshake() *handshake {
	return &handshake{Version: protocolVersion, ClusterID: "MkU3OEVBNTcwNTJENDM2Qk", From: 2, To: 1, Instance: 0xfeedface,
		Voters: []Voter{{1, "10.0.0.1:9093"}, {2, "10.0.0.2:9093"}, {3, "[::1]:9093"}}}
}

func TestHandshakeRoundTrip(t *testing.T) {
	for _, h := range []*handshake{sampleHandshake(), {Version: protocolVersion, ClusterID: "c", From: 1, To: 2}} {
		p := appendHandshake(nil, h)
		got, err := decodeHandshake(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(appendHandshake(nil, &got), p) || got.ClusterID != h.ClusterID || len(got.Voters) != len(h.Voters) {
			t.Fatalf("round trip of %+v gave %+v", h, got)
		}
	}
}

func TestHandshakeDecodeRejects(t *testing.T) {
	good := appendHandshake(nil, sampleHandshake())
	unsorted := sampleHandshake()
	unsorted.Voters[0], unsorted.Voters[1] = unsorted.Voters[1], unsorted.Voters[0]
	dup := sampleHandshake()
	dup.Voters[1].ID = 1
	for _, tc := range []struct {
		name, want string
		p          []byte
	}{
		{"empty", "bad magic", nil},
		{"bad magic", "bad magic", []byte("HTTP/1.1 200")},
		{"no version", "no version", []byte("RBQT\x00")},
		{"version", "version 2", []byte("RBQT\x00\x02rest")},
		{"truncated", "truncated", good[:len(good)-1]},
		{"trailing", "trailing", append(append([]byte(nil), good...), 0)},
		{"unsorted voters", "ascending", appendHandshake(nil, unsorted)},
		{"duplicate voters", "ascending", appendHandshake(nil, dup)},
		// A count of 2^31-1 voters in a few bytes: refused before any
		// allocation for it.
		{"huge count", "truncated", append(appendHandshake(nil, &handshake{Version: protocolVersion, ClusterID: "c"})[:4+2+3+24], 0x7f, 0xff, 0xff, 0xff)},
	} {
		_, err := decodeHandshake(tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestReadFrame(t *testing.T) {
	frames := appendEmptyFrame(nil, framePing)
	frames = appendRPCRequest(frames, &rpcRequest{Correlation: 9, Key: 1, Version: 2, Body: []byte("body")})
	frames = appendRPCResponse(frames, &rpcResponse{Correlation: 9, ErrCode: rpcErrHandler, ErrMessage: "no", Body: nil})
	r := bytes.NewReader(frames)
	typ, p, err := readFrame(r, 1<<10, nil)
	if err != nil || typ != framePing || len(p) != 0 {
		t.Fatalf("ping: %d %q %v", typ, p, err)
	}
	typ, p, err = readFrame(r, 1<<10, nil)
	q, qerr := decodeRPCRequest(p)
	if err != nil || qerr != nil || typ != frameRPCRequest || q.Correlation != 9 || q.Key != 1 || q.Version != 2 || string(q.Body) != "body" {
		t.Fatalf("request: %d %+v %v %v", typ, q, err, qerr)
	}
	typ, p, err = readFrame(r, 1<<10, nil)
	s, serr := decodeRPCResponse(p)
	if err != nil || serr != nil || typ != frameRPCResponse || s.ErrCode != rpcErrHandler || s.ErrMessage != "no" || len(s.Body) != 0 {
		t.Fatalf("response: %d %+v %v %v", typ, s, err, serr)
	}
	if _, _, err := readFrame(r, 1<<10, nil); err != io.EOF {
		t.Fatalf("at the end: %v, want EOF", err)
	}

	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty frame", []byte{0, 0, 0, 0}, errFrameEmpty},
		{"too large", []byte{0, 0, 4, 1, 1}, &frameTooLargeError{}},
		{"torn header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"torn payload", []byte{0, 0, 0, 9, frameRaft, 1, 2}, io.ErrUnexpectedEOF},
		{"no type", []byte{0, 0, 0, 1}, io.ErrUnexpectedEOF},
	} {
		_, _, err := readFrame(bytes.NewReader(tc.in), 1<<10, nil)
		var tooLarge *frameTooLargeError
		if errors.As(tc.want, &tooLarge) {
			if !errors.As(err, &tooLarge) {
				t.Errorf("%s: got %v, want frame too large", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}

	// A header claiming the maximum followed by a few bytes costs one
	// read chunk, not the claimed length.
	claim := []byte{0, 0x40, 0, 0, frameRaft, 1, 2, 3}
	allocs := testing.AllocsPerRun(10, func() {
		_, _, _ = readFrame(bytes.NewReader(claim), 16<<20, nil)
	})
	if allocs > 4 {
		t.Fatalf("%v allocations for a torn 4 MiB frame", allocs)
	}
}

func TestMarshalRaftBound(t *testing.T) {
	m := &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: proto.Uint64(2), From: proto.Uint64(1),
		Entries: []*raftpb.Entry{{Data: make([]byte, 2000)}}}
	if _, err := marshalRaft(nil, m, 1000); err == nil {
		t.Fatal("a message over the frame cap was framed")
	}
	out, err := marshalRaft([]byte("x"), m, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	typ, p, err := readFrame(bytes.NewReader(out[1:]), 1<<20, nil)
	if err != nil || typ != frameRaft {
		t.Fatal(typ, err)
	}
	var got raftpb.Message
	if err := proto.Unmarshal(p, &got); err != nil || !proto.Equal(&got, m) {
		t.Fatalf("raft frame decoded to %v, %v", &got, err)
	}
}

// FuzzFrame reads a stream of frames and decodes each payload by its
// type: no panic, no payload past the cap, no buffer past the bytes
// received plus one read chunk, and every payload that decodes encodes
// back to the same bytes.
func FuzzFrame(f *testing.F) {
	f.Add(appendEmptyFrame(nil, framePing))
	f.Add(appendRPCRequest(nil, &rpcRequest{Correlation: 1, Key: 2, Version: 3, Body: []byte("x")}))
	f.Add(appendRPCResponse(nil, &rpcResponse{Correlation: 1, ErrCode: 1, ErrMessage: "e", Body: []byte("y")}))
	refuse, start := beginFrame(nil, frameRefuse)
	f.Add(endFrame(appendRefuse(refuse, RefuseVoters, "voters differ"), start))
	accept, start := beginFrame(nil, frameAccept)
	f.Add(endFrame(appendAccept(accept, 7), start))
	raft, _ := marshalRaft(nil, heartbeat(1, 2, 3), 1<<16)
	f.Add(raft)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0, 0x10, 0, 0, frameRaft})
	const maxFrame = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		for range len(data) + 1 {
			typ, p, err := readFrame(r, maxFrame, buf)
			if err != nil {
				return
			}
			if len(p)+1 > maxFrame || cap(p) > max(cap(buf), len(data)+frameReadChunk) {
				t.Fatalf("payload of %d bytes (cap %d) from %d input bytes", len(p), cap(p), len(data))
			}
			buf = p[:0]
			switch typ {
			case frameRPCRequest:
				if q, err := decodeRPCRequest(p); err == nil {
					if out := appendRPCRequest(nil, &q); !bytes.Equal(out[frameHeaderLen:], p) {
						t.Fatalf("request %+v re-encodes differently", q)
					}
				}
			case frameRPCResponse:
				if s, err := decodeRPCResponse(p); err == nil && len(s.ErrMessage) <= stringMax {
					if out := appendRPCResponse(nil, &s); !bytes.Equal(out[frameHeaderLen:], p) {
						t.Fatalf("response %+v re-encodes differently", s)
					}
				}
			case frameRefuse:
				if code, reason, err := decodeRefuse(p); err == nil && len(reason) <= stringMax {
					if out := appendRefuse(nil, code, reason); !bytes.Equal(out, p) {
						t.Fatalf("refusal %d %q re-encodes differently", code, reason)
					}
					_ = code.String()
				}
			case frameAccept:
				if v, inst, err := decodeAccept(p); err == nil && v == protocolVersion {
					if out := appendAccept(nil, inst); !bytes.Equal(out, p) {
						t.Fatalf("accept re-encodes differently")
					}
				}
			case frameRaft:
				var m raftpb.Message
				_ = proto.Unmarshal(p, &m)
			case frameHandshake:
				_, _ = decodeHandshake(p)
			}
		}
	})
}

// FuzzHandshake decodes handshake payloads: no panic, no more voters than
// the bytes can hold, and what decodes encodes back to the same bytes.
func FuzzHandshake(f *testing.F) {
	f.Add(appendHandshake(nil, sampleHandshake()))
	f.Add(appendHandshake(nil, &handshake{Version: protocolVersion, ClusterID: "c"}))
	f.Add([]byte("RBQT\x00\x01\x00\x01c"))
	f.Add([]byte("RBQT\x00\x02"))
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := decodeHandshake(p)
		if err != nil {
			return
		}
		if len(h.Voters) > len(p)/10 || len(h.Voters) > votersMax {
			t.Fatalf("%d voters from %d bytes", len(h.Voters), len(p))
		}
		if out := appendHandshake(nil, &h); !bytes.Equal(out, p) {
			t.Fatalf("handshake %+v re-encodes differently", h)
		}
		_ = votersString(h.Voters)
	})
}
