//go:build linux

package ring

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/invariants"
)

// Params selects how a ring is set up. Zero values mean "kernel default / off".
type Params struct {
	Entries      uint32        // SQ entries (power of two, 1..32768)
	CQEntries    uint32        // 0 = kernel default (2x Entries); else sets IORING_SETUP_CQSIZE
	SingleIssuer bool          // IORING_SETUP_SINGLE_ISSUER
	DeferTaskrun bool          // IORING_SETUP_DEFER_TASKRUN (requires SingleIssuer; adds TASKRUN_FLAG)
	CoopTaskrun  bool          // IORING_SETUP_COOP_TASKRUN (+ TASKRUN_FLAG)
	SQPoll       bool          // IORING_SETUP_SQPOLL: a kernel thread polls the SQ
	SQThreadIdle time.Duration // SQPOLL thread idle time before it sleeps (ms resolution; 0 = kernel default)
}

// Ring is one io_uring instance: its SQ ring, CQ ring and SQE array mapped
// into this process.
//
// Concurrency: a Ring is owned by exactly one goroutine, locked to its OS
// thread (runtime.LockOSThread) when SingleIssuer/DeferTaskrun are set,
// because the kernel then rejects io_uring_enter from any other thread with
// EEXIST. No method takes a lock. Other goroutines reach the owner through a
// queue plus a wakeup (MSG_RING from another ring, or an eventfd), never by
// calling methods here. The exceptions are Fd, Features and SetupFlags, which
// read immutable fields.
type Ring struct {
	fd         int
	setupFlags uint32
	features   uint32

	// SQ ring, shared with the kernel. The kernel writes sqHead (and
	// sqFlags); we write sqTail. Loads and stores of shared words go
	// through sync/atomic, which gives the acquire/release ordering the
	// io_uring protocol needs.
	sqHead    *uint32
	sqTail    *uint32
	sqFlags   *uint32
	sqDropped *uint32
	sqMask    uint32
	sqEntries uint32
	sqes      []SQE

	// sqeTail counts SQEs handed out by GetSQE; sqTailPublished is the
	// value last stored to *sqTail. Both are private to the owner.
	sqeTail         uint32
	sqTailPublished uint32

	// CQ ring. The kernel writes cqTail; we write cqHead.
	cqHead     *uint32
	cqTail     *uint32
	cqOverflow *uint32
	cqMask     uint32
	cqEntries  uint32
	cqes       []CQE

	sqRingMem []byte
	cqRingMem []byte // aliases sqRingMem under IORING_FEAT_SINGLE_MMAP
	sqesMem   []byte

	// Scratch for SubmitAndWaitTimeout's EXT_ARG, kept in the Ring (heap,
	// reachable) so the hot path does not allocate.
	extArg geteventsArg
	extTs  unix.Timespec

	closed bool
}

// New creates a ring. It returns an error wrapping ErrUnavailable when io_uring
// cannot be used at all (ENOSYS, EPERM, kernel.io_uring_disabled), or
// ErrUnsupported when the kernel rejects one of the requested setup flags
// (the message names the flag).
func New(p Params) (*Ring, error) {
	if p.Entries == 0 || p.Entries&(p.Entries-1) != 0 {
		return nil, &Error{Op: "ring.New", Errno: unix.EINVAL, Why: fmt.Sprintf("Entries=%d must be a power of two", p.Entries)}
	}
	if p.DeferTaskrun && !p.SingleIssuer {
		return nil, &Error{Op: "ring.New", Errno: unix.EINVAL, Why: "DeferTaskrun requires SingleIssuer"}
	}
	if p.DeferTaskrun && p.SQPoll {
		return nil, &Error{Op: "ring.New", Errno: unix.EINVAL, Why: "DeferTaskrun cannot be combined with SQPoll"}
	}
	var kp params
	kp.flags = setupFlagsFor(p)
	if p.CQEntries != 0 {
		kp.cqEntries = p.CQEntries
	}
	if p.SQPoll && p.SQThreadIdle > 0 {
		kp.sqThreadIdle = uint32(p.SQThreadIdle / time.Millisecond)
		if kp.sqThreadIdle == 0 {
			kp.sqThreadIdle = 1
		}
	}
	fd, errno := setup(p.Entries, &kp)
	if errno != 0 {
		err := classifySetupError(errno, readIOUringDisabled(), describeSetupFlags(kp.flags))
		if errno == unix.EINVAL {
			if bad := findRejectedFlag(kp.flags); bad != "" {
				err.(*Error).Why = "kernel rejected setup flag " + bad + " (asked for " + describeSetupFlags(kp.flags) + ")"
			}
		}
		return nil, err
	}
	r := &Ring{fd: fd, setupFlags: kp.flags, features: kp.features}
	if err := r.mapRings(&kp); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func setupFlagsFor(p Params) uint32 {
	var f uint32
	if p.CQEntries != 0 {
		f |= setupCQSize
	}
	if p.SingleIssuer {
		f |= setupSingleIssuer
	}
	if p.DeferTaskrun {
		f |= setupDeferTaskrun | setupTaskrunFlag
	}
	if p.CoopTaskrun {
		f |= setupCoopTaskrun | setupTaskrunFlag
	}
	if p.SQPoll {
		f |= setupSQPoll
	}
	return f
}

func setup(entries uint32, kp *params) (int, unix.Errno) {
	for {
		fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(kp)), 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(fd), 0
	}
}

