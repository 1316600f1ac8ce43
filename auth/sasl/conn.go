package sasl

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// API keys this layer sequences.
const (
	APIKeySaslHandshake    int16 = 17
	APIKeyApiVersions      int16 = 18
	APIKeySaslAuthenticate int16 = 36
)

// DefaultMaxReceiveSize is Kafka's sasl.server.max.receive.size: the
// largest frame the broker reads from a connection that has not yet
// authenticated (Kafka fails the authentication beyond it).
const DefaultMaxReceiveSize = 524288

// reauthMinInterval is Kafka's MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS: a
// SaslHandshake less than a second after the previous re-authentication
// began is not a re-authentication (it gets ILLEGAL_SASL_STATE).
const reauthMinInterval = time.Second

// ConnConfig is a SASL listener's configuration.
type ConnConfig struct {
	// Mechanisms is sasl.enabled.mechanisms for the listener, in the
	// order SaslHandshakeResponse lists them.
	Mechanisms []string
	// NewServer starts an exchange of one of Mechanisms.
	NewServer func(mechanism string) Server
	// MaxReauth is connections.max.reauth.ms (0: sessions do not expire
	// unless the credential does).
	MaxReauth time.Duration
}

type connStage uint8

const (
	stageHandshakeOrVersions connStage = iota // Kafka's INITIAL_REQUEST / HANDSHAKE_OR_VERSIONS_REQUEST
	stageHandshake                            // after ApiVersions: HANDSHAKE_REQUEST
	stageAuthenticate                         // AUTHENTICATE (and re-authentication)
	stageReauthBadMechanism                   // REAUTH_BAD_MECHANISM
	stageComplete                             // COMPLETE
	stageFailed                               // FAILED: close
)

// Conn is the SASL state of one connection on a SASL_PLAINTEXT or
// SASL_SSL listener, after Kafka's SaslServerAuthenticator (KIP-43,
// KIP-152, KIP-368). The connection loop owns it; it is not safe for
// concurrent use. It sees requests only as API keys, versions and the
// few fields it needs; the broker parses and writes the frames.
//
//	                ApiVersions (valid)
//	HandshakeOrVersions ────────────────► Handshake
//	      │ SaslHandshake(mech ok)              │ SaslHandshake(mech ok)
//	      ▼                                     ▼
//	  Authenticate ◄────────────────────────────┘
//	      │  v1: SaslAuthenticate requests; v0: raw size-prefixed tokens
//	      ▼ mechanism done
//	  Complete ── SaslHandshake, session expiry set, ≥1 s since the last ──► Authenticate (re-auth)
//	any refusal ──► Failed (close the connection)
//
// Before Complete, only ApiVersions (once, first), SaslHandshake and
// SaslAuthenticate are admitted; anything else closes the connection.
type Conn struct {
	cfg   ConnConfig
	stage connStage

	mechanism string
	server    Server
	// rawTokens: the handshake was v0, so tokens arrive as bare
	// size-prefixed frames instead of SaslAuthenticate requests.
	rawTokens bool
	// reauthSupported: some SaslAuthenticate had version > 0.
	reauthSupported bool

	username    string
	authCount   int // completed authentications, re-authentications included
	reauth      bool
	reauthStart time.Time
	// reauthMechanism is the mechanism a re-authentication asked for
	// when it differs from the original one.
	reauthMechanism string
	expires         time.Time // zero: the session does not expire
}

// NewConn returns the state of a new connection.
func NewConn(cfg ConnConfig) *Conn { return &Conn{cfg: cfg} }

// Authenticated reports whether the connection may send any request:
// authentication completed and no re-authentication is under way.
func (c *Conn) Authenticated() bool { return c.stage == stageComplete }

// Username is the authenticated user (principal User:<name>), once
// authenticated.
func (c *Conn) Username() string { return c.username }

// Mechanism is the mechanism the client chose.
func (c *Conn) Mechanism() string { return c.mechanism }

// RawTokenExpected reports that the next frame from the client is a raw
// SASL token (after a v0 SaslHandshake), to be passed to RawToken, not a
// Kafka request.
func (c *Conn) RawTokenExpected() bool {
	return c.stage == stageAuthenticate && c.rawTokens
}

// SessionExpired reports whether the authenticated session has outlived
// its lifetime (KIP-368): the broker then closes the connection unless
// the request is a SaslHandshake that begins a re-authentication.
func (c *Conn) SessionExpired(now time.Time) bool {
	return !c.expires.IsZero() && now.After(c.expires)
}

// StateError is a request refused by the sequencing rules. The broker
// answers it with ILLEGAL_SASL_STATE when Respond is set (Kafka does so
// for a non-SaslAuthenticate request during authentication) and then
// closes the connection.
type StateError struct {
	Message string
	Respond bool
}

func (e *StateError) Error() string { return e.Message }

