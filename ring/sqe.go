//go:build linux

package ring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// SQE is struct io_uring_sqe (64 bytes), field for field. Unions are
// represented by their first member; the comments name the aliases.
//
// Memory rule for every Prep* that takes a pointer: the memory must be
// off-heap (AllocBuffer, mmap) or Go heap memory the caller keeps reachable
// (and does not move) until the request's completion arrives. NEVER pass
// stack memory: the kernel stores only the raw address, the Go GC does not
// see it, and stacks move.
type SQE struct {
	Opcode      uint8  // Op
	Flags       uint8  // SQE* flags
	Ioprio      uint16 // also recv/send/accept flags (RecvMultishot, AcceptMultishot, ...)
	Fd          int32  // file descriptor, or registered index with SQEFixedFile
	Off         uint64 // off / addr2
	Addr        uint64 // addr / splice_off_in
	Len         uint32 // length or iovec count
	OpFlags     uint32 // rw_flags, fsync_flags, poll32_events, msg_flags, timeout_flags, ...
	UserData    uint64 // returned in the CQE
	BufIndex    uint16 // buf_index / buf_group
	Personality uint16
	SpliceFdIn  int32 // splice_fd_in / file_index / addr_len
	Addr3       uint64
	pad2        uint64
}

// CQE is struct io_uring_cqe (16 bytes; rings are never set up with CQE32).
type CQE struct {
	UserData uint64 // the SQE's UserData
	Res      int32  // result: >= 0 success, -errno failure
	Flags    uint32 // CQEF* flags
}

// More reports IORING_CQE_F_MORE: the multishot request that produced this
// CQE stays armed and will post more.
func (c CQE) More() bool { return c.Flags&CQEFMore != 0 }

// BufferID returns the provided-buffer id the kernel picked, if any
// (IORING_CQE_F_BUFFER).
func (c CQE) BufferID() (uint16, bool) {
	if c.Flags&CQEFBuffer == 0 {
		return 0, false
	}
	return uint16(c.Flags >> cqeBufferShift), true
}

// Notif reports IORING_CQE_F_NOTIF: this is SEND_ZC's second CQE, saying
// the kernel no longer references the send buffer.
func (c CQE) Notif() bool { return c.Flags&CQEFNotif != 0 }

// Err returns the CQE's result as an error (nil for Res >= 0).
func (c CQE) Err() error {
	if c.Res >= 0 {
		return nil
	}
	return unix.Errno(-c.Res)
}

var bigEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()

// SetUserData sets the value the completion carries back.
func (s *SQE) SetUserData(u uint64) { s.UserData = u }

// SetFlags ORs SQE* flags into the SQE.
func (s *SQE) SetFlags(f uint8) { s.Flags |= f }

// SetBufGroup sets the provided-buffer group for SQEBufferSelect.
func (s *SQE) SetBufGroup(g uint16) { s.BufIndex = g }

func (s *SQE) prepRW(op Op, fd int, addr uintptr, n uint32, off uint64) {
	s.Opcode = uint8(op)
	s.Fd = int32(fd)
	s.Addr = uint64(addr)
	s.Len = n
	s.Off = off
}

// PrepNop prepares a no-op; its CQE has Res 0.
func (s *SQE) PrepNop() {
	s.prepRW(OpNop, -1, 0, 0, 0)
}

// PrepAccept prepares an accept on listening socket fd. The peer address is
// not returned (addr/addrlen nil) and accept4 flags are 0; set s.OpFlags to
// unix.SOCK_CLOEXEC etc. if wanted. With multishot the request stays armed
// and posts one CQE (Res = new fd, More set) per connection.
func (s *SQE) PrepAccept(fd int, multishot bool) {
	s.prepRW(OpAccept, fd, 0, 0, 0)
	if multishot {
		s.Ioprio |= AcceptMultishot
	}
}

// PrepRecv prepares recv(2) into buf[0:n]. buf: off-heap or kept reachable
// until completion; never stack memory.
func (s *SQE) PrepRecv(fd int, buf unsafe.Pointer, n uint32, flags int) {
	s.prepRW(OpRecv, fd, uintptr(buf), n, 0)
	s.OpFlags = uint32(flags)
}

