package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"
)

// Machine describes where the run happened.
type Machine struct {
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	Commit     string `json:"commit"`
	DataFS     string `json:"data_fs"`
	MemTotalMB int64  `json:"mem_total_mb"`
}

func describeMachine(dataDir string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		m.MemTotalMB = kb / 1024
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	var st unix.Statfs_t
	if unix.Statfs(dataDir, &st) == nil {
		switch st.Type {
		case 0xEF53:
			m.DataFS = "ext4"
		case 0x58465342:
			m.DataFS = "xfs"
		case 0x01021994:
			m.DataFS = "tmpfs"
		case 0x9123683E:
			m.DataFS = "btrfs"
		default:
			m.DataFS = fmt.Sprintf("0x%x", st.Type)
		}
	}
	return m
}

// PrintTable writes the results table and, beside it, the machine probe.
func PrintTable(w io.Writer, res *Results) {
	fmt.Fprintf(w, "ringbench harness, mode %s, %.0f s — %s, %d CPUs, kernel %s, %s, data on %s, commit %s\n\n",
		res.Mode, res.Seconds, res.Machine.CPU, res.Machine.CPUs, res.Machine.Kernel, res.Machine.Go,
		res.Machine.DataFS, res.Machine.Commit)
	if res.Hogs > 0 {
		fmt.Fprintf(w, "%d CPU hogs (busy loops) ran beside every measured run\n\n", res.Hogs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\trecords/s\tMB/s\tp50 ms\tp99 ms\tp99.9 ms\t×uring\t×null\t")
	last := ""
	for _, r := range res.Runs {
		sc := r.Scenario
		if sc == last {
			sc = ""
		}
		last = r.Scenario
		target := r.Target
		if res.Repeat > 1 {
			target = fmt.Sprintf("%s #%d", r.Target, r.Repeat+1)
		}
		if !r.OK() {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t\n", sc, target)
			continue
		}
		lat := "-\t-\t-"
		if r.HasLatency {
			lat = fmt.Sprintf("%.2f\t%.2f\t%.2f", r.P50Ms, r.P99Ms, r.P999Ms)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f\t%s\t%s\t%s\t\n", sc, target, r.RecordsPerSec, r.MBPerSec, lat,
			ratio(r.RatioUring), ratio(r.RatioNull))
	}
	tw.Flush()

	var notes []string
	for _, r := range res.Runs {
		if !r.OK() {
			notes = append(notes, fmt.Sprintf("  %s on %s: %s", r.Scenario, r.Target, r.Status))
		} else if r.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s on %s: %s", r.Scenario, r.Target, r.Note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nnot measured / notes:")
		for _, n := range dedupe(notes) {
			fmt.Fprintln(w, n)
		}
	}
	if p := res.Probe; p != nil {
		fmt.Fprintln(w, "\nmachine probe (GB/s = 10^9 B/s; MB/s above are MiB/s as in the Kafka tools):")
		fmt.Fprintf(w, "  loopback TCP, 1 connection, 1 MiB writes   %6.2f GB/s\n", p.LoopbackGBps)
		fmt.Fprintf(w, "  sequential write, final fdatasync          %6.2f GB/s\n", p.WriteBufferedGBps)
		fmt.Fprintf(w, "  sequential write, fdatasync every 1 MiB    %6.2f GB/s\n", p.WriteSyncEachMBGBps)
		if p.SustainedWrittenBytes > 0 {
			fmt.Fprintf(w, "    the same, sustained (second half of %.1f GiB) %6.2f GB/s\n", float64(p.SustainedWrittenBytes)/(1<<30), p.WriteSyncSustainedGBps)
		}
		fmt.Fprintf(w, "  cached file → socket: splice               %6.2f GB/s\n", p.SpliceGBps)
		fmt.Fprintf(w, "  cached file → socket: sendfile             %6.2f GB/s\n", p.SendfileGBps)
		fmt.Fprintf(w, "  cached file → socket: pread+write          %6.2f GB/s\n", p.ReadWriteGBps)
		for k, v := range p.Errors {
			fmt.Fprintf(w, "  %s: error: %s\n", k, v)
		}
	}
	printGoals(w, res)
	printTraces(w, res.Runs)
	if len(res.Plots) > 0 {
		fmt.Fprintf(w, "\nplots: %s\n", strings.Join(res.Plots, ", "))
	}
}

func ratio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// isTerminal reports whether f is a terminal (progress bars only there).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// ProgressWriter returns f if it is a terminal, else nil (no bar in logs).
func ProgressWriter(f *os.File) io.Writer {
	if isTerminal(f) {
		return f
	}
	return nil
}

// bar redraws a one-line progress bar.
func bar(w io.Writer, done, total int, what string) {
	if w == nil {
		return
	}
	const width = 30
	filled := 0
	if total > 0 {
		filled = done * width / total
	}
	fmt.Fprintf(w, "\r\033[K[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total, what)
}
