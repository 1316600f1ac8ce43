package netpoll

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Clients that pipeline requests and never read their answers hold the
// loop's share of MaxQueuedBytes for good. A connection with nothing in
// flight must still be served one request at a time: the loop bound may
// cost it its pipelining, never its service (before the fix, every
// connection of the loop stayed muted until a hog left).
func TestLoopBoundDoesNotStarveIdleConnections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := startServer(t, backend, echo, func(o *Options) {
			o.Loops = 1
			o.MaxQueuedBytes = 1 << 20 // the smallest loop share
			o.RecvBufferBytes = 16 << 10
			o.RecvBuffers = 16
		})
		const hogs = 8
		body := make([]byte, 16<<10)
		var wg sync.WaitGroup
		stop := time.Now().Add(2 * time.Second)
		for i := 0; i < hogs; i++ {
			c := dial(t, s)
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.SetWriteDeadline(stop)
				for time.Now().Before(stop) {
					if writeFrame(c, body) != nil {
						return
					}
				}
			}()
		}
		time.Sleep(500 * time.Millisecond) // the hogs fill the loop's share
		probe := dial(t, s)
		for i := 0; i < 20; i++ {
			t0 := time.Now()
			if err := echoes(probe); err != nil {
				t.Fatalf("probe round trip %d with %d hogs holding the loop bound: %v", i, hogs, err)
			}
			if d := time.Since(t0); d > 3*time.Second { // starved: the 5 s deadline of echoes
				t.Fatalf("probe round trip %d took %v", i, d)
			}
		}
		if st := s.Stats(); st.MutedConns == 0 {
			t.Errorf("no connection muted: the hogs never reached the loop bound, the test proves nothing")
		}
		wg.Wait()
	})
}