// PrepRecvMultishot prepares a multishot recv that picks buffers from
// provided-buffer group bufGroup (sets SQEBufferSelect). Each CQE carries a
// buffer id (CQE.BufferID) and More while it stays armed; Res 0 means EOF.
// A CQE without More ends it: on -ENOBUFS (every buffer of the group was in
// use) recycle buffers and re-arm; other errors end the stream.
func (s *SQE) PrepRecvMultishot(fd int, bufGroup uint16, flags int) {
	s.prepRW(OpRecv, fd, 0, 0, 0)
	s.OpFlags = uint32(flags)
	s.Ioprio |= RecvMultishot
	s.Flags |= SQEBufferSelect
	s.BufIndex = bufGroup
}

// SetRecvBundle makes a buffer-select recv a bundle (IORING_RECVSEND_BUNDLE,
// FeatRecvSendBundle): one CQE may cover several provided buffers, filled in
// the ring's order; the CQE names the first (BufRing.Next names the others,
// BufRing.Bufs counts them).
func (s *SQE) SetRecvBundle() { s.Ioprio |= RecvSendBundle }

// PrepSend prepares send(2) of buf[0:n]. buf: off-heap or kept reachable
// until completion; never stack memory.
func (s *SQE) PrepSend(fd int, buf unsafe.Pointer, n uint32, flags int) {
	s.prepRW(OpSend, fd, uintptr(buf), n, 0)
	s.OpFlags = uint32(flags)
}

// PrepSendmsg prepares sendmsg(2). msg, its iovecs and everything they
// point at: off-heap or kept reachable until completion; never stack memory.
func (s *SQE) PrepSendmsg(fd int, msg *unix.Msghdr, flags int) {
	s.prepRW(OpSendmsg, fd, uintptr(unsafe.Pointer(msg)), 1, 0)
	s.OpFlags = uint32(flags)
}

// PrepSendZC prepares a zero-copy send of buf[0:n]. It completes twice: a
// first CQE with Res = bytes and More set, then a CQE with Notif set once the
// kernel has let go of buf. buf must stay valid (off-heap or reachable) until
// the notification; never stack memory.
func (s *SQE) PrepSendZC(fd int, buf unsafe.Pointer, n uint32, flags int) {
	s.prepRW(OpSendZC, fd, uintptr(buf), n, 0)
	s.OpFlags = uint32(flags)
}

// PrepSendZCFixed is PrepSendZC from a buffer registered with
// RegisterBuffers (IORING_RECVSEND_FIXED_BUF): buf[0:n] must lie inside
// registered buffer bufIndex. The kernel skips pinning the pages per send.
func (s *SQE) PrepSendZCFixed(fd int, buf unsafe.Pointer, n uint32, flags int, bufIndex uint16) {
	s.PrepSendZC(fd, buf, n, flags)
	s.Ioprio |= RecvSendFixedBuf
	s.BufIndex = bufIndex
}

// PrepRead prepares pread(2) of n bytes at offset into buf. buf: off-heap or
// kept reachable until completion; never stack memory.
func (s *SQE) PrepRead(fd int, buf unsafe.Pointer, n uint32, offset uint64) {
	s.prepRW(OpRead, fd, uintptr(buf), n, offset)
}

// PrepReadFixed is PrepRead into registered buffer bufIndex; buf must lie
// inside that buffer (RegisterBuffers).
func (s *SQE) PrepReadFixed(fd int, buf unsafe.Pointer, n uint32, offset uint64, bufIndex uint16) {
	s.prepRW(OpReadFixed, fd, uintptr(buf), n, offset)
	s.BufIndex = bufIndex
}

// PrepWrite prepares pwrite(2) of buf[0:n] at offset. buf: off-heap or kept
// reachable until completion; never stack memory.
func (s *SQE) PrepWrite(fd int, buf unsafe.Pointer, n uint32, offset uint64) {
	s.prepRW(OpWrite, fd, uintptr(buf), n, offset)
}

// PrepWriteFixed is PrepWrite from registered buffer bufIndex; buf must lie
// inside that buffer (RegisterBuffers).
func (s *SQE) PrepWriteFixed(fd int, buf unsafe.Pointer, n uint32, offset uint64, bufIndex uint16) {
	s.prepRW(OpWriteFixed, fd, uintptr(buf), n, offset)
	s.BufIndex = bufIndex
}

// PrepWritev prepares pwritev(2) of nrVecs iovecs at offset. The iovec array
// and the memory it points at: off-heap or kept reachable until completion;
// never stack memory.
func (s *SQE) PrepWritev(fd int, iov *unix.Iovec, nrVecs uint32, offset uint64) {
	s.prepRW(OpWritev, fd, uintptr(unsafe.Pointer(iov)), nrVecs, offset)
}

