package harness

// Issue 20's goal 1d: Apache Kafka's own Java producer tool,
// kafka-producer-perf-test.sh, at a fixed 50,000 records/s against
// ringbrokerd and against franz-go's in-memory kfake cluster
// (bench/cmd/kfakepeer) in the same run, the targets interleaved like every
// other scenario. The Java tool is not part of this repository: the run
// happens only when Options.JavaBin (KAFKA_JAVA_BIN) names a Kafka bin
// directory, and the goal row says it was not run otherwise.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/ringbroker/ringbroker/bench/perf"
	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// TargetKfake is the in-memory peer: franz-go's kfake, not a real broker.
const TargetKfake = "kfake-inmemory"

// javaTotalRE matches the Java tool's final line (ProducerPerformance
// printTotal, Kafka 3.9):
//
//	%d records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency,
//	%.2f ms max latency, %d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th.
var javaTotalRE = regexp.MustCompile(`(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.`)

// JavaPerfResult is the Java tool's final line.
type JavaPerfResult struct {
	Records       int64   `json:"records"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	AvgMs         float64 `json:"avg_ms"`
	MaxMs         float64 `json:"max_ms"`
	// Percentiles, whole milliseconds as the tool prints them.
	P50Ms  int `json:"p50_ms"`
	P95Ms  int `json:"p95_ms"`
	P99Ms  int `json:"p99_ms"`
	P999Ms int `json:"p999_ms"`
}

// parseJavaPerf finds the tool's final line in its output.
func parseJavaPerf(out []byte) (JavaPerfResult, error) {
	all := javaTotalRE.FindAllSubmatch(out, -1)
	if len(all) == 0 {
		return JavaPerfResult{}, errors.New("no final line in kafka-producer-perf-test.sh's output")
	}
	m := all[len(all)-1]
	f := func(i int) float64 { v, _ := strconv.ParseFloat(string(m[i]), 64); return v }
	n := func(i int) int { v, _ := strconv.Atoi(string(m[i])); return v }
	return JavaPerfResult{
		Records: int64(n(1)), RecordsPerSec: f(2), MBPerSec: f(3), AvgMs: f(4), MaxMs: f(5),
		P50Ms: n(6), P95Ms: n(7), P99Ms: n(8), P999Ms: n(9),
	}, nil
}

// javaOutputMax bounds what is kept of the tool's output (a line per 5 s).
const javaOutputMax = 1 << 20

// boundedBuffer keeps the first javaOutputMax bytes written to it.
type boundedBuffer struct{ bytes.Buffer }

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := javaOutputMax - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// runJavaPerf runs the tool against t and fills r. The tool runs in its own
// process group (the script execs the JVM), killed as a group by its PID if
// ctx ends first.
func runJavaPerf(ctx context.Context, sc scenario, t *target, javaBin string, r *Run) {
	topic := fmt.Sprintf("bench-%s-%d", sc.id, time.Now().UnixNano())
	if err := perf.CreateTopic(ctx, []string{t.addr}, topic, sc.partitions, nil, false); err != nil {
		r.Status = unsupported(fmt.Errorf("CreateTopics: %w", err))
		return
	}
	script := filepath.Join(javaBin, "kafka-producer-perf-test.sh")
	cmd := exec.Command(script, "--topic", topic,
		"--num-records", strconv.FormatInt(sc.records, 10),
		"--record-size", strconv.Itoa(sc.recordSize),
		"--throughput", strconv.Itoa(sc.throughput),
		"--producer-props", "bootstrap.servers="+t.addr)
	var out boundedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Status = unsupported(err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group this run started
		<-done
		err = ctx.Err()
	}
	jr, perr := parseJavaPerf(out.Bytes())
	if err != nil || perr != nil {
		r.Status = unsupported(fmt.Errorf("%s: %v %v: %s", filepath.Base(script), err, perr, logTail(out.String())))
		return
	}
	r.Java = &jr
	r.Status = "ok"
	r.RecordsPerSec, r.MBPerSec = jr.RecordsPerSec, jr.MBPerSec
	r.HasLatency = true
	r.P50Ms, r.P99Ms, r.P999Ms = float64(jr.P50Ms), float64(jr.P99Ms), float64(jr.P999Ms)
	if jr.Records != sc.records {
		r.Note = fmt.Sprintf("the tool sent %d of %d records", jr.Records, sc.records)
	}
}

// javaBinUsable says why dir cannot run the Java tool ("" when it can).
func javaBinUsable(dir string) string {
	st, err := os.Stat(filepath.Join(dir, "kafka-producer-perf-test.sh"))
	if err != nil {
		return err.Error()
	}
	if st.Mode()&0o111 == 0 {
		return "kafka-producer-perf-test.sh is not executable"
	}
	return ""
}

// startKfake builds (unless cmd is given) and starts the in-memory kfake
// peer for the Java scenario.
func startKfake(ctx context.Context, cmd []string, binDir, workDir string, rootErr error) *target {
	t := &target{name: TargetKfake, kind: kindPeerKfake, only: []string{ScenarioJava50k}}
	if len(cmd) == 0 {
		bin := filepath.Join(binDir, "kfakepeer")
		if rootErr != nil {
			t.startErr = rootErr
			return t
		}
		if err := daemontest.Build(ctx, "./bench/cmd/kfakepeer", bin); err != nil {
			t.startErr = err
			return t
		}
		cmd = []string{bin, "--listen", "127.0.0.1:{port}"}
	}
	t.startErr = startProcess(t, cmd, workDir, nil)
	return t
}

// javaP99Ratio is goal 1d's figure: the broker's p99 over the peer's. The
// tool prints whole milliseconds, so a peer p99 of 0 ms counts as 1 ms,
// its resolution (the goal then asks for a broker p99 of at most 2 ms).
func javaP99Ratio(broker, peer Run) float64 {
	return broker.P99Ms / max(peer.P99Ms, 1)
}
