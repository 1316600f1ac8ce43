package sasl

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzScramClientFirst: the parser never panics; what it accepts splits
// into a gs2 header and a bare message that rejoin to the input, with a
// username that escapes back to the saslname it came from; and a server
// fed the message answers or fails without panicking.
func FuzzScramClientFirst(f *testing.F) {
	for _, s := range []string{rfcClientFirst, "n,a=user,n=user,r=abc", "n,,m=x,n=a=3Db=2C,r=abc,tokenauth=true",
		"n,,n=user,r=abc,ext=val", "y,,n=user,r=abc", "n,,n=u=2", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseScramClientFirst(data)
		if err == nil {
			if c.GS2Header+c.Bare != string(data) {
				t.Fatalf("header %q + bare %q != input", c.GS2Header, c.Bare)
			}
			if !strings.Contains(c.Bare, "n="+EncodeSaslName(c.Username)+",r="+c.Nonce) {
				t.Fatalf("username %q / nonce %q do not re-encode into %q", c.Username, c.Nonce, c.Bare)
			}
		}
		s := rfcServer(t)
		s.Step(data)
	})
}

// FuzzScramClientFinal: the parser never panics; what it accepts has its
// proof after WithoutProof; and a server that sent the RFC server-first
// answers any client-final without panicking, accepting only the RFC's.
func FuzzScramClientFinal(f *testing.F) {
	for _, s := range []string{rfcClientFinal, "c=biws,r=x,p=", "c=,r=x,e=f,p=AAAA", "c=biws,r=x,p=A===", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseScramClientFinal(data)
		if err == nil && !strings.HasPrefix(string(data), c.WithoutProof+",p=") {
			t.Fatalf("WithoutProof %q is not a prefix of the input", c.WithoutProof)
		}
		s := rfcServer(t)
		if _, _, err := s.Step([]byte(rfcClientFirst)); err != nil {
			t.Fatal(err)
		}
		_, done, err := s.Step(data)
		if done && string(data) != rfcClientFinal {
			// Only the RFC's proof verifies; an extension before p= or a
			// different channel binding changes the AuthMessage.
			t.Fatalf("accepted %q", data)
		}
		_ = err
	})
}

// FuzzPlain: the parser never panics; three tokens it accepts rejoin to
// the input (when the input is valid UTF-8); the server accepts only
// alice's password.
func FuzzPlain(f *testing.F) {
	for _, s := range []string{"\x00alice\x00alice-secret", "alice\x00alice\x00alice-secret", "a\x00b", "a\x00b\x00c\x00d", "\xff\x00\xfe\x00x", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		z, u, p, err := ParsePlain(data)
		if err == nil && bytes.Count(data, []byte{0}) == 2 && !bytes.ContainsRune(data, 0xFFFD) {
			joined := bytes.Join([][]byte{z, u, p}, []byte{0})
			if string(joined) != strings.ToValidUTF8(string(data), "\uFFFD") {
				t.Fatalf("tokens %q %q %q do not rejoin to %q", z, u, p, data)
			}
		}
		s := NewPlainServer(plainLookup)
		_, done, _ := s.Step(data)
		if done && string(p) != "alice-secret" {
			t.Fatalf("accepted %q", data)
		}
	})
}

// FuzzOAuthClientFirst: the parser never panics; an accepted message
// names a token of the allowed characters; the server never completes
// with a token that does not verify.
func FuzzOAuthClientFirst(f *testing.F) {
	for _, s := range []string{"n,,\x01auth=Bearer abc.def.ghi\x01\x01", "n,a=u,\x01k=v\x01auth=bearer  x==\x01\x01", "n,,\x01\x01", "\x01"} {
		f.Add([]byte(s))
	}
	v := testValidator(f, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseOAuthClientFirst(data)
		if err == nil && !isBearerToken(c.Token) {
			t.Fatalf("accepted token %q", c.Token)
		}
		s := NewOAuthBearerServer(v)
		if _, done, _ := s.Step(data); done {
			t.Fatalf("accepted %q", data)
		}
	})
}

// FuzzJWT: Validate never panics, and accepts no token but the one signed
// in the seed corpus (the fuzzer cannot forge RS256 or ES256).
func FuzzJWT(f *testing.F) {
	good := sign(f, "ES256", "e1", goodClaims())
	f.Add(good)
	f.Add(sign(f, "RS256", "r1", goodClaims()))
	f.Add(sign(f, "none", "", goodClaims()))
	f.Add("a.b.c")
	v := testValidator(f, nil)
	unsecured, _ := NewJWTValidator(JWTConfig{Unsecured: true, Now: func() time.Time { return jwtNow }})
	f.Fuzz(func(t *testing.T, tok string) {
		if got, err := v.Validate(tok); err == nil && got.Principal == "" {
			t.Fatalf("accepted %q without a principal", tok)
		}
		unsecured.Validate(tok)
	})
}

// FuzzJWKS: ParseJWKS never panics and keeps only keys it can use.
func FuzzJWKS(f *testing.F) {
	f.Add([]byte(testJWKS()))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		set, err := ParseJWKS(doc)
		if err != nil {
			return
		}
		for _, k := range set.keys {
			if (k.rsa == nil) == (k.ec == nil) {
				t.Fatalf("key %q holds %v and %v", k.kid, k.rsa, k.ec)
			}
		}
	})
}
