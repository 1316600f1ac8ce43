package broker

// Security: the per-connection session (listener, client host, SASL
// state, principal), the SASL gate in front of every handler, and the
// authorizer and SCRAM credentials the handlers consult.
//
// Request path on a SASL_PLAINTEXT listener (issue 19):
//
//	accept ─► OpenSession (netpoll, at accept): sasl.Conn for the
//	          listener's mechanisms; counts toward
//	          ring.conn.max.authenticating
//	frame ─► ServeFrame ─► gate: until authenticated (and on a session
//	          with a lifetime, KIP-368), every frame goes through
//	          sasl.Conn.Admit: ApiVersions (ordinary handler),
//	          SaslHandshake, SaslAuthenticate or a raw v0 token; anything
//	          else closes the connection before any handler runs
//	       ─► authenticated: principal User:<name> on the session,
//	          then the API table as on PLAINTEXT (principal User:ANONYMOUS)
//	handler ─► b.authorize(req, op, resource): acl.Authorizer on the
//	          session's principal and host (lock- and allocation-free)
//
// A failed authentication is answered (SASL_AUTHENTICATION_FAILED) after
// connection.failed.authentication.delay.ms, from a timer (no ring thread
// waits), and the connection closes once that answer is sent
// (Request.ReplyThenClose); frames the client sends meanwhile are dropped.
//
// Concurrency: a session is written only by ServeFrame, on the goroutine
// netpoll runs it on for that connection, and by Done after the last
// ServeFrame. Handlers that answer from another goroutine read only the
// principal and host, which do not change once the connection is
// authenticated (re-authentication keeps the principal).

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/auth/sasl"
	"github.com/ringbroker/ringbroker/auth/sslprincipal"
	"github.com/ringbroker/ringbroker/auth/store"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

// Security protocols a listener may have here.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLSSL       = "SASL_SSL"
)

// isSASL reports whether a protocol authenticates with SASL.
func isSASL(protocol string) bool {
	return protocol == ProtocolSASLPlaintext || protocol == ProtocolSASLSSL
}

// SecurityOptions configure authentication and authorization. A nil
// Options.Security is today's broker: every listener PLAINTEXT, no
// authorizer, no SCRAM store.
type SecurityOptions struct {
	// Listeners describe the netpoll listeners, by index
	// (netpoll.Options.Listeners order). A connection on a listener
	// without an entry is PLAINTEXT.
	Listeners []ListenerSecurity
	// FailedAuthenticationDelay is connection.failed.authentication.delay.ms.
	FailedAuthenticationDelay time.Duration
	// MaxReauth is connections.max.reauth.ms (0: sessions do not expire).
	MaxReauth time.Duration
	// MaxReceiveSize is sasl.server.max.receive.size (0: Kafka's 524288):
	// the largest frame a connection may send before it authenticates.
	MaxReceiveSize int
	// MaxAuthenticating is ring.conn.max.authenticating (0: 1000).
	MaxAuthenticating int
	// Authorizer is the authorizer's configuration; nil: no
	// authorization (authorizer.class.name empty).
	Authorizer *acl.Config
	// Backend stores SCRAM credentials and ACLs; nil: a
	// store.FileBackend in DataDir through the broker's filesystem.
	Backend store.Backend
	// Random is the randomness of SCRAM nonces and salts; nil:
	// crypto/rand.Reader.
	Random io.Reader
}

// ListenerSecurity is one listener's security settings.
type ListenerSecurity struct {
	Name     string // listener name, e.g. SASL_PLAINTEXT
	Protocol string // ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext or ProtocolSASLSSL
	// Mechanisms is sasl.enabled.mechanisms for the listener.
	Mechanisms []string
	// PlainUsers are the PLAIN users (user -> password) from the
	// listener's plain.sasl.jaas.config.
	PlainUsers map[string]string
	// OAuth validates OAUTHBEARER tokens (sasl.NewJWTValidator);
	// required when Mechanisms holds OAUTHBEARER.
	OAuth sasl.TokenValidator
	// PrincipalMapper maps a verified client certificate's subject to
	// the principal on an SSL listener (ssl.principal.mapping.rules);
	// nil: DEFAULT (the subject as it is). The TLS itself is netpoll's
	// (netpoll.Options.Secure); a SASL_SSL principal comes from SASL.
	PrincipalMapper *sslprincipal.Mapper
	// AdvertisedHost and AdvertisedPort are the listener's entry of
	// advertised.listeners: what Metadata, FindCoordinator and
	// DescribeCluster tell a client connected through this listener, as
	// Kafka does (empty/0: Options.AdvertisedHost/Port).
	AdvertisedHost string
	AdvertisedPort int32
}

