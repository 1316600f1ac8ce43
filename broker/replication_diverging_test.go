package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/storage"
)

// replFetchLast is one follower Fetch (v16) of partition 0 of topic from
// replica at offset with last_fetched_epoch last.
func replFetchLast(t *testing.T, cl *kgo.Client, topic string, replica int32, offset int64, last int32) *kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 16
	req.ReplicaID, req.ReplicaState.ID, req.ReplicaState.Epoch = replica, replica, -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 5000, 1, 1<<20 // a divergence is answered at once
	req.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	ft.TopicID = topicIDOf(t, cl, topic)
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset, fp.LastFetchedEpoch = 0, offset, 1<<20, -1, -1, last
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	fr := resp.(*kmsg.FetchResponse)
	if fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response: %+v", fr)
	}
	return &fr.Topics[0].Partitions[0]
}

// TestLeaderAnswersDivergingEpoch: a follower fetch carrying
// last_fetched_epoch is checked against the leader's epoch cache as Kafka's
// Partition.readRecords does: a fetch offset past the end of that epoch
// gets diverging_epoch (epoch, end) and no records, at once, and does not
// count as the follower's position; an epoch the leader cannot place is
// OFFSET_OUT_OF_RANGE; a consistent one reads as usual.
func TestLeaderAnswersDivergingEpoch(t *testing.T) {
	rc := startReplCluster(t, 0)
	leaderAck := rc.producer(1)
	follower := rc.tb.client()
	p := rc.createTopic(leaderAck, "div", []int32{1, 2}, nil)
	if r := replProduce(t, leaderAck, "div", 10*time.Second, 5); r.ErrorCode != 0 {
		t.Fatalf("produce: %+v", r)
	}
	epoch := p.leaderEpoch.Load()

	// The follower claims records of this epoch up to 8; the leader's
	// epoch ends at its log end, 5.
	start := time.Now()
	f := replFetchLast(t, follower, "div", 2, 8, epoch)
	if f.ErrorCode != 0 || f.DivergingEpoch.Epoch != epoch || f.DivergingEpoch.EndOffset != 5 || len(f.RecordBatches) != 0 {
		t.Fatalf("diverging fetch: code %d diverging (%d, %d) %d record bytes, want (%d, 5) and none",
			f.ErrorCode, f.DivergingEpoch.Epoch, f.DivergingEpoch.EndOffset, len(f.RecordBatches), epoch)
	}
	if waited := time.Since(start); waited > 4*time.Second {
		t.Fatalf("a diverging fetch waited %v (long poll)", waited)
	}
	p.lead.mu.Lock()
	leo := p.lead.followers[2].leo
	p.lead.mu.Unlock()
	if leo != -1 {
		t.Fatalf("a diverging fetch moved the follower's log end to %d", leo)
	}
	// An epoch above every one the leader has: nothing to compare.
	if f := replFetchLast(t, follower, "div", 2, 3, epoch+1); f.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("unknown last fetched epoch: code %d, want OFFSET_OUT_OF_RANGE", f.ErrorCode)
	}
	// Consistent: records from 3, and the fetch counts.
	f = replFetchLast(t, follower, "div", 2, 3, epoch)
	if f.ErrorCode != 0 || f.DivergingEpoch.Epoch != -1 || recordsEnd(t, f) != 5 {
		t.Fatalf("consistent fetch: code %d diverging (%d, %d) records end %d", f.ErrorCode, f.DivergingEpoch.Epoch, f.DivergingEpoch.EndOffset, recordsEnd(t, f))
	}
	p.lead.mu.Lock()
	leo = p.lead.followers[2].leo
	p.lead.mu.Unlock()
	if leo != 3 {
		t.Fatalf("follower log end %d after a consistent fetch at 3", leo)
	}
}

// TestReplicaStartedOverDropsProducerState: after a follower log starts
// over empty at its leader's log start (the replica fetcher calls
// ReplicaStartedOver), every producer state snapshot is gone and the state
// is read from the new log alone: the producer's old sequences are
// forgotten, so its next batch is taken as a new producer's (as Kafka's
// emptied ProducerStateManager), not refused against records that are gone.
func TestReplicaStartedOverDropsProducerState(t *testing.T) {
	old := snapshotEveryBytes
	snapshotEveryBytes = 1
	t.Cleanup(func() { snapshotEveryBytes = old })
	tb := startTestBroker(t, testBackends[0], nil)
	prodCreate(t, tb, "over", 1, nil)
	rc := dialProd(t, tb.Addr)
	pid := rc.initProducerID(2, nil).ProducerID
	now := time.Now().UnixMilli()
	for seq := int32(0); seq < 5; seq++ {
		if got := rc.produceRaw(9, "over", 0, prodBatch(pid, 0, seq, now, prodValues("s", 1)...)); got.ErrorCode != 0 {
			t.Fatalf("seq %d: %v", seq, kerr.ErrorForCode(got.ErrorCode))
		}
	}
	l := tb.Reg.Partition("over", 0).Log
	dir := l.Dir()
	waitUntil(t, "a producer state snapshot", func() bool { return len(snapshotFiles(storage.DefaultFS, dir)) > 0 })
	if err := l.TruncateFullyAndStartAt(20); err != nil {
		t.Fatal(err)
	}
	tb.Broker.ReplicaStartedOver("over", 0, 20)
	if offs := snapshotFiles(storage.DefaultFS, dir); len(offs) > 0 {
		t.Fatalf("snapshots %v left after the log started over", offs)
	}
	// Sequence 0 again: with the old state it would be a duplicate of a
	// batch the log no longer has; with none it is appended at 20.
	if got := rc.produceRaw(9, "over", 0, prodBatch(pid, 0, 0, now, prodValues("s", 1)...)); got.ErrorCode != 0 || got.BaseOffset != 20 {
		t.Fatalf("sequence 0 after the restart of the log: offset %d, %v; want offset 20", got.BaseOffset, kerr.ErrorForCode(got.ErrorCode))
	}
}
