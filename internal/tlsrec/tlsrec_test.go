package tlsrec

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"
)

func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlsrec"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, pool
}

// pair is a crypto/tls client connected over loopback TCP to a server side
// whose records this package took over.
type pair struct {
	client *tls.Conn
	server net.Conn // the raw socket under rec
	rec    *Conn
	state  tls.ConnectionState
}

func newPair(t *testing.T, clientMax uint16) (*pair, error) {
	t.Helper()
	cert, pool := testCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		p   *pair
		err error
	}
	done := make(chan res, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- res{err: err}
			return
		}
		var s Secrets
		cfg := ServerConfig(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, &s)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tc, rec, err := Handshake(ctx, nc, cfg, &s)
		p := &pair{server: nc, rec: rec}
		if tc != nil {
			p.state = tc.ConnectionState()
		}
		if errors.Is(err, ErrNotEligible) {
			// crypto/tls keeps serving it: echo one line.
			buf := make([]byte, 5)
			if _, err := io.ReadFull(tc, buf); err == nil {
				_, _ = tc.Write(buf)
			}
		}
		done <- res{p: p, err: err}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := tls.Client(cc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: clientMax})
	t.Cleanup(func() { client.Close() })
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if clientMax == tls.VersionTLS12 {
		if _, err := client.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("TLS 1.2 echo through crypto/tls: %q %v", buf, err)
		}
	}
	r := <-done
	if r.p != nil {
		r.p.client = client
		t.Cleanup(func() { r.p.server.Close() })
	}
	return r.p, r.err
}

// readPlain reads from the raw socket in random-sized pieces (records
// straddle reads) and opens them until want bytes of plaintext arrived.
func (p *pair) readPlain(t *testing.T, want int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 70000)
	_ = p.server.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < want {
		n, err := p.server.Read(buf[:1+mrand.IntN(len(buf)-1)])
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(got), want, err)
		}
		if err := p.rec.Open(buf[:n], func(b []byte) error { got = append(got, b...); return nil }); err != nil {
			t.Fatalf("open: %v", err)
		}
	}
	return got
}

