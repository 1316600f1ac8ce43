//go:build linux

package ring

import "unsafe"

// This file mirrors the kernel UAPI in include/uapi/linux/io_uring.h.
// Only what ring/ uses is declared; the numbering is the kernel's and
// must never be renumbered.

// io_uring_setup(2) flags (io_uring_params.flags).
const (
	setupIOPoll       = 1 << 0
	setupSQPoll       = 1 << 1
	setupSQAff        = 1 << 2
	setupCQSize       = 1 << 3
	setupClamp        = 1 << 4
	setupAttachWQ     = 1 << 5
	setupRDisabled    = 1 << 6
	setupSubmitAll    = 1 << 7
	setupCoopTaskrun  = 1 << 8
	setupTaskrunFlag  = 1 << 9
	setupSQE128       = 1 << 10
	setupCQE32        = 1 << 11
	setupSingleIssuer = 1 << 12
	setupDeferTaskrun = 1 << 13
	setupNoMmap       = 1 << 14
	setupRegisteredFD = 1 << 15
	setupNoSQArray    = 1 << 16
)

// Setup flag values, exported so callers can test SetupFlags().
const (
	SetupSQPoll       uint32 = setupSQPoll
	SetupCQSize       uint32 = setupCQSize
	SetupSubmitAll    uint32 = setupSubmitAll
	SetupCoopTaskrun  uint32 = setupCoopTaskrun
	SetupTaskrunFlag  uint32 = setupTaskrunFlag
	SetupSingleIssuer uint32 = setupSingleIssuer
	SetupDeferTaskrun uint32 = setupDeferTaskrun
)

// Feature bits reported in io_uring_params.features (see Ring.Features).
const (
	FeatSingleMmap     uint32 = 1 << 0
	FeatNoDrop         uint32 = 1 << 1
	FeatSubmitStable   uint32 = 1 << 2
	FeatRWCurPos       uint32 = 1 << 3
	FeatCurPersonality uint32 = 1 << 4
	FeatFastPoll       uint32 = 1 << 5
	FeatPoll32Bits     uint32 = 1 << 6
	FeatSQPollNonfixed uint32 = 1 << 7
	FeatExtArg         uint32 = 1 << 8
	FeatNativeWorkers  uint32 = 1 << 9
	FeatRsrcTags       uint32 = 1 << 10
	FeatCQESkip        uint32 = 1 << 11
	FeatLinkedFile     uint32 = 1 << 12
	FeatRegRegRing     uint32 = 1 << 13
	FeatRecvSendBundle uint32 = 1 << 14
	FeatMinTimeout     uint32 = 1 << 15
)

// SQE flags (io_uring_sqe.flags, IOSQE_*).
const (
	SQEFixedFile      uint8 = 1 << 0 // fd is an index into the registered file table
	SQEIODrain        uint8 = 1 << 1 // issue only after all earlier SQEs completed
	SQEIOLink         uint8 = 1 << 2 // next SQE starts only after this one succeeds
	SQEIOHardlink     uint8 = 1 << 3 // like SQEIOLink but the chain survives failure
	SQEAsync          uint8 = 1 << 4 // always punt to io-wq
	SQEBufferSelect   uint8 = 1 << 5 // pick a buffer from the group in BufIndex
	SQECQESkipSuccess uint8 = 1 << 6 // post no CQE when the request succeeds
)

// Op is an io_uring opcode (enum io_uring_op), in kernel numbering.
type Op uint8

