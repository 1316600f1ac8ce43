package reqtrace

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// withTracing enables tracing for one test (keeping n timelines) and
// restores the off state afterwards.
func withTracing(t testing.TB, n int) {
	Enable(n)
	Take() // a fresh interval
	t.Cleanup(func() { enabled = false })
}

var produceFrame = []byte{0, 0, 0, 9, 0, 0, 0, 1} // api key 0 (Produce), version 9, correlation id 1

func TestBeginOnlyProduceAndOnlyWhenEnabled(t *testing.T) {
	if r := Begin(produceFrame, 0); r != nil {
		t.Fatal("Begin returned a trace while tracing is off")
	}
	withTracing(t, 4)
	if r := Begin([]byte{0, 3, 0, 12}, 0); r != nil { // Metadata
		t.Fatal("Begin traced a Metadata request")
	}
	r := Begin(produceFrame, 0)
	if r == nil {
		t.Fatal("Begin did not trace a Produce request")
	}
	Finish(r, false)
	var nilReq *Req
	nilReq.Mark(Parsed) // nil-safe
	Finish(nil, true)
	d := Take().Produce
	if d.Requests != 0 || d.Dropped != 1 {
		t.Fatalf("requests %d dropped %d, want 0 and 1", d.Requests, d.Dropped)
	}
}

// TestTimelineDeltasAndSlowest drives timelines with chosen stamps: the
// stage histograms get each reached stage's delta from the previous
// reached one, and only the slowest N timelines are kept, slowest first.
func TestTimelineDeltasAndSlowest(t *testing.T) {
	withTracing(t, 3)
	for i := int64(1); i <= 10; i++ {
		// Written grows with i (the slow stage); Synced is not reached, so
		// Callback's delta is from Written.
		tl := timeline{bytes: 8}
		tl.ts[Recv], tl.ts[Parsed], tl.ts[AppendQueued] = 1000, 2000, 3000
		tl.ts[Written], tl.ts[Callback], tl.ts[Reply] = 3000+i*1000, 4000+i*1000, 5000+i*1000
		tl.ts[LoopTook], tl.ts[SendQueued], tl.ts[Sent] = 6000+i*1000, 7000+i*1000, 8000+i*1000
		recs[KindProduce].add(&tl)
	}
	d := Take().Produce
	if d.Requests != 10 {
		t.Fatalf("requests %d, want 10", d.Requests)
	}
	if len(d.Slowest) != 3 {
		t.Fatalf("kept %d timelines, want 3", len(d.Slowest))
	}
	for i, want := range []float64{17, 16, 15} { // totals in µs: 7 + 10, 9, 8
		if d.Slowest[i].TotalUs != want {
			t.Fatalf("slowest[%d] total %v µs, want %v", i, d.Slowest[i].TotalUs, want)
		}
	}
	if got := d.Slowest[0].DeltaUs["written"]; got != 10 {
		t.Fatalf("slowest written delta %v µs, want 10", got)
	}
	if _, ok := d.Slowest[0].DeltaUs["synced"]; ok {
		t.Fatal("a stage not reached has a delta")
	}
	if d.SlowestTop["written"] != 3 {
		t.Fatalf("slowest_top %v, want written in all 3", d.SlowestTop)
	}
	for _, s := range d.Stages {
		if s.Stage == "parsed" && (s.Count != 10 || s.MaxUs != 1) {
			t.Fatalf("parsed stage %+v, want 10 deltas of 1 µs", s)
		}
		if s.Stage == "synced" && s.Count != 0 {
			t.Fatalf("synced stage counted %d, want 0", s.Count)
		}
	}
	if d.Total.MaxUs != 17 {
		t.Fatalf("total max %v µs, want 17", d.Total.MaxUs)
	}
}

