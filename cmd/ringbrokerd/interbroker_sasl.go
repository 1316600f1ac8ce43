package main

// SASL on this node's own connections to other brokers (replica fetchers,
// transaction markers) when inter.broker.listener.name is a SASL_PLAINTEXT
// or SASL_SSL listener: right after the TCP connect (and the TLS
// handshake), SaslHandshake v1 names sasl.mechanism.inter.broker.protocol
// and SaslAuthenticate v2 rounds carry the mechanism's messages (franz-go's
// client side of PLAIN and SCRAM), as a Kafka broker's inter-broker
// clients do. The connection is handed to its user only once
// authenticated.
//
// KIP-368: when the other broker sets connections.max.reauth.ms, its
// SaslAuthenticate answer carries the session lifetime, and the connection
// handed out is a saslSession that knows when to re-authenticate: at a
// random point between 85 % and 95 % of the lifetime, as Kafka's
// SaslClientAuthenticator picks (margin for latency and clock drift,
// jitter against every connection re-authenticating at once). Its user
// calls ReauthenticateIfDue between requests (the replica fetchers before
// each request: they have one in flight at most), which runs SaslHandshake
// and SaslAuthenticate again on the same connection. The transaction
// markers' kgo client does not use this dialer's SASL: kgo authenticates
// and re-authenticates itself (kgo.SASL, broker.Options.InterBrokerSASL).

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// saslFrameBytesMax bounds a SASL answer frame.
const saslFrameBytesMax = 1 << 20

// saslRoundsMax bounds the SaslAuthenticate rounds (SCRAM takes two).
const saslRoundsMax = 8

// interBrokerMechanism is franz-go's client side of mech.
func interBrokerMechanism(mech, user, password string) (sasl.Mechanism, error) {
	switch mech {
	case "PLAIN":
		return plain.Auth{User: user, Pass: password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("SASL mechanism %s is not served on the inter-broker side", mech)
}

// saslSession is an authenticated inter-broker connection whose session
// the other broker limits (KIP-368).
type saslSession struct {
	net.Conn
	m              sasl.Mechanism
	host, clientID string
	// reauthAt is when to re-authenticate; zero: never (no lifetime).
	// Owned by the connection's one user.
	reauthAt time.Time
	random   *rand.Rand
}

// reauthPoint is when a session of lifetime, begun at start, is
// re-authenticated: 85-95 % into it (Kafka's client's window and jitter).
func reauthPoint(start time.Time, lifetime time.Duration, random *rand.Rand) time.Time {
	if lifetime <= 0 {
		return time.Time{}
	}
	return start.Add(time.Duration(float64(lifetime) * (0.85 + 0.10*random.Float64())))
}

// ReauthenticateIfDue re-authenticates the connection when its session is
// at its re-authentication point, within timeout (replica/conn.go calls it
// before each request). REQUIRES: no request in flight on the connection.
func (s *saslSession) ReauthenticateIfDue(ctx context.Context, timeout time.Duration) error {
	if s.reauthAt.IsZero() || time.Now().Before(s.reauthAt) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	lifetime, err := saslAuthenticate(ctx, s.Conn, s.m, s.host, s.clientID)
	if err != nil {
		return fmt.Errorf("KIP-368 re-authentication: %w", err)
	}
	s.reauthAt = reauthPoint(start, lifetime, s.random)
	return nil
}

// authenticateSession authenticates nc and returns it as a saslSession
// when the other broker limits the session, else as it is.
func authenticateSession(ctx context.Context, nc net.Conn, m sasl.Mechanism, host, clientID string) (net.Conn, error) {
	start := time.Now()
	lifetime, err := saslAuthenticate(ctx, nc, m, host, clientID)
	if err != nil {
		return nil, err
	}
	if lifetime <= 0 {
		return nc, nil
	}
	random := rand.New(rand.NewPCG(uint64(start.UnixNano()), 0x368))
	return &saslSession{Conn: nc, m: m, host: host, clientID: clientID, reauthAt: reauthPoint(start, lifetime, random), random: random}, nil
}

// saslAuthenticate authenticates nc with m, within ctx, and returns the
// session lifetime the other broker set (0: none).
func saslAuthenticate(ctx context.Context, nc net.Conn, m sasl.Mechanism, host, clientID string) (time.Duration, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := nc.SetDeadline(dl); err != nil {
			return 0, err
		}
		defer nc.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c := &saslConn{rw: bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc)), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}

	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = m.Name()
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	if err := c.roundTrip(hs, hsResp); err != nil {
		return 0, fmt.Errorf("SaslHandshake: %w", err)
	}
	if hsResp.ErrorCode != 0 {
		return 0, fmt.Errorf("SaslHandshake %s: error code %d (the broker enables %v)", m.Name(), hsResp.ErrorCode, hsResp.SupportedMechanisms)
	}
	session, msg, err := m.Authenticate(ctx, host)
	if err != nil {
		return 0, err
	}
	for round := 0; ; round++ {
		if round == saslRoundsMax {
			return 0, fmt.Errorf("SASL %s: not done after %d rounds", m.Name(), saslRoundsMax)
		}
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = 2
		req.SASLAuthBytes = msg
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		if err := c.roundTrip(req, resp); err != nil {
			return 0, fmt.Errorf("SaslAuthenticate: %w", err)
		}
		if resp.ErrorCode != 0 {
			reason := ""
			if resp.ErrorMessage != nil {
				reason = ": " + *resp.ErrorMessage
			}
			return 0, fmt.Errorf("SASL %s authentication failed (error code %d)%s", m.Name(), resp.ErrorCode, reason)
		}
		done, next, err := session.Challenge(resp.SASLAuthBytes)
		if err != nil {
			return 0, fmt.Errorf("SASL %s: %w", m.Name(), err)
		}
		if done {
			return time.Duration(resp.SessionLifetimeMillis) * time.Millisecond, nil
		}
		msg = next
	}
}

// saslConn is one request at a time on a connection not yet handed out.
type saslConn struct {
	rw   *bufio.ReadWriter
	f    *kmsg.RequestFormatter
	corr int32
}

func (c *saslConn) roundTrip(req kmsg.Request, resp kmsg.Response) error {
	c.corr++
	if _, err := c.rw.Write(c.f.AppendRequest(nil, req, c.corr)); err != nil {
		return err
	}
	if err := c.rw.Flush(); err != nil {
		return err
	}
	var head [4]byte
	if _, err := io.ReadFull(c.rw, head[:]); err != nil {
		return err
	}
	size := int32(binary.BigEndian.Uint32(head[:]))
	if size < 4 || size > saslFrameBytesMax {
		return fmt.Errorf("answer frame of %d bytes", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c.rw, body); err != nil {
		return err
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		return fmt.Errorf("correlation id %d, want %d", corr, c.corr)
	}
	body = body[4:]
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		var err error
		if body, err = skipTags(body); err != nil {
			return err
		}
	}
	return resp.ReadFrom(body)
}

// skipTags skips a flexible response header's tagged fields.
func skipTags(b []byte) ([]byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > 64 {
		return nil, errors.New("bad tagged fields")
	}
	b = b[w:]
	for range n {
		if _, w = binary.Uvarint(b); w <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < size {
			return nil, errors.New("bad tag size")
		}
		b = b[w+int(size):]
	}
	return b, nil
}
