package harness

import (
	"strings"
	"testing"

	"github.com/ringbroker/ringbroker/bench/perf"
	"github.com/ringbroker/ringbroker/bench/probe"
)

// TestGoal4SustainedRate: goal 4 is judged against the probe's short
// fdatasync-every-MiB write, as the issue defines it, and its figures add
// the ratio to the probe's sustained rate when the probe measured one.
func TestGoal4SustainedRate(t *testing.T) {
	res := Results{
		Probe: &probe.Result{WriteSyncEachMBGBps: 1.5, WriteSyncSustainedGBps: 0.35, SustainedWrittenBytes: 4 << 30},
		Runs: []Run{
			{Scenario: "automq-64k", Target: TargetRingbrokerUring, Repeat: 0, Status: "ok", MBPerSec: 320},
			{Scenario: "automq-64k", Target: TargetRingbrokerUring, Repeat: 1, Status: "ok", MBPerSec: 300},
		},
	}
	var g4 *Goal
	goals := computeGoals(&res)
	for i := range goals {
		if goals[i].ID == "4" {
			g4 = &goals[i]
		}
	}
	if g4 == nil {
		t.Fatal("no goal 4")
	}
	if g4.Status != "SHORT" {
		t.Errorf("status %s, want SHORT (320 MiB/s against a 1.5 GB/s probe)", g4.Status)
	}
	// 0.35 GB/s is 333.79 MiB/s: 320 and 300 MiB/s are 0.96 and 0.90 of it (fmtSpread: the upper median of two).
	if want := "against the probe's sustained rate (333.79 MiB/s): 0.96 [0.90-0.96]"; !strings.Contains(g4.Figures, want) {
		t.Errorf("figures %q lack %q", g4.Figures, want)
	}

	res.Probe.WriteSyncSustainedGBps = 0 // not measured: the figures say nothing of it
	for _, g := range computeGoals(&res) {
		if g.ID == "4" && strings.Contains(g.Figures, "sustained") {
			t.Errorf("figures %q mention a sustained rate the probe did not measure", g.Figures)
		}
	}
}

// TestGoalCPUBound: goals 2a and 3a add the CPU each side used per record
// and the ratio the CPUs allow when both runs kept them busy.
func TestGoalCPUBound(t *testing.T) {
	produce := func(target string, rep int, rps float64, records int64, client, broker, secs float64) Run {
		r := Run{Scenario: "p100-1p", Target: target, Repeat: rep, Status: "ok", RecordsPerSec: rps,
			ClientCPUSec: client, BrokerCPUSec: broker, Seconds: secs}
		r.Produce = &perf.ProduceResult{}
		r.Produce.Records = records
		return r
	}
	res := Results{Machine: Machine{CPUs: 2}, Runs: []Run{
		// 1M records each; uring: 1.6 s of client + 2.4 s of broker CPU
		// in 2 s (both CPUs busy); null: 1.9 + 0.1 s in 1 s. The CPUs
		// allow uring half of null's rate, which is what it reached.
		produce(TargetRingbrokerUring, 0, 500000, 1000000, 1.6, 2.4, 2),
		produce(TargetNull, 0, 1000000, 1000000, 1.9, 0.1, 1),
	}}
	var g2a *Goal
	goals := computeGoals(&res)
	for i := range goals {
		if goals[i].ID == "2a" {
			g2a = &goals[i]
		}
	}
	if g2a == nil || g2a.Status != "SHORT" {
		t.Fatalf("goal 2a = %+v", g2a)
	}
	want := "CPU µs per record: uring 4.00 (broker 2.40), null 2.00; CPUs busy: uring 100%, null 100%; CPU-bound ratio 0.50"
	if !strings.Contains(g2a.Figures, want) {
		t.Errorf("figures %q lack %q", g2a.Figures, want)
	}
	// Without CPU figures (a peer, or an older results file) nothing is added.
	res.Runs[0].ClientCPUSec = 0
	for _, g := range computeGoals(&res) {
		if g.ID == "2a" && strings.Contains(g.Figures, "CPU") {
			t.Errorf("figures %q without CPU figures", g.Figures)
		}
	}
}

// TestHostDrift: a throughput scenario whose clients used much more CPU
// per record against the null broker in some repeats is reported under the
// goal table; a steady one, or one run once, is not.
func TestHostDrift(t *testing.T) {
	null := func(sc string, rep int, records int64, client float64) Run {
		r := Run{Scenario: sc, Target: TargetNull, Repeat: rep, Status: "ok", ClientCPUSec: client}
		r.Produce = &perf.ProduceResult{}
		r.Produce.Records = records
		return r
	}
	res := Results{Repeat: 3, Runs: []Run{
		// 1M records: 0.40, then 0.80 and 0.78 µs each.
		null("p100-1p", 0, 1_000_000, 0.40),
		null("p100-1p", 2, 1_000_000, 0.78),
		null("p100-1p", 1, 1_000_000, 0.80),
		// Within the threshold.
		null("p100-8p", 0, 1_000_000, 0.50),
		null("p100-8p", 1, 1_000_000, 0.60),
		// One repeat: nothing to compare.
		null("automq-64k", 0, 1_000, 0.50),
		// Not the null broker: a broker's own writes may explain it.
		{Scenario: "p100-8p", Target: TargetRingbrokerUring, Repeat: 1, Status: "ok", ClientCPUSec: 9},
	}}
	drift := hostDrift(&res)
	if len(drift) != 1 {
		t.Fatalf("drift %q, want one line (p100-1p)", drift)
	}
	if want := "p100-1p: the clients' CPU µs per record against the null broker, by repeat: 0.40, 0.80, 0.78 (2.00x from the lowest)"; !strings.HasPrefix(drift[0], want) {
		t.Errorf("drift %q, want it to start with %q", drift[0], want)
	}
	res.Goals = computeGoals(&res)
	res.HostDrift = drift
	var b strings.Builder
	printGoals(&b, &res)
	if !strings.Contains(b.String(), "  host: p100-1p: ") {
		t.Errorf("goal table lacks the host line:\n%s", b.String())
	}
}
