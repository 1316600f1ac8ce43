package sasl

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// ScramMechanism is one SCRAM variant with Kafka's iteration bounds
// (org.apache.kafka.common.security.scram.internals.ScramMechanism).
type ScramMechanism struct {
	Name string
	// MinIterations is the least a credential may use: authentication
	// with fewer fails, as in Kafka.
	MinIterations int
	// MaxIterations is the most AlterUserScramCredentials accepts.
	MaxIterations int
	newHash       func() hash.Hash
	size          int
}

// The two SCRAM mechanisms Kafka implements.
var (
	ScramSHA256 = &ScramMechanism{Name: MechanismScramSHA256, MinIterations: 4096, MaxIterations: 16384, newHash: sha256.New, size: sha256.Size}
	ScramSHA512 = &ScramMechanism{Name: MechanismScramSHA512, MinIterations: 4096, MaxIterations: 16384, newHash: sha512.New, size: sha512.Size}
)

// ScramMechanismByName returns the mechanism of that name, or nil.
func ScramMechanismByName(name string) *ScramMechanism {
	switch name {
	case MechanismScramSHA256:
		return ScramSHA256
	case MechanismScramSHA512:
		return ScramSHA512
	}
	return nil
}

// Credential is what the broker stores for a SCRAM user (Kafka's
// ScramCredential): never the password, only what verifies a proof.
type Credential struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(ClientKey)
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

func (m *ScramMechanism) hmac(key []byte, parts ...string) []byte {
	h := hmac.New(m.newHash, key)
	for _, p := range parts {
		io.WriteString(h, p)
	}
	return h.Sum(nil)
}

// hi is RFC 5802's Hi(), PBKDF2 with the mechanism's HMAC and one block.
func (m *ScramMechanism) hi(password, salt []byte, iterations int) []byte {
	mac := hmac.New(m.newHash, password)
	mac.Write(salt)
	mac.Write([]byte{0, 0, 0, 1})
	u := mac.Sum(nil)
	result := append([]byte(nil), u...)
	for i := 2; i <= iterations; i++ {
		mac.Reset()
		mac.Write(u)
		u = mac.Sum(u[:0])
		for j := range result {
			result[j] ^= u[j]
		}
	}
	return result
}

// DeriveCredential computes the stored credential for a password, as
// Kafka's ScramFormatter.generateCredential (the password's UTF-8 bytes,
// no SASLprep, as Kafka). iterations below MinIterations is refused.
func (m *ScramMechanism) DeriveCredential(password string, salt []byte, iterations int) (Credential, error) {
	if iterations < m.MinIterations {
		return Credential{}, fmt.Errorf("iterations %d is less than the minimum %d for %s", iterations, m.MinIterations, m.Name)
	}
	salted := m.hi([]byte(password), salt, iterations)
	clientKey := m.hmac(salted, "Client Key")
	h := m.newHash()
	h.Write(clientKey)
	return Credential{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  h.Sum(nil),
		ServerKey:  m.hmac(salted, "Server Key"),
	}, nil
}

// CredentialFromSaltedPassword computes the stored credential from a
// salted password (Hi(password, salt, iterations)), as
// AlterUserScramCredentials carries it: Kafka's
// ScramFormatter.generateCredential without the PBKDF2 step.
func (m *ScramMechanism) CredentialFromSaltedPassword(salted, salt []byte, iterations int) Credential {
	clientKey := m.hmac(salted, "Client Key")
	h := m.newHash()
	h.Write(clientKey)
	return Credential{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  h.Sum(nil),
		ServerKey:  m.hmac(salted, "Server Key"),
	}
}

// NewCredential derives a credential with a fresh salt read from random,
// made as Kafka makes it (the UTF-8 bytes of a random 130-bit number
// written in base 36).
func (m *ScramMechanism) NewCredential(password string, iterations int, random io.Reader) (Credential, error) {
	s, err := randomString(random)
	if err != nil {
		return Credential{}, err
	}
	return m.DeriveCredential(password, []byte(s), iterations)
}

