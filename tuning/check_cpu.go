package tuning

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// checkCPU grades ring.count against the CPUs, the clocksource, the
// frequency governor and clock synchronisation.
func (e *env) checkCPU() {
	e.checkRingCount()
	e.checkClocksource()
	e.checkGovernor()
	e.checkClockSync()
}

// onlineCPUs counts /sys/devices/system/cpu/online ("0-3,6,8-9").
func (e *env) onlineCPUs() (int, error) {
	s, err := e.read("/sys/devices/system/cpu/online")
	if err != nil {
		return 0, err
	}
	return countCPUList(s)
}

func countCPUList(s string) (int, error) {
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("cpu list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		n += b - a + 1
	}
	return n, nil
}

func (e *env) checkRingCount() {
	const id = "cpu.ring_count"
	why := "each ring is a pinned thread that owns its connections; more rings than usable CPUs makes rings share cores, so one ring's busy period adds latency to every connection of the other"
	online, onlineErr := e.onlineCPUs()
	usable, usableErr := e.sys.UsableCPUs()
	if usableErr != nil && onlineErr != nil {
		e.add(unreadable(id, "", usableErr, why))
		return
	}
	if usableErr != nil || usable <= 0 {
		usable = online
	}
	found := fmt.Sprintf("%d usable CPUs", usable)
	if onlineErr == nil && online != usable {
		found = fmt.Sprintf("%d usable of %d online CPUs (affinity or cgroup limit)", usable, online)
	}
	rings := e.opts.RingCount
	f := Finding{ID: id, Severity: OK, Recommended: fmt.Sprintf("ring.count <= %d (one per usable CPU)", usable), Why: why}
	switch {
	case rings <= 0:
		f.Found = fmt.Sprintf("ring.count auto = %d; %s", usable, found)
	case rings > usable:
		f.Severity = Warning
		f.Found = fmt.Sprintf("ring.count %d; %s", rings, found)
		f.Fix = fmt.Sprintf("sed -i 's/^ring.count=.*/ring.count=%d/' /etc/ringbroker/server.properties", usable)
	default:
		f.Found = fmt.Sprintf("ring.count %d; %s", rings, found)
	}
	e.add(f)
}

func (e *env) checkClocksource() {
	const id = "cpu.clocksource"
	const dir = "/sys/devices/system/clocksource/clocksource0/"
	why := "the broker timestamps every request and batch; tsc (arch_sys_counter on arm64) is read in the vDSO in nanoseconds, while hpet or acpi_pm make every clock read a slow trap"
	cur, err := e.read(dir + "current_clocksource")
	if err != nil {
		e.add(unreadable(id, "", err, why))
		return
	}
	avail, _ := e.read(dir + "available_clocksource")
	f := Finding{ID: id, Severity: OK, Found: cur, Recommended: "tsc (or arch_sys_counter on arm64)", Why: why}
	if avail != "" {
		f.Found += " (available: " + avail + ")"
	}
	fast := map[string]bool{"tsc": true, "arch_sys_counter": true}
	if !fast[cur] {
		// kvm-clock and Hyper-V's TSC page are vDSO-capable; they are fine
		// when the hypervisor offers no stable tsc.
		switch {
		case containsWord(avail, "tsc"):
			f.Severity = Warning
			f.Fix = "echo tsc > " + dir + "current_clocksource  # persist with clocksource=tsc on the kernel command line"
		case cur == "kvm-clock" || cur == "hyperv_clocksource_tsc_page" || cur == "xen":
			f.Recommended = "tsc when the hypervisor offers it; " + cur + " is acceptable"
		default:
			f.Severity = Warning
			f.Why += "; this host offers no faster clocksource, so expect timestamping to cost microseconds"
		}
	}
	e.add(f)
}

func containsWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if w == word {
			return true
		}
	}
	return false
}

func (e *env) checkGovernor() {
	const id = "cpu.governor"
	why := "a power-saving governor lowers the clock between bursts and takes milliseconds to raise it, which shows up as tail latency on the first requests of every burst"
	paths, _ := filepath.Glob(e.path("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor"))
	if len(paths) == 0 {
		e.add(Finding{ID: id, Severity: OK, Found: "not present (no cpufreq driver: a VM or a fixed-frequency CPU)", Recommended: "performance", Why: why})
		return
	}
	counts := map[string]int{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			counts["unreadable"]++
			continue
		}
		counts[strings.TrimSpace(string(b))]++
	}
	var parts []string
	for g, n := range counts {
		parts = append(parts, fmt.Sprintf("%s on %d CPUs", g, n))
	}
	sort.Strings(parts)
	f := Finding{ID: id, Severity: OK, Found: strings.Join(parts, ", "), Recommended: "performance on every CPU", Why: why}
	if len(counts) != 1 || counts["performance"] == 0 {
		f.Severity = Warning
		f.Fix = "for g in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor; do echo performance > $g; done"
	}
	e.add(f)
}

func (e *env) checkClockSync() {
	const id = "clock.sync"
	why := "Kafka record timestamps (LogAppendTime), time-based retention and segment roll, and ListOffsets by time all use the wall clock; an unsynchronised clock makes them wrong across brokers and restarts"
	synced, err := e.sys.ClockSynced()
	if err != nil {
		e.add(unreadable(id, "", err, why))
		return
	}
	f := Finding{ID: id, Severity: OK, Found: "synchronised", Recommended: "synchronised (NTP or PTP)", Why: why}
	if !synced {
		f.Severity = Warning
		f.Found = "not synchronised (adjtimex reports STA_UNSYNC)"
		f.Fix = "timedatectl set-ntp true  # or start chronyd"
	}
	e.add(f)
}
