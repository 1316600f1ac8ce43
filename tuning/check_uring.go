package tuning

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// Opcode is an io_uring opcode the broker's uring backend submits.
type Opcode struct {
	Code uint8  // IORING_OP_* value from the kernel UAPI
	Name string // IORING_OP_ name without the prefix
	Use  string // what the broker uses it for
}

// UringOpcodes are the opcodes the io_uring backend needs; if the kernel
// lacks any of them the broker uses the portable backend. Keep in step
// with ring/ (tuning must not import it: it has to diagnose hosts where
// ring/ cannot start).
var UringOpcodes = []Opcode{
	{2, "WRITEV", "segment appends"},
	{3, "FSYNC", "fdatasync per append group"},
	{9, "SENDMSG", "scatter-gather response headers"},
	{11, "TIMEOUT", "linger and fetch long-poll deadlines"},
	{13, "ACCEPT", "multishot accept"},
	{14, "ASYNC_CANCEL", "cancelling multishot requests on close"},
	{19, "CLOSE", "closing connections"},
	{22, "READ", "recovery and index reads"},
	{23, "WRITE", "segment appends"},
	{26, "SEND", "responses"},
	{27, "RECV", "multishot receive into provided buffers"},
	{30, "SPLICE", "zero-copy fetch: segment file to pipe to socket"},
	{40, "MSG_RING", "wakeups between rings"},
}

// uringKernelMin is the first kernel with every feature the rings are set
// up with: SINGLE_ISSUER (6.0), DEFER_TASKRUN (6.1), multishot recv (6.0)
// and provided buffer rings (5.19).
var uringKernelMin = [2]int{6, 1}

