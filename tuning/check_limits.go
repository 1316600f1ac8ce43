package tuning

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// unitDropIn is where limit fixes go: a systemd drop-in for the unit
// scripts/ install, so a package upgrade of the unit keeps them.
const unitDropIn = "/etc/systemd/system/ringbrokerd.service.d"

// nofileSuggest is the LimitNOFILE we suggest when more is needed: the
// kernel's default fs.nr_open, so it needs no other change.
const nofileSuggest = 1 << 20

// capIPCLock is CAP_IPC_LOCK's bit in /proc/self/status CapEff; with it the
// kernel does not charge pinned io_uring buffers against RLIMIT_MEMLOCK.
const capIPCLock = 14

// checkLimits grades RLIMIT_NOFILE and fs.nr_open against connections plus
// log files, and RLIMIT_MEMLOCK against the buffers the rings will pin.
func (e *env) checkLimits() {
	segFiles, segNote := e.opts.SegmentFiles, "given"
	if segFiles <= 0 {
		segFiles, segNote = e.countSegmentFiles()
	}
	need := uint64(e.opts.ExpectedConnections + segFiles + fdReserve)
	needText := fmt.Sprintf("%d connections + %d log files (%s) + %d reserve = %d",
		e.opts.ExpectedConnections, segFiles, segNote, fdReserve, need)

	nrOpen, nrErr := e.sysctlInt("fs.nr_open")
	suggest := uint64(max(nofileSuggest, need))
	e.checkNofile(need, needText, suggest)

	const nrID = "fs.nr_open"
	nrWhy := "fs.nr_open caps every process's RLIMIT_NOFILE: LimitNOFILE above it makes the unit fail to start"
	if nrErr != nil {
		e.add(unreadable(nrID, "", nrErr, nrWhy))
	} else {
		f := Finding{ID: nrID, Severity: OK, Found: strconv.FormatInt(nrOpen, 10),
			Recommended: ">= " + strconv.FormatUint(need, 10) + " (" + needText + ")", Why: nrWhy}
		if uint64(nrOpen) < need {
			f.Severity = Warning
			f.Fix = sysctlFix(nrID, strconv.FormatUint(suggest, 10))
		}
		e.add(f)
	}
	e.checkMemlock()
}

func (e *env) checkNofile(need uint64, needText string, suggest uint64) {
	const id = "limits.nofile"
	why := "every client connection, log segment file, listener and splice pipe is a descriptor; when they run out, accept fails and clients see the broker as down. The Go runtime raises the soft limit to the hard one at start, so the hard limit is what counts; under systemd it is the unit's LimitNOFILE, not your shell's"
	rl, err := e.sys.Rlimit(RlimitNOFILE)
	if err != nil {
		e.add(unreadable(id, "", err, why))
		return
	}
	f := Finding{ID: id, Severity: OK,
		Found:       fmt.Sprintf("soft %s, hard %s", limitText(rl.Cur), limitText(rl.Max)),
		Recommended: ">= " + needText, Why: why}
	fix := fmt.Sprintf(`mkdir -p %s && printf '[Service]\nLimitNOFILE=%d\n' > %s/60-nofile.conf && systemctl daemon-reload`,
		unitDropIn, suggest, unitDropIn)
	minimum := uint64(e.opts.ExpectedConnections + fdReserve)
	switch {
	case rl.Max != Unlimited && rl.Max < minimum:
		f.Severity = Fatal
		f.Why = fmt.Sprintf("the hard limit cannot even hold the %d expected connections plus the broker's own descriptors: accepts will fail under load. ", e.opts.ExpectedConnections) + why
		f.Fix = fix
	case rl.Max != Unlimited && rl.Max < need:
		f.Severity = Warning
		f.Fix = fix
	}
	e.add(f)
}

