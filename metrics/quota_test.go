package metrics

import "testing"

// The quota series carry the rates the broker hands over, labelled by
// type, user and client id; none when there are no rates.
func TestQuotaSeries(t *testing.T) {
	r := New(Options{})
	var stats []QuotaStat
	r.WatchQuotas(func() []QuotaStat { return stats })
	r.WatchQuotas(func() []QuotaStat { t.Fatal("second WatchQuotas used"); return nil })
	count := func() map[string]float64 {
		t.Helper()
		mfs, err := r.Prometheus().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
				out[mf.GetName()] += v
			}
		}
		return out
	}
	if got := count(); got["ringbroker_quota_rate"] != 0 {
		t.Fatalf("quota series without rates: %v", got)
	}
	stats = []QuotaStat{{Type: "Produce", ClientID: "c", Quota: 1024, Rate: 2048, ThrottleMs: 1500, Throttled: 3}}
	got := count()
	for name, want := range map[string]float64{"ringbroker_quota_limit": 1024, "ringbroker_quota_rate": 2048,
		"ringbroker_quota_throttle_time_ms_total": 1500, "ringbroker_quota_throttled_responses_total": 3} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}
