package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// ReplicaLags calls yield once for every partition this node follows whose
// lag is known: the leader's high watermark at the fetcher's last answer
// minus the follower's log end after it, never below 0 (Kafka's
// FetcherLagMetrics ConsumerLag). It must be safe to call from any
// goroutine; the daemon passes replica.Manager.Lags.
type ReplicaLags func(yield func(topic string, partition int32, lag int64))

// replicaCollector reads the replica fetchers' lags at scrape time: one
// series per followed partition plus their maximum, nothing on any hot
// path.
type replicaCollector struct {
	lags        ReplicaLags
	lag, maxLag *prometheus.Desc
}

func newReplicaCollector(lags ReplicaLags) *replicaCollector {
	return &replicaCollector{lags: lags,
		lag: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "replica_fetcher", "lag_messages"),
			"Offsets a followed partition is behind its leader, as the follower saw at its last fetch: the leader's high watermark minus the follower's log end, at least 0 (Kafka's FetcherLagMetrics ConsumerLag).",
			[]string{"topic", "partition"}, nil),
		maxLag: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "replica_fetcher", "max_lag_messages"),
			"Largest lag of any partition this node follows (Kafka's ReplicaFetcherManager MaxLag); 0 when it follows none.",
			nil, nil),
	}
}

func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.maxLag
}

func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	maxLag := int64(0)
	c.lags(func(topic string, partition int32, lag int64) {
		maxLag = max(maxLag, lag)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(lag), topic, strconv.Itoa(int(partition)))
	})
	ch <- prometheus.MustNewConstMetric(c.maxLag, prometheus.GaugeValue, float64(maxLag))
}

// WatchReplicaFetchers exports the replica fetchers' lags
// (ringbroker_replica_fetcher_*), calling lags at every scrape. Cluster
// mode only: a single node has no fetchers and no such series. A second
// call is ignored.
func (r *Registry) WatchReplicaFetchers(lags ReplicaLags) {
	if r == nil || lags == nil {
		return
	}
	r.replicaOnce.Do(func() { r.reg.MustRegister(newReplicaCollector(lags)) })
}
