package proto

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Header errors. Each means the frame cannot be answered at all, so the
// caller closes the connection, as Apache Kafka does.
var (
	ErrTruncatedHeader = errors.New("proto: truncated request header")
	ErrBadHeader       = errors.New("proto: malformed request header")
)

// RequestHeader is a zero-copy view of a request header. ClientID aliases the
// frame it was parsed from and is valid only as long as the frame is.
type RequestHeader struct {
	APIKey        kmsg.Key
	APIVersion    int16
	CorrelationID int32
	// ClientID is nil for a null client id.
	ClientID []byte
	// Flexible reports whether the request (and so its header) uses the
	// flexible encoding: header v2, compact strings, tagged fields.
	Flexible bool
	// BodyOffset is where the request body starts in the frame.
	BodyOffset int
}

// KnownKey reports whether key is an API key this package has a version
// table for (a key kmsg knows).
func KnownKey(key kmsg.Key) bool {
	return key >= 0 && int(key) < len(flexibleFrom) && flexibleFrom[key] != notAnAPI
}

// ParseRequestHeader parses the header at the start of frame. It never
// allocates. An unknown API key parses (its header is v1-shaped for every
// version) so the caller can log it before closing; its Flexible is false.
func ParseRequestHeader(frame []byte) (RequestHeader, error) {
	var h RequestHeader
	if len(frame) < 8 {
		return h, ErrTruncatedHeader
	}
	r := kbin.Reader{Src: frame}
	h.APIKey = kmsg.Key(r.Int16())
	h.APIVersion = r.Int16()
	h.CorrelationID = r.Int32()
	pos := 8
	if len(frame) < pos+2 {
		return h, ErrTruncatedHeader
	}
	n := int(r.Int16())
	pos += 2
	switch {
	case n == -1:
		h.ClientID = nil
	case n < -1:
		return h, fmt.Errorf("%w: client id length %d", ErrBadHeader, n)
	default:
		if len(frame) < pos+n {
			return h, ErrTruncatedHeader
		}
		h.ClientID = frame[pos : pos+n : pos+n]
		pos += n
	}
	h.Flexible = IsFlexible(h.APIKey, h.APIVersion)
	if h.Flexible {
		end, err := skipTags(frame, pos)
		if err != nil {
			return h, err
		}
		pos = end
	}
	h.BodyOffset = pos
	return h, nil
}

// skipTags skips a tagged-field section starting at pos and returns the
// position after it.
func skipTags(b []byte, pos int) (int, error) {
	count, pos, err := readUvarint(b, pos)
	if err != nil {
		return 0, err
	}
	for i := uint64(0); i < count; i++ {
		if _, pos, err = readUvarint(b, pos); err != nil { // tag
			return 0, err
		}
		var size uint64
		if size, pos, err = readUvarint(b, pos); err != nil {
			return 0, err
		}
		if size > uint64(len(b)-pos) {
			return 0, ErrTruncatedHeader
		}
		pos += int(size)
	}
	return pos, nil
}

func readUvarint(b []byte, pos int) (uint64, int, error) {
	v, n := kbin.Uvarint(b[pos:])
	switch {
	case n == 0:
		return 0, 0, ErrTruncatedHeader
	case n < 0: // Kafka's unsigned varints are at most 32 bits (5 bytes).
		return 0, 0, fmt.Errorf("%w: varint overflow", ErrBadHeader)
	}
	return uint64(v), pos + n, nil
}

// ResponseHeaderSize is the size of the response header (correlation id, and
// the empty tag buffer for header v1) that AppendResponseHeader writes.
func ResponseHeaderSize(h *RequestHeader) int {
	if responseHeaderFlexible(h) {
		return 5
	}
	return 4
}

// AppendResponseHeader appends the response header answering h.
func AppendResponseHeader(dst []byte, h *RequestHeader) []byte {
	dst = kbin.AppendInt32(dst, h.CorrelationID)
	if responseHeaderFlexible(h) {
		dst = append(dst, 0) // no tagged fields
	}
	return dst
}

func responseHeaderFlexible(h *RequestHeader) bool {
	// ApiVersions responses always use header v0 (KIP-511), so that a client
	// can read the error even when we do not support its version.
	return h.Flexible && h.APIKey != kmsg.ApiVersions
}
