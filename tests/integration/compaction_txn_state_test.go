//go:build linux

package integration

// __transaction_state is compacted and cleaned (issue 17): the transaction
// coordinator creates it with cleanup.policy=compact and
// transaction.state.log.segment.bytes segments; many transactions of a few
// transactional ids roll it, the cleaner keeps each id's last state, and a
// restart loads the ids from the cleaned log and serves them on.

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCompactionTransactionState(t *testing.T) {
	const (
		txnState = "__transaction_state"
		topic    = "txn-data"
		ids      = 4
		txns     = 60 // per id
	)
	forEachBackend(t, func(t *testing.T, backend string) {
		dir := filepath.Join(t.TempDir(), "data")
		// One __transaction_state partition (every id's records in
		// __transaction_state-0), created with 8 KiB segments.
		props := compactBrokerProps(map[string]string{"log.dirs": dir,
			"transaction.state.log.num.partitions": "1", "transaction.state.log.segment.bytes": "8192"})
		b := startBroker(t, backend, props)
		createTopic(t, b.Addr, topic, 1, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 3*e2eTimeout)
		defer cancel()
		producers := make([]*kgo.Client, ids)
		for i := range producers {
			producers[i] = newClient(t, b.Addr, kgo.TransactionalID(fmt.Sprintf("compact-txn-%d", i)), kgo.DefaultProduceTopic(topic))
		}
		transaction := func(p *kgo.Client, value string) {
			t.Helper()
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := p.ProduceSync(ctx, kgo.StringRecord(value)).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", value, err)
			}
			if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatalf("commit %s: %v", value, err)
			}
		}
		transaction(producers[0], "first") // creates __transaction_state
		// The cleaner held (ratio 1) until the size before cleaning is
		// measured; the topic is the coordinator's, compacted.
		alterTopicConfigs(t, b.Addr, txnState, map[string]string{"min.cleanable.dirty.ratio": "1"})
		described, err := newAdmin(t, b.Addr).DescribeTopicConfigs(ctx, txnState)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := described.On(txnState, nil)
		if err != nil {
			t.Fatalf("DescribeConfigs %s: %v", txnState, err)
		}
		policy := ""
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil {
				policy = *c.Value
			}
		}
		if policy != "compact" {
			t.Fatalf("%s: cleanup.policy %q, want compact", txnState, policy)
		}
		for n := range txns {
			for i, p := range producers {
				transaction(p, fmt.Sprintf("p%d-t%d", i, n))
			}
		}
		for i := range ids {
			waitTxnComplete(t, b.Addr, fmt.Sprintf("compact-txn-%d", i))
		}
		target := activeBases(t, b.Dir, txnState, 1)
		if target[0] == 0 {
			t.Fatalf("%s-0 never rolled a segment", txnState)
		}
		before := logDirSizes(t, b.Addr, txnState)[0]
		segsBefore := len(segmentBases(t, b.Dir, txnState, 0))
		alterTopicConfigs(t, b.Addr, txnState, map[string]string{"min.cleanable.dirty.ratio": "0.01"})
		waitCleaned(t, b, txnState, target)
		after := logDirSizes(t, b.Addr, txnState)[0]
		segsAfter := len(segmentBases(t, b.Dir, txnState, 0))
		t.Logf("%s-0: %d transactions; %d bytes in %d segments before cleaning, %d bytes in %d segments after",
			txnState, ids*txns+1, before, segsBefore, after, segsAfter)
		if after >= before/2 {
			t.Errorf("%s-0: DescribeLogDirs size %d after cleaning, %d before: want well under half (%d ids, %d transactions)",
				txnState, after, before, ids, ids*txns+1)
		}
		epochs := map[string]int16{}
		raw := newClient(t, b.Addr)
		for i := range ids {
			id := fmt.Sprintf("compact-txn-%d", i)
			epochs[id] = txnV2Describe(t, raw, id).ProducerEpoch
		}
		for _, p := range producers {
			p.Close()
		}
		b.Stop(t)
		if t.Failed() {
			t.FailNow()
		}

		// The restarted coordinator loads each id from the cleaned log:
		// same state and epoch, and each id commits once more.
		b2 := startBroker(t, backend, props)
		raw2 := newClient(t, b2.Addr)
		for id, epoch := range epochs {
			st := txnV2Describe(t, raw2, id)
			if st.State != "CompleteCommit" || st.ProducerEpoch != epoch {
				t.Errorf("%s after the restart: state %s epoch %d, want CompleteCommit epoch %d", id, st.State, st.ProducerEpoch, epoch)
			}
		}
		for i := range ids {
			p := newClient(t, b2.Addr, kgo.TransactionalID(fmt.Sprintf("compact-txn-%d", i)), kgo.DefaultProduceTopic(topic))
			transaction(p, fmt.Sprintf("p%d-after", i))
			p.Close()
		}
		committed := txnV2Consume(t, b2.Addr, topic, 1, kgo.ReadCommitted())
		if got, want := len(committed[0]), ids*txns+1+ids; got != want {
			t.Errorf("read_committed: %d records, want %d", got, want)
		}
	})
}
