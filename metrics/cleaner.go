package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CleanerStats are the log cleaner's figures as the metrics export them:
// the broker copies them from storage.CleanerStats (metrics depends on no
// other ringbroker package).
type CleanerStats struct {
	BytesRead    int64     // bytes of segments read by cleaning passes, since start
	BytesWritten int64     // bytes of cleaned segments written, since start
	LastCleanEnd time.Time // zero before the first cleaning round
	// LastRecopyRatio is written/read of the last round (Kafka's
	// cleaner-recopy-percent / 100).
	LastRecopyRatio float64
	// MaxDirtyRatio is the largest dirty ratio of a compacted log at the
	// cleaner's last look (Kafka's max-dirty-percent / 100).
	MaxDirtyRatio float64
	// MaxBufferUtilization is how full the fullest key map got in the last
	// round (Kafka's max-buffer-utilization-percent / 100).
	MaxBufferUtilization float64
}

// cleanerCollector reads the cleaner's figures at scrape time: six series,
// none per partition or per topic, and nothing on any hot path.
type cleanerCollector struct {
	stats   func() CleanerStats
	started time.Time        // the base of seconds_since_last_run before the first round (Kafka's time-since-last-run-ms starts at the cleaner's start)
	now     func() time.Time // time.Now; tests replace it

	read, written, recopy, sinceLast, maxDirty, maxBuffer *prometheus.Desc
}

func newCleanerCollector(stats func() CleanerStats, now func() time.Time) *cleanerCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "log_cleaner", name), help, nil, nil)
	}
	return &cleanerCollector{stats: stats, started: now(), now: now,
		read:      d("read_bytes_total", "Bytes of segments the log cleaner read in its cleaning passes."),
		written:   d("written_bytes_total", "Bytes of cleaned segments the log cleaner wrote."),
		recopy:    d("recopy_ratio", "Bytes written / bytes read by the last cleaning round (Kafka's cleaner-recopy-percent / 100); 0 before the first."),
		sinceLast: d("seconds_since_last_run", "Seconds since the log cleaner last finished a round, or since it started if it has not yet (Kafka's time-since-last-run-ms)."),
		maxDirty:  d("max_dirty_ratio", "Largest dirty ratio of a compacted log at the cleaner's last look (Kafka's max-dirty-percent / 100)."),
		maxBuffer: d("max_buffer_utilization_ratio", "How full the fullest key map got in the last cleaning round (Kafka's max-buffer-utilization-percent / 100)."),
	}
}

func (c *cleanerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.read, c.written, c.recopy, c.sinceLast, c.maxDirty, c.maxBuffer} {
		ch <- d
	}
}

func (c *cleanerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	last := s.LastCleanEnd
	if last.IsZero() {
		last = c.started
	}
	since := max(c.now().Sub(last).Seconds(), 0)
	ch <- prometheus.MustNewConstMetric(c.read, prometheus.CounterValue, float64(s.BytesRead))
	ch <- prometheus.MustNewConstMetric(c.written, prometheus.CounterValue, float64(s.BytesWritten))
	ch <- prometheus.MustNewConstMetric(c.recopy, prometheus.GaugeValue, s.LastRecopyRatio)
	ch <- prometheus.MustNewConstMetric(c.sinceLast, prometheus.GaugeValue, since)
	ch <- prometheus.MustNewConstMetric(c.maxDirty, prometheus.GaugeValue, s.MaxDirtyRatio)
	ch <- prometheus.MustNewConstMetric(c.maxBuffer, prometheus.GaugeValue, s.MaxBufferUtilization)
}

// WatchCleaner exports the log cleaner's figures (ringbroker_log_cleaner_*),
// calling stats at every scrape; stats must be safe to call from any
// goroutine (storage.Cleaner.Stats is). Call it when the broker runs a
// cleaner (log.cleaner.enable): without one no cleaner series exist. A
// second call is ignored.
func (r *Registry) WatchCleaner(stats func() CleanerStats) {
	if r == nil || stats == nil {
		return
	}
	r.cleanerOnce.Do(func() { r.reg.MustRegister(newCleanerCollector(stats, time.Now)) })
}