// PrepReadv prepares preadv(2) of nrVecs iovecs at offset. Same memory rules
// as PrepWritev.
func (s *SQE) PrepReadv(fd int, iov *unix.Iovec, nrVecs uint32, offset uint64) {
	s.prepRW(OpReadv, fd, uintptr(unsafe.Pointer(iov)), nrVecs, offset)
}

// PrepFsync prepares fsync(2), or fdatasync(2) when datasync is set. Link it
// after a write (SQEIOLink) to order it behind that write.
func (s *SQE) PrepFsync(fd int, datasync bool) {
	s.prepRW(OpFsync, fd, 0, 0, 0)
	if datasync {
		s.OpFlags = FsyncDatasync
	}
}

// PrepSplice prepares splice(2) of n bytes from fdIn to fdOut. An offset of
// -1 means "no offset" (required for pipes; the file position is used for
// others). One side must be a pipe.
func (s *SQE) PrepSplice(fdIn int, offIn int64, fdOut int, offOut int64, n uint32, flags uint32) {
	s.prepRW(OpSplice, fdOut, 0, n, uint64(offOut))
	s.Addr = uint64(offIn) // splice_off_in
	s.SpliceFdIn = int32(fdIn)
	s.OpFlags = flags
}

// PrepTimeout prepares a timeout that completes with -ETIME after ts, or with
// 0 once count other completions have arrived (count 0 = time only). flags:
// TimeoutAbs, TimeoutBoottime, ... ts: off-heap or kept reachable until
// completion (the kernel reads it when the SQE is submitted; under SQPOLL that
// is later); never stack memory.
func (s *SQE) PrepTimeout(ts *unix.Timespec, count uint32, flags uint32) {
	s.prepRW(OpTimeout, -1, uintptr(unsafe.Pointer(ts)), 1, uint64(count))
	s.OpFlags = flags
}

// PrepLinkTimeout prepares a timeout for the SQE linked before it (that SQE
// carries SQEIOLink). If it fires, the linked request is cancelled
// (-ECANCELED) and this one completes with -ETIME; otherwise it completes with
// -ECANCELED or -ENOENT. ts: same rules as PrepTimeout.
func (s *SQE) PrepLinkTimeout(ts *unix.Timespec, flags uint32) {
	s.prepRW(OpLinkTimeout, -1, uintptr(unsafe.Pointer(ts)), 1, 0)
	s.OpFlags = flags
}

// PrepCancel prepares cancellation of the request whose UserData is
// userData (flags: CancelAll, CancelAny, ...). It completes with 0 (found),
// -ENOENT or -EALREADY; the cancelled request completes with -ECANCELED.
func (s *SQE) PrepCancel(userData uint64, flags uint32) {
	s.prepRW(OpAsyncCancel, -1, uintptr(userData), 0, 0)
	s.OpFlags = flags
}

// PrepCancelFd prepares cancellation of requests on fd (CancelFd is set;
// add CancelAll to cancel every match).
func (s *SQE) PrepCancelFd(fd int, flags uint32) {
	s.prepRW(OpAsyncCancel, fd, 0, 0, 0)
	s.OpFlags = flags | CancelFd
}

// PrepMsgRing prepares posting a CQE {UserData: userData, Res: res} on
// another ring (ringFd = that ring's Fd()). This ring gets its own CQE with
// the result. It is the cross-loop wakeup: the target's owner sees the CQE
// in its normal completion path.
func (s *SQE) PrepMsgRing(ringFd int, res uint32, userData uint64, flags uint32) {
	s.prepRW(OpMsgRing, ringFd, msgRingData, res, userData)
	s.OpFlags = flags
}

// PrepPollAdd prepares a poll for mask (unix.POLLIN, ...) on fd. With
// multishot it stays armed and posts a CQE (Res = ready mask, More set) each
// time the fd becomes ready.
func (s *SQE) PrepPollAdd(fd int, mask uint32, multishot bool) {
	s.prepRW(OpPollAdd, fd, 0, 0, 0)
	// poll32_events is stored word-reversed on big-endian hosts so the
	// kernel's 16-bit poll_events alias keeps the low bits.
	if bigEndian {
		mask = mask<<16 | mask>>16
	}
	s.OpFlags = mask
	if multishot {
		s.Len = PollAddMulti
	}
}

// PrepPollRemove prepares removal of the poll request whose UserData is
// userData.
func (s *SQE) PrepPollRemove(userData uint64) {
	s.prepRW(OpPollRemove, -1, uintptr(userData), 0, 0)
}

// PrepClose prepares close(2) of fd.
func (s *SQE) PrepClose(fd int) {
	s.prepRW(OpClose, fd, 0, 0, 0)
}
