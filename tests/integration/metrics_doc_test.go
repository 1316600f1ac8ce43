//go:build linux

package integration

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docMetric is one row of the metrics table in docs/ARCHITECTURE.md.
type docMetric struct {
	name, kind string
	uringOnly  bool
	// compactedOnly: the series moves only when the log cleaner cleans a
	// compacted topic, which this test's traffic does not make.
	compactedOnly bool
	// clusterOnly: the series exists only on a node of a cluster (the
	// replica fetchers'), not on this test's single node.
	clusterOnly bool
}

// docMetricRow matches "| `ringbroker_name{labels}` | type | meaning |".
var docMetricRow = regexp.MustCompile("^\\| `(ringbroker_[a-z_]+)(\\{[a-z,]*\\})?` \\| (counter|gauge|histogram) \\| (.*)\\|$")

// documentedMetrics reads the metrics table of docs/ARCHITECTURE.md.
func documentedMetrics(t *testing.T) []docMetric {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []docMetric
	for _, line := range strings.Split(string(data), "\n") {
		if m := docMetricRow.FindStringSubmatch(line); m != nil {
			out = append(out, docMetric{name: m[1], kind: m[3], uringOnly: strings.Contains(m[4], "io_uring backend only"),
				compactedOnly: strings.Contains(m[4], "compacted topics only"), clusterOnly: strings.Contains(m[4], "cluster mode only")})
		}
	}
	if len(out) < 10 {
		t.Fatalf("docs/ARCHITECTURE.md lists %d ringbroker metrics, the table did not parse", len(out))
	}
	return out
}

// TestMetricsAllRecorded: after real traffic (franz-go produce with an
// fdatasync per message, then a consume) every series the docs list is on
// /metrics and non-zero (counters and histogram counts), and /metrics has
// no ringbroker series the docs do not list. It caught append_write_* and
// log_fsync_duration_seconds registered but never recorded.
func TestMetricsAllRecorded(t *testing.T) {
	documented := documentedMetrics(t)
	forEachBackend(t, func(t *testing.T, backend string) {
		metricsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		b := startBroker(t, backend, map[string]string{
			"metrics.listener":            metricsAddr,
			"metrics.topic.bytes.enable":  "true",
			"log.flush.interval.messages": "1",
		})
		const topic = "all-metrics"
		createTopic(t, b.Addr, topic, 1, nil)
		recs := spreadRecords(topic, 200, 1, 100, false)
		produceSync(t, newClient(t, b.Addr), topic, recs)
		got := consumeFranz(t, b.Addr, topic, fromStart(1), len(recs))
		verifyRecords(t, topic, recs, got, nil)

		types, samples := scrapeFamilies(t, metricsAddr)
		listed := map[string]bool{}
		for _, m := range documented {
			listed[m.name] = true
			kind, ok := types[m.name]
			if !ok && m.clusterOnly {
				continue
			}
			if !ok {
				t.Errorf("%s is in docs/ARCHITECTURE.md but not on /metrics", m.name)
				continue
			}
			if kind != m.kind {
				t.Errorf("%s is a %s on /metrics, the docs say %s", m.name, kind, m.kind)
			}
			var total float64
			switch kind {
			case "histogram":
				total = sumSeries(samples, m.name+"_count")
			case "counter":
				total = sumSeries(samples, m.name)
			default:
				continue // a gauge is a current value: zero is honest when idle
			}
			t.Logf("%s: %v", m.name, total)
			if m.uringOnly && backend != "uring" || m.compactedOnly {
				continue
			}
			if total <= 0 {
				t.Errorf("%s is %v after 200 produced (fdatasync each) and consumed records, want > 0", m.name, total)
			}
		}
		for name := range types {
			if strings.HasPrefix(name, "ringbroker_") && !listed[name] {
				t.Errorf("/metrics serves %s, which docs/ARCHITECTURE.md does not list", name)
			}
		}
	})
}

// scrapeFamilies fetches /metrics and returns each family's type (from its
// "# TYPE" line) and every sample by series.
func scrapeFamilies(t *testing.T, addr string) (map[string]string, map[string]float64) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	types := map[string]string{}
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); i > 0 && err == nil {
			samples[line[:i]] = v
		}
	}
	return types, samples
}

// sumSeries adds every sample of name, whatever its labels.
func sumSeries(samples map[string]float64, name string) float64 {
	var total float64
	for series, v := range samples {
		if series == name || strings.HasPrefix(series, name+"{") {
			total += v
		}
	}
	return total
}
