//go:build linux

package integration

// TLS end to end (issue 19): ringbrokerd with SSL, mTLS (ssl.client.auth
// required) and SASL_SSL listeners beside its PLAINTEXT one, certificates
// made in the test (a throwaway CA; nothing committed). On io_uring a
// TLS 1.3 connection moves to the rings after its handshake
// (ring.ssl.loop.enable, on by default); TLS 1.2 ones stay on the
// portable machinery.

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"

	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ringbroker/ringbroker/internal/testpki"
)

// tlsFixture is the PKI and listeners of one TLS broker.
type tlsFixture struct {
	dir                  string
	ca, otherCA          *testpki.CA
	caPath, keystorePath string
	client, expired      *testpki.Leaf // signed by ca
	untrusted            *testpki.Leaf // signed by otherCA
	sslAddr, mtlsAddr    string
	saslSSLAddr          string
	strictAddr           string // mTLS whose rules map only OU=admins
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	f := &tlsFixture{dir: t.TempDir(), ca: testpki.NewCA(t, "ringbroker test CA"), otherCA: testpki.NewCA(t, "someone else's CA")}
	srv := f.ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-1"}, Server: true})
	f.keystorePath = testpki.Write(t, f.dir, "server.pem", srv.CertPEM, srv.KeyPEM)
	f.caPath = testpki.Write(t, f.dir, "ca.pem", f.ca.PEM)
	clientName := pkix.Name{CommonName: "Alice", OrganizationalUnit: []string{"clients"}, Organization: []string{"ringbroker tests"}}
	f.client = f.ca.Issue(t, testpki.LeafOptions{Subject: clientName})
	f.expired = f.ca.Issue(t, testpki.LeafOptions{Subject: clientName, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	f.untrusted = f.otherCA.Issue(t, testpki.LeafOptions{Subject: clientName})
	f.sslAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f.mtlsAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f.saslSSLAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f.strictAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return f
}

// props: PLAINTEXT (the readiness probe's, principal ANONYMOUS, a super
// user for the test's admin work), SSL (server certificate only), MTLS
// (SSL with ssl.client.auth=required; Alice's certificate maps to
// User:alice) and SASL_SSL (SCRAM-SHA-512), the authorizer on.
func (f *tlsFixture) props(dataDir string) map[string]string {
	return map[string]string{
		"listeners":                                        "PLAINTEXT://127.0.0.1:{port},SSL://" + f.sslAddr + ",MTLS://" + f.mtlsAddr + ",SASL_SSL://" + f.saslSSLAddr + ",STRICT://" + f.strictAddr,
		"listener.security.protocol.map":                   "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL,STRICT:SSL",
		"listener.name.strict.ssl.client.auth":             "required",
		"listener.name.strict.ssl.truststore.type":         "PEM",
		"listener.name.strict.ssl.truststore.location":     f.caPath,
		"listener.name.strict.ssl.principal.mapping.rules": "RULE:^CN=([^,]*),OU=admins,.*$/$1/",
		"ssl.keystore.type":                                "PEM",
		"ssl.keystore.location":                            f.keystorePath,
		"listener.name.mtls.ssl.client.auth":               "required",
		"listener.name.mtls.ssl.truststore.type":           "PEM",
		"listener.name.mtls.ssl.truststore.location":       f.caPath,
		"listener.name.mtls.ssl.principal.mapping.rules":   "RULE:^CN=([^,]*),OU=clients,.*$/$1/L,DEFAULT",
		"listener.name.sasl_ssl.sasl.enabled.mechanisms":   "SCRAM-SHA-512",
		"ring.ssl.reload.interval.ms":                      "100",
		"authorizer.class.name":                            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":                                      "User:ANONYMOUS",
		"log.dirs":                                         dataDir,
	}
}

func (f *tlsFixture) clientTLS(t *testing.T, leaf *testpki.Leaf) *tls.Config {
	cfg := &tls.Config{RootCAs: f.ca.Pool(), ServerName: "127.0.0.1"}
	if leaf != nil {
		// Sent whatever CAs the server names: an untrusted certificate
		// must reach the server to be refused there.
		cert := leaf.TLS(t)
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return cfg
}

// produceConsume produces n records to topic through cl and reads them
// back from the start.
func produceConsume(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("v%d", i))}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}})
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: %d of %d records: %v", topic, got, n, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("consume %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != fmt.Sprintf("v%d", got) {
				t.Fatalf("record %d = %q", got, r.Value)
			}
			got++
		})
	}
}

