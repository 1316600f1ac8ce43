//go:build javatools

package integration

// Kafka's Java transactional producer (tests/java/TxnProducer.java, a
// single-file program on Kafka's jars) against one node, both backends:
// committed and aborted transactions read back by kafka-console-consumer.sh
// with read_committed and read_uncommitted, and kafka-transactions.sh list
// and describe; kafka-producer-perf-test.sh with a transactional id; a
// hanging transaction found by kafka-transactions.sh find-hanging and ended
// by kafka-transactions.sh abort. See javatools_test.go for how to run.

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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

// TestJavaToolsTransactionsPerf: kafka-producer-perf-test.sh
// --transactional-id --transaction-duration-ms 100 (a transaction committed
// every 100 ms, 20,000 records at 10,000/s) against one node, both backends; then the console consumer
// with read_committed reads exactly the records sent (not one more, until
// its timeout), and the partitions' end offsets are past them by the
// transactions' commit markers.
func TestJavaToolsTransactionsPerf(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		const topic, records = "jtxn-perf", 20000
		out := runJava(t, "kafka-topics.sh", "--bootstrap-server", b.Addr, "--create", "--topic", topic, "--partitions", "3")
		if !strings.Contains(out, "Created topic "+topic+".") {
			t.Fatalf("kafka-topics.sh --create: %s", out)
		}
		out = runJava(t, "kafka-producer-perf-test.sh", "--topic", topic, "--num-records", strconv.Itoa(records),
			"--record-size", "100", "--throughput", "10000", "--transactional-id", "java-perf-txn", "--transaction-duration-ms", "100",
			"--producer-props", "bootstrap.servers="+b.Addr)
		m := perfSentRe.FindStringSubmatch(out)
		if m == nil || m[1] != strconv.Itoa(records) || strings.Contains(out, "Exception") {
			t.Fatalf("kafka-producer-perf-test.sh --transactional-id: want %d records sent, no exception:\n%s", records, tail(out, 3000))
		}
		t.Logf("transactional kafka-producer-perf-test.sh: %s", m[0])
		// No --max-messages: the consumer reads until 10 s pass without a
		// record, so one record too many would show.
		out = runJava(t, "kafka-console-consumer.sh", "--bootstrap-server", b.Addr, "--topic", topic, "--from-beginning",
			"--isolation-level", "read_committed", "--timeout-ms", "10000")
		if m := consumedRe.FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(records) {
			t.Fatalf("read_committed: want %d messages:\n%s", records, tail(out, 3000))
		}
		end := javaEndOffsets(t, b.Addr, topic)
		// About 2 s at 10,000 records/s: some 20 transactions, a marker
		// per partition each; at least 5 whatever the machine's load.
		if end < records+5*3 {
			t.Errorf("end offsets of %s sum to %d: want the %d records and the commit markers of 5 transactions or more", topic, end, records)
		}
		t.Logf("read_committed read %d records; end offsets sum to %d (%d markers)", records, end, end-records)
	})
}

