//go:build linux

package netpoll

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// startZCTLS starts an io_uring server with TLS on the loops and
// registered send buffers (TLSSendZC) serving h; it fails the test when
// the loops fell back to heap buffers (no SEND_ZC, or no memlock for them).
func startZCTLS(t *testing.T, pki *testPKI, h Handler) (*Server, *uringServer) {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.server}}
	s := startServer(t, BackendUring, h, func(o *Options) {
		o.Secure = []SecureLayer{NewGoTLS(cfg)}
		o.TLSOnLoops = true
		o.TLSSendZC = true
	})
	u := s.b.(*splitServer).uring
	for _, l := range u.loops {
		if l.tlsReg == nil { // set up before Listen returned
			t.Fatal("loops send TLS from heap buffers (no IORING_OP_SEND_ZC, or buffer registration failed: see the log)")
		}
	}
	return s, u
}

// zcFileHandler answers "file" with a region of all of f's bytes between
// two small pieces, anything else with an echo.
func zcFileHandler(f *os.File, size int) Handler {
	return HandlerFunc(func(req Request, frame []byte) {
		buf := GetBuffer()
		buf.B = append(buf.B, frame...)
		if string(frame) == "file" {
			buf.Files = append(buf.Files, FileRegion{At: len(buf.B), Fd: int(f.Fd()), Off: 0, Len: int64(size)})
			buf.B = append(buf.B, "end"...)
		}
		req.Reply(buf)
	})
}

func zcTestFile(t *testing.T, size int) (*os.File, []byte) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "region")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*31 + i>>12)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f, b
}

// TestTLSOnLoopsSendZCFile: 6 MiB file regions fetched over TLS 1.3 on
// the loops go out by SEND_ZC from the registered buffers and read back
// byte-exact; 24 connections at once (12 per loop, 8 buffers per loop):
// some wait for a buffer, all finish, and every buffer returns.
func TestTLSOnLoopsSendZCFile(t *testing.T) {
	pki := newTestPKI(t)
	const size = 6 << 20
	f, fileBytes := zcTestFile(t, size)
	s, u := startZCTLS(t, pki, zcFileHandler(f, size))
	want := append(append([]byte("file"), fileBytes...), "end"...)
	const conns = 24
	var wg sync.WaitGroup
	errs := make(chan string, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tls.Dial("tcp", s.Addrs()[0].String(), &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS13})
			if err != nil {
				errs <- err.Error()
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			for round := 0; round < 2; round++ {
				if err := writeFrame(c, []byte("file")); err != nil {
					errs <- err.Error()
					return
				}
				got, err := readFrame(c)
				if err != nil || !bytes.Equal(got, want) {
					errs <- fmt.Sprintf("file region over SEND_ZC: %v, %d bytes of %d", err, len(got), len(want))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if n := u.tlsRegSends.Load(); n < int64(conns*2*size/tlsOutBytes) {
		t.Fatalf("%d sends from registered buffers for %d fetches of %d bytes", n, conns*2, size)
	}
	// Zero-copy itself ran: the TLS listener is plain TCP, whose accepted
	// sockets take SEND_ZC (TestListenersArePlainTCP).
	if n := u.tlsZCSends.Load(); n < int64(conns*2*size/tlsOutBytes) {
		t.Fatalf("%d SEND_ZC sends for %d fetches of %d bytes", n, conns*2, size)
	}
	for _, l := range u.loops {
		if l.tlsReg.zcRefused {
			t.Fatalf("loop %d: the kernel refused SEND_ZC on an accepted socket", l.idx)
		}
	}
	waitUntil(t, "every registered buffer back in its pool", 10*time.Second, func() bool { return u.tlsRegHeld.Load() == 0 })
}

// TestTLSOnLoopsSendZCCloseInFlight: clients ask for 16 MiB over TLS and
// close without reading, so their connections close with SEND_ZC sends in
// flight (the socket buffers full); the loops free them once the last
// completions arrived and every registered buffer returns to its pool;
// then the server still serves a fetch byte-exact.
func TestTLSOnLoopsSendZCCloseInFlight(t *testing.T) {
	pki := newTestPKI(t)
	const size = 16 << 20
	f, fileBytes := zcTestFile(t, size)
	s, u := startZCTLS(t, pki, zcFileHandler(f, size))
	const conns = 20
	var clients []*tls.Conn
	for i := 0; i < conns; i++ {
		c, err := tls.Dial("tcp", s.Addrs()[0].String(), &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS13})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		if err := writeFrame(c, []byte("file")); err != nil {
			t.Fatal(err)
		}
	}
	// The clients read nothing: the sends fill the socket buffers and stay
	// in flight, every buffer of both loops held (20 connections, 16
	// buffers: some wait for one).
	waitUntil(t, "every registered buffer held by a send", 10*time.Second, func() bool {
		return u.tlsRegHeld.Load() == int64(len(u.loops)*tlsRegBufs)
	})
	for _, c := range clients {
		c.Close()
	}
	waitUntil(t, "the closed connections freed", 20*time.Second, func() bool { r, _ := onRing(s); return r == 0 })
	waitUntil(t, "every registered buffer back in its pool", 10*time.Second, func() bool { return u.tlsRegHeld.Load() == 0 })
	c, err := tls.Dial("tcp", s.Addrs()[0].String(), &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if err := writeFrame(c, []byte("file")); err != nil {
		t.Fatal(err)
	}
	got, err := readFrame(c)
	if want := append(append([]byte("file"), fileBytes...), "end"...); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("fetch after the closes: %v", err)
	}
}
