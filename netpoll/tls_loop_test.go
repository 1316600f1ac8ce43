//go:build linux

package netpoll

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/tlsrec"
)

// startLoopTLS starts an io_uring server whose one listener is TLS with
// TLSOnLoops, serving h.
func startLoopTLS(t *testing.T, pki *testPKI, h Handler, cfg *tls.Config) *Server {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	}
	return startServer(t, BackendUring, h, func(o *Options) {
		o.Secure = []SecureLayer{NewGoTLS(cfg)}
		o.TLSOnLoops = true
	})
}

// TestTLSOnLoopsNoGoroutinePerConnection: N TLS 1.3 connections open on
// the rings cost no goroutine each; a TLS 1.2 one goes to the portable
// half (its two goroutines).
func TestTLSOnLoopsNoGoroutinePerConnection(t *testing.T) {
	pki := newTestPKI(t)
	s := startLoopTLS(t, pki, echo, nil)
	addr := s.Addrs()[0].String()
	if b := s.Backend(); b != BackendUring {
		t.Fatalf("backend %s", b)
	}
	base := runtime.NumGoroutine()
	const n = 40
	var conns []*tls.Conn
	for i := 0; i < n; i++ {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := writeFrame(c, seqBody(i, 100)); err != nil {
			t.Fatal(err)
		}
		if got, err := readFrame(c); err != nil || !bytes.Equal(got, seqBody(i, 100)) {
			t.Fatalf("conn %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	waitUntil(t, "every TLS connection on a ring", 10*time.Second, func() bool {
		r, p := onRing(s)
		return r == n && p == 0
	})
	// The handshake goroutines end; the client side costs nothing in
	// goroutines (tls.Conn has none of its own).
	waitUntil(t, "goroutines back to the baseline", 10*time.Second, func() bool { return runtime.NumGoroutine() <= base+3 })
	c12, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer c12.Close()
	if err := writeFrame(c12, []byte("tls12")); err != nil {
		t.Fatal(err)
	}
	if got, err := readFrame(c12); err != nil || string(got) != "tls12" {
		t.Fatalf("TLS 1.2: %q %v", got, err)
	}
	if r, p := onRing(s); r != n || p != 1 {
		t.Fatalf("with a TLS 1.2 client: %d on the rings, %d on the portable half", r, p)
	}
	for _, c := range conns {
		c.Close()
	}
	waitUntil(t, "the rings' connections closed", 10*time.Second, func() bool { r, _ := onRing(s); return r == 0 })
}

// TestTLSOnLoopsLargeFramesAndFile: frames of many records both ways
// (records straddle provided buffers) and a 16 MiB file region read from
// the page cache and sealed by the loop; with a client certificate
// (mTLS).
func TestTLSOnLoopsLargeFramesAndFile(t *testing.T) {
	pki := newTestPKI(t)
	f, err := os.CreateTemp(t.TempDir(), "region")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fileBytes := make([]byte, 16<<20)
	for i := range fileBytes {
		fileBytes[i] = byte(i*13 + i>>16)
	}
	if _, err := f.Write(fileBytes); err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	h := HandlerFunc(func(req Request, frame []byte) {
		buf := GetBuffer()
		buf.B = append(buf.B, frame...)
		if string(frame) == "file" {
			// Two regions with bytes between: the pieces interleave.
			buf.Files = append(buf.Files, FileRegion{At: len(buf.B), Fd: fd, Off: 1, Len: int64(len(fileBytes)) - 1})
			buf.B = append(buf.B, "mid"...)
			buf.Files = append(buf.Files, FileRegion{At: len(buf.B), Fd: fd, Off: 0, Len: 5000})
			buf.B = append(buf.B, "end"...)
		}
		req.Reply(buf)
	})
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	s := startLoopTLS(t, pki, h, cfg)
	c, err := tls.Dial("tcp", s.Addrs()[0].String(), &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, size := range []int{1 << 20, 3<<20 + 17} {
		body := seqBody(size, size)
		go func() { _ = writeFrame(c, body) }()
		if got, err := readFrame(c); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%d-byte frame: %v", size, err)
		}
	}
	if err := writeFrame(c, []byte("file")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := readFrame(c)
	want := append(append(append(append([]byte("file"), fileBytes[1:]...), "mid"...), fileBytes[:5000]...), "end"...)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file region over TLS on the ring: %v, %d bytes of %d", err, len(got), len(want))
	}
	if r, _ := onRing(s); r != 1 {
		t.Fatalf("%d connections on the rings", r)
	}
}

// TestTLSOnLoopsKeyUpdate: a client that takes over its own records after
// a crypto/tls handshake sends KeyUpdate(update_requested) between
// frames; the loop updates its read key, answers with a KeyUpdate of its
// own before its next record, and keeps serving. Then a tampered record
// closes the connection with a bad_record_mac alert.
func TestTLSOnLoopsKeyUpdate(t *testing.T) {
	pki := newTestPKI(t)
	s := startLoopTLS(t, pki, echo, nil)
	nc, err := net.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var secrets tlsrec.Secrets
	tc := tls.Client(&tlsrec.RecordConn{Conn: nc}, &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1", KeyLogWriter: &secrets})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	cs, ss := secrets.Traffic()
	// The client's side of the record layer: reads with the server's
	// secret, writes with the client's.
	client, err := tlsrec.NewServer(tc.ConnectionState().CipherSuite, ss, cs)
	if err != nil {
		t.Fatal(err)
	}
	var in []byte
	buf := make([]byte, 64<<10)
	roundTrip := func(body []byte) {
		t.Helper()
		var frame []byte
		frame = binary.BigEndian.AppendUint32(frame, uint32(len(body)))
		frame = append(frame, body...)
		out, err := client.SealApplication(nil, frame)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(out); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for len(in) < len(frame) {
			n, err := nc.Read(buf)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := client.Open(buf[:n], func(p []byte) error { in = append(in, p...); return nil }); err != nil {
				t.Fatalf("open the server's records: %v", err)
			}
		}
		if !bytes.Equal(in[:len(frame)], frame) {
			t.Fatal("echo mismatch")
		}
		in = in[len(frame):]
	}
	roundTrip([]byte("before"))
	for i := 0; i < 3; i++ {
		client.RequestKeyUpdate()
		roundTrip(seqBody(i, 40000)) // ours goes first; the server's KeyUpdate precedes its echo
		if r, w := client.KeyUpdates(); r != i+1 || w != i+1 {
			t.Fatalf("after KeyUpdate %d: the client's keys changed %d times (read), %d (write)", i+1, r, w)
		}
	}
	// Tamper with a record: the server sends a fatal alert and closes.
	out, err := client.SealApplication(nil, []byte{0, 0, 0, 1, 'x'})
	if err != nil {
		t.Fatal(err)
	}
	out[len(out)-1] ^= 1
	if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var alertErr error
	for alertErr == nil {
		n, err := nc.Read(buf)
		if err == io.EOF {
			t.Fatal("closed without an alert")
		}
		if err != nil {
			t.Fatal(err)
		}
		alertErr = client.Open(buf[:n], func([]byte) error { return nil })
	}
	if e, ok := alertErr.(*tlsrec.Error); !ok || !e.Received || e.Alert != 20 {
		t.Fatalf("got %v, want the server's bad_record_mac alert", alertErr)
	}
	if _, err := nc.Read(buf); err != io.EOF {
		t.Fatalf("after the alert: %v, want EOF", err)
	}
}

// BenchmarkTLSEcho: 1 MiB frames echoed over one TLS 1.3 connection (the
// client writes ahead of its reads), on the loops and on the portable
// goroutines, client and server in this process: compare the two, not the
// absolute figures.
func BenchmarkTLSEcho(b *testing.B) {
	for _, onLoops := range []bool{true, false} {
		name := "goroutines"
		if onLoops {
			name = "loops"
		}
		b.Run(name, func(b *testing.B) {
			pki := newTestPKI(b)
			cfg := &tls.Config{Certificates: []tls.Certificate{pki.server}}
			s, err := Listen(Options{Listeners: []string{"127.0.0.1:0"}, Backend: BackendUring, Loops: 2, Handler: echo,
				Secure: []SecureLayer{NewGoTLS(cfg)}, TLSOnLoops: onLoops})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown(context.Background())
			c, err := tls.Dial("tcp", s.Addrs()[0].String(), &tls.Config{RootCAs: pki.pool})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			body := make([]byte, 1<<20)
			errc := make(chan error, 1)
			go func() {
				for i := 0; i < b.N; i++ {
					if err := writeFrame(c, body); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := readFrame(c); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestPreadCached: the loop's file reads for TLS return the file's bytes
// at any offset, and allocate nothing.
func TestPreadCached(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "pread")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 100<<10)
	for i := range data {
		data[i] = byte(i * 31)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	buf := make([]byte, 20000)
	for _, off := range []int64{0, 1, 4095, 70000} {
		n, err := preadCached(fd, buf, off)
		if err != nil || n == 0 || !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
			t.Fatalf("offset %d: %d bytes, %v", off, n, err)
		}
	}
	if n, err := preadCached(fd, buf, int64(len(data))); n != 0 || err != nil {
		t.Fatalf("at the end: %d, %v", n, err)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = preadCached(fd, buf, 1000) }); a != 0 {
		t.Fatalf("%v allocations per read", a)
	}
}
