package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/bench/nullbroker"
)

// TestMain lets the test binary act as ringbench itself
// (RINGBENCH_AS_MAIN=1), so scripts can call it like the real command.
func TestMain(m *testing.M) {
	if os.Getenv("RINGBENCH_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestPerfTestScriptWithRingbenchAsKafka runs scripts/perf-test.sh with a
// fake $KAFKA_HOME whose kafka-*.sh are this ringbench: that checks the
// script end to end and that ringbench takes the Kafka tools' command lines
// as they are written there. The broker is the null broker (no Fetch, so
// the consumer step times out, which the script tolerates).
func TestPerfTestScriptWithRingbenchAsKafka(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	nb, err := nullbroker.Listen(nullbroker.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	bin := filepath.Join(home, "bin")
	os.MkdirAll(bin, 0o755)
	tools := map[string]string{
		"kafka-topics.sh":             "topic",
		"kafka-producer-perf-test.sh": "produce",
		"kafka-consumer-perf-test.sh": "consume",
		"kafka-run-class.sh":          "",
	}
	for name, sub := range tools {
		body := "#!/bin/sh\nexit 1\n"
		if sub != "" {
			body = fmt.Sprintf("#!/bin/sh\nRINGBENCH_AS_MAIN=1 exec %q %s \"$@\"\n", self, sub)
		}
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, _ := filepath.Abs("../../../scripts/perf-test.sh")
	cmd := exec.Command("bash", script, nb.Addr())
	cmd.Env = append(os.Environ(), "KAFKA_HOME="+home, "BENCH=tiny", "PERF_TIMEOUT_MS=500")
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(50 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("perf-test.sh did not finish:\n%s", out)
	}
	if err != nil {
		t.Fatalf("perf-test.sh: %v\n%s", err, out)
	}
	text := string(out)
	totals := regexp.MustCompile(`(?m)^\d+ records sent, \d+\.\d{6} records/sec`).FindAllString(text, -1)
	if len(totals) != 5 {
		t.Fatalf("want 5 producer summaries, got %d:\n%s", len(totals), text)
	}
	if !strings.Contains(text, "start.time, end.time, data.consumed.in.MB") {
		t.Fatalf("consumer tool not run:\n%s", text)
	}
}
