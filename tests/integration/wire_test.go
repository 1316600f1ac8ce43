//go:build linux

package integration

// Raw Kafka wire helpers for tests that must control exactly which bytes go on the
// socket (pipelining, backpressure, bad input). Requests are encoded with kmsg's
// RequestFormatter; responses are split here into header and body:
//
//	response frame:  int32 length | int32 correlation id | [tagged fields] | body
//	                                                       ^ only for flexible versions,
//	                                                         never for ApiVersions (key 18)

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testClientID is the client id every raw request carries.
const testClientID = "ringbroker-it"

var formatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID(testClientID))

// appendRequest appends one length-prefixed request frame to dst.
//
// kmsg's AppendRequest writes the length at dst[0:4], i.e. it only works on an empty
// dst, so the frame is encoded on its own and then appended.
func appendRequest(dst []byte, req kmsg.Request, correlationID int32) []byte {
	return append(dst, formatter.AppendRequest(nil, req, correlationID)...)
}

// apiVersionsRequest returns an ApiVersions request at version.
func apiVersionsRequest(version int16) *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = version
	if version >= 3 {
		req.ClientSoftwareName = "ringbroker-it"
		req.ClientSoftwareVersion = "0.0.1"
	}
	return req
}

// metadataRequest returns a Metadata request for all topics at version.
func metadataRequest(version int16) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	// Topics == nil means "all topics" from v1 on; v0 uses an empty array for that.
	if version == 0 {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	return req
}

// readFrame reads one length-prefixed frame and returns its payload.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("response frame length %d out of range", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, fmt.Errorf("response frame of %d bytes cut short: %w", n, err)
	}
	return payload, nil
}

// splitResponse returns the correlation id and the body of a response frame payload
// for a request of the given key and version.
func splitResponse(payload []byte, resp kmsg.Response) (int32, []byte, error) {
	if len(payload) < 4 {
		return 0, nil, fmt.Errorf("response of %d bytes has no correlation id", len(payload))
	}
	corr := int32(binary.BigEndian.Uint32(payload))
	body := payload[4:]
	if resp.IsFlexible() && resp.Key() != 18 {
		var err error
		if body, err = skipTaggedFields(body); err != nil {
			return corr, nil, fmt.Errorf("response header tagged fields: %w", err)
		}
	}
	return corr, body, nil
}

// skipTaggedFields skips a tagged-field section (uvarint count, then per field a
// uvarint tag, a uvarint size and size bytes).
func skipTaggedFields(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[n:]
	for range count {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < size {
			return nil, errors.New("bad tag size")
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// roundTrip writes req and decodes the response into resp (whose version must match
// req's), checking the correlation id.
func roundTrip(conn net.Conn, req kmsg.Request, resp kmsg.Response, correlationID int32, timeout time.Duration) error {
	resp.SetVersion(req.GetVersion())
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(appendRequest(nil, req, correlationID)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	payload, err := readFrame(conn)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	corr, body, err := splitResponse(payload, resp)
	if err != nil {
		return err
	}
	if corr != correlationID {
		return fmt.Errorf("correlation id %d, want %d", corr, correlationID)
	}
	if err := resp.ReadFrom(body); err != nil {
		return fmt.Errorf("decode %T v%d: %w", resp, req.GetVersion(), err)
	}
	return nil
}

// probeApiVersions dials addr and does one ApiVersions v3 round trip.
func probeApiVersions(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	return apiVersionsOn(conn, 1, timeout)
}

// apiVersionsOn does one ApiVersions v3 round trip on conn and checks the error code.
func apiVersionsOn(conn net.Conn, correlationID int32, timeout time.Duration) error {
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := roundTrip(conn, apiVersionsRequest(3), resp, correlationID, timeout); err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		return fmt.Errorf("ApiVersions v3 error code %d", resp.ErrorCode)
	}
	return nil
}

// dial opens a raw connection to the broker or fails the test.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn.(*net.TCPConn)
}

// expectClosed waits up to timeout for the peer to close conn: a read returning EOF
// or ECONNRESET. Data, a timeout or any other error is reported.
func expectClosed(conn net.Conn, timeout time.Duration) error {
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	var buf [512]byte
	n, err := conn.Read(buf[:])
	switch {
	case n > 0:
		return fmt.Errorf("broker answered %d bytes (% x) instead of closing", n, buf[:n])
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return nil
	case isTimeout(err):
		return fmt.Errorf("connection still open after %v", timeout)
	default:
		return fmt.Errorf("read: %v (want EOF or ECONNRESET)", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
