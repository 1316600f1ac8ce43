package sasl

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var testKeys = sync.OnceValues(func() (*rsa.PrivateKey, *ecdsa.PrivateKey) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return rk, ek
})

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func testJWKS() string {
	rk, ek := testKeys()
	pt, _ := ek.PublicKey.Bytes()
	e := big64(rk.E)
	return fmt.Sprintf(`{"keys":[
		{"kty":"RSA","kid":"r1","use":"sig","alg":"RS256","n":%q,"e":%q},
		{"kty":"EC","kid":"e1","crv":"P-256","x":%q,"y":%q},
		{"kty":"oct","kid":"h1","k":"c2VjcmV0"},
		{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"}]}`,
		b64(rk.N.Bytes()), e, b64(pt[1:33]), b64(pt[33:]))
}

func big64(e int) string {
	var b []byte
	for ; e > 0; e >>= 8 {
		b = append([]byte{byte(e)}, b...)
	}
	return b64(b)
}

// sign makes a compact JWS; alg "none" leaves the signature empty.
func sign(t testing.TB, alg, kid string, claims map[string]any) string {
	header := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	hj, _ := json.Marshal(header)
	cj, _ := json.Marshal(claims)
	input := b64(hj) + "." + b64(cj)
	digest := sha256.Sum256([]byte(input))
	rk, ek := testKeys()
	var sig []byte
	switch alg {
	case "RS256":
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, digest[:]); err != nil {
			t.Fatal(err)
		}
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, ek, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + b64(sig)
}

var jwtNow = time.Unix(1_800_000_000, 0)

func goodClaims() map[string]any {
	return map[string]any{"sub": "alice", "iss": "https://idp", "aud": []string{"kafka", "other"},
		"iat": jwtNow.Unix() - 10, "exp": jwtNow.Unix() + 3600, "scope": "produce consume"}
}

