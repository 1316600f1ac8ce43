package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/proto"
)

// txnV2Batch is one transactional batch of values at (pid, epoch, seq).
func txnV2Batch(pid int64, epoch int16, seq int32, values ...string) []byte {
	now := time.Now().UnixMilli()
	var recs []byte
	for i, v := range values {
		recs = proto.AppendRecord(recs, &kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)})
	}
	return proto.AppendRecordBatch(nil, &kmsg.RecordBatch{PartitionLeaderEpoch: -1, Attributes: proto.AttrTransactional,
		LastOffsetDelta: int32(len(values) - 1), FirstTimestamp: now, MaxTimestamp: now, ProducerID: pid, ProducerEpoch: epoch,
		FirstSequence: seq, NumRecords: int32(len(values)), Records: recs})
}

// txnV2Pipeline writes one Produce v12 request per batch over one
// connection without waiting (so later batches arrive while the first
// partition is being added to the transaction), then reads every answer
// in order and returns the codes.
func txnV2Pipeline(t *testing.T, addr, txnID, topic string, partitions []int32, batches [][]byte) []int16 {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	var out []byte
	for i, batch := range batches {
		r := kmsg.NewPtrProduceRequest()
		r.Version = 12
		r.TransactionID, r.Acks, r.TimeoutMillis = &txnID, -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = partitions[i], batch
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		out = append(out, encodeFrame(r, int32(i+1), "v2-pipeline")...)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	codes := make([]int16, len(batches))
	for i := range batches {
		var lenBuf [4]byte
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		body := make([]byte, binary.BigEndian.Uint32(lenBuf[:]))
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if corr := int32(binary.BigEndian.Uint32(body)); corr != int32(i+1) {
			t.Fatalf("correlation id %d, want %d", corr, i+1)
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = 12
		if err := resp.ReadFrom(body[5:]); err != nil { // correlation id + empty header tags
			t.Fatalf("answer %d: %v", i, err)
		}
		codes[i] = resp.Topics[0].Partitions[0].ErrorCode
	}
	return codes
}

// TestTxnV2PipelinedProduce: a transactions-v2 producer pipelines Produce
// v12 batches to two partitions neither of which is in its transaction
// yet: the first batch of each waits for the implicit add, and the ones
// behind it (same producer, later sequences) must not overtake it. Every
// batch is accepted, EndTxn v5 commits with the epoch bumped, and the next
// transaction pipelines again at the new epoch from sequence 0.
func TestTxnV2PipelinedProduce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTxnBroker(t, backend, nil)
		if _, err := tb.admin().CreateTopic(context.Background(), 2, 1, nil, "v2-pipe"); err != nil {
			t.Fatal(err)
		}
		cl := tb.client()
		const txnID = "v2-pipe"
		init := initTxn(t, cl, txnID, 60000)
		wantTxnCode(t, "InitProducerId", init.ErrorCode, 0)
		pid, epoch := init.ProducerID, init.ProducerEpoch
		var want []string
		round := func(epoch int16, prefix string) {
			t.Helper()
			const perPartition = 8
			var parts []int32
			var batches [][]byte
			for i := 0; i < perPartition; i++ {
				for p := int32(0); p < 2; p++ {
					v := fmt.Sprintf("%s-%d-%d", prefix, p, i)
					parts = append(parts, p)
					batches = append(batches, txnV2Batch(pid, epoch, int32(i), v))
					want = append(want, v)
				}
			}
			for i, code := range txnV2Pipeline(t, tb.Addr, txnID, "v2-pipe", parts, batches) {
				if code != 0 {
					t.Errorf("%s batch %d (partition %d): %v", prefix, i, parts[i], kerr.ErrorForCode(code))
				}
			}
			r := kmsg.NewPtrEndTxnRequest()
			r.Version = 5
			r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = txnID, pid, epoch, true
			resp := request[*kmsg.EndTxnResponse](t, cl, r)
			if resp.ErrorCode != 0 || resp.ProducerID != pid || resp.ProducerEpoch != epoch+1 {
				t.Fatalf("EndTxn v5: %v pid %d epoch %d, want NONE %d %d", kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID,
					resp.ProducerEpoch, pid, epoch+1)
			}
			waitTxnState(t, cl, txnID, "CompleteCommit")
		}
		round(epoch, "one")
		round(epoch+1, "two")
		got := consumeCommitted(t, tb, "v2-pipe", len(want))
		// Per partition, in sequence order.
		next := map[string]int{}
		for _, v := range got {
			var prefix string
			var p, i int
			if _, err := fmt.Sscanf(v, "%3s-%d-%d", &prefix, &p, &i); err != nil {
				t.Fatalf("record %q: %v", v, err)
			}
			key := fmt.Sprintf("%d", p)
			if i != next[prefix+key] {
				t.Errorf("partition %d: %q out of order (want index %d)", p, v, next[prefix+key])
			}
			next[prefix+key] = i + 1
		}
		if !sameSet(got, want...) {
			t.Fatalf("read_committed saw %d records %v, want %d", len(got), got, len(want))
		}
	})
}
