package quorum

// Frames of the quorum transport (transport.go): the wire format between
// the nodes of the metadata quorum, and between brokers and the controller.
//
// Every frame is a 4-byte big-endian length, a 1-byte type and a payload;
// the length counts the type byte and the payload (not itself), like a
// Kafka request's size:
//
//	 0        4    5
//	+--------+----+---------------------------+
//	| length |type| payload (length-1 bytes)  |
//	+--------+----+---------------------------+
//	  1 <= length <= max frame (16 MiB by default; 64 KiB before the
//	  handshake is accepted)
//
// The first frame on a connection is the dialer's handshake; the acceptor
// answers with an accept or a refuse frame, and after an accept the dialer
// sends raft messages, RPC requests and pings, the acceptor RPC responses
// and pongs. A connection carries one direction of raft traffic: each node
// dials each peer for the messages it sends (as etcd's rafthttp streams
// do), so a connection never needs a tie-break between two dialers.
//
// Payloads (integers big-endian; a string is an int16 length and bytes, a
// bytes field an int32 length and bytes, an array an int32 count; the
// primitives of proto.Reader/Writer in classic encoding):
//
//	handshake  magic "RBQT", version int16, cluster id string,
//	           sender id int64, receiver id int64, sender instance int64,
//	           voters [id int64, addr string] (ids strictly ascending)
//	accept     version int16, acceptor instance int64
//	refuse     code int16, reason string
//	raft       proto.Marshal of a raftpb.Message
//	rpc req    correlation id int64, api key int16, api version int16,
//	           body bytes
//	rpc resp   correlation id int64, error code int16, error string,
//	           body bytes
//	ping/pong  empty
//
// Every decoder here is bounded by its input: a length or count is checked
// against the bytes present before anything is allocated for it, and a
// frame's payload buffer grows with the bytes that actually arrive, not
// with the length its header claims.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	wire "github.com/ringbroker/ringbroker/proto"
)

// Frame types.
const (
	frameHandshake   byte = 1
	frameAccept      byte = 2
	frameRefuse      byte = 3
	frameRaft        byte = 4
	frameRPCRequest  byte = 5
	frameRPCResponse byte = 6
	framePing        byte = 7
	framePong        byte = 8
)

const (
	// frameHeaderLen is the length prefix plus the type byte.
	frameHeaderLen = 5
	// handshakeFrameMax bounds every frame read before a handshake is
	// accepted (the handshake and its answer), so a stranger on the port
	// costs at most this much memory, not MaxFrame.
	handshakeFrameMax = 64 << 10
	// frameReadChunk is how far a payload buffer grows ahead of the bytes
	// received: a header claiming 16 MiB followed by 10 bytes costs one
	// chunk, not 16 MiB.
	frameReadChunk = 256 << 10
	// protocolVersion is the transport protocol this code speaks.
	protocolVersion int16 = 1
	// handshakeMagic opens every handshake, so a stray client (an HTTP
	// probe, a Kafka client on the wrong port) is told apart from a peer
	// with another protocol version.
	handshakeMagic = "RBQT"
	// stringMax is the longest string field the encoders write (cluster
	// id, addresses, reasons): an int16 length leaves room, and the
	// handshake stays far below handshakeFrameMax.
	stringMax = 1024
	// votersMax bounds the voter list of a handshake.
	votersMax = 1024
	// rpcRequestOverhead and rpcResponseOverhead are the payload bytes
	// around an RPC body (with an empty error string for a response).
	rpcRequestOverhead  = 8 + 2 + 2 + 4
	rpcResponseOverhead = 8 + 2 + 2 + 4
)

// errFrameEmpty and frameTooLargeError are the protocol errors of
// readFrame: both end the connection.
var errFrameEmpty = errors.New("quorum transport: frame with length 0 (no type byte)")

type frameTooLargeError struct{ length, max int }

func (e *frameTooLargeError) Error() string {
	return fmt.Sprintf("quorum transport: frame of %d bytes exceeds the maximum of %d", e.length, e.max)
}

// readFrame reads one frame from r and returns its type and payload. The
// payload is read into buf when it fits (buf's capacity is reused), and into
// a buffer grown frameReadChunk at a time otherwise. A length above max
// (or 0) is a protocol error, returned before any payload is read.
func readFrame(r io.Reader, max int, buf []byte) (typ byte, payload []byte, err error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return 0, nil, err
	}
	length := int(binary.BigEndian.Uint32(hdr[:4]))
	switch {
	case length == 0:
		return 0, nil, errFrameEmpty
	case length > max:
		return 0, nil, &frameTooLargeError{length: length, max: max}
	}
	if _, err := io.ReadFull(r, hdr[4:5]); err != nil {
		return 0, nil, noEOF(err)
	}
	n := length - 1
	if n <= cap(buf) {
		payload = buf[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return 0, nil, noEOF(err)
		}
		return hdr[4], payload, nil
	}
	payload = buf[:0]
	for len(payload) < n {
		step := min(n-len(payload), frameReadChunk)
		payload = append(payload, make([]byte, step)...)
		if _, err := io.ReadFull(r, payload[len(payload)-step:]); err != nil {
			return 0, nil, noEOF(err)
		}
	}
	return hdr[4], payload, nil
}

