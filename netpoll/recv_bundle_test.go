//go:build linux

package netpoll

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/ringbroker/ringbroker/ring"
)

// TestRecvBundle (io_uring only, ring.recv.bundle): with bundled receives
// into small provided buffers, several connections at once pipeline frames
// of up to 40 buffers each, plain and over TLS on the loops, answered on
// the loop and from other goroutines (held in groups of 5 across the
// connections: 4 x 300 requests fill every group); every answer comes back
// whole, byte for byte and in order, and receives did cover several
// buffers each (none on a kernel without bundles, which falls back).
func TestRecvBundle(t *testing.T) {
	pki := newTestPKI(t)
	for _, tc := range []struct {
		name string
		tls  bool
		h    Handler
	}{{"echo", false, echo}, {"reverser", false, &reverser{group: 5}}, {"tls", true, echo}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, BackendUring, tc.h, func(o *Options) {
				o.RecvBundle = true
				o.RecvBufferBytes, o.RecvBuffers = 1024, 128
				if tc.tls {
					o.Secure = []SecureLayer{NewGoTLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS13})}
					o.TLSOnLoops = true
				}
			})
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for conn := range 4 {
				var c net.Conn = dial(t, s)
				if tc.tls {
					tc := tls.Client(c, &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
					defer tc.Close()
					c = tc
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- bundleEcho(c, conn, 300)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			us, ok := s.b.(*uringServer)
			if sp, split := s.b.(*splitServer); split {
				us, ok = sp.uring, true
			}
			if !ok {
				t.Fatalf("backend %T", s.b)
			}
			if r, _ := onRing(s); tc.tls && r != 4 {
				t.Fatalf("%d TLS connections on the rings, want 4", r)
			}
			var bundled int64
			for _, l := range us.loops {
				bundled += l.bundled.Load()
				if !l.bundle && l.r.Features()&ring.FeatRecvSendBundle != 0 {
					t.Fatalf("loop %d does not bundle on a kernel that has bundles", l.idx)
				}
			}
			// A kernel without bundles gets one buffer per receive
			// (and the answers above still came back whole).
			if hasBundles := us.loops[0].bundle; hasBundles != (bundled > 0) {
				t.Fatalf("loops bundle %v, receives that filled more than one buffer %d", hasBundles, bundled)
			}
		})
	}
}

// bundleFrame is frame i of connection conn: 0 to 40 KiB of bytes that
// depend on both and on their position.
func bundleFrame(conn, i int) []byte {
	b := make([]byte, 8+(i*7919+conn*131)%(40<<10))
	binary.BigEndian.PutUint32(b, uint32(conn))
	binary.BigEndian.PutUint32(b[4:], uint32(i))
	for k := 8; k < len(b); k++ {
		b[k] = byte(k*31 + i + conn)
	}
	return b
}

// bundleEcho writes n frames back to back on c and checks that each
// answer is its frame.
func bundleEcho(c net.Conn, conn, n int) error {
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(c)
		for i := range n {
			if err := writeFrame(w, bundleFrame(conn, i)); err != nil {
				werr <- err
				return
			}
		}
		werr <- w.Flush()
	}()
	r := bufio.NewReader(c)
	for i := range n {
		got, err := readFrame(r)
		if err != nil {
			return fmt.Errorf("conn %d, answer %d: %w", conn, i, err)
		}
		if want := bundleFrame(conn, i); !bytes.Equal(got, want) {
			return fmt.Errorf("conn %d, answer %d: %d bytes differ from the %d sent", conn, i, len(got), len(want))
		}
	}
	if err := <-werr; err != nil && err != io.EOF {
		return fmt.Errorf("conn %d: write: %w", conn, err)
	}
	return nil
}
