package sasl

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
)

// JWKS is a set of verification keys read from a JSON Web Key Set
// document (RFC 7517), as Kafka's sasl.oauthbearer.jwks.endpoint.url
// (a file: URL or an https one the broker fetches) provides. Only the key
// types this package verifies are kept: RSA keys (for RS256) and EC P-256
// keys (for ES256); keys with "use" other than "sig" are skipped.
type JWKS struct {
	keys []jwk
}

type jwk struct {
	kid string
	alg string // "" when the document does not restrict it
	rsa *rsa.PublicKey
	ec  *ecdsa.PublicKey
}

// jwksMaxKeys bounds the keys kept from one document.
const jwksMaxKeys = 1000

// ParseJWKS reads a JWKS document. Keys it does not understand are
// skipped; a malformed key of a supported type is an error, as is a
// document with no usable key.
func ParseJWKS(doc []byte) (*JWKS, error) {
	var raw struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	set := &JWKS{}
	for i, k := range raw.Keys {
		str := func(name string) string {
			var s string
			if v, ok := k[name]; ok {
				json.Unmarshal(v, &s)
			}
			return s
		}
		if use := str("use"); use != "" && use != "sig" {
			continue
		}
		key := jwk{kid: str("kid"), alg: str("alg")}
		switch str("kty") {
		case "RSA":
			n, err1 := decodeB64URLInt(str("n"))
			e, err2 := decodeB64URLInt(str("e"))
			if err1 != nil || err2 != nil || n.Sign() <= 0 || n.BitLen() < 2048 || n.BitLen() > 8192 ||
				!e.IsInt64() || e.Int64() < 3 || e.Int64() > math.MaxInt32 || e.Bit(0) == 0 {
				return nil, fmt.Errorf("jwks: key %d: invalid RSA key (2048 to 8192 bits, odd exponent)", i)
			}
			key.rsa = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			if str("crv") != "P-256" {
				continue
			}
			x, err1 := base64.RawURLEncoding.DecodeString(str("x"))
			y, err2 := base64.RawURLEncoding.DecodeString(str("y"))
			if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
				return nil, fmt.Errorf("jwks: key %d: invalid P-256 key", i)
			}
			point := append(append([]byte{4}, x...), y...)
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
			if err != nil {
				return nil, fmt.Errorf("jwks: key %d: invalid P-256 key: %v", i, err)
			}
			key.ec = pub
		default:
			continue
		}
		if len(set.keys) >= jwksMaxKeys {
			return nil, fmt.Errorf("jwks: more than %d keys", jwksMaxKeys)
		}
		set.keys = append(set.keys, key)
	}
	if len(set.keys) == 0 {
		return nil, errors.New("jwks: no RSA or P-256 signing key")
	}
	return set, nil
}

// Len is the number of usable keys.
func (s *JWKS) Len() int { return len(s.keys) }

func decodeB64URLInt(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("bad integer")
	}
	return new(big.Int).SetBytes(b), nil
}

// JWTConfig configures JWT validation with Kafka's keys.
type JWTConfig struct {
	// Keys verifies signatures (sasl.oauthbearer.jwks.endpoint.url).
	// Required unless Unsecured.
	Keys *JWKS
	// Issuer is sasl.oauthbearer.expected.issuer; "" checks nothing.
	Issuer string
	// Audiences is sasl.oauthbearer.expected.audience; the token's aud
	// must contain one of them. Empty checks nothing.
	Audiences []string
	// ClockSkew is sasl.oauthbearer.clock.skew.seconds (Kafka's default
	// is 30 s).
	ClockSkew time.Duration
	// SubClaim is sasl.oauthbearer.sub.claim.name ("sub" when empty).
	SubClaim string
	// ScopeClaim is sasl.oauthbearer.scope.claim.name ("scope" when
	// empty).
	ScopeClaim string
	// Now is the clock; required.
	Now func() time.Time
	// Unsecured selects Kafka's unsecured mode for development
	// (OAuthBearerUnsecuredValidatorCallbackHandler): tokens must be
	// unsigned (alg "none") and are trusted as they are. Off by default;
	// never set it on a listener reachable by untrusted clients. A
	// validator is either secured or unsecured, never both.
	Unsecured bool
}