// noEOF turns an EOF inside a frame into ErrUnexpectedEOF: only an EOF
// between frames is a clean end.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// beginFrame appends a frame header with a placeholder length; endFrame
// patches the length once the payload is appended after it.
func beginFrame(dst []byte, typ byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0, typ), len(dst)
}

func endFrame(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// appendEmptyFrame appends a frame with no payload (ping, pong).
func appendEmptyFrame(dst []byte, typ byte) []byte {
	return append(dst, 0, 0, 0, 1, typ)
}

// Voter is one member of the voter set as the handshake carries it.
type Voter struct {
	ID   uint64
	Addr string // host:port
}

func (v Voter) String() string { return fmt.Sprintf("%d@%s", v.ID, v.Addr) }

// handshake is the dialer's first frame.
type handshake struct {
	Version   int16
	ClusterID string
	From      uint64 // sender node id
	To        uint64 // the node id the sender expects to reach
	Instance  uint64 // random per Transport: tells a reconnect from a second node with the same id
	Voters    []Voter
}

// errBadMagic means the first frame is not a handshake of this protocol.
var errBadMagic = errors.New("not a ringbroker quorum transport handshake (bad magic)")

// malformedError is a payload that does not decode.
type malformedError struct{ what string }

func (e *malformedError) Error() string { return "malformed " + e.what }

// versionError is a handshake of a protocol version this code does not
// speak; the rest of the payload is not decoded.
type versionError struct{ got int16 }

func (e *versionError) Error() string {
	return fmt.Sprintf("unsupported transport protocol version %d (this node speaks %d)", e.got, protocolVersion)
}

// appendHandshake appends a handshake payload. REQUIRES: strings of at
// most stringMax bytes and voters sorted by id (the Transport validates
// its config so).
func appendHandshake(dst []byte, h *handshake) []byte {
	w := wire.Writer{B: append(dst, handshakeMagic...)}
	w.Int16(h.Version)
	w.String(h.ClusterID)
	w.Int64(int64(h.From))
	w.Int64(int64(h.To))
	w.Int64(int64(h.Instance))
	w.ArrayLen(len(h.Voters))
	for _, v := range h.Voters {
		w.Int64(int64(v.ID))
		w.String(v.Addr)
	}
	return w.B
}

// decodeHandshake decodes a handshake payload. It accepts only the
// canonical form (ids strictly ascending, nothing left over), so encoding
// what it returns gives back the same bytes.
func decodeHandshake(p []byte) (handshake, error) {
	var h handshake
	r := wire.NewReader(p, false)
	if m := r.Span(len(handshakeMagic)); !r.Ok() || string(m) != handshakeMagic {
		return h, errBadMagic
	}
	h.Version = r.Int16()
	if !r.Ok() {
		return h, &malformedError{"handshake: no version"}
	}
	if h.Version != protocolVersion {
		return h, &versionError{got: h.Version}
	}
	h.ClusterID = string(r.String())
	h.From = uint64(r.Int64())
	h.To = uint64(r.Int64())
	h.Instance = uint64(r.Int64())
	n := r.NullableArrayLen(8 + 2) // id + empty address
	if n < 0 {
		return h, &malformedError{"handshake: null or negative voter count"}
	}
	if n > votersMax {
		return h, &malformedError{fmt.Sprintf("handshake: %d voters (at most %d)", n, votersMax)}
	}
	if n > 0 {
		h.Voters = make([]Voter, 0, n)
	}
	for i := 0; i < n && r.Ok(); i++ {
		v := Voter{ID: uint64(r.Int64()), Addr: string(r.String())}
		if i > 0 && v.ID <= h.Voters[i-1].ID {
			return h, &malformedError{"handshake: voter ids not strictly ascending"}
		}
		h.Voters = append(h.Voters, v)
	}
	if !r.Complete() {
		return h, &malformedError{"handshake: truncated or trailing bytes"}
	}
	return h, nil
}

// appendAccept appends an accept payload.
func appendAccept(dst []byte, instance uint64) []byte {
	w := wire.Writer{B: dst}
	w.Int16(protocolVersion)
	w.Int64(int64(instance))
	return w.B
}

// decodeAccept decodes an accept payload.
func decodeAccept(p []byte) (version int16, instance uint64, err error) {
	r := wire.NewReader(p, false)
	version = r.Int16()
	instance = uint64(r.Int64())
	if !r.Complete() {
		return 0, 0, &malformedError{"accept"}
	}
	return version, instance, nil
}

// RefuseCode says why an acceptor refused a handshake.
type RefuseCode int16

// Refusal codes. A new code only ever gets a new number.
const (
	RefuseMalformed    RefuseCode = 1 // not a valid handshake (garbage, bad magic, truncated)
	RefuseVersion      RefuseCode = 2 // unsupported protocol version
	RefuseClusterID    RefuseCode = 3 // the sender belongs to another cluster
	RefuseWrongNode    RefuseCode = 4 // the sender expected another node id at this address
	RefuseVoters       RefuseCode = 5 // the voter sets differ
	RefuseUnknownPeer  RefuseCode = 6 // the sender id is not a peer of this node
	RefuseDuplicateID  RefuseCode = 7 // another process with the sender's id is connected
	RefuseTooManyConns RefuseCode = 8 // the inbound connection cap is reached
	RefuseClosing      RefuseCode = 9 // the acceptor is shutting down
)

var refuseNames = [...]string{
	RefuseMalformed:    "malformed handshake",
	RefuseVersion:      "protocol version",
	RefuseClusterID:    "cluster id mismatch",
	RefuseWrongNode:    "wrong node id",
	RefuseVoters:       "voter set mismatch",
	RefuseUnknownPeer:  "unknown peer",
	RefuseDuplicateID:  "duplicate node id",
	RefuseTooManyConns: "too many connections",
	RefuseClosing:      "closing",
}

func (c RefuseCode) String() string {
	if c > 0 && int(c) < len(refuseNames) {
		return refuseNames[c]
	}
	return fmt.Sprintf("refusal code %d", int16(c))
}

// appendRefuse appends a refuse payload, the reason cut to stringMax.
func appendRefuse(dst []byte, code RefuseCode, reason string) []byte {
	w := wire.Writer{B: dst}
	w.Int16(int16(code))
	w.String(truncate(reason, stringMax))
	return w.B
}

// decodeRefuse decodes a refuse payload.
func decodeRefuse(p []byte) (RefuseCode, string, error) {
	r := wire.NewReader(p, false)
	code := RefuseCode(r.Int16())
	reason := string(r.String())
	if !r.Complete() {
		return 0, "", &malformedError{"refusal"}
	}
	return code, reason, nil
}

// rpcRequest is a decoded RPC request; Body aliases the frame payload.
type rpcRequest struct {
	Correlation uint64
	Key         int16
	Version     int16
	Body        []byte
}

// appendRPCRequest appends a whole RPC request frame.
func appendRPCRequest(dst []byte, q *rpcRequest) []byte {
	dst, start := beginFrame(dst, frameRPCRequest)
	w := wire.Writer{B: dst}
	w.Int64(int64(q.Correlation))
	w.Int16(q.Key)
	w.Int16(q.Version)
	w.Int32(int32(len(q.Body)))
	w.B = append(w.B, q.Body...)
	return endFrame(w.B, start)
}

// decodeRPCRequest decodes an RPC request payload.
func decodeRPCRequest(p []byte) (rpcRequest, error) {
	r := wire.NewReader(p, false)
	q := rpcRequest{Correlation: uint64(r.Int64()), Key: r.Int16(), Version: r.Int16()}
	q.Body = r.Span(int(r.Int32()))
	if !r.Complete() {
		return rpcRequest{}, &malformedError{"rpc request"}
	}
	return q, nil
}

// RPC response error codes (0 is success).
const (
	rpcErrHandler   int16 = 1 // OnRPC returned an error
	rpcErrBusy      int16 = 2 // the connection's in-flight RPC cap is reached
	rpcErrNoHandler int16 = 3 // the node serves no RPCs
	rpcErrTooLarge  int16 = 4 // the response does not fit a frame
)

// rpcResponse is a decoded RPC response; Body aliases the frame payload.
type rpcResponse struct {
	Correlation uint64
	ErrCode     int16
	ErrMessage  string
	Body        []byte
}

// appendRPCResponse appends a whole RPC response frame, the error message
// cut to stringMax.
func appendRPCResponse(dst []byte, s *rpcResponse) []byte {
	dst, start := beginFrame(dst, frameRPCResponse)
	w := wire.Writer{B: dst}
	w.Int64(int64(s.Correlation))
	w.Int16(s.ErrCode)
	w.String(truncate(s.ErrMessage, stringMax))
	w.Int32(int32(len(s.Body)))
	w.B = append(w.B, s.Body...)
	return endFrame(w.B, start)
}

// decodeRPCResponse decodes an RPC response payload.
func decodeRPCResponse(p []byte) (rpcResponse, error) {
	r := wire.NewReader(p, false)
	s := rpcResponse{Correlation: uint64(r.Int64()), ErrCode: r.Int16(), ErrMessage: string(r.String())}
	s.Body = r.Span(int(r.Int32()))
	if !r.Complete() {
		return rpcResponse{}, &malformedError{"rpc response"}
	}
	return s, nil
}

// truncate cuts s to at most n bytes (possibly inside a UTF-8 sequence:
// these are log and error texts).
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