var setupFlagNames = []struct {
	flag uint32
	name string
}{
	{setupSQPoll, "SQPOLL"},
	{setupCQSize, "CQSIZE"},
	{setupCoopTaskrun, "COOP_TASKRUN"},
	{setupTaskrunFlag, "TASKRUN_FLAG"},
	{setupSingleIssuer, "SINGLE_ISSUER"},
	{setupDeferTaskrun, "DEFER_TASKRUN"},
}

func describeSetupFlags(f uint32) string {
	var names []string
	for _, n := range setupFlagNames {
		if f&n.flag != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// findRejectedFlag probes each requested flag alone (with the flags it
// depends on) on a tiny ring to name the one this kernel lacks. Setup time
// only; returns "" if every flag works alone (the combination is at fault).
func findRejectedFlag(f uint32) string {
	for _, n := range setupFlagNames {
		if f&n.flag == 0 {
			continue
		}
		try := n.flag
		switch n.flag {
		case setupDeferTaskrun:
			try |= setupSingleIssuer
		case setupTaskrunFlag:
			try |= setupCoopTaskrun
		}
		var kp params
		kp.flags = try
		if try&setupCQSize != 0 {
			kp.cqEntries = 2
		}
		fd, errno := setup(1, &kp)
		if errno == 0 {
			unix.Close(fd)
			continue
		}
		if errno == unix.EINVAL {
			return n.name
		}
	}
	return ""
}

// testSeparateMmap makes tests map the CQ ring on its own, as on kernels
// without IORING_FEAT_SINGLE_MMAP (the kernel still serves that offset).
var testSeparateMmap = false

func (r *Ring) mapRings(kp *params) error {
	sqSize := int(kp.sqOff.array) + int(kp.sqEntries)*4
	cqSize := int(kp.cqOff.cqes) + int(kp.cqEntries)*int(unsafe.Sizeof(CQE{}))
	single := kp.features&FeatSingleMmap != 0 && !testSeparateMmap
	if single && cqSize > sqSize {
		sqSize = cqSize
	}
	var err error
	r.sqRingMem, err = unix.Mmap(r.fd, offSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("ring: mmap SQ ring (%d bytes): %w", sqSize, err)
	}
	if single {
		r.cqRingMem = r.sqRingMem
	} else {
		r.cqRingMem, err = unix.Mmap(r.fd, offCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return fmt.Errorf("ring: mmap CQ ring (%d bytes): %w", cqSize, err)
		}
	}
	sqesSize := int(kp.sqEntries) * int(unsafe.Sizeof(SQE{}))
	r.sqesMem, err = unix.Mmap(r.fd, offSQEs, sqesSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("ring: mmap SQE array (%d bytes): %w", sqesSize, err)
	}

	sq := r.sqRingMem
	r.sqHead = (*uint32)(unsafe.Pointer(&sq[kp.sqOff.head]))
	r.sqTail = (*uint32)(unsafe.Pointer(&sq[kp.sqOff.tail]))
	r.sqFlags = (*uint32)(unsafe.Pointer(&sq[kp.sqOff.flags]))
	r.sqDropped = (*uint32)(unsafe.Pointer(&sq[kp.sqOff.dropped]))
	r.sqMask = *(*uint32)(unsafe.Pointer(&sq[kp.sqOff.ringMask]))
	r.sqEntries = *(*uint32)(unsafe.Pointer(&sq[kp.sqOff.ringEntries]))
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.sqesMem[0])), r.sqEntries)
	// SQ index array: identity mapping, set once. GetSQE hands out
	// sqes[tail&mask], and the kernel reads array[head&mask], so slot i
	// always names SQE i.
	array := unsafe.Slice((*uint32)(unsafe.Pointer(&sq[kp.sqOff.array])), r.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	r.sqeTail = atomic.LoadUint32(r.sqTail)
	r.sqTailPublished = r.sqeTail

	cq := r.cqRingMem
	r.cqHead = (*uint32)(unsafe.Pointer(&cq[kp.cqOff.head]))
	r.cqTail = (*uint32)(unsafe.Pointer(&cq[kp.cqOff.tail]))
	r.cqOverflow = (*uint32)(unsafe.Pointer(&cq[kp.cqOff.overflow]))
	r.cqMask = *(*uint32)(unsafe.Pointer(&cq[kp.cqOff.ringMask]))
	r.cqEntries = *(*uint32)(unsafe.Pointer(&cq[kp.cqOff.ringEntries]))
	r.cqes = unsafe.Slice((*CQE)(unsafe.Pointer(&cq[kp.cqOff.cqes])), r.cqEntries)
	return nil
}

