package tuning

import "net"

// Sys is every host fact that tuning learns through a syscall rather than
// a file under /proc or /sys. Files are read through Options.Root; these
// calls cannot be redirected that way, so fixture tests supply a fake Sys
// instead. Paths passed to Sys are the broker's own paths (not joined to
// Root).
//
// Implementations must be safe to call from one goroutine at a time; Run
// never calls Sys concurrently.
type Sys interface {
	// Statfs describes the filesystem holding path (statfs(2)). It returns
	// an error satisfying errors.Is(err, fs.ErrNotExist) when path is
	// missing, so the caller can walk up to the directory it will be
	// created in.
	Statfs(path string) (FSStats, error)
	// Writable reports whether this process may create files in path
	// (access(2) with W_OK); nil means writable.
	Writable(path string) error
	// Rlimit returns the soft and hard limit of resource (getrlimit(2)).
	Rlimit(resource Resource) (Rlimit, error)
	// NetInterfaces lists the host's network interfaces with their
	// addresses (netlink, through the net package).
	NetInterfaces() ([]NetInterface, error)
	// Ethtool reads one ethtool_value (SIOCETHTOOL ioctl) from ifname,
	// e.g. cmd ethtoolGTSO; it returns the value's data field.
	Ethtool(ifname string, cmd uint32) (uint32, error)
	// ProbeIOURing creates throw-away rings (io_uring_setup(2)) and asks
	// the kernel which opcodes it supports (IORING_REGISTER_PROBE).
	ProbeIOURing() IOURingProbe
	// SetUpRings creates, all at once, the rings plan describes (each with
	// its provided-buffer ring), then closes them: the same setup calls the
	// broker makes at start, under this process's limits.
	SetUpRings(plan RingPlan) error
	// ClockSynced reports whether the kernel thinks the system clock is
	// synchronised (adjtimex(2) without STA_UNSYNC).
	ClockSynced() (bool, error)
	// UsableCPUs is the number of CPUs this process may run on
	// (sched_getaffinity(2)), which cgroups and taskset can lower below
	// the number online.
	UsableCPUs() (int, error)
	// KernelTLS attaches the "tls" upper layer protocol (setsockopt
	// TCP_ULP) to a connected loopback socket and closes it: nil when the
	// kernel can take TLS records (kTLS), else why not.
	KernelTLS() error
}

// Resource names an rlimit tuning asks about.
type Resource int

const (
	// RlimitNOFILE is RLIMIT_NOFILE, the open file descriptor limit.
	RlimitNOFILE Resource = iota
	// RlimitMEMLOCK is RLIMIT_MEMLOCK, the locked (pinned) memory limit.
	RlimitMEMLOCK
)

// Unlimited is the value of an rlimit with no limit (RLIM_INFINITY).
const Unlimited = ^uint64(0)

// Rlimit is a soft (Cur) and hard (Max) resource limit.
type Rlimit struct {
	Cur, Max uint64
}

// FSStats is the part of statfs(2) the filesystem checks use.
type FSStats struct {
	Type        int64  // f_type magic, e.g. fsMagicXFS
	BlockBytes  int64  // fragment size: the unit of Blocks and AvailBlocks
	Blocks      uint64 // total data blocks
	AvailBlocks uint64 // blocks available to an unprivileged user
}

// NetInterface is one network interface as tuning needs it.
type NetInterface struct {
	Name     string
	Up       bool // IFF_UP
	Loopback bool // IFF_LOOPBACK
	Addrs    []net.IP
}

// IOURingProbe is what probing io_uring on this host found. Errors are the
// raw errno from the kernel so the checks can explain them (ENOSYS: kernel
// built without io_uring; EPERM: kernel.io_uring_disabled or a seccomp
// filter; EINVAL: a setup flag this kernel does not know).
type IOURingProbe struct {
	// SetupErr is the result of a plain io_uring_setup; nil when a ring
	// could be created at all.
	SetupErr error
	// FlagsErr is the result of io_uring_setup with the flags every
	// broker ring uses (SINGLE_ISSUER|DEFER_TASKRUN); nil when accepted.
	FlagsErr error
	// Features is io_uring_params.features from the plain setup.
	Features uint32
	// ProbeErr is the result of IORING_REGISTER_PROBE.
	ProbeErr error
	// Supported[op] reports whether opcode op is supported; its length is
	// the kernel's last_op+1.
	Supported []bool
}
