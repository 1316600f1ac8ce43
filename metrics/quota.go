package metrics

import "github.com/prometheus/client_golang/prometheus"

// QuotaStat is one client quota rate as the metrics export it (the broker
// copies quota.Stat: metrics depends on no other ringbroker package).
type QuotaStat struct {
	Type     string // Produce, Fetch, Request, ControllerMutation
	User     string // "" when the rate is shared by every user
	ClientID string // "" when shared by every client id
	Quota    float64
	Rate     float64 // per second (bytes, percent, mutations)
	// ThrottleMs is the total throttle time handed out, milliseconds;
	// Throttled the responses that carried one.
	ThrottleMs int64
	Throttled  int64
}

// quotaCollector reads the quota rates at scrape time. Its cardinality is
// bounded by the caller (the broker asks for at most a fixed number of
// rates per type, the most recently used), as Kafka's per-client quota
// sensors are bounded by their expiry.
type quotaCollector struct {
	stats                       func() []QuotaStat
	quota, rate, throttle, hits *prometheus.Desc
}

// WatchQuotas exports the client quota rates stats returns (Kafka's
// kafka.server:type={Produce,Fetch,Request,ControllerMutation} metrics
// per user and client-id: byte-rate / request-time / mutation-rate and
// throttle-time). The first call per registry wins.
func (r *Registry) WatchQuotas(stats func() []QuotaStat) {
	if r == nil {
		return
	}
	r.quotaOnce.Do(func() { r.registerQuotas(stats) })
}

func (r *Registry) registerQuotas(stats func() []QuotaStat) {
	labels := []string{"type", "user", "client_id"}
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "quota", name), help, labels, nil)
	}
	r.reg.MustRegister(&quotaCollector{stats: stats,
		quota:    d("limit", "The client quota the rate is held to (bytes/s, percent, mutations/s)."),
		rate:     d("rate", "The client's measured rate over the quota window (Kafka's byte-rate, request-time, mutation-rate)."),
		throttle: d("throttle_time_ms_total", "Throttle time handed out to the client, milliseconds (Kafka's throttle-time)."),
		hits:     d("throttled_responses_total", "Responses to the client that carried a throttle."),
	})
}

func (c *quotaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.quota, c.rate, c.throttle, c.hits} {
		ch <- d
	}
}

func (c *quotaCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		l := []string{s.Type, s.User, s.ClientID}
		ch <- prometheus.MustNewConstMetric(c.quota, prometheus.GaugeValue, s.Quota, l...)
		ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, s.Rate, l...)
		ch <- prometheus.MustNewConstMetric(c.throttle, prometheus.CounterValue, float64(s.ThrottleMs), l...)
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Throttled), l...)
	}
}
