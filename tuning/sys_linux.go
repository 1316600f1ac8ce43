//go:build linux

package tuning

import (
	"fmt"
	"io/fs"
	"net"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hostSys is the real Sys: raw syscalls through golang.org/x/sys/unix.
// tuning deliberately does not import ring/: the checker must be able to
// say why io_uring is unusable even when ring/ cannot start, and it must
// stay buildable on its own (docs/DESIGN.md: tuning imports nothing of ours).
type hostSys struct{}

func defaultSys() Sys { return hostSys{} }

func (hostSys) Statfs(path string) (FSStats, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FSStats{}, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	unit := int64(st.Frsize)
	if unit <= 0 {
		unit = int64(st.Bsize)
	}
	return FSStats{Type: int64(st.Type), BlockBytes: unit, Blocks: st.Blocks, AvailBlocks: st.Bavail}, nil
}

func (hostSys) Writable(path string) error {
	if err := unix.Access(path, unix.W_OK); err != nil {
		return &fs.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}

func (hostSys) Rlimit(r Resource) (Rlimit, error) {
	res := unix.RLIMIT_NOFILE
	if r == RlimitMEMLOCK {
		res = unix.RLIMIT_MEMLOCK
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(res, &lim); err != nil {
		return Rlimit{}, err
	}
	return Rlimit{Cur: lim.Cur, Max: lim.Max}, nil
}

func (hostSys) NetInterfaces() ([]NetInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]NetInterface, 0, len(ifs))
	for _, ifi := range ifs {
		ni := NetInterface{
			Name:     ifi.Name,
			Up:       ifi.Flags&net.FlagUp != 0,
			Loopback: ifi.Flags&net.FlagLoopback != 0,
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				ni.Addrs = append(ni.Addrs, ipn.IP)
			}
		}
		out = append(out, ni)
	}
	return out, nil
}

// ethtoolValue is the kernel's struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqPtr is struct ifreq with ifr_data set: the interface name followed
// by a pointer. The kernel reads sizeof(struct ifreq) (40 bytes on 64-bit)
// so the tail is padded; extra padding on 32-bit is harmless.
type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

func (hostSys) Ethtool(ifname string, cmd uint32) (uint32, error) {
	if len(ifname) >= unix.IFNAMSIZ {
		return 0, unix.EINVAL
	}
	// Any socket reaches dev_ioctl; AF_INET is the usual one, AF_UNIX is
	// the fallback for hosts with IPv4 compiled out.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, err
		}
	}
	defer unix.Close(fd)
	// value lives on the heap (it escapes through ifr.data) and the GC
	// does not move heap objects, so the kernel's pointer stays valid for
	// the duration of the ioctl.
	value := &ethtoolValue{cmd: cmd}
	var ifr ifreqPtr
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(value)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.SIOCETHTOOL), uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return 0, errno
	}
	return value.data, nil
}

// uringParams is the kernel's struct io_uring_params (120 bytes); the
// offsets blocks are never read because the probe rings are not mapped.
type uringParams struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32
	features     uint32
	wqFd         uint32
	resv         [3]uint32
	sqOff        [10]uint32
	cqOff        [10]uint32
}

// uringProbeOp is struct io_uring_probe_op.
type uringProbeOp struct {
	op    uint8
	resv  uint8
	flags uint16
	resv2 uint32
}

// uringProbe is struct io_uring_probe with room for every opcode the
// kernel can describe (it caps nr_args at IORING_OP_LAST, an u8).
type uringProbe struct {
	lastOp uint8
	opsLen uint8
	resv   uint16
	resv2  [3]uint32
	ops    [256]uringProbeOp
}

const (
	ioringSetupSingleIssuer = 1 << 12
	ioringSetupDeferTaskrun = 1 << 13
	ioringRegisterProbe     = 8
	ioURingOpSupported      = 1 << 0
)

func uringSetup(flags uint32) (int, *uringParams, error) {
	p := &uringParams{flags: flags}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, nil, errno
	}
	return int(fd), p, nil
}

