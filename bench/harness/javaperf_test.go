package harness

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

func TestParseJavaPerf(t *testing.T) {
	// Kafka 3.9's output: progress lines, then the total.
	out := []byte(`249906 records sent, 49981.2 records/sec (4.77 MB/sec), 2.1 ms avg latency, 187.0 ms max latency.
400000 records sent, 49975.012494 records/sec (4.77 MB/sec), 1.93 ms avg latency, 187.00 ms max latency, 1 ms 50th, 3 ms 95th, 7 ms 99th, 41 ms 99.9th.
`)
	r, err := parseJavaPerf(out)
	if err != nil {
		t.Fatal(err)
	}
	want := JavaPerfResult{Records: 400000, RecordsPerSec: 49975.012494, MBPerSec: 4.77, AvgMs: 1.93, MaxMs: 187,
		P50Ms: 1, P95Ms: 3, P99Ms: 7, P999Ms: 41}
	if r != want {
		t.Fatalf("parsed %+v, want %+v", r, want)
	}
	if _, err := parseJavaPerf([]byte("Exception in thread \"main\"")); err == nil {
		t.Fatal("no final line accepted")
	}
	if got := javaP99Ratio(Run{P99Ms: 2}, Run{P99Ms: 0}); got != 2 {
		t.Fatalf("ratio to a 0 ms peer = %v, want 2 (0 ms counts as 1 ms)", got)
	}
}

// TestJavaScenarioSkippedWithoutBin: without KAFKA_JAVA_BIN the java-50k
// scenario does not run and goal 1d says so instead of passing.
func TestJavaScenarioSkippedWithoutBin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, bin := range []string{"", t.TempDir()} {
		res, err := Execute(ctx, Options{Mode: ModeTiny, OutDir: t.TempDir(), Ringbrokerd: "-",
			NullBroker: []string{"true"}, Scenarios: []string{ScenarioJava50k}, SkipProbe: true, JavaBin: bin})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Runs) != 0 {
			t.Errorf("JavaBin %q: %d runs, want none", bin, len(res.Runs))
		}
		for _, g := range res.Goals {
			if g.ID == "1d" && (g.Status != "n/a" || !strings.Contains(g.Why, "KAFKA_JAVA_BIN")) {
				t.Errorf("JavaBin %q: goal 1d %+v", bin, g)
			}
		}
	}
}

// TestJavaScenarioTiny runs the java-50k scenario in tiny mode with
// ringbench standing in for Kafka's bin directory (it takes the Java tool's
// flags and prints its final line): the kfake peer is built and started,
// runs on it and on ringbrokerd parse, and goal 1d is computed.
func TestJavaScenarioTiny(t *testing.T) {
	dir := t.TempDir()
	ringbench := filepath.Join(dir, "ringbench")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := daemontest.Build(ctx, "./bench/cmd/ringbench", ringbench); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nexec " + ringbench + " produce \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "kafka-producer-perf-test.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var table, log bytes.Buffer
	res, err := Execute(ctx, Options{
		Mode: ModeTiny, OutDir: t.TempDir(), Ringbrokerd: os.Getenv("RINGBROKERD"), Backends: []string{"uring"},
		Scenarios: []string{ScenarioJava50k}, SkipProbe: true, JavaBin: dir, Out: &table, Log: &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("\n%s", table.String())
	byTarget := map[string]Run{}
	for _, r := range res.Runs {
		byTarget[r.Target] = r
		if r.Target == TargetNull {
			t.Errorf("java-50k ran on the null broker: %+v", r)
		}
	}
	if r := byTarget[TargetKfake]; !r.OK() || r.Java == nil || r.Java.Records != 5000 || r.RecordsPerSec <= 0 {
		t.Fatalf("kfake run: %+v\n%s", r, log.String())
	}
	if os.Getenv("RINGBROKERD") == "-" {
		return
	}
	if r := byTarget[TargetRingbrokerUring]; !r.OK() || r.Java == nil || r.Note != "" {
		t.Fatalf("ringbrokerd run: %+v\n%s", r, log.String())
	}
	for _, g := range res.Goals {
		if g.ID == "1d" && (g.Status == "n/a" || len(g.Values) != 1) {
			t.Errorf("goal 1d not computed: %+v", g)
		}
	}
}