// randomString is Kafka's ScramFormatter.secureRandomString: a random
// 130-bit number in base 36.
func randomString(random io.Reader) (string, error) {
	var b [17]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("scram: reading randomness: %w", err)
	}
	b[0] &= 0x03 // 130 bits
	return new(big.Int).SetBytes(b[:]).Text(36), nil
}

// ScramClientFirst is a parsed client-first-message:
//
//	gs2-header [reserved-mext ","] username "," nonce ["," extensions]
//	gs2-header = "n," ["a=" saslname] ","   (no channel binding)
//
// with Kafka's grammar (ScramMessages.ClientFirstMessage).
type ScramClientFirst struct {
	GS2Header  string // "n,," or "n,a=<authzid>,"
	Authzid    string // decoded
	Username   string // decoded from saslname (=2C is ',', =3D is '=')
	Nonce      string
	Bare       string // everything after the gs2 header, for the AuthMessage
	Extensions []ScramExtension
}

// ScramExtension is one key=value extension of a client message.
type ScramExtension struct{ Key, Value string }

// TokenAuth reports the tokenauth=true extension (a delegation token
// login; Boolean.parseBoolean, so any case of "true").
func (c *ScramClientFirst) TokenAuth() bool {
	for _, e := range c.Extensions {
		if e.Key == "tokenauth" && strings.EqualFold(e.Value, "true") {
			return true
		}
	}
	return false
}

var errClientFirstFormat = privateError("Invalid SCRAM client first message format")

// ParseScramClientFirst parses a client-first-message. It allocates in
// proportion to len(msg) and never panics.
func ParseScramClientFirst(msg []byte) (ScramClientFirst, error) {
	var c ScramClientFirst
	s := string(msg)
	if !strings.HasPrefix(s, "n,") {
		return c, errClientFirstFormat
	}
	rest := s[2:]
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return c, errClientFirstFormat
	}
	if authz := rest[:comma]; authz != "" {
		name, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return c, errClientFirstFormat
		}
		decoded, ok := decodeSaslName(name)
		if !ok {
			return c, errClientFirstFormat
		}
		c.Authzid = decoded
	}
	c.GS2Header = s[:2+comma+1]
	c.Bare = rest[comma+1:]
	fields := strings.Split(c.Bare, ",")
	i := 0
	// reserved-mext: Kafka's grammar admits "m=<value>," and ignores it.
	if i < len(fields) && strings.HasPrefix(fields[i], "m=") {
		if !isValue(fields[i][2:]) {
			return c, errClientFirstFormat
		}
		i++
	}
	if i >= len(fields) || !strings.HasPrefix(fields[i], "n=") {
		return c, errClientFirstFormat
	}
	name, ok := decodeSaslName(fields[i][2:])
	if !ok {
		return c, errClientFirstFormat
	}
	c.Username = name
	i++
	if i >= len(fields) || !strings.HasPrefix(fields[i], "r=") || !isPrintable(fields[i][2:]) {
		return c, errClientFirstFormat
	}
	c.Nonce = fields[i][2:]
	i++
	for ; i < len(fields); i++ {
		e, ok := parseExtension(fields[i])
		if !ok {
			return c, errClientFirstFormat
		}
		c.Extensions = append(c.Extensions, e)
	}
	return c, nil
}

// ScramClientFinal is a parsed client-final-message:
//
//	"c=" base64(gs2-header) ",r=" nonce ["," extensions] ",p=" base64(proof)
type ScramClientFinal struct {
	ChannelBinding []byte
	Nonce          string
	Proof          []byte
	WithoutProof   string // everything before ",p=", for the AuthMessage
}

var errClientFinalFormat = privateError("Invalid SCRAM client final message format")

