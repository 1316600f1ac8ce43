package config

import (
	"bytes"
	"crypto/tls"
	"strings"
	"testing"
)

func TestSSLSettings(t *testing.T) {
	c, _, err := Parse(strings.NewReader(`listeners=SSL://127.0.0.1:9093,INTERNAL://127.0.0.1:9094
listener.security.protocol.map=SSL:SSL,INTERNAL:SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location=/etc/kafka/server.pem
ssl.key.password=secret-one
ssl.enabled.protocols=TLSv1.3
listener.name.ssl.ssl.client.auth=required
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=/etc/kafka/ca.pem
listener.name.ssl.ssl.principal.mapping.rules=RULE:^CN=(.*?),.*$/$1/L,DEFAULT
listener.name.ssl.ssl.cipher.suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
listener.name.internal.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.internal.ssl.keystore.key=-----BEGIN PRIVATE KEY-----secret-two
listener.name.internal.ssl.keystore.certificate.chain=chain
listener.name.internal.ssl.keystore.location=
`), "test.properties")
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.SSL("SSL")
	if err != nil {
		t.Fatal(err)
	}
	if s.KeystoreLocation != "/etc/kafka/server.pem" || s.TruststoreLocation != "/etc/kafka/ca.pem" || s.ClientAuth != SSLClientAuthRequired ||
		s.MinVersion != tls.VersionTLS13 || s.MaxVersion != tls.VersionTLS13 || s.PrincipalMappingRules != "RULE:^CN=(.*?),.*$/$1/L,DEFAULT" ||
		len(s.CipherSuites) != 1 || s.CipherSuites[0] != tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 || s.KeyPassword != "secret-one" {
		t.Fatalf("SSL listener settings %+v", s)
	}
	in, err := c.SSL("INTERNAL")
	if err != nil || in.ClientAuth != SSLClientAuthNone || in.PrincipalMappingRules != "DEFAULT" || in.KeystoreKey == "" {
		t.Fatalf("INTERNAL settings %+v %v", in, err)
	}
	if !c.ScramEnabled() {
		t.Fatal("SCRAM on a SASL_SSL listener not seen")
	}
	var out bytes.Buffer
	c.Print(&out)
	if strings.Contains(out.String(), "secret-one") || strings.Contains(out.String(), "secret-two") || !strings.Contains(out.String(), "# ssl.key.password=[hidden]") {
		t.Fatalf("Print shows or loses the key password:\n%s", out.String())
	}
	for _, d := range c.DescribeBroker() {
		if d.Name == "ssl.key.password" && d.Value != nil {
			t.Fatalf("DescribeConfigs answers ssl.key.password with a value")
		}
	}
}

func TestSSLBadSettings(t *testing.T) {
	base := "listeners=SSL://127.0.0.1:9093\nlistener.security.protocol.map=SSL:SSL\n"
	for _, c := range []struct{ text, want string }{
		{"ssl.keystore.location=/x.pem\n", "only PEM key stores are served"},
		{"ssl.keystore.type=PEM\n", "no certificate"},
		{"ssl.keystore.type=PEM\nssl.keystore.location=/x\nssl.keystore.key=k\n", "not both"},
		{"ssl.keystore.type=PEM\nssl.keystore.location=/x\nssl.client.auth=required\n", "needs a PEM trust store"},
		{"ssl.keystore.type=PEM\nssl.keystore.location=/x\nssl.client.auth=required\nssl.truststore.type=PEM\n", "needs CA certificates"},
		{"ssl.keystore.type=PEM\nssl.keystore.location=/x\nssl.keystore.password=p\n", "not used with a PEM key store"},
		{"ssl.enabled.protocols=TLSv1.1\n", "TLS version TLSv1.1 is not served"},
		{"ssl.client.auth=maybe\n", "want none, requested or required"},
		{"ssl.cipher.suites=TLS_RSA_WITH_RC4_128_SHA\n", "insecure"},
		{"ssl.principal.mapping.rules=RULE:x/y\n", "invalid rule"},
		{"listener.name.ssl.ssl.client.auth=maybe\n", "listener.name.ssl.ssl.client.auth"},
		{"listener.name.other.ssl.client.auth=none\nssl.keystore.type=PEM\nssl.keystore.location=/x\n", "no listener named OTHER"},
	} {
		_, _, err := Parse(strings.NewReader(base+c.text), "test.properties")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.text, err, c.want)
		}
	}
}

