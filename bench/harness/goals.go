package harness

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// Goal is one of issue 20's goals as this run measured it. Each side of
// its ratio is listed with the run's figures (median [min-max] over the
// repeats); Status is PASS when the goal held in every repeat, SHORT when
// it failed in at least one, n/a when this run cannot measure it (Why says
// what is missing).
type Goal struct {
	ID     string `json:"id"`
	Goal   string `json:"goal"`
	Status string `json:"status"`
	// Value is the goal's ratio or figure per repeat.
	Values  []float64 `json:"values,omitempty"`
	Figures string    `json:"figures"`
	Why     string    `json:"why,omitempty"`
}

// runsOf returns the OK runs of scenario on target, indexed by repeat.
func runsOf(runs []Run, scenario, target string) map[int]Run {
	out := map[int]Run{}
	for _, r := range runs {
		if r.Scenario == scenario && r.Target == target && r.OK() {
			out[r.Repeat] = r
		}
	}
	return out
}

// pairGoal evaluates a goal over the repeats where both sides ran: value
// computes the goal's figure from the two runs, holds says whether it
// meets the goal.
func pairGoal(g Goal, a, b map[int]Run, value func(a, b Run) float64, holds func(v float64) bool, aName, bName string, fig func(r Run) float64, unit string) Goal {
	var va, vb []float64
	pass := true
	for rep, ra := range a {
		rb, ok := b[rep]
		if !ok {
			continue
		}
		v := value(ra, rb)
		g.Values = append(g.Values, v)
		va = append(va, fig(ra))
		vb = append(vb, fig(rb))
		if !holds(v) {
			pass = false
		}
	}
	if len(g.Values) == 0 {
		g.Status = "n/a"
		if g.Why == "" {
			g.Why = "a side did not run"
		}
		return g
	}
	g.Why = ""
	g.Status = "SHORT"
	if pass {
		g.Status = "PASS"
	}
	g.Figures = fmt.Sprintf("%s / %s = %s (%s %s, %s %s; %d runs)", aName, bName, fmtSpread(g.Values, "%.2f"),
		aName, fmtSpread(va, figFormat(unit)), bName, fmtSpread(vb, figFormat(unit)), len(g.Values))
	return g
}

// oneGoal evaluates a goal on one side's figure against a fixed bound.
func oneGoal(g Goal, a map[int]Run, fig func(r Run) float64, holds func(v float64) bool, name, unit string) Goal {
	pass := true
	for _, r := range a {
		v := fig(r)
		g.Values = append(g.Values, v)
		if !holds(v) {
			pass = false
		}
	}
	if len(g.Values) == 0 {
		g.Status, g.Why = "n/a", "did not run"
		return g
	}
	g.Status = "SHORT"
	if pass {
		g.Status = "PASS"
	}
	g.Figures = fmt.Sprintf("%s %s (%d runs)", name, fmtSpread(g.Values, figFormat(unit)), len(g.Values))
	return g
}

