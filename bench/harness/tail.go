package harness

// Issue 20's instruments in the harness: the per-request trace of
// ringbrokerd (internal/reqtrace) collected around each run, and CPU hogs
// that load the machine for the run (HOGS=N).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ringbroker/ringbroker/internal/reqtrace"
)

// traceFile is where target t dumps its request trace (RINGBROKER_REQTRACE).
func traceFile(workDir string, t *target) string {
	return filepath.Join(workDir, t.name+".reqtrace.json")
}

// traceEnv is the environment that turns the trace on for target t.
func traceEnv(workDir string, t *target) []string {
	return []string{reqtrace.EnvFile + "=" + traceFile(workDir, t)}
}

// dumpTrace asks target t for its trace since the last dump (SIGUSR1 to its
// PID) and reads it. The daemon writes the file by rename, so the new file
// appearing means the dump is complete. Waits at most 10 s.
func dumpTrace(workDir string, t *target) (*reqtrace.Dump, error) {
	if t.proc == nil {
		return nil, errors.New("not started by the harness")
	}
	path := traceFile(workDir, t)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := syscall.Kill(t.proc.PID, syscall.SIGUSR1); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			var d reqtrace.Dump
			if err := json.Unmarshal(b, &d); err != nil {
				return nil, fmt.Errorf("trace dump %s: %w", path, err)
			}
			return &d, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no trace dump at %s 10 s after SIGUSR1", path)
		}
		time.Sleep(10 * time.Millisecond) // polling a file the daemon renames into place
	}
}

// TraceSummary is what results.json keeps of a run's trace: the dump
// without the full list of slow timelines (the first few stay).
type TraceSummary struct {
	reqtrace.Dump
}

func summarizeTrace(d *reqtrace.Dump) *TraceSummary {
	const keep = 8
	for _, k := range []*reqtrace.KindDump{&d.Produce, &d.Fetch} {
		if len(k.Slowest) > keep {
			k.Slowest = k.Slowest[:keep]
		}
	}
	return &TraceSummary{*d}
}

// printTraces writes, for every traced run, the requests' time in the
// broker and where the slowest of them spent it.
func printTraces(w io.Writer, runs []Run) {
	any := false
	for _, r := range runs {
		if r.Trace != nil {
			any = true
			break
		}
	}
	if !any {
		return
	}
	fmt.Fprintln(w, "\nrequest trace (ringbrokerd: receive → response sent, µs; a stage's figure is its time since the previous stage reached;")
	fmt.Fprintln(w, "a Fetch woken from a long poll is ranked by its time from the wake-up, not by its wait for data):")
	for _, r := range runs {
		tr := r.Trace
		if tr == nil {
			continue
		}
		fmt.Fprintf(w, "  %s on %s (run %d):\n", r.Scenario, r.Target, r.Repeat+1)
		if e := r.E2E; e != nil {
			pr := e.ProduceRequests
			fmt.Fprintf(w, "    client (ms): records end to end p50 %.2f p99 %.2f p99.9 %.2f; acks p50 %.2f p99 %.2f p99.9 %.2f;\n",
				e.P50Ms, e.P99Ms, e.P999Ms, e.Ack.P50Ms, e.Ack.P99Ms, e.Ack.P999Ms)
			fmt.Fprintf(w, "      %d Produce requests: waited to be written p50 %.2f p99 %.2f p99.9 %.2f, round trip p50 %.2f p99 %.2f p99.9 %.2f max %.2f\n",
				pr.Requests, pr.WaitP50Ms, pr.WaitP99Ms, pr.WaitP999, pr.RTTP50Ms, pr.RTTP99Ms, pr.RTTP999Ms, pr.RTTMaxMs)
		}
		printKind(w, "Produce", &tr.Produce)
		printKind(w, "Fetch", &tr.Fetch)
		rt := tr.Runtime
		fmt.Fprintf(w, "    Go runtime over the run: %d GC cycles, %d stop-the-world pauses (p99 %.0f µs, max %.0f µs); goroutine scheduling latency p99 %.0f µs, p99.9 %.0f µs, max %.0f µs\n",
			rt.GCCycles, rt.GCPauses, rt.GCPauseP99Us, rt.GCPauseMaxUs, rt.SchedLatP99Us, rt.SchedLatP999Us, rt.SchedLatMaxUs)
	}
}

func printKind(w io.Writer, name string, k *reqtrace.KindDump) {
	if k.Requests == 0 {
		return
	}
	fmt.Fprintf(w, "    %s: %d requests, total p50 %.0f p99 %.0f p99.9 %.0f max %.0f; ranked p50 %.0f p99 %.0f p99.9 %.0f max %.0f\n",
		name, k.Requests, k.Total.P50Us, k.Total.P99Us, k.Total.P999Us, k.Total.MaxUs,
		k.Ranked.P50Us, k.Ranked.P99Us, k.Ranked.P999Us, k.Ranked.MaxUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "      stage\tp50\tp99\tp99.9\tmax\tshare of slowest\tlargest in\t")
	for _, s := range k.Stages {
		if s.Count == 0 {
			continue
		}
		fmt.Fprintf(tw, "      %s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f%%\t%d of %d\t\n", s.Stage, s.P50Us, s.P99Us, s.P999Us, s.MaxUs,
			100*k.SlowestShare[s.Stage], k.SlowestTop[s.Stage], sumTop(k.SlowestTop))
	}
	tw.Flush()
}

