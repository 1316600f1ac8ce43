//go:build linux

package integration

// SASL/OAUTHBEARER end to end (issue 19): ringbrokerd verifying JWTs with
// the keys of a JWKS file (sasl.oauthbearer.jwks.endpoint.url), driven by
// franz-go's OAUTHBEARER mechanism, and the unsecured development
// validator driven by kcat (librdkafka makes its own unsigned token from
// sasl.oauthbearer.config).

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// oauthSigner signs RS256 JWTs with a key generated for the test.
type oauthSigner struct {
	key *rsa.PrivateKey
	kid string
}

func newOAuthSigner(t *testing.T, kid string) *oauthSigner {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &oauthSigner{key: k, kid: kid}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwks is a JSON Web Key Set holding the signer's public key.
func (s *oauthSigner) jwks() string {
	e := []byte{}
	for v := s.key.E; v > 0; v >>= 8 {
		e = append([]byte{byte(v)}, e...)
	}
	return fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":%q,"use":"sig","alg":"RS256","n":%q,"e":%q}]}`,
		s.kid, b64url(s.key.N.Bytes()), b64url(e))
}

// token is a compact JWS of claims.
func (s *oauthSigner) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	hj, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "kid": s.kid})
	cj, _ := json.Marshal(claims)
	input := b64url(hj) + "." + b64url(cj)
	d := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64url(sig)
}

func TestOAuthBearer(t *testing.T) {
	kcat := requireTool(t, "kcat")
	signer, stranger := newOAuthSigner(t, "k1"), newOAuthSigner(t, "k1")
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := t.TempDir()
		jwksPath := filepath.Join(dir, "jwks.json")
		if err := os.WriteFile(jwksPath, []byte(signer.jwks()), 0o644); err != nil {
			t.Fatal(err)
		}
		devAddr, plainAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
		props := map[string]string{
			"listeners":                      "SASL_PLAINTEXT://127.0.0.1:{port},DEV://" + devAddr + ",PLAIN://" + plainAddr,
			"listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,DEV:SASL_PLAINTEXT,PLAIN:SASL_PLAINTEXT",
			"listener.name.sasl_plaintext.sasl.enabled.mechanisms":             "OAUTHBEARER",
			"listener.name.dev.sasl.enabled.mechanisms":                        "OAUTHBEARER",
			"listener.name.dev.oauthbearer.sasl.server.callback.handler.class": "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler",
			"listener.name.plain.sasl.enabled.mechanisms":                      "PLAIN",
			"listener.name.plain.plain.sasl.jaas.config":                       `org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";`,
			"sasl.oauthbearer.jwks.endpoint.url":                               "file://" + jwksPath,
			"sasl.oauthbearer.expected.issuer":                                 "https://idp.test",
			"sasl.oauthbearer.expected.audience":                               "kafka",
			"authorizer.class.name":                                            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
			"super.users":                                                      "User:admin",
			"connection.failed.authentication.delay.ms":                        "20",
			"log.dirs": filepath.Join(dir, "data"),
		}
		b := startBroker(t, backend, props)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()

		admCl, err := kgo.NewClient(kgo.SeedBrokers(plainAddr), kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer admCl.Close()
		adm := kadm.NewClient(admCl)
		const topic = "oauth"
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		// The token's subject is the principal the ACLs name.
		if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics(topic).Groups("*").
			Operations(kadm.OpRead, kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
			t.Fatal(err)
		}

		now := time.Now().Unix()
		claims := func(mut func(map[string]any)) map[string]any {
			c := map[string]any{"sub": "alice", "iss": "https://idp.test", "aud": "kafka", "iat": now - 5, "exp": now + 600}
			if mut != nil {
				mut(c)
			}
			return c
		}
		client := func(addr, token string, opts ...kgo.Opt) *kgo.Client {
			cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr),
				kgo.SASL(oauth.Oauth(func(context.Context) (oauth.Auth, error) { return oauth.Auth{Token: token}, nil })),
				kgo.RetryTimeout(5 * time.Second)}, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			return cl
		}

		// A valid token: alice produces and consumes.
		good := client(b.Addr, signer.token(t, claims(nil)), kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		defer good.Close()
		if err := good.ProduceSync(ctx, kgo.StringRecord("signed")).FirstErr(); err != nil {
			t.Fatalf("produce with a valid token: %v", err)
		}
		fs := good.PollRecords(ctx, 1)
		if err := fs.Err(); err != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "signed" {
			t.Fatalf("consume with a valid token: %v %d", err, fs.NumRecords())
		}

		// Refused tokens: signed by another key, expired, wrong audience,
		// wrong issuer, unsigned on the verifying listener.
		bad := map[string]string{
			"another key":    stranger.token(t, claims(nil)),
			"expired":        signer.token(t, claims(func(c map[string]any) { c["exp"] = now - 120 })),
			"wrong audience": signer.token(t, claims(func(c map[string]any) { c["aud"] = "other" })),
			"wrong issuer":   signer.token(t, claims(func(c map[string]any) { c["iss"] = "https://evil.test" })),
			"unsigned":       unsignedToken(claims(nil)),
		}
		// The broker answers a refused token with the challenge
		// {"status":"invalid_token"} and then SASL_AUTHENTICATION_FAILED,
		// as Kafka does; franz-go gives up at the challenge ("unexpected
		// data in oauth response"). Either way nothing is written.
		for name, tok := range bad {
			cl := client(b.Addr, tok, kgo.DefaultProduceTopic(topic), kgo.RecordRetries(0))
			err := cl.ProduceSync(ctx, kgo.StringRecord("refused-"+name)).FirstErr()
			cl.Close()
			if err == nil || !errors.Is(err, kerr.SaslAuthenticationFailed) && !strings.Contains(err.Error(), "oauth") {
				t.Errorf("%s token: produce answered %v, want an authentication failure", name, err)
			}
		}

		// The unsecured development listener: librdkafka's own unsigned
		// token for principal alice.
		in := filepath.Join(dir, "in.txt")
		if err := os.WriteFile(in, []byte("unsigned-dev\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-b", devAddr, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=OAUTHBEARER",
			"-X", "enable.sasl.oauthbearer.unsecure.jwt=true", "-X", "sasl.oauthbearer.config=principal=alice"}
		if out, err := runClient(t, clientTimeout, nil, kcat, append(args, "-P", "-t", topic, "-p", "0", "-l", in)...); err != nil {
			t.Fatalf("kcat produce over the unsecured listener: %v\n%s", err, out)
		}
		out, err := runClient(t, clientTimeout, nil, kcat, append(args, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q")...)
		if err != nil || !strings.Contains(out, "signed") || !strings.Contains(out, "unsigned-dev") || strings.Contains(out, "refused-") {
			t.Fatalf("kcat consume over the unsecured listener: %v\n%s", err, out)
		}
	})
}

// unsignedToken is an alg "none" JWT (what the unsecured validator takes).
func unsignedToken(claims map[string]any) string {
	hj, _ := json.Marshal(map[string]any{"alg": "none"})
	cj, _ := json.Marshal(claims)
	return b64url(hj) + "." + b64url(cj) + "."
}
