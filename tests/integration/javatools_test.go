//go:build javatools

package integration

// Apache Kafka's own Java tools against ringbrokerd, on one node and on a
// three-node cluster, on both backends. Opt-in (the tools are built from
// Kafka's source, which make test does not have); Kafka 3.9's tools are
// needed for add-controller/remove-controller (3.8's run the rest):
//
//	OTEL_MIRROR=<open-telemetry/opentelemetry-proto git dir> \
//	  scripts/build-kafka-java-tools.sh <apache/kafka git dir> 3.9.0-rc3 <outdir>
//	make java-tools-test KAFKA_JAVA_BIN=<outdir>/bin
//	# or one test: KAFKA_JAVA_BIN=<outdir>/bin go test -tags javatools \
//	#   -count=1 -timeout 40m -v -run TestJavaToolsQuorum ./tests/integration/
//
// What runs (build tag javatools, so make test is unchanged):
//   - this file: kafka-topics.sh (create, with a compacted topic's configs;
//     describe; list) through every node, kafka-producer-perf-test.sh with
//     acks=all through every node, kafka-console-consumer.sh reading
//     everything back (and a compacted topic's latest values, keys
//     printed), kafka-get-offsets.sh, kafka-metadata-quorum.sh describe
//     --status;
//   - javatools_failover_test.go: kafka-producer-perf-test.sh (acks=all, RF 3,
//     min.insync.replicas=2) through a SIGKILL of the partition leader;
//   - javatools_reassign_test.go: kafka-reassign-partitions.sh --execute and
//     --verify under a franz-go load;
//   - javatools_security_test.go: SCRAM users, client quotas and ACLs over
//     SASL_SSL with a PEM truststore (tests/java/SecurityAdmin.java makes
//     kafka-configs.sh's and kafka-acls.sh's Admin calls: those commands are
//     Scala in Kafka 3.x and are not built), then kafka-verifiable-producer.sh
//     and kafka-console-consumer.sh as the SCRAM user;
//   - javatools_quorum_test.go: kafka-metadata-quorum.sh describe --status
//     and --replication on a static quorum, add-controller and
//     remove-controller on a dynamic one.
//   - javatools_mechanisms_test.go: kafka-topics.sh, kafka-producer-perf-test.sh
//     and kafka-console-consumer.sh in a group over SSL with a client
//     certificate, and over SASL_SSL with SCRAM-SHA-512, PLAIN and
//     OAUTHBEARER (unsecured tokens);
//   - javatools_txn_test.go: Kafka's transactional producer
//     (tests/java/TxnProducer.java), the console consumer read_committed and
//     read_uncommitted, kafka-transactions.sh list and describe;
//     kafka-producer-perf-test.sh --transactional-id; kafka-transactions.sh
//     find-hanging and abort on a hanging transaction.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// javaToolTimeout bounds one tool run: a JVM start plus the work, on a
// busy machine.
const javaToolTimeout = 4 * time.Minute

// javaTool returns the path of one of Kafka's launchers in $KAFKA_JAVA_BIN.
func javaTool(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("KAFKA_JAVA_BIN")
	if dir == "" {
		t.Fatal("KAFKA_JAVA_BIN is not set: build the tools with scripts/build-kafka-java-tools.sh and pass their bin dir")
	}
	return requireTool(t, filepath.Join(dir, name))
}

// runJava runs a Kafka tool and returns stdout and stderr together (the
// console consumer reports its count on stderr).
func runJava(t *testing.T, tool string, args ...string) string {
	t.Helper()
	argv := append([]string{"-c", `"$0" "$@" 2>&1`, javaTool(t, tool)}, args...)
	out, err := runClient(t, javaToolTimeout, []string{"KAFKA_HEAP_OPTS=-Xmx512m"}, "/bin/sh", argv...)
	if err != nil {
		t.Fatalf("%s %s: %v", tool, strings.Join(args, " "), err)
	}
	return out
}

