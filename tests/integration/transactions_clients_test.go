//go:build linux

package integration

// Transactions with real clients against the daemon: confluent-kafka-python
// and KafkaJS commit and abort transactions, and a read_committed consumer
// of the same client sees exactly the committed records.
//
// The daemon serves transactional ids only once the data path of
// transactions (transactional produce, WriteTxnMarkers, read_committed;
// branch f-txn-data) is in and transactions are on by default; until then
// it refuses them (TestTransactionsFailFast) and this test skips, saying
// so. The franz-go equivalents run in-process in broker/txn_test.go.

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// requireDaemonTransactions skips, loudly, when the daemon refuses
// transactional ids.
func requireDaemonTransactions(t *testing.T, addr string) {
	t.Helper()
	cl := newClient(t, addr)
	r := kmsg.NewPtrFindCoordinatorRequest()
	r.CoordinatorType, r.CoordinatorKey, r.CoordinatorKeys = 1, "probe", []string{"probe"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	code := resp.ErrorCode
	if len(resp.Coordinators) > 0 {
		code = resp.Coordinators[0].ErrorCode
	}
	if code == kerr.TransactionalIDAuthorizationFailed.Code {
		t.Skip("NEEDS THE TRANSACTION DATA PATH (f-txn-data) AND TRANSACTIONS ON IN THE DAEMON: it refuses transactional ids")
	}
}

func TestTransactionsClients(t *testing.T) {
	python := requireTool(t, "/usr/bin/python3")
	node := requireTool(t, "node")
	jsDir := filepath.Join(repoRoot, "tests", "js")
	requireTool(t, filepath.Join(jsDir, "node_modules", "kafkajs", "package.json"))
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		requireDaemonTransactions(t, b.Addr)
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
