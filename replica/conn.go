package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one fetcher's connection to its leader: one request at a time
// (the fetcher is its only user), each bounded by a deadline and by the
// size of the response it accepts.
//
// Rejected: a kgo.Client per leader. kgo shards Fetch, ListOffsets and
// OffsetForLeaderEpoch by the leaders its own metadata names and picks
// request versions itself; a follower must talk to exactly the leader the
// image names, with the versions it chose, and bound what it reads.
//
// Wire format (Kafka's, big endian):
//
//	request:  | size int32 | api key int16 | version int16 | correlation id int32 |
//	          | client id (nullable string) | [tags, flexible versions] | body |
//	response: | size int32 | correlation id int32 | [tags, flexible versions
//	          | but ApiVersions] | body |
type conn struct {
	nc            net.Conn
	formatter     *kmsg.RequestFormatter
	correlationID int32
	// frameBytesMax bounds a response frame: a larger one fails the
	// connection before anything is allocated for it.
	frameBytesMax int32
	// versions are the leader's max version per API key (ApiVersions), -1
	// when it does not serve the key.
	versions []int16
	buf      []byte
}

// clientID names the fetcher in the leader's logs (Kafka's followers send
// "broker-<id>-fetcher-<n>").
func clientID(nodeID int32, fetcher int) string {
	return fmt.Sprintf("broker-%d-fetcher-%d", nodeID, fetcher)
}

// DialFunc opens a connection to another broker's inter-broker listener
// (Config.Dial): TCP, or TLS with the handshake done.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dial connects to addr (through dialFn when set, else plain TCP) and
// learns the leader's API versions.
func dial(ctx context.Context, dialFn DialFunc, addr, client string, frameBytesMax int32, timeout time.Duration) (*conn, error) {
	if dialFn == nil {
		d := net.Dialer{Timeout: timeout}
		dialFn = d.DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	nc, err := dialFn(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, err
	}
	c := &conn{nc: nc, formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID(client)), frameBytesMax: frameBytesMax}
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = "ringbroker-replica-fetcher"
	req.ClientSoftwareVersion = "1"
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := c.roundTrip(ctx, req, resp, timeout); err != nil {
		nc.Close()
		return nil, fmt.Errorf("ApiVersions: %w", err)
	}
	if resp.ErrorCode != 0 {
		nc.Close()
		return nil, fmt.Errorf("ApiVersions: error code %d", resp.ErrorCode)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey < 0 || k.ApiKey > 1000 {
			continue
		}
		for int(k.ApiKey) >= len(c.versions) {
			c.versions = append(c.versions, -1)
		}
		c.versions[k.ApiKey] = k.MaxVersion
	}
	return c, nil
}

// version is the version to send req in: the highest both sides know, at
// most ceiling; ok is false when the leader does not serve it at least at
// floor.
func (c *conn) version(req kmsg.Request, floor, ceiling int16) (int16, bool) {
	k := int(req.Key())
	if k >= len(c.versions) || c.versions[k] < floor {
		return 0, false
	}
	return min(c.versions[k], req.MaxVersion(), ceiling), true
}

func (c *conn) close() error { return c.nc.Close() }

// errFrameTooLarge: the leader answered with more than frameBytesMax.
var errFrameTooLarge = errors.New("response larger than the fetcher's bound")

// reauthenticator is a connection whose SASL session the leader limits
// (KIP-368, connections.max.reauth.ms): the inter-broker dialer's
// (cmd/ringbrokerd/interbroker_sasl.go) re-authenticates it in place when
// its session is near its end. It must be called with no request in
// flight, which a fetcher's connection guarantees between round trips.
type reauthenticator interface {
	ReauthenticateIfDue(ctx context.Context, timeout time.Duration) error
}

// roundTrip sends req (its version already set) and reads its response
// into resp, within timeout; ctx's end interrupts it. A connection whose
// SASL session is due is re-authenticated first.
func (c *conn) roundTrip(ctx context.Context, req kmsg.Request, resp kmsg.Response, timeout time.Duration) error {
	if r, ok := c.nc.(reauthenticator); ok {
		if err := r.ReauthenticateIfDue(ctx, timeout); err != nil {
			return ctxOr(ctx, err)
		}
	}
	// The deadline first: ctx's end then moves it into the past, and
	// nothing moves it back.
	if err := c.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.correlationID++
	c.buf = c.formatter.AppendRequest(c.buf[:0], req, c.correlationID)
	if _, err := c.nc.Write(c.buf); err != nil {
		return ctxOr(ctx, err)
	}
	var head [8]byte
	if _, err := io.ReadFull(c.nc, head[:4]); err != nil {
		return ctxOr(ctx, err)
	}
	size := int32(binary.BigEndian.Uint32(head[:4]))
	if size < 4 || size > c.frameBytesMax {
		return fmt.Errorf("%w: %d bytes (bound %d)", errFrameTooLarge, size, c.frameBytesMax)
	}
	if cap(c.buf) < int(size) {
		c.buf = make([]byte, size)
	}
	frame := c.buf[:size]
	if _, err := io.ReadFull(c.nc, frame); err != nil {
		return ctxOr(ctx, err)
	}
	if id := int32(binary.BigEndian.Uint32(frame)); id != c.correlationID {
		return fmt.Errorf("response correlation id %d, want %d", id, c.correlationID)
	}
	body := frame[4:]
	if req.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		r := kbin.Reader{Src: body}
		for n := r.Uvarint(); n > 0; n-- {
			r.Uvarint()
			r.Span(int(r.Uvarint()))
		}
		if !r.Ok() {
			return fmt.Errorf("%s response v%d: bad header tags", kmsg.NameForKey(req.Key()), req.GetVersion())
		}
		body = r.Src
	}
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return fmt.Errorf("decoding %s response v%d: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return nil
}

// ctxOr is ctx's error when ctx ended (the deadline set by AfterFunc broke
// the I/O), else err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
