//go:build linux

package integration

// Transactions with real clients against the daemon: confluent-kafka-python
// and KafkaJS commit and abort transactions, and a read_committed consumer
// of the same client sees exactly the committed records.
//
// kcat (librdkafka's transactional producer, one committed transaction per
// run) is checked the same way with its own read_committed consumer.
// Transactions are always on in the daemon. The franz-go equivalents run
// in-process in broker/txn_test.go; Sarama's are in sarama_txn_test.go, and
// exactly-once across broker crashes in eos_crash_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestTransactionsClients(t *testing.T) {
	kcat := requireTool(t, "kcat")
	python := requireTool(t, "/usr/bin/python3")
	node := requireTool(t, "node")
	jsDir := filepath.Join(repoRoot, "tests", "js")
	requireTool(t, filepath.Join(jsDir, "node_modules", "kafkajs", "package.json"))
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		check := func(t *testing.T, out string) {
			t.Helper()
			var got struct {
				Values []string `json:"values"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("printed %q: %v", out, err)
			}
			sort.Strings(got.Values)
			if strings.Join(got.Values, ",") != "c1,c2,c3" {
				t.Errorf("read_committed saw %v, want exactly c1 c2 c3", got.Values)
			}
		}
		t.Run("confluent-kafka", func(t *testing.T) {
			createTopic(t, b.Addr, "txn-confluent", 1, nil)
			out, err := runClient(t, 90*time.Second, nil, python, filepath.Join(repoRoot, "tests", "python", "confluent_txn_commit.py"),
				b.Addr, "txn-confluent", "txn-confluent")
			if err != nil {
				t.Fatalf("confluent_txn_commit.py: %v", err)
			}
			check(t, out)
		})
		t.Run("kcat", func(t *testing.T) {
			// kcat -P with transactional.id wraps its whole input in one
			// transaction and commits it at the end.
			createTopic(t, b.Addr, "txn-kcat", 1, nil)
			if out, err := runClientInput(t, 90*time.Second, "c1\nc2\nc3\n", kcat, "-b", b.Addr, "-P", "-t", "txn-kcat",
				"-X", "transactional.id=txn-kcat"); err != nil {
				t.Fatalf("kcat transactional produce: %v (%s)", err, out)
			}
			out, err := runClientInput(t, 60*time.Second, "", kcat, "-b", b.Addr, "-C", "-t", "txn-kcat", "-o", "beginning", "-e",
				"-X", "isolation.level=read_committed", "-f", "%s\n")
			if err != nil {
				t.Fatalf("kcat read_committed consume: %v", err)
			}
			if got := strings.Fields(out); strings.Join(got, ",") != "c1,c2,c3" {
				t.Errorf("kcat read_committed saw %q, want c1 c2 c3", got)
			}
		})
		t.Run("kafkajs", func(t *testing.T) {
			createTopic(t, b.Addr, "txn-kafkajs", 1, nil)
			out, err := runClient(t, 90*time.Second, []string{"KAFKAJS_NO_PARTITIONER_WARNING=1"}, node,
				filepath.Join(jsDir, "transaction_commit.js"), b.Addr, "txn-kafkajs", "txn-kafkajs")
			if err != nil {
				t.Fatalf("transaction_commit.js: %v", err)
			}
			check(t, out)
		})
	})
}

// runClientInput is runClient with stdin; on failure the error carries stderr.
func runClientInput(t *testing.T, timeout time.Duration, stdin, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v in %v", filepath.Base(name), strings.Join(args, " "), errOrOK(err), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return stdout.String(), fmt.Errorf("%w\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}
