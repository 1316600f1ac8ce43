// Package harness runs the benchmark scenarios of issue 7 against several
// brokers in one run, side by side: ringbrokerd on each I/O backend, the
// null broker (the client-bound ceiling) and any external brokers named in
// PEERS, plus a machine probe. It prints one table, writes results.json and
// PNG plots, and stops every process it started by PID.
//
// Because client and broker share a small, noisy machine, a figure only
// means something as a ratio against another target measured in the same
// run: the table gives each run's ratio to ringbroker's io_uring backend
// and to the null broker.
//
// Concurrency: Run is sequential (one target and one scenario at a time,
// so targets never compete for the CPU); only the clients inside a
// scenario run goroutines.
package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringbroker/ringbroker/bench/perf"
	"github.com/ringbroker/ringbroker/bench/probe"
	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// Peer is an external broker to measure beside ours (PEERS=name=host:port).
type Peer struct {
	Name string
	Addr string
}

// ParsePeers parses "name=host:port,name2=host:port".
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		name, addr, ok := strings.Cut(p, "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("PEERS entry %q: want name=host:port", p)
		}
		out = append(out, Peer{Name: name, Addr: addr})
	}
	return out, nil
}

// Options configures a harness run.
type Options struct {
	// Mode is tiny, quick (default) or full.
	Mode string
	// OutDir receives results.json and the plots (default bench-results).
	OutDir string
	// WorkDir holds the brokers' data dirs and logs (default: a new temp
	// dir, removed at the end).
	WorkDir string
	// Ringbrokerd is a ringbrokerd binary; empty builds ./cmd/ringbrokerd.
	// "-" leaves ringbrokerd out.
	Ringbrokerd string
	// Backends are the ringbrokerd io.backend values to start (default
	// uring and portable).
	Backends []string
	// NullBroker is the command starting the null broker, "{port}"
	// replaced by its port; empty builds bench/cmd/nullbroker.
	NullBroker []string
	// Peers are external brokers.
	Peers []Peer
	// Scenarios filters scenario ids (empty: all).
	Scenarios []string
	// SkipProbe leaves the machine probe out.
	SkipProbe bool
	// Repeat runs every scenario this many times (default 1), the targets
	// interleaved within each repeat, so ratios pair runs made side by
	// side and goals report min/median/max.
	Repeat int
	// Hogs starts this many CPU busy loops (separate processes) for the
	// measured runs, stopped by PID after them (HOGS=N).
	Hogs int
	// Variants are extra ringbrokerd targets with settings of their own
	// (BENCH_VARIANTS), measured beside the others in every scenario: a
	// setting's effect in one run.
	Variants []Variant
	// Trace starts ringbrokerd with its per-request trace on
	// (internal/reqtrace) and collects it around every run on it.
	Trace bool
	// JavaBin is an Apache Kafka bin directory (KAFKA_JAVA_BIN; Kafka
	// 3.9's tools): with it the java-50k scenario runs Kafka's
	// kafka-producer-perf-test.sh against ringbrokerd and the in-memory
	// kfake peer (issue 20's goal 1d). Empty: that scenario is left out.
	JavaBin string
	// Kfake is the command starting the kfake peer, "{port}" replaced by
	// its port; empty builds bench/cmd/kfakepeer.
	Kfake []string
	// Out receives the table; Progress a progress bar (nil: none) and
	// Log one line per run (nil: none).
	Out      io.Writer
	Progress io.Writer
	Log      io.Writer
}