// anonymous is the principal of a PLAINTEXT connection (Kafka's
// KafkaPrincipal.ANONYMOUS).
var anonymous = acl.User("ANONYMOUS")

// security is the Broker's security state; nil without Options.Security.
type security struct {
	opts      SecurityOptions
	listeners []*ListenerSecurity
	authz     *acl.Authorizer // nil: authorization off
	creds     *store.Credentials
	backend   store.Backend
	random    io.Reader
	// authenticating counts sessions on SASL listeners not yet
	// authenticated.
	authenticating atomic.Int64
	failLog        rateLog
	refusedLog     rateLog
}

func newSecurity(b *Broker, opts SecurityOptions) (*security, error) {
	if opts.MaxReceiveSize <= 0 {
		opts.MaxReceiveSize = sasl.DefaultMaxReceiveSize
	}
	if opts.MaxAuthenticating <= 0 {
		opts.MaxAuthenticating = 1000
	}
	s := &security{opts: opts, creds: store.NewCredentials(), backend: opts.Backend, random: opts.Random}
	if s.random == nil {
		s.random = rand.Reader
	}
	if s.backend == nil {
		s.backend = store.FileBackend{FS: b.fs(), Dir: b.opts.DataDir}
	}
	for i := range opts.Listeners {
		l := &opts.Listeners[i]
		switch l.Protocol {
		case ProtocolPlaintext, ProtocolSSL:
		case ProtocolSASLPlaintext, ProtocolSASLSSL:
			for _, m := range l.Mechanisms {
				switch m {
				case sasl.MechanismPlain:
					if len(l.PlainUsers) == 0 {
						return nil, fmt.Errorf("listener %s enables PLAIN without users", l.Name)
					}
				case sasl.MechanismScramSHA256, sasl.MechanismScramSHA512:
				case sasl.MechanismOAuthBearer:
					if l.OAuth == nil {
						return nil, fmt.Errorf("listener %s enables OAUTHBEARER without a token validator", l.Name)
					}
				default:
					return nil, fmt.Errorf("listener %s: SASL mechanism %s is not served", l.Name, m)
				}
			}
		default:
			return nil, fmt.Errorf("listener %s: security protocol %s is not served", l.Name, l.Protocol)
		}
		s.listeners = append(s.listeners, l)
	}
	if opts.Authorizer != nil {
		s.authz = acl.New(*opts.Authorizer)
	}
	if b.opts.Cluster != nil {
		// In a cluster credentials and ACLs come from the metadata log
		// (cluster.go syncSecurity), never from the node's local store. A
		// single node's files (a node turned into a cluster) are kept as
		// they are and said so: they are not imported.
		for _, blob := range []string{store.CredentialsBlob, store.ACLsBlob} {
			if _, ok, err := s.backend.Load(blob); ok || err != nil {
				b.log.Warn("a single node's security file is ignored in a cluster: SCRAM credentials and ACLs live in the metadata log; create them again through the admin APIs",
					zap.String("file", blob), zap.Error(err))
			}
		}
		return s, nil
	}
	data, ok, err := s.backend.Load(store.CredentialsBlob)
	if err != nil {
		return nil, fmt.Errorf("loading SCRAM credentials (%s): %w", store.CredentialsBlob, err)
	}
	if ok {
		if err := s.creds.Load(data); err != nil {
			return nil, fmt.Errorf("loading SCRAM credentials (%s): %w", store.CredentialsBlob, err)
		}
	}
	if s.authz != nil {
		data, ok, err := s.backend.Load(store.ACLsBlob)
		if err != nil {
			return nil, fmt.Errorf("loading ACLs (%s): %w", store.ACLsBlob, err)
		}
		if ok {
			bindings, err := acl.Decode(data)
			if err != nil {
				return nil, fmt.Errorf("loading ACLs (%s): %w", store.ACLsBlob, err)
			}
			if err := s.authz.Load(bindings); err != nil {
				return nil, fmt.Errorf("loading ACLs (%s): %w", store.ACLsBlob, err)
			}
		}
	}
	return s, nil
}

