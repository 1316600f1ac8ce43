package netpoll

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// testSessions records sessions opened and done.
type testSessions struct {
	mu     sync.Mutex
	opened []*testSession
	done   chan *testSession
}

type testSession struct {
	listener int
	remote   net.Addr
	frames   int // written by ServeFrame only
	s        *testSessions
}

func (s *testSession) Done() { s.s.done <- s }

func (ts *testSessions) OpenSession(listener int, remote net.Addr) Session {
	s := &testSession{listener: listener, remote: remote, s: ts}
	ts.mu.Lock()
	ts.opened = append(ts.opened, s)
	ts.mu.Unlock()
	return s
}

// TestSessions: each connection gets its own Session naming the listener
// that accepted it, every Request carries it, and Done runs once after the
// connection closes.
func TestSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		ts := &testSessions{done: make(chan *testSession, 4)}
		h := HandlerFunc(func(req Request, frame []byte) {
			s := req.Session().(*testSession)
			s.frames++
			buf := GetBuffer()
			buf.B = append(buf.B, byte(s.listener), byte(s.frames))
			req.Reply(buf)
		})
		srv := startServer(t, backend, h, func(o *Options) {
			o.Listeners = []string{"127.0.0.1:0", "127.0.0.1:0"}
			o.Sessions = ts
		})
		for li := 0; li < 2; li++ {
			c, err := net.Dial("tcp", srv.Addrs()[li].String())
			if err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(c)
			for n := 1; n <= 2; n++ {
				if err := writeFrame(c, []byte("x")); err != nil {
					t.Fatal(err)
				}
				got, err := readFrame(r)
				if err != nil {
					t.Fatal(err)
				}
				if got[0] != byte(li) || got[1] != byte(n) {
					t.Fatalf("listener %d frame %d: answered %v", li, n, got)
				}
			}
			c.Close()
			select {
			case s := <-ts.done:
				if s.listener != li || s.remote == nil {
					t.Fatalf("done session of listener %d (remote %v), want listener %d", s.listener, s.remote, li)
				}
			case <-time.After(failSafe):
				t.Fatal("session not done after close")
			}
		}
	})
}

// TestReplyThenClose: the response is sent, then the connection closes;
// a later request's answer is not sent.
func TestReplyThenClose(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := HandlerFunc(func(req Request, frame []byte) {
			buf := GetBuffer()
			buf.B = append(buf.B, frame...)
			if string(frame) == "last" {
				go func() { // from another goroutine, as a delayed failure does
					req.ReplyThenClose(buf)
				}()
				return
			}
			req.Reply(buf)
		})
		srv := startServer(t, backend, h, nil)
		c := dial(t, srv)
		for _, f := range []string{"one", "last", "after"} {
			if err := writeFrame(c, []byte(f)); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(failSafe))
		r := bufio.NewReader(c)
		for _, want := range []string{"one", "last"} {
			got, err := readFrame(r)
			if err != nil || string(got) != want {
				t.Fatalf("read %q, %v; want %q", got, err, want)
			}
		}
		if got, err := readFrame(r); !errors.Is(err, io.EOF) {
			t.Fatalf("after ReplyThenClose: read %q, %v; want EOF", got, err)
		}
	})
}