// Token is a validated bearer token.
type Token struct {
	Principal string
	Expiry    time.Time
	IssuedAt  time.Time
	Scopes    []string
}

// JWTValidator validates bearer tokens as Kafka's broker-side validator
// (ValidatorAccessTokenValidator, with jose4j): a compact JWS signed with
// RS256 or ES256 by a key of the JWKS (by kid when the token names one,
// else the only key that fits the algorithm), exp and iat required, nbf
// and exp checked against Now with ClockSkew, iss and aud when
// configured, the subject claim non-empty.
type JWTValidator struct {
	cfg JWTConfig
}

// NewJWTValidator checks the configuration.
func NewJWTValidator(cfg JWTConfig) (*JWTValidator, error) {
	if cfg.Now == nil {
		return nil, errors.New("jwt: a clock (Now) is required")
	}
	if !cfg.Unsecured && cfg.Keys == nil {
		return nil, errors.New("jwt: verification keys are required unless in unsecured mode")
	}
	if cfg.SubClaim == "" {
		cfg.SubClaim = "sub"
	}
	if cfg.ScopeClaim == "" {
		cfg.ScopeClaim = "scope"
	}
	return &JWTValidator{cfg: cfg}, nil
}

// jwtMaxBytes bounds a token; the SASL frame bound
// (DefaultMaxReceiveSize) is the other limit.
const jwtMaxBytes = 64 << 10