// Run is one scenario on one target.
type Run struct {
	Scenario string `json:"scenario"`
	Target   string `json:"target"`
	// Status is "ok", "unsupported (error: ...)" when the target cannot
	// run the scenario, or "error: ..." when a run it supports failed.
	Status        string  `json:"status"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	HasLatency    bool    `json:"has_latency"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	P999Ms        float64 `json:"p999_ms"`
	// RatioUring and RatioNull are records/s divided by those of
	// ringbroker-uring and of the null broker in the same scenario (0:
	// not measured).
	RatioUring float64 `json:"ratio_to_ringbroker_uring"`
	RatioNull  float64 `json:"ratio_to_null"`
	Note       string  `json:"note,omitempty"`
	// Repeat is which repeat of the scenario this run was (0-based).
	Repeat int `json:"repeat"`
	// Trace is ringbrokerd's request trace over this run (Options.Trace).
	Trace *TraceSummary `json:"trace,omitempty"`
	// CPU over the run (0: not measured): the harness process's, which
	// is the clients' (they run in it), and the target process's (one
	// the harness started); Seconds is the run's wall time. On a machine
	// where client and broker share the CPUs, they bound a throughput
	// ratio (cpuBound).
	ClientCPUSec float64 `json:"client_cpu_sec,omitempty"`
	BrokerCPUSec float64 `json:"broker_cpu_sec,omitempty"`
	Seconds      float64 `json:"seconds,omitempty"`

	Produce *perf.ProduceResult `json:"produce,omitempty"`
	Consume *perf.ConsumeResult `json:"consume,omitempty"`
	E2E     *perf.E2EResult     `json:"e2e,omitempty"`
	Java    *JavaPerfResult     `json:"java,omitempty"`
}

// OK reports whether the run produced figures.
func (r Run) OK() bool { return r.Status == "ok" }

// Results is everything one harness run measured (results.json).
type Results struct {
	Mode      string            `json:"mode"`
	Started   time.Time         `json:"started"`
	Seconds   float64           `json:"seconds"`
	Machine   Machine           `json:"machine"`
	Probe     *probe.Result     `json:"probe,omitempty"`
	Scenarios map[string]string `json:"scenarios"`
	Targets   map[string]string `json:"targets"`
	Runs      []Run             `json:"runs"`
	Plots     []string          `json:"plots,omitempty"`
	Repeat    int               `json:"repeat"`
	Hogs      int               `json:"hogs"`
	Goals     []Goal            `json:"goals,omitempty"`
	// HostDrift: scenarios whose clients' CPU per record against the
	// null broker moved between repeats (hostDrift).
	HostDrift []string `json:"host_drift,omitempty"`
	// JavaSkipped says why the Java perf scenario did not run ("" when
	// it did or was not asked for).
	JavaSkipped string `json:"java_skipped,omitempty"`
}

