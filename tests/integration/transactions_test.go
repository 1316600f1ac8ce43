//go:build linux

package integration

// Transactions are not implemented yet: a transactional producer must fail
// within seconds with a non-retriable error that names the missing feature,
// on every client, instead of retrying a missing coordinator until its own
// timeout (franz-go 88 s, KafkaJS 10 s, librdkafka 5 s before the fix).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnFailFastMax is how long a client may take to give up on a transactional
// id; the retry budgets we replace are 5 s (librdkafka) to 88 s (franz-go),
// the answer itself takes milliseconds.
const txnFailFastMax = 15 * time.Second

// txnUnsupported is the broker's error message (broker/transactions_unsupported.go).
const txnUnsupported = "transactions are not supported by ringbroker yet"

func TestTransactionsFailFast(t *testing.T) {
	kcat := requireTool(t, "kcat")
	python := requireTool(t, "/usr/bin/python3")
	node := requireTool(t, "node")
	jsDir := filepath.Join(repoRoot, "tests", "js")
	requireTool(t, filepath.Join(jsDir, "node_modules", "kafkajs", "package.json"))
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		createTopic(t, b.Addr, "txn", 1, nil)

		t.Run("franz-go", func(t *testing.T) {
			cl := newClient(t, b.Addr, kgo.TransactionalID("txn-franz"), kgo.DefaultProduceTopic("txn"))
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 2*txnFailFastMax)
			defer cancel()
			err := cl.BeginTransaction()
			if err == nil {
				err = cl.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr()
			}
			took := time.Since(start)
			t.Logf("franz-go: %v after %v", err, took.Round(time.Millisecond))
			if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
				t.Errorf("franz-go transactional produce: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
			}
			if took > txnFailFastMax {
				t.Errorf("franz-go took %v to give up, want < %v", took, txnFailFastMax)
			}
		})

		t.Run("kcat", func(t *testing.T) {
			start := time.Now()
			out, err := runClientInput(t, 2*txnFailFastMax, "hello\n", kcat, "-b", b.Addr, "-P", "-t", "txn", "-X", "transactional.id=txn-kcat")
			took := time.Since(start)
			if err == nil {
				t.Fatalf("kcat transactional produce succeeded: %s", out)
			}
			if !strings.Contains(err.Error(), txnUnsupported) || !strings.Contains(err.Error(), "TRANSACTIONAL_ID_AUTHORIZATION_FAILED") {
				t.Errorf("kcat error does not name the missing feature and the code: %v", err)
			}
			if took > txnFailFastMax {
				t.Errorf("kcat took %v to give up, want < %v", took, txnFailFastMax)
			}
		})

		t.Run("confluent-kafka", func(t *testing.T) {
			start := time.Now()
			out, err := runClient(t, 2*txnFailFastMax, nil, python, filepath.Join(repoRoot, "tests", "python", "confluent_transaction.py"), b.Addr, "txn-confluent")
			took := time.Since(start)
			if err != nil {
				t.Fatalf("confluent_transaction.py: %v", err)
			}
			var got struct {
				Code      string `json:"code"`
				Fatal     bool   `json:"fatal"`
				Retriable bool   `json:"retriable"`
				Message   string `json:"message"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("confluent_transaction.py printed %q: %v", out, err)
			}
			t.Logf("confluent-kafka: %+v after %v", got, took.Round(time.Millisecond))
			if got.Code != "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" || !got.Fatal || got.Retriable || !strings.Contains(got.Message, txnUnsupported) {
				t.Errorf("confluent-kafka init_transactions: %+v, want a fatal TRANSACTIONAL_ID_AUTHORIZATION_FAILED naming the missing feature", got)
			}
			if took > txnFailFastMax {
				t.Errorf("confluent-kafka took %v to give up, want < %v", took, txnFailFastMax)
			}
		})

		t.Run("kafkajs", func(t *testing.T) {
			// KafkaJS hides the broker's error behind its own "Failed to
			// find group coordinator" (it logs the original at debug level);
			// what matters is that it is not retriable and comes at once.
			start := time.Now()
			out, err := runClient(t, 2*txnFailFastMax, []string{"KAFKAJS_NO_PARTITIONER_WARNING=1"}, node, filepath.Join(jsDir, "transaction.js"), b.Addr, "txn-kafkajs")
			took := time.Since(start)
			if err != nil {
				t.Fatalf("transaction.js: %v", err)
			}
			var got struct {
				OK        bool   `json:"ok"`
				Name      string `json:"name"`
				Retriable bool   `json:"retriable"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("transaction.js printed %q: %v", out, err)
			}
			if got.OK || got.Retriable {
				t.Errorf("KafkaJS transaction: %s, want a non-retriable failure", out)
			}
			if took > txnFailFastMax {
				t.Errorf("KafkaJS took %v to give up, want < %v", took, txnFailFastMax)
			}
		})

		// One log line per transactional id, however often each client asked.
		logs := b.Logs()
		for _, id := range []string{"txn-franz", "txn-kcat", "txn-confluent", "txn-kafkajs"} {
			if n := strings.Count(logs, `"transactional.id": "`+id+`"`); n != 1 {
				t.Errorf("broker logged transactional id %s %d times, want once:\n%s", id, n, logs)
			}
		}
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
