//go:build javatools

package integration

// Kafka's Java tools on a compacted topic (issue 17), one node, both
// backends: kafka-topics.sh creates it with cleanup.policy=compact and small
// segment / dirty-ratio / lag settings and describes it,
// kafka-verifiable-producer.sh writes keyed records that overwrite each other
// (--repeating-keys: keys "0".."N-1" over and over, values "<prefix>.<n>"),
// franz-go adds a tombstone and a tail of distinct keys that rolls the
// segment, the cleaner cleans everything below the active segment, and
// kafka-console-consumer.sh --from-beginning must print exactly each key's
// last record (the tombstone as "null"), in offset order, at its offset.
//
// kafka-console-producer.sh is not among the tools: it is Scala (core) in
// Kafka 3.9 and scripts/build-kafka-java-tools.sh builds the Java tools only.
// kafka-verifiable-producer.sh is Kafka's keyed Java producer tool, and it
// prints each acknowledged record's offset, which the model below uses.
//
// See javatools_test.go for how to run.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// verifiableSend is one line of kafka-verifiable-producer.sh's output.
type verifiableSend struct {
	Name      string `json:"name"`
	Key       string `json:"key"`
	Value     string `json:"value"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Message   string `json:"message"`
}

// javaVerifiableProduce runs kafka-verifiable-producer.sh and returns its
// acknowledged sends; any failed send fails the test.
func javaVerifiableProduce(t *testing.T, bootstrap, topic string, messages, repeatingKeys, valuePrefix int) []verifiableSend {
	t.Helper()
	out := runJava(t, "kafka-verifiable-producer.sh", "--bootstrap-server", bootstrap, "--topic", topic,
		"--max-messages", strconv.Itoa(messages), "--repeating-keys", strconv.Itoa(repeatingKeys),
		"--value-prefix", strconv.Itoa(valuePrefix)) // acks=-1 is its default
	var sent []verifiableSend
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var s verifiableSend
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("kafka-verifiable-producer.sh: unparsable line %q: %v", line, err)
		}
		switch s.Name {
		case "producer_send_success":
			sent = append(sent, s)
		case "producer_send_error":
			t.Fatalf("kafka-verifiable-producer.sh: a send failed: %s", line)
		}
	}
	if len(sent) != messages {
		t.Fatalf("kafka-verifiable-producer.sh: %d sends acknowledged, want %d:\n%s", len(sent), messages, tail(out, 3000))
	}
	return sent
}

// consoleRecord is one line of the console consumer with print.offset and
// print.key: "Offset:<n>|<key>|<value>".
type consoleRecord struct {
	offset     int64
	key, value string
}

func TestJavaToolsCompactedTopic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, compactBrokerProps(nil))
		const topic = "jcompact"
		out := runJava(t, "kafka-topics.sh", "--bootstrap-server", b.Addr, "--create", "--topic", topic, "--partitions", "1",
			"--config", "cleanup.policy=compact", "--config", "segment.bytes=16384",
			"--config", "min.cleanable.dirty.ratio=0.01", "--config", "min.compaction.lag.ms=0",
			"--config", "max.compaction.lag.ms=60000")
		if !strings.Contains(out, "Created topic "+topic+".") {
			t.Fatalf("kafka-topics.sh --create: %s", out)
		}
		out = runJava(t, "kafka-topics.sh", "--bootstrap-server", b.Addr, "--describe", "--topic", topic)
		for _, want := range []string{"cleanup.policy=compact", "segment.bytes=16384", "min.cleanable.dirty.ratio=0.01"} {
			if !strings.Contains(out, want) {
				t.Fatalf("kafka-topics.sh --describe does not show %s:\n%s", want, out)
			}
		}

		// The model: every acknowledged record by offset (a nil value is
		// a tombstone).
		type rec struct {
			key   string
			value *string
		}
		produced := map[int64]rec{}
		const keys = 20
		for round, messages := range []int{600, 300} { // each key 30 times, then 15 more
			for _, s := range javaVerifiableProduce(t, b.Addr, topic, messages, keys, round+1) {
				if s.Partition != 0 {
					t.Fatalf("kafka-verifiable-producer.sh wrote to partition %d of a one-partition topic", s.Partition)
				}
				if _, dup := produced[s.Offset]; dup {
					t.Fatalf("offset %d acknowledged twice", s.Offset)
				}
				v := s.Value
				produced[s.Offset] = rec{key: s.Key, value: &v}
			}
		}
		cl := newClient(t, b.Addr, kgo.ProducerBatchCompression(kgo.NoCompression())) // the tail must fill segments
		// A tombstone for key "7", then an overwrite of "3" after it.
		tomb := produceSync(t, cl, topic, []sentRecord{{key: []byte("7")}, {key: []byte("3"), value: []byte("franz.3")}})
		produced[tomb[0]] = rec{key: "7"}
		v3 := "franz.3"
		produced[tomb[1]] = rec{key: "3", value: &v3}
		// A tail of distinct keys, 24 KB in batches of 4 KB: at least one
		// roll past the tombstone, so everything up to it is cleanable.
		for i := range 6 {
			var recs []sentRecord
			for j := range 8 {
				recs = append(recs, sentRecord{key: fmt.Appendf(nil, "tail-%02d-%d", i, j), value: []byte(strings.Repeat("t", 500))})
			}
			offs := produceSync(t, cl, topic, recs)
			for j, r := range recs {
				v := string(r.value)
				produced[offs[j]] = rec{key: string(r.key), value: &v}
			}
		}
		target := activeBases(t, b.Dir, topic, 1)
		if target[0] <= tomb[1] {
			t.Fatalf("the active segment starts at %d, not past the tombstone's batch (%d): segment.bytes=16384 did not roll", target[0], tomb[1])
		}
		sizeBefore := logDirSizes(t, b.Addr, topic)[0]
		waitCleaned(t, b, topic, target)
		sizeAfter := logDirSizes(t, b.Addr, topic)[0]

		// What must be read: each key's last record, in offset order.
		last := map[string]int64{}
		for o, r := range produced {
			if prev, ok := last[r.key]; !ok || o > prev {
				last[r.key] = o
			}
		}
		var want []consoleRecord
		for k, o := range last {
			v := "null"
			if p := produced[o].value; p != nil {
				v = *p
			}
			want = append(want, consoleRecord{offset: o, key: k, value: v})
		}
		sort.Slice(want, func(i, j int) bool { return want[i].offset < want[j].offset })

		out = runJava(t, "kafka-console-consumer.sh", "--bootstrap-server", b.Addr, "--topic", topic, "--from-beginning",
			"--property", "print.key=true", "--property", "print.offset=true", "--property", "key.separator=|",
			"--timeout-ms", "10000")
		var got []consoleRecord
		for _, line := range strings.Split(out, "\n") {
			rest, ok := strings.CutPrefix(line, "Offset:")
			if !ok {
				continue
			}
			f := strings.SplitN(rest, "|", 3)
			if len(f) != 3 {
				t.Fatalf("console consumer: unexpected line %q", line)
			}
			o, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatalf("console consumer: unexpected line %q", line)
			}
			got = append(got, consoleRecord{offset: o, key: f[1], value: f[2]})
		}
		if m := consumedRe.FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(len(got)) {
			t.Errorf("console consumer: %d records printed, its count line says %v", len(got), m)
		}
		for i := 0; i < max(len(got), len(want)); i++ {
			var g, w consoleRecord
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Fatalf("console consumer record %d: got offset %d key %q value %.20q, want offset %d key %q value %.20q (%d read, %d wanted)",
					i, g.offset, g.key, g.value, w.offset, w.key, w.value, len(got), len(want))
			}
		}
		t.Logf("%d records produced (%d keys, a tombstone); after cleaning to %d the console consumer read exactly the %d latest, in offset order; DescribeLogDirs size %d -> %d bytes",
			len(produced), len(last), target[0], len(got), sizeBefore, sizeAfter)
	})
}