// Opcodes, in kernel numbering.
const (
	OpNop            Op = 0
	OpReadv          Op = 1
	OpWritev         Op = 2
	OpFsync          Op = 3
	OpReadFixed      Op = 4
	OpWriteFixed     Op = 5
	OpPollAdd        Op = 6
	OpPollRemove     Op = 7
	OpSyncFileRange  Op = 8
	OpSendmsg        Op = 9
	OpRecvmsg        Op = 10
	OpTimeout        Op = 11
	OpTimeoutRemove  Op = 12
	OpAccept         Op = 13
	OpAsyncCancel    Op = 14
	OpLinkTimeout    Op = 15
	OpConnect        Op = 16
	OpFallocate      Op = 17
	OpOpenat         Op = 18
	OpClose          Op = 19
	OpFilesUpdate    Op = 20
	OpStatx          Op = 21
	OpRead           Op = 22
	OpWrite          Op = 23
	OpFadvise        Op = 24
	OpMadvise        Op = 25
	OpSend           Op = 26
	OpRecv           Op = 27
	OpOpenat2        Op = 28
	OpEpollCtl       Op = 29
	OpSplice         Op = 30
	OpProvideBuffers Op = 31
	OpRemoveBuffers  Op = 32
	OpTee            Op = 33
	OpShutdown       Op = 34
	OpRenameat       Op = 35
	OpUnlinkat       Op = 36
	OpMkdirat        Op = 37
	OpSymlinkat      Op = 38
	OpLinkat         Op = 39
	OpMsgRing        Op = 40
	OpFsetxattr      Op = 41
	OpSetxattr       Op = 42
	OpFgetxattr      Op = 43
	OpGetxattr       Op = 44
	OpSocket         Op = 45
	OpUringCmd       Op = 46
	OpSendZC         Op = 47
	OpSendmsgZC      Op = 48
	OpReadMultishot  Op = 49
	OpWaitid         Op = 50
	OpFutexWait      Op = 51
	OpFutexWake      Op = 52
	OpFutexWaitv     Op = 53
	OpFixedFdInstall Op = 54
	OpFtruncate      Op = 55
	OpBind           Op = 56
	OpListen         Op = 57
	OpRecvZC         Op = 58
	OpEpollWait      Op = 59
	OpReadvFixed     Op = 60
	OpWritevFixed    Op = 61
	OpPipe           Op = 62
)

var opNames = [...]string{
	"NOP", "READV", "WRITEV", "FSYNC", "READ_FIXED", "WRITE_FIXED", "POLL_ADD", "POLL_REMOVE",
	"SYNC_FILE_RANGE", "SENDMSG", "RECVMSG", "TIMEOUT", "TIMEOUT_REMOVE", "ACCEPT", "ASYNC_CANCEL",
	"LINK_TIMEOUT", "CONNECT", "FALLOCATE", "OPENAT", "CLOSE", "FILES_UPDATE", "STATX", "READ", "WRITE",
	"FADVISE", "MADVISE", "SEND", "RECV", "OPENAT2", "EPOLL_CTL", "SPLICE", "PROVIDE_BUFFERS",
	"REMOVE_BUFFERS", "TEE", "SHUTDOWN", "RENAMEAT", "UNLINKAT", "MKDIRAT", "SYMLINKAT", "LINKAT",
	"MSG_RING", "FSETXATTR", "SETXATTR", "FGETXATTR", "GETXATTR", "SOCKET", "URING_CMD", "SEND_ZC",
	"SENDMSG_ZC", "READ_MULTISHOT", "WAITID", "FUTEX_WAIT", "FUTEX_WAKE", "FUTEX_WAITV",
	"FIXED_FD_INSTALL", "FTRUNCATE", "BIND", "LISTEN", "RECV_ZC", "EPOLL_WAIT", "READV_FIXED", "WRITEV_FIXED",
	"PIPE",
}

// String returns the kernel's name for the opcode without the IORING_OP_ prefix.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "OP_" + itoa(int(o))
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := v < 0
	if neg {
		v = -v
	}
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Per-opcode flag words.
const (
	// FsyncDatasync makes FSYNC behave like fdatasync(2).
	FsyncDatasync uint32 = 1 << 0

	// Timeout flags (sqe.timeout_flags).
	TimeoutAbs          uint32 = 1 << 0
	TimeoutUpdate       uint32 = 1 << 1
	TimeoutBoottime     uint32 = 1 << 2
	TimeoutRealtime     uint32 = 1 << 3
	LinkTimeoutUpdate   uint32 = 1 << 4
	TimeoutETimeSuccess uint32 = 1 << 5
	TimeoutMultishot    uint32 = 1 << 6

	// SpliceFdInFixed marks splice's fdIn as a registered file index.
	SpliceFdInFixed uint32 = 1 << 31

	// Poll command flags (stored in sqe.len for POLL_ADD).
	PollAddMulti       uint32 = 1 << 0
	PollUpdateEvents   uint32 = 1 << 1
	PollUpdateUserData uint32 = 1 << 2
	PollAddLevel       uint32 = 1 << 3

	// Async cancel flags (sqe.cancel_flags).
	CancelAll      uint32 = 1 << 0
	CancelFd       uint32 = 1 << 1
	CancelAny      uint32 = 1 << 2
	CancelFdFixed  uint32 = 1 << 3
	CancelUserData uint32 = 1 << 4
	CancelOp       uint32 = 1 << 5

	// send/recv flags kept in sqe.ioprio.
	RecvSendPollFirst uint16 = 1 << 0
	RecvMultishot     uint16 = 1 << 1
	RecvSendFixedBuf  uint16 = 1 << 2
	SendZCReportUsage uint16 = 1 << 3
	RecvSendBundle    uint16 = 1 << 4
	// AcceptMultishot is kept in sqe.ioprio for ACCEPT.
	AcceptMultishot uint16 = 1 << 0

	// MSG_RING commands (sqe.addr) and flags (sqe.msg_ring_flags).
	msgRingData             = 0
	MsgRingCQESkip   uint32 = 1 << 0
	MsgRingFlagsPass uint32 = 1 << 1
)