// TestJavaToolsTransactionsHanging: a hanging transaction, found and
// aborted with kafka-transactions.sh, one node, both backends.
//
// tests/java/HangingTxnProducer.java opens a transaction (timeout 15
// minutes), writes 5 records to partition 0 and dies without ending it.
// While the coordinator knows the transaction (Ongoing, the partition in
// it), find-hanging --broker-id 0 lists nothing: the coordinator will abort
// it at its timeout. Then the broker is stopped and its
// __transaction_state partition directories moved out of the log dir, as
// when the disk that held them was replaced: the broker recreates them
// empty (and logs an error), the coordinator no longer knows the
// transactional id, and the open transaction on the partition holds its
// last stable offset for good: a hanging transaction. find-hanging
// --broker-id 0 lists it (producer id, start offset 0), read_committed
// reads nothing, kafka-transactions.sh abort --start-offset 0 writes the
// abort marker (WriteTxnMarkers from an admin client), after which
// find-hanging lists nothing, read_committed reads nothing (the records
// were aborted) and read_uncommitted reads the 5 records.
func TestJavaToolsTransactionsHanging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		props := map[string]string{"log.dirs": filepath.Join(t.TempDir(), "data")}
		b := startBroker(t, backend, props)
		const topic, tid = "jtxn-hang", "java-hanging"
		out := runJava(t, "kafka-topics.sh", "--bootstrap-server", b.Addr, "--create", "--topic", topic, "--partitions", "1")
		if !strings.Contains(out, "Created topic "+topic+".") {
			t.Fatalf("kafka-topics.sh --create: %s", out)
		}
		src := filepath.Join(repoRoot, "tests", "java", "HangingTxnProducer.java")
		out = runJava(t, "kafka-run-class.sh", src, b.Addr, topic, tid, "5")
		if !strings.Contains(out, "transaction left open: 5 records") {
			t.Fatalf("HangingTxnProducer.java:\n%s", tail(out, 3000))
		}
		out = runJava(t, "kafka-transactions.sh", "--bootstrap-server", b.Addr, "describe", "--transactional-id", tid)
		if !regexp.MustCompile(`\s`+tid+`\s+\d+\s+\d+\s+Ongoing\s`).MatchString(out) || !strings.Contains(out, topic+"-0") {
			t.Fatalf("kafka-transactions.sh describe %s: want Ongoing with %s-0:\n%s", tid, topic, out)
		}
		hangRow := regexp.MustCompile(`(?m)^` + topic + `\s+0\s+(\d+)\s+(\d+)\s+(-?\d+)\s+0\s+\d+\s+\d+\s*$`)
		findHanging := func() string {
			return runJava(t, "kafka-transactions.sh", "--bootstrap-server", b.Addr, "find-hanging", "--broker-id", "0",
				"--max-transaction-timeout", "0")
		}
		if out := findHanging(); hangRow.MatchString(out) {
			t.Fatalf("find-hanging lists the transaction its coordinator still holds:\n%s", out)
		}

		// The coordinator's state is lost: its partitions' directories
		// leave the log dir (moved, not deleted).
		b.Stop(t)
		moved := t.TempDir()
		dirs, err := filepath.Glob(filepath.Join(props["log.dirs"], "__transaction_state-*"))
		if err != nil || len(dirs) == 0 {
			t.Fatalf("no __transaction_state partition dirs in %s (%v)", props["log.dirs"], err)
		}
		for _, d := range dirs {
			if err := os.Rename(d, filepath.Join(moved, filepath.Base(d))); err != nil {
				t.Fatal(err)
			}
		}
		b, err = startBrokerOn(t, backend, props, b.Port)
		if err != nil {
			t.Fatal(err)
		}
		out = findHanging()
		t.Logf("find-hanging after the coordinator's state was lost:\n%s", out)
		if !hangRow.MatchString(out) {
			t.Fatalf("find-hanging does not list the hanging transaction on %s-0:\n%s", topic, out)
		}
		if lso := lastStableOffset(t, b.Addr, topic); lso != 0 {
			t.Fatalf("last stable offset of %s-0 %d while the transaction hangs, want 0", topic, lso)
		}
		javaConsumeCount(t, b.Addr, topic, "read_committed", 0)

		out = runJava(t, "kafka-transactions.sh", "--bootstrap-server", b.Addr, "abort", "--topic", topic, "--partition", "0",
			"--start-offset", "0")
		if strings.Contains(out, "Failed") || strings.Contains(out, "Exception") {
			t.Fatalf("kafka-transactions.sh abort:\n%s", out)
		}
		if out := findHanging(); hangRow.MatchString(out) {
			t.Fatalf("find-hanging still lists the transaction after abort:\n%s", out)
		}
		if end := javaEndOffsets(t, b.Addr, topic); end != 6 {
			t.Errorf("end offset of %s-0 %d, want 6 (5 records and the abort marker)", topic, end)
		}
		if lso := lastStableOffset(t, b.Addr, topic); lso != 6 {
			t.Errorf("last stable offset of %s-0 %d after the abort, want 6", topic, lso)
		}
		javaConsumeCount(t, b.Addr, topic, "read_committed", 0)
		javaConsumeCount(t, b.Addr, topic, "read_uncommitted", 5)
	})
}

// javaConsumeCount reads topic from the beginning with the console
// consumer at level and checks the count: want records (--max-messages,
// up to 60 s), or for want 0 none within 10 s (the caller checks the last
// stable offset too: a consumer slow to start reads nothing either).
func javaConsumeCount(t *testing.T, bootstrap, topic, level string, want int) {
	t.Helper()
	args := []string{"--bootstrap-server", bootstrap, "--topic", topic, "--from-beginning", "--isolation-level", level}
	if want > 0 {
		args = append(args, "--max-messages", strconv.Itoa(want), "--timeout-ms", "60000")
	} else {
		args = append(args, "--timeout-ms", "10000")
	}
	out := runJava(t, "kafka-console-consumer.sh", args...)
	if m := consumedRe.FindStringSubmatch(out); m == nil || m[1] != strconv.Itoa(want) {
		t.Fatalf("%s: want %d messages:\n%s", level, want, tail(out, 3000))
	}
	t.Logf("%s %s: %d messages", topic, level, want)
}

// lastStableOffset is partition 0's last stable offset (ListOffsets
// read_committed, through kadm).
func lastStableOffset(t *testing.T, addr, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	lo, err := newAdmin(t, addr).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListCommittedOffsets %s: %v", topic, err)
	}
	o, ok := lo.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("ListCommittedOffsets %s-0: %v (found %v)", topic, o.Err, ok)
	}
	return o.Offset
}
