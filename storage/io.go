package storage

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// IO performs a log's data-file writes. Every method is called only from the
// owning log's writer goroutine, one call at a time, so implementations need
// no locking for per-log state (FaultIO locks because tests poke it).
//
// Three implementations: PortableIO (pwritev + fdatasync), UringIO
// (IORING_OP_WRITEV at an offset with a linked IORING_OP_FSYNC DATASYNC, on
// a ring the log owns) and FaultIO (tests: short writes, EIO, ENOSPC and
// power loss).
type IO interface {
	// Writev makes one attempt to write iov at off, with pwritev semantics:
	// it may write fewer bytes than asked (the log retries the rest). When
	// datasync is true and the attempt wrote everything, it then fdatasyncs
	// f and reports synced=true; on a short write synced is false and the
	// log finishes the write and calls Datasync itself.
	// REQUIRES: len(iov) <= IOVMax; iov memory stays valid until return.
	Writev(f *os.File, iov [][]byte, off int64, datasync bool) (n int, synced bool, err error)
	// Datasync is fdatasync(f). Unlike Writev it must be safe to call
	// from another goroutine concurrently with Writev: the log fdatasyncs
	// rolled segments in the background.
	Datasync(f *os.File) error
	// Close releases the backend's resources (a ring, for UringIO).
	Close() error
}

// IOVMax is the most iovecs the log passes to one Writev (Linux IOV_MAX).
const IOVMax = 1024

// PortableIO is the plain-syscall backend: pwritev(2) and fdatasync(2).
// The zero value is ready; it keeps a reusable iovec array (one per log).
type PortableIO struct {
	iovecs []unix.Iovec
}

// NewPortableIO returns a PortableIO for one log.
func NewPortableIO() IO { return &PortableIO{} }

// newDefaultIO makes the IO of a log opened without one: NewPortableIO,
// except in a daemon built with -tags faultinject (faultinject.go, for the
// fault schedule's slow disk).
var newDefaultIO = NewPortableIO

// Writev implements IO.
func (p *PortableIO) Writev(f *os.File, iov [][]byte, off int64, datasync bool) (int, bool, error) {
	p.iovecs = fillIovecs(p.iovecs, iov)
	if len(p.iovecs) == 0 {
		return 0, false, nil
	}
	n, err := pwritev(int(f.Fd()), p.iovecs, off)
	if err != nil {
		return n, false, fmt.Errorf("pwritev %s at %d: %w", f.Name(), off, err)
	}
	if !datasync || n < iovLen(iov) {
		return n, false, nil
	}
	if err := p.Datasync(f); err != nil {
		return n, false, err
	}
	return n, true, nil
}

// Datasync implements IO.
func (p *PortableIO) Datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
		}
		return nil
	}
}

// Close implements IO.
func (p *PortableIO) Close() error { return nil }

// fillIovecs converts iov into a reusable kernel iovec array, skipping
// empty slices (an iovec must not point at a zero-length Go slice's nil).
func fillIovecs(dst []unix.Iovec, iov [][]byte) []unix.Iovec {
	dst = dst[:0]
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		dst = append(dst, v)
	}
	return dst
}

func iovLen(iov [][]byte) int {
	n := 0
	for _, b := range iov {
		n += len(b)
	}
	return n
}

// pwritev calls the syscall directly on our own iovec array: x/sys's
// wrapper builds a fresh []Iovec per call, which would allocate on the
// append path. EINTR is retried.
func pwritev(fd int, iovecs []unix.Iovec, off int64) (int, error) {
	for {
		n, _, e := unix.Syscall6(unix.SYS_PWRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iovecs[0])), uintptr(len(iovecs)), uintptr(off), uintptr(off>>32), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, syscall.Errno(e)
		}
		return int(n), nil
	}
}
