//go:build javatools

package integration

// Kafka's Java transactional producer (tests/java/TxnProducer.java, a
// single-file program on Kafka's jars) against one node, both backends:
// committed and aborted transactions read back by kafka-console-consumer.sh
// with read_committed and read_uncommitted, and kafka-transactions.sh list
// and describe. See javatools_test.go for how to run.

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestJavaToolsTransactions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		const topic, tid = "jtxn", "java-txn-1"
		out := runJava(t, "kafka-topics.sh", "--bootstrap-server", b.Addr, "--create", "--topic", topic, "--partitions", "1")
		if !strings.Contains(out, "Created topic "+topic+".") {
			t.Fatalf("kafka-topics.sh --create: %s", out)
		}
		// 10 transactions of 50: even ones committed, odd ones aborted.
		src := filepath.Join(repoRoot, "tests", "java", "TxnProducer.java")
		out = runJava(t, "kafka-run-class.sh", src, b.Addr, topic, tid, "10", "50")
		t.Logf("TxnProducer.java: %s", firstLineWith(out, "transactions done"))
		if !strings.Contains(out, "transactions done: committed 250 aborted 250") {
			t.Fatalf("TxnProducer.java:\n%s", tail(out, 3000))
		}

		out = runJava(t, "kafka-console-consumer.sh", "--bootstrap-server", b.Addr, "--topic", topic, "--from-beginning",
			"--isolation-level", "read_committed", "--max-messages", "250", "--timeout-ms", "30000")
		if m := consumedRe.FindStringSubmatch(out); m == nil || m[1] != "250" {
			t.Fatalf("read_committed: want 250 messages:\n%s", tail(out, 3000))
		}
		committed := regexp.MustCompile(`(?m)^c-\d+-\d+$`).FindAllString(out, -1)
		if len(committed) != 250 || strings.Contains(out, "\na-") {
			t.Fatalf("read_committed: %d committed values, aborted ones present: %v:\n%s", len(committed), strings.Contains(out, "\na-"), tail(out, 3000))
		}
		// read_uncommitted reads the aborted records too (never the
		// markers): 500, until the timeout.
		out = runJava(t, "kafka-console-consumer.sh", "--bootstrap-server", b.Addr, "--topic", topic, "--from-beginning",
			"--isolation-level", "read_uncommitted", "--timeout-ms", "10000")
		if m := consumedRe.FindStringSubmatch(out); m == nil || m[1] != "500" {
			t.Fatalf("read_uncommitted: want 500 messages:\n%s", tail(out, 3000))
		}
		t.Logf("console consumer: read_committed 250 (all c-*), read_uncommitted 500")

		out = runJava(t, "kafka-transactions.sh", "--bootstrap-server", b.Addr, "list")
		t.Logf("kafka-transactions.sh list:\n%s", out)
		if !regexp.MustCompile(`(?m)^` + tid + `\s+\d+\s+\d+\s+CompleteAbort\s*$`).MatchString(out) {
			t.Errorf("kafka-transactions.sh list lacks %s in CompleteAbort:\n%s", tid, out)
		}
		out = runJava(t, "kafka-transactions.sh", "--bootstrap-server", b.Addr, "describe", "--transactional-id", tid)
		t.Logf("kafka-transactions.sh describe:\n%s", out)
		if !regexp.MustCompile(`\s` + tid + `\s+\d+\s+\d+\s+CompleteAbort\s`).MatchString(out) {
			t.Errorf("kafka-transactions.sh describe %s:\n%s", tid, out)
		}
	})
}
