package integration

// Transactions v2 (KIP-890 part 2) against the daemon: the
// transaction.version feature in ApiVersions, the raw v2 flow (Produce v12
// with no AddPartitionsToTxn, EndTxn v5 bumping the epoch, retries and
// fencing), franz-go's own v2 client, and transaction.version=1 keeping
// clients on v1.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/proto"
)

const txnV2Topic = "txn-v2"

// txnV2Request sends r on cl, bounded.
func txnV2Request[R kmsg.Response](t *testing.T, cl *kgo.Client, r kmsg.Request) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := cl.Request(ctx, r)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(r.Key()), err)
	}
	return resp.(R)
}

// txnV2Retry calls f until it answers a code that is not retriable (bounded
// by e2eTimeout) and returns that code.
func txnV2Retry(t *testing.T, what string, f func() int16) int16 {
	t.Helper()
	deadline := time.Now().Add(e2eTimeout)
	for {
		code := f()
		switch code {
		case kerr.CoordinatorLoadInProgress.Code, kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code,
			kerr.ConcurrentTransactions.Code, kerr.NotEnoughReplicas.Code:
		default:
			return code
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after %v", what, kerr.ErrorForCode(code), e2eTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// txnV2Produce sends one transactional batch of values to partition with
// Produce v12 (transactions v2: no AddPartitionsToTxn first) and returns
// the partition's code, retrying the retriable ones.
func txnV2Produce(t *testing.T, cl *kgo.Client, txnID string, pid int64, epoch int16, partition int32, seq int32, values ...string) int16 {
	t.Helper()
	return txnV2ProduceTo(t, cl.Request, txnV2Topic, txnID, pid, epoch, partition, seq, values...)
}

// txnV2ProduceTo is txnV2Produce to topic through send (a client, or one
// broker of a cluster).
func txnV2ProduceTo(t *testing.T, send func(context.Context, kmsg.Request) (kmsg.Response, error), topic, txnID string,
	pid int64, epoch int16, partition int32, seq int32, values ...string) int16 {
	t.Helper()
	return txnProduceVersion(t, send, 12, topic, txnID, pid, epoch, partition, seq, values...)
}

// txnProduceVersion is txnV2ProduceTo at a Produce version of the
// caller's (11 and below: transactions v1).
func txnProduceVersion(t *testing.T, send func(context.Context, kmsg.Request) (kmsg.Response, error), version int16, topic, txnID string,
	pid int64, epoch int16, partition int32, seq int32, values ...string) int16 {
	t.Helper()
	now := time.Now().UnixMilli()
	var recs []byte
	for i, v := range values {
		recs = proto.AppendRecord(recs, &kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)})
	}
	batch := proto.AppendRecordBatch(nil, &kmsg.RecordBatch{PartitionLeaderEpoch: -1, Attributes: proto.AttrTransactional,
		LastOffsetDelta: int32(len(values) - 1), FirstTimestamp: now, MaxTimestamp: now, ProducerID: pid, ProducerEpoch: epoch,
		FirstSequence: seq, NumRecords: int32(len(values)), Records: recs})
	return txnV2Retry(t, fmt.Sprintf("Produce v%d", version), func() int16 {
		r := kmsg.NewPtrProduceRequest()
		r.Version = version
		r.TransactionID, r.Acks, r.TimeoutMillis = &txnID, -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = partition, batch
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		resp, err := send(ctx, r)
		if err != nil {
			t.Fatalf("Produce v%d: %v", version, err)
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	})
}

// txnV2End sends EndTxn v5 and returns its answer, retrying
// CONCURRENT_TRANSACTIONS and coordinator errors.
func txnV2End(t *testing.T, cl *kgo.Client, txnID string, pid int64, epoch int16, commit bool) *kmsg.EndTxnResponse {
	t.Helper()
	var resp *kmsg.EndTxnResponse
	txnV2Retry(t, "EndTxn v5", func() int16 {
		r := kmsg.NewPtrEndTxnRequest()
		r.Version = 5
		r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = txnID, pid, epoch, commit
		resp = txnV2Request[*kmsg.EndTxnResponse](t, cl, r)
		return resp.ErrorCode
	})
	return resp
}

// txnV2Init runs InitProducerId for txnID (retrying while the coordinator
// loads) and returns the producer id and epoch.
func txnV2Init(t *testing.T, cl *kgo.Client, txnID string) (pid int64, epoch int16) {
	t.Helper()
	code := txnV2Retry(t, "InitProducerId", func() int16 {
		r := kmsg.NewPtrInitProducerIDRequest()
		id := txnID
		r.TransactionalID, r.TransactionTimeoutMillis, r.ProducerID, r.ProducerEpoch = &id, 60000, -1, -1
		resp := txnV2Request[*kmsg.InitProducerIDResponse](t, cl, r)
		pid, epoch = resp.ProducerID, resp.ProducerEpoch
		return resp.ErrorCode
	})
	if code != 0 {
		t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(code))
	}
	return pid, epoch
}

// txnV2Describe returns DescribeTransactions of txnID.
func txnV2Describe(t *testing.T, cl *kgo.Client, txnID string) kmsg.DescribeTransactionsResponseTransactionState {
	t.Helper()
	r := kmsg.NewPtrDescribeTransactionsRequest()
	r.TransactionalIDs = []string{txnID}
	resp := txnV2Request[*kmsg.DescribeTransactionsResponse](t, cl, r)
	if len(resp.TransactionStates) != 1 {
		t.Fatalf("DescribeTransactions: %d states", len(resp.TransactionStates))
	}
	return resp.TransactionStates[0]
}

// txnV2Consume reads every partition of topic from the start at level and
// returns the values by partition, once a second passes with nothing new.
func txnV2Consume(t *testing.T, addr, topic string, partitions int32, level kgo.IsolationLevel) map[int32][]string {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: fromStart(partitions)}),
		kgo.FetchIsolationLevel(level))
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	got := map[int32][]string{}
	quietUntil := time.Now().Add(time.Second)
	for time.Now().Before(quietUntil) {
		pctx, pcancel := context.WithDeadline(ctx, quietUntil)
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			t.Fatalf("consume %s: no end within %v", topic, e2eTimeout)
		}
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				t.Errorf("fetch %s/%d: %v", tp, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			quietUntil = time.Now().Add(time.Second)
		})
	}
	return got
}