// Close unmaps the rings and closes the ring fd. In-flight requests are
// cancelled by the kernel; memory they reference must stay valid until Close
// returns. Close is idempotent.
func (r *Ring) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if r.sqesMem != nil {
		keep(unix.Munmap(r.sqesMem))
		r.sqesMem = nil
	}
	if r.cqRingMem != nil && len(r.sqRingMem) > 0 && &r.cqRingMem[0] != &r.sqRingMem[0] {
		keep(unix.Munmap(r.cqRingMem))
	}
	r.cqRingMem = nil
	if r.sqRingMem != nil {
		keep(unix.Munmap(r.sqRingMem))
		r.sqRingMem = nil
	}
	r.sqes, r.cqes = nil, nil
	if r.fd >= 0 {
		keep(unix.Close(r.fd))
		r.fd = -1
	}
	return first
}

// Fd returns the ring's file descriptor (the target for MSG_RING).
func (r *Ring) Fd() int { return r.fd }

// Features returns io_uring_params.features as reported by the kernel (Feat*).
func (r *Ring) Features() uint32 { return r.features }

// SetupFlags returns the IORING_SETUP_* flags the ring was created with
// (Setup*).
func (r *Ring) SetupFlags() uint32 { return r.setupFlags }

// SQEntries returns the SQ ring size.
func (r *Ring) SQEntries() uint32 { return r.sqEntries }

// CQEntries returns the CQ ring size.
func (r *Ring) CQEntries() uint32 { return r.cqEntries }

// GetSQE returns the next free SQE, zeroed, or nil when the SQ ring is full;
// the caller then calls Submit and retries. The SQE becomes visible to the
// kernel on the next Submit*.
func (r *Ring) GetSQE() *SQE {
	head := atomic.LoadUint32(r.sqHead)
	if invariants.Enabled {
		invariants.Check(r.sqeTail-head <= r.sqEntries, "ring: SQ tail-head exceeds SQ size: GetSQE used from two goroutines?")
	}
	if r.sqeTail-head >= r.sqEntries {
		return nil
	}
	s := &r.sqes[r.sqeTail&r.sqMask]
	*s = SQE{}
	r.sqeTail++
	return s
}

// SQReady returns how many SQEs were prepared but not yet consumed by the
// kernel.
func (r *Ring) SQReady() uint32 {
	return r.sqeTail - atomic.LoadUint32(r.sqHead)
}

// flushSQ publishes prepared SQEs to the kernel and returns how many were
// newly published and how many are pending (published, not yet consumed).
func (r *Ring) flushSQ() (published, pending uint32) {
	published = r.sqeTail - r.sqTailPublished
	if published != 0 {
		// Release store: the SQE contents written before are visible
		// to the kernel before it sees the new tail.
		atomic.StoreUint32(r.sqTail, r.sqeTail)
		r.sqTailPublished = r.sqeTail
	}
	return published, r.sqeTail - atomic.LoadUint32(r.sqHead)
}

func (r *Ring) sqPoll() bool { return r.setupFlags&setupSQPoll != 0 }

// Submit hands prepared SQEs to the kernel without waiting for completions.
// It returns how many SQEs were submitted. EINTR is retried; with SQPOLL it
// wakes the poller thread when it sleeps (IORING_SQ_NEED_WAKEUP), without
// which submissions stall until something else wakes it.
func (r *Ring) Submit() (int, error) {
	return r.submit(0, false, false, 0, 0)
}

