package broker

import (
	"testing"
	"time"
)

// TestProduceWorkersStopOnClose: the produce workers are the broker's own
// goroutines: they start with the first batch that needs one (here a
// recompression), Broker.Close stops every one of them, and a job offered
// afterwards is refused instead of queued forever.
func TestProduceWorkersStopOnClose(t *testing.T) {
	tb := startTestBroker(t, testBackends[0], nil)
	prodCreate(t, tb, "workers", 1, map[string]string{"compression.type": "zstd"})
	pool := &tb.Broker.produce.workers
	if n := pool.running.Load(); n != 0 {
		t.Fatalf("%d workers running before any produce", n)
	}
	rc := dialProd(t, tb.Addr)
	if got := rc.produceRaw(9, "workers", 0, prodBatch(-1, -1, -1, time.Now().UnixMilli(), prodValues("x", 3)...)); got.ErrorCode != 0 {
		t.Fatalf("produce: error %d", got.ErrorCode)
	}
	if n := pool.running.Load(); n != int32(len(pool.workers)) {
		t.Fatalf("%d workers running, want %d", n, len(pool.workers))
	}
	w := pool.workers[0]

	closed := make(chan struct{})
	go func() {
		tb.stop() // Server.Shutdown, Broker.Close, registry close
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Broker.Close did not return within 30s")
	}
	if n := pool.running.Load(); n != 0 {
		t.Fatalf("%d workers still running after Broker.Close", n)
	}
	if w.enqueue(&produceJob{snapshot: true}) {
		t.Fatal("a stopped worker accepted a job")
	}
	pool.close() // idempotent
}