// computeGoals evaluates issue 20's goals on a finished run.
func computeGoals(res *Results) []Goal {
	runs := res.Runs
	rps := func(r Run) float64 { return r.RecordsPerSec }
	mbps := func(r Run) float64 { return r.MBPerSec }
	div := func(a, b Run) float64 {
		if b.RecordsPerSec == 0 {
			return 0
		}
		return a.RecordsPerSec / b.RecordsPerSec
	}
	var goals []Goal

	e2eU := runsOf(runs, "e2e-20mb", TargetRingbrokerUring)
	e2eP := runsOf(runs, "e2e-20mb", TargetRingbrokerPort)
	goals = append(goals,
		oneGoal(Goal{ID: "1a", Goal: "e2e at 20 MiB/s: uring p99 <= 1 ms"}, e2eU,
			func(r Run) float64 { return r.P99Ms }, func(v float64) bool { return v <= 1 }, "uring p99", " ms"),
		oneGoal(Goal{ID: "1b", Goal: "e2e at 20 MiB/s: uring p99.9 <= 3 ms"}, e2eU,
			func(r Run) float64 { return r.P999Ms }, func(v float64) bool { return v <= 3 }, "uring p99.9", " ms"),
		pairGoal(Goal{ID: "1c", Goal: "e2e at 20 MiB/s: uring p99.9 below portable's"}, e2eU, e2eP,
			func(a, b Run) float64 {
				if b.P999Ms == 0 {
					return 0
				}
				return a.P999Ms / b.P999Ms
			}, func(v float64) bool { return v < 1 }, "uring", "portable", func(r Run) float64 { return r.P999Ms }, " ms"),
	)
	g1d := Goal{ID: "1d", Goal: "Java perf at 50,000 records/s: uring p99 <= 2x in-memory kfake's"}
	if res.JavaSkipped != "" {
		g1d.Status, g1d.Why = "n/a", res.JavaSkipped
		goals = append(goals, g1d)
	} else {
		// The tool prints whole milliseconds: javaP99Ratio counts a
		// 0 ms peer p99 as 1 ms.
		goals = append(goals, pairGoal(g1d, runsOf(runs, ScenarioJava50k, TargetRingbrokerUring),
			runsOf(runs, ScenarioJava50k, TargetKfake), javaP99Ratio, func(v float64) bool { return v <= 2 },
			"uring", "kfake", func(r Run) float64 { return r.P99Ms }, " ms"))
	}

	p1U := runsOf(runs, "p100-1p", TargetRingbrokerUring)
	p1P := runsOf(runs, "p100-1p", TargetRingbrokerPort)
	p1N := runsOf(runs, "p100-1p", TargetNull)
	g2a := pairGoal(Goal{ID: "2a", Goal: "p100-1p: uring >= 0.9x null in every run"}, p1U, p1N,
		div, func(v float64) bool { return v >= 0.9 }, "uring", "null", rps, " rec/s")
	goals = append(goals, withCPUBound(g2a, p1U, p1N, res.Machine.CPUs))
	g2b := Goal{ID: "2b", Goal: "p100-1p under 2 CPU hogs: uring/null >= portable/null"}
	if res.Hogs < 2 {
		g2b.Status, g2b.Why = "n/a", fmt.Sprintf("run with HOGS=2 (this run: %d)", res.Hogs)
		goals = append(goals, g2b)
	} else {
		// Both backends against the null broker of the same repeat.
		uN, pN := map[int]Run{}, map[int]Run{}
		for rep, u := range p1U {
			if n, ok := p1N[rep]; ok && n.RecordsPerSec > 0 {
				u.RecordsPerSec /= n.RecordsPerSec
				uN[rep] = u
			}
		}
		for rep, p := range p1P {
			if n, ok := p1N[rep]; ok && n.RecordsPerSec > 0 {
				p.RecordsPerSec /= n.RecordsPerSec
				pN[rep] = p
			}
		}
		goals = append(goals, pairGoal(g2b, uN, pN, func(a, b Run) float64 {
			if b.RecordsPerSec == 0 {
				return 0
			}
			return a.RecordsPerSec / b.RecordsPerSec
		}, func(v float64) bool { return v >= 1 }, "uring/null", "portable/null", rps, "x"))
	}

	p8U := runsOf(runs, "p100-8p", TargetRingbrokerUring)
	p8P := runsOf(runs, "p100-8p", TargetRingbrokerPort)
	p8N := runsOf(runs, "p100-8p", TargetNull)
	goals = append(goals,
		withCPUBound(pairGoal(Goal{ID: "3a", Goal: "p100-8p: uring >= 0.95x null"}, p8U, p8N,
			div, func(v float64) bool { return v >= 0.95 }, "uring", "null", rps, " rec/s"), p8U, p8N, res.Machine.CPUs),
		pairGoal(Goal{ID: "3b", Goal: "p100-8p: uring >= portable"}, p8U, p8P,
			div, func(v float64) bool { return v >= 1 }, "uring", "portable", rps, " rec/s"),
	)

	g4 := Goal{ID: "4", Goal: "automq-64k: uring >= 0.8x the probe's fdatasync every 1 MiB"}
	aq := runsOf(runs, "automq-64k", TargetRingbrokerUring)
	if res.Probe == nil || res.Probe.WriteSyncEachMBGBps == 0 {
		g4.Status, g4.Why = "n/a", "no machine probe in this run"
		goals = append(goals, g4)
	} else {
		probeMiBps := res.Probe.WriteSyncEachMBGBps * 1e9 / (1 << 20)
		probeSide := map[int]Run{}
		for rep := range aq {
			probeSide[rep] = Run{MBPerSec: probeMiBps, RecordsPerSec: probeMiBps}
		}
		g4 = pairGoal(g4, aq, probeSide, func(a, b Run) float64 { return a.MBPerSec / b.MBPerSec },
			func(v float64) bool { return v >= 0.8 }, "uring", "probe", mbps, " MiB/s")
		// The goal is against the probe's short write; a disk that grants
		// a burst and then throttles is also shown at its sustained rate,
		// which the scenario meets once earlier runs used the burst.
		if s := res.Probe.WriteSyncSustainedGBps; s > 0 && len(g4.Values) > 0 {
			sMiBps := s * 1e9 / (1 << 20)
			var per []float64
			for _, r := range aq {
				per = append(per, r.MBPerSec/sMiBps)
			}
			g4.Figures += fmt.Sprintf("; against the probe's sustained rate (%.2f MiB/s): %s", sMiBps, fmtSpread(per, "%.2f"))
		}
		goals = append(goals, g4)
	}
	// The null broker serves the same records (count and size, checked
	// per run in runOne) from memory: the client's catch-up ceiling.
	cuU := runsOf(runs, "catchup", TargetRingbrokerUring)
	cuN := runsOf(runs, "catchup", TargetNull)
	goals = append(goals, withCPUBound(pairGoal(Goal{ID: "5", Goal: "catch-up: uring >= 0.8x the null broker's catch-up"}, cuU, cuN,
		func(a, b Run) float64 {
			if b.MBPerSec == 0 {
				return 0
			}
			return a.MBPerSec / b.MBPerSec
		}, func(v float64) bool { return v >= 0.8 }, "uring", "null", mbps, " MiB/s"), cuU, cuN, res.Machine.CPUs))
	return goals
}

