package netpoll

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

var backends = []string{BackendUring, BackendPortable}

func forEachBackend(t *testing.T, f func(t *testing.T, backend string)) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { f(t, b) })
	}
}

// echo answers each frame with its own bytes.
var echo = HandlerFunc(func(req Request, frame []byte) {
	buf := GetBuffer()
	buf.B = append(buf.B, frame...)
	req.Reply(buf)
})

func startServer(t *testing.T, backend string, h Handler, mod func(*Options)) *Server {
	t.Helper()
	opts := Options{Listeners: []string{"127.0.0.1:0"}, Backend: backend, Loops: 2, Handler: h, Logger: zaptest.NewLogger(t)}
	if mod != nil {
		mod(&opts)
	}
	s, err := Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.Backend() != backend {
		t.Fatalf("backend = %s (%s)", s.Backend(), s.FallbackReason())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), failSafe)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeFrame(w io.Writer, body []byte) error {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	_, err := w.Write(append(b, body...))
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(l[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

func seqBody(i int, size int) []byte {
	b := make([]byte, 4+size)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// Requests written back to back without reading come back in order, across
// frame sizes that straddle the receive buffers.
func TestPipelinedEcho(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, echo, func(o *Options) { o.RecvBufferBytes = 4096; o.RecvBuffers = 16 })
		pipelinedEcho(t, dial(t, s), 2000, backend)
	})
}

// pipelinedEcho writes n numbered frames of sizes from 0 to 9 KB back to
// back on c and checks that the answers carry them back in order; what
// names the case in a failure.
func pipelinedEcho(t *testing.T, c net.Conn, n int, what string) {
	t.Helper()
	go func() {
		w := bufio.NewWriter(c)
		for i := 0; i < n; i++ {
			writeFrame(w, seqBody(i, (i*37)%9000))
		}
		w.Flush()
	}()
	r := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		b, err := readFrame(r)
		if err != nil {
			t.Fatalf("%s: response %d: %v", what, i, err)
		}
		if got := int(binary.BigEndian.Uint32(b)); got != i || len(b) != 4+(i*37)%9000 {
			t.Fatalf("%s: response %d carries request %d (len %d)", what, i, got, len(b))
		}
	}
}

// reverser holds requests in groups and answers each group last-first from
// another goroutine: responses must still leave in request order.
type reverser struct {
	mu    sync.Mutex
	group int
	held  []held
}

type held struct {
	req  Request
	body []byte
}

func (h *reverser) ServeFrame(req Request, frame []byte) {
	h.mu.Lock()
	h.held = append(h.held, held{req, append([]byte(nil), frame...)})
	var batch []held
	if len(h.held) == h.group {
		batch, h.held = h.held, nil
	}
	h.mu.Unlock()
	if batch != nil {
		go func() {
			for i := len(batch) - 1; i >= 0; i-- {
				buf := GetBuffer()
				buf.B = append(buf.B, batch[i].body...)
				batch[i].req.Reply(buf)
				time.Sleep(50 * time.Microsecond)
			}
		}()
	}
}

func TestReverseCompletionStaysOrdered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, &reverser{group: 10}, nil)
		c := dial(t, s)
		const n = 1000
		go func() {
			w := bufio.NewWriter(c)
			for i := 0; i < n; i++ {
				writeFrame(w, seqBody(i, 0))
			}
			w.Flush()
		}()
		r := bufio.NewReader(c)
		for i := 0; i < n; i++ {
			b, err := readFrame(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := int(binary.BigEndian.Uint32(b)); got != i {
				t.Fatalf("response %d carries request %d", i, got)
			}
		}
	})
}

// A client that writes and never reads gets muted; a second client is
// served meanwhile; once the hog reads, everything it sent is answered.
func TestMuteAndResume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, echo, func(o *Options) {
			o.ConnMaxInflightRequests = 64
			o.ConnMaxInflightBytes = 1 << 20
		})
		hog := dial(t, s)
		const n = 20000
		writeDone := make(chan error, 1)
		go func() {
			w := bufio.NewWriter(hog)
			for i := 0; i < n; i++ {
				if err := writeFrame(w, seqBody(i, 1000)); err != nil {
					writeDone <- err
					return
				}
			}
			writeDone <- w.Flush()
		}()
		waitUntil(t, "the hog muted", failSafe, func() bool { return s.Stats().MutedConns > 0 })
		// The hog stays muted until it reads, so a starved client would
		// wait for ever: the deadline turns that hang into a failure and
		// is no speed requirement.
		other := dial(t, s)
		_ = other.SetDeadline(time.Now().Add(failSafe))
		for i := 0; i < 50; i++ {
			writeFrame(other, seqBody(i, 10))
			if _, err := readFrame(other); err != nil {
				t.Fatalf("other client, request %d, while the hog is muted: %v", i, err)
			}
		}
		r := bufio.NewReader(hog)
		for i := 0; i < n; i++ {
			b, err := readFrame(r)
			if err != nil {
				t.Fatalf("hog response %d: %v", i, err)
			}
			if got := int(binary.BigEndian.Uint32(b)); got != i {
				t.Fatalf("hog response %d carries %d", i, got)
			}
		}
		if err := <-writeDone; err != nil {
			t.Fatal(err)
		}
	})
}

