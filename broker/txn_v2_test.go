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

	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/proto"
)

// txnV2Batch is one transactional batch of values at (pid, epoch, seq),
// timestamped now (ms).
func txnV2Batch(now int64, pid int64, epoch int16, seq int32, values ...string) []byte {
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
					batches = append(batches, txnV2Batch(time.Now().UnixMilli(), pid, epoch, int32(i), v))
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

// TestTxnV2Timeout: a transactions-v2 transaction (its partition added
// implicitly by a Produce v12) that outlives its timeout is aborted by the
// coordinator with the epoch fenced and bumped again (transaction.version
// 2), so the producer's next EndTxn v5 is PRODUCER_FENCED and its next
// produce INVALID_PRODUCER_EPOCH; read_committed sees nothing of it.
func TestTxnV2Timeout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		clk := clock.NewManual(time.Unix(1_700_000_000, 0))
		tb := startTxnBroker(t, backend, clk)
		if _, err := tb.admin().CreateTopic(context.Background(), 1, 1, nil, "v2-slow"); err != nil {
			t.Fatal(err)
		}
		cl := tb.client()
		const txnID = "v2-slow"
		init := initTxn(t, cl, txnID, 5000)
		wantTxnCode(t, "InitProducerId", init.ErrorCode, 0)
		pid, epoch := init.ProducerID, init.ProducerEpoch
		codes := txnV2Pipeline(t, tb.Addr, txnID, "v2-slow", []int32{0}, [][]byte{txnV2Batch(clk.Now().UnixMilli(), pid, epoch, 0, "late")})
		wantTxnCode(t, "Produce v12", codes[0], 0)
		clk.Advance(txnTestCleanupInterval)
		s := waitTxnState(t, cl, txnID, "CompleteAbort")
		if s.ProducerEpoch != epoch+2 {
			t.Errorf("aborted by timeout at epoch %d, want %d (fenced, then bumped as a v2 abort)", s.ProducerEpoch, epoch+2)
		}
		r := kmsg.NewPtrEndTxnRequest()
		r.Version = 5
		r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = txnID, pid, epoch, true
		wantTxnCode(t, "EndTxn v5 of the timed-out producer", request[*kmsg.EndTxnResponse](t, cl, r).ErrorCode, kerr.ProducerFenced.Code)
		codes = txnV2Pipeline(t, tb.Addr, txnID, "v2-slow", []int32{0}, [][]byte{txnV2Batch(clk.Now().UnixMilli(), pid, epoch, 1, "zombie")})
		wantTxnCode(t, "Produce v12 of the timed-out producer", codes[0], kerr.InvalidProducerEpoch.Code)
		// A committed record after it: read_committed sees only that.
		init = initTxn(t, cl, txnID, 5000)
		wantTxnCode(t, "InitProducerId again", init.ErrorCode, 0)
		codes = txnV2Pipeline(t, tb.Addr, txnID, "v2-slow", []int32{0}, [][]byte{txnV2Batch(clk.Now().UnixMilli(), init.ProducerID, init.ProducerEpoch, 0, "ok")})
		wantTxnCode(t, "Produce v12 after InitProducerId", codes[0], 0)
		r.ProducerID, r.ProducerEpoch = init.ProducerID, init.ProducerEpoch
		wantTxnCode(t, "EndTxn v5 commit", request[*kmsg.EndTxnResponse](t, cl, r).ErrorCode, 0)
		if got := consumeCommitted(t, tb, "v2-slow", 1); len(got) != 1 || got[0] != "ok" {
			t.Errorf("read_committed: %v, want [ok]", got)
		}
	})
}
