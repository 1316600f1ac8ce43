//go:build linux

package integration

// The high-watermark checkpoint (issue 16): every node of a cluster keeps
// each partition's high watermark in <log.dir>/replication-offset-checkpoint
// (Kafka's file and format), rewritten every
// replica.high.watermark.checkpoint.interval.ms and at shutdown, and starts
// from it after a restart.

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/storage"
)

// TestReplicationHighWatermarkCheckpoint: RF 3, one partition, 300 records
// acks=all. Bounded, every node's checkpoint file says 300 for the
// partition (leader and followers: a follower's high watermark is its
// leader's), and each follower's /metrics has the partition's fetcher lag
// at 0; after a clean stop of every node the files still say 300, and
// after the restart a consumer reads all 300 records.
func TestReplicationHighWatermarkCheckpoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.moreProps = map[string]string{"replica.high.watermark.checkpoint.interval.ms": "200"}
		metricsAddr := map[int32]string{}
		for _, n := range c.nodes {
			metricsAddr[n.id] = net.JoinHostPort(n.host, strconv.Itoa(freePortOn(t, n.host)))
		}
		c.nodeProps = func(n *clusterNode) map[string]string {
			return map[string]string{"metrics.listener": metricsAddr[n.id]}
		}
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
		leader, err := c.leaderOf(topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		series := fmt.Sprintf(`ringbroker_replica_fetcher_lag_messages{partition="0",topic="%s"}`, topic)
		for _, n := range c.nodes {
			if n.id == leader {
				continue
			}
			waitFor(t, fmt.Sprintf("node %d's fetcher lag series at 0", n.id), replicationCatchUpTimeout, func() error {
				_, samples := scrapeFamilies(t, metricsAddr[n.id])
				if v, ok := samples[series]; !ok || v != 0 {
					return fmt.Errorf("%s = %v (present %v)", series, v, ok)
				}
				if _, ok := samples["ringbroker_replica_fetcher_max_lag_messages"]; !ok {
					return fmt.Errorf("no ringbroker_replica_fetcher_max_lag_messages")
				}
				return nil
			})
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

// TestReplicationStaleBrokerEpochFetch: a follower fetch (v15+) whose
// replica_state.replica_epoch is older than the follower's registration,
// a fetcher of an earlier incarnation of the broker, is refused with
// NOT_LEADER_OR_FOLLOWER (Kafka's updateFetchStateOrThrow), so it cannot
// move the high watermark or the ISR; the same fetch with epoch -1 (no
// check, as Kafka) is served.
func TestReplicationStaleBrokerEpochFetch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		const topic = "repl-stale-epoch"
		c.createReplicatedTopic(t, topic, 1, 3, nil, nil)
		replicas := c.checkReplicaSets(t, topic, 1, 3)
		c.expectISR(t, topic, replicas, nil)
		var leaderID int32
		waitFor(t, topic+"/0 led by a node every node agrees on", clusterStepTimeout, func() error {
			var err error
			leaderID, err = c.leaderOf(topic, 0)
			return err
		})
		leader := c.node(leaderID)
		follower := replicas[0][0]
		if follower == leaderID {
			follower = replicas[0][1]
		}
		m, err := leader.metadata()
		if err != nil {
			t.Fatal(err)
		}
		var topicID [16]byte
		for _, mt := range m.Topics {
			if mt.Topic != nil && *mt.Topic == topic {
				topicID = mt.TopicID
			}
		}
		fetchAs := func(epoch int64) int16 {
			req := kmsg.NewPtrFetchRequest()
			req.Version = 15
			req.ReplicaID = -1
			req.ReplicaState.ID, req.ReplicaState.Epoch = follower, epoch
			req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 1<<20, 0, 0
			req.SessionEpoch = -1
			rt := kmsg.NewFetchRequestTopic()
			rt.TopicID = topicID
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.PartitionMaxBytes = 0, -1, -1, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := leader.request(context.Background(), req)
			if err != nil {
				t.Fatalf("Fetch as replica %d: %v", follower, err)
			}
			fr := resp.(*kmsg.FetchResponse)
			if fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
				t.Fatalf("Fetch as replica %d: error %d, %d topics", follower, fr.ErrorCode, len(fr.Topics))
			}
			return fr.Topics[0].Partitions[0].ErrorCode
		}
		// Broker epochs are offsets of registration records in the
		// metadata log: every registration's is above 0.
		if code := fetchAs(0); code != kerr.NotLeaderForPartition.Code {
			t.Errorf("follower fetch with a stale broker epoch answered %s, want NOT_LEADER_OR_FOLLOWER", codeName(code))
		}
		if code := fetchAs(-1); code != 0 {
			t.Errorf("follower fetch without a broker epoch answered %s, want no error", codeName(code))
		}
	})
}
