package reqtrace

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Environment variables read by StartFromEnv.
const (
	EnvFile    = "RINGBROKER_REQTRACE"         // dump file; tracing is off when empty
	EnvSlowest = "RINGBROKER_REQTRACE_SLOWEST" // timelines kept per interval (default 256, at most 65,536)
)

// Enable turns tracing on, keeping the slowest n timelines per interval.
// It must run before any request is served (the flag is read without
// synchronisation afterwards).
func Enable(n int) {
	if n <= 0 {
		n = SlowestDefault
	}
	n = min(n, 1<<16)
	for _, r := range recs {
		r.mu.Lock()
		r.slowest = make([]timeline, 0, n)
		r.mu.Unlock()
	}
	interval.mu.Lock()
	interval.since, interval.rt = time.Now(), readRuntime()
	interval.mu.Unlock()
	enabled = true
}

// StartFromEnv enables tracing when RINGBROKER_REQTRACE names a file: each
// SIGUSR1 then writes the interval's dump there (atomically: a temp file
// renamed over it) and starts a new interval, and the returned stop (which
// the daemon calls at shutdown) writes the last one. With the variable
// unset it does nothing and stop is a no-op. errf reports a failed dump.
func StartFromEnv(errf func(error)) (stop func()) {
	path := os.Getenv(EnvFile)
	if path == "" {
		return func() {}
	}
	n, _ := strconv.Atoi(os.Getenv(EnvSlowest))
	Enable(n)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-sig:
				if err := DumpFile(path); err != nil {
					errf(err)
				}
			case <-quit:
				return
			}
		}
	}()
	return sync.OnceFunc(func() {
		signal.Stop(sig)
		close(quit)
		wg.Wait()
		if err := DumpFile(path); err != nil {
			errf(err)
		}
	})
}

