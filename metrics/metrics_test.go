package metrics

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func serve(t *testing.T, r *Registry, pprof bool) (base string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop = r.ServeListener(ln, pprof)
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

func TestScrapeOverLoopback(t *testing.T) {
	r := New(Options{Rings: 2, TopicBytes: true})
	r.Preresolve(18) // ApiVersions, exported at zero before any request
	r.Request(0, 3*time.Millisecond)
	r.Request(0, 1*time.Millisecond)
	r.Request(1, 200*time.Microsecond)
	r.Request(-5, time.Millisecond)
	r.Request(999, time.Millisecond)
	r.BytesIn(1000)
	r.BytesOut(2500)
	r.AppendWrite(4096, 3)
	r.Fsync(2 * time.Millisecond)
	r.ConnOpened()
	r.ConnOpened()
	r.ConnClosed()
	r.ConnMuted()
	r.InflightAdd(3)
	r.RingCQEs(0, 10)
	r.RingCQEs(1, 5)
	r.RingCQEs(7, 5) // out of range: ignored
	r.RingEnter(1)
	tm := r.Topic("orders")
	tm.Produced(100)
	tm.Fetched(40)
	r.Topic("gone").Produced(1)
	r.DeleteTopic("gone")

	base, stop := serve(t, r, false)
	code, body := scrape(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`ringbroker_requests_total{api="Produce"} 2`,
		`ringbroker_requests_total{api="Fetch"} 1`,
		`ringbroker_requests_total{api="ApiVersions"} 0`,
		`ringbroker_requests_total{api="unknown"} 2`,
		`ringbroker_request_duration_seconds_count{api="Produce"} 2`,
		`ringbroker_request_duration_seconds_bucket{api="Fetch",le="0.0002"} 1`,
		`ringbroker_network_received_bytes_total 1000`,
		`ringbroker_network_sent_bytes_total 2500`,
		`ringbroker_append_write_bytes_sum 4096`,
		`ringbroker_append_write_batches_sum 3`,
		`ringbroker_log_fsync_duration_seconds_count 1`,
		`ringbroker_connections 1`,
		`ringbroker_connections_muted 1`,
		`ringbroker_requests_inflight 3`,
		`ringbroker_ring_cqes_total{ring="0"} 10`,
		`ringbroker_ring_cqes_total{ring="1"} 5`,
		`ringbroker_ring_enter_calls_total{ring="1"} 1`,
		`ringbroker_topic_produced_bytes_total{topic="orders"} 100`,
		`ringbroker_topic_fetched_bytes_total{topic="orders"} 40`,
		`go_goroutines `,
		`process_open_fds `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(body, `topic="gone"`) {
		t.Error("deleted topic still exported")
	}
	if strings.Contains(body, `ring="7"`) {
		t.Error("out-of-range ring exported")
	}
	if code, _ := scrape(t, base+"/debug/pprof/"); code != 404 {
		t.Errorf("pprof served while disabled: %d", code)
	}
	stop()
	stop() // idempotent
	if _, err := (&http.Client{Timeout: time.Second}).Get(base + "/metrics"); err == nil {
		t.Error("endpoint still serving after stop")
	}
}

func TestPprofEnabled(t *testing.T) {
	r := New(Options{NoRuntimeCollectors: true})
	base, _ := serve(t, r, true)
	code, body := scrape(t, base+"/debug/pprof/")
	if code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index: %d %.200s", code, body)
	}
	if code, _ := scrape(t, base+"/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Errorf("goroutine profile: %d", code)
	}
}

func TestServeAddr(t *testing.T) {
	r := New(Options{NoRuntimeCollectors: true})
	stop, err := r.Serve("", false)
	if err != nil || stop == nil {
		t.Fatalf("disabled endpoint: %v", err)
	}
	stop()
	// A port that is taken must be an error naming the key.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := r.Serve(ln.Addr().String(), false); err == nil || !strings.Contains(err.Error(), "metrics.listener") {
		t.Fatalf("taken port: %v", err)
	}
	stop, err = r.Serve("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	stop()
}

func TestNilRegistryIsNoop(t *testing.T) {
	var r *Registry
	r.Request(0, time.Millisecond)
	r.BytesIn(1)
	r.BytesOut(1)
	r.AppendWrite(1, 1)
	r.Fsync(time.Millisecond)
	r.ConnOpened()
	r.ConnClosed()
	r.ConnMuted()
	r.ConnUnmuted()
	r.InflightAdd(1)
	r.RingCQEs(0, 1)
	r.RingEnter(0)
	r.Preresolve(0)
	r.DeleteTopic("x")
	r.Topic("x").Produced(1)
	New(Options{}).Topic("x").Fetched(1) // per-topic disabled: nil counters
}

// TestConcurrentFirstUse races loops creating the same API's series.
func TestConcurrentFirstUse(t *testing.T) {
	r := New(Options{Rings: 4, NoRuntimeCollectors: true})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				r.Request(int16(i%3), time.Microsecond)
				r.RingCQEs(g%4, 1)
			}
		}()
	}
	wg.Wait()
	base, _ := serve(t, r, false)
	_, body := scrape(t, base+"/metrics")
	for _, want := range []string{`api="Produce"} 272`, `api="Fetch"} 264`, `api="ListOffsets"} 264`} {
		if !strings.Contains(body, "ringbroker_requests_total{"+want) {
			t.Errorf("lacks %s", want)
		}
	}
}