// Execute runs the harness. The returned Results are also written to
// OutDir/results.json; an error means the harness itself failed (a target
// failing is a Run status, not an error).
func Execute(ctx context.Context, opts Options) (*Results, error) {
	started := time.Now()
	if opts.Mode == "" {
		opts.Mode = ModeQuick
	}
	all, err := scenarios(opts.Mode)
	if err != nil {
		return nil, err
	}
	var scs []scenario
	javaSkipped := ""
	for _, sc := range all {
		if sc.kind == kindJavaPerf && opts.JavaBin == "" {
			// Said even when the scenario filter leaves it out: goal
			// 1d's row then names what it needs.
			javaSkipped = "not run: set KAFKA_JAVA_BIN to Apache Kafka 3.9's bin directory"
		}
		if len(opts.Scenarios) != 0 && !contains(opts.Scenarios, sc.id) {
			continue
		}
		if sc.kind == kindJavaPerf {
			if opts.JavaBin == "" {
				javaSkipped = "not run: set KAFKA_JAVA_BIN to Apache Kafka 3.9's bin directory"
				continue
			}
			if why := javaBinUsable(opts.JavaBin); why != "" {
				javaSkipped = "not run: KAFKA_JAVA_BIN=" + opts.JavaBin + ": " + why
				continue
			}
		}
		scs = append(scs, sc)
	}
	cleanup, err := prepareRun(&opts.OutDir, &opts.WorkDir, &opts.Backends, "ringbench-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	logf := logfTo(opts.Log)

	opts.Repeat = max(opts.Repeat, 1)
	res := &Results{Mode: opts.Mode, Started: started, Scenarios: map[string]string{}, Targets: map[string]string{},
		Repeat: opts.Repeat, Hogs: opts.Hogs, JavaSkipped: javaSkipped}
	for _, sc := range scs {
		res.Scenarios[sc.id] = sc.title
	}
	res.Machine = describeMachine(opts.WorkDir)

	withJava := false
	for _, sc := range scs {
		withJava = withJava || sc.kind == kindJavaPerf
	}
	targets := prepareTargets(ctx, opts, withJava, logf)
	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()
	for _, t := range targets {
		desc := t.kind + " " + t.addr
		if t.startErr != nil {
			desc = t.kind + ": " + t.startErr.Error()
		}
		res.Targets[t.name] = desc
	}

	if !opts.SkipProbe {
		bar(opts.Progress, 0, 1, "machine probe")
		p := probe.Run(probeOptions(opts))
		res.Probe = &p
	}

	total := 0
	for _, sc := range scs {
		for _, t := range targets {
			if runsOn(sc, t) {
				total += opts.Repeat
			}
		}
	}
	hg, err := startHogs(opts.Hogs)
	defer hg.stop()
	if err != nil {
		return res, fmt.Errorf("starting %d CPU hogs: %w", opts.Hogs, err)
	}
	done := 0
	for _, sc := range scs {
		for rep := 0; rep < opts.Repeat; rep++ {
			for _, t := range targets {
				if !runsOn(sc, t) {
					continue
				}
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				bar(opts.Progress, done, total, sc.id+" on "+t.name)
				traced := opts.Trace && t.kind == kindRingbroker && t.proc != nil
				if traced { // start the run's interval: what came before is dropped
					if _, err := dumpTrace(opts.WorkDir, t); err != nil {
						logf("%s: request trace: %v", t.name, err)
						traced = false
					}
				}
				cpu := startCPU(t)
				r := runOne(ctx, sc, t, opts.JavaBin, &cpu)
				r.Repeat = rep
				if sc.kind != kindJavaPerf { // the Java tool's CPU is a child's
					cpu.finish(&r)
				}
				if traced {
					if d, err := dumpTrace(opts.WorkDir, t); err != nil {
						logf("%s: request trace: %v", t.name, err)
					} else {
						r.Trace = summarizeTrace(d)
					}
				}
				logf("%-10s %-26s %s", sc.id, t.name, summaryLine(r))
				res.Runs = append(res.Runs, r)
				done++
			}
		}
	}
	hg.stop()
	bar(opts.Progress, total, total, "done")
	if opts.Progress != nil {
		fmt.Fprintln(opts.Progress)
	}
	computeRatios(res.Runs)
	res.Goals = computeGoals(res)
	res.HostDrift = hostDrift(res)
	res.Seconds = time.Since(started).Seconds()

	plots, err := writePlots(opts.OutDir, res)
	if err != nil {
		logf("plots: %v", err)
	}
	res.Plots = plots
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(opts.OutDir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return res, err
	}
	if opts.Out != nil {
		PrintTable(opts.Out, res)
	}
	return res, nil
}

func probeOptions(opts Options) probe.Options {
	switch opts.Mode {
	case ModeTiny:
		return probe.Options{Dir: opts.WorkDir, Duration: 100 * time.Millisecond, Bytes: 8 << 20,
			SustainedBytes: 8 << 20, SustainedDuration: time.Second}
	case ModeFull:
		return probe.Options{Dir: opts.WorkDir, Duration: 3 * time.Second, Bytes: 1 << 30,
			SustainedBytes: 8 << 30, SustainedDuration: 30 * time.Second}
	}
	// The sustained write is 4 GiB (or 15 s): this host's virtual disk
	// grants a burst of 1-2 GB of synchronous writes, then about a quarter
	// of that rate (docs/BENCHMARKS.md, run N).
	return probe.Options{Dir: opts.WorkDir, Duration: time.Second, Bytes: 256 << 20,
		SustainedBytes: 4 << 30, SustainedDuration: 15 * time.Second}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// prepareTargets builds and starts the null broker and ringbrokerd (one
// per backend, plus the read+send variant for the catch-up scenario) and
// adds the peers. A target that cannot start is kept with its error.
func prepareTargets(ctx context.Context, opts Options, withJava bool, logf func(string, ...any)) []*target {
	binDir := filepath.Join(opts.WorkDir, "bin")
	os.MkdirAll(binDir, 0o755)
	_, rootErr := daemontest.ModuleRoot()

	var targets []*target
	null := &target{name: TargetNull, kind: kindNull}
	nullCmd := opts.NullBroker
	if len(nullCmd) == 0 {
		bin := filepath.Join(binDir, "nullbroker")
		if rootErr != nil {
			null.startErr = rootErr
		} else if err := daemontest.Build(ctx, "./bench/cmd/nullbroker", bin); err != nil {
			null.startErr = err
		}
		nullCmd = []string{bin, "--listen", "127.0.0.1:{port}"}
	}
	if null.startErr == nil {
		null.startErr = startProcess(null, nullCmd, opts.WorkDir, nil)
	}
	targets = append(targets, null)

	if opts.Ringbrokerd != "-" {
		bin := opts.Ringbrokerd
		var buildErr error
		if bin == "" {
			bin = filepath.Join(binDir, "ringbrokerd")
			if rootErr != nil {
				buildErr = rootErr
			} else {
				buildErr = daemontest.Build(ctx, daemontest.DaemonPackage, bin)
			}
		}
		type variant struct {
			name, backend string
			extra         []string
			only          []string
		}
		var variants []variant
		for _, b := range opts.Backends {
			name := "ringbroker-" + b
			variants = append(variants, variant{name: name, backend: b})
			if b == "uring" {
				variants = append(variants, variant{name: TargetRingbrokerReadCpy, backend: b,
					extra: []string{"--set", "fetch.zero.copy=false"}, only: []string{"catchup"}})
			}
		}
		for _, v := range opts.Variants {
			var extra []string
			for _, s := range v.Sets {
				extra = append(extra, "--set", s)
			}
			variants = append(variants, variant{name: "ringbroker-" + v.Name, backend: v.Backend, extra: extra})
		}
		names := map[string]bool{TargetNull: true}
		for _, v := range variants {
			t := &target{name: v.name, kind: kindRingbroker, only: v.only}
			dup := names[v.name]
			names[v.name] = true
			if dup { // BENCH_VARIANTS named one already taken: its data dir too
				t.startErr = fmt.Errorf("target name %s is taken: name the variant differently", v.name)
			} else if buildErr != nil {
				t.startErr = buildErr
			} else {
				dataDir := filepath.Join(opts.WorkDir, v.name+"-data")
				os.MkdirAll(dataDir, 0o755)
				argv := append([]string{bin,
					"--set", "listeners=PLAINTEXT://127.0.0.1:{port}",
					"--set", "log.dirs=" + dataDir,
					"--set", "io.backend=" + v.backend,
					"--set", "metrics.listener=",
				}, v.extra...)
				var env []string
				if opts.Trace {
					env = traceEnv(opts.WorkDir, t)
				}
				t.startErr = startProcess(t, argv, opts.WorkDir, env)
			}
			if t.startErr != nil {
				logf("%s: not started: %v", t.name, t.startErr)
			}
			targets = append(targets, t)
		}
	}
	if withJava {
		t := startKfake(ctx, opts.Kfake, binDir, opts.WorkDir, rootErr)
		if t.startErr != nil {
			logf("%s: not started: %v", t.name, t.startErr)
		}
		targets = append(targets, t)
	}
	for _, p := range opts.Peers {
		t := &target{name: p.Name, kind: kindPeer, addr: p.Addr}
		if err := daemontest.ProbeApiVersions(p.Addr, 5*time.Second); err != nil {
			t.startErr = fmt.Errorf("peer %s unreachable: %w", p.Addr, err)
		}
		targets = append(targets, t)
	}
	return targets
}

// runsOn says whether scenario sc is measured on target t: the target's
// own restriction, and the Java tool runs on ringbrokerd, the kfake peer
// and PEERS, not on the null broker (issue 20 compares it with kfake).
func runsOn(sc scenario, t *target) bool {
	if sc.kind == kindJavaPerf && t.kind == kindNull {
		return false
	}
	return t.runs(sc.id)
}

// runOne measures one scenario on one target, never failing the harness:
// every problem becomes the run's status.
// runOne runs sc on t. cpu is the CPU mark the caller took before it; a
// scenario with a preparation that is not its measure (catch-up's preload)
// takes it again after the preparation.
func runOne(ctx context.Context, sc scenario, t *target, javaBin string, cpu *cpuMark) Run {
	r := Run{Scenario: sc.id, Target: t.name}
	if t.startErr != nil {
		r.Status = unsupported(t.startErr)
		return r
	}
	if t.kind == kindNull && sc.kind == kindE2E {
		r.Status = unsupported(errors.New("the null broker's Fetch serves copies of one batch, not the records sent, so end-to-end latency cannot be read from it"))
		return r
	}
	if t.kind == kindNull && sc.txnDuration > 0 {
		r.Status = unsupported(errors.New("the null broker has no transactions"))
		return r
	}
	// Every run is bounded: its own time bound plus set-up and drain.
	ctx, cancel := context.WithTimeout(ctx, 2*sc.seconds+90*time.Second)
	defer cancel()

	if sc.kind == kindJavaPerf {
		runJavaPerf(ctx, sc, t, javaBin, &r)
		return r
	}

	topic := fmt.Sprintf("bench-%s-%d", sc.id, time.Now().UnixNano())
	if err := createTopic(ctx, t.addr, topic, sc); err != nil {
		r.Status = unsupported(fmt.Errorf("CreateTopics: %w", err))
		return r
	}
	props := map[string]string{"bootstrap.servers": t.addr}
	for k, v := range sc.props {
		props[k] = v
	}
	if sc.txnDuration > 0 {
		props["transactional.id"] = topic
	}
	settings, err := perf.ParseProducerProps(props)
	if err != nil {
		r.Status = "error: " + err.Error()
		return r
	}

	switch sc.kind {
	case kindProduce:
		pr, err := perf.RunProduce(ctx, perf.ProduceConfig{
			Topic: topic, NumRecords: sc.records, RecordSize: sc.recordSize, Throughput: -1,
			Producer: settings, MaxDuration: sc.seconds, TransactionDuration: sc.txnDuration,
		})
		r.Produce = &pr
		if err != nil {
			r.Status = unsupported(err)
			return r
		}
		r.fill(pr.Summary, true)
		if pr.Failed > 0 {
			r.Note = fmt.Sprintf("%d sends failed: %s", pr.Failed, pr.FirstError)
		}
	case kindConsume:
		n := sc.preloadBytes / int64(sc.recordSize)
		pr, err := perf.RunProduce(ctx, perf.ProduceConfig{
			Topic: topic, NumRecords: n, RecordSize: sc.recordSize, Throughput: -1,
			Producer: settings, MaxDuration: 4 * sc.seconds, TransactionDuration: sc.txnDuration,
		})
		if err != nil {
			r.Status = unsupported(fmt.Errorf("preload: %w", err))
			return r
		}
		*cpu = startCPU(t)
		cr, err := perf.RunConsume(ctx, perf.ConsumeConfig{
			Bootstrap: []string{t.addr}, Topic: topic, Messages: pr.Records,
			FetchSize: 4 << 20, Timeout: sc.idleTimeout, MaxDuration: sc.seconds, ReadCommitted: sc.readCommitted,
		})
		r.Consume = &cr
		if err != nil {
			r.Status = unsupported(err)
			return r
		}
		// Every target must hand the consumer the records produced, of
		// the size produced: a ratio between targets is only a ratio
		// of speeds when they moved the same bytes (the null broker
		// serves copies of a template batch, not the log).
		if want := cr.Records * int64(sc.recordSize); cr.Bytes != want {
			r.Status = fmt.Sprintf("error: read %d bytes in %d records, want %d (%d B each)", cr.Bytes, cr.Records, want, sc.recordSize)
			return r
		}
		r.Status = "ok"
		r.RecordsPerSec, r.MBPerSec = cr.RecordsPerSec, cr.MBPerSec
		if cr.Records < pr.Records {
			r.Note = fmt.Sprintf("read %d of %d records within the bounds", cr.Records, pr.Records)
		}
	case kindE2E:
		er, err := perf.RunE2E(ctx, perf.E2EConfig{
			Bootstrap: []string{t.addr}, Topic: topic, RecordSize: sc.recordSize,
			Rate: sc.rateMiB * (1 << 20) / float64(sc.recordSize), Duration: sc.seconds, Producer: settings,
		})
		r.E2E = &er
		if err != nil {
			r.Status = unsupported(err)
			return r
		}
		r.fill(er.Summary, true)
		if er.Missing > 0 {
			r.Note = fmt.Sprintf("%d acknowledged records not consumed", er.Missing)
		}
	}
	return r
}

func (r *Run) fill(s perf.Summary, latency bool) {
	r.Status = "ok"
	r.RecordsPerSec, r.MBPerSec = s.RecordsPerSec, s.MBPerSec
	r.HasLatency = latency
	r.P50Ms, r.P99Ms, r.P999Ms = s.P50Ms, s.P99Ms, s.P999Ms
}

// unsupported is the status of a run the target could not do.
func unsupported(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return "unsupported (error: " + msg + ")"
}

// createTopic creates the scenario's topic with its partitions and
// configs. A broker without CreateTopics still runs single-partition
// scenarios without topic configs (auto-creation); others are unsupported.
func createTopic(ctx context.Context, addr, topic string, sc scenario) error {
	err := perf.CreateTopic(ctx, []string{addr}, topic, sc.partitions, sc.topicConfigs, false)
	if err != nil && sc.partitions == 1 && len(sc.topicConfigs) == 0 {
		return nil // fall back to auto-creation
	}
	return err
}

func summaryLine(r Run) string {
	if !r.OK() {
		return r.Status
	}
	s := fmt.Sprintf("%.0f records/s, %.2f MB/s", r.RecordsPerSec, r.MBPerSec)
	if r.HasLatency {
		s += fmt.Sprintf(", p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms", r.P50Ms, r.P99Ms, r.P999Ms)
	}
	return s
}

// computeRatios fills each run's ratio to ringbroker-uring and to the null
// broker in the same scenario.
func computeRatios(runs []Run) {
	base := func(scenarioID, target string, repeat int) float64 {
		for _, r := range runs {
			if r.Scenario == scenarioID && r.Target == target && r.Repeat == repeat && r.OK() {
				return r.RecordsPerSec
			}
		}
		return 0
	}
	for i := range runs {
		r := &runs[i]
		if !r.OK() {
			continue
		}
		if b := base(r.Scenario, TargetRingbrokerUring, r.Repeat); b > 0 {
			r.RatioUring = r.RecordsPerSec / b
		}
		if b := base(r.Scenario, TargetNull, r.Repeat); b > 0 {
			r.RatioNull = r.RecordsPerSec / b
		}
	}
}
