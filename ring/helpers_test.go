//go:build linux

package ring

import (
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// defaultParams is what netpoll uses: SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN.
var defaultParams = Params{Entries: 64, SingleIssuer: true, DeferTaskrun: true, CoopTaskrun: true}

// newTestRing locks the test goroutine to its thread (SINGLE_ISSUER rings
// only accept the creating thread) and skips when io_uring is unavailable.
func newTestRing(t testing.TB, p Params) *Ring {
	t.Helper()
	runtime.LockOSThread()
	r, err := New(p)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	if err != nil {
		t.Fatalf("New(%+v): %v", p, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// getSQE fails the test when the SQ is unexpectedly full.
func getSQE(t testing.TB, r *Ring) *SQE {
	t.Helper()
	s := r.GetSQE()
	if s == nil {
		t.Fatal("SQ full")
	}
	return s
}

// waitCQEs submits and collects exactly n CQEs within timeout.
func waitCQEs(t testing.TB, r *Ring, n int, timeout time.Duration) []CQE {
	t.Helper()
	out := make([]CQE, 0, n)
	buf := make([]CQE, 16)
	deadline := time.Now().Add(timeout)
	for len(out) < n {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("got %d of %d CQEs before timeout: %+v", len(out), n, out)
		}
		if _, err := r.SubmitAndWaitTimeout(1, left); err != nil {
			t.Fatalf("SubmitAndWaitTimeout: %v", err)
		}
		for {
			k := r.PeekBatch(buf)
			out = append(out, buf[:k]...)
			if k < len(buf) {
				break
			}
		}
	}
	if len(out) > n {
		t.Fatalf("got %d CQEs, want %d: %+v", len(out), n, out)
	}
	return out
}

// expectNoCQE checks that nothing completes within d.
func expectNoCQE(t testing.TB, r *Ring, d time.Duration) {
	t.Helper()
	if _, err := r.SubmitAndWaitTimeout(1, d); err != nil {
		t.Fatalf("SubmitAndWaitTimeout: %v", err)
	}
	var buf [4]CQE
	if n := r.PeekBatch(buf[:]); n != 0 {
		t.Fatalf("unexpected CQEs: %+v", buf[:n])
	}
}

func byUserData(cqes []CQE) map[uint64]CQE {
	m := make(map[uint64]CQE, len(cqes))
	for _, c := range cqes {
		m[c.UserData] = c
	}
	return m
}

func socketpair(t testing.TB) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func pipe(t testing.TB) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

// tcpListener returns a loopback listening socket fd and its address.
func tcpListener(t testing.TB) (int, *net.TCPAddr) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	in := sa.(*unix.SockaddrInet4)
	return fd, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: in.Port}
}

func allocBuf(t testing.TB, n int) Buffer {
	t.Helper()
	b, err := AllocBuffer(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Free() })
	return b
}

func mustWrite(t testing.TB, fd int, p []byte) {
	t.Helper()
	if n, err := unix.Write(fd, p); err != nil || n != len(p) {
		t.Fatalf("write: n=%d err=%v", n, err)
	}
}

func mustRead(t testing.TB, fd int, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, n)
	for len(out) < n {
		k, err := unix.Read(fd, buf[:n-len(out)])
		if err != nil || k == 0 {
			t.Fatalf("read: k=%d err=%v (have %q)", k, err, out)
		}
		out = append(out, buf[:k]...)
	}
	return out
}