// TestHotPathAllocs pins the promise benchmarks measure: once a series exists,
// recording allocates nothing.
func TestHotPathAllocs(t *testing.T) {
	r := New(Options{Rings: 2, TopicBytes: true, NoRuntimeCollectors: true})
	tm := r.Topic("t")
	r.Request(0, time.Millisecond) // create the Produce series
	allocs := testing.AllocsPerRun(1000, func() {
		r.Request(0, 150*time.Microsecond)
		r.BytesIn(512)
		r.BytesOut(512)
		r.AppendWrite(4096, 2)
		r.Fsync(time.Millisecond)
		r.InflightAdd(1)
		r.InflightAdd(-1)
		r.ConnMuted()
		r.ConnUnmuted()
		r.RingCQEs(1, 8)
		r.RingEnter(1)
		tm.Produced(100)
		tm.Fetched(100)
	})
	if allocs != 0 {
		t.Fatalf("hot path allocates %.1f times per call", allocs)
	}
}

// BenchmarkRecordRequest measures recording one request (counter +
// latency histogram) from several goroutines, as the loops do.
func BenchmarkRecordRequest(b *testing.B) {
	r := New(Options{Rings: 1, NoRuntimeCollectors: true})
	r.Preresolve(0, 1, 18)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var i int
		for pb.Next() {
			r.Request(int16(i%2), time.Duration(i%4096)*time.Microsecond)
			i++
		}
	})
}

// BenchmarkRecordRequestPlusBytes adds the per-request byte counters, the
// full per-request instrumentation of a loop.
func BenchmarkRecordRequestPlusBytes(b *testing.B) {
	r := New(Options{Rings: 1, NoRuntimeCollectors: true})
	r.Preresolve(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.BytesIn(1024)
		r.Request(0, time.Duration(i%4096)*time.Microsecond)
		r.BytesOut(64)
		r.RingCQEs(0, 2)
	}
}

// BenchmarkBaselineNoMetrics is the same loop with a nil Registry, the cost
// of the calls alone, for comparison.
func BenchmarkBaselineNoMetrics(b *testing.B) {
	var r *Registry
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.BytesIn(1024)
		r.Request(0, time.Duration(i%4096)*time.Microsecond)
		r.BytesOut(64)
		r.RingCQEs(0, 2)
	}
}

