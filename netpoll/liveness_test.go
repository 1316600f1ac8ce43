package netpoll

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// blocker echoes every frame, except that a frame "block" first waits on the
// ring thread (the handler contract forbids it: this is the bug the
// watchdog exists to catch) until release is closed.
type blocker struct {
	entered chan struct{}
	release chan struct{}
}

func (h *blocker) ServeFrame(req Request, frame []byte) {
	if bytes.Equal(frame, []byte("block")) {
		h.entered <- struct{}{}
		<-h.release
	}
	echo(req, frame)
}

// waitLive calls Liveness until it returns nil (every loop answered the
// previous call's ping), within a fail-safe bound.
func waitLive(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Liveness()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("loops did not answer their pings within 10s: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A loop blocked in a handler stops answering Liveness pings (io_uring: the
// handler runs on the loop's thread); once it returns, Liveness is nil
// again. On the portable backend a blocked handler holds only its own
// connection's goroutine, and Liveness stays nil.
func TestLivenessBlockedLoop(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := &blocker{entered: make(chan struct{}, 1), release: make(chan struct{})}
		s := startServer(t, backend, h, nil)
		released := false
		release := func() {
			if !released {
				released = true
				close(h.release)
			}
		}
		t.Cleanup(release) // before the server's shutdown (cleanups run last-first)
		if err := s.Liveness(); err != nil {
			t.Fatalf("first call: %v", err)
		}
		waitLive(t, s)

		c := dial(t, s)
		if err := writeFrame(c, []byte("block")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-h.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("handler never called")
		}
		// The blocked loop cannot answer a ping posted from now on: the
		// first call posts one (or reports an older one), the second must
		// report it.
		first := s.Liveness()
		second := s.Liveness()
		switch backend {
		case BackendUring:
			if second == nil || !strings.Contains(second.Error(), "has not answered") {
				t.Fatalf("a loop blocked in its handler: Liveness = %v (first call %v)", second, first)
			}
			t.Logf("blocked: %v", second)
		case BackendPortable:
			if first != nil || second != nil {
				t.Fatalf("portable: Liveness = %v, %v; want nil", first, second)
			}
		}

		release()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := readFrame(c); err != nil || string(b) != "block" {
			t.Fatalf("response after release: %q %v", b, err)
		}
		waitLive(t, s)
	})
}
