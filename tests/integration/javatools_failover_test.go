//go:build javatools

package integration

// Kafka's Java tools through a cluster fault: kafka-producer-perf-test.sh
// keeps producing (acks=all, one run, never restarted) while the leader of
// its partition is SIGKILLed. See javatools_test.go for how to run.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// asyncJava is a Kafka tool running in the background, its stdout and
// stderr collected together.
type asyncJava struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func (a *asyncJava) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.out.Write(p)
}

func (a *asyncJava) output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.out.String()
}

// startJava starts a Kafka tool; it is killed (by its own PID) at cleanup
// if it is still running, and bounded by javaToolTimeout.
func startJava(t *testing.T, tool string, args ...string) *asyncJava {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), javaToolTimeout)
	a := &asyncJava{done: make(chan error, 1)}
	a.cmd = exec.CommandContext(ctx, javaTool(t, tool), args...)
	a.cmd.Env = append(os.Environ(), "KAFKA_HEAP_OPTS=-Xmx512m")
	a.cmd.Stdout, a.cmd.Stderr = a, a
	if err := a.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", tool, err)
	}
	t.Logf("started %s %s (pid %d)", filepath.Base(tool), strings.Join(args, " "), a.cmd.Process.Pid)
	go func() { a.done <- a.cmd.Wait(); cancel() }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(30 * time.Second):
		}
	})
	return a
}

// wait waits for the tool to exit, up to timeout.
func (a *asyncJava) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("%s: %v\n%s", a.cmd.Path, err, tail(a.output(), 4000))
		}
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v:\n%s", a.cmd.Path, timeout, tail(a.output(), 4000))
	}
}

// perfIntervalRe is one of kafka-producer-perf-test.sh's 5-second reports.
var perfIntervalRe = regexp.MustCompile(`(?m)^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency\.$`)

// stackHeadRe is the first line of a printed Java stack trace.
var stackHeadRe = regexp.MustCompile(`(?m)^[\w.$]+(Exception|Error)(: .*)?$`)

// partitionLeader is the leader of topic's partition p in node n's metadata.
func partitionLeader(n *clusterNode, topic string, p int32) (int32, error) {
	m, err := n.metadata()
	if err != nil {
		return -1, err
	}
	v, ok := topicsOf(m)[topic]
	if !ok {
		return -1, fmt.Errorf("node %d does not list %s", n.id, topic)
	}
	d, ok := v.partitions[p]
	if !ok || d.Leader < 0 || d.ErrorCode != 0 {
		return -1, fmt.Errorf("%s-%d has no leader in node %d's metadata", topic, p, n.id)
	}
	return d.Leader, nil
}

// countLog reads topic's partitions from the start to their end offsets
// through seeds and returns the number of records and their end offsets.
func countLog(t *testing.T, seeds []string, topic string) (int64, map[int32]int64) {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := ends.Error(); err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = o.Offset
		parts[o.Partition] = kgo.NewOffset().AtStart()
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := map[int32]int64{}
	var n int64
	deadline := time.Now().Add(2 * time.Minute)
	for {
		doneAll := true
		for p, end := range want {
			if next[p] < end {
				doneAll = false
			}
		}
		if doneAll {
			return n, want
		}
		if time.Now().After(deadline) {
			t.Fatalf("reading %s: at %v of end offsets %v after 2m", topic, next, want)
		}
		fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
		fs := cl.PollFetches(fctx)
		fcancel()
		fs.EachError(func(_ string, p int32, err error) {
			if err != context.DeadlineExceeded {
				t.Logf("fetch %s-%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Errorf("%s-%d: record at offset %d, want %d (a hole in the log)", topic, r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition] = r.Offset + 1
			if r.Offset < want[r.Partition] {
				n++
			}
		})
	}
}

// TestJavaToolsPerfThroughLeaderKill: kafka-producer-perf-test.sh, acks=all,
// into an RF 3 min.insync.replicas=2 topic; the partition's leader is
// SIGKILLed once the tool has reported its first interval. The tool is
// never restarted: it must finish with every record sent, and every record
// it reports sent must be in the log the survivors serve.
func TestJavaToolsPerfThroughLeaderKill(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		all := strings.Join(c.seeds(), ",")
		const topic = "perf-kill"
		out := runJava(t, "kafka-topics.sh", "--bootstrap-server", all, "--create", "--topic", topic, "--partitions", "1",
			"--replication-factor", "3", "--config", "min.insync.replicas=2")
		if !strings.Contains(out, "Created topic "+topic+".") {
			t.Fatalf("kafka-topics.sh --create: %s", out)
		}
		var leader int32
		waitFor(t, topic+" has a leader", 30*time.Second, func() error {
			var err error
			leader, err = partitionLeader(c.nodes[0], topic, 0)
			return err
		})

		// 20 s at 10000 records/s; the kill lands after the first 5 s report.
		const records, rate = 200000, 10000
		perf := startJava(t, "kafka-producer-perf-test.sh", "--topic", topic, "--num-records", strconv.Itoa(records),
			"--record-size", "100", "--throughput", strconv.Itoa(rate),
			"--producer-props", "bootstrap.servers="+all, "acks=all", "linger.ms=5")
		waitFor(t, "the perf tool's first interval report", 2*time.Minute, func() error {
			if perfIntervalRe.MatchString(perf.output()) {
				return nil
			}
			select {
			case err := <-perf.done:
				t.Fatalf("perf tool exited before its first report (%v):\n%s", err, perf.output())
			default:
			}
			return fmt.Errorf("no report yet")
		})
		killAt := time.Now()
		t.Logf("SIGKILL node %d, the leader of %s-0", leader, topic)
		c.kill(t, c.node(leader))
		waitFor(t, topic+" has a new leader", time.Minute, func() error {
			l, err := partitionLeader(c.live()[0], topic, 0)
			if err == nil && l == leader {
				return fmt.Errorf("node %d still leads", l)
			}
			return err
		})
		t.Logf("new leader after %v", time.Since(killAt).Round(time.Millisecond))
		perf.wait(t, 3*time.Minute)

		out = perf.output()
		for _, m := range perfIntervalRe.FindAllStringSubmatch(out, -1) {
			t.Logf("perf interval: %s", m[0])
		}
		m := perfSentRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("kafka-producer-perf-test.sh printed no total:\n%s", tail(out, 4000))
		}
		t.Logf("perf total: %s", m[0])
		sent, _ := strconv.ParseInt(m[1], 10, 64)
		// A failed send's exception is printed as a stack trace (its head
		// at the start of a line); the client's WARN lines about the lost
		// node name exceptions mid-line and are not failures.
		failed := int64(len(stackHeadRe.FindAllString(out, -1)))
		if sent != records || failed != 0 {
			t.Errorf("kafka-producer-perf-test.sh: %d of %d records sent, %d exceptions:\n%s", sent, records, failed, tail(out, 4000))
		}
		inLog, ends := countLog(t, c.seeds(), topic)
		t.Logf("log after the kill: %d records (end offsets %v), the tool reported %d sent", inLog, ends, sent)
		// The producer is idempotent (Kafka 3's default with acks=all):
		// every acknowledged record once, and nothing else unless it failed.
		if inLog < sent || inLog > sent+failed {
			t.Fatalf("the log holds %d records; the tool reported %d sent and %d failed", inLog, sent, failed)
		}
	})
}
