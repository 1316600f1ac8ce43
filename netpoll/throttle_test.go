package netpoll

import (
	"bytes"
	"testing"
	"time"
)

// TestThrottledReplyMutes: an answer sent with ReplyThrottled reaches the
// client at once, and the connection's next request is answered only after
// the quiet period (KIP-219), on both backends.
func TestThrottledReplyMutes(t *testing.T) {
	const quiet = 400 * time.Millisecond
	h := HandlerFunc(func(req Request, frame []byte) {
		buf := GetBuffer()
		buf.B = append(buf.B, frame...)
		if bytes.Equal(frame, []byte("throttle")) {
			req.ReplyThrottled(buf, quiet)
			return
		}
		if bytes.Equal(frame, []byte("quiet")) {
			buf.Release()
			req.NoReplyThrottled(quiet) // no answer, then the quiet period
			return
		}
		if bytes.Equal(frame, []byte("throttle later")) {
			// Answered from another goroutine while the loop reads on.
			go func() {
				time.Sleep(20 * time.Millisecond)
				req.ReplyThrottled(buf, quiet)
			}()
			return
		}
		req.Reply(buf)
	})
	for _, first := range []string{"throttle", "throttle later", "quiet"} {
		t.Run(first, func(t *testing.T) { testThrottledReply(t, h, first, quiet) })
	}
}

func testThrottledReply(t *testing.T, h Handler, first string, quiet time.Duration) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, h, func(o *Options) { o.IdleTimeout = time.Minute })
		c := dial(t, s)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(failSafe))
		start := time.Now()
		if err := writeFrame(c, []byte(first)); err != nil {
			t.Fatal(err)
		}
		if first != "quiet" {
			if _, err := readFrame(c); err != nil {
				t.Fatal(err)
			}
		} else {
			// No answer to wait for: the next request goes once the
			// connection is muted (one sent before would be read ahead,
			// as pipelining allows).
			waitUntil(t, "muted", failSafe, func() bool { return s.Stats().MutedConns == 1 })
		}
		if d := time.Since(start); d >= quiet {
			t.Fatalf("the throttled answer itself took %v: it must leave at once", d)
		}
		if err := writeFrame(c, []byte("next")); err != nil {
			t.Fatal(err)
		}
		got, err := readFrame(c)
		if err != nil || string(got) != "next" {
			t.Fatalf("second answer %q, %v", got, err)
		}
		if d := time.Since(start); d < quiet-20*time.Millisecond {
			t.Fatalf("second request answered after %v, inside the %v quiet period", d, quiet)
		}
		// The quiet period is over: no more delay.
		t2 := time.Now()
		if err := writeFrame(c, []byte("again")); err != nil {
			t.Fatal(err)
		}
		if _, err := readFrame(c); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t2); d >= quiet {
			t.Fatalf("answer after the quiet period took %v", d)
		}
		if s.Stats().MutedConns != 0 {
			waitUntil(t, "unmuted", failSafe, func() bool { return s.Stats().MutedConns == 0 })
		}
	})
}
