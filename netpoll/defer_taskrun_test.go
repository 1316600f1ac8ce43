package netpoll

import (
	"fmt"
	"testing"

	"github.com/ringbroker/ringbroker/ring"
)

// TestNoDeferTaskrun (io_uring only: the option has no meaning on the
// portable backend): rings set up without DEFER_TASKRUN
// (ring.defer.taskrun=false), or with SQPOLL (which the kernel refuses
// beside DEFER_TASKRUN, so ring.sqpoll turns it off), still serve pipelined
// requests in order, and the flag is really off (and on by default).
func TestNoDeferTaskrun(t *testing.T) {
	for _, tc := range []struct{ noDefer, sqpoll bool }{{false, false}, {true, false}, {false, true}} {
		off := tc.noDefer || tc.sqpoll // SQPOLL turns DEFER_TASKRUN off
		s := startServer(t, BackendUring, echo, func(o *Options) {
			o.NoDeferTaskrun, o.SQPoll = tc.noDefer, tc.sqpoll
			o.RecvBufferBytes, o.RecvBuffers = 4096, 16
		})
		us, ok := s.b.(*uringServer)
		if !ok {
			t.Fatalf("backend %T, want the io_uring server", s.b)
		}
		for i, l := range us.loops {
			if got := l.r.SetupFlags()&ring.SetupDeferTaskrun != 0; got == off {
				t.Fatalf("NoDeferTaskrun=%v: loop %d has DEFER_TASKRUN=%v (flags %#x)", off, i, got, l.r.SetupFlags())
			}
		}
		pipelinedEcho(t, dial(t, s), 500, fmt.Sprintf("NoDeferTaskrun=%v", off))
	}
}
