package sasl

import "time"

// Mechanism names, as SaslHandshake carries them and
// sasl.enabled.mechanisms lists them.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// Server is the server side of one SASL exchange on one connection: a
// state machine fed the client's messages in order. It does no I/O and
// reads no clock; its randomness and credentials are injected.
type Server interface {
	// Step consumes the client's next message and returns the message to
	// send back. done reports that authentication succeeded (out may still
	// hold a last message, SCRAM's server-final). After an error or done,
	// the exchange is over: a further Step fails.
	Step(in []byte) (out []byte, done bool, err error)
	// Username is the authenticated name (the authorization id Kafka's
	// principal builder turns into User:<name>); valid once done.
	Username() string
}

// CredentialExpirer is implemented by a Server whose credential expires
// (OAUTHBEARER's token): the session lifetime is capped at that time, as
// Kafka's CREDENTIAL_LIFETIME_MS negotiated property does.
type CredentialExpirer interface {
	CredentialExpiry() (time.Time, bool)
}

// Error is a failed authentication.
//
// Kafka distinguishes a SaslAuthenticationException, whose message the
// client receives, from any other failure, for which the client receives
// only "Authentication failed during authentication due to invalid
// credentials with SASL mechanism <M>" (so that, for instance, whether a
// user exists does not leak). Public carries that distinction. Message
// never holds a password, a proof or a raw client message: it is fit for
// the operator's log.
type Error struct {
	Message string
	Public  bool
	// IllegalState marks a message received after the exchange ended
	// (Kafka's IllegalSaslStateException): Kafka closes the connection
	// without a SaslAuthenticate response.
	IllegalState bool
}

func (e *Error) Error() string { return e.Message }

// publicError is a failure whose message the client may see.
func publicError(msg string) *Error { return &Error{Message: msg, Public: true} }

// privateError is a failure the client learns only as "invalid
// credentials".
func privateError(msg string) *Error { return &Error{Message: msg} }

// ClientMessage is what Kafka puts in SaslAuthenticateResponse's
// ErrorMessage for err during an exchange of mechanism.
func ClientMessage(err error, mechanism string, reauthenticating bool) string {
	if e, ok := err.(*Error); ok && e.Public {
		return e.Message
	}
	what := "authentication"
	if reauthenticating {
		what = "re-authentication"
	}
	return "Authentication failed during " + what + " due to invalid credentials with SASL mechanism " + mechanism
}
