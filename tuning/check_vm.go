package tuning

import (
	"fmt"
	"strconv"
	"strings"
)

// Recommended virtual memory settings. The reasons are in the findings.
const (
	swappinessMax          = 1
	dirtyBackgroundMax     = 10
	dirtyBackgroundSuggest = 5
	dirtyRatioMin          = 20
	dirtyRatioMax          = 80
	dirtyRatioSuggest      = 40
	maxMapCountMin         = 262144
	memPerCPUMin           = 1 << 30
)

// checkVM grades swappiness, writeback ratios, the mapping limit,
// transparent hugepages and memory per CPU.
func (e *env) checkVM() {
	e.checkSwappiness()
	e.checkDirty()
	e.checkMaxMapCount()
	e.checkTHP()
	e.checkMemory()
}

func (e *env) checkSwappiness() {
	const id = "vm.swappiness"
	why := "the page cache holds the log tail consumers read; at the default 60 the kernel swaps out the broker's heap and buffers to grow that cache, and touching swapped memory on the data path stalls requests for milliseconds. 1 keeps swap as a last resort before the OOM killer"
	v, err := e.sysctlInt(id)
	if err != nil {
		e.add(unreadable(id, "", err, why))
		return
	}
	f := Finding{ID: id, Severity: OK, Found: strconv.FormatInt(v, 10), Recommended: "<= 1", Why: why}
	if v > swappinessMax {
		f.Severity = Warning
		f.Fix = sysctlFix(id, "1")
	}
	e.add(f)
}

func (e *env) checkDirty() {
	const bgID, ratioID = "vm.dirty_background_ratio", "vm.dirty_ratio"
	bgWhy := "background writeback should start early and run in small steps, so the broker's fdatasync of a group finds little left to flush and its latency stays low"
	ratioWhy := "appends block in the kernel once this share of memory is dirty; too low throttles producers during bursts, too high lets minutes of data pile up and then stalls every writer at once"

	bg, bgErr := e.sysctlInt(bgID)
	if bgErr != nil {
		e.add(unreadable(bgID, "", bgErr, bgWhy))
	} else {
		f := Finding{ID: bgID, Severity: OK, Found: strconv.FormatInt(bg, 10),
			Recommended: fmt.Sprintf("1..%d (we suggest %d)", dirtyBackgroundMax, dirtyBackgroundSuggest), Why: bgWhy}
		if bg == 0 {
			// The kernel reads 0 here when dirty_background_bytes is set instead.
			if b, err := e.sysctlInt("vm.dirty_background_bytes"); err == nil && b > 0 {
				f.Found = fmt.Sprintf("0 (vm.dirty_background_bytes = %s)", bytesText(uint64(b)))
			} else {
				f.Severity = Warning
				f.Why = "0 with no dirty_background_bytes starts background writeback at once for every dirty page, which turns append batching into a stream of small writes"
				f.Fix = sysctlFix(bgID, strconv.Itoa(dirtyBackgroundSuggest))
			}
		} else if bg > dirtyBackgroundMax {
			f.Severity = Warning
			f.Fix = sysctlFix(bgID, strconv.Itoa(dirtyBackgroundSuggest))
		}
		e.add(f)
	}

	ratio, err := e.sysctlInt(ratioID)
	if err != nil {
		e.add(unreadable(ratioID, "", err, ratioWhy))
		return
	}
	f := Finding{ID: ratioID, Severity: OK, Found: strconv.FormatInt(ratio, 10),
		Recommended: fmt.Sprintf("%d..%d and above dirty_background_ratio (we suggest %d)", dirtyRatioMin, dirtyRatioMax, dirtyRatioSuggest),
		Why:         ratioWhy}
	switch {
	case ratio == 0:
		if b, err := e.sysctlInt("vm.dirty_bytes"); err == nil && b > 0 {
			f.Found = fmt.Sprintf("0 (vm.dirty_bytes = %s)", bytesText(uint64(b)))
			break
		}
		f.Severity = Warning
		f.Fix = sysctlFix(ratioID, strconv.Itoa(dirtyRatioSuggest))
	case ratio < dirtyRatioMin || ratio > dirtyRatioMax:
		f.Severity = Warning
		f.Fix = sysctlFix(ratioID, strconv.Itoa(dirtyRatioSuggest))
	case bgErr == nil && bg > 0 && bg >= ratio:
		f.Severity = Warning
		f.Found = fmt.Sprintf("%d (not above dirty_background_ratio %d)", ratio, bg)
		f.Why = "when dirty_ratio is not above dirty_background_ratio, writers are throttled before background writeback even starts"
		f.Fix = sysctlFix(ratioID, strconv.Itoa(dirtyRatioSuggest))
	}
	e.add(f)
}