// session is one connection's security state (netpoll.Session).
type session struct {
	sec      *security
	listener *ListenerSecurity // nil: a listener SecurityOptions does not describe (PLAINTEXT)
	// host is the client's IP address as Kafka prints it (ACL hosts).
	host string
	// principal is User:ANONYMOUS on PLAINTEXT, User:<name> once a SASL
	// connection authenticated.
	principal acl.Principal
	sasl      *sasl.Conn // nil on PLAINTEXT
	// counted: holds one of ring.conn.max.authenticating.
	counted bool
	// refused: over ring.conn.max.authenticating; closed at its first
	// frame.
	refused bool
	// failed: authentication failed and the delayed answer is on its
	// way; later frames are dropped.
	failed bool
	// unmapped: an SSL connection whose certificate subject no
	// ssl.principal.mapping.rules rule maps; closed at its first frame
	// (Kafka fails such an authentication).
	unmapped bool
}

// OpenSession implements netpoll.SessionOpener.
func (b *Broker) OpenSession(listener int, remote net.Addr) netpoll.Session {
	s := b.sec
	if s == nil {
		return nil
	}
	sess := &session{sec: s, principal: anonymous}
	if ta, ok := remote.(*net.TCPAddr); ok && ta != nil {
		sess.host = ta.IP.String()
	}
	if listener < 0 || listener >= len(s.listeners) {
		return sess
	}
	l := s.listeners[listener]
	sess.listener = l
	if !isSASL(l.Protocol) {
		return sess
	}
	sess.principal = acl.Principal{}
	sess.sasl = sasl.NewConn(sasl.ConnConfig{Mechanisms: l.Mechanisms, NewServer: s.newServer(l), MaxReauth: s.opts.MaxReauth})
	if s.authenticating.Add(1) > int64(s.opts.MaxAuthenticating) {
		s.authenticating.Add(-1)
		sess.refused = true
		return sess
	}
	sess.counted = true
	return sess
}

// OpenTLSSession implements netpoll.TLSSessionOpener: a connection of a
// TLS listener whose handshake completed. On an SSL listener the
// principal is the verified client certificate's subject (RFC 2253, as
// Java prints it) after the listener's mapping rules, as Kafka's
// DefaultKafkaPrincipalBuilder builds it; without a client certificate
// it is User:ANONYMOUS. On SASL_SSL, SASL names the principal.
func (b *Broker) OpenTLSSession(listener int, remote net.Addr, state *tls.ConnectionState) netpoll.Session {
	ns := b.OpenSession(listener, remote)
	sess, ok := ns.(*session)
	if !ok || sess.listener == nil || sess.listener.Protocol != ProtocolSSL || state == nil || len(state.VerifiedChains) == 0 {
		return ns
	}
	dn, err := sslprincipal.SubjectDN(state.PeerCertificates[0])
	if err == nil {
		name, mapped := sess.listener.PrincipalMapper.Name(dn)
		if mapped {
			sess.principal = acl.User(name)
			return sess
		}
		err = fmt.Errorf("no rule of ssl.principal.mapping.rules maps %q", dn)
	}
	sess.unmapped = true
	b.sec.refusedLog.warn(b.log, "TLS client certificate names no principal; closing the connection", zap.String("listener", sess.listener.Name), zap.Error(err))
	return sess
}

// Done implements netpoll.Session.
func (s *session) Done() { s.release() }

