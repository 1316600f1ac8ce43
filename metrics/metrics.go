// Package metrics is ringbroker's Prometheus instrumentation: one Registry per
// broker process holding every series, with recording methods cheap enough for
// the io_uring loops' hot path.
//
// Hot-path rules (measured by BenchmarkRecordRequest and TestHotPathAllocs):
//   - a recording method never looks up a label map and never allocates once
//     its series exists: per-API series are resolved once, on the first request
//     of that API, and kept in a fixed array indexed by API key (an atomic
//     pointer per slot, so loops on different threads may race to create it);
//     per-ring series are resolved in New; per-topic series are resolved once
//     per topic by Topic and the caller keeps the returned *TopicMetrics;
//   - counters and histograms are the client library's lock-free atomics, so
//     every loop records into the same series without a lock;
//   - a nil *Registry (metrics disabled, tests of other packages) accepts every
//     call and records nothing.
//
// Cardinality: series are per API (only APIs that were used), per ring, and per
// topic only when Options.TopicBytes is set. Nothing is per partition or per
// connection. The log cleaner's figures (WatchCleaner) are read at scrape
// time, one series each.
package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Namespace prefixes every ringbroker metric name.
const Namespace = "ringbroker"

// apiSlots covers every Kafka API key kmsg knows, with room for newer ones;
// keys outside [0, apiSlots) share the last slot, labelled "unknown".
const apiSlots = 128

// Options configures New.
type Options struct {
	Rings      int  // number of event loops; per-ring series for 0..Rings-1
	TopicBytes bool // export per-topic byte counters (metrics.topic.bytes.enable)
	// NoRuntimeCollectors leaves out the Go runtime and process collectors
	// (tests that compare exact output).
	NoRuntimeCollectors bool
	// OnServeError, if set, receives an error that stops the HTTP endpoint
	// after it started (the broker logs it and keeps serving Kafka).
	OnServeError func(error)
}

// Registry holds every ringbroker series. Create it with New; it is safe for
// concurrent use by every loop and goroutine.
type Registry struct {
	reg *prometheus.Registry

	requestsVec *prometheus.CounterVec
	latencyVec  *prometheus.HistogramVec
	apis        [apiSlots]atomic.Pointer[apiMetrics]

	bytesIn, bytesOut prometheus.Counter

	appendBytes   prometheus.Histogram
	appendBatches prometheus.Histogram
	fsyncLatency  prometheus.Histogram

	connections      prometheus.Gauge
	connectionsMuted prometheus.Gauge
	requestsInflight prometheus.Gauge

	ringCQEs    []prometheus.Counter
	ringEnters  []prometheus.Counter
	topicEnable bool
	topicIn     *prometheus.CounterVec
	topicOut    *prometheus.CounterVec

	onServeError func(error)

	cleanerOnce sync.Once // WatchCleaner registers the cleaner's series once (cleaner.go)
	logDirsOnce sync.Once // WatchLogDirs registers the log dir series once (logdirs.go)
	replicaOnce sync.Once // WatchReplicaFetchers registers the fetchers' series once (replica.go)
	quotaOnce   sync.Once // WatchQuotas registers the quota series once (quota.go)
}

// apiMetrics are the resolved series of one API key.
type apiMetrics struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// LatencyBuckets are the request-latency histogram bounds in seconds: 50 µs
// doubling to about 6.5 s, to resolve loopback round trips (~16 µs on our test
// machine) up to long-polled fetches (max.wait.ms defaults to 500 ms).
var LatencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 18)

