package netpoll

import (
	"fmt"
	"testing"
	"time"
)

// TestIdleSpin (io_uring only, ring.idle.spin.us): loops that poll before
// they sleep serve pipelined requests answered on the loop and answers
// posted from other goroutines in order, with DEFER_TASKRUN on and off; and
// once the work is done every loop goes to sleep within its spin.
func TestIdleSpin(t *testing.T) {
	for _, tc := range []struct {
		spin    time.Duration
		noDefer bool
	}{{200 * time.Microsecond, false}, {200 * time.Microsecond, true}, {20 * time.Millisecond, false}} {
		for _, h := range []Handler{echo, &reverser{group: 10}} {
			s := startServer(t, BackendUring, h, func(o *Options) {
				o.IdleSpin, o.NoDeferTaskrun = tc.spin, tc.noDefer
				o.RecvBufferBytes, o.RecvBuffers = 4096, 16
			})
			pipelinedEcho(t, dial(t, s), 500, fmt.Sprintf("spin %v noDefer %v %T", tc.spin, tc.noDefer, h))
		}
	}

	// After the last answer every loop stops polling within its spin and
	// sleeps in io_uring_enter.
	s := startServer(t, BackendUring, echo, func(o *Options) { o.IdleSpin = 20 * time.Millisecond })
	c := dial(t, s)
	if err := writeFrame(c, []byte("once")); err != nil {
		t.Fatal(err)
	}
	if _, err := readFrame(c); err != nil {
		t.Fatal(err)
	}
	us := s.b.(*uringServer)
	waitUntil(t, "every loop asleep after its spin", failSafe, func() bool {
		for _, l := range us.loops {
			if !l.sleeping.Load() {
				return false
			}
		}
		return true
	})
}