// txnV2Level returns the finalized transaction.version level ApiVersions
// v3 answers (-1 when not finalized) and checks the supported range.
func txnV2Level(t *testing.T, cl *kgo.Client) int16 {
	t.Helper()
	r := kmsg.NewPtrApiVersionsRequest()
	r.Version = 3
	r.ClientSoftwareName, r.ClientSoftwareVersion = "ringbroker-test", "1"
	resp := txnV2Request[*kmsg.ApiVersionsResponse](t, cl, r)
	supported := false
	for _, f := range resp.SupportedFeatures {
		if f.Name == "transaction.version" && f.MinVersion == 0 && f.MaxVersion == 2 {
			supported = true
		}
	}
	if !supported {
		t.Errorf("ApiVersions: supported features %+v, want transaction.version 0-2", resp.SupportedFeatures)
	}
	if resp.FinalizedFeaturesEpoch < 0 {
		t.Errorf("ApiVersions: finalized features epoch %d, want >= 0", resp.FinalizedFeaturesEpoch)
	}
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "transaction.version" {
			if f.MinVersionLevel != f.MaxVersionLevel {
				t.Errorf("ApiVersions: finalized transaction.version %d-%d", f.MinVersionLevel, f.MaxVersionLevel)
			}
			return f.MaxVersionLevel
		}
	}
	return -1
}