// checkIOURing grades io_uring availability and decides, like the broker
// will at start, whether the uring or the portable backend serves I/O.
func (e *env) checkIOURing() {
	reasons := []string{}

	// kernel.io_uring_disabled (6.6+): 0 everyone, 1 only io_uring_group
	// and CAP_SYS_ADMIN, 2 nobody.
	probe := e.sys.ProbeIOURing()
	const disID = "io_uring.disabled"
	disWhy := "kernel.io_uring_disabled=2 forbids io_uring to every process and 1 to all but kernel.io_uring_group and CAP_SYS_ADMIN; the broker then serves through the portable backend, which copies fetch data through user space and costs a syscall per operation"
	if s, err := e.sysctl("kernel.io_uring_disabled"); err != nil {
		e.add(Finding{ID: disID, Severity: OK, Found: "not present (kernel before 6.6: io_uring always allowed)", Recommended: "0", Why: disWhy})
	} else {
		f := Finding{ID: disID, Severity: OK, Found: s, Recommended: "0", Why: disWhy}
		switch {
		case s == "0":
		case s == "1" && probe.SetupErr == nil:
			f.Found = "1 (this process is allowed: member of kernel.io_uring_group or CAP_SYS_ADMIN)"
		default:
			f.Severity = Warning
			f.Fix = sysctlFix("kernel.io_uring_disabled", "0")
			reasons = append(reasons, "kernel.io_uring_disabled="+s)
		}
		e.add(f)
	}

	const kID = "io_uring.kernel"
	kWhy := fmt.Sprintf("the rings are created with SINGLE_ISSUER|DEFER_TASKRUN (kernel %d.%d) and use multishot accept/recv with provided buffer rings; on an older kernel the broker uses the portable backend", uringKernelMin[0], uringKernelMin[1])
	release, err := e.read("/proc/sys/kernel/osrelease")
	if err != nil {
		e.add(unreadable(kID, "", err, kWhy))
		reasons = append(reasons, "kernel version unknown")
	} else {
		maj, min, perr := parseKernelVersion(release)
		f := Finding{ID: kID, Severity: OK, Found: release, Recommended: fmt.Sprintf(">= %d.%d", uringKernelMin[0], uringKernelMin[1]), Why: kWhy}
		switch {
		case perr != nil:
			f.Severity = Warning
			f.Found = release + " (cannot parse: " + perr.Error() + ")"
			reasons = append(reasons, "kernel version unparsable")
		case maj < uringKernelMin[0] || maj == uringKernelMin[0] && min < uringKernelMin[1]:
			f.Severity = Warning
			f.Fix = "apt-get install -y linux-image-$(dpkg --print-architecture) && reboot  # or your distribution's 6.1+ kernel"
			reasons = append(reasons, "kernel "+release+" older than 6.1")
		}
		e.add(f)
	}

	const sID = "io_uring.setup"
	sWhy := "creating a ring is the only reliable test: containers' seccomp profiles and LSMs block io_uring_setup even where the kernel supports it"
	f := Finding{ID: sID, Severity: OK, Recommended: "io_uring_setup with SINGLE_ISSUER|DEFER_TASKRUN succeeds", Why: sWhy}
	switch {
	case probe.SetupErr != nil:
		f.Severity = Warning
		f.Found = "io_uring_setup failed: " + e.explainUringErr(probe.SetupErr)
		reasons = append(reasons, "io_uring_setup: "+probe.SetupErr.Error())
	case probe.FlagsErr != nil:
		f.Severity = Warning
		f.Found = "plain ring ok, SINGLE_ISSUER|DEFER_TASKRUN refused: " + e.explainUringErr(probe.FlagsErr)
		f.Fix = "apt-get install -y linux-image-$(dpkg --print-architecture) && reboot  # or your distribution's 6.1+ kernel"
		reasons = append(reasons, "SINGLE_ISSUER|DEFER_TASKRUN refused: "+probe.FlagsErr.Error())
	default:
		f.Found = fmt.Sprintf("ok (features 0x%x)", probe.Features)
	}
	if f.Severity != OK && errors.Is(probe.SetupErr, syscall.EPERM) {
		f.Fix = sysctlFix("kernel.io_uring_disabled", "0") + "  # in a container, also allow io_uring in its seccomp profile"
	}
	e.add(f)

	const oID = "io_uring.opcodes"
	var all []string
	for _, op := range UringOpcodes {
		all = append(all, op.Name)
	}
	oWhy := "the uring backend submits " + strings.Join(all, ", ") + "; if one is missing it cannot serve that operation, so the broker uses the portable backend"
	of := Finding{ID: oID, Severity: OK, Recommended: fmt.Sprintf("all %d opcodes the uring backend uses", len(UringOpcodes)), Why: oWhy}
	switch {
	case probe.SetupErr != nil:
		of.Severity = Warning
		of.Found = "not probed: no ring could be created"
	case probe.ProbeErr != nil:
		of.Severity = Warning
		of.Found = "IORING_REGISTER_PROBE failed: " + probe.ProbeErr.Error()
		reasons = append(reasons, "opcode probe failed")
	default:
		var missing []string
		for _, op := range UringOpcodes {
			if int(op.Code) >= len(probe.Supported) || !probe.Supported[op.Code] {
				missing = append(missing, op.Name+" ("+op.Use+")")
			}
		}
		if len(missing) > 0 {
			of.Severity = Warning
			of.Found = "missing: " + strings.Join(missing, ", ")
			of.Fix = "apt-get install -y linux-image-$(dpkg --print-architecture) && reboot  # or your distribution's 6.1+ kernel"
			reasons = append(reasons, "missing opcodes")
		} else {
			of.Found = fmt.Sprintf("all %d supported (kernel knows %d opcodes)", len(UringOpcodes), len(probe.Supported))
		}
	}
	e.add(of)

	if e.opts.Rings.Count > 0 && probe.SetupErr == nil {
		const rID = "io_uring.rings"
		rf := Finding{ID: rID, Severity: OK, Recommended: "the broker's rings set up: " + e.ringPlanText(),
			Why: "one small probe ring says little about the rings the broker needs: each ring and its provided-buffer ring are charged to RLIMIT_MEMLOCK, so the check sets up the same rings at once, as the broker will at start"}
		if err := e.ringTrial(); err != nil {
			rf.Severity = Warning
			rf.Found = err.Error()
			if errors.Is(err, syscall.ENOMEM) {
				rf.Found += " (RLIMIT_MEMLOCK too low for the rings: see limits.memlock)"
				rf.Fix = e.memlockFix()
			}
			reasons = append(reasons, "setting up the configured rings: "+err.Error())
		} else {
			rf.Found = "ok (tried)"
		}
		e.add(rf)
	}

	const bID = "io_uring.backend"
	bf := Finding{ID: bID, Recommended: "uring",
		Why: "the uring backend serves each core with one ring: multishot receive into provided buffers and splice for zero-copy fetch; the portable backend serves the same protocol through Go's net package with copies and more syscalls"}
	if len(reasons) == 0 {
		e.uringOK = true
		e.uringReason = "io_uring usable: setup flags accepted and every opcode supported"
		bf.Severity, bf.Found = OK, "uring"
	} else {
		e.uringReason = strings.Join(reasons, "; ")
		bf.Severity, bf.Found = Warning, "portable: "+e.uringReason
		bf.Fix = f.Fix
		if bf.Fix == "" {
			bf.Fix = of.Fix
		}
	}
	e.add(bf)
}

// explainUringErr turns an io_uring_setup errno into its usual cause.
func (e *env) explainUringErr(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.ENOSYS):
		return msg + " (kernel built without io_uring, or a seccomp filter returning ENOSYS)"
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		cause := "kernel.io_uring_disabled, an LSM policy or a seccomp filter"
		if st, rerr := e.read("/proc/self/status"); rerr == nil && strings.Contains(st, "Seccomp:\t2") {
			cause = "this process runs under a seccomp filter (container runtimes block io_uring by default), or kernel.io_uring_disabled"
		}
		return msg + " (" + cause + ")"
	case errors.Is(err, syscall.EINVAL):
		return msg + " (kernel does not know a setup flag: SINGLE_ISSUER needs 6.0, DEFER_TASKRUN 6.1)"
	case errors.Is(err, syscall.ENOMEM):
		return msg + " (RLIMIT_MEMLOCK too low for the ring: the kernel charges ring memory to it unless the process has CAP_IPC_LOCK)"
	}
	return msg
}

// parseKernelVersion reads "6.18.44-fc-v769" as 6, 18.
func parseKernelVersion(release string) (major, minor int, err error) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("want major.minor")
	}
	major, err = strconv.Atoi(parts[0])
	if err != nil {
		return 0, 0, err
	}
	digits := parts[1]
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i]
	}
	minor, err = strconv.Atoi(digits)
	return major, minor, err
}