func (e *env) checkMemlock() {
	const id = "limits.memlock"
	why := "io_uring registered and provided buffers are pinned memory charged to RLIMIT_MEMLOCK (unless the process has CAP_IPC_LOCK); registering more than the limit fails with ENOMEM and the rings cannot start"
	need := e.opts.MemlockBytes
	if need <= 0 && e.opts.Rings.Count > 0 {
		e.checkMemlockByTrial()
		return
	}
	if need <= 0 {
		e.add(Finding{ID: id, Severity: OK, Found: "no pinned buffers configured", Recommended: "LimitMEMLOCK >= the buffers the rings pin", Why: why})
		return
	}
	rl, err := e.sys.Rlimit(RlimitMEMLOCK)
	if err != nil {
		e.add(unreadable(id, "", err, why))
		return
	}
	f := Finding{ID: id, Severity: OK,
		Found:       fmt.Sprintf("soft %s, hard %s", bytesText(rl.Cur), bytesText(rl.Max)),
		Recommended: ">= " + bytesText(uint64(need)) + " (buffers the rings will pin)", Why: why}
	if rl.Cur != Unlimited && rl.Cur < uint64(need) {
		if e.hasCap(capIPCLock) {
			f.Found += "; not enforced: CAP_IPC_LOCK"
			f.Why += ". This process has CAP_IPC_LOCK so the limit does not apply to it, but a unit running without that capability needs LimitMEMLOCK"
		} else {
			f.Severity = Fatal
			f.Fix = fmt.Sprintf(`mkdir -p %s && printf '[Service]\nLimitMEMLOCK=%d\n' > %s/60-memlock.conf && systemctl daemon-reload`,
				unitDropIn, roundUpMiB(need), unitDropIn)
		}
	}
	e.add(f)
}

// checkMemlockByTrial grades RLIMIT_MEMLOCK by doing what the broker will:
// set up its rings under the current limit (the kernel charges the ring
// memory and buffer-ring descriptors to it). Comparing the limit with an
// estimate alone would guess at the kernel's accounting, which changed
// across versions.
func (e *env) checkMemlockByTrial() {
	const id = "limits.memlock"
	why := "the kernel charges io_uring ring memory and provided-buffer rings to RLIMIT_MEMLOCK (unless the process has CAP_IPC_LOCK); over the limit io_uring_setup fails with ENOMEM and the broker cannot start its rings"
	rl, err := e.sys.Rlimit(RlimitMEMLOCK)
	if err != nil {
		e.add(unreadable(id, "", err, why))
		return
	}
	estimate := e.opts.Rings.lockedBytesEstimate()
	f := Finding{ID: id, Severity: OK,
		Found:       fmt.Sprintf("soft %s, hard %s", bytesText(rl.Cur), bytesText(rl.Max)),
		Recommended: fmt.Sprintf("the broker's rings set up under it (%s: about %s)", e.ringPlanText(), bytesText(uint64(estimate))),
		Why:         why}
	switch err := e.ringTrial(); {
	case err == nil:
		f.Found += "; " + e.ringPlanText() + " set up under it (tried)"
	case errors.Is(err, syscall.ENOMEM) && !e.hasCap(capIPCLock):
		f.Severity = Fatal
		f.Found += "; setting up the broker's rings failed: " + err.Error()
		f.Fix = e.memlockFix()
	default:
		f.Found += "; the ring trial failed for another reason (see io_uring.rings): " + err.Error()
	}
	e.add(f)
}

// memlockFix raises LimitMEMLOCK to twice the rings' estimated need (at
// least 8 MiB, the usual default), in whole MiB.
func (e *env) memlockFix() string {
	suggest := max(roundUpMiB(2*e.opts.Rings.lockedBytesEstimate()), 8<<20)
	return fmt.Sprintf(`mkdir -p %s && printf '[Service]\nLimitMEMLOCK=%d\n' > %s/60-memlock.conf && systemctl daemon-reload`,
		unitDropIn, suggest, unitDropIn)
}

func roundUpMiB(n int64) int64 { return (n + (1<<20 - 1)) &^ (1<<20 - 1) }

func limitText(v uint64) string {
	if v == Unlimited {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// hasCap reports whether capability bit is in /proc/self/status CapEff.
func (e *env) hasCap(bit uint) bool {
	status, err := e.read("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "CapEff:"); ok {
			v, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
			return err == nil && v&(1<<bit) != 0
		}
	}
	return false
}

// countSegmentFiles estimates the log files the broker keeps open by
// counting .log, .index and .timeindex files under the log dirs (through
// Root), visiting at most segmentCountMax entries.
func (e *env) countSegmentFiles() (int, string) {
	count, visited := 0, 0
	for _, dir := range e.opts.LogDirs {
		_ = filepath.WalkDir(e.path(dir), func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // missing or unreadable: nothing to count there
			}
			visited++
			if visited > segmentCountMax {
				return filepath.SkipAll
			}
			if !d.IsDir() {
				switch filepath.Ext(d.Name()) {
				case ".log", ".index", ".timeindex":
					count++
				}
			}
			return nil
		})
	}
	if visited > segmentCountMax {
		return count, "counted, walk stopped early"
	}
	return count, "counted in the log dirs"
}