func TestBadFramesClose(t *testing.T) {
	cases := map[string][]byte{
		"oversized": binary.BigEndian.AppendUint32(nil, 2<<20),
		"negative":  {0xff, 0xff, 0xff, 0xfe},
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, echo, func(o *Options) { o.MaxFrameBytes = 1 << 20 })
		for name, b := range cases {
			t.Run(name, func(t *testing.T) {
				c := dial(t, s)
				c.Write(b)
				c.SetReadDeadline(time.Now().Add(failSafe))
				if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("connection not closed: %v", err)
				}
			})
		}
		c := dial(t, s) // still serving
		writeFrame(c, []byte("ok"))
		if b, err := readFrame(c); err != nil || string(b) != "ok" {
			t.Fatalf("%q %v", b, err)
		}
	})
}

func TestHandlerCloseAndIdle(t *testing.T) {
	closer := HandlerFunc(func(req Request, frame []byte) {
		if string(frame) == "bye" {
			req.Close("test asked to close")
			return
		}
		echo(req, frame)
	})
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, closer, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond })
		c := dial(t, s)
		writeFrame(c, []byte("bye"))
		c.SetReadDeadline(time.Now().Add(failSafe))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("handler Close did not close: %v", err)
		}
		idle := dial(t, s)
		idle.SetReadDeadline(time.Now().Add(failSafe))
		start := time.Now()
		if _, err := idle.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("idle connection not closed: %v", err)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Fatalf("closed after %v, before the idle timeout", d)
		}
	})
}

// Shutdown answers what is in flight before closing.
func TestShutdownDrains(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		var pending []Request
		var mu sync.Mutex
		h := HandlerFunc(func(req Request, frame []byte) {
			mu.Lock()
			pending = append(pending, req)
			mu.Unlock()
		})
		opts := Options{Listeners: []string{"127.0.0.1:0"}, Backend: backend, Loops: 1, Handler: h, Logger: zaptest.NewLogger(t)}
		s, err := Listen(opts)
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, s)
		writeFrame(c, []byte("x"))
		for {
			mu.Lock()
			n := len(pending)
			mu.Unlock()
			if n == 1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		done := make(chan error)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done <- s.Shutdown(ctx)
		}()
		time.Sleep(100 * time.Millisecond)
		buf := GetBuffer()
		buf.B = append(buf.B, "late"...)
		pending[0].Reply(buf)
		if b, err := readFrame(c); err != nil || string(b) != "late" {
			t.Fatalf("in-flight answer lost: %q %v", b, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// A connection byte bound far below one multishot burst: the burst lands in
// the stash, and the stash must not keep the connection muted for ever (it
// is parsed only after an unmute). Regression test for a deadlock.
func TestMuteWithStashLargerThanBound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, echo, func(o *Options) {
			o.ConnMaxInflightBytes = 16 << 10
			o.RecvBuffers = 64
		})
		hog := dial(t, s)
		const n = 8000
		go func() {
			w := bufio.NewWriter(hog)
			for i := 0; i < n; i++ {
				if writeFrame(w, seqBody(i, 1000)) != nil {
					return
				}
			}
			w.Flush()
		}()
		// The hog reads nothing until it is muted, so the stash is full by then.
		waitUntil(t, "the hog muted", failSafe, func() bool { return s.Stats().MutedConns > 0 })
		hog.SetReadDeadline(time.Now().Add(failSafe))
		r := bufio.NewReader(hog)
		for i := 0; i < n; i++ {
			b, err := readFrame(r)
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			if got := int(binary.BigEndian.Uint32(b)); got != i {
				t.Fatalf("response %d carries %d", i, got)
			}
		}
	})
}

// failSafe bounds every wait in these tests: long enough that only a hang
// reaches it on a loaded machine, so no outcome depends on speed.
const failSafe = 60 * time.Second

// waitUntil polls cond every few milliseconds until it holds, failing the
// test after bound (a fail-safe against a hang, not a speed requirement).
func waitUntil(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", bound, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
