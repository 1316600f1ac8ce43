package storage

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/ring"
)

// UringIO is the io_uring backend: one small ring per log, driven by the
// log's writer goroutine (never a network loop's ring). A group is one
// IORING_OP_WRITEV at the segment offset and, when the flush policy asks,
// an IORING_OP_FSYNC with IORING_FSYNC_DATASYNC linked behind it
// (IOSQE_IO_LINK), submitted and awaited with a single io_uring_enter.
//
// The ring is created without SINGLE_ISSUER/DEFER_TASKRUN: the writer is an
// ordinary goroutine that may run on any thread between calls, and it only
// ever has one request chain in flight, so it needs neither. Memory handed
// to the kernel (the iovec array here, the batch buffers in the log's group)
// is Go heap memory kept reachable until the completion is reaped; Go's GC
// does not move heap objects.
//
// Rejected: a shared ring goroutine serving every log (needs an eventfd or
// MSG_RING wakeup and a cross-goroutine handoff per group, for no gain while
// each log has one write in flight); revisit if per-log rings cost too many
// descriptors with thousands of partitions.
type UringIO struct {
	r      *ring.Ring
	iovecs []unix.Iovec
	cqes   [4]ring.CQE
}

// NewUringIO creates a ring for one log. The error wraps
// ring.ErrUnavailable or ring.ErrUnsupported when io_uring (or WRITEV /
// FSYNC) cannot be used; the caller then falls back to NewPortableIO.
func NewUringIO() (IO, error) {
	r, err := ring.New(ring.Params{Entries: 4})
	if err != nil {
		return nil, fmt.Errorf("log io_uring backend: %w", err)
	}
	p, err := r.Probe()
	if err == nil {
		err = p.Require(ring.OpWritev, ring.OpFsync)
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("log io_uring backend: %w", err)
	}
	return &UringIO{r: r}, nil
}

const (
	udWrite = 1
	udSync  = 2
)

// Writev implements IO.
func (u *UringIO) Writev(f *os.File, iov [][]byte, off int64, datasync bool) (int, bool, error) {
	u.iovecs = fillIovecs(u.iovecs, iov)
	if len(u.iovecs) == 0 {
		return 0, false, nil
	}
	fd := int(f.Fd())
	sqe := u.r.GetSQE() // the ring is idle between calls: never nil
	if sqe == nil {
		return 0, false, fmt.Errorf("io_uring: submission queue unexpectedly full")
	}
	sqe.PrepWritev(fd, &u.iovecs[0], uint32(len(u.iovecs)), uint64(off))
	sqe.SetUserData(udWrite)
	want := 1
	if datasync {
		sqe.SetFlags(ring.SQEIOLink)
		s2 := u.r.GetSQE() // 4 entries: room for the pair
		s2.PrepFsync(fd, true)
		s2.SetUserData(udSync)
		want = 2
	}
	writeRes, syncRes, err := u.reap(want)
	runtime.KeepAlive(f)
	runtime.KeepAlive(iov)
	if err != nil {
		return 0, false, err
	}
	if writeRes < 0 {
		return 0, false, fmt.Errorf("io_uring writev %s at %d: %w", f.Name(), off, syscall.Errno(-writeRes))
	}
	if !datasync {
		return int(writeRes), false, nil
	}
	switch {
	case syncRes == 0:
		return int(writeRes), true, nil
	case syncRes == -int32(unix.ECANCELED):
		// The link broke because the write was short: the log finishes the
		// write and syncs separately.
		return int(writeRes), false, nil
	default:
		return int(writeRes), false, fmt.Errorf("io_uring fdatasync %s: %w", f.Name(), syscall.Errno(-syncRes))
	}
}

// reap submits and collects want completions.
func (u *UringIO) reap(want int) (writeRes, syncRes int32, err error) {
	got := 0
	for got < want {
		if _, err := u.r.SubmitAndWait(uint32(want - got)); err != nil {
			return 0, 0, fmt.Errorf("io_uring_enter: %w", err)
		}
		n := u.r.PeekBatch(u.cqes[:])
		for _, c := range u.cqes[:n] {
			switch c.UserData {
			case udWrite:
				writeRes = c.Res
			case udSync:
				syncRes = c.Res
			}
		}
		got += n
	}
	return writeRes, syncRes, nil
}

// Datasync implements IO with fdatasync(2): it must be callable from the
// background flusher concurrently with Writev, which the ring (one
// submitter) is not. The hot path's syncs are the linked ones in Writev.
func (u *UringIO) Datasync(f *os.File) error {
	return (*PortableIO)(nil).Datasync(f)
}

// Close implements IO: it closes the ring.
func (u *UringIO) Close() error { return u.r.Close() }