func TestTLSClients(t *testing.T) {
	kcat := requireTool(t, "kcat")
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		b := startBroker(t, backend, f.props(filepath.Join(t.TempDir(), "data")))
		if backend == "uring" && !strings.Contains(b.Logs(), "TLS 1.3 connections are served by the io_uring loops") {
			t.Errorf("the start log does not say TLS 1.3 runs on the loops:\n%s", b.Logs())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		adm := kadm.NewClient(admin)
		for _, topic := range []string{"tls-ssl", "tls-sasl", "tls-kcat", "tls-mtls"} {
			if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
		}

		// franz-go over SSL (server certificate checked, none sent).
		ssl, err := kgo.NewClient(kgo.SeedBrokers(f.sslAddr), kgo.DialTLSConfig(f.clientTLS(t, nil)))
		if err != nil {
			t.Fatal(err)
		}
		produceConsume(ctx, t, ssl, "tls-ssl", 20)
		ssl.Close()

		// franz-go over SASL_SSL with SCRAM-SHA-512; bob may use his topic
		// only.
		if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "bob-secret"}}); err != nil || res["bob"].Err != nil {
			t.Fatalf("AlterUserSCRAMs: %v %+v", err, res)
		}
		if r, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts("*").Topics("tls-sasl").
			Operations(kadm.OpRead, kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil || r[0].Err != nil {
			t.Fatalf("CreateACLs: %v %+v", err, r)
		}
		sasl, err := kgo.NewClient(kgo.SeedBrokers(f.saslSSLAddr), kgo.DialTLSConfig(f.clientTLS(t, nil)),
			kgo.SASL(scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		produceConsume(ctx, t, sasl, "tls-sasl", 20)
		sasl.Close()

		// kcat over SSL, then over mTLS as User:alice: refused until an
		// ACL allows her (the certificate's principal feeds the
		// authorizer).
		in := filepath.Join(t.TempDir(), "in.txt")
		if err := os.WriteFile(in, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		sslArgs := func(addr string, mtls bool, args ...string) []string {
			a := []string{"-b", addr, "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + f.caPath}
			if mtls {
				a = append(a, "-X", "ssl.certificate.location="+testpki.Write(t, f.dir, "alice.crt", f.client.CertPEM),
					"-X", "ssl.key.location="+testpki.Write(t, f.dir, "alice.key", f.client.KeyPEM))
			}
			return append(a, args...)
		}
		kcatRoundTrip := func(addr string, mtls bool, topic string) error {
			if _, err := runClient(t, clientTimeout, nil, kcat, sslArgs(addr, mtls, "-P", "-t", topic, "-p", "0", "-l", in)...); err != nil {
				return err
			}
			out, err := runClient(t, clientTimeout, nil, kcat, sslArgs(addr, mtls, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "3", "-e")...)
			if err != nil {
				return err
			}
			if got := strings.Fields(out); len(got) != 3 || got[0] != "one" || got[2] != "three" {
				return fmt.Errorf("kcat consumed %q", out)
			}
			return nil
		}
		if err := kcatRoundTrip(f.sslAddr, false, "tls-kcat"); err != nil {
			t.Fatalf("kcat over SSL: %v", err)
		}
		// kcat over SASL_SSL as bob (his topic only).
		saslArgs := []string{"-b", f.saslSSLAddr, "-X", "security.protocol=sasl_ssl", "-X", "ssl.ca.location=" + f.caPath,
			"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=bob", "-X", "sasl.password=bob-secret"}
		if _, err := runClient(t, clientTimeout, nil, kcat, append(saslArgs, "-P", "-t", "tls-sasl", "-p", "0", "-l", in)...); err != nil {
			t.Fatalf("kcat produce over SASL_SSL: %v", err)
		}
		if out, err := runClient(t, clientTimeout, nil, kcat, append(saslArgs, "-C", "-t", "tls-sasl", "-p", "0", "-o", "-3", "-c", "3", "-e")...); err != nil || len(strings.Fields(out)) != 3 || strings.Fields(out)[0] != "one" {
			t.Fatalf("kcat consume over SASL_SSL: %q %v", out, err)
		}
		if err := kcatRoundTrip(f.mtlsAddr, true, "tls-mtls"); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authoriz") {
			t.Fatalf("kcat over mTLS as alice without an ACL: %v", err)
		}
		if r, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("tls-mtls").
			Operations(kadm.OpRead, kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil || r[0].Err != nil {
			t.Fatalf("CreateACLs: %v %+v", err, r)
		}
		if err := kcatRoundTrip(f.mtlsAddr, true, "tls-mtls"); err != nil {
			t.Fatalf("kcat over mTLS as alice with an ACL: %v", err)
		}
		// A DENY for alice wins again.
		if r, err := adm.CreateACLs(ctx, kadm.NewACLs().Deny("User:alice").DenyHosts("*").Topics("tls-mtls").
			Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil || r[0].Err != nil {
			t.Fatalf("CreateACLs deny: %v %+v", err, r)
		}
		mtls, err := kgo.NewClient(kgo.SeedBrokers(f.mtlsAddr), kgo.DialTLSConfig(f.clientTLS(t, f.client)), kgo.ProducerLinger(0), kgo.DisableIdempotentWrite())
		if err != nil {
			t.Fatal(err)
		}
		defer mtls.Close()
		if err := mtls.ProduceSync(ctx, &kgo.Record{Topic: "tls-mtls", Value: []byte("x")}).FirstErr(); err == nil || !strings.Contains(err.Error(), "TOPIC_AUTHORIZATION_FAILED") {
			t.Fatalf("franz-go produce as alice with a DENY: %v", err)
		}
	})
}

// With ssl.client.auth=required a missing, untrusted or expired client
// certificate fails the handshake (TLS 1.2: the handshake itself; TLS
// 1.3: the client's first read, as the server checks the certificate
// after the client's Finished), and no request is answered.
func TestTLSMutualAuthRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		startBroker(t, backend, f.props(filepath.Join(t.TempDir(), "data")))
		for _, c := range []struct {
			name  string
			leaf  *testpki.Leaf
			alert string // the TLS alert the broker sends
		}{{"missing", nil, "certificate required|handshake failure"}, {"untrusted", f.untrusted, "unknown certificate authority"}, {"expired", f.expired, "expired certificate"}} {
			for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				cfg := f.clientTLS(t, c.leaf)
				cfg.MinVersion, cfg.MaxVersion = version, version
				err := tlsApiVersions(f.mtlsAddr, cfg)
				if err == nil {
					t.Fatalf("%s client certificate, TLS %x: ApiVersions answered", c.name, version)
				}
				t.Logf("%s client certificate, TLS %x: %v", c.name, version, err)
				if !regexp.MustCompile(c.alert).MatchString(err.Error()) {
					t.Fatalf("%s client certificate, TLS %x: %v, want the alert %q", c.name, version, err, c.alert)
				}
			}
		}
		// The trusted, valid certificate is served.
		if err := tlsApiVersions(f.mtlsAddr, f.clientTLS(t, f.client)); err != nil {
			t.Fatalf("valid client certificate: %v", err)
		}
		// A valid certificate whose subject no mapping rule maps: the
		// handshake completes, the first request closes the connection
		// unanswered (Kafka fails the authentication).
		if err := tlsApiVersions(f.strictAddr, f.clientTLS(t, f.client)); err == nil {
			t.Fatal("a certificate no principal mapping rule maps was served")
		} else if !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("unmapped subject: %v, want the connection closed after the handshake", err)
		}
	})
}