// New returns a Registry with every series registered.
func New(opts Options) *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), topicEnable: opts.TopicBytes, onServeError: opts.OnServeError}
	f := func(c prometheus.Collector) { r.reg.MustRegister(c) }

	r.requestsVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "requests_total",
		Help: "Kafka requests handled, by API.",
	}, []string{"api"})
	r.latencyVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "request_duration_seconds",
		Help:    "Time from a request's frame being parsed to its response being queued, by API.",
		Buckets: LatencyBuckets,
	}, []string{"api"})
	f(r.requestsVec)
	f(r.latencyVec)

	r.bytesIn = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "network_received_bytes_total",
		Help: "Bytes received from clients (request frames, including the 4-byte length)."})
	r.bytesOut = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "network_sent_bytes_total",
		Help: "Bytes sent to clients (responses, including record bytes sent zero-copy)."})
	f(r.bytesIn)
	f(r.bytesOut)

	r.appendBytes = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "append_write_bytes",
		Help:    "Bytes per appender write (one write may hold several produce batches).",
		Buckets: prometheus.ExponentialBuckets(256, 4, 10)}) // 256 B .. 64 MiB
	r.appendBatches = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "append_write_batches",
		Help:    "Produce record batches coalesced into one appender write.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11)}) // 1 .. 1024
	r.fsyncLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "log_fsync_duration_seconds",
		Help:    "fdatasync latency of partition segment files.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16)}) // 50 µs .. 1.6 s
	f(r.appendBytes)
	f(r.appendBatches)
	f(r.fsyncLatency)

	r.connections = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "connections",
		Help: "Open client connections."})
	r.connectionsMuted = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "connections_muted",
		Help: "Connections whose receive is paused by backpressure (in-flight request or byte bounds)."})
	r.requestsInflight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "requests_inflight",
		Help: "Requests parsed whose response has not been sent yet."})
	f(r.connections)
	f(r.connectionsMuted)
	f(r.requestsInflight)

	cqes := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "ring_cqes_total",
		Help: "Completion queue entries reaped, by event loop (ring index)."}, []string{"ring"})
	enters := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "ring_enter_calls_total",
		Help: "io_uring_enter system calls, by event loop; cqes/enters is the batching factor."}, []string{"ring"})
	f(cqes)
	f(enters)
	for i := 0; i < opts.Rings; i++ {
		label := strconv.Itoa(i)
		r.ringCQEs = append(r.ringCQEs, cqes.WithLabelValues(label))
		r.ringEnters = append(r.ringEnters, enters.WithLabelValues(label))
	}

	if opts.TopicBytes {
		r.topicIn = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "topic_produced_bytes_total",
			Help: "Record bytes appended, by topic (metrics.topic.bytes.enable)."}, []string{"topic"})
		r.topicOut = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "topic_fetched_bytes_total",
			Help: "Record bytes returned by Fetch, by topic (metrics.topic.bytes.enable)."}, []string{"topic"})
		f(r.topicIn)
		f(r.topicOut)
	}
	if !opts.NoRuntimeCollectors {
		f(collectors.NewGoCollector())
		f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return r
}

// Prometheus returns the underlying registry, for tests and for packages that
// register their own collectors (e.g. a log-size gauge computed at scrape time).
func (r *Registry) Prometheus() *prometheus.Registry { return r.reg }

// api returns the series of apiKey, creating them on the first call for that
// key. Creation allocates once; every later call is an array index and an
// atomic load.
func (r *Registry) api(apiKey int16) *apiMetrics {
	slot := int(apiKey)
	if slot < 0 || slot >= apiSlots-1 {
		slot = apiSlots - 1
	}
	if m := r.apis[slot].Load(); m != nil {
		return m
	}
	name := "unknown"
	if slot != apiSlots-1 {
		if n := kmsg.NameForKey(apiKey); n != "" {
			name = n
		} else {
			name = "key" + strconv.Itoa(slot)
		}
	}
	m := &apiMetrics{requests: r.requestsVec.WithLabelValues(name), latency: r.latencyVec.WithLabelValues(name)}
	if !r.apis[slot].CompareAndSwap(nil, m) {
		return r.apis[slot].Load() // another loop created it first; both point at the same series
	}
	return m
}

// Preresolve creates the series of the given API keys now (at startup) so
// they are exported as zero before the first request, and so the first
// request of each API does not pay for creating them.
func (r *Registry) Preresolve(apiKeys ...int16) {
	if r == nil {
		return
	}
	for _, k := range apiKeys {
		r.api(k)
	}
}