// Validate checks a compact JWS and returns its token. Errors explain
// the failure for the operator's log; the client only ever learns
// {"status":"invalid_token"}.
func (v *JWTValidator) Validate(compact string) (Token, error) {
	if len(compact) > jwtMaxBytes {
		return Token{}, errors.New("jwt: token too long")
	}
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return Token{}, errors.New("jwt: not a compact JWS (three dot-separated parts)")
	}
	headerJSON, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return Token{}, errors.New("jwt: header is not base64url")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Token{}, errors.New("jwt: payload is not base64url")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Token{}, errors.New("jwt: signature is not base64url")
	}
	var header struct {
		Alg  string          `json:"alg"`
		Kid  string          `json:"kid"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return Token{}, fmt.Errorf("jwt: header: %v", err)
	}
	if header.Crit != nil {
		return Token{}, errors.New("jwt: critical header parameters are not supported")
	}
	signingInput := compact[:len(parts[0])+1+len(parts[1])]
	if v.cfg.Unsecured {
		if header.Alg != "none" || len(sig) != 0 {
			return Token{}, errors.New("jwt: unsecured mode accepts only unsigned tokens (alg none)")
		}
	} else if err := v.verify(header.Alg, header.Kid, signingInput, sig); err != nil {
		return Token{}, err
	}
	return v.claims(payload)
}

func (v *JWTValidator) verify(alg, kid, signingInput string, sig []byte) error {
	if alg != "RS256" && alg != "ES256" {
		return fmt.Errorf("jwt: algorithm %q is not accepted (RS256, ES256)", alg)
	}
	var key *jwk
	for i := range v.cfg.Keys.keys {
		k := &v.cfg.Keys.keys[i]
		if (alg == "RS256") != (k.rsa != nil) || (k.alg != "" && k.alg != alg) {
			continue
		}
		if kid != "" && k.kid != kid {
			continue
		}
		if key != nil {
			return errors.New("jwt: more than one key fits the token and it names none (kid)")
		}
		key = k
	}
	if key == nil {
		return fmt.Errorf("jwt: no %s key with kid %q", alg, kid)
	}
	digest := sha256.Sum256([]byte(signingInput))
	switch alg {
	case "RS256":
		if rsa.VerifyPKCS1v15(key.rsa, crypto.SHA256, digest[:], sig) != nil {
			return errors.New("jwt: bad signature")
		}
	case "ES256":
		if len(sig) != 64 {
			return errors.New("jwt: bad signature")
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(key.ec, digest[:], r, s) {
			return errors.New("jwt: bad signature")
		}
	}
	return nil
}

// numericDate reads a JWT NumericDate (seconds, possibly fractional).
func numericDate(raw json.RawMessage) (time.Time, bool, error) {
	if raw == nil || bytes.Equal(raw, []byte("null")) {
		return time.Time{}, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false, errors.New("not a NumericDate")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

func (v *JWTValidator) claims(payload []byte) (Token, error) {
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		return Token{}, fmt.Errorf("jwt: claims: %v", err)
	}
	now := v.cfg.Now()
	skew := v.cfg.ClockSkew
	exp, ok, err := numericDate(claims["exp"])
	if err != nil || !ok {
		return Token{}, errors.New("jwt: exp is required and must be a NumericDate")
	}
	if !now.Before(exp.Add(skew)) {
		return Token{}, errors.New("jwt: expired")
	}
	// Kafka's secured validator requires iat; its unsecured one does not.
	iat, ok, err := numericDate(claims["iat"])
	if err != nil || (!ok && !v.cfg.Unsecured) {
		return Token{}, errors.New("jwt: iat is required and must be a NumericDate")
	}
	if nbf, ok, err := numericDate(claims["nbf"]); err != nil {
		return Token{}, errors.New("jwt: nbf must be a NumericDate")
	} else if ok && now.Add(skew).Before(nbf) {
		return Token{}, errors.New("jwt: not yet valid (nbf)")
	}
	if v.cfg.Issuer != "" {
		var iss string
		if json.Unmarshal(claims["iss"], &iss) != nil || iss != v.cfg.Issuer {
			return Token{}, errors.New("jwt: unexpected issuer")
		}
	}
	if len(v.cfg.Audiences) > 0 {
		auds, err := stringOrList(claims["aud"])
		if err != nil {
			return Token{}, errors.New("jwt: aud must be a string or a list of strings")
		}
		found := false
		for _, a := range auds {
			for _, want := range v.cfg.Audiences {
				found = found || a == want
			}
		}
		if !found {
			return Token{}, errors.New("jwt: none of the expected audiences")
		}
	}
	var sub string
	if raw, ok := claims[v.cfg.SubClaim]; !ok || json.Unmarshal(raw, &sub) != nil || strings.TrimSpace(sub) == "" {
		return Token{}, fmt.Errorf("jwt: %s must be a non-empty string", v.cfg.SubClaim)
	}
	scopes, err := scopeClaim(claims[v.cfg.ScopeClaim])
	if err != nil {
		return Token{}, fmt.Errorf("jwt: %s: %v", v.cfg.ScopeClaim, err)
	}
	return Token{Principal: strings.TrimSpace(sub), Expiry: exp, IssuedAt: iat, Scopes: scopes}, nil
}

func stringOrList(raw json.RawMessage) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// scopeClaim is Kafka's: a space-separated string or a list; trimmed,
// no empty or repeated scope.
func scopeClaim(raw json.RawMessage) ([]string, error) {
	var scopes []string
	var one string
	if raw != nil && json.Unmarshal(raw, &one) == nil {
		scopes = strings.Fields(one)
	} else if raw != nil && !bytes.Equal(raw, []byte("null")) {
		list, err := stringOrList(raw)
		if err != nil {
			return nil, nil // Kafka treats any other shape as no scopes
		}
		scopes = list
	}
	seen := map[string]bool{}
	out := scopes[:0]
	for _, s := range scopes {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, errors.New("scope value must not be empty")
		}
		if seen[s] {
			return nil, fmt.Errorf("scope value must not contain duplicates - %s already present", s)
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, nil
}