// SubmitAndWait submits prepared SQEs and waits until at least waitNr CQEs
// are ready (with waitNr 0 it still enters with GETEVENTS, which runs
// deferred task work). EINTR, which Go's async preemption signals cause, is
// retried.
func (r *Ring) SubmitAndWait(waitNr uint32) (int, error) {
	return r.submit(waitNr, true, false, 0, 0)
}

// SubmitAndWaitTimeout is SubmitAndWait bounded by d (IORING_ENTER_EXT_ARG).
// Running out of time is not an error: it returns (submitted, nil) and the
// caller looks at the CQ. EINTR is retried with the remaining time.
func (r *Ring) SubmitAndWaitTimeout(waitNr uint32, d time.Duration) (int, error) {
	if r.features&FeatExtArg == 0 {
		return 0, &Error{Op: "io_uring_enter", Class: ErrUnsupported, Why: "IORING_FEAT_EXT_ARG (wait timeout) missing"}
	}
	if d < 0 {
		d = 0
	}
	return r.submit(waitNr, true, true, d, 0)
}

// SubmitAndWaitMin is SubmitAndWaitTimeout that waits for all waitNr
// completions only during minWait (IORING_FEAT_MIN_TIMEOUT, Linux 6.12):
// once minWait has passed, one completion is enough, and with none it waits
// for the first until d. minWait is rounded down to whole microseconds; under
// one microsecond there is no minimum wait, and it is
// SubmitAndWaitTimeout(waitNr, d).
func (r *Ring) SubmitAndWaitMin(waitNr uint32, minWait, d time.Duration) (int, error) {
	if r.features&FeatMinTimeout == 0 {
		return 0, &Error{Op: "io_uring_enter", Class: ErrUnsupported, Why: "IORING_FEAT_MIN_TIMEOUT (batched wait) missing"}
	}
	if d < 0 {
		d = 0
	}
	us := uint32(min(minWait/time.Microsecond, 1<<31))
	return r.submit(waitNr, true, true, d, us)
}

func (r *Ring) submit(waitNr uint32, getEvents, timed bool, d time.Duration, minWaitUs uint32) (int, error) {
	var deadline time.Time
	if timed {
		deadline = time.Now().Add(d)
	}
	published, pending := r.flushSQ()
	var flags uint32
	if getEvents || r.cqNeedsFlush() {
		flags |= enterGetEvents
	}
	sqPoll := r.sqPoll()
	submitted := 0
	if sqPoll {
		// The poller thread consumes the SQ by itself; we only enter to
		// wake it or to wait, and report what we published.
		submitted = int(published)
	} else if pending == 0 && flags == 0 {
		return 0, nil
	}
	for {
		if sqPoll {
			// The tail store in flushSQ is a sequentially consistent
			// atomic, so this load of the flags is ordered after it;
			// the kernel sets NEED_WAKEUP and then re-checks the tail
			// behind a full barrier, so one of us sees the other.
			if atomic.LoadUint32(r.sqFlags)&sqNeedWakeup != 0 {
				flags |= enterSQWakeup
			} else {
				flags &^= enterSQWakeup
			}
			if flags == 0 {
				return submitted, nil
			}
		}
		var arg unsafe.Pointer
		var argSize uintptr
		if timed {
			r.extTs = unix.NsecToTimespec(int64(d))
			r.extArg = geteventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.extTs))), minWaitUsec: minWaitUs}
			arg, argSize = unsafe.Pointer(&r.extArg), unsafe.Sizeof(r.extArg)
			flags |= enterExtArg
		}
		n, errno := r.enter(pending, waitNr, flags, arg, argSize)
		switch errno {
		case 0:
			if !sqPoll {
				submitted += n
			}
		case unix.EINTR:
			// Nothing was submitted by this call (the kernel returns
			// the submit count if there was one); go again.
		case unix.ETIME:
			return submitted, nil
		default:
			if submitted > 0 {
				return submitted, nil
			}
			return 0, enterError(errno)
		}
		if sqPoll {
			pending = 0
		} else {
			_, pending = r.flushSQ()
		}
		if errno == 0 {
			// A signal can end the wait after the submit part
			// succeeded: the kernel then returns the submit count.
			// Keep waiting until the CQ really holds waitNr entries
			// (an overflow is flushed by the next PeekBatch); with a
			// minimum wait, the kernel returns with one once it has
			// passed, and one is enough.
			need := waitNr
			if minWaitUs > 0 {
				need = min(need, 1)
			}
			if need == 0 || r.CQReady() >= need || atomic.LoadUint32(r.sqFlags)&sqCQOverflow != 0 {
				return submitted, nil
			}
		}
		if timed {
			d = time.Until(deadline)
			if d <= 0 {
				return submitted, nil
			}
		}
	}
}

