//go:build linux

package ring

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestClassifySetupError(t *testing.T) {
	cases := []struct {
		errno       unix.Errno
		disabled    int
		unavailable bool
		unsupported bool
		why         string
	}{
		{unix.ENOSYS, 0, true, false, "without io_uring"},
		{unix.EPERM, 2, true, false, "io_uring_disabled=2"},
		{unix.EPERM, 1, true, false, "io_uring_disabled=1"},
		{unix.EPERM, 0, true, false, "seccomp"},
		{unix.EPERM, -1, true, false, "seccomp"},
		{unix.EACCES, 0, true, false, "seccomp"},
		{unix.EINVAL, 0, false, true, "SINGLE_ISSUER"},
		{unix.ENOMEM, 0, false, false, ""},
		{unix.EMFILE, 0, false, false, ""},
	}
	for _, c := range cases {
		t.Run(c.errno.Error(), func(t *testing.T) {
			err := classifySetupError(c.errno, c.disabled, "SINGLE_ISSUER")
			if got := errors.Is(err, ErrUnavailable); got != c.unavailable {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %v", err, got)
			}
			if got := IsUnavailable(err); got != c.unavailable {
				t.Errorf("IsUnavailable = %v", got)
			}
			if got := errors.Is(err, ErrUnsupported); got != c.unsupported {
				t.Errorf("errors.Is(%v, ErrUnsupported) = %v", err, got)
			}
			if !errors.Is(err, c.errno) {
				t.Errorf("errors.Is(%v, %v) = false: errno must stay reachable", err, c.errno)
			}
			if c.why != "" && !strings.Contains(err.Error(), c.why) {
				t.Errorf("message %q does not explain %q", err, c.why)
			}
			var e *Error
			if !errors.As(err, &e) || e.Op != "io_uring_setup" {
				t.Errorf("not an *Error for io_uring_setup: %#v", err)
			}
		})
	}
}

func TestRegisterErrorClass(t *testing.T) {
	if err := registerError("PBUF_RING", unix.EINVAL); !errors.Is(err, ErrUnsupported) {
		t.Errorf("EINVAL from register must be ErrUnsupported: %v", err)
	}
	if err := registerError("PBUF_RING", unix.EEXIST); errors.Is(err, ErrUnsupported) || !errors.Is(err, unix.EEXIST) {
		t.Errorf("EEXIST classification: %v", err)
	}
}

func TestReadIOUringDisabled(t *testing.T) {
	v := readIOUringDisabled()
	if v < -1 || v > 2 {
		t.Fatalf("kernel.io_uring_disabled = %d", v)
	}
}

// TestWrongThreadIsExplained: SINGLE_ISSUER rings refuse other threads with
// EEXIST; the error must say what went wrong.
func TestWrongThreadIsExplained(t *testing.T) {
	r := newTestRing(t, defaultParams)
	getSQE(t, r).PrepNop()
	errc := make(chan error)
	go func() {
		// A goroutine locked to a fresh thread: never the ring's thread.
		lockNewThread()
		_, err := r.Submit()
		errc <- err
	}()
	err := <-errc
	if err == nil {
		t.Skip("kernel accepted submission from another thread")
	}
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "LockOSThread") {
		t.Fatalf("unexplained error %v", err)
	}
}

func TestCheck(t *testing.T) {
	err := Check(defaultParams, OpNop, OpRecv, OpSend, OpAccept, OpSplice)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// An opcode number past the kernel's last one is reported unsupported.
	err = Check(Params{Entries: 2}, OpNop, Op(250))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "OP_250") {
		t.Fatalf("Check with bogus op: %v", err)
	}
}
