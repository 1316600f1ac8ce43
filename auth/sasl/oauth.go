package sasl

import (
	"strings"
	"time"
)

// MechanismOAuthBearer is SASL/OAUTHBEARER (RFC 7628, KIP-255).
const MechanismOAuthBearer = "OAUTHBEARER"

// OAuthClientFirst is a parsed OAUTHBEARER client initial response:
//
//	gs2-header %x01 *(key "=" value %x01) %x01
//	gs2-header = "n," ["a=" saslname] ","
//
// with Kafka's grammar (OAuthBearerClientInitialResponse): keys
// [A-Za-z]+, values [\x21-\x7E \t\r\n]+, "auth" required and of the form
// "Bearer <token>" (scheme case-insensitive), the other pairs SASL
// extensions.
type OAuthClientFirst struct {
	Authzid    string
	Token      string
	Extensions []ScramExtension // key/value pairs other than auth, in order
}

const kvsep = '\x01'

var errOAuthFormat = privateError("Invalid OAUTHBEARER client first message")

// ParseOAuthClientFirst parses a client initial response. It allocates in
// proportion to len(msg) and never panics.
func ParseOAuthClientFirst(msg []byte) (OAuthClientFirst, error) {
	var c OAuthClientFirst
	s := string(msg)
	rest, ok := strings.CutPrefix(s, "n,")
	if !ok {
		return c, errOAuthFormat
	}
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return c, errOAuthFormat
	}
	if authz := rest[:comma]; authz != "" {
		name, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return c, errOAuthFormat
		}
		// Kafka keeps the authzid as sent (no =2C/=3D decoding) and
		// compares it with the principal name.
		if _, ok := decodeSaslName(name); !ok {
			return c, errOAuthFormat
		}
		c.Authzid = name
	}
	rest = rest[comma+1:]
	// %x01 kvpairs %x01, each pair ending in %x01.
	if len(rest) < 2 || rest[0] != kvsep || rest[len(rest)-1] != kvsep {
		return c, errOAuthFormat
	}
	pairs := rest[1 : len(rest)-1]
	auth, haveAuth := "", false
	for pairs != "" {
		i := strings.IndexByte(pairs, kvsep)
		if i < 0 {
			return c, errOAuthFormat
		}
		pair := pairs[:i]
		pairs = pairs[i+1:]
		k, v, ok := strings.Cut(pair, "=")
		if !ok || !isOAuthKey(k) || !isOAuthValue(v) {
			return c, errOAuthFormat
		}
		// Utils.parseMap: a later pair with the same key wins.
		if k == "auth" {
			auth, haveAuth = v, true
			continue
		}
		c.Extensions = setExtension(c.Extensions, k, v)
	}
	if !haveAuth {
		return c, privateError("Invalid OAUTHBEARER client first message: 'auth' not specified")
	}
	scheme, token, ok := strings.Cut(auth, " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !isWordChars(scheme) || !isBearerToken(token) {
		return c, privateError("Invalid OAUTHBEARER client first message: invalid 'auth' format")
	}
	if !strings.EqualFold(scheme, "bearer") {
		return c, privateError("Invalid scheme in OAUTHBEARER client first message")
	}
	c.Token = token
	return c, nil
}

func setExtension(exts []ScramExtension, k, v string) []ScramExtension {
	for i := range exts {
		if exts[i].Key == k {
			exts[i].Value = v
			return exts
		}
	}
	return append(exts, ScramExtension{Key: k, Value: v})
}

func isOAuthKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func isOAuthValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 0x21 && c <= 0x7e || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			return false
		}
	}
	return true
}

// isWordChars: Java's \w+ (ASCII letters, digits, underscore).
func isWordChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isBearerToken: [-_~+/.a-zA-Z0-9]+ followed by any '=' padding.
func isBearerToken(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_~+/.", c) >= 0) {
			return false
		}
	}
	return true
}

// TokenValidator validates a bearer token: *JWTValidator.
type TokenValidator interface {
	Validate(token string) (Token, error)
}

type oauthState uint8

const (
	oauthReceiveClientFirst oauthState = iota
	oauthSentError                     // the client should acknowledge with %x01
	oauthComplete
	oauthFailed
)

// OAuthBearerServer is the server side of OAUTHBEARER as Kafka's
// OAuthBearerSaslServer: the client sends its token once; a valid one
// completes the exchange with an empty answer; an invalid one is answered
// with {"status":"invalid_token"}, the client acknowledges with %x01, and
// authentication fails with that JSON as the message.
type OAuthBearerServer struct {
	validator TokenValidator
	state     oauthState
	errorJSON string
	token     Token
	// Failure is why the last token was refused, for the operator's
	// log (the client sees only the JSON status).
	Failure error
}

// NewOAuthBearerServer returns an OAUTHBEARER exchange validating tokens
// with validator.
func NewOAuthBearerServer(validator TokenValidator) *OAuthBearerServer {
	return &OAuthBearerServer{validator: validator}
}

// Step implements Server.
func (s *OAuthBearerServer) Step(in []byte) ([]byte, bool, error) {
	switch s.state {
	case oauthSentError:
		s.state = oauthFailed
		if len(in) == 1 && in[0] == kvsep {
			return nil, false, publicError(s.errorJSON)
		}
		// Kafka parses anything else as a fresh initial response; a
		// client that does so after an error is misbehaving: refuse.
		return nil, false, errOAuthFormat
	case oauthReceiveClientFirst:
	default:
		return nil, false, &Error{Message: "Unexpected challenge in OAUTHBEARER server state", IllegalState: true}
	}
	first, err := ParseOAuthClientFirst(in)
	if err != nil {
		s.state = oauthFailed
		return nil, false, err
	}
	tok, verr := s.validator.Validate(first.Token)
	if verr != nil {
		s.Failure = verr
		s.state = oauthSentError
		s.errorJSON = `{"status":"invalid_token"}`
		return []byte(s.errorJSON), false, nil
	}
	if first.Authzid != "" && first.Authzid != tok.Principal {
		s.state = oauthFailed
		return nil, false, publicError("Authentication failed: Client requested an authorization id (" + first.Authzid +
			") that is different from the token's principal name (" + tok.Principal + ")")
	}
	s.token = tok
	s.state = oauthComplete
	return []byte{}, true, nil
}

// Reason is why the last token was refused (Failure), for the operator's
// log.
func (s *OAuthBearerServer) Reason() error { return s.Failure }

// Username implements Server: the token's subject.
func (s *OAuthBearerServer) Username() string { return s.token.Principal }

// CredentialExpiry implements CredentialExpirer: the session lasts no
// longer than the token (KIP-368).
func (s *OAuthBearerServer) CredentialExpiry() (time.Time, bool) {
	return s.token.Expiry, s.state == oauthComplete
}