// Admit decides whether a request with apiKey may be handled now; call it
// for every request frame before dispatching it (SaslHandshake and
// SaslAuthenticate then go to Handshake and Authenticate, ApiVersions to
// the ordinary handler followed by ApiVersionsAnswered). A non-nil error
// means: close the connection (after an ILLEGAL_SASL_STATE response if
// StateError.Respond).
func (c *Conn) Admit(now time.Time, apiKey int16) error {
	switch c.stage {
	case stageHandshakeOrVersions:
		if apiKey == APIKeyApiVersions || apiKey == APIKeySaslHandshake {
			return nil
		}
	case stageHandshake:
		if apiKey == APIKeySaslHandshake {
			return nil
		}
		if apiKey == APIKeyApiVersions {
			c.stage = stageFailed
			return &StateError{Message: "Unexpected ApiVersions request received during SASL authentication state HANDSHAKE_REQUEST"}
		}
	case stageAuthenticate:
		if c.rawTokens {
			c.stage = stageFailed
			return &StateError{Message: "a Kafka request where a raw SASL token was expected"}
		}
		if apiKey == APIKeySaslAuthenticate {
			return nil
		}
		c.stage = stageFailed
		return &StateError{Message: "Unexpected Kafka request of type " + apiName(apiKey) + " during SASL authentication.", Respond: true}
	case stageReauthBadMechanism:
		if apiKey == APIKeySaslAuthenticate {
			return nil // Authenticate fails it
		}
		c.stage = stageFailed
		return &StateError{Message: "Unexpected Kafka request of type " + apiName(apiKey) + " during SASL authentication.", Respond: true}
	case stageComplete:
		if c.SessionExpired(now) && !(apiKey == APIKeySaslHandshake && c.canReauth(now)) {
			c.stage = stageFailed
			return &StateError{Message: "authentication session expired"}
		}
		return nil
	case stageFailed:
		return &StateError{Message: "authentication failed"}
	}
	c.stage = stageFailed
	return &StateError{Message: "Unexpected Kafka request of type " + apiName(apiKey) + " during SASL handshake."}
}

// ApiVersionsAnswered records that the broker answered ApiVersions before
// the handshake; accepted is false when it answered with an error
// (UNSUPPORTED_VERSION or INVALID_REQUEST), after which the client may
// try again, as in Kafka.
func (c *Conn) ApiVersionsAnswered(accepted bool) {
	if c.stage == stageHandshakeOrVersions && accepted {
		c.stage = stageHandshake
	}
}

// HandshakeResult is the SaslHandshakeResponse to send.
type HandshakeResult struct {
	ErrorCode  int16
	Mechanisms []string
	// Close: close the connection once the response is sent.
	Close bool
}

// Handshake handles a SaslHandshake request (after Admit).
func (c *Conn) Handshake(now time.Time, version int16, mechanism string) HandshakeResult {
	res := HandshakeResult{Mechanisms: slices.Clone(c.cfg.Mechanisms)}
	switch c.stage {
	case stageHandshakeOrVersions, stageHandshake:
		if !slices.Contains(c.cfg.Mechanisms, mechanism) || c.cfg.NewServer == nil {
			c.stage = stageFailed
			res.ErrorCode, res.Close = kerr.UnsupportedSaslMechanism.Code, true
			return res
		}
		server := c.cfg.NewServer(mechanism)
		if server == nil {
			// Enabled but with nothing to serve it: a configuration
			// mistake the broker should refuse at startup; never panic.
			c.stage = stageFailed
			res.ErrorCode, res.Close = kerr.UnsupportedSaslMechanism.Code, true
			return res
		}
		c.mechanism = mechanism
		c.server = server
		c.rawTokens = version == 0
		c.stage = stageAuthenticate
		return res
	case stageComplete:
		if !c.canReauth(now) {
			// KafkaApis.handleSaslHandshakeRequest.
			res.ErrorCode = kerr.IllegalSaslState.Code
			return res
		}
		c.reauthStart = now
		if !slices.Contains(c.cfg.Mechanisms, mechanism) {
			c.stage = stageFailed
			res.ErrorCode, res.Close = kerr.UnsupportedSaslMechanism.Code, true
			return res
		}
		c.reauth = true
		if mechanism != c.mechanism {
			// Kafka answers the handshake, then fails the next token.
			c.reauthMechanism = mechanism
			c.stage = stageReauthBadMechanism
			return res
		}
		if c.server = c.cfg.NewServer(mechanism); c.server == nil {
			c.stage = stageFailed
			res.ErrorCode, res.Close = kerr.UnsupportedSaslMechanism.Code, true
			return res
		}
		c.stage = stageAuthenticate
		return res
	}
	c.stage = stageFailed
	res.ErrorCode, res.Close = kerr.IllegalSaslState.Code, true
	return res
}

// canReauth: Kafka's KafkaChannel.maybeBeginServerReauthentication. A
// session with an expiry may re-authenticate, at most once a second.
func (c *Conn) canReauth(now time.Time) bool {
	return c.stage == stageComplete && !c.expires.IsZero() &&
		(c.reauthStart.IsZero() || now.Sub(c.reauthStart) >= reauthMinInterval)
}