var (
	perfSentRe     = regexp.MustCompile(`(?m)^(\d+) records sent, ([\d.]+) records/sec .* ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th`)
	consumedRe     = regexp.MustCompile(`Processed a total of (\d+) messages`)
	getOffsetsLine = regexp.MustCompile(`(?m)^[^:\s]+:(\d+):(\d+)$`)
)

// javaPerf runs kafka-producer-perf-test.sh and checks every record was sent.
func javaPerf(t *testing.T, bootstrap, topic string, records int) {
	t.Helper()
	out := runJava(t, "kafka-producer-perf-test.sh", "--topic", topic, "--num-records", strconv.Itoa(records),
		"--record-size", "100", "--throughput", "-1", "--producer-props", "bootstrap.servers="+bootstrap, "acks=all")
	m := perfSentRe.FindStringSubmatch(out)
	if m == nil || m[1] != strconv.Itoa(records) {
		t.Fatalf("kafka-producer-perf-test.sh did not report %d records sent:\n%s", records, out)
	}
	t.Logf("kafka-producer-perf-test.sh through %s: %s", bootstrap, m[0])
	if strings.Contains(out, "Exception") {
		t.Fatalf("kafka-producer-perf-test.sh reported an exception:\n%s", out)
	}
}

// javaConsumeAll reads a topic from the beginning with the console consumer
// and checks the count.
func javaConsumeAll(t *testing.T, bootstrap, topic string, want int) {
	t.Helper()
	out := runJava(t, "kafka-console-consumer.sh", "--bootstrap-server", bootstrap, "--topic", topic,
		"--from-beginning", "--max-messages", strconv.Itoa(want), "--timeout-ms", "60000")
	m := consumedRe.FindStringSubmatch(out)
	if m == nil || m[1] != strconv.Itoa(want) {
		t.Fatalf("kafka-console-consumer.sh: want %d messages, tail of output:\n%s", want, tail(out, 2000))
	}
}

// javaEndOffsets sums kafka-get-offsets.sh's latest offsets of topic.
func javaEndOffsets(t *testing.T, bootstrap, topic string) int64 {
	t.Helper()
	out := runJava(t, "kafka-get-offsets.sh", "--bootstrap-server", bootstrap, "--topic", topic)
	var sum int64
	lines := getOffsetsLine.FindAllStringSubmatch(out, -1)
	if len(lines) == 0 {
		t.Fatalf("kafka-get-offsets.sh printed no offsets:\n%s", out)
	}
	for _, m := range lines {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		sum += n
	}
	return sum
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestJavaToolsSingleNode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, compactBrokerProps(nil))
		out := runJava(t, "kafka-topics.sh", "--bootstrap-server", b.Addr, "--create", "--topic", "perf", "--partitions", "3")
		if !strings.Contains(out, "Created topic perf.") {
			t.Fatalf("kafka-topics.sh --create: %s", out)
		}
		const records = 50000
		javaPerf(t, b.Addr, "perf", records)
		javaConsumeAll(t, b.Addr, "perf", records)
		if n := javaEndOffsets(t, b.Addr, "perf"); n != records {
			t.Fatalf("kafka-get-offsets.sh: end offsets sum to %d, want %d", n, records)
		}

		// A compacted topic created by kafka-topics.sh, keyed records from
		// franz-go, the cleaner, then the console consumer with keys.
		out = runJava(t, "kafka-topics.sh", "--bootstrap-server", b.Addr, "--create", "--topic", "comp", "--partitions", "1",
			"--config", "cleanup.policy=compact", "--config", "segment.bytes=16384", "--config", "min.cleanable.dirty.ratio=0.01")
		if !strings.Contains(out, "Created topic comp.") {
			t.Fatalf("kafka-topics.sh --create compacted: %s", out)
		}
		out = runJava(t, "kafka-topics.sh", "--bootstrap-server", b.Addr, "--describe", "--topic", "comp")
		if !strings.Contains(out, "cleanup.policy=compact") {
			t.Fatalf("kafka-topics.sh --describe does not show cleanup.policy=compact:\n%s", out)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.RequiredAcks(kgo.AllISRAcks()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		const keys, rounds = 20, 40
		latest := map[string]string{}
		produced := 0
		for r := range rounds { // a batch (~4.5 KB) a round: segments of 16 KiB roll
			var recs []sentRecord
			for k := range keys {
				key, val := fmt.Sprintf("key-%02d", k), fmt.Sprintf("round-%02d-%s", r, strings.Repeat("v", 200))
				latest[key] = val
				recs = append(recs, sentRecord{partition: 0, key: []byte(key), value: []byte(val)})
			}
			produceSync(t, cl, "comp", recs)
			produced += len(recs)
		}
		target := activeBases(t, b.Dir, "comp", 1)
		if target[0] == 0 {
			t.Fatal("the compacted topic never rolled a segment (segment.bytes 16384)")
		}
		waitCleaned(t, b, "comp", target)
		out = runJava(t, "kafka-console-consumer.sh", "--bootstrap-server", b.Addr, "--topic", "comp", "--from-beginning",
			"--property", "print.key=true", "--property", "key.separator=|", "--timeout-ms", "15000")
		got := map[string]string{}
		lines := 0
		for _, line := range strings.Split(out, "\n") {
			k, v, ok := strings.Cut(line, "|")
			if !ok || !strings.HasPrefix(k, "key-") {
				continue
			}
			got[k] = v
			lines++
		}
		for k, v := range latest {
			if got[k] != v {
				t.Errorf("console consumer: %s's last value %.12q, want %.12q", k, got[k], v)
			}
		}
		if lines >= produced {
			t.Errorf("console consumer read %d records of %d produced: nothing was compacted", lines, produced)
		}
		t.Logf("compacted topic: %d records produced, the console consumer read %d, every key's latest value there", produced, lines)
	})
}

