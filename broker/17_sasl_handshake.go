package broker

// SaslHandshake (key 17), versions 0-1.
//
// Behaviour: on a SASL_PLAINTEXT listener, before authentication, selects
// the mechanism (sasl.Conn.Handshake): an enabled one starts the exchange
// (v1: SaslAuthenticate requests follow; v0: raw size-prefixed tokens,
// KIP-152); any other is UNSUPPORTED_SASL_MECHANISM with the enabled list,
// then the connection closes after connection.failed.authentication.delay.ms.
// After authentication it begins a re-authentication (KIP-368) when the
// session has a lifetime, else ILLEGAL_SASL_STATE. On a PLAINTEXT listener:
// ILLEGAL_SASL_STATE, as Kafka answers a handshake it does not expect.
//
// Differences from Apache Kafka: none known.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.SASLHandshake, 0, 1, copying, (*Broker).saslHandshake)) // copying: sasl.Conn keeps the mechanism name
}

func (b *Broker) saslHandshake(req netpoll.Request, h proto.RequestHeader, r *kmsg.SASLHandshakeRequest) {
	resp := kmsg.SASLHandshakeResponse{Version: h.APIVersion}
	s := sessionOf(req)
	if s == nil || s.sasl == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		b.replyMsg(req, &h, &resp)
		return
	}
	res := s.sasl.Handshake(b.clock.Now(), h.APIVersion, r.Mechanism)
	resp.ErrorCode, resp.SupportedMechanisms = res.ErrorCode, res.Mechanisms
	if !res.Close {
		b.replyMsg(req, &h, &resp)
		return
	}
	buf := netpoll.GetBuffer()
	buf.B = proto.AppendResponseHeader(buf.B, &h)
	buf.B = resp.AppendTo(buf.B)
	b.authFailed(req, s, kerr.ErrorForCode(res.ErrorCode), buf)
}
