package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/group"
)

// TestTxnOffsetCommitProducerState: a transactional offset commit goes
// through the __consumer_offsets partition's producer state: it holds that
// partition's last stable offset until its marker, an aborted one gets its
// .txnindex entry (so compaction and a restart know it was aborted), and a
// fenced epoch is refused at the append.
func TestTxnOffsetCommitProducerState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTxnBroker(t, backend, nil)
		cl := txnClient(tb, nil)
		if _, err := tb.admin().CreateTopic(t.Context(), 1, 1, nil, "txn-in"); err != nil {
			t.Fatal(err)
		}
		init := initTxn(t, cl, "t-o", 30000)
		wantTxnCode(t, "InitProducerId", init.ErrorCode, 0)
		pid, epoch := init.ProducerID, init.ProducerEpoch
		commit := func(g string, ep int16) int16 {
			r := kmsg.NewPtrTxnOffsetCommitRequest()
			r.TransactionalID, r.Group, r.ProducerID, r.ProducerEpoch, r.Generation = "t-o", g, pid, ep, -1
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = "txn-in"
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = 0, 7
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return request[*kmsg.TxnOffsetCommitResponse](t, cl, r).Topics[0].Partitions[0].ErrorCode
		}
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "t-o", pid, epoch, "g-o"
		wantTxnCode(t, "AddOffsetsToTxn", request[*kmsg.AddOffsetsToTxnResponse](t, cl, ao).ErrorCode, 0)
		wantTxnCode(t, "TxnOffsetCommit", commit("g-o", epoch), 0)

		offsets := tb.Broker.reg.Topic(offsetsTopic)
		if offsets == nil {
			t.Fatal("no __consumer_offsets")
		}
		p := offsets.Partitions[group.PartitionFor("g-o", int32(len(offsets.Partitions)))]
		ps := tb.Broker.produce.part(p)
		if hw, lso := p.Log.HighWatermark(), ps.lastStableOffset(); hw == 0 || lso >= hw {
			t.Fatalf("open transactional offset commit: LSO %d, high watermark %d: the LSO must hold below it", lso, hw)
		}

		// The producer state refuses an older epoch (Kafka's log append check).
		wantTxnCode(t, "append with an older epoch", appendCoordinatorTxnSync(tb.Broker, p, pid, epoch-1), kerr.InvalidProducerEpoch.Code)

		wantTxnCode(t, "EndTxn abort", endTxn(t, cl, "t-o", pid, epoch, false), 0)
		waitTxnState(t, cl, "t-o", "CompleteAbort")
		hw := p.Log.HighWatermark()
		if lso := ps.lastStableOffset(); lso != hw {
			t.Errorf("after the abort marker: LSO %d, high watermark %d", lso, hw)
		}
		aborted := p.Log.AbortedTxns(0, hw)
		if len(aborted) != 1 || aborted[0].ProducerID != pid {
			t.Errorf("aborted transactions of %s-%d: %+v, want one of producer %d", offsetsTopic, p.Index, aborted, pid)
		}
	})
}

// appendCoordinatorTxnSync appends a one-record transactional batch of
// (pid, epoch) to p through the producer state and returns its code.
func appendCoordinatorTxnSync(b *Broker, p *Partition, pid int64, epoch int16) int16 {
	ch := make(chan int16, 1)
	ts := time.Now().UnixMilli()
	batch := appendTxnRecordBatch(ts, pid, epoch, [][2][]byte{{[]byte("k"), []byte("v")}})
	b.appendCoordinatorTxn(p, batch, pid, epoch, ts, func(code int16) { ch <- code })
	return <-ch
}
