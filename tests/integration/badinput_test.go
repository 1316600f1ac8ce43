//go:build linux

package integration

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"
)

// requestMaxBytes is the socket.request.max.bytes the bad-input broker runs with.
const requestMaxBytes = 1 << 20

// badInputCases are byte streams a broker must answer by closing the connection (as
// Apache Kafka does), logging a line, and serving everyone else as before.
var badInputCases = []struct {
	name string
	wire []byte
	// logMust, if set, must appear in the log output the case produced.
	logMust string
}{
	{
		// Length above socket.request.max.bytes, followed by the start of a body: the
		// broker must refuse on the length alone, not wait for 2 MiB.
		name: "frame-above-max",
		wire: append(be32(2<<20), make([]byte, 4096)...),
	},
	{
		name: "negative-length",
		wire: append(be32(-16), bytes.Repeat([]byte{0x55}, 64)...),
	},
	{
		// An HTTP request: its first four bytes read as a length of ~1.2 GB.
		name: "garbage-http",
		wire: []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n\r\n"),
	},
	{
		// A frame of plausible length whose contents are junk: api key 0xdead (negative).
		name: "garbage-frame",
		wire: append(be32(64), bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 16)...),
	},
	{
		// Length 10: api key 18, version 3, correlation id 7, then a client id that
		// claims 64 bytes where none are left.
		name: "truncated-header-client-id",
		wire: append(be32(10), 0, 18, 0, 3, 0, 0, 0, 7, 0, 64),
	},
	{
		// Length 6: api key 18, version 0, and half a correlation id.
		name: "truncated-header-correlation-id",
		wire: append(be32(6), 0, 18, 0, 0, 0, 1),
	},
	{
		name: "zero-length",
		wire: be32(0),
	},
	{
		// A well-formed v1 header for API key 9999, which does not exist.
		name:    "unknown-api-key",
		wire:    frame(binary.BigEndian.AppendUint16(nil, 9999), 0, 0, 0, 0, 0, 1, 0, 1, 'x'),
		logMust: "9999",
	},
}

// TestBadInput: each malformed stream on its own connection gets that connection
// closed within 5 s and a log line; a connection opened before all of them and fresh
// connections after each keep working.
func TestBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{
			"socket.request.max.bytes": strconv.Itoa(requestMaxBytes),
		})
		bystander := dial(t, b.Addr)
		if err := apiVersionsOn(bystander, 1, rawTimeout); err != nil {
			t.Fatalf("bystander before bad input: %v", err)
		}
		for i, tc := range badInputCases {
			t.Run(tc.name, func(t *testing.T) {
				logOffset := b.LogLen()
				conn := dial(t, b.Addr)
				// A broker may close while we are still writing; that is a pass, so the
				// write error is not checked, only what reading says afterwards.
				_ = conn.SetWriteDeadline(time.Now().Add(rawTimeout))
				_, _ = conn.Write(tc.wire)
				start := time.Now()
				if err := expectClosed(conn, 5*time.Second); err != nil {
					t.Errorf("after %d bytes (% x...): %v", len(tc.wire), head(tc.wire, 16), err)
				} else {
					t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
				}

				logged := waitLog(b, logOffset, tc.logMust, 3*time.Second)
				if strings.TrimSpace(logged) == "" {
					t.Errorf("no log line for the bad input")
				} else if tc.logMust != "" && !strings.Contains(logged, tc.logMust) {
					t.Errorf("log output for the bad input does not mention %q:\n%s", tc.logMust, logged)
				} else {
					t.Logf("broker logged:\n%s", strings.TrimSpace(logged))
				}

				if !b.Alive() {
					t.Fatalf("broker died")
				}
				if err := probeApiVersions(b.Addr, rawTimeout); err != nil {
					t.Errorf("fresh connection after the bad input: %v", err)
				}
				if err := apiVersionsOn(bystander, int32(100+i), rawTimeout); err != nil {
					t.Fatalf("bystander connection after the bad input: %v", err)
				}
			})
		}
	})
}

// waitLog polls the broker output written after offset until it contains must (or,
// with must empty, anything), or timeout passes, and returns what was written.
func waitLog(b *Broker, offset int, must string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		s := b.LogsSince(offset)
		done := strings.TrimSpace(s) != "" && (must == "" || strings.Contains(s, must))
		if done || time.Now().After(deadline) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// be32 encodes a frame length (possibly negative) as Kafka's big-endian int32.
func be32(n int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }

// frame prefixes payload pieces with their total length.
func frame(prefix []byte, rest ...byte) []byte {
	payload := append(append([]byte(nil), prefix...), rest...)
	return append(be32(int32(len(payload))), payload...)
}

func head(b []byte, n int) []byte { return b[:min(n, len(b))] }
