package broker

// SaslAuthenticate (key 36), versions 0-2.
//
// Behaviour: carries one SASL token of the exchange SaslHandshake started
// (sasl.Conn.Authenticate). Success answers the mechanism's token; the
// last one of a session with a lifetime carries session_lifetime_ms (v1+,
// KIP-368), and the connection's principal becomes User:<name>. Failure
// answers SASL_AUTHENTICATION_FAILED with Kafka's message (never a
// secret) after connection.failed.authentication.delay.ms, then closes
// the connection. After authentication, or on a PLAINTEXT listener:
// ILLEGAL_SASL_STATE.
//
// Differences from Apache Kafka: none known.

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.SASLAuthenticate, 0, 2, aliasing, (*Broker).saslAuthenticate))
}

func (b *Broker) saslAuthenticate(req netpoll.Request, h proto.RequestHeader, r *kmsg.SASLAuthenticateRequest) {
	resp := kmsg.SASLAuthenticateResponse{Version: h.APIVersion}
	s := sessionOf(req)
	if s == nil || s.sasl == nil {
		msg := "SaslAuthenticate request received on a listener without SASL"
		resp.ErrorCode, resp.ErrorMessage = kerr.IllegalSaslState.Code, &msg
		b.replyMsg(req, &h, &resp)
		return
	}
	// The mechanism keeps parts of a message (SCRAM's client-first) for
	// the next step: a copy, since the bytes alias the frame.
	res := s.sasl.Authenticate(b.clock.Now(), h.APIVersion, bytes.Clone(r.SASLAuthBytes))
	b.maybeAuthenticated(s)
	var buf *netpoll.Buffer
	if res.Respond {
		resp.ErrorCode, resp.ErrorMessage = res.ErrorCode, res.ErrorMessage
		resp.SASLAuthBytes, resp.SessionLifetimeMillis = res.AuthBytes, res.SessionLifetimeMs
		buf = netpoll.GetBuffer()
		buf.B = proto.AppendResponseHeader(buf.B, &h)
		buf.B = resp.AppendTo(buf.B)
	}
	switch {
	case res.Close:
		cause := res.Failure
		if cause == nil {
			cause = kerr.ErrorForCode(res.ErrorCode)
		}
		b.authFailed(req, s, cause, buf)
	case buf != nil:
		req.Reply(buf)
	default:
		req.NoReply()
	}
}
