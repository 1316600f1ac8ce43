//go:build linux

package integration

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPipelining: one connection writes 1,000 requests (ApiVersions v3 and Metadata v9
// alternating, both with flexible request headers) before reading anything; every
// response must come back in request order with its correlation id and decode.
func TestPipelining(t *testing.T) {
	const requests = 1000
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		conn := dial(t, b.Addr)

		var wire []byte
		for i := range requests {
			if i%2 == 0 {
				wire = appendRequest(wire, apiVersionsRequest(3), correlationFor(i))
			} else {
				wire = appendRequest(wire, metadataRequest(9), correlationFor(i))
			}
		}

		// One Write of everything, from a goroutine so that a broker that stops reading
		// (its bound on in-flight requests) cannot deadlock the test against its own
		// unread responses. Reading starts only when the write finished, or after 3 s:
		// either way the broker first sees a deep pipeline.
		start := time.Now()
		_ = conn.SetDeadline(start.Add(20 * time.Second))
		writeDone := make(chan error, 1)
		go func() {
			_, err := conn.Write(wire)
			writeDone <- err
		}()
		var writeErr error
		writeFinished := false
		select {
		case writeErr = <-writeDone:
			writeFinished = true
		case <-time.After(3 * time.Second):
		}
		if writeErr != nil {
			t.Fatalf("writing %d pipelined requests (%d bytes): %v", requests, len(wire), writeErr)
		}
		t.Logf("wrote %d requests (%d bytes) in one write; write finished before reading: %v", requests, len(wire), writeFinished)

		for i := range requests {
			payload, err := readFrame(conn)
			if err != nil {
				t.Fatalf("response %d of %d: %v", i, requests, err)
			}
			var resp kmsg.Response
			if i%2 == 0 {
				resp = &kmsg.ApiVersionsResponse{Version: 3}
			} else {
				resp = &kmsg.MetadataResponse{Version: 9}
			}
			corr, body, err := splitResponse(payload, resp)
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			if corr != correlationFor(i) {
				t.Fatalf("response %d has correlation id %d, want %d (responses out of order)", i, corr, correlationFor(i))
			}
			if err := resp.ReadFrom(body); err != nil {
				t.Fatalf("response %d (%s v%d, correlation id %d) does not decode: %v", i, kmsg.NameForKey(resp.Key()), resp.GetVersion(), corr, err)
			}
			switch r := resp.(type) {
			case *kmsg.ApiVersionsResponse:
				if r.ErrorCode != 0 {
					t.Fatalf("response %d: ApiVersions error code %d", i, r.ErrorCode)
				}
			case *kmsg.MetadataResponse:
				if len(r.Brokers) != 1 || r.Brokers[0].NodeID != 0 {
					t.Fatalf("response %d: Metadata brokers %+v, want node 0", i, r.Brokers)
				}
			}
		}
		if !writeFinished {
			if err := <-writeDone; err != nil {
				t.Fatalf("pipelined write: %v", err)
			}
		}
		t.Logf("%d pipelined round trips in %v", requests, time.Since(start).Round(time.Millisecond))

		// Nothing extra may follow the last response.
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var extra [1]byte
		if n, _ := conn.Read(extra[:]); n != 0 {
			t.Errorf("broker sent bytes after the %d-th response", requests)
		}
	})
}

// correlationFor spreads correlation ids so an off-by-one or a reordering cannot
// accidentally match.
func correlationFor(i int) int32 { return int32(7_000_000 + 3*i) }