// AuthenticateResult is the SaslAuthenticateResponse to send.
type AuthenticateResult struct {
	// Respond is false when Kafka closes without answering.
	Respond           bool
	ErrorCode         int16
	ErrorMessage      *string
	AuthBytes         []byte
	SessionLifetimeMs int64
	// Close: close the connection once the response (if any) is sent.
	// The broker delays that close by
	// connection.failed.authentication.delay.ms on a failed
	// authentication.
	Close bool
	// Failure is the cause of a failed authentication, for the
	// operator's log (never a secret).
	Failure error
}

// Authenticate handles a SaslAuthenticate request (after Admit).
func (c *Conn) Authenticate(now time.Time, version int16, authBytes []byte) AuthenticateResult {
	switch c.stage {
	case stageComplete:
		// KafkaApis.handleSaslAuthenticateRequest.
		msg := "SaslAuthenticate request received after successful authentication"
		return AuthenticateResult{Respond: true, ErrorCode: kerr.IllegalSaslState.Code, ErrorMessage: &msg}
	case stageReauthBadMechanism:
		c.stage = stageFailed
		return AuthenticateResult{Close: true, Failure: publicError("SASL mechanism '" + c.reauthMechanism +
			"' requested by client is not supported for re-authentication of mechanism '" + c.mechanism + "'")}
	case stageAuthenticate:
		if c.rawTokens {
			break
		}
		if version > 0 {
			c.reauthSupported = true
		}
		out, done, err := c.server.Step(authBytes)
		if err == nil && done {
			err = c.complete(now)
		}
		if err != nil {
			c.stage = stageFailed
			if e, ok := err.(*Error); ok && e.IllegalState {
				return AuthenticateResult{Close: true, Failure: err}
			}
			msg := ClientMessage(err, c.mechanism, c.reauth)
			return AuthenticateResult{Respond: true, ErrorCode: kerr.SaslAuthenticationFailed.Code, ErrorMessage: &msg, Close: true, Failure: c.failureWithReason(err)}
		}
		if out == nil {
			out = []byte{}
		}
		res := AuthenticateResult{Respond: true, AuthBytes: out}
		if done && !c.expires.IsZero() {
			res.SessionLifetimeMs = c.expires.Sub(now).Milliseconds()
		}
		return res
	}
	c.stage = stageFailed
	return AuthenticateResult{Close: true, Failure: &StateError{Message: "Unexpected Kafka request of type SASL_AUTHENTICATE during SASL handshake."}}
}

// RawToken handles one raw token after a v0 SaslHandshake. send reports
// a token to write back as a size-prefixed frame (possibly empty); on
// failure there is no answer (v0 has none) and the connection closes.
func (c *Conn) RawToken(now time.Time, token []byte) (out []byte, send bool, err error) {
	if !c.RawTokenExpected() {
		c.stage = stageFailed
		return nil, false, &StateError{Message: "raw SASL token outside a v0 authentication"}
	}
	out, done, err := c.server.Step(token)
	if err == nil && done {
		err = c.complete(now)
	}
	if err != nil {
		c.stage = stageFailed
		return nil, false, err
	}
	if out == nil {
		out = []byte{}
	}
	return out, true, nil
}

// complete ends a successful exchange: the principal must not change on
// re-authentication, and the session lifetime is Kafka's
// calcCompletionTimesAndReturnSessionLifetimeMs.
func (c *Conn) complete(now time.Time) error {
	name := c.server.Username()
	if c.reauth && name != c.username {
		return publicError("Cannot change principals during re-authentication from User." + c.username + ": User." + name)
	}
	c.username = name
	c.authCount++
	c.expires = time.Time{}
	var lifetime time.Duration
	credExpiry, hasCred := time.Time{}, false
	if ce, ok := c.server.(CredentialExpirer); ok {
		credExpiry, hasCred = ce.CredentialExpiry()
	}
	if hasCred || c.cfg.MaxReauth > 0 {
		switch {
		case !hasCred:
			lifetime = c.cfg.MaxReauth
		case c.cfg.MaxReauth <= 0:
			lifetime = credExpiry.Sub(now)
		default:
			lifetime = min(credExpiry.Sub(now), c.cfg.MaxReauth)
		}
		lifetime = max(lifetime, 0)
		c.expires = now.Add(lifetime)
	}
	c.server = nil
	c.stage = stageComplete
	c.reauth = false
	return nil
}

func apiName(key int16) string {
	if n := kmsg.NameForKey(key); n != "" {
		return n // franz-go's spelling ("Metadata"), not Kafka's enum name ("METADATA")
	}
	return "api key " + strconv.Itoa(int(key))
}

// failureWithReason adds to err, for the operator's log only, why the
// mechanism refused the client when it knows more than it tells the
// client (OAUTHBEARER: the client sees {"status":"invalid_token"}, the
// log says which check the token failed).
func (c *Conn) failureWithReason(err error) error {
	if r, ok := c.server.(interface{ Reason() error }); ok && r.Reason() != nil {
		return fmt.Errorf("%w (%v)", err, r.Reason())
	}
	return err
}