func (hostSys) ProbeIOURing() IOURingProbe {
	var out IOURingProbe
	fd, p, err := uringSetup(0)
	if err != nil {
		out.SetupErr = err
		out.FlagsErr = err
		out.ProbeErr = err
		return out
	}
	defer unix.Close(fd)
	out.Features = p.features
	if fd2, _, err := uringSetup(ioringSetupSingleIssuer | ioringSetupDeferTaskrun); err != nil {
		out.FlagsErr = err
	} else {
		unix.Close(fd2)
	}
	probe := &uringProbe{}
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), ioringRegisterProbe,
		uintptr(unsafe.Pointer(probe)), uintptr(len(probe.ops)), 0, 0)
	if errno != 0 {
		out.ProbeErr = errno
		return out
	}
	out.Supported = make([]bool, int(probe.lastOp)+1)
	for i := 0; i < int(probe.opsLen) && i < len(probe.ops); i++ {
		op := probe.ops[i]
		if int(op.op) < len(out.Supported) && op.flags&ioURingOpSupported != 0 {
			out.Supported[op.op] = true
		}
	}
	return out
}

func (hostSys) ClockSynced() (bool, error) {
	var tx unix.Timex // modes 0: read only, allowed without CAP_SYS_TIME
	if _, err := unix.Adjtimex(&tx); err != nil {
		return false, err
	}
	return tx.Status&unix.STA_UNSYNC == 0, nil
}

func (hostSys) UsableCPUs() (int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, err
	}
	return set.Count(), nil
}

const (
	ioringSetupSQPoll      = 1 << 1
	ioringSetupCQSize      = 1 << 3
	ioringSetupCoopTaskrun = 1 << 8
	ioringRegisterPbufRing = 22
)

// uringBufReg is struct io_uring_buf_reg.
type uringBufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	resv        [3]uint64
}

// SetUpRings makes the io_uring_setup and IORING_REGISTER_PBUF_RING calls
// netpoll makes for each loop, with the same flags and sizes, holding every
// ring until the last is set up (the limit is charged for all of them at
// once), then releases everything.
func (hostSys) SetUpRings(plan RingPlan) error {
	// The rings are IORING_SETUP_SINGLE_ISSUER: registering from a thread
	// other than the one that set the ring up fails with EEXIST, so the
	// goroutine must not migrate between the two calls (netpoll's loops are
	// locked to their threads for the same reason).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var fds []int
	var mems [][]byte
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
		for _, m := range mems {
			unix.Munmap(m)
		}
	}()
	flags := uint32(ioringSetupSingleIssuer | ioringSetupDeferTaskrun | ioringSetupCoopTaskrun | ioringSetupCQSize)
	if plan.SQPoll {
		// As netpoll: the kernel refuses DEFER_TASKRUN and COOP_TASKRUN
		// with SQPOLL.
		flags = flags&^(ioringSetupDeferTaskrun|ioringSetupCoopTaskrun) | ioringSetupSQPoll
	}
	for i := 0; i < plan.Count; i++ {
		p := &uringParams{flags: flags, cqEntries: plan.Entries * 8}
		fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(plan.Entries), uintptr(unsafe.Pointer(p)), 0)
		if errno != 0 {
			return fmt.Errorf("ring %d of %d: io_uring_setup(%d entries): %w", i+1, plan.Count, plan.Entries, errno)
		}
		fds = append(fds, int(fd))
		if plan.RecvBuffers <= 0 {
			continue
		}
		page := unix.Getpagesize()
		size := (plan.RecvBuffers*16 + page - 1) &^ (page - 1)
		mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return fmt.Errorf("ring %d of %d: mmap of the buffer ring: %w", i+1, plan.Count, err)
		}
		mems = append(mems, mem)
		reg := &uringBufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), ringEntries: uint32(plan.RecvBuffers)}
		if _, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, fd, ioringRegisterPbufRing,
			uintptr(unsafe.Pointer(reg)), 1, 0, 0); errno != 0 {
			return fmt.Errorf("ring %d of %d: io_uring_register(PBUF_RING, %d buffers): %w", i+1, plan.Count, plan.RecvBuffers, errno)
		}
	}
	return nil
}

// KernelTLS connects a loopback TCP pair and sets TCP_ULP "tls" on the
// client side, as a kTLS record layer would before handing over its keys.
// ENOENT: the kernel has no tls module (built without CONFIG_TLS, or the
// module is not loadable here).
func (hostSys) KernelTLS() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if s := <-accepted; s != nil {
		defer s.Close()
	}
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.SOL_TCP, unix.TCP_ULP, "tls")
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt TCP_ULP tls: %w", serr)
	}
	return nil
}