// Request records one handled request of apiKey that took d.
func (r *Registry) Request(apiKey int16, d time.Duration) {
	if r == nil {
		return
	}
	m := r.api(apiKey)
	m.requests.Inc()
	m.latency.Observe(d.Seconds())
}

// BytesIn counts n bytes received from clients.
func (r *Registry) BytesIn(n int) {
	if r != nil {
		r.bytesIn.Add(float64(n))
	}
}

// BytesOut counts n bytes sent to clients.
func (r *Registry) BytesOut(n int) {
	if r != nil {
		r.bytesOut.Add(float64(n))
	}
}

// AppendWrite records one appender write of size bytes holding batches
// produce batches.
func (r *Registry) AppendWrite(bytes, batches int) {
	if r != nil {
		r.appendBytes.Observe(float64(bytes))
		r.appendBatches.Observe(float64(batches))
	}
}

// Fsync records one fdatasync that took d.
func (r *Registry) Fsync(d time.Duration) {
	if r != nil {
		r.fsyncLatency.Observe(d.Seconds())
	}
}

// ConnOpened and ConnClosed track open connections.
func (r *Registry) ConnOpened() {
	if r != nil {
		r.connections.Inc()
	}
}

// ConnClosed is the counterpart of ConnOpened.
func (r *Registry) ConnClosed() {
	if r != nil {
		r.connections.Dec()
	}
}

// ConnMuted and ConnUnmuted track connections paused by backpressure. Call
// each once per transition, not per request.
func (r *Registry) ConnMuted() {
	if r != nil {
		r.connectionsMuted.Inc()
	}
}

// ConnUnmuted is the counterpart of ConnMuted.
func (r *Registry) ConnUnmuted() {
	if r != nil {
		r.connectionsMuted.Dec()
	}
}

// InflightAdd adds delta (+1 on parse, -1 when the response is sent) to the
// in-flight requests gauge.
func (r *Registry) InflightAdd(delta int) {
	if r != nil {
		r.requestsInflight.Add(float64(delta))
	}
}

// RingCQEs counts n completions reaped by ring. Rings outside the range given
// to New are ignored (never a panic on the hot path).
func (r *Registry) RingCQEs(ring, n int) {
	if r != nil && uint(ring) < uint(len(r.ringCQEs)) {
		r.ringCQEs[ring].Add(float64(n))
	}
}

// RingEnter counts one io_uring_enter call by ring.
func (r *Registry) RingEnter(ring int) {
	if r != nil && uint(ring) < uint(len(r.ringEnters)) {
		r.ringEnters[ring].Inc()
	}
}

// TopicMetrics are one topic's byte counters. A nil *TopicMetrics (per-topic
// metrics disabled) accepts calls and records nothing.
type TopicMetrics struct {
	in, out prometheus.Counter
}

// Topic returns topic's counters, creating them (one allocation) on first use;
// it does a map lookup, so call it when the topic is created or loaded and
// keep the pointer with the topic. It returns nil when per-topic metrics are
// disabled.
func (r *Registry) Topic(topic string) *TopicMetrics {
	if r == nil || !r.topicEnable {
		return nil
	}
	return &TopicMetrics{in: r.topicIn.WithLabelValues(topic), out: r.topicOut.WithLabelValues(topic)}
}

// DeleteTopic removes topic's series (after DeleteTopics) so a deleted topic
// stops being exported.
func (r *Registry) DeleteTopic(topic string) {
	if r == nil || !r.topicEnable {
		return
	}
	r.topicIn.DeleteLabelValues(topic)
	r.topicOut.DeleteLabelValues(topic)
}

// Produced counts n record bytes appended to the topic.
func (t *TopicMetrics) Produced(n int) {
	if t != nil {
		t.in.Add(float64(n))
	}
}

// Fetched counts n record bytes fetched from the topic.
func (t *TopicMetrics) Fetched(n int) {
	if t != nil {
		t.out.Add(float64(n))
	}
}
