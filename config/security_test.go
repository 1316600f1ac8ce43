package config

import (
	"strings"
	"testing"
)

func TestSASLListener(t *testing.T) {
	in := `listeners=PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9093
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
    user_alice="alice-secret" /* a comment */ user_bob="b\\\"ob";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ops
`
	c, warnings, err := Parse(strings.NewReader(in), "test.properties")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	if got := c.ListenerProtocol("SASL_PLAINTEXT"); got != ProtocolSASLPlaintext {
		t.Fatalf("protocol %q", got)
	}
	if got := strings.Join(c.SaslMechanisms("SASL_PLAINTEXT"), ","); got != "SCRAM-SHA-512,PLAIN" {
		t.Fatalf("mechanisms %q", got)
	}
	users, err := c.PlainUsers("SASL_PLAINTEXT")
	if err != nil || users["alice"] != "alice-secret" || users["bob"] != `b"ob` || len(users) != 2 {
		t.Fatalf("users %v, %v", users, err)
	}
	if !c.AuthorizerEnabled() || !c.ScramEnabled() {
		t.Fatal("authorizer or SCRAM not enabled")
	}
	var out strings.Builder
	c.Print(&out)
	if strings.Contains(out.String(), "alice-secret") {
		t.Fatal("Print shows a JAAS password")
	}
	if !strings.Contains(out.String(), "# listener.name.sasl_plaintext.plain.sasl.jaas.config=[hidden]") {
		t.Fatalf("Print does not list the JAAS key:\n%s", out.String())
	}
}

// TestSCRAMAndACLsInCluster: SCRAM listeners and the authorizer are
// served in a cluster (credentials and ACLs live in the metadata log).
func TestSCRAMAndACLsInCluster(t *testing.T) {
	c := Default()
	for k, v := range map[string]string{
		"process.roles":                  "broker,controller",
		"node.id":                        "1",
		"controller.quorum.voters":       "1@127.0.0.1:9093",
		"controller.listener.names":      "CONTROLLER",
		"listeners":                      "SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
		"listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
		"sasl.enabled.mechanisms":        "SCRAM-SHA-256",
		"authorizer.class.name":          "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("err = %v", err)
	}
}

func TestParseJAAS(t *testing.T) {
	for _, tt := range []struct{ in, err string }{
		{`a.B required;`, ""},
		{`a required k=v k2="x y";`, ""},
		{`a required; b required;`, "contains 2 login modules"},
		{``, "contains 0 login modules"},
		{`a maybe;`, "control flag"},
		{`a required k=;`, "expected a value"},
		{`a required k="v" k="w";`, "appears twice"},
		{`a required k="secret`, "unterminated"},
		{`a required k "v";`, "expected '='"},
	} {
		m, err := ParseJAAS(tt.in)
		if tt.err == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.in, err)
				continue
			}
			back, err := ParseJAAS(m.String())
			if err != nil || back.String() != m.String() {
				t.Errorf("%q: round trip %q, %v", tt.in, back.String(), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error quotes a value: %v", tt.in, err)
		}
	}
}

// FuzzParseJAAS: never panics; what parses prints back to text that parses
// to the same module; errors never quote a value.
func FuzzParseJAAS(f *testing.F) {
	f.Add(`org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret" user_bob="x\"y";`)
	f.Add(`a optional // c
 k=v /* d */ ;`)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseJAAS(in)
		if err != nil {
			return
		}
		back, err := ParseJAAS(m.String())
		if err != nil {
			t.Fatalf("%q printed as %q does not parse: %v", in, m.String(), err)
		}
		if back.String() != m.String() || len(back.Options) != len(m.Options) {
			t.Fatalf("round trip differs: %q vs %q", back.String(), m.String())
		}
		for k, v := range m.Options {
			if back.Options[k] != v {
				t.Fatalf("option %q: %q vs %q", k, back.Options[k], v)
			}
		}
	})
}

// OAUTHBEARER verifies tokens with a JWKS file unless a listener names
// Kafka's unsecured validator.
func TestOAuthBearerKeys(t *testing.T) {
	c, _, err := Parse(strings.NewReader(`listeners=A://127.0.0.1:9093,B://127.0.0.1:9094
listener.security.protocol.map=A:SASL_PLAINTEXT,B:SASL_PLAINTEXT
sasl.enabled.mechanisms=OAUTHBEARER
sasl.oauthbearer.jwks.endpoint.url=file:///etc/kafka/jwks.json
sasl.oauthbearer.expected.audience=kafka,ops
listener.name.b.oauthbearer.sasl.server.callback.handler.class=`+OAuthUnsecuredValidator+"\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := c.OAuthUnsecured("A"); u || err != nil {
		t.Errorf("listener A: unsecured %v, %v; want verifying", u, err)
	}
	if u, err := c.OAuthUnsecured("B"); !u || err != nil {
		t.Errorf("listener B: unsecured %v, %v; want unsecured", u, err)
	}
	if p, err := JWKSPath(c.OAuthJWKSURL); p != "/etc/kafka/jwks.json" || err != nil {
		t.Errorf("JWKS path %q, %v", p, err)
	}
	if len(c.OAuthAudiences) != 2 || c.OAuthSubClaim != "sub" || c.OAuthClockSkewSecs != 30 {
		t.Errorf("audiences %v, sub claim %q, skew %d", c.OAuthAudiences, c.OAuthSubClaim, c.OAuthClockSkewSecs)
	}
}