// TestFetchRankedFromItsWakeUp: a Fetch that waited in a long poll is
// ranked by its time from the wake-up, one answered at once by its total.
func TestFetchRankedFromItsWakeUp(t *testing.T) {
	withTracing(t, 2)
	fetch := []byte{0, 1, 0, 12, 0, 0, 0, 1}
	long := Begin(fetch, 1000) // waited 500 ms, answered 30 µs after its wake-up
	long.MarkAt(Parsed, 2000)
	long.MarkAt(Woken, 500_000_000)
	long.MarkAt(WakeRun, 500_010_000)
	long.MarkAt(Reply, 500_020_000)
	long.MarkAt(Sent, 500_030_000)
	Finish(long, false) // recycled unrecorded: record its stamps by hand
	recs[KindFetch].dropped.Add(-1)
	tl := timeline{kind: KindFetch}
	tl.ts[Recv], tl.ts[Parsed], tl.ts[Woken], tl.ts[WakeRun], tl.ts[Reply], tl.ts[Sent] = 1000, 2000, 500_000_000, 500_010_000, 500_020_000, 500_030_000
	recs[KindFetch].add(&tl)
	quick := timeline{kind: KindFetch} // answered at once in 100 µs
	quick.ts[Recv], quick.ts[Parsed], quick.ts[Reply], quick.ts[Sent] = 1000, 2000, 50_000, 101_000
	recs[KindFetch].add(&quick)
	d := Take().Fetch
	if d.Requests != 2 || len(d.Slowest) != 2 {
		t.Fatalf("fetch requests %d, slowest %d; want 2 and 2", d.Requests, len(d.Slowest))
	}
	if d.Slowest[0].RankedUs != 100 || d.Slowest[1].RankedUs != 30 {
		t.Fatalf("ranked %v then %v µs, want 100 then 30", d.Slowest[0].RankedUs, d.Slowest[1].RankedUs)
	}
	if d.SlowestShare["woken"] != 0 {
		t.Fatalf("the long poll's wait counted in the slowest share: %v", d.SlowestShare)
	}
}

// TestMarkKeepsTheLatestStamp: a request's partitions complete on several
// log writers; the stage's latest stamp wins, in any order.
func TestMarkKeepsTheLatestStamp(t *testing.T) {
	withTracing(t, 1)
	r := Begin(produceFrame, 10)
	r.MarkAt(Written, 30)
	r.MarkAt(Written, 20)
	r.MarkAt(Written, 0) // not reached: ignored
	if got := r.ts[Written].Load(); got != 30 {
		t.Fatalf("written %d, want 30", got)
	}
	Finish(r, false)
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 100000; v++ {
		h.add(v * 1000) // 1 µs .. 100 ms
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 50_000_000}, {0.99, 99_000_000}, {0.999, 99_900_000}} {
		got := h.quantile(c.q)
		if got > c.want || float64(got) < float64(c.want)*0.87 { // lower bucket bound, 12.5% buckets
			t.Fatalf("q%v = %d, want within 12.5%% below %d", c.q, got, c.want)
		}
	}
	if h.quantile(1) != 100_000_000 {
		t.Fatalf("max %d", h.quantile(1))
	}
	for i := 0; i < len(h.counts); i++ { // buckets are contiguous and increasing
		if i > 0 && bucketLow(i) <= bucketLow(i-1) {
			t.Fatalf("bucket %d low %d <= bucket %d low %d", i, bucketLow(i), i-1, bucketLow(i-1))
		}
		if bucketOf(bucketLow(i)) != i {
			t.Fatalf("bucketOf(bucketLow(%d)) = %d", i, bucketOf(bucketLow(i)))
		}
	}
}

func TestDumpFileWritesJSON(t *testing.T) {
	withTracing(t, 8)
	r := Begin(produceFrame, 0)
	r.Mark(Parsed)
	r.Mark(Reply)
	Finish(r, true)
	path := filepath.Join(t.TempDir(), "trace.json")
	if err := DumpFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dump Dump
	if err := json.Unmarshal(b, &dump); err != nil {
		t.Fatal(err)
	}
	d := dump.Produce
	if d.Requests != 1 || len(d.Slowest) != 1 || d.Total.Count != 1 {
		t.Fatalf("dump %+v, want one request", d)
	}
	if d2 := Take(); d2.Produce.Requests != 0 {
		t.Fatalf("the dump did not start a new interval: %d requests", d2.Produce.Requests)
	}
}

// BenchmarkRequestHooks is what one Produce request pays for the trace:
// every hook it passes (Begin, a stamp per stage, Finish), with tracing off
// (the daemon's default: a bool load and nil checks) and on.
func BenchmarkRequestHooks(b *testing.B) {
	hooks := func() {
		r := Begin(produceFrame, 0)
		if Enabled() {
			_ = Now() // the receive stamp netpoll takes
		}
		r.Mark(Parsed)
		r.Mark(AppendQueued)
		var written int64
		if Enabled() {
			written = Now()
		}
		r.MarkAt(Written, written)
		r.MarkAt(Synced, 0)
		r.Mark(Callback)
		r.Mark(Reply)
		r.Mark(LoopTook)
		r.Mark(SendQueued)
		Finish(r, r != nil)
	}
	b.Run("off", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			hooks()
		}
	})
	b.Run("on", func(b *testing.B) {
		withTracing(b, SlowestDefault)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			hooks()
		}
	})
}
