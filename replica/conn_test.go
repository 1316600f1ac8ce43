package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestConnBoundsResponse: a response frame above the bound fails the
// request before anything is allocated for it, and a peer that never
// answers fails it at the deadline.
func TestConnBoundsResponse(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := &conn{nc: client, formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")), frameBytesMax: 1 << 20}
	go func() {
		var size [4]byte
		if _, err := io.ReadFull(server, size[:]); err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, server, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
			return
		}
		binary.BigEndian.PutUint32(size[:], 1<<30)
		server.Write(size[:])
	}()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 1
	err := c.roundTrip(context.Background(), req, kmsg.NewPtrMetadataResponse(), 10*time.Second)
	if !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("oversized frame: got %v, want errFrameTooLarge", err)
	}
	if cap(c.buf) > 1<<20 {
		t.Fatalf("buffer grew to %d bytes", cap(c.buf))
	}

	silent, peer := net.Pipe()
	defer silent.Close()
	defer peer.Close()
	go io.Copy(io.Discard, peer)
	c = &conn{nc: silent, formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")), frameBytesMax: 1 << 20}
	var ne net.Error
	if err := c.roundTrip(context.Background(), req, kmsg.NewPtrMetadataResponse(), 50*time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("silent peer: got %v, want a timeout", err)
	}
	// A cancelled context interrupts a request at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.roundTrip(ctx, req, kmsg.NewPtrMetadataResponse(), time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v, want context.Canceled", err)
	}
}

// FuzzConnResponse: whatever a leader answers (framing, header tags, body)
// the fetcher's connection returns an error or a decoded response, never
// panics, and never buffers more than its bound.
func FuzzConnResponse(f *testing.F) {
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 1, 0})
	f.Add([]byte{0, 0, 0, 6, 0, 0, 0, 1, 1, 0})
	f.Add([]byte{0, 0, 0, 8, 0, 0, 0, 1, 1, 5, 200, 1})
	f.Add([]byte{127, 255, 255, 255})
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			defer server.Close()
			var size [4]byte
			if _, err := io.ReadFull(server, size[:]); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, server, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
				return
			}
			server.Write(answer)
		}()
		const bound = 1 << 16
		c := &conn{nc: client, formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID("f")), frameBytesMax: bound}
		req := kmsg.NewPtrFetchRequest()
		req.Version = 16 // flexible: the header tags are parsed
		_ = c.roundTrip(context.Background(), req, kmsg.NewPtrFetchResponse(), time.Second)
		if cap(c.buf) > bound+4096 {
			t.Fatalf("buffer grew to %d bytes, bound %d", cap(c.buf), bound)
		}
	})
}
