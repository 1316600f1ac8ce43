// Package ring is ringbroker's own io_uring binding, written against the
// kernel UAPI (include/uapi/linux/io_uring.h) over golang.org/x/sys/unix.
// It knows nothing about Kafka, connections or logs: it sets rings up, hands
// out SQEs, submits, and copies CQEs out.
//
// # The rings
//
// io_uring_setup maps three regions shared with the kernel (one mmap covers
// both rings when the kernel reports IORING_FEAT_SINGLE_MMAP):
//
//	             SQ ring                                SQE array
//	+-----------------------------------+        +---------------------+
//	| head  (kernel writes, we read)    |        | sqe[0]  64 bytes    |
//	| tail  (we write, kernel reads)    |        | sqe[1]              |
//	| flags (NEED_WAKEUP, CQ_OVERFLOW,  |        |  ...                |
//	|        TASKRUN; kernel writes)    |        | sqe[n-1]            |
//	| array[i] = i  (identity, set once)|------->+---------------------+
//	+-----------------------------------+
//	  GetSQE fills sqe[tail & mask]; Submit stores tail (release) and
//	  calls io_uring_enter; the kernel consumes up to tail, moving head.
//
//	             CQ ring
//	+-----------------------------------+
//	| head  (we write, kernel reads)    |   PeekBatch: load tail (acquire),
//	| tail  (kernel writes, we read)    |   copy cqes[head..tail) out, then
//	| cqes[m]: {user_data, res, flags}  |   store head (release).
//	+-----------------------------------+
//
// Every load or store of a shared head, tail or flags word goes through
// sync/atomic, which provides the acquire/release pairing the kernel expects.
//
// # Ownership rules
//
//   - One goroutine per ring. The owner calls runtime.LockOSThread before
//     New, because SINGLE_ISSUER|DEFER_TASKRUN rings accept io_uring_enter only
//     from the thread that created them (others get EEXIST), and completions
//     under DEFER_TASKRUN are only run when the owner enters the kernel. No
//     method locks. Other goroutines reach a ring through their own queue plus
//     a wakeup (MSG_RING from their ring, or an eventfd the ring polls).
//   - Memory passed to an SQE (buffers, iovecs, msghdrs, timespecs) must be
//     off-heap (AllocBuffer, BufRing, mmap) or Go heap memory the caller
//     keeps reachable until the completion arrives (SEND_ZC: until the
//     notification CQE). The kernel holds raw addresses the GC cannot see.
//     NEVER pass stack memory: goroutine stacks move.
//   - A provided buffer belongs to the kernel while it is in its BufRing,
//     and to the caller from the CQE that names it until Recycle.
//   - Drain, then run: PeekBatch copies CQEs out and frees their slots
//     before the caller handles them, so handlers may submit freely.
//
// # Errors and fallback
//
// New returns an error wrapping ErrUnavailable when io_uring cannot be used
// at all (ENOSYS; EPERM from kernel.io_uring_disabled, seccomp or an LSM):
// callers switch to the portable backend and log the reason. ErrUnsupported
// names a setup flag, opcode (Probe.Require) or register operation this
// kernel lacks. Check(params, ops...) does both tests at startup in one call.
// Errors are *Error values that unwrap to their class and to the raw errno,
// so errors.Is(err, unix.EBUSY) works too.
//
// # Invariants
//
// Built with -race or -tags invariants (see package invariants), the ring
// checks its index arithmetic (SQ/CQ head and tail never more than a ring
// apart) and panics on violation, which in practice means two goroutines
// used one ring.
//
// # Waiting
//
// Submit, SubmitAndWait and SubmitAndWaitTimeout retry EINTR, which Go's
// asynchronous preemption (SIGURG) causes often. With SQPOLL the poller
// thread sleeps after SQThreadIdle; Submit then passes IORING_ENTER_SQ_WAKEUP,
// without which submissions stall. A CQ overflow (IORING_SQ_CQ_OVERFLOW) or
// pending deferred task work (IORING_SQ_TASKRUN) is flushed by PeekBatch with
// one io_uring_enter(GETEVENTS).
package ring
