package metrics

import "github.com/prometheus/client_golang/prometheus"

// logDirsCollector reads the log dirs' online state at scrape time
// (broker/log_dir_failure.go): Kafka's LogManager OfflineLogDirectoryCount
// and LogDirectoryOffline{logDirectory}. One series per log dir plus one.
type logDirsCollector struct {
	state             func() (dirs []string, online []bool)
	offlineCount, dir *prometheus.Desc
}

func (c *logDirsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.offlineCount
	ch <- c.dir
}

func (c *logDirsCollector) Collect(ch chan<- prometheus.Metric) {
	dirs, online := c.state()
	offline := 0
	for i, d := range dirs {
		v := 0.0
		if !online[i] {
			v, offline = 1, offline+1
		}
		ch <- prometheus.MustNewConstMetric(c.dir, prometheus.GaugeValue, v, d)
	}
	ch <- prometheus.MustNewConstMetric(c.offlineCount, prometheus.GaugeValue, float64(offline))
}

// WatchLogDirs exports ringbroker_log_dirs_offline (how many log dirs an
// I/O error took offline) and ringbroker_log_dir_offline{dir} (1 for
// an offline dir, 0 for an online one), calling state at every scrape;
// state must be safe from any goroutine and return slices of equal
// length. A second call is ignored.
func (r *Registry) WatchLogDirs(state func() (dirs []string, online []bool)) {
	if r == nil || state == nil {
		return
	}
	r.logDirsOnce.Do(func() {
		r.reg.MustRegister(&logDirsCollector{state: state,
			offlineCount: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "log_dirs_offline"),
				"Log dirs taken offline by an I/O error (ENOSPC, EIO...) since the start (Kafka's OfflineLogDirectoryCount).", nil, nil),
			dir: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "log_dir_offline"),
				"1 when the log dir was taken offline by an I/O error, else 0 (Kafka's LogDirectoryOffline).", []string{"dir"}, nil),
		})
	})
}