// DumpFile writes the current interval's Dump to path (temp file + rename)
// and starts a new interval.
func DumpFile(path string) error {
	d := Take()
	b, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".reqtrace-*")
	if err != nil {
		return fmt.Errorf("request trace dump: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("request trace dump: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("request trace dump: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("request trace dump: %w", err)
	}
	return nil
}

// Dump is one interval's trace (the JSON written by DumpFile). Times are
// microseconds.
type Dump struct {
	Seconds float64      `json:"seconds"`
	Produce KindDump     `json:"produce"`
	Fetch   KindDump     `json:"fetch"`
	Runtime RuntimeStats `json:"runtime"`
}

// KindDump is one API's requests over the interval.
type KindDump struct {
	Requests uint64 `json:"requests"`
	// Dropped: traced requests whose response never left (connection
	// closed, acks=0).
	Dropped int64      `json:"dropped"`
	Total   StageStats `json:"total"`
	// Ranked is what the slowest are ranked by: the total, but for a
	// Fetch woken from a long poll its time from the wake-up (waiting for
	// data is not latency).
	Ranked StageStats  `json:"ranked"`
	Stages []StageStat `json:"stages"`
	// SlowestShare is, over the slowest kept requests, each stage's share
	// of their summed ranked time; SlowestTop counts in how many of them
	// each stage was the largest delta (stages before the wake-up of a
	// woken Fetch left out).
	SlowestShare map[string]float64 `json:"slowest_share"`
	SlowestTop   map[string]int     `json:"slowest_top"`
	Slowest      []Timeline         `json:"slowest"`
}

// StageStats summarises one histogram.
type StageStats struct {
	Count  uint64  `json:"count"`
	MeanUs float64 `json:"mean_us"`
	P50Us  float64 `json:"p50_us"`
	P99Us  float64 `json:"p99_us"`
	P999Us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
}

// StageStat is a stage's delta (time since the previous reached stage).
type StageStat struct {
	Stage string `json:"stage"`
	StageStats
}

// Timeline is one slow request: its total, ranked time and each reached
// stage's delta.
type Timeline struct {
	TotalUs  float64            `json:"total_us"`
	RankedUs float64            `json:"ranked_us"`
	Bytes    int32              `json:"bytes"`
	DeltaUs  map[string]float64 `json:"delta_us"`
}

// RuntimeStats are the Go runtime's figures over the interval.
type RuntimeStats struct {
	GCCycles        uint64  `json:"gc_cycles"`
	GCPauses        uint64  `json:"gc_pauses"`
	GCPauseP99Us    float64 `json:"gc_pause_p99_us"`
	GCPauseMaxUs    float64 `json:"gc_pause_max_us"`
	SchedLatP99Us   float64 `json:"sched_latency_p99_us"`
	SchedLatP999Us  float64 `json:"sched_latency_p999_us"`
	SchedLatMaxUs   float64 `json:"sched_latency_max_us"`
	SchedLatSamples uint64  `json:"sched_latency_samples"`
}

func us(ns int64) float64 { return float64(ns) / 1e3 }

func stats(h *histogram) StageStats {
	s := StageStats{Count: h.n, P50Us: us(h.quantile(0.5)), P99Us: us(h.quantile(0.99)), P999Us: us(h.quantile(0.999)), MaxUs: us(h.max)}
	if h.n > 0 {
		s.MeanUs = us(h.sum) / float64(h.n)
	}
	return s
}

// Take returns the current interval's Dump and starts a new interval.
func Take() Dump {
	interval.mu.Lock()
	since, rt0 := interval.since, interval.rt
	interval.since, interval.rt = time.Now(), readRuntime()
	rt1 := interval.rt
	interval.mu.Unlock()
	return Dump{
		Seconds: time.Since(since).Seconds(),
		Produce: takeKind(recs[KindProduce]),
		Fetch:   takeKind(recs[KindFetch]),
		Runtime: runtimeDelta(rt0, rt1),
	}
}

func takeKind(r *recorder) KindDump {
	stages, ranked, slowest, dropped := r.take()
	d := KindDump{
		Requests: stages[Recv].n, Dropped: dropped,
		Total: stats(&stages[Recv]), Ranked: stats(&ranked),
		SlowestShare: map[string]float64{}, SlowestTop: map[string]int{},
	}
	for s := Recv + 1; s < NumStages; s++ {
		d.Stages = append(d.Stages, StageStat{Stage: s.String(), StageStats: stats(&stages[s])})
	}
	var sum [NumStages]int64
	var all int64
	for i := range slowest {
		t := &slowest[i]
		dl := t.deltas()
		tl := Timeline{TotalUs: us(t.total()), RankedUs: us(t.rank()), Bytes: t.bytes, DeltaUs: map[string]float64{}}
		first := Recv + 1
		if t.kind == KindFetch && t.ts[Woken] != 0 {
			first = WakeRun // the ranked time starts at the wake-up
		}
		top := Recv
		for s := Recv + 1; s < NumStages; s++ {
			if t.ts[s] == 0 {
				continue
			}
			tl.DeltaUs[s.String()] = us(dl[s])
			if s < first {
				continue
			}
			sum[s] += dl[s]
			if top == Recv || dl[s] > dl[top] {
				top = s
			}
		}
		all += t.rank()
		if top != Recv {
			d.SlowestTop[top.String()]++
		}
		d.Slowest = append(d.Slowest, tl)
	}
	if all > 0 {
		for s := Recv + 1; s < NumStages; s++ {
			if sum[s] > 0 {
				d.SlowestShare[s.String()] = float64(sum[s]) / float64(all)
			}
		}
	}
	return d
}

// runtimeDelta is the runtime/metrics change between two reads.
func runtimeDelta(a, b runtimeSnap) RuntimeStats {
	var r RuntimeStats
	if len(a.samples) != len(b.samples) {
		return r
	}
	for i := range b.samples {
		sa, sb := a.samples[i], b.samples[i]
		switch sb.Name {
		case metricGCCycles:
			if sb.Value.Kind() == metrics.KindUint64 && sa.Value.Kind() == metrics.KindUint64 {
				r.GCCycles = sb.Value.Uint64() - sa.Value.Uint64()
			}
		case metricGCPauses, metricSchedLat:
			if sb.Value.Kind() != metrics.KindFloat64Histogram || sa.Value.Kind() != metrics.KindFloat64Histogram {
				continue
			}
			n, p99, p999, mx := histDelta(sa.Value.Float64Histogram(), sb.Value.Float64Histogram())
			if sb.Name == metricGCPauses {
				r.GCPauses, r.GCPauseP99Us, r.GCPauseMaxUs = n, p99*1e6, mx*1e6
			} else {
				r.SchedLatSamples, r.SchedLatP99Us, r.SchedLatP999Us, r.SchedLatMaxUs = n, p99*1e6, p999*1e6, mx*1e6
			}
		}
	}
	return r
}

// histDelta is the count, p99, p99.9 and max (upper bucket bounds, in
// seconds) of b minus a (same buckets: the runtime's are fixed).
func histDelta(a, b *metrics.Float64Histogram) (n uint64, p99, p999, mx float64) {
	if len(a.Counts) != len(b.Counts) {
		return 0, 0, 0, 0
	}
	upper := func(i int) float64 { // the last bucket is open-ended
		if math.IsInf(b.Buckets[i+1], 0) {
			return b.Buckets[i]
		}
		return b.Buckets[i+1]
	}
	counts := make([]uint64, len(b.Counts))
	for i := range b.Counts {
		counts[i] = b.Counts[i] - a.Counts[i]
		n += counts[i]
		if counts[i] > 0 {
			mx = upper(i)
		}
	}
	q := func(f float64) float64 {
		rank := uint64(float64(n)*f + 0.999999)
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen >= rank && rank > 0 {
				return upper(i)
			}
		}
		return 0
	}
	return n, q(0.99), q(0.999), mx
}