func (r *Ring) enter(toSubmit, minComplete, flags uint32, arg unsafe.Pointer, argSize uintptr) (int, unix.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete),
		uintptr(flags), uintptr(arg), argSize)
	return int(n), errno
}

// cqNeedsFlush reports whether CQEs are held back in the kernel: either the
// CQ overflowed (IORING_SQ_CQ_OVERFLOW) or deferred task work is pending
// (IORING_SQ_TASKRUN). Either needs an io_uring_enter with GETEVENTS.
func (r *Ring) cqNeedsFlush() bool {
	return atomic.LoadUint32(r.sqFlags)&(sqCQOverflow|sqTaskrun) != 0
}

// Pending reports, without entering the kernel, whether PeekBatch would
// find something: CQEs in the ring, or CQEs the kernel holds back (deferred
// task work, which sets IORING_SQ_TASKRUN with TASKRUN_FLAG, or an
// overflow). A loop busy-polling before it sleeps checks it.
func (r *Ring) Pending() bool { return r.CQReady() > 0 || r.cqNeedsFlush() }

// CQReady returns how many CQEs sit in the CQ ring now (not counting
// overflowed ones still held by the kernel).
func (r *Ring) CQReady() uint32 {
	return atomic.LoadUint32(r.cqTail) - atomic.LoadUint32(r.cqHead)
}

// PeekBatch copies up to len(dst) CQEs out of the CQ ring, advances the CQ
// head past them and returns how many it copied. It never blocks; when the
// ring is empty but the kernel holds CQEs back (overflow, or deferred task
// work under DEFER_TASKRUN/COOP_TASKRUN) it enters the kernel once with
// GETEVENTS to flush them. Copying out before handling is deliberate:
// drain-then-run means a completion handler may submit (and so enter the
// kernel) without the CQ slots it is reading being reused under it.
func (r *Ring) PeekBatch(dst []CQE) int {
	n := r.copyCQ(dst)
	if n < len(dst) && r.cqNeedsFlush() {
		for {
			_, errno := r.enter(0, 0, enterGetEvents, nil, 0)
			if errno != unix.EINTR {
				break
			}
		}
		n += r.copyCQ(dst[n:])
	}
	return n
}

func (r *Ring) copyCQ(dst []CQE) int {
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail) // acquire: CQE contents are visible
	avail := tail - head
	if invariants.Enabled {
		invariants.Check(avail <= r.cqEntries, "ring: CQ tail-head exceeds CQ size: head/tail corrupted")
	}
	n := uint32(len(dst))
	if avail < n {
		n = avail
	}
	for i := uint32(0); i < n; i++ {
		dst[i] = r.cqes[(head+i)&r.cqMask]
	}
	if n > 0 {
		// Release: we are done reading those slots before the kernel
		// may reuse them.
		atomic.StoreUint32(r.cqHead, head+n)
	}
	return int(n)
}

// CQOverflow returns the kernel's count of CQEs dropped because the CQ ring
// was full and could not be held back (only without IORING_FEAT_NODROP or on
// allocation failure).
func (r *Ring) CQOverflow() uint32 { return atomic.LoadUint32(r.cqOverflow) }

// SQDropped returns the kernel's count of invalid SQ index entries skipped.
func (r *Ring) SQDropped() uint32 { return atomic.LoadUint32(r.sqDropped) }

// sqFlagsNow returns the kernel's SQ ring flags (NEED_WAKEUP, CQ_OVERFLOW,
// TASKRUN); for tests and diagnostics.
func (r *Ring) sqFlagsNow() uint32 { return atomic.LoadUint32(r.sqFlags) }

func enterError(errno unix.Errno) error {
	e := &Error{Op: "io_uring_enter", Errno: errno}
	if errno == unix.EEXIST {
		e.Why = "called from a thread other than the ring's owner (SINGLE_ISSUER); the owner goroutine must runtime.LockOSThread before New"
	}
	return e
}

// Check reports whether a ring with p can be created here and supports ops,
// then closes it. It is the startup test for choosing the io_uring backend:
// an error wrapping ErrUnavailable or ErrUnsupported names what is missing.
// Safe from any goroutine (the test ring is never submitted to).
func Check(p Params, ops ...Op) error {
	r, err := New(p)
	if err != nil {
		return err
	}
	defer r.Close()
	if len(ops) == 0 {
		return nil
	}
	pr, err := r.Probe()
	if err != nil {
		return err
	}
	return pr.Require(ops...)
}
