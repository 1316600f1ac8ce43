package main

// SASL on this node's own connections to other brokers (replica fetchers,
// transaction markers) when inter.broker.listener.name is a SASL_PLAINTEXT
// or SASL_SSL listener: right after the TCP connect (and the TLS
// handshake), SaslHandshake v1 names sasl.mechanism.inter.broker.protocol
// and SaslAuthenticate v2 rounds carry the mechanism's messages (franz-go's
// client side of PLAIN and SCRAM), as a Kafka broker's inter-broker
// clients do. The connection is handed to its user only once
// authenticated. With connections.max.reauth.ms set on the other side the
// session ends and the connection is closed; its user dials again (no
// KIP-368 re-authentication on these connections).

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

// saslAuthenticate authenticates nc with m, within ctx.
func saslAuthenticate(ctx context.Context, nc net.Conn, m sasl.Mechanism, host, clientID string) error {
	if dl, ok := ctx.Deadline(); ok {
		if err := nc.SetDeadline(dl); err != nil {
			return err
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
		return fmt.Errorf("SaslHandshake: %w", err)
	}
	if hsResp.ErrorCode != 0 {
		return fmt.Errorf("SaslHandshake %s: error code %d (the broker enables %v)", m.Name(), hsResp.ErrorCode, hsResp.SupportedMechanisms)
	}
	session, msg, err := m.Authenticate(ctx, host)
	if err != nil {
		return err
	}
	for round := 0; ; round++ {
		if round == saslRoundsMax {
			return fmt.Errorf("SASL %s: not done after %d rounds", m.Name(), saslRoundsMax)
		}
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = 2
		req.SASLAuthBytes = msg
		resp := kmsg.NewPtrSASLAuthenticateResponse()
		if err := c.roundTrip(req, resp); err != nil {
			return fmt.Errorf("SaslAuthenticate: %w", err)
		}
		if resp.ErrorCode != 0 {
			reason := ""
			if resp.ErrorMessage != nil {
				reason = ": " + *resp.ErrorMessage
			}
			return fmt.Errorf("SASL %s authentication failed (error code %d)%s", m.Name(), resp.ErrorCode, reason)
		}
		done, next, err := session.Challenge(resp.SASLAuthBytes)
		if err != nil {
			return fmt.Errorf("SASL %s: %w", m.Name(), err)
		}
		if done {
			return nil
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