// withCPUBound adds to a goal against the null broker what the CPU allows:
// per repeat, the CPU time (the clients' in the harness plus the target's)
// per record acknowledged or consumed, and the share of the machine's CPUs
// the run kept busy. When both runs kept every CPU busy, the throughput
// ratio cannot exceed null's CPU per record over uring's (the "CPU-bound
// ratio"): client and broker share the CPUs, and the null broker leaves
// nearly all of them to the client.
func withCPUBound(g Goal, u, n map[int]Run, cpus int) Goal {
	if len(g.Values) == 0 || cpus <= 0 {
		return g
	}
	var cu, cn, bu, busyU, busyN, bound []float64
	for rep, ru := range u {
		rn, ok := n[rep]
		recU, recN := ru.records(), rn.records()
		if !ok || recU == 0 || recN == 0 || ru.Seconds == 0 || rn.Seconds == 0 || ru.ClientCPUSec == 0 || rn.ClientCPUSec == 0 {
			continue
		}
		perU := (ru.ClientCPUSec + ru.BrokerCPUSec) / float64(recU) * 1e6
		perN := (rn.ClientCPUSec + rn.BrokerCPUSec) / float64(recN) * 1e6
		cu, cn = append(cu, perU), append(cn, perN)
		bu = append(bu, ru.BrokerCPUSec/float64(recU)*1e6)
		busyU = append(busyU, 100*(ru.ClientCPUSec+ru.BrokerCPUSec)/ru.Seconds/float64(cpus))
		busyN = append(busyN, 100*(rn.ClientCPUSec+rn.BrokerCPUSec)/rn.Seconds/float64(cpus))
		bound = append(bound, perN/perU)
	}
	if len(bound) == 0 {
		return g
	}
	g.Figures += fmt.Sprintf("; CPU µs per record: uring %s (broker %s), null %s; CPUs busy: uring %s%%, null %s%%; CPU-bound ratio %s",
		fmtSpread(cu, "%.2f"), fmtSpread(bu, "%.2f"), fmtSpread(cn, "%.2f"), fmtSpread(busyU, "%.0f"), fmtSpread(busyN, "%.0f"), fmtSpread(bound, "%.2f"))
	return g
}

