package main

import (
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/broker"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/replica"
)

// replicationStopTimeout bounds how long shutdown waits for the replica
// fetchers (a fetch in flight is interrupted at once; an append or a
// truncation in progress finishes first).
const replicationStopTimeout = 10 * time.Second

// replication runs the replica fetchers of a clustered node (package
// replica): fed every metadata image the node applies, around the
// broker's own OnMetadata, and stopped before the logs close.
type replication struct {
	mgr *replica.Manager
}

func newReplication(cfg *config.Config, reg *broker.Registry, b *broker.Broker, dial replica.DialFunc, logger *zap.Logger) *replication {
	r := &replication{}
	ms := func(v int32) time.Duration { return time.Duration(v) * time.Millisecond }
	interBroker, _ := cfg.InterBrokerListener() // checked by Validate
	r.mgr = replica.New(replica.Config{
		NodeID:         cfg.NodeID,
		ListenerName:   interBroker.Name,
		Dial:           dial,
		Fetchers:       int(cfg.NumReplicaFetchers),
		FetchMaxBytes:  cfg.ReplicaFetchMaxBytes,
		BatchBytesMax:  cfg.MessageMaxBytes,
		FetchWaitMax:   ms(cfg.ReplicaFetchWaitMaxMs),
		FetchMinBytes:  cfg.ReplicaFetchMinBytes,
		Backoff:        ms(cfg.ReplicaFetchBackoffMs),
		RequestTimeout: ms(cfg.ReplicaSocketTimeoutMs),
		Logs: func(topic string, id [16]byte, partition int32) replica.Log {
			t := reg.Topic(topic)
			if t == nil || t.ID != id {
				return nil
			}
			p := reg.Partition(topic, partition)
			if p == nil || p.Log == nil {
				return nil
			}
			return b.FollowerLog(p) // remembers the leader's high watermark, replays the producer state (KIP-392 reads)
		},
		Truncated:   b.ReplicaTruncated,
		StartedOver: b.ReplicaStartedOver,
		Logger:      logger.Named("replica"),
	})
	return r
}

// update feeds im to the manager: Retire (stop what this node no longer
// follows) or Update (also start what it now follows).
func (r *replication) update(im *metadata.Image, deltas []metadata.Delta, full, retire bool) {
	if retire {
		r.mgr.Retire(im, deltas, full)
	} else {
		r.mgr.Update(im, deltas, full)
	}
}

// onMetadata wraps the broker's OnMetadata (the node's applier calls it):
// before the broker applies the image, partitions this node now leads or
// no longer holds stop being fetched (Retire returns only once no fetcher
// writes to them: Kafka removes fetchers before makeLeader); after it, the
// partitions the image has this node follow start (their logs are open and
// no longer take produces: Kafka's makeFollower before addFetcher).
func (r *replication) onMetadata(next func(*metadata.Image, []metadata.Delta, bool)) func(*metadata.Image, []metadata.Delta, bool) {
	return func(im *metadata.Image, deltas []metadata.Delta, full bool) {
		r.update(im, deltas, full, true)
		next(im, deltas, full)
		r.update(im, deltas, full, false)
	}
}

// close stops the fetchers, bounded.
func (r *replication) close() { r.mgr.Close(replicationStopTimeout) }
