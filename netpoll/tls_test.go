package netpoll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(cn string, usage x509.ExtKeyUsage, serial int64) tls.Certificate {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"ringbroker"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	p := &testPKI{pool: x509.NewCertPool(), server: leaf("server", x509.ExtKeyUsageServerAuth, 2), client: leaf("client", x509.ExtKeyUsageClientAuth, 3)}
	p.pool.AddCert(ca)
	return p
}

// tlsSessions records the TLS state each session was opened with.
type tlsSessions struct {
	mu     sync.Mutex
	plain  int
	secure []string // client certificate CNs ("" without one)
}

type nopSession struct{}

func (nopSession) Done() {}

func (s *tlsSessions) OpenSession(int, net.Addr) Session {
	s.mu.Lock()
	s.plain++
	s.mu.Unlock()
	return nopSession{}
}

func (s *tlsSessions) OpenTLSSession(listener int, _ net.Addr, st *tls.ConnectionState) Session {
	cn := ""
	if len(st.PeerCertificates) > 0 {
		cn = st.PeerCertificates[0].Subject.CommonName
	}
	s.mu.Lock()
	s.secure = append(s.secure, cn)
	s.mu.Unlock()
	return nopSession{}
}

// A TLS listener beside a plaintext one, on both backends: echo over TLS
// with a client certificate, the session sees it; a file region crosses
// TLS; plaintext bytes on the TLS port never reach the handler; a stalled
// handshake is closed after HandshakeTimeout; handshakes over
// MaxHandshaking are refused.
func TestTLSListener(t *testing.T) {
	pki := newTestPKI(t)
	forEachBackend(t, func(t *testing.T, backend string) {
		testTLSListener(t, pki, backend, false)
		if backend == BackendUring {
			t.Run("on-loops", func(t *testing.T) { testTLSListener(t, pki, backend, true) })
		}
	})
}

// onRing reports how many connections s serves on its rings and on its
// portable half.
func onRing(s *Server) (ring, portable int64) {
	if b, ok := s.b.(*splitServer); ok {
		return b.uring.stats().Conns, b.portable.stats().Conns
	}
	return 0, s.Stats().Conns
}

