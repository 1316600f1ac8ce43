package tlsstore

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/internal/testpki"
)

type target struct{ cfg atomic.Pointer[tls.Config] }

func (t *target) SetConfig(c *tls.Config) { t.cfg.Store(c) }

func settings(keystore, truststore, auth string) config.SSLSettings {
	return config.SSLSettings{Listener: "SSL", KeystoreLocation: keystore, TruststoreLocation: truststore, ClientAuth: auth,
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	srv := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker"}, Server: true})
	ks := testpki.Write(t, dir, "server.pem", srv.CertPEM, srv.KeyPEM)
	ts := testpki.Write(t, dir, "ca.pem", ca.PEM)
	for auth, want := range map[string]tls.ClientAuthType{"none": tls.NoClientCert, "requested": tls.VerifyClientCertIfGiven, "required": tls.RequireAndVerifyClientCert} {
		cfg, err := Load(settings(ks, ts, auth))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ClientAuth != want || cfg.ClientCAs == nil || cfg.Certificates[0].Leaf.Subject.CommonName != "broker" || cfg.MinVersion != tls.VersionTLS12 {
			t.Fatalf("%s: %+v", auth, cfg)
		}
	}
	// Inline PEM.
	if _, err := Load(config.SSLSettings{KeystoreCertificateChain: string(srv.CertPEM), KeystoreKey: string(srv.KeyPEM), ClientAuth: "none"}); err != nil {
		t.Fatal(err)
	}
	// Refusals, each with a message saying what is wrong.
	enc := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	other := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "other"}})
	for _, c := range []struct {
		s    config.SSLSettings
		want string
	}{
		{settings(testpki.Write(t, dir, "enc.pem", srv.CertPEM, enc), "", "none"), "encrypted"},
		{func() config.SSLSettings { s := settings(ks, "", "none"); s.KeyPassword = "pw"; return s }(), "not encrypted"},
		{settings(testpki.Write(t, dir, "mismatch.pem", srv.CertPEM, other.KeyPEM), "", "none"), "private key does not match"},
		{settings(testpki.Write(t, dir, "nokey.pem", srv.CertPEM), "", "none"), "no PRIVATE KEY"},
		{settings(testpki.Write(t, dir, "nocert.pem", srv.KeyPEM), "", "none"), "no CERTIFICATE"},
		{settings(dir+"/missing.pem", "", "none"), "no such file"},
		{settings(ks, testpki.Write(t, dir, "empty-ca.pem", []byte("nothing")), "required"), "no CERTIFICATE"},
	} {
		if _, err := Load(c.s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.s, err, c.want)
		}
	}
}

// A replaced key store is served after Check; a broken one keeps the
// previous configuration; a touch with the same contents reloads nothing.
func TestWatcherReload(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	one := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "one"}, Server: true})
	two := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "two"}, Server: true})
	ks := testpki.Write(t, dir, "server.pem", one.CertPEM, one.KeyPEM)
	tg := &target{}
	w, cfg, err := NewWatcher(settings(ks, "", "none"), tg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	tg.SetConfig(cfg)
	cn := func() string { return tg.cfg.Load().Certificates[0].Leaf.Subject.CommonName }
	if w.Check() || cn() != "one" {
		t.Fatal("reloaded unchanged files")
	}
	testpki.Write(t, dir, "server.pem", one.CertPEM, one.KeyPEM)
	if w.Check() {
		t.Fatal("reloaded a rewrite with the same contents")
	}
	testpki.Write(t, dir, "server.pem", two.CertPEM) // half a rotation: no key
	if w.Check() || cn() != "one" {
		t.Fatalf("a broken key store replaced the served one: %s", cn())
	}
	testpki.Write(t, dir, "server.pem", two.CertPEM, two.KeyPEM)
	if !w.Check() || cn() != "two" {
		t.Fatalf("after rotation: %s", cn())
	}
	w.Start(10 * time.Millisecond)
	w.Close()
}

// A watcher closed without Start, or after it, returns.
func TestWatcherClose(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	one := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "one"}, Server: true})
	ks := testpki.Write(t, dir, "server.pem", one.CertPEM, one.KeyPEM)
	w, _, err := NewWatcher(settings(ks, "", "none"), &target{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	w, _, _ = NewWatcher(settings(ks, "", "none"), &target{}, zaptest.NewLogger(t))
	w.Start(time.Millisecond)
	w.Close()
}

// TestPrepareIdentity: a dynamic key store update must keep the subject
// unless ssl.allow.dn.changes and every SAN unless ssl.allow.san.changes
// (Kafka's SslFactory.CertificateEntries.ensureCompatible: SANs may be
// added, not dropped).
func TestPrepareIdentity(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	srv := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker"}, Server: true})
	ks := testpki.Write(t, dir, "server.pem", srv.CertPEM, srv.KeyPEM)
	w, _, err := NewWatcher(settings(ks, "", "none"), &target{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write := func(name string, o testpki.LeafOptions) string {
		l := ca.Issue(t, o)
		return testpki.Write(t, dir, name, l.CertPEM, l.KeyPEM)
	}
	same := write("same.pem", testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker"}, Server: true})
	otherDN := write("other-dn.pem", testpki.LeafOptions{Subject: pkix.Name{CommonName: "other"}, Server: true})
	moreSAN := write("more-san.pem", testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker"}, Server: true, IPs: []net.IP{net.ParseIP("127.0.0.9")}})
	fewerSAN := write("fewer-san.pem", testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker"}}) // a client certificate: no SANs
	for _, c := range []struct {
		what              string
		path              string
		allowDN, allowSAN bool
		want              string // "" accepted
	}{
		{"same subject and SANs", same, false, false, ""},
		{"another subject", otherDN, false, false, "DistinguishedName does not match"},
		{"another subject, ssl.allow.dn.changes", otherDN, true, false, ""},
		{"a SAN added", moreSAN, false, false, ""},
		{"SANs dropped", fewerSAN, false, false, "SubjectAltNames do not match"},
		{"SANs dropped, ssl.allow.san.changes", fewerSAN, false, true, ""},
		{"SANs dropped, only ssl.allow.dn.changes", fewerSAN, true, false, "SubjectAltNames do not match"},
	} {
		s := settings(c.path, "", "none")
		s.AllowDNChanges, s.AllowSANChanges = c.allowDN, c.allowSAN
		_, err := w.Prepare(s)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.what, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error with %q", c.what, err, c.want)
		}
	}
}