func testValidator(t testing.TB, mutate func(*JWTConfig)) *JWTValidator {
	keys, err := ParseJWKS([]byte(testJWKS()))
	if err != nil {
		t.Fatal(err)
	}
	cfg := JWTConfig{Keys: keys, Issuer: "https://idp", Audiences: []string{"kafka"}, ClockSkew: 30 * time.Second,
		Now: func() time.Time { return jwtNow }}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := NewJWTValidator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJWKS(t *testing.T) {
	keys, err := ParseJWKS([]byte(testJWKS()))
	if err != nil || keys.Len() != 2 {
		t.Fatalf("%v %v", keys, err)
	}
	for _, doc := range []string{``, `{}`, `{"keys":[]}`, `{"keys":[{"kty":"oct","k":"x"}]}`,
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, `{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`} {
		if _, err := ParseJWKS([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", doc)
		}
	}
}

func TestJWTValidate(t *testing.T) {
	v := testValidator(t, nil)
	for _, alg := range []string{"RS256", "ES256"} {
		for _, kid := range []string{"", map[string]string{"RS256": "r1", "ES256": "e1"}[alg]} {
			tok, err := v.Validate(sign(t, alg, kid, goodClaims()))
			if err != nil || tok.Principal != "alice" || !tok.Expiry.Equal(jwtNow.Add(time.Hour)) ||
				strings.Join(tok.Scopes, " ") != "produce consume" {
				t.Fatalf("%s kid=%q: %+v %v", alg, kid, tok, err)
			}
		}
	}
	with := func(k string, val any) map[string]any {
		c := goodClaims()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	bad := map[string]string{
		"wrong issuer":      sign(t, "RS256", "r1", with("iss", "https://evil")),
		"no issuer":         sign(t, "RS256", "r1", with("iss", nil)),
		"wrong audience":    sign(t, "RS256", "r1", with("aud", "billing")),
		"no audience":       sign(t, "RS256", "r1", with("aud", nil)),
		"expired":           sign(t, "RS256", "r1", with("exp", jwtNow.Unix()-31)),
		"no exp":            sign(t, "RS256", "r1", with("exp", nil)),
		"exp not a number":  sign(t, "RS256", "r1", with("exp", "soon")),
		"no iat":            sign(t, "RS256", "r1", with("iat", nil)),
		"nbf in the future": sign(t, "RS256", "r1", with("nbf", jwtNow.Unix()+31)),
		"no sub":            sign(t, "RS256", "r1", with("sub", nil)),
		"blank sub":         sign(t, "RS256", "r1", with("sub", "  ")),
		"duplicate scope":   sign(t, "RS256", "r1", with("scope", "a a")),
		"unknown kid":       sign(t, "RS256", "r9", goodClaims()),
		"kid of other type": sign(t, "RS256", "e1", goodClaims()),
		"alg none":          sign(t, "none", "", goodClaims()),
		"HS256":             b64([]byte(`{"alg":"HS256","kid":"h1"}`)) + "." + strings.Split(sign(t, "none", "", goodClaims()), ".")[1] + ".c2lnbmF0dXJl",
		"not three parts":   "a.b",
		"garbage":           "!!.??.##",
	}
	// A signature over other claims.
	good := sign(t, "ES256", "e1", goodClaims())
	other := sign(t, "ES256", "e1", with("sub", "mallory"))
	bad["swapped payload"] = strings.Split(good, ".")[0] + "." + strings.Split(other, ".")[1] + "." + strings.Split(good, ".")[2]
	for name, tok := range bad {
		if got, err := v.Validate(tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, got)
		}
	}
	// Within the clock skew.
	if _, err := v.Validate(sign(t, "RS256", "r1", with("exp", jwtNow.Unix()-29))); err != nil {
		t.Errorf("expired within skew: %v", err)
	}
	if _, err := v.Validate(sign(t, "RS256", "r1", with("nbf", jwtNow.Unix()+29))); err != nil {
		t.Errorf("nbf within skew: %v", err)
	}
	// Without configured issuer and audience, neither is checked.
	loose := testValidator(t, func(c *JWTConfig) { c.Issuer, c.Audiences = "", nil })
	if _, err := loose.Validate(sign(t, "RS256", "r1", with("aud", nil))); err != nil {
		t.Errorf("no audience configured: %v", err)
	}
	// Another subject claim.
	custom := testValidator(t, func(c *JWTConfig) { c.SubClaim = "client_id" })
	if tok, err := custom.Validate(sign(t, "RS256", "r1", with("client_id", "svc-1"))); err != nil || tok.Principal != "svc-1" {
		t.Errorf("sub claim override: %+v %v", tok, err)
	}
}

func TestJWTUnsecured(t *testing.T) {
	if _, err := NewJWTValidator(JWTConfig{Now: func() time.Time { return jwtNow }}); err == nil {
		t.Fatal("a validator without keys was built outside unsecured mode")
	}
	v, err := NewJWTValidator(JWTConfig{Unsecured: true, Now: func() time.Time { return jwtNow }})
	if err != nil {
		t.Fatal(err)
	}
	c := goodClaims()
	delete(c, "iat")
	if tok, err := v.Validate(sign(t, "none", "", c)); err != nil || tok.Principal != "alice" {
		t.Fatalf("unsecured: %+v %v", tok, err)
	}
	if _, err := v.Validate(sign(t, "RS256", "r1", goodClaims())); err == nil {
		t.Fatal("unsecured mode accepted a signed token (it cannot verify it)")
	}
	c["exp"] = jwtNow.Unix() - 1
	if _, err := v.Validate(sign(t, "none", "", c)); err == nil {
		t.Fatal("unsecured mode accepted an expired token")
	}
}

func oauthMessage(authzid, token string, ext ...string) []byte {
	m := "n," + authzid + ",\x01"
	for _, e := range ext {
		m += e + "\x01"
	}
	return []byte(m + "auth=Bearer " + token + "\x01\x01")
}

func TestOAuthBearerServer(t *testing.T) {
	v := testValidator(t, nil)
	tok := sign(t, "RS256", "r1", goodClaims())

	s := NewOAuthBearerServer(v)
	out, done, err := s.Step(oauthMessage("", tok, "traceId=123"))
	if err != nil || !done || len(out) != 0 || s.Username() != "alice" {
		t.Fatalf("%q %v %v", out, done, err)
	}
	if exp, ok := s.CredentialExpiry(); !ok || !exp.Equal(jwtNow.Add(time.Hour)) {
		t.Fatalf("expiry %v %v", exp, ok)
	}
	if _, _, err := s.Step(oauthMessage("", tok)); err == nil || !err.(*Error).IllegalState {
		t.Fatalf("second message: %v", err)
	}

	s = NewOAuthBearerServer(v)
	if _, _, err := s.Step(oauthMessage("a=alice", tok)); err != nil {
		t.Fatalf("matching authzid: %v", err)
	}
	s = NewOAuthBearerServer(v)
	_, _, err = s.Step(oauthMessage("a=bob", tok))
	wantPublic(t, err, "Authentication failed: Client requested an authorization id (bob) that is different from the token's principal name (alice)")

	// An invalid token: the JSON status, then the client's %x01, then the failure.
	s = NewOAuthBearerServer(v)
	expired := goodClaims()
	expired["exp"] = jwtNow.Unix() - 3600
	out, done, err = s.Step(oauthMessage("", sign(t, "RS256", "r1", expired)))
	if err != nil || done || string(out) != `{"status":"invalid_token"}` || s.Failure == nil {
		t.Fatalf("%q %v %v", out, done, err)
	}
	_, _, err = s.Step([]byte{1})
	wantPublic(t, err, `{"status":"invalid_token"}`)

	// Through a Conn: the session lifetime is capped by the token.
	c := NewConn(ConnConfig{Mechanisms: []string{MechanismOAuthBearer}, MaxReauth: 2 * time.Hour,
		NewServer: func(string) Server { return NewOAuthBearerServer(v) }})
	if r := c.Handshake(jwtNow, 1, MechanismOAuthBearer); r.ErrorCode != 0 {
		t.Fatal(r)
	}
	r := c.Authenticate(jwtNow, 1, oauthMessage("", tok))
	if r.ErrorCode != 0 || r.SessionLifetimeMs != 3600_000 || !c.Authenticated() || c.Username() != "alice" {
		t.Fatalf("%+v", r)
	}

	for _, m := range []string{"", "n,,", "n,,\x01\x01", "n,,\x01auth=Bearer\x01\x01", "n,,\x01auth=Basic abc\x01\x01",
		"n,,\x01auth=Bearer a b\x01\x01", "y,,\x01auth=Bearer abc\x01\x01", "n,,\x01auth=Bearer abc\x01", "n,,\x011=2\x01auth=Bearer abc\x01\x01",
		"n,a=,\x01auth=Bearer abc\x01\x01", "n,,\x01auth=Bearer abc\x01x\x01\x01"} {
		s := NewOAuthBearerServer(v)
		if _, _, err := s.Step([]byte(m)); err == nil || err.(*Error).Public {
			t.Errorf("%q: %v", m, err)
		}
	}
	first, err := ParseOAuthClientFirst([]byte("n,a=x,\x01a=1\x01auth=BEARER  tok.en==\x01a=2\x01\x01"))
	if err != nil || first.Token != "tok.en==" || first.Authzid != "x" || len(first.Extensions) != 1 || first.Extensions[0].Value != "2" {
		t.Fatalf("%+v %v", first, err)
	}
}
