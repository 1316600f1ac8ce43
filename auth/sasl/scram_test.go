package sasl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	kscram "github.com/twmb/franz-go/pkg/sasl/scram"
)

// RFC 7677 section 3: SCRAM-SHA-256, user "user", password "pencil".
const (
	rfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

// rfcCredential is derived once: 4096 iterations per fuzz input would
// slow the fuzzers down a hundredfold.
var rfcCredential = sync.OnceValue(func() Credential {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	cred, err := ScramSHA256.DeriveCredential("pencil", salt, 4096)
	if err != nil {
		panic(err)
	}
	return cred
})

func lookupOne(name string, cred Credential) ScramLookup {
	return func(u string) (Credential, bool, error) {
		if u == name {
			return cred, true, nil
		}
		return Credential{}, false, nil
	}
}

func rfcServer(t testing.TB) *ScramServer {
	s := NewScramServer(ScramSHA256, lookupOne("user", rfcCredential()), rand.Reader)
	s.serverNonce = func() (string, error) { return rfcServerNonce, nil }
	return s
}

func TestScramRFC7677Vector(t *testing.T) {
	s := rfcServer(t)
	out, done, err := s.Step([]byte(rfcClientFirst))
	if err != nil || done || string(out) != rfcServerFirst {
		t.Fatalf("server-first: %q %v %v", out, done, err)
	}
	out, done, err = s.Step([]byte(rfcClientFinal))
	if err != nil || !done || string(out) != rfcServerFinal {
		t.Fatalf("server-final: %q %v %v", out, done, err)
	}
	if s.Username() != "user" {
		t.Fatalf("username %q", s.Username())
	}
	// Replaying the client-final on the finished exchange is an illegal
	// state (Kafka closes without answering).
	_, _, err = s.Step([]byte(rfcClientFinal))
	if e, ok := err.(*Error); !ok || !e.IllegalState {
		t.Fatalf("replay after completion: %v", err)
	}
}

// roundTrip runs franz-go's client against our server.
func roundTrip(t *testing.T, mech *ScramMechanism, clientAuth kscram.Auth, lookup ScramLookup) (string, error) {
	t.Helper()
	cm := clientAuth.AsSha256Mechanism()
	if mech == ScramSHA512 {
		cm = clientAuth.AsSha512Mechanism()
	}
	sess, msg, err := cm.Authenticate(context.Background(), "broker:9092")
	if err != nil {
		t.Fatal(err)
	}
	s := NewScramServer(mech, lookup, rand.Reader)
	for {
		out, done, err := s.Step(msg)
		if err != nil {
			return "", err
		}
		clientDone, next, cerr := sess.Challenge(out)
		if cerr != nil {
			t.Fatalf("client rejected the server: %v", cerr)
		}
		if done {
			if !clientDone {
				t.Fatal("server done, client not")
			}
			return s.Username(), nil
		}
		msg = next
	}
}

func TestScramRoundTripFranzGo(t *testing.T) {
	for _, mech := range []*ScramMechanism{ScramSHA256, ScramSHA512} {
		t.Run(mech.Name, func(t *testing.T) {
			cred, err := mech.NewCredential("s3cret,=é", 4096, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			lookup := lookupOne("al=ice,x", cred)
			name, err := roundTrip(t, mech, kscram.Auth{User: "al=ice,x", Pass: "s3cret,=é"}, lookup)
			if err != nil || name != "al=ice,x" {
				t.Fatalf("good password: %q %v", name, err)
			}
			_, err = roundTrip(t, mech, kscram.Auth{User: "al=ice,x", Pass: "wrong"}, lookup)
			wantPrivate(t, err, "Invalid client credentials")
			_, err = roundTrip(t, mech, kscram.Auth{User: "nobody", Pass: "s3cret,=é"}, lookup)
			wantPrivate(t, err, "Authentication failed: Invalid user credentials")
			_, err = roundTrip(t, mech, kscram.Auth{Zid: "al=ice,x", User: "al=ice,x", Pass: "s3cret,=é"}, lookup)
			if err != nil {
				t.Fatalf("authzid equal to the user: %v", err)
			}
			_, err = roundTrip(t, mech, kscram.Auth{Zid: "bob", User: "al=ice,x", Pass: "s3cret,=é"}, lookup)
			wantPublic(t, err, "Authentication failed: Client requested an authorization id that is different from username")
			_, err = roundTrip(t, mech, kscram.Auth{User: "al=ice,x", Pass: "s3cret,=é", IsToken: true}, lookup)
			wantPrivate(t, err, "Token Authentication failed: Invalid tokenId : al=ice,x")
		})
	}
}

func wantPrivate(t *testing.T, err error, msg string) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok || e.Public || e.Message != msg {
		t.Fatalf("want private error %q, got %#v", msg, err)
	}
	if got := ClientMessage(err, "SCRAM-SHA-256", false); got != "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256" {
		t.Fatalf("client message %q", got)
	}
}

func wantPublic(t *testing.T, err error, msg string) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok || !e.Public || e.Message != msg {
		t.Fatalf("want public error %q, got %#v", msg, err)
	}
	if got := ClientMessage(err, "SCRAM-SHA-256", false); got != msg {
		t.Fatalf("client message %q", got)
	}
}