// TestTxnV2RawFlow drives transactions v2 with raw requests: InitProducerId,
// Produce v12 to two partitions with no AddPartitionsToTxn, TxnOffsetCommit
// v5 with no AddOffsetsToTxn, EndTxn v5
// commit (the epoch bumps and comes back), a retried EndTxn, an aborted
// transaction at the new epoch, the old epoch fenced, and read_committed
// seeing exactly the committed records.
func TestTxnV2RawFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		cl := newClient(t, b.Addr)
		if level := txnV2Level(t, cl); level != 2 {
			t.Fatalf("finalized transaction.version %d, want 2 by default", level)
		}
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		if _, err := newAdmin(t, b.Addr).CreateTopic(ctx, 2, 1, nil, txnV2Topic); err != nil {
			t.Fatal(err)
		}
		const txnID = "v2-raw"
		pid, epoch := txnV2Init(t, cl, txnID)

		// Transaction 1: two partitions, implicitly added, committed.
		for p, v := range []string{"c1", "c2"} {
			if code := txnV2Produce(t, cl, txnID, pid, epoch, int32(p), 0, v); code != 0 {
				t.Fatalf("produce %s: %v", v, kerr.ErrorForCode(code))
			}
		}
		// TxnOffsetCommit v5 with no AddOffsetsToTxn: the group's offsets
		// partition joins the transaction.
		const group = "v2-raw-group"
		code := txnV2Retry(t, "TxnOffsetCommit v5", func() int16 {
			r := kmsg.NewPtrTxnOffsetCommitRequest()
			r.Version = 5
			r.TransactionalID, r.Group, r.ProducerID, r.ProducerEpoch, r.Generation = txnID, group, pid, epoch, -1
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = txnV2Topic
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = 0, 7, -1
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return txnV2Request[*kmsg.TxnOffsetCommitResponse](t, cl, r).Topics[0].Partitions[0].ErrorCode
		})
		if code != 0 {
			t.Fatalf("TxnOffsetCommit v5: %v", kerr.ErrorForCode(code))
		}
		d := txnV2Describe(t, cl, txnID)
		var parts []int32
		offsetsAdded := false
		for _, tp := range d.Topics {
			if tp.Topic == "__consumer_offsets" {
				offsetsAdded = true
				continue
			}
			parts = append(parts, tp.Partitions...)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		if d.State != "Ongoing" || len(parts) != 2 || parts[0] != 0 || parts[1] != 1 || !offsetsAdded {
			t.Fatalf("after two v12 produces and a v5 offset commit: state %s partitions %v (offsets partition: %v), want Ongoing with both and the offsets partition",
				d.State, parts, offsetsAdded)
		}
		end := txnV2End(t, cl, txnID, pid, epoch, true)
		if end.ErrorCode != 0 || end.ProducerID != pid || end.ProducerEpoch != epoch+1 {
			t.Fatalf("EndTxn v5 commit: %v pid %d epoch %d, want NONE %d %d", kerr.ErrorForCode(end.ErrorCode), end.ProducerID,
				end.ProducerEpoch, pid, epoch+1)
		}
		// A retry with the epoch before the bump is the same commit.
		retry := txnV2End(t, cl, txnID, pid, epoch, true)
		if retry.ErrorCode != 0 || retry.ProducerEpoch != epoch+1 {
			t.Errorf("retried EndTxn v5 commit: %v epoch %d, want NONE %d", kerr.ErrorForCode(retry.ErrorCode), retry.ProducerEpoch, epoch+1)
		}
		if d := txnV2Describe(t, cl, txnID); d.State != "CompleteCommit" || d.ProducerEpoch != epoch+1 {
			t.Errorf("after the commit: %s epoch %d, want CompleteCommit %d", d.State, d.ProducerEpoch, epoch+1)
		}

		// Transaction 2 at the bumped epoch (sequences start again), aborted.
		e1 := epoch + 1
		if code := txnV2Produce(t, cl, txnID, pid, e1, 0, 0, "a1"); code != 0 {
			t.Fatalf("produce a1: %v", kerr.ErrorForCode(code))
		}
		if code := txnV2Produce(t, cl, txnID, pid, e1, 0, 1, "a2"); code != 0 {
			t.Fatalf("produce a2: %v", kerr.ErrorForCode(code))
		}
		end = txnV2End(t, cl, txnID, pid, e1, false)
		if end.ErrorCode != 0 || end.ProducerEpoch != e1+1 {
			t.Fatalf("EndTxn v5 abort: %v epoch %d, want NONE %d", kerr.ErrorForCode(end.ErrorCode), end.ProducerEpoch, e1+1)
		}
		// Once the abort's markers are written (before, a batch at the old
		// epoch would still join the transaction being aborted, as in
		// Kafka, and be aborted with it).
		waitTxnComplete(t, b.Addr, txnID)
		// The aborted epoch is fenced: its produce and its commit.
		if code := txnV2Produce(t, cl, txnID, pid, e1, 0, 2, "zombie"); code != kerr.InvalidProducerEpoch.Code {
			t.Errorf("produce at the old epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
		}
		if end := txnV2End(t, cl, txnID, pid, epoch, true); end.ErrorCode != kerr.ProducerFenced.Code {
			t.Errorf("EndTxn v5 two epochs back: %v, want PRODUCER_FENCED", kerr.ErrorForCode(end.ErrorCode))
		}

		// Transaction 3, committed.
		e2 := e1 + 1
		if code := txnV2Produce(t, cl, txnID, pid, e2, 1, 0, "c3"); code != 0 {
			t.Fatalf("produce c3: %v", kerr.ErrorForCode(code))
		}
		if end := txnV2End(t, cl, txnID, pid, e2, true); end.ErrorCode != 0 || end.ProducerEpoch != e2+1 {
			t.Fatalf("EndTxn v5 commit 3: %v epoch %d", kerr.ErrorForCode(end.ErrorCode), end.ProducerEpoch)
		}
		waitTxnComplete(t, b.Addr, txnID)

		offsets, err := newAdmin(t, b.Addr).FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offsets.Lookup(txnV2Topic, 0); !ok || o.At != 7 {
			t.Errorf("group offset after the commit: %+v, want 7", o)
		}
		committed := txnV2Consume(t, b.Addr, txnV2Topic, 2, kgo.ReadCommitted())
		if got := committed[0]; len(got) != 1 || got[0] != "c1" {
			t.Errorf("read_committed partition 0: %v, want [c1]", got)
		}
		if got := committed[1]; len(got) != 2 || got[0] != "c2" || got[1] != "c3" {
			t.Errorf("read_committed partition 1: %v, want [c2 c3]", got)
		}
		uncommitted := txnV2Consume(t, b.Addr, txnV2Topic, 2, kgo.ReadUncommitted())
		if got := uncommitted[0]; len(got) != 3 || got[1] != "a1" || got[2] != "a2" {
			t.Errorf("read_uncommitted partition 0: %v, want [c1 a1 a2]", got)
		}
	})
}