// release gives back the authenticating slot, once.
func (s *session) release() {
	if s.counted {
		s.counted = false
		s.sec.authenticating.Add(-1)
	}
}

// newServer returns the listener's sasl.ConnConfig.NewServer.
func (s *security) newServer(l *ListenerSecurity) func(string) sasl.Server {
	return func(mechanism string) sasl.Server {
		switch mechanism {
		case sasl.MechanismPlain:
			return sasl.NewPlainServer(func(user string) ([]byte, bool, error) {
				pw, ok := l.PlainUsers[user]
				return []byte(pw), ok, nil
			})
		case sasl.MechanismScramSHA256, sasl.MechanismScramSHA512:
			m := sasl.ScramMechanismByName(mechanism)
			return sasl.NewScramServer(m, func(user string) (sasl.Credential, bool, error) {
				c, ok := s.creds.Lookup(m, user)
				return c, ok, nil
			}, s.random)
		case sasl.MechanismOAuthBearer:
			return sasl.NewOAuthBearerServer(l.OAuth)
		}
		return nil
	}
}

// gated reports whether the session's frames go through the SASL gate
// (not yet authenticated, a session with a lifetime, refused or failed).
// On the hot path: a few loads.
func (s *session) gated() bool {
	return s.sasl != nil && (!s.sasl.Authenticated() || s.sec.opts.MaxReauth > 0) || s.refused || s.failed || s.unmapped
}

// serveGated handles a frame of a gated session. It reports whether the
// frame was answered; false hands it to the API table (an authenticated
// session's ordinary request).
func (b *Broker) serveGated(req netpoll.Request, s *session, frame []byte) bool {
	switch {
	case s.refused:
		s.sec.refusedLog.warn(b.log, "connection over ring.conn.max.authenticating closed", zap.String("remote", req.RemoteAddr()))
		req.Close("too many connections authenticating (ring.conn.max.authenticating)")
		return true
	case s.failed:
		req.NoReply() // the failure answer and the close are on their way
		return true
	case s.unmapped:
		req.Close("TLS client certificate subject maps to no principal (ssl.principal.mapping.rules)")
		return true
	}
	now := b.clock.Now()
	if s.sasl.RawTokenExpected() {
		b.rawToken(req, s, now, frame)
		return true
	}
	if !s.sasl.Authenticated() && len(frame) > s.sec.opts.MaxReceiveSize {
		b.closeBad(req, "frame larger than sasl.server.max.receive.size before authentication", zap.Int("bytes", len(frame)))
		return true
	}
	h, err := proto.ParseRequestHeader(frame)
	if err != nil {
		b.closeBad(req, "unparsable request header", zap.Error(err))
		return true
	}
	if err := s.sasl.Admit(now, h.APIKey.Int16()); err != nil {
		b.saslRefuse(req, s, &h, frame, err)
		return true
	}
	switch h.APIKey {
	case kmsg.ApiVersions:
		if s.sasl.Authenticated() {
			return false
		}
		b.dispatch(req, frame)
		// An unsupported version is answered with an error, after which
		// the client may retry (KIP-511), as in Kafka.
		s.sasl.ApiVersionsAnswered(h.APIVersion >= 0 && h.APIVersion <= apiVersionsMax)
		return true
	case kmsg.SASLHandshake, kmsg.SASLAuthenticate:
		b.dispatch(req, frame) // 17_sasl_handshake.go, 36_sasl_authenticate.go
		return true
	}
	return false
}