// The log cleaner's series exist once WatchCleaner is called, read its
// figures at every scrape, and count the time since the last round from
// the cleaner's start before the first one.
func TestCleanerSeries(t *testing.T) {
	r := New(Options{NoRuntimeCollectors: true})
	base, _ := serve(t, r, false)
	if _, body := scrape(t, base+"/metrics"); strings.Contains(body, "log_cleaner") {
		t.Fatalf("cleaner series without a cleaner:\n%s", body)
	}
	var mu sync.Mutex
	stats := CleanerStats{}
	r.WatchCleaner(func() CleanerStats { mu.Lock(); defer mu.Unlock(); return stats })
	r.WatchCleaner(func() CleanerStats { panic("a second WatchCleaner is ignored") })
	_, body := scrape(t, base+"/metrics")
	for _, want := range []string{
		"# TYPE ringbroker_log_cleaner_read_bytes_total counter\nringbroker_log_cleaner_read_bytes_total 0\n",
		"# TYPE ringbroker_log_cleaner_written_bytes_total counter\nringbroker_log_cleaner_written_bytes_total 0\n",
		"# TYPE ringbroker_log_cleaner_recopy_ratio gauge\nringbroker_log_cleaner_recopy_ratio 0\n",
		"# TYPE ringbroker_log_cleaner_seconds_since_last_run gauge\n",
		"# TYPE ringbroker_log_cleaner_max_dirty_ratio gauge\nringbroker_log_cleaner_max_dirty_ratio 0\n",
		"# TYPE ringbroker_log_cleaner_max_buffer_utilization_ratio gauge\nringbroker_log_cleaner_max_buffer_utilization_ratio 0\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	mu.Lock()
	stats = CleanerStats{BytesRead: 4096, BytesWritten: 1024, LastCleanEnd: time.Now(), LastRecopyRatio: 0.25, MaxDirtyRatio: 0.75, MaxBufferUtilization: 0.5}
	mu.Unlock()
	_, body = scrape(t, base+"/metrics")
	for _, want := range []string{
		"ringbroker_log_cleaner_read_bytes_total 4096\n",
		"ringbroker_log_cleaner_written_bytes_total 1024\n",
		"ringbroker_log_cleaner_recopy_ratio 0.25\n",
		"ringbroker_log_cleaner_max_dirty_ratio 0.75\n",
		"ringbroker_log_cleaner_max_buffer_utilization_ratio 0.5\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
}

// seconds_since_last_run on a stepped clock: from the start before the
// first round, from the round's end after it.
func TestCleanerSecondsSinceLastRun(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	now := t0
	var stats CleanerStats
	c := newCleanerCollector(func() CleanerStats { return stats }, func() time.Time { return now })
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	since := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "ringbroker_log_cleaner_seconds_since_last_run" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no seconds_since_last_run")
		return 0
	}
	now = t0.Add(30 * time.Second)
	if got := since(); got != 30 {
		t.Errorf("before the first round: %v, want 30", got)
	}
	stats.LastCleanEnd = t0.Add(40 * time.Second)
	now = t0.Add(45 * time.Second)
	if got := since(); got != 5 {
		t.Errorf("after a round: %v, want 5", got)
	}
}

// TestReplicaFetcherSeries: no series before WatchReplicaFetchers (a
// single node); then one lag series per followed partition and their
// maximum, read at scrape time.
func TestReplicaFetcherSeries(t *testing.T) {
	r := New(Options{NoRuntimeCollectors: true})
	base, _ := serve(t, r, false)
	if _, body := scrape(t, base+"/metrics"); strings.Contains(body, "replica_fetcher") {
		t.Fatalf("replica fetcher series without fetchers:\n%s", body)
	}
	var mu sync.Mutex
	lags := map[int32]int64{}
	r.WatchReplicaFetchers(func(yield func(string, int32, int64)) {
		mu.Lock()
		defer mu.Unlock()
		for p, lag := range lags {
			yield("t", p, lag)
		}
	})
	_, body := scrape(t, base+"/metrics")
	if want := "# TYPE ringbroker_replica_fetcher_max_lag_messages gauge\nringbroker_replica_fetcher_max_lag_messages 0\n"; !strings.Contains(body, want) {
		t.Errorf("scrape lacks %q:\n%s", want, body)
	}
	mu.Lock()
	lags[0], lags[3] = 7, 40
	mu.Unlock()
	_, body = scrape(t, base+"/metrics")
	for _, want := range []string{
		`ringbroker_replica_fetcher_lag_messages{partition="0",topic="t"} 7` + "\n",
		`ringbroker_replica_fetcher_lag_messages{partition="3",topic="t"} 40` + "\n",
		"ringbroker_replica_fetcher_max_lag_messages 40\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
}