// tlsApiVersions does a TLS handshake and one ApiVersions round trip.
func tlsApiVersions(addr string, cfg *tls.Config) error {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	return apiVersionsOn(conn, 1, 5*time.Second)
}

// Replacing the key store file: a new connection sees the new
// certificate within a bounded wait; connections already open keep
// working; a broken file keeps the previous certificate.
func TestTLSCertificateReload(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		b := startBroker(t, backend, f.props(filepath.Join(t.TempDir(), "data")))
		served := func() (string, error) {
			conn, err := tls.Dial("tcp", f.sslAddr, f.clientTLS(t, nil))
			if err != nil {
				return "", err
			}
			defer conn.Close()
			if err := apiVersionsOn(conn, 1, 5*time.Second); err != nil {
				return "", err
			}
			return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
		}
		if cn, err := served(); err != nil || cn != "broker-1" {
			t.Fatalf("before the reload: %q %v", cn, err)
		}
		open, err := tls.Dial("tcp", f.sslAddr, f.clientTLS(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer open.Close()
		// Half a rotation (no key) is refused and logged; the old
		// certificate stays.
		next := f.ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-2"}, Server: true})
		testpki.Write(t, f.dir, "server.pem", next.CertPEM)
		waitFor(t, "the failed reload logged", 10*time.Second, func() error {
			if !strings.Contains(b.Logs(), "TLS certificate reload failed") {
				return errors.New("no reload failure in the log yet")
			}
			return nil
		})
		if cn, err := served(); err != nil || cn != "broker-1" {
			t.Fatalf("after a broken key store: %q %v", cn, err)
		}
		testpki.Write(t, f.dir, "server.pem", next.CertPEM, next.KeyPEM)
		waitFor(t, "the new certificate served", 10*time.Second, func() error {
			cn, err := served()
			if err == nil && cn != "broker-2" {
				err = fmt.Errorf("serving %s", cn)
			}
			return err
		})
		if err := apiVersionsOn(open, 2, 5*time.Second); err != nil {
			t.Fatalf("a connection opened before the reload: %v", err)
		}
	})
}