func TestScramNegative(t *testing.T) {
	step2 := func(final string) error {
		s := rfcServer(t)
		if _, _, err := s.Step([]byte(rfcClientFirst)); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.Step([]byte(final))
		// After a failure, the exchange is over.
		if _, _, again := s.Step([]byte(rfcClientFinal)); err != nil {
			if e, ok := again.(*Error); !ok || !e.IllegalState {
				t.Fatalf("step after failure: %v", again)
			}
		}
		return err
	}
	// Bad proof: one bit flipped.
	proof, _ := base64.StdEncoding.DecodeString("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	proof[0] ^= 1
	badProof := strings.Replace(rfcClientFinal, "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", base64.StdEncoding.EncodeToString(proof), 1)
	wantPrivate(t, step2(badProof), "Invalid client credentials")
	// Short proof.
	wantPrivate(t, step2(strings.Replace(rfcClientFinal, "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "p=AAAA", 1)), "Invalid client credentials")
	// Bad nonce: the client's own only. A prefix passes the nonce check,
	// as Kafka's endsWith (librdkafka sends its own nonce before the
	// server's), and then fails the proof, which covers the message.
	wantPrivate(t, step2(strings.Replace(rfcClientFinal, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "", 1)), "Invalid client nonce in the final client message.")
	wantPrivate(t, step2(strings.Replace(rfcClientFinal, "r=", "r=X", 1)), "Invalid client credentials")
	// Channel binding other than the gs2 header.
	wantPrivate(t, step2(strings.Replace(rfcClientFinal, "c=biws", "c=eSws", 1)), "Invalid channel binding in the final client message.")
	// Malformed finals.
	for _, m := range []string{"", "c=biws", "c=biws,r=x", "c=bi,r=x,p=AAAA", "x=biws,r=a,p=AAAA", "c=biws,r=a,1=2,p=AAAA", "c=biws,r=a,p=A", "c=biws,r=a b,p=AAAA"} {
		wantPrivate(t, step2(m), "Invalid SCRAM client final message format")
	}
	// An extension in client-final is admitted by the grammar, and is part
	// of the AuthMessage: with the RFC proof it no longer verifies.
	wantPrivate(t, step2(strings.Replace(rfcClientFinal, ",p=", ",x=y,p=", 1)), "Invalid client credentials")

	// Replay of a recorded client-final on a new exchange: the server
	// nonce differs, so the nonce check fails.
	s := NewScramServer(ScramSHA256, lookupOne("user", rfcCredential()), rand.Reader)
	if _, _, err := s.Step([]byte(rfcClientFirst)); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Step([]byte(rfcClientFinal))
	wantPrivate(t, err, "Invalid client nonce in the final client message.")

	// Malformed client-first messages.
	for _, m := range []string{"", "n", "n,", "y,,n=user,r=abc", "p=tls-unique,,n=user,r=abc", "n,,n=,r=abc", "n,,n=us,er,r=abc",
		"n,,n=user", "n,,r=abc,n=user", "n,,n=u=2Xser,r=abc", "n,,n=user,r=a b", "n,,n=user,r=abc,1=x", "n,,n=user,r=abc,x=",
		"n,b=x,n=user,r=abc", "n,a=,n=user,r=abc", "n,,n=us\x80er,r=abc", "n,,n=user,r=abc\x00"} {
		s := rfcServer(t)
		_, _, err := s.Step([]byte(m))
		wantPrivate(t, err, "Invalid SCRAM client first message format")
	}
	// Iterations below Kafka's minimum in a stored credential.
	weak := rfcCredential()
	weak.Iterations = 4095
	s = NewScramServer(ScramSHA256, lookupOne("user", weak), rand.Reader)
	_, _, err = s.Step([]byte(rfcClientFirst))
	wantPrivate(t, err, "Iterations 4095 is less than the minimum 4096 for SCRAM-SHA-256")
	if _, err := ScramSHA512.DeriveCredential("p", []byte("salt"), 4095); err == nil {
		t.Fatal("DeriveCredential accepted 4095 iterations")
	}
	// A store that cannot answer.
	s = NewScramServer(ScramSHA256, func(string) (Credential, bool, error) { return Credential{}, false, bytes.ErrTooLarge }, rand.Reader)
	_, _, err = s.Step([]byte(rfcClientFirst))
	wantPrivate(t, err, "Authentication failed: Credentials could not be obtained")
	// A randomness source that fails.
	s = NewScramServer(ScramSHA256, lookupOne("user", rfcCredential()), bytes.NewReader(nil))
	_, _, err = s.Step([]byte(rfcClientFirst))
	wantPrivate(t, err, "Authentication failed: Credentials could not be obtained")
}

func TestScramClientFirstParse(t *testing.T) {
	c, err := ParseScramClientFirst([]byte("n,a=a=3Db=2Cc,m=ignored,n=a=3Db=2Cc,r=abc,tokenauth=TRUE,x=y"))
	if err != nil {
		t.Fatal(err)
	}
	if c.GS2Header != "n,a=a=3Db=2Cc," || c.Authzid != "a=b,c" || c.Username != "a=b,c" || c.Nonce != "abc" ||
		!c.TokenAuth() || len(c.Extensions) != 2 || c.Bare != "m=ignored,n=a=3Db=2Cc,r=abc,tokenauth=TRUE,x=y" {
		t.Fatalf("%+v", c)
	}
	if EncodeSaslName("a=b,c") != "a=3Db=2Cc" {
		t.Fatal("EncodeSaslName")
	}
}

func TestCredentialFromRandom(t *testing.T) {
	// Kafka's salt: the UTF-8 of a random 130-bit number in base 36.
	cred, err := ScramSHA512.NewCredential("pw", 8192, bytes.NewReader(bytes.Repeat([]byte{0xff}, 17)))
	if err != nil {
		t.Fatal(err)
	}
	// All ones: 2^130-1.
	if string(cred.Salt) != "1omfro7zwmumr3umxudzyj6scf" {
		t.Fatalf("salt %q", cred.Salt)
	}
	if cred.Iterations != 8192 || len(cred.StoredKey) != 64 || len(cred.ServerKey) != 64 {
		t.Fatalf("%+v", cred)
	}
}

func TestCredentialFromSaltedPassword(t *testing.T) {
	for _, m := range []*ScramMechanism{ScramSHA256, ScramSHA512} {
		salt := []byte("salt")
		want, err := m.DeriveCredential("pencil", salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		got := m.CredentialFromSaltedPassword(m.hi([]byte("pencil"), salt, 4096), salt, 4096)
		if string(got.StoredKey) != string(want.StoredKey) || string(got.ServerKey) != string(want.ServerKey) || got.Iterations != 4096 {
			t.Fatalf("%s: credential from the salted password differs", m.Name)
		}
	}
}