func testTLSListener(t *testing.T, pki *testPKI, backend string, onLoops bool) {
	{
		var frames atomic.Int64
		f, err := os.CreateTemp(t.TempDir(), "region")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fileBytes := make([]byte, 200<<10)
		for i := range fileBytes {
			fileBytes[i] = byte(i * 7)
		}
		if _, err := f.Write(fileBytes); err != nil {
			t.Fatal(err)
		}
		fd := int(f.Fd()) // read once: the loop thread and f.Close share no lock
		h := HandlerFunc(func(req Request, frame []byte) {
			frames.Add(1)
			buf := GetBuffer()
			buf.B = append(buf.B, frame...)
			if string(frame) == "file" {
				buf.Files = append(buf.Files, FileRegion{At: len(buf.B), Fd: fd, Off: 0, Len: int64(len(fileBytes))})
			}
			req.Reply(buf)
		})
		sess := &tlsSessions{}
		layer := NewGoTLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12})
		s := startServer(t, backend, h, func(o *Options) {
			o.Listeners = []string{"127.0.0.1:0", "127.0.0.1:0"}
			o.Secure = []SecureLayer{nil, layer}
			o.Sessions = sess
			o.HandshakeTimeout = 3 * time.Second
			o.MaxHandshaking = 2
			o.TLSOnLoops = onLoops
		})
		if backend == BackendUring && s.TLSNote() == "" {
			t.Fatal("no note that TLS runs on the portable machinery")
		}
		tlsAddr := s.Addrs()[1].String()
		cc, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}})
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		for i := 0; i < 20; i++ {
			body := seqBody(i, 100+i*1000)
			if err := writeFrame(cc, body); err != nil {
				t.Fatal(err)
			}
			got, err := readFrame(cc)
			if err != nil || string(got) != string(body) {
				t.Fatalf("frame %d: %v (%d bytes)", i, err, len(got))
			}
		}
		if err := writeFrame(cc, []byte("file")); err != nil {
			t.Fatal(err)
		}
		got, err := readFrame(cc)
		if err != nil || string(got) != "file"+string(fileBytes) {
			t.Fatalf("file region over TLS: %v, %d bytes", err, len(got))
		}
		if onLoops {
			// The TLS connection is on a ring, not on the portable half.
			if r, p := onRing(s); r != 1 || p != 0 {
				t.Fatalf("TLS 1.3 connection: %d on the rings, %d on the portable half", r, p)
			}
		}
		sess.mu.Lock()
		if len(sess.secure) != 1 || sess.secure[0] != "client" {
			t.Fatalf("TLS sessions %v", sess.secure)
		}
		sess.mu.Unlock()
		// The plaintext listener still serves plaintext.
		pc := dial(t, s)
		if err := writeFrame(pc, []byte("plain")); err != nil {
			t.Fatal(err)
		}
		if got, err := readFrame(pc); err != nil || string(got) != "plain" {
			t.Fatalf("plaintext listener: %q %v", got, err)
		}
		// A Kafka frame sent in clear to the TLS port: the handshake
		// fails, the connection closes, the handler never sees it.
		before := frames.Load()
		raw, err := net.Dial("tcp", tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		_ = writeFrame(raw, []byte("not a ClientHello"))
		_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := readFrame(raw); err == nil {
			t.Fatal("a plaintext frame on the TLS port was answered")
		}
		raw.Close()
		// Its failed handshake holds its slot while it drains (at most
		// 1 s on the loop path, less once the client closes: lingerAfterFailure).
		waitUntil(t, "the failed handshake's slot free", 5*time.Second, func() bool { return handshaking(s) == 0 })
		// Stalled handshakes: connect and send nothing; closed after the
		// timeout. Two fill MaxHandshaking; a third is refused at once.
		var stalled []net.Conn
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", tlsAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			stalled = append(stalled, c)
		}
		waitUntil(t, "two handshakes in progress", 5*time.Second, func() bool { return handshaking(s) == 2 })
		third, err := net.Dial("tcp", tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
		// Refused at accept: closed well before the handshake timeout.
		if _, err := third.Read(make([]byte, 1)); err == nil || time.Since(start) > 2*time.Second {
			t.Fatalf("a handshake over MaxHandshaking: %v after %v", err, time.Since(start))
		}
		third.Close()
		for _, c := range stalled {
			start := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil || time.Since(start) > 9*time.Second {
				t.Fatalf("stalled handshake: %v after %v", err, time.Since(start))
			}
		}
		waitUntil(t, "no handshakes in progress", 5*time.Second, func() bool { return handshaking(s) == 0 })
		if n := frames.Load(); n != before {
			t.Fatalf("%d frames reached the handler from connections that never finished a handshake", n-before)
		}
		// A new configuration serves new connections (certificate reload).
		layer.SetConfig(&tls.Config{Certificates: []tls.Certificate{pki.client}})
		c2, err := tls.Dial("tcp", tlsAddr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if cn := c2.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "client" {
			t.Fatalf("after SetConfig the server presents %q", cn)
		}
	}
}

// handshaking is the number of TLS handshakes in progress on s.
func handshaking(s *Server) int64 {
	switch b := s.b.(type) {
	case *portableServer:
		return b.handshaking.Load()
	case *splitServer:
		return b.portable.handshaking.Load()
	}
	return -1
}

// With io_uring asked for and every listener TLS, the portable machinery
// serves them all and says so.
func TestTLSOnlyListenersOnUring(t *testing.T) {
	pki := newTestPKI(t)
	layer := NewGoTLS(&tls.Config{Certificates: []tls.Certificate{pki.server}})
	s, err := Listen(Options{Listeners: []string{"127.0.0.1:0"}, Backend: BackendUring, Loops: 1, Handler: echo, Secure: []SecureLayer{layer}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if s.Backend() != BackendPortable || !strings.Contains(s.TLSNote(), "every listener is TLS") {
		t.Fatalf("backend %s, note %q", s.Backend(), s.TLSNote())
	}
	c, err := tls.Dial("tcp", s.Addrs()[0].String(), &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := writeFrame(c, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got, err := readFrame(c); err != nil || string(got) != "hello" {
		t.Fatalf("%q %v", got, err)
	}
}