// ParseScramClientFinal parses a client-final-message. It allocates in
// proportion to len(msg) and never panics.
func ParseScramClientFinal(msg []byte) (ScramClientFinal, error) {
	var c ScramClientFinal
	s := string(msg)
	fields := strings.Split(s, ",")
	if len(fields) < 3 {
		return c, errClientFinalFormat
	}
	cb, ok := strings.CutPrefix(fields[0], "c=")
	if !ok {
		return c, errClientFinalFormat
	}
	if c.ChannelBinding, ok = decodeBase64(cb); !ok {
		return c, errClientFinalFormat
	}
	if c.Nonce, ok = strings.CutPrefix(fields[1], "r="); !ok || !isPrintable(c.Nonce) {
		return c, errClientFinalFormat
	}
	for _, f := range fields[2 : len(fields)-1] {
		if _, ok := parseExtension(f); !ok {
			return c, errClientFinalFormat
		}
	}
	last := fields[len(fields)-1]
	proof, ok := strings.CutPrefix(last, "p=")
	if !ok {
		return c, errClientFinalFormat
	}
	if c.Proof, ok = decodeBase64(proof); !ok {
		return c, errClientFinalFormat
	}
	c.WithoutProof = s[:len(s)-len(last)-1]
	return c, nil
}

// decodeSaslName undoes RFC 5802's saslname escaping: characters
// 0x01-0x7F except ',' and '=', with "=2C" for ',' and "=3D" for '='.
// Empty is invalid.
func decodeSaslName(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '=':
			switch {
			case strings.HasPrefix(s[i:], "=2C"):
				b.WriteByte(',')
			case strings.HasPrefix(s[i:], "=3D"):
				b.WriteByte('=')
			default:
				return "", false
			}
			i += 2
		case ch == 0 || ch > 0x7f || ch == ',':
			return "", false
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), true
}

// EncodeSaslName escapes a username for a client-first-message.
func EncodeSaslName(name string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(name)
}

// isValue: 1*(0x01-0x7F except ',').
func isValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c > 0x7f || c == ',' {
			return false
		}
	}
	return true
}

// isPrintable: 1*(0x21-0x7E except ',').
func isPrintable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// parseExtension: ALPHA+ "=" value.
func parseExtension(f string) (ScramExtension, bool) {
	k, v, ok := strings.Cut(f, "=")
	if !ok || k == "" || !isValue(v) {
		return ScramExtension{}, false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i] | 0x20; c < 'a' || c > 'z' {
			return ScramExtension{}, false
		}
	}
	return ScramExtension{Key: k, Value: v}, true
}

