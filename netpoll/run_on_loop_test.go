package netpoll

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

// Request.RunOnLoop runs a function on the thread of the connection's
// io_uring loop (the thread that served the frame), posted from another
// goroutine or from the loop itself, and the function may answer there; the
// portable backend reports false and runs nothing. Once the server has shut
// down it reports false on io_uring too.
func TestRunOnLoop(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		type served struct {
			req Request
			tid int
		}
		got := make(chan served, 4)
		h := HandlerFunc(func(req Request, frame []byte) {
			tid := unix.Gettid()
			if string(frame) == "self" { // posted from the loop's own thread
				if !req.RunOnLoop(func() { reply(req, tid, unix.Gettid()) }) {
					reply(req, tid, -1)
				}
				return
			}
			got <- served{req, tid}
		})
		opts := Options{Listeners: []string{"127.0.0.1:0"}, Backend: backend, Loops: 2, Handler: h, Logger: zaptest.NewLogger(t)}
		s, err := Listen(opts)
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, s)

		// From another goroutine.
		if err := writeFrame(c, []byte("other")); err != nil {
			t.Fatal(err)
		}
		var sv served
		select {
		case sv = <-got:
		case <-time.After(failSafe):
			t.Fatal("frame not served")
		}
		ran := sv.req.RunOnLoop(func() { reply(sv.req, sv.tid, unix.Gettid()) })
		if ran != (backend == BackendUring) {
			t.Fatalf("RunOnLoop = %v on %s", ran, backend)
		}
		if !ran {
			reply(sv.req, sv.tid, -1)
		}
		checkReply(t, c, backend)

		// From the loop's own thread, inside ServeFrame.
		if err := writeFrame(c, []byte("self")); err != nil {
			t.Fatal(err)
		}
		checkReply(t, c, backend)

		// After shutdown nothing is accepted.
		if err := writeFrame(c, []byte("late")); err != nil {
			t.Fatal(err)
		}
		select {
		case sv = <-got:
		case <-time.After(failSafe):
			t.Fatal("frame not served")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = s.Shutdown(ctx) // the held request keeps it draining to the deadline
		if sv.req.RunOnLoop(func() { t.Error("ran after shutdown") }) {
			t.Fatal("RunOnLoop accepted a function after shutdown")
		}
	})
}

// reply answers req with "same" when ran is the thread that served the
// frame, "none" when nothing ran on a loop (-1), "other" otherwise.
func reply(req Request, served, ran int) {
	buf := GetBuffer()
	switch ran {
	case served:
		buf.B = append(buf.B, "same"...)
	case -1:
		buf.B = append(buf.B, "none"...)
	default:
		buf.B = append(buf.B, "other"...)
	}
	req.Reply(buf)
}

func checkReply(t *testing.T, c interface {
	Read([]byte) (int, error)
	SetReadDeadline(time.Time) error
}, backend string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(failSafe))
	b, err := readFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	want := "same"
	if backend != BackendUring {
		want = "none"
	}
	if string(b) != want {
		t.Fatalf("%s: answered %q, want %q", backend, b, want)
	}
}