func (e *env) checkMaxMapCount() {
	const id = "vm.max_map_count"
	why := "every segment index the broker maps, each off-heap buffer ring and each Go heap arena is a separate mapping; with thousands of partitions the default 65530 makes mmap fail with ENOMEM, which takes the broker down"
	v, err := e.sysctlInt(id)
	if err != nil {
		e.add(unreadable(id, "", err, why))
		return
	}
	f := Finding{ID: id, Severity: OK, Found: strconv.FormatInt(v, 10), Recommended: fmt.Sprintf(">= %d", maxMapCountMin), Why: why}
	if v < maxMapCountMin {
		f.Severity = Warning
		f.Fix = sysctlFix(id, strconv.Itoa(maxMapCountMin))
	}
	e.add(f)
}

// checkTHP grades transparent hugepages. Our recommendation differs from
// Redpanda's (which turns THP on for Seastar's own allocator): the Go
// runtime does not manage huge pages for its heap, so "always" only buys
// khugepaged scans, RSS bloat when the scavenger returns memory, and
// compaction stalls; "madvise" lets the broker opt its large off-heap
// buffers in.
func (e *env) checkTHP() {
	const base = "/sys/kernel/mm/transparent_hugepage/"
	enabled, err := e.read(base + "enabled")
	whyEnabled := "with THP always, khugepaged scans and collapses the Go heap, which bloats RSS when the Go scavenger returns memory and adds compaction stalls; madvise lets the broker ask for huge pages only for its large off-heap buffers"
	if err != nil {
		e.add(Finding{ID: "vm.transparent_hugepages", Severity: OK, Found: "not present (kernel without THP)",
			Recommended: "madvise or never", Why: whyEnabled})
	} else {
		active := activeChoice(enabled)
		f := Finding{ID: "vm.transparent_hugepages", Severity: OK, Found: active, Recommended: "madvise (never is fine too)", Why: whyEnabled}
		if active == "always" {
			f.Severity = Warning
			f.Fix = "echo madvise > " + base + "enabled  # persist with transparent_hugepage=madvise on the kernel command line"
		}
		e.add(f)
	}
	defrag, err := e.read(base + "defrag")
	if err != nil {
		return
	}
	active := activeChoice(defrag)
	f := Finding{ID: "vm.transparent_hugepages_defrag", Severity: OK, Found: active,
		Recommended: "madvise, defer+madvise, defer or never",
		Why:         "defrag=always makes a page fault wait for memory compaction whenever no huge page is free, a multi-millisecond stall on whichever request touched new memory"}
	if active == "always" {
		f.Severity = Warning
		f.Fix = "echo defer+madvise > " + base + "defrag"
	}
	e.add(f)
}

// checkMemory grades memory per usable CPU: each ring keeps buffer rings
// and in-flight requests, and the rest is page cache for consumers.
func (e *env) checkMemory() {
	const id = "mem.per_cpu"
	why := "each ring pins receive buffers and keeps in-flight requests, and consumers reading recent data are served from the page cache; below 1 GiB per CPU the page cache cannot hold the log tail and fetches go to disk"
	info, err := e.read("/proc/meminfo")
	if err != nil {
		e.add(unreadable(id, "", err, why))
		return
	}
	var totalKiB uint64
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			totalKiB, _ = strconv.ParseUint(strings.Fields(rest)[0], 10, 64)
		}
	}
	if totalKiB == 0 {
		e.add(unreadable(id, "", fmt.Errorf("no MemTotal in /proc/meminfo"), why))
		return
	}
	cpus := e.usableCPUs()
	per := totalKiB * 1024 / uint64(cpus)
	f := Finding{ID: id, Severity: OK, Found: fmt.Sprintf("%s per CPU (%s, %d CPUs)", bytesText(per), bytesText(totalKiB*1024), cpus),
		Recommended: ">= " + bytesText(memPerCPUMin) + " per CPU", Why: why}
	if per < memPerCPUMin {
		f.Severity = Warning // no command adds memory, so no Fix
	}
	e.add(f)
}
