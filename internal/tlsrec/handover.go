package tlsrec

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
)

// The handover: crypto/tls runs the handshake, then this package takes the
// connection's records over.
//
// Two things make that exact. RecordConn hands crypto/tls at most one
// record at a time (it reads a 5-byte header, then no more than that
// record's body), so when the handshake returns, crypto/tls has read
// nothing past the client's Finished: every later byte is still in the
// socket for the new owner. And Secrets, the handshake's
// tls.Config.KeyLogWriter, keeps the CLIENT_TRAFFIC_SECRET_0 and
// SERVER_TRAFFIC_SECRET_0 lines: the application traffic secrets the
// record layer starts from. The handshake's configuration must disable
// session tickets (ServerConfig does): a NewSessionTicket would be sent
// under the server's application key and take sequence number 0.
//
// Rejected: reading the keys out of tls.Conn with reflection or
// linkname (breaks with any Go release); and letting crypto/tls read ahead
// then recovering its buffered bytes (no API gives them back).

// RecordConn is a net.Conn whose Read never returns bytes past the end
// of the TLS record being read. It is for the handshake only: one read
// syscall per header and per body.
type RecordConn struct {
	net.Conn
	hdr    [HeaderBytes]byte
	hdrGot int
	left   int // body bytes of the current record not yet returned
	// through: the handshake is over and crypto/tls keeps the connection
	// (ErrNotEligible): reads pass straight through.
	through bool
}

// Read implements net.Conn.
func (r *RecordConn) Read(p []byte) (int, error) {
	if len(p) == 0 || r.through {
		return r.Conn.Read(p)
	}
	if r.left == 0 {
		// In a header: return header bytes only.
		n, err := r.Conn.Read(p[:min(len(p), HeaderBytes-r.hdrGot)])
		copy(r.hdr[r.hdrGot:], p[:n])
		r.hdrGot += n
		if r.hdrGot == HeaderBytes {
			r.hdrGot = 0
			r.left = int(binary.BigEndian.Uint16(r.hdr[3:5]))
		}
		return n, err
	}
	n, err := r.Conn.Read(p[:min(len(p), r.left)])
	r.left -= n
	return n, err
}

// Boundary reports whether the reader stands between records: true once a
// handshake returned unless the peer sent garbage.
func (r *RecordConn) Boundary() bool { return r.left == 0 && r.hdrGot == 0 }

// Secrets collects the application traffic secrets of one handshake from
// its key log (tls.Config.KeyLogWriter). Safe for concurrent use.
type Secrets struct {
	mu             sync.Mutex
	client, server []byte
	random         []byte
}

// Write implements io.Writer: crypto/tls writes one NSS key log line per
// call ("LABEL <client random hex> <secret hex>\n").
func (s *Secrets) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) != 3 {
		return len(line), nil
	}
	random, err := hex.DecodeString(string(f[1]))
	if err != nil {
		return len(line), nil
	}
	secret, err := hex.DecodeString(string(f[2]))
	if err != nil {
		return len(line), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.random != nil && !bytes.Equal(s.random, random) {
		// Another handshake's lines: this writer serves one connection.
		return len(line), nil
	}
	switch string(f[0]) {
	case "CLIENT_TRAFFIC_SECRET_0":
		s.client, s.random = secret, random
	case "SERVER_TRAFFIC_SECRET_0":
		s.server, s.random = secret, random
	}
	return len(line), nil
}

// Traffic returns the application traffic secrets logged so far (nil
// until the handshake logged them).
func (s *Secrets) Traffic() (client, server []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client, s.server
}

// ErrNotEligible: the handshake agreed on something this record layer does
// not serve (TLS 1.2, another suite); the caller keeps crypto/tls.
var ErrNotEligible = errors.New("tls: connection not eligible for the record layer")

// ServerConfig returns a configuration for one handshake whose records
// this package may take over: cfg with its KeyLogWriter set to s and
// session tickets off. A GetConfigForClient in cfg is wrapped the same
// way.
func ServerConfig(cfg *tls.Config, s *Secrets) *tls.Config {
	c := cfg.Clone()
	c.KeyLogWriter = s
	c.SessionTicketsDisabled = true
	if get := cfg.GetConfigForClient; get != nil {
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			got, err := get(hello)
			if err != nil || got == nil {
				return got, err
			}
			return ServerConfig(got, s), nil
		}
	}
	return c
}

// Handshake runs a server handshake over nc (which it wraps in a
// RecordConn) with cfg (pass it through ServerConfig first). It returns
// the tls.Conn (for its state, or to go on serving the connection with
// crypto/tls when err is ErrNotEligible) and, for an eligible connection,
// the record layer that continues it. On any other error the caller closes
// the connection.
func Handshake(ctx context.Context, nc net.Conn, cfg *tls.Config, s *Secrets) (*tls.Conn, *Conn, error) {
	rc := &RecordConn{Conn: nc}
	tc := tls.Server(rc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return tc, nil, err
	}
	st := tc.ConnectionState()
	if !Supported(st.Version, st.CipherSuite) {
		if rc.Boundary() {
			rc.through = true // crypto/tls reads at full size from now
		}
		return tc, nil, ErrNotEligible
	}
	if !rc.Boundary() {
		return tc, nil, fmt.Errorf("tls: handshake ended inside a record")
	}
	client, server := s.Traffic()
	if client == nil || server == nil {
		return tc, nil, fmt.Errorf("tls: handshake left no application traffic secrets in the key log")
	}
	rec, err := NewServer(st.CipherSuite, client, server)
	return tc, rec, err
}