// saslRefuse answers a request the SASL sequencing refused: close, after
// the request's own error response with ILLEGAL_SASL_STATE when Kafka
// sends one.
func (b *Broker) saslRefuse(req netpoll.Request, s *session, h *proto.RequestHeader, frame []byte, err error) {
	s.failed = true
	st, ok := err.(*sasl.StateError)
	b.log.Info("SASL: request refused before authentication; closing the connection",
		zap.String("remote", req.RemoteAddr()), zap.String("api", h.APIKey.Name()), zap.Error(err))
	if !ok || !st.Respond {
		req.Close(err.Error())
		return
	}
	var a *api
	if h.APIKey >= 0 && int(h.APIKey) < len(b.apis) {
		a = b.apis[h.APIKey]
	}
	if a == nil || a.serveRaw != nil || h.APIVersion < a.min || h.APIVersion > a.max {
		req.Close(err.Error())
		return
	}
	r, derr := a.decode(h.APIVersion, frame[h.BodyOffset:])
	if derr != nil {
		a.put(r)
		req.Close(err.Error())
		return
	}
	resp := busyResponse(r, kerr.IllegalSaslState.Code, st.Message)
	buf := netpoll.GetBuffer()
	buf.B = proto.AppendResponseHeader(buf.B, h)
	buf.B = resp.AppendTo(buf.B)
	a.put(r)
	req.ReplyThenClose(buf)
}

// rawToken handles a raw SASL token after a v0 SaslHandshake (KIP-152):
// the answer is a bare size-prefixed token; a failure closes without one.
func (b *Broker) rawToken(req netpoll.Request, s *session, now time.Time, frame []byte) {
	if len(frame) > s.sec.opts.MaxReceiveSize {
		b.closeBad(req, "SASL token larger than sasl.server.max.receive.size", zap.Int("bytes", len(frame)))
		return
	}
	out, send, err := s.sasl.RawToken(now, bytes.Clone(frame)) // kept across steps; the frame is recycled
	if err != nil {
		b.authFailed(req, s, err, nil)
		return
	}
	b.maybeAuthenticated(s)
	if !send {
		req.NoReply()
		return
	}
	buf := netpoll.GetBuffer()
	buf.B = append(buf.B, out...)
	req.Reply(buf)
}

// maybeAuthenticated records the principal once the exchange completed.
func (b *Broker) maybeAuthenticated(s *session) {
	if s.sasl.Authenticated() && s.counted {
		s.principal = acl.User(s.sasl.Username())
		s.release()
	}
}

// authFailed answers a failed authentication: buf (nil: no answer) after
// connection.failed.authentication.delay.ms, then the connection closes.
// The cause is logged rate-limited; it never holds a secret (sasl.Error).
func (b *Broker) authFailed(req netpoll.Request, s *session, cause error, buf *netpoll.Buffer) {
	s.failed = true
	mech := s.sasl.Mechanism()
	s.sec.failLog.warn(b.log, "SASL authentication failed", zap.String("remote", req.RemoteAddr()),
		zap.String("listener", s.listener.Name), zap.String("mechanism", mech), zap.Error(cause))
	answer := func() {
		if buf == nil {
			req.Close("SASL authentication failed")
			return
		}
		req.ReplyThenClose(buf)
	}
	if d := s.sec.opts.FailedAuthenticationDelay; d > 0 {
		time.AfterFunc(d, answer)
		return
	}
	answer()
}

// advertised is the endpoint to tell the client of req about this broker:
// its listener's advertised address (Kafka answers with the endpoints of
// the listener the request came in on).
func (b *Broker) advertised(req netpoll.Request) (string, int32) {
	if s := sessionOf(req); s != nil && s.listener != nil && s.listener.AdvertisedPort != 0 {
		return s.listener.AdvertisedHost, s.listener.AdvertisedPort
	}
	return b.opts.AdvertisedHost, b.opts.AdvertisedPort
}

// sessionOf is the request's session, nil without one.
func sessionOf(req netpoll.Request) *session {
	s, _ := req.Session().(*session)
	return s
}

// rateLog writes at most one line a second and counts the lines it
// dropped meanwhile (a flood of failed logins must not flood the log).
type rateLog struct {
	last    atomic.Int64 // unix nanoseconds of the last line written
	dropped atomic.Int64
}

func (r *rateLog) warn(log *zap.Logger, msg string, fields ...zap.Field) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(time.Second) || !r.last.CompareAndSwap(last, now) {
		r.dropped.Add(1)
		return
	}
	if n := r.dropped.Swap(0); n > 0 {
		fields = append(fields, zap.Int64("similar_lines_dropped", n))
	}
	log.Warn(msg, fields...)
}
