package netpoll

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Clients that pipeline requests and never read their answers hold the
// loop's share of MaxQueuedBytes for good. A connection with nothing in
// flight must still be served one request at a time: the loop bound may
// cost it its pipelining, never its service (before the fix, every
// connection of the loop stayed muted until a hog left).
//
// Nothing here depends on speed. The hogs write until the test ends, so
// once their socket buffers are full the bound stays held; how soon that
// happens depends on the machine, so the probe keeps making round trips
// until 20 of them were served while a hog was muted (the handler looks at
// the server's state when the probe's request arrives). Starvation is
// permanent (the hogs never leave), so the generous deadlines only turn a
// hang into a failure.
func TestLoopBoundDoesNotStarveIdleConnections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		var srv atomic.Pointer[Server]
		var probesUnderBound atomic.Int64
		handler := HandlerFunc(func(req Request, frame []byte) {
			if string(frame) == "ping" {
				if s := srv.Load(); s != nil && s.Stats().MutedConns > 0 {
					probesUnderBound.Add(1)
				}
			}
			echo(req, frame)
		})
		var probeAddr atomic.Value // string: the probe's address as the server sees it
		if backend == "portable" {
			// Widen the race this test once lost on the portable backend:
			// the probe registers as a server-wide waiter with its lock let
			// go, and its answer is sent meanwhile. The writer's wake-up
			// finds nobody waiting; the reader must still see its queue
			// drained rather than wait for the hogs' bound to clear (never).
			testHookRegistered = func(c *pconn) {
				if a, _ := probeAddr.Load().(string); a != c.addr {
					return
				}
				for end := time.Now().Add(failSafe); time.Now().Before(end); time.Sleep(time.Millisecond) {
					c.mu.Lock()
					drained := c.q.len() == 0 || c.closed
					c.mu.Unlock()
					if drained {
						return
					}
				}
			}
			t.Cleanup(func() { testHookRegistered = nil }) // runs after the server's shutdown
		}
		s := startServer(t, backend, handler, func(o *Options) {
			o.Loops = 1
			o.MaxQueuedBytes = 1 << 20 // the smallest loop share
			o.RecvBufferBytes = 16 << 10
			o.RecvBuffers = 16
		})
		srv.Store(s)
		const hogs, wantProbes = 8, 20
		body := make([]byte, 16<<10)
		var wg sync.WaitGroup
		quit := make(chan struct{})
		conns := make([]net.Conn, hogs)
		for i := range conns {
			c := dial(t, s)
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
			conns[i] = c
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-quit:
						return
					default:
					}
					if writeFrame(c, body) != nil {
						return
					}
				}
			}()
		}
		defer func() {
			close(quit)
			for _, c := range conns {
				_ = c.SetWriteDeadline(time.Now()) // unblock a hog stuck in Write
			}
			wg.Wait()
		}()
		probe := dial(t, s)
		probeAddr.Store(probe.LocalAddr().String())
		deadline := time.Now().Add(failSafe)
		for i := 0; probesUnderBound.Load() < wantProbes; i++ {
			if time.Now().After(deadline) {
				t.Fatalf("after %v only %d of %d probe round trips met a muted hog: the hogs never reached the loop bound, the test proves nothing", failSafe, probesUnderBound.Load(), wantProbes)
			}
			if err := echoes(probe); err != nil {
				t.Fatalf("probe round trip %d (%d served under the bound) with %d hogs writing: %v", i, probesUnderBound.Load(), hogs, err)
			}
		}
	})
}
