package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ringbroker/ringbroker/auth/acl"
)

// saslListener is a SASL_PLAINTEXT listener with every served mechanism
// and the PLAIN users alice and admin.
var saslListener = ListenerSecurity{Name: "SASL_PLAINTEXT", Protocol: ProtocolSASLPlaintext,
	Mechanisms: []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"},
	PlainUsers: map[string]string{"alice": "alice-secret", "admin": "admin-secret"}}

// startSecureBroker serves listener 0 as SASL_PLAINTEXT and listener 1
// as PLAINTEXT; authz, if not nil, turns the authorizer on.
func startSecureBroker(t *testing.T, backend string, delay time.Duration, authz *acl.Config) *testBroker {
	return startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) {
		o.Security = &SecurityOptions{
			Listeners:                 []ListenerSecurity{saslListener, {Name: "PLAINTEXT", Protocol: ProtocolPlaintext}},
			FailedAuthenticationDelay: delay,
			Authorizer:                authz,
		}
	})
}

func plainAuth(user, pw string) kgo.Opt {
	return kgo.SASL(plain.Auth{User: user, Pass: pw}.AsMechanism())
}

// produceConsume produces one record to topic and reads it back.
func produceConsume(t *testing.T, tb *testBroker, topic string, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := tb.client(append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	c := tb.client(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	for {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("consume: %v", e.Err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			if string(recs[0].Value) != "hello" {
				t.Fatalf("consumed %q", recs[0].Value)
			}
			return
		}
	}
}

func TestSASLPlainProduceConsume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startSecureBroker(t, backend, 0, nil)
		produceConsume(t, tb, "plain-topic", plainAuth("alice", "alice-secret"))
		// The PLAINTEXT listener serves without SASL.
		tb2 := *tb
		tb2.Addr = tb.Addrs[1]
		produceConsume(t, &tb2, "plain-topic-2")
	})
}

// saslConn is a raw connection to the SASL listener.
func saslConn(t *testing.T, tb *testBroker) *prodConn {
	return dialProd(t, tb.Addrs[0])
}

// expectClosed reads until the broker closes the connection; no response
// may arrive first.
func expectClosed(t *testing.T, rc *prodConn) {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := rc.c.Read(b[:])
	if n != 0 || !errors.Is(err, io.EOF) && !strings.Contains(errString(err), "reset") {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSASLRequestBeforeAuthentication: a Metadata request before
// authentication closes the connection and reaches no handler (the topic
// it names is not auto-created).
func TestSASLRequestBeforeAuthentication(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startSecureBroker(t, backend, 0, nil)
		rc := saslConn(t, tb)
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 9
		req.AllowAutoTopicCreation = true
		name := "never-created"
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
		rc.corr++
		if _, err := rc.c.Write(encodeFrame(req, rc.corr, "raw")); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, rc)
		if tb.Reg.Topic(name) != nil {
			t.Fatal("the Metadata request reached its handler: topic auto-created")
		}
		// After a handshake, a non-SaslAuthenticate request gets
		// ILLEGAL_SASL_STATE in its own response, then the close.
		rc = saslConn(t, tb)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		hsResp := kmsg.NewPtrSASLHandshakeResponse()
		if err := rc.roundTrip(hs, hsResp); err != nil || hsResp.ErrorCode != 0 {
			t.Fatalf("handshake: %v, %v", err, kerr.ErrorForCode(hsResp.ErrorCode))
		}
		mresp := kmsg.NewPtrMetadataResponse()
		if err := rc.roundTrip(req, mresp); err != nil {
			t.Fatal(err)
		}
		if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("metadata during authentication: %+v", mresp.Topics)
		}
		expectClosed(t, rc)
		if tb.Reg.Topic(name) != nil {
			t.Fatal("topic auto-created")
		}
	})
}

// TestSASLWrongPassword: SASL_AUTHENTICATION_FAILED, not before
// connection.failed.authentication.delay.ms, then the connection closes.
func TestSASLWrongPassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		const delay = 300 * time.Millisecond
		tb := startSecureBroker(t, backend, delay, nil)
		rc := saslConn(t, tb)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		hsResp := kmsg.NewPtrSASLHandshakeResponse()
		if err := rc.roundTrip(hs, hsResp); err != nil || hsResp.ErrorCode != 0 {
			t.Fatalf("handshake: %v, %v", err, kerr.ErrorForCode(hsResp.ErrorCode))
		}
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.Version = 2
		auth.SASLAuthBytes = []byte("\x00alice\x00wrong")
		authResp := kmsg.NewPtrSASLAuthenticateResponse()
		start := time.Now()
		if err := rc.roundTrip(auth, authResp); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < delay {
			t.Fatalf("failure answered after %v, before the %v delay", took, delay)
		}
		if authResp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("error %v", kerr.ErrorForCode(authResp.ErrorCode))
		}
		if m := authResp.ErrorMessage; m == nil || strings.Contains(*m, "wrong") {
			t.Fatalf("message %v", m)
		}
		expectClosed(t, rc)

		// franz-go sees the error too.
		cl := tb.client(plainAuth("alice", "wrong"))
		cl2 := *tb
		_ = cl2
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := cl.Ping(ctx)
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("ping with a wrong password: %v", err)
		}
	})
}

// TestSASLHandshakeV0RawTokens: after a v0 handshake the token travels as
// a bare size-prefixed frame (KIP-152), and the connection is then
// authenticated.
func TestSASLHandshakeV0RawTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startSecureBroker(t, backend, 0, nil)
		rc := saslConn(t, tb)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 0, "PLAIN"
		hsResp := kmsg.NewPtrSASLHandshakeResponse()
		if err := rc.roundTrip(hs, hsResp); err != nil || hsResp.ErrorCode != 0 {
			t.Fatalf("handshake: %v, %v", err, kerr.ErrorForCode(hsResp.ErrorCode))
		}
		token := []byte("\x00alice\x00alice-secret")
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(token)))
		if _, err := rc.c.Write(append(frame, token...)); err != nil {
			t.Fatal(err)
		}
		var l [4]byte
		if _, err := io.ReadFull(rc.c, l[:]); err != nil || binary.BigEndian.Uint32(l[:]) != 0 {
			t.Fatalf("raw answer: %v %v", l, err)
		}
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 9
		resp := kmsg.NewPtrMetadataResponse()
		if err := rc.roundTrip(req, resp); err != nil || len(resp.Brokers) == 0 {
			t.Fatalf("metadata after v0 authentication: %v, %+v", err, resp)
		}
	})
}

var _ = scram.Auth{}