// records is how many records the run moved: acknowledged, or consumed.
func (r Run) records() int64 {
	switch {
	case r.Produce != nil:
		return r.Produce.Records
	case r.Consume != nil:
		return r.Consume.Records
	}
	return 0
}

// driftThreshold is the spread (highest over lowest) of the clients' CPU
// per record against the null broker above which hostDrift reports it.
const driftThreshold = 1.3

// hostDrift reports the throughput scenarios whose clients used markedly
// more CPU per record against the null broker in some repeats than in
// others. The null broker writes nothing and answers from memory, so its
// clients' work per record should not move: when it does, the clients' and
// the machine's own cost changed between repeats (on the development VM,
// its page cache's state: see docs/BENCHMARKS.md), and every target's
// figures of those repeats carry it, which the goals' ratios of paired
// repeats only partly cancel.
func hostDrift(res *Results) []string {
	var names []string
	for _, r := range res.Runs {
		if r.Target == TargetNull && !slices.Contains(names, r.Scenario) {
			names = append(names, r.Scenario)
		}
	}
	sort.Strings(names)
	var out []string
	for _, sc := range names {
		reps := runsOf(res.Runs, sc, TargetNull)
		var keys []int
		for rep, r := range reps {
			if r.ClientCPUSec > 0 && r.records() > 0 {
				keys = append(keys, rep)
			}
		}
		if len(keys) < 2 {
			continue
		}
		sort.Ints(keys)
		var vals []float64
		var figs []string
		for _, rep := range keys {
			v := reps[rep].ClientCPUSec / float64(reps[rep].records()) * 1e6
			vals = append(vals, v)
			figs = append(figs, fmt.Sprintf("%.2f", v))
		}
		lo, _, hi := spread(vals)
		if hi < lo*driftThreshold {
			continue
		}
		out = append(out, fmt.Sprintf("%s: the clients' CPU µs per record against the null broker, by repeat: %s (%.2fx from the lowest); the null broker writes nothing, so this is the clients' and the machine's own cost moving between repeats, and every target's figures in the costlier ones carry it",
			sc, strings.Join(figs, ", "), hi/lo))
	}
	return out
}

// printGoals writes the goal table.
func printGoals(w io.Writer, res *Results) {
	if len(res.Goals) == 0 {
		return
	}
	fmt.Fprintf(w, "\nissue 20 goals (PASS: held in every one of the %d run(s); figures median [min-max]; HOGS=%d):\n", max(res.Repeat, 1), res.Hogs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, g := range res.Goals {
		fig := g.Figures
		if g.Why != "" {
			fig = joinNonEmpty([]string{fig, g.Why}, "; ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", g.ID, g.Status, g.Goal, fig)
	}
	tw.Flush()
	for _, d := range res.HostDrift {
		fmt.Fprintf(w, "  host: %s\n", d)
	}
}

// figFormat is the format of one figure in unit: records/s whole, the
// rest with two decimals.
func figFormat(unit string) string {
	if unit == " rec/s" {
		return "%.0f" + unit
	}
	return "%.2f" + unit
}