// confluent-kafka-python and kafka-python over SSL, and over mTLS as
// User:alice (allowed by an ACL).
func TestTLSPythonClients(t *testing.T) {
	python := requireTool(t, "/usr/bin/python3")
	script := filepath.Join(repoRoot, "tests", "python", "ssl_clients.py")
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		b := startBroker(t, backend, f.props(filepath.Join(t.TempDir(), "data")))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		adm := kadm.NewClient(admin)
		if r, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("py-").
			Operations(kadm.OpRead, kadm.OpWrite, kadm.OpCreate).ResourcePatternType(kadm.ACLPatternPrefixed).
			Groups("unused")); err != nil || len(r) == 0 {
			t.Fatalf("CreateACLs: %v %+v", err, r)
		} else {
			for _, x := range r {
				if x.Err != nil {
					t.Fatalf("CreateACLs: %+v", x)
				}
			}
		}
		cert := testpki.Write(t, f.dir, "alice.crt", f.client.CertPEM)
		key := testpki.Write(t, f.dir, "alice.key", f.client.KeyPEM)
		for _, client := range []string{"confluent", "kafka-python"} {
			for _, mtls := range []bool{false, true} {
				addr, c, k, topic := f.sslAddr, "-", "-", "py-"+client+"-ssl"
				if mtls {
					addr, c, k, topic = f.mtlsAddr, cert, key, "py-"+client+"-mtls"
				}
				if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
					t.Fatal(err)
				}
				out, err := runClient(t, clientTimeout*2, nil, python, script, client, addr, topic, f.caPath, c, k, "10")
				t.Logf("%s mTLS=%v: %s", client, mtls, strings.TrimSpace(out))
				if err != nil {
					t.Fatalf("%s mTLS=%v: %v", client, mtls, err)
				}
			}
		}
	})
}
