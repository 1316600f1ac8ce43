//go:build linux

package ring

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lockNewThread locks the calling goroutine to its thread for good; when
// the goroutine exits the thread is discarded, so no other test reuses it.
func lockNewThread() { runtime.LockOSThread() }

// TestWaitRetriesEINTR bombards the waiting thread with SIGURG (what Go's
// async preemption sends) and checks that SubmitAndWait still waits for its
// completion instead of returning early on EINTR.
func TestWaitRetriesEINTR(t *testing.T) {
	r := newTestRing(t, defaultParams)
	tid := unix.Gettid()
	pid := unix.Getpid()
	var stop atomic.Bool
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			if unix.Tgkill(pid, tid, unix.SIGURG) == nil {
				sent.Add(1)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	defer func() { stop.Store(true); <-done }()

	const d = 60 * time.Millisecond
	ts := new(unix.Timespec)
	*ts = unix.NsecToTimespec(int64(d))

	// Untimed wait.
	start := time.Now()
	s := getSQE(t, r)
	s.PrepTimeout(ts, 0, 0)
	s.SetUserData(1)
	if _, err := r.SubmitAndWait(1); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < d-5*time.Millisecond {
		t.Fatalf("SubmitAndWait returned after %v, before the %v timeout fired", el, d)
	}
	var c [1]CQE
	if r.PeekBatch(c[:]) != 1 || c[0].Res != -int32(unix.ETIME) {
		t.Fatalf("cqe %+v", c[0])
	}

	// Timed wait that must run out (nothing to complete).
	start = time.Now()
	if _, err := r.SubmitAndWaitTimeout(1, d); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < d-5*time.Millisecond {
		t.Fatalf("SubmitAndWaitTimeout returned after %v, want >= %v", el, d)
	}
	runtime.KeepAlive(ts)
	if sent.Load() < 10 {
		t.Fatalf("only %d signals sent", sent.Load())
	}
	t.Logf("%d SIGURGs during waits", sent.Load())
}
