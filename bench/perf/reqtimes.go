package perf

import (
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RequestTimes is the client's view of one API's requests (franz-go's
// HookBrokerE2E): how long each waited in the client before being written
// (WriteWait: behind the in-flight limit or the connection) and its round
// trip from the start of the write to the end of the read of its response
// (the broker's time plus the network and both ends' scheduling). Beside
// the broker's own trace of the same requests (BENCH_TRACE=1) it tells
// the broker's share of a latency tail from the client's.
type RequestTimes struct {
	Requests  int64   `json:"requests"`
	WaitP50Ms float64 `json:"write_wait_p50_ms"`
	WaitP99Ms float64 `json:"write_wait_p99_ms"`
	WaitP999  float64 `json:"write_wait_p999_ms"`
	RTTP50Ms  float64 `json:"round_trip_p50_ms"`
	RTTP99Ms  float64 `json:"round_trip_p99_ms"`
	RTTP999Ms float64 `json:"round_trip_p999_ms"`
	RTTMaxMs  float64 `json:"round_trip_max_ms"`
}

// requestHook records RequestTimes of the requests with one API key.
type requestHook struct {
	key  int16
	mu   sync.Mutex
	wait *hdrhistogram.Histogram
	rtt  *hdrhistogram.Histogram
	n    int64
}

func newRequestHook(key int16) *requestHook {
	return &requestHook{key: key, wait: newHistogram(), rtt: newHistogram()}
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (h *requestHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key != h.key || e.Err() != nil {
		return
	}
	h.mu.Lock()
	h.n++
	_ = h.wait.RecordValue(max(e.WriteWait.Microseconds(), histMinMicros))
	_ = h.rtt.RecordValue(max(e.DurationE2E().Microseconds(), histMinMicros))
	h.mu.Unlock()
}

func (h *requestHook) times() RequestTimes {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := func(hist *hdrhistogram.Histogram, p float64) float64 {
		return float64(hist.ValueAtQuantile(p)) / 1e3
	}
	return RequestTimes{
		Requests:  h.n,
		WaitP50Ms: q(h.wait, 50), WaitP99Ms: q(h.wait, 99), WaitP999: q(h.wait, 99.9),
		RTTP50Ms: q(h.rtt, 50), RTTP99Ms: q(h.rtt, 99), RTTP999Ms: q(h.rtt, 99.9),
		RTTMaxMs: float64(h.rtt.Max()) / 1e3,
	}
}

var _ kgo.HookBrokerE2E = (*requestHook)(nil)
