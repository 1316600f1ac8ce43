//go:build linux

package integration

// The high-watermark checkpoint (issue 16): every node of a cluster keeps
// each partition's high watermark in <log.dir>/replication-offset-checkpoint
// (Kafka's file and format), rewritten every
// replica.high.watermark.checkpoint.interval.ms and at shutdown, and starts
// from it after a restart.

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ringbroker/ringbroker/storage"
)

// TestReplicationHighWatermarkCheckpoint: RF 3, one partition, 300 records
// acks=all. Bounded, every node's checkpoint file says 300 for the
// partition (leader and followers: a follower's high watermark is its
// leader's); after a clean stop of every node the files still say 300, and
// after the restart a consumer reads all 300 records.
func TestReplicationHighWatermarkCheckpoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.moreProps = map[string]string{"replica.high.watermark.checkpoint.interval.ms": "200"}
		c.start(t)
		const topic = "repl-hw-checkpoint"
		const total = 300
		c.createReplicatedTopic(t, topic, 1, 3, nil, nil)
		replicas := c.checkReplicaSets(t, topic, 1, 3)
		c.expectISR(t, topic, replicas, nil)
		cl := seedClient(t, c.seeds(), kgo.RequiredAcks(kgo.AllISRAcks()))
		produceSync(t, cl, topic, spreadRecords(topic, total, 1, 100, false))
		cl.Close()

		checkpointed := func(n *clusterNode) error {
			cp, err := storage.ReadCheckpoint(nil, filepath.Join(n.dir, storage.ReplicationOffsetCheckpointFile))
			if err != nil {
				return err
			}
			if got, ok := cp[storage.TopicPartition{Topic: topic, Partition: 0}]; !ok || got != total {
				return fmt.Errorf("node %d: %s/0 checkpointed at %d (present %v), want %d", n.id, topic, got, ok, total)
			}
			return nil
		}
		for _, n := range c.nodes {
			waitFor(t, fmt.Sprintf("node %d's periodic high-watermark checkpoint", n.id), replicationCatchUpTimeout, func() error { return checkpointed(n) })
		}
		c.stopAll(t)
		for _, n := range c.nodes {
			if err := checkpointed(n); err != nil {
				t.Fatalf("after a clean stop: %v", err)
			}
		}
		c.start(t)
		got := consumeToEnd(t, c.seeds(), topic, 1)
		if len(got[0]) != total {
			t.Fatalf("after the restart %d records read from %s/0, want %d", len(got[0]), topic, total)
		}
	})
}
