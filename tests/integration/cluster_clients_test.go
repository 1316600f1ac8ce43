//go:build linux

package integration

// Real clients against a three-node cluster (cluster_util_test.go), bootstrapped
// through a node that is not the controller, so every client has to follow the
// Metadata answer to the partition leaders on the other nodes: kcat (librdkafka),
// kafka-python, confluent-kafka-python and KafkaJS. Consumers read partitions
// directly; every client's group consumer runs in cluster_features_test.go.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestClusterClients(t *testing.T) {
	kcat := requireTool(t, "kcat")
	python := requireTool(t, "/usr/bin/python3")
	node := requireTool(t, "node")
	jsDir := filepath.Join(repoRoot, "tests", "js")
	requireTool(t, filepath.Join(jsDir, "node_modules", "kafkajs", "package.json"))
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		nc := c.nonController(t)
		t.Logf("bootstrap through node %d (%s); controller node %d", nc.id, nc.addr(), c.controller(t).id)

		t.Run("kcat", func(t *testing.T) {
			const topic = "cl-kcat"
			createTopicVia(t, nc, topic, 3, nil, clusterStepTimeout)
			c.waitTopicsEverywhere(t, map[string]int32{topic: 3}, clusterStepTimeout)
			owners := partitionOwners(t, nc, topic)
			for p := range int32(3) {
				var sent []sentRecord
				var lines strings.Builder
				for i := range 100 {
					v := recordValue(fmt.Sprintf("%s-p%d", topic, p), i, 20+(i*37)%300, false)
					sent = append(sent, sentRecord{partition: p, value: v})
					lines.Write(v)
					lines.WriteByte('\n')
				}
				ps := strconv.Itoa(int(p))
				if _, err := runClientStdin(t, clientRunTimeout, []byte(lines.String()), kcat, "-P", "-b", nc.addr(), "-t", topic, "-p", ps,
					"-X", "linger.ms=5"); err != nil {
					t.Fatalf("kcat -P -p %d: %v", p, err)
				}
				out, err := runClient(t, clientRunTimeout, nil, kcat, "-C", "-b", nc.addr(), "-t", topic, "-p", ps,
					"-o", "beginning", "-e", "-f", kcatFormat, "-X", "fetch.wait.max.ms=100")
				if err != nil {
					t.Fatalf("kcat -C -p %d: %v", p, err)
				}
				got, err := parseKcatOutput(out)
				if err != nil {
					t.Fatalf("kcat -C output: %v", err)
				}
				verifyRecords(t, fmt.Sprintf("kcat -P/-C partition %d (led by node %d)", p, owners[p][0]), sent, got, nil)
			}
		})

		pythonRoundTrip := func(t *testing.T, script, topic string) {
			createTopicVia(t, nc, topic, 3, nil, clusterStepTimeout)
			c.waitTopicsEverywhere(t, map[string]int32{topic: 3}, clusterStepTimeout)
			recs := spreadRecords(topic, 300, 3, 2000, false)
			in := writeRecordsFile(t, recs)
			out := filepath.Join(t.TempDir(), "consumed.jsonl")
			stdout, err := runClient(t, clientRunTimeout, nil, python, filepath.Join(repoRoot, "tests", "python", script),
				nc.addr(), topic, "3", "none", in, out)
			if err != nil {
				t.Fatalf("%s: %v", script, err)
			}
			t.Logf("%s: %s", script, strings.TrimSpace(stdout))
			verifyRecords(t, script+" produce and assign() consume", recs, readConsumedFile(t, out), nil)
		}
		t.Run("kafka-python", func(t *testing.T) {
			pythonRoundTrip(t, "kafka_python_roundtrip.py", "cl-kafka-python")
		})
		t.Run("confluent-kafka", func(t *testing.T) {
			// Idempotent producer: its producer id comes from the controller
			// (AllocateProducerIds) through the broker InitProducerId reached.
			pythonRoundTrip(t, "confluent_roundtrip.py", "cl-confluent")
		})

		t.Run("kafkajs", func(t *testing.T) {
			const topic = "cl-kafkajs"
			createTopicVia(t, nc, topic, 3, nil, clusterStepTimeout)
			c.waitTopicsEverywhere(t, map[string]int32{topic: 3}, clusterStepTimeout)
			recs := spreadRecords(topic, 300, 3, 2000, false)
			stdout, err := runClient(t, clientRunTimeout, []string{"KAFKAJS_NO_PARTITIONER_WARNING=1"}, node,
				filepath.Join(jsDir, "produce.js"), nc.addr(), topic, "true", "none", writeRecordsFile(t, recs))
			if err != nil {
				t.Fatalf("produce.js: %v", err)
			}
			var acks struct {
				Acks []struct {
					Partition int32  `json:"partition"`
					Count     int    `json:"count"`
					Base      string `json:"baseOffset"`
				} `json:"acks"`
			}
			if err := json.Unmarshal([]byte(stdout), &acks); err != nil {
				t.Fatalf("produce.js printed %q: %v", stdout, err)
			}
			acked := 0
			for _, a := range acks.Acks {
				acked += a.Count
			}
			if acked != len(recs) {
				t.Errorf("KafkaJS acknowledged %d records, sent %d", acked, len(recs))
			}
			// KafkaJS consumes only through a group: its group consumer runs
			// in TestClusterFeatures/groups; franz-go reads these back.
			got := consumeFranz(t, c.controller(t).addr(), topic, fromStart(3), len(recs))
			verifyRecords(t, "KafkaJS idempotent producer, franz-go partition consumer", recs, got, nil)
		})
	})
}
