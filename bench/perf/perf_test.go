package perf

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/bench/nullbroker"
)

// Regular expressions written from the format strings of Apache Kafka's
// ProducerPerformance.printWindow / printTotal and ConsumerPerformance:
// "%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.%n"
// "%d records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency,
//
//	%d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th.%n"
//
// "%s, %s, %.4f, %.4f, %d, %.4f, %d, %d, %.4f, %.4f%n" (dates "yyyy-MM-dd HH:mm:ss:SSS").
var (
	kafkaWindowRE = regexp.MustCompile(`^(\d+) records sent, (\d+\.\d) records/sec \((\d+\.\d{2}) MB/sec\), (\d+\.\d) ms avg latency, (\d+\.\d) ms max latency\.$`)
	kafkaTotalRE  = regexp.MustCompile(`^(\d+) records sent, (\d+\.\d{6}) records/sec \((\d+\.\d{2}) MB/sec\), (\d+\.\d{2}) ms avg latency, (\d+\.\d{2}) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$`)
	kafkaDate     = `\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}:\d{3}`
	kafkaConsRE   = regexp.MustCompile(`^` + kafkaDate + `, ` + kafkaDate + `, \d+\.\d{4}, \d+\.\d{4}, \d+, \d+\.\d{4}, \d+, \d+, \d+\.\d{4}, \d+\.\d{4}$`)
)

func TestProducerPropsMapping(t *testing.T) {
	cases := []struct {
		name    string
		props   map[string]string
		check   func(ProducerSettings) bool
		wantErr string
	}{
		{"java defaults", map[string]string{"bootstrap.servers": "a:1,b:2"}, func(s ProducerSettings) bool {
			return s.Acks == -1 && s.Idempotent && s.Linger == 5*time.Millisecond && s.BatchBytes == 16384 &&
				s.Compression == "none" && s.MaxInFlight == 5 && s.ClientID == "perf-producer-client" &&
				len(s.Bootstrap) == 2 && s.BufferMemory == 32<<20
		}, ""},
		{"acks=1 turns idempotence off silently", map[string]string{"acks": "1"}, func(s ProducerSettings) bool {
			return s.Acks == 1 && !s.Idempotent
		}, ""},
		{"acks=all explicit idempotent", map[string]string{"acks": "all", "enable.idempotence": "true"}, func(s ProducerSettings) bool {
			return s.Acks == -1 && s.Idempotent
		}, ""},
		{"acks=-1", map[string]string{"acks": "-1"}, func(s ProducerSettings) bool { return s.Acks == -1 }, ""},
		{"acks=0", map[string]string{"acks": "0"}, func(s ProducerSettings) bool { return s.Acks == 0 && !s.Idempotent }, ""},
		{"linger batch compression", map[string]string{"linger.ms": "1", "batch.size": "1048576", "compression.type": "ZSTD"},
			func(s ProducerSettings) bool {
				return s.Linger == time.Millisecond && s.BatchBytes == 1048576 && s.Compression == "zstd"
			}, ""},
		{"in flight 10 disables implicit idempotence", map[string]string{"max.in.flight.requests.per.connection": "10"},
			func(s ProducerSettings) bool { return s.MaxInFlight == 10 && !s.Idempotent }, ""},
		{"idempotence off", map[string]string{"enable.idempotence": "false"}, func(s ProducerSettings) bool { return !s.Idempotent }, ""},
		{"unknown keys reported", map[string]string{"ssl.truststore.location": "x", "key.serializer": "y"},
			func(s ProducerSettings) bool { return len(s.Ignored) == 1 && s.Ignored[0] == "ssl.truststore.location" }, ""},
		{"idempotent needs acks=all", map[string]string{"acks": "1", "enable.idempotence": "true"}, nil, "acks to all"},
		{"idempotent needs in flight <= 5", map[string]string{"max.in.flight.requests.per.connection": "6", "enable.idempotence": "true"}, nil, "at most 5"},
		{"bad acks", map[string]string{"acks": "2"}, nil, "acks"},
		{"bad compression", map[string]string{"compression.type": "brotli"}, nil, "compression.type"},
		{"bad linger", map[string]string{"linger.ms": "-1"}, nil, "linger.ms"},
		{"transactional.id is idempotent", map[string]string{"transactional.id": "x"},
			func(s ProducerSettings) bool { return s.TransactionalID == "x" && s.Idempotent }, ""},
		{"transactional.id needs idempotence", map[string]string{"transactional.id": "x", "enable.idempotence": "false"}, nil, "idempotence"},
		{"transactional.id needs acks=all", map[string]string{"transactional.id": "x", "acks": "1"}, nil, "acks to all"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseProducerProps(tc.props)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(s) {
				t.Fatalf("settings %+v", s)
			}
			if len(s.Opts(100)) == 0 {
				t.Fatal("no kgo options")
			}
		})
	}
}

func TestMergePropsPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/p.properties"
	if err := writeFile(path, "# comment\nacks=1\nlinger.ms : 7\n\nbootstrap.servers=x:1\n"); err != nil {
		t.Fatal(err)
	}
	props, err := MergeProps(path, []string{"acks=all"})
	if err != nil {
		t.Fatal(err)
	}
	if props["acks"] != "all" || props["linger.ms"] != "7" || props["bootstrap.servers"] != "x:1" {
		t.Fatalf("props %v", props)
	}
	if _, err := MergeProps("", []string{"a=b=c"}); err == nil {
		t.Fatal("a=b=c accepted (Kafka rejects it)")
	}
}

// TestProduceOutputMatchesKafka produces against the null broker with a
// short window and checks every line against the Kafka tool's formats.
func TestProduceOutputMatchesKafka(t *testing.T) {
	nb, err := nullbroker.Listen(nullbroker.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	settings, err := ParseProducerProps(map[string]string{"bootstrap.servers": nb.Addr(), "linger.ms": "1"})
	if err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	res, err := RunProduce(context.Background(), ProduceConfig{
		Topic: "fmt", NumRecords: 4000, RecordSize: 100, Throughput: 8000,
		Producer: settings, ReportInterval: 100 * time.Millisecond, Out: &out, Errors: &errs,
	})
	if err != nil {
		t.Fatal(err, errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("want window lines and a total, got %q", out.String())
	}
	for _, l := range lines[:len(lines)-1] {
		if !kafkaWindowRE.MatchString(l) {
			t.Errorf("window line does not match Kafka's format: %q", l)
		}
	}
	m := kafkaTotalRE.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("total line does not match Kafka's format: %q", lines[len(lines)-1])
	}
	if m[1] != "4000" || res.Records != 4000 || res.Failed != 0 {
		t.Fatalf("records %s / %+v", m[1], res)
	}
	// The rate cap held: 4000 records at 8000/s take about half a second.
	if res.Seconds < 0.4 {
		t.Fatalf("throttled run took %.3fs, want >= 0.4s", res.Seconds)
	}
	if res.P50Ms <= 0 || res.P999Ms < res.P50Ms || len(res.Curve) == 0 {
		t.Fatalf("percentiles %+v", res.Summary)
	}
}

func TestConsumeFormat(t *testing.T) {
	layout := javaDateFormat("")
	now := time.Date(2026, 11, 22, 4, 5, 6, 7e6, time.UTC)
	line := fmt.Sprintf(consumeTotalFormat, formatDate(now, layout), formatDate(now, layout), 95.3674, 47.6837, 1000000, 500000.0, 0, 2000, 47.6837, 500000.0)
	if !kafkaConsRE.MatchString(strings.TrimSpace(line)) {
		t.Fatalf("consumer summary does not match Kafka's format: %q", line)
	}
	if got := formatDate(now, layout); got != "2026-11-22 04:05:06:007" {
		t.Fatalf("date = %q", got)
	}
	if !strings.HasPrefix(consumeHeader, "start.time, end.time, data.consumed.in.MB, MB.sec") {
		t.Fatal("header")
	}
}

// TestUnsupportedBrokerFailsFast checks that a run against a broker that
// does not serve Produce ends quickly with ErrNothingAcknowledged.
func TestUnsupportedBrokerFailsFast(t *testing.T) {
	settings, _ := ParseProducerProps(map[string]string{"bootstrap.servers": "127.0.0.1:1", "delivery.timeout.ms": "1000"})
	start := time.Now()
	_, err := RunProduce(context.Background(), ProduceConfig{
		Topic: "x", NumRecords: 1000, RecordSize: 10, Throughput: -1, Producer: settings, MaxDuration: 2 * time.Second,
	})
	if err == nil {
		t.Fatal("produce to a closed port succeeded")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("took %v", d)
	}
}