func TestJavaToolsCluster(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		var bootstrap []string
		for _, n := range c.nodes {
			bootstrap = append(bootstrap, n.addr())
		}
		all := strings.Join(bootstrap, ",")
		// Create through every node; describe and list through another.
		for i, n := range c.nodes {
			topic := fmt.Sprintf("java-%d", n.id)
			out := runJava(t, "kafka-topics.sh", "--bootstrap-server", n.addr(), "--create", "--topic", topic, "--partitions", "6")
			if !strings.Contains(out, "Created topic "+topic+".") {
				t.Fatalf("kafka-topics.sh --create through node %d: %s", n.id, out)
			}
			other := c.nodes[(i+1)%len(c.nodes)]
			out = runJava(t, "kafka-topics.sh", "--bootstrap-server", other.addr(), "--describe", "--topic", topic)
			if !strings.Contains(out, "PartitionCount: 6") {
				t.Fatalf("kafka-topics.sh --describe through node %d:\n%s", other.id, out)
			}
		}
		out := runJava(t, "kafka-topics.sh", "--bootstrap-server", all, "--list")
		for _, n := range c.nodes {
			if !strings.Contains(out, fmt.Sprintf("java-%d", n.id)) {
				t.Fatalf("kafka-topics.sh --list lacks java-%d:\n%s", n.id, out)
			}
		}
		// The perf producer through each node, into one topic spread over
		// all three; the console consumer reads everything back.
		const records = 30000
		for _, n := range c.nodes {
			javaPerf(t, n.addr(), "java-1", records)
		}
		javaConsumeAll(t, all, "java-1", 3*records)
		if got := javaEndOffsets(t, c.nodes[2].addr(), "java-1"); got != 3*records {
			t.Fatalf("kafka-get-offsets.sh: end offsets sum to %d, want %d", got, 3*records)
		}
		out = runJava(t, "kafka-metadata-quorum.sh", "--bootstrap-server", all, "describe", "--status")
		if !slices.Equal(quorumMembers(out, "CurrentVoters"), []int32{1, 2, 3}) || !regexp.MustCompile(`LeaderId:\s+[123]\b`).MatchString(out) {
			t.Fatalf("kafka-metadata-quorum.sh describe --status:\n%s", out)
		}
	})
}
