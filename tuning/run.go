package tuning

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Options says what the broker is about to do, so the checks can compare
// the host against it. The zero value checks the host for a default
// broker (no log dirs, no listeners).
type Options struct {
	// Root is the filesystem root /proc and /sys are read under; "" means
	// "/". Fixture tests point it at testdata/<host>.
	Root string
	// LogDirs are the broker's log.dirs (they need not exist yet).
	LogDirs []string
	// ListenAddrs are the listener addresses, host:port. An empty host or
	// 0.0.0.0/:: means every non-loopback interface that is up.
	ListenAddrs []string
	// RingCount is ring.count; 0 means one ring per usable CPU.
	RingCount int
	// ExpectedConnections is how many client connections the host must
	// carry at once; 0 means DefaultExpectedConnections.
	ExpectedConnections int
	// SegmentFiles is how many log files the broker keeps open (.log,
	// .index, .timeindex of every segment); 0 means count them in LogDirs.
	SegmentFiles int
	// MemlockBytes is the memory the broker will pin for io_uring
	// registered and provided buffers; 0 leaves the memlock check to the
	// ring trial (Rings).
	MemlockBytes int64
	// Rings are the network rings the uring backend sets up at start; the
	// check sets up the same rings (io_uring.rings) under the current
	// RLIMIT_MEMLOCK, since the kernel charges ring memory to it. Count 0
	// skips the trial.
	Rings RingPlan
	// Sys supplies syscall-backed facts; nil means the real host.
	Sys Sys
}

// RingPlan is what the uring backend sets up at start: Count rings of
// Entries submission entries (the completion queue 8 times as many), each
// with a provided-buffer ring of RecvBuffers buffers of RecvBufferBytes.
type RingPlan struct {
	Count           int
	Entries         uint32
	RecvBuffers     int
	RecvBufferBytes int
	SQPoll          bool
}

// lockedBytesEstimate is what the rings of p charge to RLIMIT_MEMLOCK as
// the kernel accounts them: per ring the SQ/CQ ring pages (CQEs of 16 B,
// the SQ index array, the header) and the SQE array (64 B each), and the
// provided-buffer ring's descriptors (16 B each), in whole pages. The
// receive buffers themselves are not pinned. An estimate for the fix text:
// the trial is what decides.
func (p RingPlan) lockedBytesEstimate() int64 {
	page := int64(os.Getpagesize())
	pages := func(n int64) int64 { return (n + page - 1) / page * page }
	sq, cq := int64(p.Entries), int64(p.Entries)*8
	perRing := pages(cq*16+sq*4+1024) + pages(sq*64) + pages(int64(p.RecvBuffers)*16)
	return perRing * int64(p.Count)
}

// DefaultExpectedConnections is the connection count checked against when
// Options.ExpectedConnections is 0.
const DefaultExpectedConnections = 4096

// fdReserve is the descriptors beyond connections and log files the broker
// needs: listeners, ring and eventfd descriptors, splice pipes, files opened
// during segment roll and recovery. Generous on purpose: running out of
// descriptors fails accepts, which clients see as an outage.
const fdReserve = 1024

// segmentCountMax bounds the log dir walk that estimates SegmentFiles, so a
// host with millions of files does not stall startup.
const segmentCountMax = 1 << 20

// env is one run's inputs; the checks are methods on it.
type env struct {
	opts Options
	root string
	sys  Sys
	out  []Finding

	uringOK     bool
	uringReason string

	// ringsTried and ringsErr memoise the ring trial (Options.Rings): the
	// memlock and io_uring checks both report it.
	ringsTried bool
	ringsErr   error
}

// ringTrial sets up the configured rings once and returns the outcome.
func (e *env) ringTrial() error {
	if !e.ringsTried {
		e.ringsTried = true
		e.ringsErr = e.sys.SetUpRings(e.opts.Rings)
	}
	return e.ringsErr
}

// ringPlanText describes Options.Rings for findings.
func (e *env) ringPlanText() string {
	p := e.opts.Rings
	return fmt.Sprintf("%d rings of %d entries, each with %d provided buffers", p.Count, p.Entries, p.RecvBuffers)
}

// Run performs every host check and returns the findings. It never fails:
// a fact it cannot read becomes a warning saying so.
func Run(opts Options) *Report {
	e := &env{opts: opts, root: opts.Root, sys: opts.Sys}
	if e.root == "" {
		e.root = "/"
	}
	if e.sys == nil {
		e.sys = defaultSys()
	}
	if e.opts.ExpectedConnections <= 0 {
		e.opts.ExpectedConnections = DefaultExpectedConnections
	}
	e.checkFilesystems()
	e.checkVM()
	e.checkLimits()
	e.checkIOURing()
	e.checkNetwork()
	e.checkCPU()
	e.checkKernelTLS()
	r := &Report{Findings: e.out, IOBackend: "portable", IOBackendReason: e.uringReason}
	if e.uringOK {
		r.IOBackend = "uring"
	}
	return r
}

func (e *env) add(f Finding) { e.out = append(e.out, f) }

// path joins a host path (/proc/...) onto Root.
func (e *env) path(p string) string { return filepath.Join(e.root, p) }

// read returns a file under Root, trimmed of surrounding white space.
func (e *env) read(p string) (string, error) {
	return readTrimmed(e.path(p))
}

func readTrimmed(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// sysctlPath maps a sysctl name to its /proc/sys file.
func sysctlPath(name string) string {
	return "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
}

// sysctl reads a sysctl's value.
func (e *env) sysctl(name string) (string, error) { return e.read(sysctlPath(name)) }

// sysctlInt reads an integer sysctl.
func (e *env) sysctlInt(name string) (int64, error) {
	s, err := e.sysctl(name)
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return 0, fmt.Errorf("%s: empty", name)
	}
	return strconv.ParseInt(fields[0], 10, 64)
}

// sysctlFix is the one-line fix for a sysctl: set it now and persist it
// in a file of its own, so applying several fixes never clobbers another.
func sysctlFix(name, value string) string {
	return fmt.Sprintf("sysctl -w %s=%s && echo '%s = %s' > /etc/sysctl.d/60-ringbroker-%s.conf",
		name, value, name, value, name)
}

// unreadable is the finding for a fact the check could not read: a
// warning, since we cannot vouch for the host.
func unreadable(id, subject string, err error, why string) Finding {
	return Finding{ID: id, Subject: subject, Severity: Warning,
		Found: "unknown: " + err.Error(), Recommended: "readable", Why: why}
}

// usableCPUs is what RingCount 0 resolves to; it prefers the affinity mask
// (cgroups, taskset) over the online count.
func (e *env) usableCPUs() int {
	if n, err := e.sys.UsableCPUs(); err == nil && n > 0 {
		return n
	}
	if n, err := e.onlineCPUs(); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// bytesText prints a byte count the way an operator reads it.
func bytesText(n uint64) string {
	switch {
	case n == Unlimited:
		return "unlimited"
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
