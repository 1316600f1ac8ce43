//go:build linux

package integration

// Transactions with Sarama (IBM/sarama), issue 18: a transactional
// SyncProducer commits a transaction, aborts one, commits another, each
// also carrying a consumed input record's offset for a group
// (AddMessageToTxn). A read_committed Sarama consumer sees exactly the
// committed records in order (an aborted one would show up between them),
// a read_uncommitted one sees all of them, and the group's committed offset
// is the last committed transaction's, never the aborted one's.
//
// Each case runs at two protocol versions: V2_5_0_0 (the first with
// KIP-447's TxnOffsetCommit v3) and the newest Sarama knows (MaxVersion).

import (
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

func TestSaramaTransactions(t *testing.T) {
	// Sarama logs through one package variable: capture it, shown on failure.
	saramaLog := daemontest.NewOutputBuffer(4 << 20)
	saved := sarama.Logger
	sarama.Logger = log.New(saramaLog, "[sarama] ", log.Ltime|log.Lmicroseconds)
	t.Cleanup(func() {
		sarama.Logger = saved
		if t.Failed() {
			t.Logf("sarama log:\n%s", daemontest.Tail(saramaLog.String(), 128<<10))
		}
	})
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		for _, v := range []sarama.KafkaVersion{sarama.V2_5_0_0, sarama.MaxVersion} {
			t.Run(v.String(), func(t *testing.T) { testSaramaTransactions(t, b.Addr, v) })
		}
	})
}

func testSaramaTransactions(t *testing.T, addr string, version sarama.KafkaVersion) {
	suffix := strings.ReplaceAll(version.String(), ".", "_")
	var (
		input  = "sarama-txn-in-" + suffix
		output = "sarama-txn-out-" + suffix
		group  = "sarama-txn-group-" + suffix
	)
	createTopic(t, addr, input, 1, nil)
	createTopic(t, addr, output, 1, nil)
	produceSync(t, newClient(t, addr), input, []sentRecord{
		{value: []byte("i0")}, {value: []byte("i1")}, {value: []byte("i2")}, {value: []byte("i3")},
	})
	in := saramaConsume(t, addr, version, input, sarama.ReadCommitted, 4)

	cfg := saramaConfig(version)
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "sarama-txn-" + suffix
	cfg.Producer.Transaction.Timeout = 30 * time.Second
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("transactional producer: %v", err)
	}
	defer func() {
		if err := producer.Close(); err != nil {
			t.Errorf("close producer: %v", err)
		}
	}()

	// transaction produces values to output and commits input message
	// consumed into group, then commits or aborts.
	transaction := func(commit bool, consumed *sarama.ConsumerMessage, values ...string) {
		t.Helper()
		if err := producer.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn: %v", err)
		}
		var msgs []*sarama.ProducerMessage
		for _, v := range values {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: output, Partition: 0, Value: sarama.StringEncoder(v)})
		}
		if err := producer.SendMessages(msgs); err != nil {
			t.Fatalf("SendMessages %v in a transaction: %v", values, err)
		}
		if err := producer.AddMessageToTxn(consumed, group, nil); err != nil {
			t.Fatalf("AddMessageToTxn (%s offset %d): %v", consumed.Topic, consumed.Offset, err)
		}
		end, name := producer.CommitTxn, "CommitTxn"
		if !commit {
			end, name = producer.AbortTxn, "AbortTxn"
		}
		if err := end(); err != nil {
			t.Fatalf("%s: %v (status %v)", name, err, producer.TxnStatus())
		}
		if status := producer.TxnStatus(); status&sarama.ProducerTxnFlagReady == 0 {
			t.Errorf("after %s the producer's status is %v, want ready", name, status)
		}
	}

	transaction(true, in[0], "c1", "c2", "c3")
	saramaCheckGroupOffset(t, addr, group, input, 1)
	transaction(false, in[3], "a1", "a2", "a3")
	saramaCheckGroupOffset(t, addr, group, input, 1)
	transaction(true, in[1], "c4", "c5")
	saramaCheckGroupOffset(t, addr, group, input, 2)

	// The aborted records lie between the committed ones: read_committed
	// must stop showing them before it reaches c4, so reading exactly five
	// records proves none leaked.
	check := func(level sarama.IsolationLevel, want ...string) {
		t.Helper()
		var got []string
		for _, m := range saramaConsume(t, addr, version, output, level, len(want)) {
			got = append(got, string(m.Value))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s consumer read %v, want %v", saramaLevel(level), got, want)
		} else {
			t.Logf("%s consumer read %v", saramaLevel(level), got)
		}
	}
	check(sarama.ReadCommitted, "c1", "c2", "c3", "c4", "c5")
	check(sarama.ReadUncommitted, "c1", "c2", "c3", "a1", "a2", "a3", "c4", "c5")
}

// saramaLevel names an isolation level.
func saramaLevel(level sarama.IsolationLevel) string {
	if level == sarama.ReadCommitted {
		return "read_committed"
	}
	return "read_uncommitted"
}

// saramaConfig is a Sarama config for version with the test's bounds.
func saramaConfig(version sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = "ringbroker-it"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 20 * time.Second
	cfg.Net.WriteTimeout = 20 * time.Second
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

// saramaConsume reads the first n messages of partition 0 of topic with a
// Sarama consumer at level, bounded by e2eTimeout.
func saramaConsume(t *testing.T, addr string, version sarama.KafkaVersion, topic string, level sarama.IsolationLevel, n int) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := saramaConfig(version)
	cfg.Consumer.IsolationLevel = level
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	consumer, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("consumer (%s): %v", saramaLevel(level), err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatalf("ConsumePartition %s (%s): %v", topic, saramaLevel(level), err)
	}
	defer pc.Close()
	timeout := time.After(e2eTimeout)
	var got []*sarama.ConsumerMessage
	for len(got) < n {
		select {
		case m := <-pc.Messages():
			got = append(got, m)
		case err := <-pc.Errors():
			t.Fatalf("consume %s (%s): %v", topic, saramaLevel(level), err)
		case <-timeout:
			var values []string
			for _, m := range got {
				values = append(values, fmt.Sprintf("%d:%s", m.Offset, m.Value))
			}
			t.Fatalf("consume %s (%s): %d of %d messages within %v: %v", topic, saramaLevel(level), len(got), n, e2eTimeout, values)
		}
	}
	return got
}

// saramaCheckGroupOffset checks group's committed offset of partition 0 of
// topic once no transactional commit of it is pending (stableGroupOffsets:
// CommitTxn returns when the coordinator answered EndTxn, before the
// markers, as in Kafka).
func saramaCheckGroupOffset(t *testing.T, addr, group, topic string, want int64) {
	t.Helper()
	if got := stableGroupOffsets(t, addr, group, topic, 1)[0]; got != want {
		t.Errorf("group %s committed offset of %s/0: %d, want %d", group, topic, got, want)
	}
}
