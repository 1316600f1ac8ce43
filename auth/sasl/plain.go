package sasl

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"strconv"
	"unicode/utf8"
)

// PlainLookup returns the configured password of a user (Kafka's JAAS
// user_<name>="<password>" options of PlainLoginModule), ok false for an
// unknown user, or an error when the store cannot answer.
type PlainLookup func(username string) (password []byte, ok bool, err error)

// PlainServer is SASL/PLAIN (RFC 4616) as Kafka's PlainSaslServer:
//
//	message = [authzid] NUL authcid NUL passwd
//
// one client message, an empty answer, done. authzid must be empty or
// equal to authcid.
type PlainServer struct {
	lookup   PlainLookup
	username string
	finished bool
}

// NewPlainServer returns a PLAIN exchange checking passwords with lookup.
func NewPlainServer(lookup PlainLookup) *PlainServer { return &PlainServer{lookup: lookup} }

// ParsePlain splits a PLAIN message into its three fields with Kafka's
// rules: the bytes are read as UTF-8 (invalid sequences become U+FFFD, as
// Java's decoder does), split at NUL into at most four tokens, and
// exactly three are required. The fields are sub-slices of msg or, when
// msg is not valid UTF-8, of one copy of it.
func ParsePlain(msg []byte) (authzid, authcid, passwd []byte, err error) {
	if !utf8.Valid(msg) {
		msg = bytes.ToValidUTF8(msg, []byte("\uFFFD"))
	}
	var tokens [3][]byte
	n := 0
	rest := msg
	for n < 4 {
		i := bytes.IndexByte(rest, 0)
		if n < 3 {
			if i < 0 {
				tokens[n] = rest
			} else {
				tokens[n] = rest[:i]
			}
		}
		n++
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	if n != 3 {
		return nil, nil, nil, publicError("Invalid SASL/PLAIN response: expected 3 tokens, got " + strconv.Itoa(n))
	}
	return tokens[0], tokens[1], tokens[2], nil
}

// Step implements Server.
func (s *PlainServer) Step(in []byte) ([]byte, bool, error) {
	if s.finished {
		return nil, false, &Error{Message: "Unexpected challenge in Sasl server state COMPLETE", IllegalState: true}
	}
	s.finished = true
	authzid, username, password, err := ParsePlain(in)
	if err != nil {
		return nil, false, err
	}
	if len(username) == 0 {
		return nil, false, publicError("Authentication failed: username not specified")
	}
	if len(password) == 0 {
		return nil, false, publicError("Authentication failed: password not specified")
	}
	want, ok, lookupErr := s.lookup(string(username))
	if lookupErr != nil {
		return nil, false, publicError("Authentication failed: credentials for user could not be verified")
	}
	// Compare digests, so neither the length of the configured password
	// nor whether the user exists shows in the time taken.
	got := sha256.Sum256(password)
	exp := sha256.Sum256(want)
	match := subtle.ConstantTimeCompare(got[:], exp[:]) == 1
	if !ok || !match {
		return nil, false, publicError("Authentication failed: Invalid username or password")
	}
	if len(authzid) != 0 && !bytes.Equal(authzid, username) {
		return nil, false, publicError("Authentication failed: Client requested an authorization id that is different from username")
	}
	s.username = string(username)
	return []byte{}, true, nil
}

// Username implements Server.
func (s *PlainServer) Username() string { return s.username }