func sumTop(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Hogs: HOGS=N starts N busy loops (this binary re-executed with
// EnvHogChild set) for the measured runs and stops them by PID after. Each
// hog also stops by itself after its time bound or when its parent is gone.
const (
	EnvHogChild = "RINGBENCH_HOG_CHILD" // set in a hog's environment: seconds it may run
	hogMaxTime  = 30 * time.Minute
)

// RunHogIfChild turns this process into a CPU hog when it was started as
// one (EnvHogChild set) and never returns then. Commands that start hogs
// call it first thing in main.
func RunHogIfChild() {
	v := os.Getenv(EnvHogChild)
	if v == "" {
		return
	}
	secs, err := strconv.Atoi(v)
	if err != nil || secs <= 0 {
		os.Exit(2)
	}
	parent := os.Getppid()
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	x := uint64(1)
	for time.Now().Before(deadline) && os.Getppid() == parent {
		for i := 0; i < 1_000_000; i++ { // ~1 ms of pure CPU between checks
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 42 { // keep x alive
		fmt.Println(x)
	}
	os.Exit(0)
}

// hogs are the running busy loops.
type hogs struct{ procs []*exec.Cmd }

// startHogs starts n hogs (this executable re-executed).
func startHogs(n int) (*hogs, error) {
	h := &hogs{}
	if n <= 0 {
		return h, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return h, err
	}
	for i := 0; i < n; i++ {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", EnvHogChild, int(hogMaxTime.Seconds())))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			h.stop()
			return h, err
		}
		h.procs = append(h.procs, cmd)
	}
	return h, nil
}

// stop kills every hog by its PID and reaps it.
func (h *hogs) stop() {
	for _, c := range h.procs {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	h.procs = nil
}

// median, minimum and maximum of xs (0s when empty).
func spread(xs []float64) (lo, med, hi float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

func fmtSpread(xs []float64, format string) string {
	lo, med, hi := spread(xs)
	if len(xs) == 1 {
		return fmt.Sprintf(format, med)
	}
	return fmt.Sprintf(format+" ["+format+"-"+format+"]", med, lo, hi)
}

// joinNonEmpty joins the non-empty parts.
func joinNonEmpty(parts []string, sep string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// Variant is an extra ringbrokerd target: a backend and settings.
type Variant struct {
	Name    string
	Backend string
	Sets    []string // key=value
}

// ParseVariants parses BENCH_VARIANTS: "name=backend:key=value,key=value;..."
// (for example "uring-1ring=uring:ring.count=1").
func ParseVariants(s string) ([]Variant, error) {
	var out []Variant
	for _, part := range strings.Split(s, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, rest, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("BENCH_VARIANTS entry %q: want name=backend:key=value[,key=value]", part)
		}
		backend, sets, _ := strings.Cut(rest, ":")
		if backend != "uring" && backend != "portable" {
			return nil, fmt.Errorf("BENCH_VARIANTS entry %q: backend %q is not uring or portable", part, backend)
		}
		v := Variant{Name: name, Backend: backend}
		for _, kv := range SplitList(sets) {
			if !strings.Contains(kv, "=") {
				return nil, fmt.Errorf("BENCH_VARIANTS entry %q: setting %q is not key=value", part, kv)
			}
			v.Sets = append(v.Sets, kv)
		}
		out = append(out, v)
	}
	return out, nil
}

// cpuMark is the CPU times at the start of a run (startCPU).
type cpuMark struct {
	t              *target
	self, broker   time.Duration
	selfOK, brokOK bool
	at             time.Time
}

// startCPU notes the harness's own CPU time (the clients run in it) and
// the target process's, when the harness started it.
func startCPU(t *target) cpuMark {
	m := cpuMark{t: t, at: time.Now()}
	m.self, m.selfOK = selfCPU()
	if t.proc != nil {
		d, err := t.proc.CPUTime()
		m.broker, m.brokOK = d, err == nil
	}
	return m
}

// finish stores the CPU used since startCPU in r.
func (m cpuMark) finish(r *Run) {
	r.Seconds = time.Since(m.at).Seconds()
	if s, ok := selfCPU(); ok && m.selfOK {
		r.ClientCPUSec = (s - m.self).Seconds()
	}
	if m.brokOK {
		if d, err := m.t.proc.CPUTime(); err == nil {
			r.BrokerCPUSec = (d - m.broker).Seconds()
		}
	}
}

func selfCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