// CQE flags (io_uring_cqe.flags).
const (
	CQEFBuffer       uint32 = 1 << 0
	CQEFMore         uint32 = 1 << 1
	CQEFSockNonempty uint32 = 1 << 2
	CQEFNotif        uint32 = 1 << 3
	CQEFBufMore      uint32 = 1 << 4
	cqeBufferShift          = 16
)

// mmap offsets.
const (
	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000
)

// SQ ring flags (written by the kernel).
const (
	sqNeedWakeup = 1 << 0
	sqCQOverflow = 1 << 1
	sqTaskrun    = 1 << 2
)

// io_uring_enter(2) flags.
const (
	enterGetEvents = 1 << 0
	enterSQWakeup  = 1 << 1
	enterSQWait    = 1 << 2
	enterExtArg    = 1 << 3
)

// io_uring_register(2) opcodes.
const (
	registerBuffers     = 0
	unregisterBuffers   = 1
	registerFiles       = 2
	unregisterFiles     = 3
	registerFilesUpdate = 6
	registerProbe       = 8
	registerPbufRing    = 22
	unregisterPbufRing  = 23
)

// struct io_sqring_offsets
type sqringOffsets struct {
	head        uint32
	tail        uint32
	ringMask    uint32
	ringEntries uint32
	flags       uint32
	dropped     uint32
	array       uint32
	resv1       uint32
	userAddr    uint64
}

// struct io_cqring_offsets
type cqringOffsets struct {
	head        uint32
	tail        uint32
	ringMask    uint32
	ringEntries uint32
	overflow    uint32
	cqes        uint32
	flags       uint32
	resv1       uint32
	userAddr    uint64
}

// struct io_uring_params
type params struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32
	features     uint32
	wqFd         uint32
	resv         [3]uint32
	sqOff        sqringOffsets
	cqOff        cqringOffsets
}

// struct io_uring_getevents_arg
type geteventsArg struct {
	sigmask     uint64
	sigmaskSz   uint32
	minWaitUsec uint32
	ts          uint64
}

// struct io_uring_files_update
type filesUpdate struct {
	offset uint32
	resv   uint32
	fds    uint64
}

// struct io_uring_buf (one provided-buffer ring entry)
type bufEntry struct {
	addr uint64
	len  uint32
	bid  uint16
	resv uint16 // entry 0's resv is the ring tail
}

// struct io_uring_buf_reg
type bufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	resv        [3]uint64
}

// Compile-time layout checks: a wrong size here corrupts kernel memory.
var (
	_ [120 - unsafe.Sizeof(params{})]byte
	_ [unsafe.Sizeof(params{}) - 120]byte
	_ [64 - unsafe.Sizeof(SQE{})]byte
	_ [unsafe.Sizeof(SQE{}) - 64]byte
	_ [16 - unsafe.Sizeof(CQE{})]byte
	_ [unsafe.Sizeof(CQE{}) - 16]byte
	_ [16 - unsafe.Sizeof(bufEntry{})]byte
	_ [40 - unsafe.Sizeof(bufReg{})]byte
	_ [unsafe.Sizeof(bufReg{}) - 40]byte
	_ [24 - unsafe.Sizeof(geteventsArg{})]byte
)