// txnV2FranzRun runs four franz-go transactions (commit, commit, abort,
// commit) over two partitions and returns the producer epoch
// DescribeTransactions shows after the second and after the last.
func txnV2FranzRun(t *testing.T, addr, txnID string) (before, after int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	adm := newAdmin(t, addr)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, txnV2Topic); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, addr, kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(txnV2Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	raw := newClient(t, addr)
	run := func(commit bool, values ...string) {
		t.Helper()
		for i, v := range values {
			r := kgo.StringRecord(v)
			r.Partition = int32(i % 2)
			if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction: %v", err)
		}
	}
	txns := []struct {
		commit bool
		values []string
	}{{true, []string{"w0", "w1"}}, {true, []string{"c1", "c2"}}, {false, []string{"a1", "a2"}}, {true, []string{"c3", "c4"}}}
	for i, tx := range txns {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		run(tx.commit, tx.values...)
		// franz-go opts in to v2 only once it has seen the finalized
		// feature, which may be after its first transaction began (it
		// then re-inits its producer id): measure from the second one.
		if i == 1 {
			before = txnV2Describe(t, raw, txnID).ProducerEpoch
		}
	}
	waitTxnComplete(t, addr, txnID)
	after = txnV2Describe(t, raw, txnID).ProducerEpoch
	committed := txnV2Consume(t, addr, txnV2Topic, 2, kgo.ReadCommitted())
	if got := committed[0]; len(got) != 3 || got[0] != "w0" || got[1] != "c1" || got[2] != "c3" {
		t.Errorf("read_committed partition 0: %v, want [w0 c1 c3]", got)
	}
	if got := committed[1]; len(got) != 3 || got[0] != "w1" || got[1] != "c2" || got[2] != "c4" {
		t.Errorf("read_committed partition 1: %v, want [w1 c2 c4]", got)
	}
	return before, after
}

// TestTxnV2Franz: franz-go's transactional producer (which speaks
// transactions v2 when the broker finalizes transaction.version 2) commits,
// aborts and commits; every EndTxn bumps the epoch, and read_committed sees
// exactly the committed records. With transaction.version=1 the same
// client stays on v1: the epoch does not move.
func TestTxnV2Franz(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		t.Run("v2", func(t *testing.T) {
			b := startBroker(t, backend, nil)
			before, after := txnV2FranzRun(t, b.Addr, "v2-franz")
			if after != before+2 {
				t.Errorf("producer epoch %d after two more transactions, want %d (v2 bumps it on every EndTxn)", after, before+2)
			}
		})
		t.Run("v1", func(t *testing.T) {
			b := startBroker(t, backend, map[string]string{"transaction.version": "1"})
			if level := txnV2Level(t, newClient(t, b.Addr)); level != 1 {
				t.Fatalf("finalized transaction.version %d, want 1", level)
			}
			before, after := txnV2FranzRun(t, b.Addr, "v1-franz")
			if after != before {
				t.Errorf("producer epoch %d -> %d at transaction.version 1, want no bump (v1)", before, after)
			}
		})
	})
}
