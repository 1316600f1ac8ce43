//go:build linux

package netpoll

import (
	"runtime"
	"testing"
)

// TestReserveProcs: one spare P per loop, added once for the largest
// server; a GOMAXPROCS set by someone else since (testing's -cpu does it
// before every benchmark run) becomes the new base and the spare Ps are
// added again — they were silently lost, and io_uring benchmarks ran
// without them.
func TestReserveProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	reservedMu.Lock()
	savedProcs, savedAt := reservedProcs, reservedAt
	reservedMu.Unlock()
	defer func() {
		reservedMu.Lock()
		reservedProcs, reservedAt = savedProcs, savedAt
		reservedMu.Unlock()
	}()

	runtime.GOMAXPROCS(3)
	reserveProcs(2)
	if got := runtime.GOMAXPROCS(0); got != 5 {
		t.Fatalf("GOMAXPROCS %d after reserving 2 over 3, want 5", got)
	}
	reserveProcs(2)
	reserveProcs(1)
	if got := runtime.GOMAXPROCS(0); got != 5 {
		t.Fatalf("GOMAXPROCS %d after reserving again, want 5 (once per process)", got)
	}
	reserveProcs(4)
	if got := runtime.GOMAXPROCS(0); got != 7 {
		t.Fatalf("GOMAXPROCS %d after a larger server (4 loops over base 3), want 7", got)
	}
	runtime.GOMAXPROCS(2) // as testing.B does between runs
	reserveProcs(4)
	if got := runtime.GOMAXPROCS(0); got != 6 {
		t.Fatalf("GOMAXPROCS %d after a reset to 2 and reserving 4, want 6", got)
	}
}
