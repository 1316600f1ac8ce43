//go:build linux

package integration

// End-to-end produce and consume with the real non-Go clients of issue 4's "Done
// when": kcat (-P/-C, every codec, records up to 1 MiB), confluent-kafka-python and
// kafka-python (produce + assign() consumer), KafkaJS (producer, idempotent and not;
// read back with franz-go, because KafkaJS has no consumer without a group and
// groups are issue 5) and librdkafka's rdkafka_performance (built into .deps/bin by
// scripts/install-test-deps.sh). Every record is checked: content, partition, order,
// offsets, count. The Python and JS scripts live in tests/python and tests/js.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clientRunTimeout bounds one external client run (produce or consume phase).
const clientRunTimeout = 90 * time.Second

// writeRecordsFile writes recs as the JSON lines the Python and JS scripts read:
// {"p": partition, "k": base64 key or null, "v": base64 value}.
func writeRecordsFile(t *testing.T, recs []sentRecord) string {
	t.Helper()
	var buf bytes.Buffer
	for _, r := range recs {
		var key any
		if r.key != nil {
			key = base64.StdEncoding.EncodeToString(r.key)
		}
		line, err := json.Marshal(map[string]any{"p": r.partition, "k": key, "v": base64.StdEncoding.EncodeToString(r.value)})
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "records.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readConsumedFile reads the scripts' consumed-records file:
// {"p": partition, "o": offset, "k": base64 key or null, "v": base64 value or null
// (a tombstone: value nil)}.
func readConsumedFile(t *testing.T, path string) []gotRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("consumed records: %v", err)
	}
	defer f.Close()
	var out []gotRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		var r struct {
			P int32   `json:"p"`
			O int64   `json:"o"`
			K *string `json:"k"`
			V *string `json:"v"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("consumed records line %q: %v", head(sc.Bytes(), 80), err)
		}
		g := gotRecord{partition: r.P, offset: r.O}
		if r.K != nil {
			g.key, _ = base64.StdEncoding.DecodeString(*r.K)
		}
		if r.V != nil {
			g.value, err = base64.StdEncoding.DecodeString(*r.V)
			if err != nil {
				t.Fatalf("consumed value: %v", err)
			}
		}
		out = append(out, g)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKcatProduceConsume: kcat -P (stdin lines and whole files up to 1 MiB) with
// each codec, read back by kcat -C -o beginning -e and by franz-go.
func TestKcatProduceConsume(t *testing.T) {
	kcat := requireTool(t, "kcat")
	codecs := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		for _, codec := range codecs {
			t.Run(codec, func(t *testing.T) {
				topic := "kcat-" + codec
				// Records of exactly 1 MiB need more than the default max.message.bytes
				// (1048588 covers a 1 MiB batch, not a 1 MiB record plus batch framing).
				createTopic(t, b.Addr, topic, 2, map[string]string{"max.message.bytes": "2097152"})
				common := []string{"-b", b.Addr, "-t", topic, "-z", codec,
					"-X", "message.max.bytes=2097152", "-X", "linger.ms=5"}

				// Partition 0: 300 text lines through stdin.
				var sent []sentRecord
				var lines bytes.Buffer
				for i := range 300 {
					v := recordValue(topic, i, 20+(i*37)%1500, false)
					sent = append(sent, sentRecord{partition: 0, value: v})
					lines.Write(v)
					lines.WriteByte('\n')
				}
				if _, err := runClientStdin(t, clientRunTimeout, lines.Bytes(), kcat, append([]string{"-P", "-p", "0"}, common...)...); err != nil {
					t.Fatalf("kcat -P (stdin): %v", err)
				}

				// Partition 1: whole files as single binary records, up to exactly 1 MiB.
				dir := t.TempDir()
				var files []string
				for i, size := range []int{1, 1024, 100 << 10, 1 << 20, 777, 1 << 20} {
					v := recordValue(topic+"-file", i, size, true)
					if size == 1 {
						v = []byte{0}
					}
					path := filepath.Join(dir, fmt.Sprintf("rec%d", i))
					if err := os.WriteFile(path, v, 0o644); err != nil {
						t.Fatal(err)
					}
					files = append(files, path)
					sent = append(sent, sentRecord{partition: 1, value: v})
				}
				if _, err := runClient(t, clientRunTimeout, nil, kcat, append(append([]string{"-P", "-p", "1"}, common...), files...)...); err != nil {
					t.Fatalf("kcat -P (files): %v", err)
				}

				out, err := runClient(t, clientRunTimeout, nil, kcat, "-C", "-b", b.Addr, "-t", topic,
					"-o", "beginning", "-e", "-f", kcatFormat, "-X", "fetch.wait.max.ms=100")
				if err != nil {
					t.Fatalf("kcat -C: %v", err)
				}
				got, err := parseKcatOutput(out)
				if err != nil {
					t.Fatalf("kcat -C output: %v", err)
				}
				verifyRecords(t, "kcat -P/-C "+codec, sent, got, nil)
				verifyRecords(t, "kcat -P, franz-go consumer, "+codec, sent, consumeFranz(t, b.Addr, topic, fromStart(2), len(sent)), nil)
			})
		}
	})
}

// kcatFormat makes kcat -C print each record binary-safely: partition, offset, then
// key and value each preceded by its length (-1 for null).
const kcatFormat = "%p %o %K:%k %S:%s\n"

// parseKcatOutput parses kcat -C -f kcatFormat output.
func parseKcatOutput(out string) ([]gotRecord, error) {
	r := bufio.NewReader(strings.NewReader(out))
	var got []gotRecord
	// field reads "LEN:" and then LEN bytes (none for a null -1).
	field := func(what string) ([]byte, error) {
		var size int
		if _, err := fmt.Fscanf(r, "%d:", &size); err != nil {
			return nil, fmt.Errorf("record %d %s length: %v", len(got), what, err)
		}
		if size < 0 {
			return nil, nil
		}
		v := make([]byte, size)
		if _, err := io.ReadFull(r, v); err != nil {
			return nil, fmt.Errorf("record %d %s (%d bytes): %v", len(got), what, size, err)
		}
		return v, nil
	}
	for {
		var p int32
		var o int64
		if _, err := fmt.Fscanf(r, "%d %d ", &p, &o); err != nil {
			if err == io.EOF {
				return got, nil
			}
			return got, fmt.Errorf("after %d records: %v", len(got), err)
		}
		key, err := field("key")
		if err != nil {
			return got, err
		}
		if c, err := r.ReadByte(); err != nil || c != ' ' {
			return got, fmt.Errorf("record %d: no space after the key", len(got))
		}
		value, err := field("value")
		if err != nil {
			return got, err
		}
		if c, err := r.ReadByte(); err != nil || c != '\n' {
			return got, fmt.Errorf("record %d: no newline after the value", len(got))
		}
		got = append(got, gotRecord{partition: p, offset: o, key: key, value: value})
	}
}

// runClientStdin is runClient with stdin.
func runClientStdin(t *testing.T, timeout time.Duration, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(path, stdin, 0o644); err != nil {
		t.Fatal(err)
	}
	// The shell redirect keeps runClient as the one place that runs clients.
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return runClient(t, timeout, nil, "/bin/sh", "-c", "exec '"+name+"' "+strings.Join(quoted, " ")+" < '"+path+"'")
}

// pythonRecords are the records the Python round trips send: keyed, over three
// partitions, sizes from 16 bytes to ~64 KiB, plus one of exactly 1 MiB.
func pythonRecords(prefix string) []sentRecord {
	recs := spreadRecords(prefix, 900, 3, 4000, false)
	recs[450].value = recordValue(prefix, 450, 1<<20, true)
	recs[451].value = recordValue(prefix, 451, 64<<10, true)
	return recs
}

// TestConfluentKafkaPython: confluent-kafka-python produces (idempotent, each codec)
// and reads back with assign(); franz-go reads the same records.
func TestConfluentKafkaPython(t *testing.T) {
	python := requireTool(t, "/usr/bin/python3")
	script := filepath.Join(repoRoot, "tests", "python", "confluent_roundtrip.py")
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
			t.Run(codec, func(t *testing.T) {
				topic := "py-confluent-" + codec
				createTopic(t, b.Addr, topic, 3, map[string]string{"max.message.bytes": "2097152"})
				recs := pythonRecords(topic)
				in := writeRecordsFile(t, recs)
				outPath := filepath.Join(t.TempDir(), "consumed.jsonl")
				out, err := runClient(t, clientRunTimeout, nil, python, script, b.Addr, topic, "3", codec, in, outPath)
				t.Logf("confluent_roundtrip.py: %s", strings.TrimSpace(out))
				if err != nil {
					t.Fatalf("confluent_roundtrip.py: %v", err)
				}
				verifyRecords(t, "confluent-kafka-python consumer, "+codec, recs, readConsumedFile(t, outPath), nil)
				verifyRecords(t, "confluent-kafka-python producer, franz-go consumer, "+codec, recs, consumeFranz(t, b.Addr, topic, fromStart(3), len(recs)), nil)
			})
		}
	})
}

// TestKafkaPythonRoundTrip: kafka-python produces to a topic that only its Metadata
// v1 request creates (num.partitions=3), then reads back with group_id=None and
// assign(); franz-go reads the same records.
func TestKafkaPythonRoundTrip(t *testing.T) {
	python := requireTool(t, "/usr/bin/python3")
	script := filepath.Join(repoRoot, "tests", "python", "kafka_python_roundtrip.py")
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{"num.partitions": "3", "message.max.bytes": "2097152"})
		// kafka-python ships no snappy/lz4/zstd codec without extra Python modules:
		// uncompressed and gzip.
		for _, codec := range []string{"none", "gzip"} {
			t.Run(codec, func(t *testing.T) {
				topic := "py-kafka-" + codec
				recs := pythonRecords(topic)
				in := writeRecordsFile(t, recs)
				outPath := filepath.Join(t.TempDir(), "consumed.jsonl")
				out, err := runClient(t, clientRunTimeout, nil, python, script, b.Addr, topic, "3", codec, in, outPath)
				t.Logf("kafka_python_roundtrip.py: %s", strings.TrimSpace(out))
				if err != nil {
					t.Fatalf("kafka_python_roundtrip.py: %v", err)
				}
				var summary struct {
					Partitions []int32 `json:"partitions"`
				}
				if err := json.Unmarshal([]byte(out), &summary); err != nil || len(summary.Partitions) != 3 {
					t.Errorf("auto-created topic partitions as kafka-python saw them: %v (%v), want [0 1 2]", summary.Partitions, err)
				}
				verifyRecords(t, "kafka-python consumer, "+codec, recs, readConsumedFile(t, outPath), nil)
				verifyRecords(t, "kafka-python producer, franz-go consumer, "+codec, recs, consumeFranz(t, b.Addr, topic, fromStart(3), len(recs)), nil)
			})
		}
	})
}

// TestKafkaJSProduce: KafkaJS produces (idempotent and not; uncompressed and gzip);
// its acknowledgements must match, and franz-go and kcat read every record back.
func TestKafkaJSProduce(t *testing.T) {
	node := requireTool(t, "node")
	kcat := requireTool(t, "kcat")
	jsDir := filepath.Join(repoRoot, "tests", "js")
	requireTool(t, filepath.Join(jsDir, "node_modules", "kafkajs", "package.json"))
	cases := []struct {
		name       string
		idempotent string
		codec      string
	}{
		{"idempotent", "true", "none"},
		{"idempotent-gzip", "true", "gzip"},
		{"plain", "false", "none"},
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				topic := "js-" + tc.name
				createTopic(t, b.Addr, topic, 3, nil)
				recs := spreadRecords(topic, 750, 3, 3000, false)
				in := writeRecordsFile(t, recs)
				out, err := runClient(t, clientRunTimeout, []string{"KAFKAJS_NO_PARTITIONER_WARNING=1"}, node,
					filepath.Join(jsDir, "produce.js"), b.Addr, topic, tc.idempotent, tc.codec, in)
				if err != nil {
					t.Fatalf("produce.js: %v", err)
				}
				var res struct {
					Acks []struct {
						Partition  int32  `json:"partition"`
						BaseOffset string `json:"baseOffset"`
						Count      int64  `json:"count"`
					} `json:"acks"`
				}
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatalf("produce.js printed %q: %v", head([]byte(out), 200), err)
				}
				next := map[int32]int64{}
				for _, a := range res.Acks {
					base, err := strconv.ParseInt(a.BaseOffset, 10, 64)
					if err != nil || base != next[a.Partition] {
						t.Errorf("KafkaJS ack for partition %d: base offset %q, want %d", a.Partition, a.BaseOffset, next[a.Partition])
					}
					next[a.Partition] += a.Count
				}
				verifyRecords(t, "KafkaJS producer, franz-go consumer", recs, consumeFranz(t, b.Addr, topic, fromStart(3), len(recs)), nil)
				kout, err := runClient(t, clientRunTimeout, nil, kcat, "-C", "-b", b.Addr, "-t", topic,
					"-o", "beginning", "-e", "-f", kcatFormat, "-X", "fetch.wait.max.ms=100")
				if err != nil {
					t.Fatalf("kcat -C: %v", err)
				}
				got, err := parseKcatOutput(kout)
				if err != nil {
					t.Fatalf("kcat -C output: %v", err)
				}
				verifyRecords(t, "KafkaJS producer, kcat consumer", recs, got, nil)
			})
		}
	})
}

// rdkafkaPerformance is where scripts/install-test-deps.sh builds the tool.
func rdkafkaPerformance(t *testing.T) string {
	return requireTool(t, filepath.Join(repoRoot, ".deps", "bin", "rdkafka_performance"))
}

var (
	// "% 20000 messages produced (2000000 bytes), 20000 delivered (offset 19999, 0 failed) in 292ms: ..."
	rdkProducedRE = regexp.MustCompile(`(?m)^% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset (-?\d+), (\d+) failed\)`)
	// "% 20000 messages (2000000 bytes) consumed in 9ms: ..."
	rdkConsumedRE = regexp.MustCompile(`(?m)^% (\d+) messages \((\d+) bytes\) consumed in`)
)

// TestRdkafkaPerformance: librdkafka's own benchmark tool produces N messages
// (idempotent, and with zstd) and consumes them from the beginning; its summaries
// must count them all, and franz-go checks sizes and count.
func TestRdkafkaPerformance(t *testing.T) {
	perf := rdkafkaPerformance(t)
	const count, size = 20000, 100
	cases := []struct {
		name  string
		extra []string
	}{
		{"plain", nil},
		{"idempotent-zstd", []string{"-z", "zstd", "-X", "enable.idempotence=true"}},
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				topic := "rdkperf-" + tc.name
				args := append([]string{"-P", "-t", topic, "-b", b.Addr, "-s", strconv.Itoa(size), "-c", strconv.Itoa(count),
					"-X", "linger.ms=5", "-p", "0"}, tc.extra...)
				out, err := runClientCombined(t, clientRunTimeout, perf, args...)
				if err != nil {
					t.Fatalf("rdkafka_performance -P: %v", err)
				}
				m := rdkProducedRE.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("rdkafka_performance -P printed no summary:\n%s", out)
				}
				t.Logf("producer summary: %s", m[0])
				if m[1] != strconv.Itoa(count) || m[3] != strconv.Itoa(count) || m[5] != "0" || m[4] != strconv.Itoa(count-1) {
					t.Errorf("producer: %s messages produced, %s delivered, last offset %s, %s failed; want %d, %d, %d, 0", m[1], m[3], m[4], m[5], count, count, count-1)
				}

				out, err = runClientCombined(t, clientRunTimeout, perf, "-C", "-t", topic, "-b", b.Addr, "-p", "0",
					"-o", "beginning", "-c", strconv.Itoa(count))
				if err != nil {
					t.Fatalf("rdkafka_performance -C: %v", err)
				}
				var consumed, bytesConsumed int
				for _, m := range rdkConsumedRE.FindAllStringSubmatch(out, -1) { // it prints interim lines; the last is the total
					consumed, _ = strconv.Atoi(m[1])
					bytesConsumed, _ = strconv.Atoi(m[2])
				}
				t.Logf("consumer: %d messages, %d bytes", consumed, bytesConsumed)
				if consumed != count || bytesConsumed != count*size {
					t.Errorf("rdkafka_performance -C consumed %d messages (%d bytes), want %d (%d bytes):\n%s", consumed, bytesConsumed, count, count*size, out)
				}

				got := consumeFranz(t, b.Addr, topic, fromStart(1), count)
				if len(got) != count {
					t.Errorf("franz-go read %d records, want %d", len(got), count)
				}
				for i, r := range got {
					if r.offset != int64(i) || len(r.value) != size {
						t.Fatalf("record %d: offset %d, %d bytes; want offset %d, %d bytes", i, r.offset, len(r.value), i, size)
					}
				}
			})
		}
	})
}

// runClientCombined runs a client whose summary goes to stdout and diagnostics to
// stderr, and returns both (rdkafka_performance).
func runClientCombined(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return runClient(t, timeout, nil, "/bin/sh", "-c", "exec '"+name+"' "+strings.Join(quoted, " ")+" 2>&1")
}
