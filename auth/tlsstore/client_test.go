package tlsstore

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/testpki"
)

// TestDialer: the client side of a listener's configuration. A broker
// whose certificate chains to the trust store is reached (mTLS: it sees
// our key store's certificate); one from another CA is refused; the host
// name is checked only with VerifyHost.
func TestDialer(t *testing.T) {
	dir := t.TempDir()
	ca, other := testpki.NewCA(t, "ca"), testpki.NewCA(t, "other")
	// Our listener: a certificate for 127.0.0.1 (server and client auth)
	// and the CA as trust store.
	self := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-1"}, Server: true, ClientToo: true})
	ours, err := Load(settings(testpki.Write(t, dir, "self.pem", self.CertPEM, self.KeyPEM), testpki.Write(t, dir, "ca.pem", ca.PEM), "required"))
	if err != nil {
		t.Fatal(err)
	}
	serve := func(leaf *testpki.Leaf) (string, chan string) {
		t.Helper()
		cert := leaf.TLS(t)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		peers := make(chan string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			tc := c.(*tls.Conn)
			if tc.HandshakeContext(context.Background()) == nil && len(tc.ConnectionState().PeerCertificates) > 0 {
				peers <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}
			close(peers)
		}()
		return ln.Addr().String(), peers
	}
	dial := func(addr string, verifyHost bool) error {
		d := &Dialer{Config: func() *tls.Config { return ours }, VerifyHost: verifyHost, Timeout: 5 * time.Second}
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}

	good := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-2"}, Server: true, ClientToo: true})
	addr, peers := serve(good)
	if err := dial(addr, true); err != nil {
		t.Fatalf("a broker of the same CA: %v", err)
	}
	if got := <-peers; got != "broker-1" {
		t.Fatalf("the broker saw client certificate %q, want broker-1", got)
	}

	addr, _ = serve(other.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "intruder"}, Server: true}))
	if err := dial(addr, false); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("a broker of another CA: %v, want an unknown authority", err)
	}

	// A certificate naming 127.0.0.1 only, served on 127.0.0.2: refused
	// with the host name check, taken without it (the chain is the CA's).
	listenOn := func(host string) string {
		cert := good.TLS(t)
		ln, err := tls.Listen("tcp", host+":0", &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.(*tls.Conn).HandshakeContext(context.Background())
				c.Close()
			}
		}()
		return ln.Addr().String()
	}
	addr = listenOn("127.0.0.2")
	if err := dial(addr, true); err == nil || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Fatalf("a certificate not naming the host, with the check: %v", err)
	}
	if err := dial(addr, false); err != nil {
		t.Fatalf("a certificate not naming the host, without the check: %v", err)
	}
}
