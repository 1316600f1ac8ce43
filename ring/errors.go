//go:build linux

package ring

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnavailable means io_uring cannot be used in this process at all: the
// kernel lacks it (ENOSYS), it is switched off by kernel.io_uring_disabled, or a
// seccomp/LSM policy refuses it (EPERM, EACCES). Callers fall back to the
// portable backend. It is always returned wrapped with the reason:
// errors.Is(err, ErrUnavailable).
var ErrUnavailable = errors.New("io_uring unavailable")

// ErrUnsupported means io_uring works but this kernel lacks a setup flag,
// opcode or register operation that was asked for. Returned wrapped with the
// name of what is missing.
var ErrUnsupported = errors.New("io_uring feature unsupported")

// Error is the error type returned by ring/ for failed setup, enter and
// register calls. It unwraps to both its class (ErrUnavailable,
// ErrUnsupported or nil) and the raw errno, so errors.Is works with either.
type Error struct {
	Op    string     // "io_uring_setup", "io_uring_register(PBUF_RING)", ...
	Class error      // ErrUnavailable, ErrUnsupported or nil
	Errno unix.Errno // the kernel's errno, 0 if none
	Why   string     // human explanation, may be empty
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Class != nil {
		b.WriteString(": ")
		b.WriteString(e.Class.Error())
	}
	if e.Why != "" {
		b.WriteString(": ")
		b.WriteString(e.Why)
	}
	if e.Errno != 0 {
		b.WriteString(" (")
		b.WriteString(e.Errno.Error())
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap lets errors.Is match both the class and the errno.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Class != nil {
		errs = append(errs, e.Class)
	}
	if e.Errno != 0 {
		errs = append(errs, e.Errno)
	}
	return errs
}

// ioUringDisabledPath is the sysctl consulted to explain EPERM.
const ioUringDisabledPath = "/proc/sys/kernel/io_uring_disabled"

// readIOUringDisabled returns kernel.io_uring_disabled, or -1 if unknown
// (older kernels lack the sysctl).
func readIOUringDisabled() int {
	b, err := os.ReadFile(ioUringDisabledPath)
	if err != nil {
		return -1
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return v
}

// classifySetupError turns an io_uring_setup errno into an *Error. disabled is
// the value of kernel.io_uring_disabled (-1 if unknown); flags names the setup
// flags that were requested, for the EINVAL message.
func classifySetupError(errno unix.Errno, disabled int, flags string) error {
	e := &Error{Op: "io_uring_setup", Errno: errno}
	switch errno {
	case unix.ENOSYS:
		e.Class = ErrUnavailable
		e.Why = "kernel built without io_uring or the syscall is filtered"
	case unix.EPERM, unix.EACCES:
		e.Class = ErrUnavailable
		switch disabled {
		case 2:
			e.Why = "kernel.io_uring_disabled=2 (io_uring disabled for all processes)"
		case 1:
			e.Why = "kernel.io_uring_disabled=1 and this process is neither in kernel.io_uring_group nor CAP_SYS_ADMIN"
		default:
			e.Why = "denied by seccomp or a security module"
		}
	case unix.EINVAL:
		e.Class = ErrUnsupported
		e.Why = "kernel rejected setup flags " + flags
	default:
		// ENOMEM, EMFILE, ...: a real failure, not a reason to fall back
		// silently; the caller decides.
	}
	return e
}

// IsUnavailable reports whether err means io_uring cannot be used at all.
// It is a convenience for errors.Is(err, ErrUnavailable).
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

func registerError(op string, errno unix.Errno) error {
	e := &Error{Op: "io_uring_register(" + op + ")", Errno: errno}
	if errno == unix.EINVAL || errno == unix.EOPNOTSUPP {
		e.Class = ErrUnsupported
	}
	return e
}
