//go:build linux

package netpoll

import (
	"fmt"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/ring"
)

// TestWaitBatch (io_uring only, ring.wait.batch): loops that wait for
// several completions at a time serve pipelined requests answered on the
// loop and from other goroutines in order, and a lone request on an idle
// connection (one completion, then nothing) is answered after the minimum
// wait, not held until a batch fills.
func TestWaitBatch(t *testing.T) {
	for _, min := range []time.Duration{200 * time.Microsecond, 5 * time.Millisecond} {
		for _, h := range []Handler{echo, &reverser{group: 10}} {
			s := startServer(t, BackendUring, h, func(o *Options) {
				o.WaitBatch, o.WaitBatchMin = 8, min
				o.RecvBufferBytes, o.RecvBuffers = 4096, 16
			})
			for _, l := range s.b.(*uringServer).loops {
				want := uint32(8)
				if l.r.Features()&ring.FeatMinTimeout == 0 {
					want = 1 // the fallback on a kernel without batched waits
				}
				if l.waitBatch != want {
					t.Fatalf("loop %d waits for %d completions, want %d", l.idx, l.waitBatch, want)
				}
			}
			pipelinedEcho(t, dial(t, s), 500, fmt.Sprintf("min %v %T", min, h))
		}
	}
	// Lone requests one at a time: each is one receive completion (and an
	// answer's), far fewer than the batch; each must still be answered.
	s := startServer(t, BackendUring, echo, func(o *Options) { o.WaitBatch, o.WaitBatchMin = 64, time.Millisecond })
	c := dial(t, s)
	for i := range 20 {
		if err := writeFrame(c, seqBody(i, 10)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(failSafe))
		if _, err := readFrame(c); err != nil {
			t.Fatalf("lone request %d: %v", i, err)
		}
	}
}