func (p *pair) writeSealed(t *testing.T, plain []byte) {
	t.Helper()
	out, err := p.rec.SealApplication(nil, plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.server.Write(out); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestCryptoTLSClientBothDirections(t *testing.T) {
	p, err := newPair(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.state.Version != tls.VersionTLS13 {
		t.Fatalf("version %x", p.state.Version)
	}
	for _, size := range []int{1, 100, MaxPlaintextBytes, MaxPlaintextBytes + 1, 1 << 20} {
		msg := randomBytes(size)
		go func() { _, _ = p.client.Write(msg) }()
		if got := p.readPlain(t, size); !bytes.Equal(got, msg) {
			t.Fatalf("client->server %d bytes: mismatch", size)
		}
		reply := randomBytes(size)
		out, err := p.rec.SealApplication(nil, reply)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = p.server.Write(out) }()
		got := make([]byte, size)
		_ = p.client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(p.client, got); err != nil || !bytes.Equal(got, reply) {
			t.Fatalf("server->client %d bytes: %v", size, err)
		}
	}
}

// TestKeyUpdate: our KeyUpdate asks the crypto/tls client to update too;
// it answers with its own KeyUpdate, so both directions change keys and
// data keeps flowing both ways.
func TestKeyUpdate(t *testing.T) {
	p, err := newPair(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		p.rec.RequestKeyUpdate()
		reply := randomBytes(3000)
		p.writeSealed(t, reply) // KeyUpdate(update_requested), then data under the new key
		got := make([]byte, len(reply))
		_ = p.client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(p.client, got); err != nil || !bytes.Equal(got, reply) {
			t.Fatalf("round %d: server->client after KeyUpdate: %v", round, err)
		}
		msg := randomBytes(5000)
		go func() { _, _ = p.client.Write(msg) }()
		if got := p.readPlain(t, len(msg)); !bytes.Equal(got, msg) {
			t.Fatalf("round %d: client->server after the client's KeyUpdate: mismatch", round)
		}
		if p.rec.in.seq > 10 {
			t.Fatalf("round %d: read sequence %d: the client's KeyUpdate was not applied", round, p.rec.in.seq)
		}
	}
}

func TestCloseNotify(t *testing.T) {
	p, err := newPair(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.client.Close()
	buf := make([]byte, 1024)
	_ = p.server.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.ReadAtLeast(p.server, buf, HeaderBytes+19)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.rec.Open(buf[:n], func([]byte) error { return nil }); !errors.Is(err, ErrCloseNotify) {
		t.Fatalf("got %v, want close_notify", err)
	}
}

// TestTamperedRecord: a flipped bit fails authentication; the alert we send
// makes the client fail.
func TestTamperedRecord(t *testing.T) {
	p, err := newPair(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = p.client.Write([]byte("0123456789")) }()
	buf := make([]byte, 1024)
	_ = p.server.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.ReadAtLeast(p.server, buf, HeaderBytes+27)
	if err != nil {
		t.Fatal(err)
	}
	buf[HeaderBytes+3] ^= 1
	err = p.rec.Open(buf[:n], func([]byte) error { t.Fatal("tampered record delivered"); return nil })
	alert, ok := AlertFor(err)
	if !ok || alert != alertBadRecordMAC {
		t.Fatalf("got %v, want bad_record_mac", err)
	}
	if _, err := p.server.Write(p.rec.AppendAlert(nil, alert)); err != nil {
		t.Fatal(err)
	}
	_ = p.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := p.client.Read(buf); err == nil || !bytes.Contains([]byte(err.Error()), []byte("bad record MAC")) {
		t.Fatalf("client read: %v, want the bad_record_mac alert", err)
	}
}

func TestTLS12StaysWithCryptoTLS(t *testing.T) {
	p, err := newPair(t, tls.VersionTLS12)
	if !errors.Is(err, ErrNotEligible) {
		t.Fatalf("got %v, want ErrNotEligible", err)
	}
	if p.state.Version != tls.VersionTLS12 {
		t.Fatalf("version %x", p.state.Version)
	}
}

// peers returns a server Conn and a Conn playing the client (its secrets
// swapped), for every suite.
func peers(t testing.TB, suite uint16) (server, client *Conn) {
	cs, ss := randomBytes(48), randomBytes(48)
	if suite != tls.TLS_AES_256_GCM_SHA384 {
		cs, ss = cs[:32], ss[:32]
	}
	var err error
	if server, err = NewServer(suite, cs, ss); err != nil {
		t.Fatal(err)
	}
	if client, err = NewServer(suite, ss, cs); err != nil {
		t.Fatal(err)
	}
	return server, client
}

var suites = []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}

// TestSuitesRoundTrip: each suite, records cut at every kind of boundary,
// KeyUpdates in both directions, padding.
func TestSuitesRoundTrip(t *testing.T) {
	for _, suite := range suites {
		server, client := peers(t, suite)
		for round := 0; round < 4; round++ {
			if round%2 == 1 {
				client.RequestKeyUpdate()
			}
			msg := randomBytes(40000 + round)
			wire, err := client.SealApplication(nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			// A padded record: zero bytes after the inner type.
			wire, start := BeginRecord(wire)
			wire = append(wire, 'x')
			wire = append(wire, typeApplicationData, 0, 0, 0)
			wire, err = client.finish(wire, start, 0) // the padding's last byte is no type: strip
			if err != nil {
				t.Fatal(err)
			}
			msg = append(msg, 'x')
			var got []byte
			for len(wire) > 0 {
				n := min(len(wire), 1+mrand.IntN(9000))
				if err := server.Open(wire[:n], func(b []byte) error { got = append(got, b...); return nil }); err != nil {
					t.Fatalf("suite %x round %d: %v", suite, round, err)
				}
				wire = wire[n:]
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("suite %x round %d: plaintext mismatch", suite, round)
			}
			if server.Buffered() != 0 {
				t.Fatalf("suite %x: %d bytes held after whole records", suite, server.Buffered())
			}
			if round%2 == 1 {
				// The server answers the requested update before its data.
				if !server.PendingControl() {
					t.Fatalf("suite %x: no KeyUpdate pending after update_requested", suite)
				}
				out, err := server.SealApplication(nil, []byte("pong"))
				if err != nil {
					t.Fatal(err)
				}
				var back []byte
				if err := client.Open(out, func(b []byte) error { back = append(back, b...); return nil }); err != nil || string(back) != "pong" {
					t.Fatalf("suite %x: reply after KeyUpdate: %q %v", suite, back, err)
				}
			}
		}
	}
}

func TestLimits(t *testing.T) {
	server, _ := peers(t, tls.TLS_AES_128_GCM_SHA256)
	over := []byte{typeApplicationData, 3, 3, (MaxCiphertextBytes + 1) >> 8, (MaxCiphertextBytes + 1) & 0xff}
	if a, _ := AlertFor(server.Open(over, nil)); a != alertRecordOverflow {
		t.Fatalf("oversized record: alert %d", a)
	}
	server, _ = peers(t, tls.TLS_AES_128_GCM_SHA256)
	if a, _ := AlertFor(server.Open([]byte{typeHandshake, 3, 3, 0, 20}, nil)); a != alertUnexpectedMessage {
		t.Fatalf("plaintext handshake record: alert %d", a)
	}
	_, client := peers(t, tls.TLS_AES_128_GCM_SHA256)
	client.out.seq = ^uint64(0)
	if _, err := client.SealApplication(nil, []byte("x")); err == nil {
		t.Fatal("sealed past the last sequence number")
	}
	// Empty records: 16 in a row pass, the 17th is refused; data between
	// resets the count.
	server, client = peers(t, tls.TLS_AES_128_GCM_SHA256)
	var wire []byte
	for i := 0; i < 16; i++ {
		var start int
		wire, start = BeginRecord(wire)
		wire, _ = client.FinishRecord(wire, start)
	}
	wire, _ = client.SealApplication(wire, []byte("x"))
	if err := server.Open(wire, func([]byte) error { return nil }); err != nil {
		t.Fatalf("16 empty records and data: %v", err)
	}
	wire = wire[:0]
	for i := 0; i < 17; i++ {
		var start int
		wire, start = BeginRecord(wire)
		wire, _ = client.FinishRecord(wire, start)
	}
	if a, _ := AlertFor(server.Open(wire, func([]byte) error { return nil })); a != alertUnexpectedMessage {
		t.Fatalf("17 empty records: alert %d", a)
	}
	// Plaintext over 2^14 (with a valid tag): record_overflow.
	_, client = peers(t, tls.TLS_AES_128_GCM_SHA256)
	server.in, server.closed = client.out, false
	big, start := BeginRecord(nil)
	big = append(big, make([]byte, MaxPlaintextBytes+1)...)
	big = append(big, typeApplicationData)
	binary := len(big) - start + tagBytes
	big[start-2], big[start-1] = byte(binary>>8), byte(binary)
	nonce, _ := client.out.nextNonce()
	big = client.out.aead.Seal(big[:start], nonce, big[start:], big[:start])
	if a, _ := AlertFor(server.Open(big, func([]byte) error { return nil })); a != alertRecordOverflow {
		t.Fatalf("plaintext over 2^14: alert %d", a)
	}
}

// FuzzOpen: Open never panics on any input cut anywhere, and whatever a
// peer sealed opens to the same bytes however the wire is cut.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("hello"), []byte{0x17, 3, 3, 0, 17}, uint16(3))
	f.Add(bytes.Repeat([]byte{1}, 20000), []byte{}, uint16(1000))
	f.Fuzz(func(t *testing.T, plain, garbage []byte, cut uint16) {
		server, client := peers(t, tls.TLS_AES_128_GCM_SHA256)
		wire, err := client.SealApplication(nil, plain)
		if err != nil {
			t.Fatal(err)
		}
		step := int(cut)%4096 + 1
		var got []byte
		for len(wire) > 0 {
			n := min(step, len(wire))
			if err := server.Open(wire[:n], func(b []byte) error { got = append(got, b...); return nil }); err != nil {
				t.Fatal(err)
			}
			wire = wire[n:]
		}
		if !bytes.Equal(got, plain) {
			t.Fatal("round trip mismatch")
		}
		// Then garbage: an error or more held bytes, never a panic, and
		// never more held than one record.
		for len(garbage) > 0 {
			n := min(step, len(garbage))
			if server.Open(garbage[:n], func([]byte) error { return nil }) != nil {
				break
			}
			if server.Buffered() > MaxRecordBytes {
				t.Fatalf("holds %d bytes", server.Buffered())
			}
			garbage = garbage[n:]
		}
	})
}
