package integration

// TestTLSDynamicKeystore: IncrementalAlterConfigs of this broker's
// listener.name.ssl.ssl.keystore.location (Kafka's dynamic SSL keystore
// update, DynamicBrokerConfig) rotates the SSL listener's certificate
// without a restart: a new TLS connection gets the new certificate, one
// opened before keeps working, the other TLS listeners keep theirs.
// Changes that do not check out are INVALID_REQUEST (as Kafka's
// ConfigAdminManager answers) and change nothing: a
// file that is no key store, a certificate naming another subject (Kafka's
// ssl.allow.dn.changes=false), the key without the listener prefix, the
// cluster-wide default resource, and validate_only. The legacy
// AlterConfigs sets it too.

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/testpki"
)

// dialer5s bounds a test TLS dial, handshake included.
var dialer5s = &net.Dialer{Timeout: 5 * time.Second}

func TestTLSDynamicKeystore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		b := startBroker(t, backend, f.props(filepath.Join(t.TempDir(), "data")))
		admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		served := func(addr string) *big.Int {
			t.Helper()
			conn, err := tls.DialWithDialer(dialer5s, "tcp", addr, f.clientTLS(t, f.client))
			if err != nil {
				t.Fatalf("TLS dial %s: %v", addr, err)
			}
			defer conn.Close()
			if err := apiVersionsOn(conn, 1, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			return conn.ConnectionState().PeerCertificates[0].SerialNumber
		}
		alter := func(resource string, validateOnly bool, key, value string) (int16, string) {
			t.Helper()
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			req.ValidateOnly = validateOnly
			res := kmsg.NewIncrementalAlterConfigsRequestResource()
			res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, resource
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Op, c.Value = key, kmsg.IncrementalAlterConfigOpSet, &value
			res.Configs = append(res.Configs, c)
			req.Resources = append(req.Resources, res)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := req.RequestWith(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			msg := ""
			if m := resp.Resources[0].ErrorMessage; m != nil {
				msg = *m
			}
			return resp.Resources[0].ErrorCode, msg
		}
		const key = "listener.name.ssl.ssl.keystore.location"
		node := "0"
		first, mtlsFirst := served(f.sslAddr), served(f.mtlsAddr)
		open, err := tls.DialWithDialer(dialer5s, "tcp", f.sslAddr, f.clientTLS(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer open.Close()

		next := f.ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-1"}, Server: true})
		nextPath := testpki.Write(t, f.dir, "server-next.pem", next.CertPEM, next.KeyPEM)
		other := f.ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-2"}, Server: true})
		otherPath := testpki.Write(t, f.dir, "server-other.pem", other.CertPEM, other.KeyPEM)
		garbage := testpki.Write(t, f.dir, "garbage.pem", []byte("not a key store\n"))
		for _, c := range []struct {
			what, resource, key, value string
			validateOnly               bool
			code                       int16
			msg                        string
		}{
			{"a file that is no key store", node, key, garbage, false, kerr.InvalidRequest.Code, "CERTIFICATE"},
			{"another subject", node, key, otherPath, false, kerr.InvalidRequest.Code, "DistinguishedName does not match"},
			{"no listener prefix", node, "ssl.keystore.location", nextPath, false, kerr.InvalidRequest.Code, "only per-listener"},
			{"the cluster-wide default", "", key, nextPath, false, kerr.InvalidRequest.Code, "broker id must be specified"},
			{"a listener that is not TLS", node, "listener.name.plaintext.ssl.keystore.location", nextPath, false, kerr.InvalidRequest.Code, "not an SSL or SASL_SSL listener"},
			{"validate_only", node, key, nextPath, true, 0, ""},
		} {
			code, msg := alter(c.resource, c.validateOnly, c.key, c.value)
			if code != c.code || !strings.Contains(msg, c.msg) {
				t.Fatalf("%s: error %s %q, want %s %q", c.what, kerr.ErrorForCode(code), msg, kerr.ErrorForCode(c.code), c.msg)
			}
			if got := served(f.sslAddr); got.Cmp(first) != 0 {
				t.Fatalf("%s: the listener serves certificate %v, want the first one (%v) still", c.what, got, first)
			}
			t.Logf("%s: %s %q; certificate unchanged", c.what, kerr.ErrorForCode(code), msg)
		}

		if code, msg := alter(node, false, key, nextPath); code != 0 {
			t.Fatalf("the rotation: %s %q", kerr.ErrorForCode(code), msg)
		}
		if got := served(f.sslAddr); got.Cmp(next.Cert.SerialNumber) != 0 {
			t.Fatalf("after the rotation a new connection gets certificate %v, want %v", got, next.Cert.SerialNumber)
		}
		if err := apiVersionsOn(open, 2, 5*time.Second); err != nil {
			t.Fatalf("a connection opened before the rotation: %v", err)
		}
		if got := served(f.mtlsAddr); got.Cmp(mtlsFirst) != 0 {
			t.Fatalf("the MTLS listener's certificate changed too: %v", got)
		}
		// DescribeConfigs of the broker lists it as a dynamic value.
		dreq := kmsg.NewPtrDescribeConfigsRequest()
		dres := kmsg.NewDescribeConfigsRequestResource()
		dres.ResourceType, dres.ResourceName = kmsg.ConfigResourceTypeBroker, node
		dres.ConfigNames = []string{key}
		dreq.Resources = append(dreq.Resources, dres)
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		dresp, err := dreq.RequestWith(dctx, admin)
		dcancel()
		if err != nil {
			t.Fatal(err)
		}
		if cs := dresp.Resources[0].Configs; len(cs) != 1 || cs[0].Value == nil || *cs[0].Value != nextPath || cs[0].Source != kmsg.ConfigSourceDynamicBrokerConfig {
			t.Fatalf("DescribeConfigs of %s after the rotation: %+v", key, cs)
		}
		// The watcher now follows the new file: rewriting it is served.
		again := f.ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-1"}, Server: true})
		testpki.Write(t, f.dir, "server-next.pem", again.CertPEM, again.KeyPEM)
		waitFor(t, "the rewritten dynamic key store served", 10*time.Second, func() error {
			if got := served(f.sslAddr); got.Cmp(again.Cert.SerialNumber) != 0 {
				return fmt.Errorf("serving %v", got)
			}
			return nil
		})

		// The legacy AlterConfigs (Sarama's, older admin clients') sets the
		// broker's dynamic keys to exactly those given: back to the first
		// key store.
		lreq := kmsg.NewPtrAlterConfigsRequest()
		lres := kmsg.NewAlterConfigsRequestResource()
		lres.ResourceType, lres.ResourceName = kmsg.ConfigResourceTypeBroker, node
		first0 := f.keystorePath
		lres.Configs = append(lres.Configs, kmsg.AlterConfigsRequestResourceConfig{Name: key, Value: &first0})
		lreq.Resources = append(lreq.Resources, lres)
		lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
		lresp, err := lreq.RequestWith(lctx, admin)
		lcancel()
		if err != nil {
			t.Fatal(err)
		}
		if code := lresp.Resources[0].ErrorCode; code != 0 {
			t.Fatalf("AlterConfigs back to the first key store: %v %v", kerr.ErrorForCode(code), lresp.Resources[0].ErrorMessage)
		}
		if got := served(f.sslAddr); got.Cmp(first) != 0 {
			t.Fatalf("after AlterConfigs a new connection gets certificate %v, want the first (%v)", got, first)
		}
	})
}

// TestTLSDynamicKeystorePersists: a dynamic key store change outlives a
// restart (Kafka stores dynamic broker configs). A file path is stored as
// it is; an inline private key (ssl.keystore.key, a secret) is refused
// without password.encoder.secret (INVALID_CONFIG, "Password encoder
// secret not configured") and with it stored encrypted: the store holds
// no PEM key, and the restarted broker serves the inline certificate.
func TestTLSDynamicKeystorePersists(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		f := newTLSFixture(t)
		dataDir := filepath.Join(t.TempDir(), "data")
		props := f.props(dataDir)
		const prefix = "listener.name.ssl."
		served := func(addr string) *big.Int {
			t.Helper()
			conn, err := tls.DialWithDialer(dialer5s, "tcp", addr, f.clientTLS(t, nil))
			if err != nil {
				t.Fatalf("TLS dial %s: %v", addr, err)
			}
			defer conn.Close()
			return conn.ConnectionState().PeerCertificates[0].SerialNumber
		}
		alter := func(b *Broker, set map[string]string) (int16, string) {
			t.Helper()
			admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			res := kmsg.NewIncrementalAlterConfigsRequestResource()
			res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
			for k, v := range set {
				c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				c.Name, c.Op, c.Value = k, kmsg.IncrementalAlterConfigOpSet, &v
				res.Configs = append(res.Configs, c)
			}
			req.Resources = append(req.Resources, res)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := req.RequestWith(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			msg := ""
			if m := resp.Resources[0].ErrorMessage; m != nil {
				msg = *m
			}
			return resp.Resources[0].ErrorCode, msg
		}
		inline := f.ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-1"}, Server: true})
		inlineSet := map[string]string{prefix + "ssl.keystore.location": "", prefix + "ssl.keystore.certificate.chain": string(inline.CertPEM), prefix + "ssl.keystore.key": string(inline.KeyPEM)}

		b := startBroker(t, backend, props)
		if code, msg := alter(b, inlineSet); code != kerr.InvalidConfig.Code || !strings.Contains(msg, "Password encoder secret not configured") {
			t.Fatalf("an inline key without password.encoder.secret: %s %q", kerr.ErrorForCode(code), msg)
		}
		next := f.ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-1"}, Server: true})
		nextPath := testpki.Write(t, f.dir, "server-next.pem", next.CertPEM, next.KeyPEM)
		if code, msg := alter(b, map[string]string{prefix + "ssl.keystore.location": nextPath}); code != 0 {
			t.Fatalf("the rotation: %s %q", kerr.ErrorForCode(code), msg)
		}
		b.Stop(t)
		b = startBroker(t, backend, props)
		if got := served(f.sslAddr); got.Cmp(next.Cert.SerialNumber) != 0 {
			t.Fatalf("after a restart the SSL listener serves certificate %v, want the dynamic one (%v)", got, next.Cert.SerialNumber)
		}
		b.Stop(t)

		props["password.encoder.secret"] = "the encoder secret"
		b = startBroker(t, backend, props)
		if code, msg := alter(b, inlineSet); code != 0 {
			t.Fatalf("an inline key with password.encoder.secret: %s %q", kerr.ErrorForCode(code), msg)
		}
		if got := served(f.sslAddr); got.Cmp(inline.Cert.SerialNumber) != 0 {
			t.Fatalf("the inline certificate is not served: %v", got)
		}
		b.Stop(t)
		stored, err := os.ReadFile(filepath.Join(dataDir, "dynamic-broker-configs"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(stored), "PRIVATE KEY") || !strings.Contains(string(stored), "encryptedPassword") {
			t.Fatalf("the stored configs hold the key in clear or not encrypted: %.300s", stored)
		}
		b = startBroker(t, backend, props)
		if got := served(f.sslAddr); got.Cmp(inline.Cert.SerialNumber) != 0 {
			t.Fatalf("after a restart the SSL listener serves certificate %v, want the inline one (%v)", got, inline.Cert.SerialNumber)
		}
		b.Stop(t)
	})
}
