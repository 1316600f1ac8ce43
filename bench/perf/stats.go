package perf

import (
	"fmt"
	"io"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Output formats of Apache Kafka's ProducerPerformance (tools/.../
// ProducerPerformance.java, Stats.printWindow and Stats.printTotal),
// reproduced verbatim so scripts written for the Kafka tool parse ringbench.
const (
	windowFormat = "%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.\n"
	totalFormat  = "%d records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, %d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th.\n"
)

// mib is the Kafka tools' "MB": 1024*1024 bytes.
const mib = 1024 * 1024

// Latency histograms hold microseconds from 1 µs to 10 minutes at three
// significant digits (≤ 0.1% error, ~200 KiB each).
const (
	histMinMicros = 1
	histMaxMicros = int64(10 * time.Minute / time.Microsecond)
	histDigits    = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)
}

// Stats accumulates acknowledged sends like Kafka's Stats class, with an
// HDR histogram instead of Kafka's sampled latency array. It prints a window
// line from Record once the window is at least interval old, exactly when
// the Kafka tool would.
//
// Concurrency: Record may be called from any goroutine (franz-go runs
// promises on its own goroutines); mu guards everything.
type Stats struct {
	mu       sync.Mutex
	out      io.Writer
	interval time.Duration
	start    time.Time
	hist     *hdrhistogram.Histogram

	count, bytes int64
	totalLatency time.Duration
	maxLatency   time.Duration

	windowStart   time.Time
	windowCount   int64
	windowBytes   int64
	windowLatency time.Duration
	windowMax     time.Duration
}

// NewStats starts the clock at start. out receives window lines (nil: none).
func NewStats(out io.Writer, interval time.Duration, start time.Time) *Stats {
	return &Stats{out: out, interval: interval, start: start, windowStart: start, hist: newHistogram()}
}

// Record counts one acknowledged record of n bytes with the given latency,
// completed at now.
func (s *Stats) Record(latency time.Duration, n int, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	s.bytes += int64(n)
	s.totalLatency += latency
	s.maxLatency = max(s.maxLatency, latency)
	s.windowCount++
	s.windowBytes += int64(n)
	s.windowLatency += latency
	s.windowMax = max(s.windowMax, latency)
	s.hist.RecordValue(max(latency.Microseconds(), histMinMicros))
	if s.out != nil && s.interval > 0 && now.Sub(s.windowStart) >= s.interval {
		s.printWindow(now)
		s.windowStart = now
		s.windowCount, s.windowBytes, s.windowLatency, s.windowMax = 0, 0, 0, 0
	}
}

func (s *Stats) printWindow(now time.Time) {
	elapsed := seconds(now.Sub(s.windowStart))
	fmt.Fprintf(s.out, windowFormat,
		s.windowCount,
		float64(s.windowCount)/elapsed,
		float64(s.windowBytes)/elapsed/mib,
		ms(s.windowLatency)/float64(s.windowCount),
		ms(s.windowMax))
}

// seconds is d in seconds, at least 1 ms so a rate is never infinite.
func seconds(d time.Duration) float64 { return max(d.Seconds(), 0.001) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Summary is the final figures of a produce (or end-to-end) run.
type Summary struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"` // MiB/s, as the Kafka tools print
	AvgLatencyMs  float64 `json:"avg_latency_ms"`
	MaxLatencyMs  float64 `json:"max_latency_ms"`
	P50Ms         float64 `json:"p50_ms"`
	P95Ms         float64 `json:"p95_ms"`
	P99Ms         float64 `json:"p99_ms"`
	P999Ms        float64 `json:"p999_ms"`
	// Curve is the latency distribution for plots.
	Curve []Point `json:"latency_curve,omitempty"`
}

// Point is one point of a latency percentile curve.
type Point struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// curvePercentiles are the points plotted on latency curves.
var curvePercentiles = []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100}

// Summary returns the totals as of end.
func (s *Stats) Summary(end time.Time) Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return summarize(s.hist, s.count, s.bytes, s.totalLatency, s.maxLatency, end.Sub(s.start))
}

func summarize(h *hdrhistogram.Histogram, count, bytes int64, total, maxLatency time.Duration, elapsed time.Duration) Summary {
	sec := seconds(elapsed)
	sum := Summary{
		Records:       count,
		Bytes:         bytes,
		Seconds:       elapsed.Seconds(),
		RecordsPerSec: float64(count) / sec,
		MBPerSec:      float64(bytes) / sec / mib,
		MaxLatencyMs:  ms(maxLatency),
	}
	if count > 0 {
		sum.AvgLatencyMs = ms(total) / float64(count)
		q := func(p float64) float64 { return float64(h.ValueAtPercentile(p)) / 1000 }
		sum.P50Ms, sum.P95Ms, sum.P99Ms, sum.P999Ms = q(50), q(95), q(99), q(99.9)
		for _, p := range curvePercentiles {
			sum.Curve = append(sum.Curve, Point{Percentile: p, Ms: q(p)})
		}
	}
	return sum
}

// PrintTotal writes the Kafka tool's final line for the summary. The
// percentiles are whole milliseconds (floored), as Kafka prints them.
func PrintTotal(w io.Writer, s Summary) {
	fmt.Fprintf(w, totalFormat, s.Records, s.RecordsPerSec, s.MBPerSec, s.AvgLatencyMs, s.MaxLatencyMs,
		int64(s.P50Ms), int64(s.P95Ms), int64(s.P99Ms), int64(s.P999Ms))
}