// decodeBase64 accepts Kafka's BASE64 production (standard alphabet,
// padded, possibly empty).
func decodeBase64(s string) ([]byte, bool) {
	if len(s)%4 != 0 {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, false
		}
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// ScramLookup returns the stored credential of a user, ok false for an
// unknown user, or an error when the store cannot answer.
type ScramLookup func(username string) (cred Credential, ok bool, err error)

type scramState uint8

const (
	scramReceiveClientFirst scramState = iota
	scramReceiveClientFinal
	scramComplete
	scramFailed
)

var scramStateNames = [...]string{"RECEIVE_CLIENT_FIRST_MESSAGE", "RECEIVE_CLIENT_FINAL_MESSAGE", "COMPLETE", "FAILED"}

// ScramServer is the server side of SCRAM-SHA-256/512 (RFC 5802, RFC
// 7677) as Kafka's ScramSaslServer:
//
//	client-first  ──► server-first (r=cnonce+snonce, s=salt, i=iterations)
//	client-final  ──► server-final (v=ServerSignature), done
//
// Differences from Kafka, all stricter in ways no conforming client
// notices: the channel binding must
// decode to the client-first gs2 header or to "n,," (the Java client
// always sends "n,,"; Kafka does not check it); the AuthMessage uses the
// client's messages as received (RFC 5802) where Kafka re-serialises them
// (identical for every client that sends no extension in client-final).
// A tokenauth=true extension fails: delegation tokens are not supported.
type ScramServer struct {
	mech   *ScramMechanism
	lookup ScramLookup
	// serverNonce makes the server's part of the nonce; tests replace it
	// to replay RFC 7677's exchange, whose nonce is not base 36.
	serverNonce func() (string, error)

	state       scramState
	first       ScramClientFirst
	serverFirst string
	nonce       string
	cred        Credential
	username    string
}

// NewScramServer returns a SCRAM exchange for mech; random supplies the
// server nonce (crypto/rand.Reader in the broker, a fixed stream in
// tests).
func NewScramServer(mech *ScramMechanism, lookup ScramLookup, random io.Reader) *ScramServer {
	return &ScramServer{mech: mech, lookup: lookup, serverNonce: func() (string, error) { return randomString(random) }}
}

// Username implements Server.
func (s *ScramServer) Username() string { return s.username }

// Step implements Server.
func (s *ScramServer) Step(in []byte) ([]byte, bool, error) {
	var out []byte
	var err error
	switch s.state {
	case scramReceiveClientFirst:
		out, err = s.clientFirst(in)
		if err == nil {
			s.state = scramReceiveClientFinal
			return out, false, nil
		}
	case scramReceiveClientFinal:
		out, err = s.clientFinal(in)
		if err == nil {
			s.state = scramComplete
			s.clear()
			return out, true, nil
		}
	default:
		return nil, false, &Error{Message: "Unexpected challenge in Sasl server state " + scramStateNames[s.state], IllegalState: true}
	}
	s.state = scramFailed
	s.clear()
	return nil, false, err
}

func (s *ScramServer) clear() { s.cred = Credential{} }

func (s *ScramServer) clientFirst(in []byte) ([]byte, error) {
	first, err := ParseScramClientFirst(in)
	if err != nil {
		return nil, err
	}
	s.first = first
	serverNonce, err := s.serverNonce()
	if err != nil {
		return nil, privateError("Authentication failed: Credentials could not be obtained")
	}
	if first.TokenAuth() {
		// Kafka looks the name up as a delegation token id; we hold none.
		return nil, privateError("Token Authentication failed: Invalid tokenId : " + first.Username)
	}
	cred, ok, err := s.lookup(first.Username)
	if err != nil {
		return nil, privateError("Authentication failed: Credentials could not be obtained")
	}
	if !ok {
		return nil, privateError("Authentication failed: Invalid user credentials")
	}
	if first.Authzid != "" && first.Authzid != first.Username {
		return nil, publicError("Authentication failed: Client requested an authorization id that is different from username")
	}
	if cred.Iterations < s.mech.MinIterations {
		return nil, privateError("Iterations " + strconv.Itoa(cred.Iterations) + " is less than the minimum " +
			strconv.Itoa(s.mech.MinIterations) + " for " + s.mech.Name)
	}
	if len(cred.StoredKey) != s.mech.size || len(cred.ServerKey) != s.mech.size {
		return nil, privateError("Authentication failed: Credentials could not be obtained")
	}
	s.cred = cred
	s.nonce = first.Nonce + serverNonce
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) + ",i=" + strconv.Itoa(cred.Iterations)
	return []byte(s.serverFirst), nil
}

func (s *ScramServer) clientFinal(in []byte) ([]byte, error) {
	final, err := ParseScramClientFinal(in)
	if err != nil {
		return nil, err
	}
	// Kafka's rule: the final nonce must END with the server-first nonce.
	// librdkafka (kcat, confluent-kafka-*) sends its client nonce followed
	// by the whole server-first nonce, so equality would refuse it.
	if !strings.HasSuffix(final.Nonce, s.nonce) {
		return nil, privateError("Invalid client nonce in the final client message.")
	}
	if cb := string(final.ChannelBinding); cb != s.first.GS2Header && cb != "n,," {
		return nil, privateError("Invalid channel binding in the final client message.")
	}
	authMessage := s.first.Bare + "," + s.serverFirst + "," + final.WithoutProof
	clientSignature := s.mech.hmac(s.cred.StoredKey, authMessage)
	if len(final.Proof) != len(clientSignature) {
		return nil, privateError("Invalid client credentials")
	}
	clientKey := make([]byte, len(clientSignature))
	for i := range clientKey {
		clientKey[i] = clientSignature[i] ^ final.Proof[i]
	}
	h := s.mech.newHash()
	h.Write(clientKey)
	if subtle.ConstantTimeCompare(h.Sum(nil), s.cred.StoredKey) != 1 {
		return nil, privateError("Invalid client credentials")
	}
	serverSignature := s.mech.hmac(s.cred.ServerKey, authMessage)
	s.username = s.first.Username
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), nil
}
