package reqtrace

import (
	"math"
	"math/bits"
	"runtime/metrics"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// timeline is a finished request's stamps (0: stage not reached).
type timeline struct {
	ts    [NumStages]int64
	bytes int32
	kind  Kind
}

func (t *timeline) total() int64 { return t.ts[Sent] - t.ts[Recv] }

// rank orders the slowest timelines: the total, except for a Fetch that
// waited in a long poll, whose wait for data is not latency: its time from
// the wake-up on.
func (t *timeline) rank() int64 {
	if t.kind == KindFetch && t.ts[Woken] != 0 {
		return t.ts[Sent] - t.ts[Woken]
	}
	return t.total()
}

// deltas is each reached stage's time since the previous reached stage
// (0 for stages not reached and for Recv).
func (t *timeline) deltas() (d [NumStages]int64) {
	prev := t.ts[Recv]
	for s := Recv + 1; s < NumStages; s++ {
		if t.ts[s] == 0 {
			continue
		}
		d[s] = max(t.ts[s]-prev, 0)
		prev = max(prev, t.ts[s])
	}
	return d
}

// histogram is log-linear over nanoseconds: values below 16 exactly, then 8
// sub-buckets per power of two (12.5% resolution), fixed size.
type histogram struct {
	counts [16 + 59*8]uint64 // exponents 4..62: an int64 tops out below 2^63
	n      uint64
	sum    int64
	max    int64
}

func bucketOf(v int64) int {
	if v < 16 {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 1
	sub := int(uint64(v)>>(e-3)) & 7
	return 16 + (e-4)*8 + sub
}

// bucketLow is the smallest value of bucket i.
func bucketLow(i int) int64 {
	if i < 16 {
		return int64(i)
	}
	e := (i-16)/8 + 4
	sub := (i - 16) % 8
	return int64(8+sub) << (e - 3)
}

func (h *histogram) add(v int64) {
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += v
	h.max = max(h.max, v)
}

// quantile is the lower bound of the bucket holding quantile q (the exact
// maximum for q = 1).
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketLow(i), h.max)
		}
	}
	return h.max
}

// SlowestDefault is how many timelines a recorder keeps unless
// RINGBROKER_REQTRACE_SLOWEST says otherwise.
const SlowestDefault = 256

// recorder aggregates one kind's finished timelines between two dumps.
type recorder struct {
	mu      sync.Mutex
	stages  [NumStages]histogram // Recv's slot holds the totals
	ranked  histogram            // rank() of every timeline
	slowest []timeline           // at most cap(slowest), a min-heap on rank()
	dropped atomic.Int64
}

var recs = [numKinds]*recorder{
	{slowest: make([]timeline, 0, SlowestDefault)},
	{slowest: make([]timeline, 0, SlowestDefault)},
}

// interval is the current interval's start and the runtime/metrics read
// then.
var interval struct {
	mu    sync.Mutex
	since time.Time
	rt    runtimeSnap
}

func (r *recorder) add(t *timeline) {
	d := t.deltas()
	rank := t.rank()
	r.mu.Lock()
	r.stages[Recv].add(t.total())
	r.ranked.add(rank)
	for s := Recv + 1; s < NumStages; s++ {
		if t.ts[s] != 0 {
			r.stages[s].add(d[s])
		}
	}
	switch {
	case len(r.slowest) < cap(r.slowest):
		r.slowest = append(r.slowest, *t)
		r.siftUp(len(r.slowest) - 1)
	case rank > r.slowest[0].rank():
		r.slowest[0] = *t
		r.siftDown(0)
	}
	r.mu.Unlock()
}

// slowest is a min-heap on total: slowest[0] is the fastest kept, the one
// a slower request replaces. REQUIRES: r.mu held (both).
func (r *recorder) siftUp(i int) {
	h := r.slowest
	for i > 0 {
		p := (i - 1) / 2
		if h[p].rank() <= h[i].rank() {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (r *recorder) siftDown(i int) {
	h := r.slowest
	for {
		m, l, rt := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].rank() < h[m].rank() {
			m = l
		}
		if rt < len(h) && h[rt].rank() < h[m].rank() {
			m = rt
		}
		if m == i {
			return
		}
		h[m], h[i] = h[i], h[m]
		i = m
	}
}

// runtimeSnap is the runtime/metrics read at the start of an interval.
type runtimeSnap struct {
	samples []metrics.Sample
}

const (
	metricGCPauses = "/sched/pauses/total/gc:seconds"
	metricSchedLat = "/sched/latencies:seconds"
	metricGCCycles = "/gc/cycles/total:gc-cycles"
)

func readRuntime() runtimeSnap {
	s := []metrics.Sample{{Name: metricGCPauses}, {Name: metricSchedLat}, {Name: metricGCCycles}}
	metrics.Read(s)
	return runtimeSnap{samples: s}
}

// take returns the kind's aggregates since the last take and starts over.
func (r *recorder) take() (stages [NumStages]histogram, ranked histogram, slowest []timeline, dropped int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stages, ranked = r.stages, r.ranked
	slowest = append([]timeline(nil), r.slowest...)
	sort.Slice(slowest, func(i, j int) bool { return slowest[i].rank() > slowest[j].rank() })
	r.stages = [NumStages]histogram{}
	r.ranked = histogram{}
	r.slowest = r.slowest[:0]
	return stages, ranked, slowest, r.dropped.Swap(0)
}