// The inter-broker listener: inter.broker.listener.name or
// security.inter.broker.protocol (not both), advertised; unset, the
// first advertised listener.
func TestInterBrokerListener(t *testing.T) {
	base := "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:9093\ncontroller.listener.names=CONTROLLER\n" +
		"ssl.keystore.type=PEM\nssl.keystore.location=/x.pem\n" +
		"listeners=SSL://127.0.0.1:9094,PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9095,CONTROLLER://127.0.0.1:9093\n" +
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL\nsasl.enabled.mechanisms=PLAIN\n" +
		"listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b\";\n"
	for _, c := range []struct{ extra, want, err string }{
		{"", "SSL", ""},
		{"inter.broker.listener.name=plaintext\n", "PLAINTEXT", ""},
		{"security.inter.broker.protocol=PLAINTEXT\n", "PLAINTEXT", ""},
		{"inter.broker.listener.name=SSL\nsecurity.inter.broker.protocol=SSL\n", "", "only one of"},
		{"inter.broker.listener.name=OTHER\n", "", "must be a listener name defined in advertised.listeners"},
		{"inter.broker.listener.name=CONTROLLER\n", "", "must not contain a value appearing in the 'inter.broker.listener.name'"},
		{"inter.broker.listener.name=SASL_SSL\n", "SASL_SSL", ""},
	} {
		cfg, _, err := Parse(strings.NewReader(base+c.extra), "test.properties")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.extra, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.extra, err)
			continue
		}
		if l, ok := cfg.InterBrokerListener(); !ok || l.Name != c.want {
			t.Errorf("%q: inter-broker listener %v %v, want %s", c.extra, l, ok, c.want)
		}
	}
}

// KIP-684: the unprefixed ssl.client.auth applies to SSL listeners, not
// to SASL_SSL ones, which take only their own.
func TestSSLClientAuthSASLSSL(t *testing.T) {
	c, _, err := Parse(strings.NewReader(`listeners=A://127.0.0.1:9093,B://127.0.0.1:9094,C://127.0.0.1:9095
listener.security.protocol.map=A:SSL,B:SASL_SSL,C:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
ssl.keystore.type=PEM
ssl.keystore.location=/x.pem
ssl.truststore.type=PEM
ssl.truststore.location=/ca.pem
ssl.client.auth=required
listener.name.c.ssl.client.auth=requested
`), "test.properties")
	if err != nil {
		t.Fatal(err)
	}
	for l, want := range map[string]string{"A": SSLClientAuthRequired, "B": SSLClientAuthNone, "C": SSLClientAuthRequested} {
		if s, err := c.SSL(l); err != nil || s.ClientAuth != want {
			t.Errorf("listener %s: client auth %q (%v), want %q", l, s.ClientAuth, err, want)
		}
	}
}

// InterBrokerSASL: the mechanism must be served and enabled on the
// inter-broker listener, the credentials come from its JAAS config.
func TestInterBrokerSASL(t *testing.T) {
	base := "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:9093\ncontroller.listener.names=CONTROLLER\n" +
		"listeners=SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n" +
		"listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT\nsasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512\n" +
		"listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"b\" password=\"pw\" user_b=\"pw\";\n"
	for _, c := range []struct{ extra, want, err string }{
		{"sasl.mechanism.inter.broker.protocol=plain\n", "PLAIN b pw", ""},
		{"", "", "GSSAPI"},
		{"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256\n", "", "not enabled"},
		{"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n", "", "scram-sha-512.sasl.jaas.config is not set"},
		{"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\nlistener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"s\" password=\"spw\";\n", "SCRAM-SHA-512 s spw", ""},
	} {
		cfg, _, err := Parse(strings.NewReader(base+c.extra), "test.properties")
		if err != nil {
			t.Fatalf("%q: %v", c.extra, err)
		}
		mech, user, pw, err := cfg.InterBrokerSASL()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.extra, err, c.err)
			}
			continue
		}
		if got := mech + " " + user + " " + pw; err != nil || got != c.want {
			t.Errorf("%q: %q %v, want %q", c.extra, got, err, c.want)
		}
	}
}
