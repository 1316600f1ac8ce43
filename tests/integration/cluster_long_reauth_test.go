//go:build linux && clusterlong

package integration

// TestClusterLongSASLReauthInterBroker: KIP-368 on this broker's own
// inter-broker clients. The only broker listener is SASL_PLAINTEXT (PLAIN)
// with connections.max.reauth.ms=2000, so every session, the replica
// fetchers' and the transaction markers' included, ends 2 s after it
// began unless re-authenticated. Records are produced with acks=all to an
// RF 3 topic with min.insync.replicas=3 (each needs both followers'
// fetches) for more than three session lifetimes, and a transaction over
// partitions led by all three nodes is committed at the start and at the
// end (its markers go out on connections older than a lifetime): every
// acknowledgement arrives, no follower's fetch fails (a session that ended
// would close its connection: "request to the leader failed"), the ISR
// stays whole and the replicas are byte-identical. About 10 s per backend.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

func TestClusterLongSASLReauthInterBroker(t *testing.T) {
	const lifetime = 2 * time.Second
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		clientSASL := kgo.SASL(plain.Auth{User: "client", Pass: "client-secret"}.AsMechanism())
		c.nodeProps = func(n *clusterNode) map[string]string {
			return map[string]string{
				"listeners":                            fmt.Sprintf("SASL_PLAINTEXT://%s,CONTROLLER://%s", n.addr(), n.ctlAddr()),
				"listener.security.protocol.map":       "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
				"inter.broker.listener.name":           "SASL_PLAINTEXT",
				"sasl.enabled.mechanisms":              "PLAIN",
				"sasl.mechanism.inter.broker.protocol": "PLAIN",
				"listener.name.sasl_plaintext.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required ` +
					`username="broker" password="broker-secret" user_broker="broker-secret" user_client="client-secret";`,
				"connections.max.reauth.ms":  fmt.Sprint(lifetime.Milliseconds()),
				"controlled.shutdown.enable": "false",
			}
		}
		for _, n := range c.nodes {
			n.cl.Close()
			cl, err := kgo.NewClient(kgo.SeedBrokers(n.addr()), kgo.DialTimeout(2*time.Second), kgo.RequestRetries(0),
				kgo.RetryTimeout(time.Second), clientSASL)
			if err != nil {
				t.Fatal(err)
			}
			n.cl = cl
		}
		c.start(t)

		const topic, txTopic = "reauth-repl", "reauth-txn"
		const parts = 3
		c.createReplicatedTopic(t, topic, parts, 3, nil, map[string]string{"min.insync.replicas": "3"})
		c.createReplicatedTopic(t, txTopic, parts, 3, nil, nil)
		replicas := c.checkReplicaSets(t, topic, parts, 3)
		c.expectISR(t, topic, replicas, nil)
		marks := map[int32]int{}
		for _, n := range c.nodes {
			marks[n.id] = n.proc.LogLen()
		}

		ctx, cancel := context.WithTimeout(context.Background(), 2*clusterStepTimeout)
		defer cancel()
		p := seedClient(t, c.seeds(), kgo.TransactionalID("reauth-tx"), kgo.DefaultProduceTopic(txTopic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(20*time.Second), clientSASL)
		defer p.Close()
		txn := func(round int) {
			t.Helper()
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for part := int32(0); part < parts; part++ {
				if err := produceBounded(ctx, p, &kgo.Record{Partition: part, Value: []byte(fmt.Sprintf("txn-%d-%d", round, part))}); err != nil {
					t.Fatalf("transactional produce to %s/%d: %v", txTopic, part, err)
				}
			}
			if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatalf("commit %d: %v", round, err)
			}
		}
		txn(0)

		cl := seedClient(t, c.seeds(), kgo.RequiredAcks(kgo.AllISRAcks()), clientSASL)
		const round = 50
		start := time.Now()
		sent := 0
		for i := 0; time.Since(start) < 3*lifetime+lifetime/2 && i < 10000; i++ {
			produceSync(t, cl, topic, spreadRecords(fmt.Sprintf("%s-%d", topic, i), round, parts, 300, false))
			sent += round
			time.Sleep(20 * time.Millisecond) // a steady trickle, not a flood: the point is the time it spans
		}
		t.Logf("%d records acknowledged with acks=all and min.insync.replicas=3 over %v (%.1f session lifetimes)",
			sent, time.Since(start).Round(time.Millisecond), float64(time.Since(start))/float64(lifetime))
		txn(1)

		for _, n := range c.nodes {
			if logs := n.proc.LogsSince(marks[n.id]); strings.Contains(logs, "request to the leader failed") {
				t.Errorf("node %d: a replica fetcher's connection failed while sessions were re-authenticated:\n%s", n.id, logs)
			}
		}
		if _, err := pollUntil(replicationCatchUpTimeout, func() error { return c.compareReplicas(topic, replicas) }); err != nil {
			t.Fatalf("replicas of %s: %v", topic, err)
		}
		c.expectISR(t, topic, replicas, nil)
		rc := seedClient(t, c.seeds(), kgo.ConsumeTopics(txTopic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), clientSASL)
		defer rc.Close()
		seen := map[string]bool{}
		for len(seen) < 2*parts && ctx.Err() == nil {
			rc.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
		}
		if len(seen) != 2*parts {
			t.Fatalf("read_committed saw %d of the %d committed records: %v", len(seen), 2*parts, seen)
		}
	})
}
