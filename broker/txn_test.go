package broker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/txn"
)

// startTxnBroker serves a broker with transactions on. clk, if not nil, is
// its clock.
func startTxnBroker(t *testing.T, backend string, clk *clock.Manual) *testBroker {
	return startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) {
		o.Txn = TxnOptions{StateLogNumPartitions: 5, MaxTimeout: time.Minute, CleanupInterval: time.Second}
		o.OffsetsTopicNumPartitions = 5
		if clk != nil {
			o.Clock = clk
			// Longer than the hour the harness advances a manual clock by
			// at stop, so no cleanup runs then.
			o.Txn.CleanupInterval = txnTestCleanupInterval
		}
	})
}

// txnTestCleanupInterval is the cleanup interval of brokers on a manual
// clock.
const txnTestCleanupInterval = 2 * time.Hour

// txnClient is a raw-request client of transactions v1: EndTxn capped at
// v4, Produce at v11 and TxnOffsetCommit at v4 (what a client uses while
// transaction.version is below 2, or when it does not know v2), every
// other API at kmsg's maximum.
func txnClient(tb *testBroker, maxVersion map[kmsg.Key]int16) *kgo.Client {
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.EndTxn.Int16(), 4)
	v.SetMaxKeyVersion(kmsg.Produce.Int16(), 11)
	v.SetMaxKeyVersion(kmsg.TxnOffsetCommit.Int16(), 4)
	for k, max := range maxVersion {
		v.SetMaxKeyVersion(k.Int16(), max)
	}
	return tb.client(kgo.MaxVersions(v))
}

// request sends r and returns the response, failing the test on a
// transport error.
func request[R kmsg.Response](t *testing.T, cl *kgo.Client, r kmsg.Request) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := cl.Request(ctx, r)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(r.Key()), err)
	}
	return resp.(R)
}

// retriable are the codes a client retries from the transaction
// coordinator.
func retriable(code int16) bool {
	switch code {
	case kerr.CoordinatorLoadInProgress.Code, kerr.CoordinatorNotAvailable.Code, kerr.ConcurrentTransactions.Code,
		kerr.NotCoordinator.Code:
		return true
	}
	return false
}

// initTxn runs InitProducerId for txnID until it is not retriable (bounded)
// and returns the response.
func initTxn(t *testing.T, cl *kgo.Client, txnID string, timeoutMs int32) *kmsg.InitProducerIDResponse {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := kmsg.NewPtrInitProducerIDRequest()
		r.TransactionalID, r.TransactionTimeoutMillis = &txnID, timeoutMs
		resp := request[*kmsg.InitProducerIDResponse](t, cl, r)
		if !retriable(resp.ErrorCode) || time.Now().After(deadline) {
			return resp
		}
		time.Sleep(10 * time.Millisecond) // a retry's backoff, as a client's
	}
}

func addPartitions(t *testing.T, cl *kgo.Client, txnID string, pid int64, epoch int16, topic string, partitions ...int32) map[int32]int16 {
	t.Helper()
	r := kmsg.NewPtrAddPartitionsToTxnRequest()
	r.TransactionalID, r.ProducerID, r.ProducerEpoch = txnID, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = topic, partitions
	r.Topics = append(r.Topics, rt)
	resp := request[*kmsg.AddPartitionsToTxnResponse](t, cl, r)
	out := map[int32]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p.ErrorCode
		}
	}
	return out
}

func endTxn(t *testing.T, cl *kgo.Client, txnID string, pid int64, epoch int16, commit bool) int16 {
	t.Helper()
	r := kmsg.NewPtrEndTxnRequest()
	r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = txnID, pid, epoch, commit
	return request[*kmsg.EndTxnResponse](t, cl, r).ErrorCode
}

func describeTxn(t *testing.T, cl *kgo.Client, txnID string) kmsg.DescribeTransactionsResponseTransactionState {
	t.Helper()
	r := kmsg.NewPtrDescribeTransactionsRequest()
	r.TransactionalIDs = []string{txnID}
	resp := request[*kmsg.DescribeTransactionsResponse](t, cl, r)
	if len(resp.TransactionStates) != 1 {
		t.Fatalf("DescribeTransactions: %d states", len(resp.TransactionStates))
	}
	return resp.TransactionStates[0]
}

// waitTxnState waits (bounded) until txnID is in one of states.
func waitTxnState(t *testing.T, cl *kgo.Client, txnID string, states ...string) kmsg.DescribeTransactionsResponseTransactionState {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := describeTxn(t, cl, txnID)
		for _, want := range states {
			if s.ErrorCode == 0 && s.State == want {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %q (%v), want one of %v", txnID, s.State, kerr.ErrorForCode(s.ErrorCode), states)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).Error()
}

func wantTxnCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %s, want %s", what, codeName(got), codeName(want))
	}
}

// TestTxnCoordinatorRequests drives the transaction coordinator's APIs
// over real sockets: FindCoordinator, InitProducerId (bumps, bad timeout),
// Kafka's error codes for bad requests (unknown id, fenced epoch, unknown
// topic with OPERATION_NOT_ATTEMPTED for the rest, TxnOffsetCommit outside
// the transaction, produce to __transaction_state), the verify-only form,
// pending transactional offsets, DescribeTransactions, ListTransactions,
// and state kept across a restart. With the data path the commit completes
// and the group's offset appears.
func TestTxnCoordinatorRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTxnBroker(t, backend, nil)
		cl := txnClient(tb, nil)
		old := txnClient(tb, map[kmsg.Key]int16{kmsg.EndTxn: 1, kmsg.AddPartitionsToTxn: 1, kmsg.InitProducerID: 2})
		ctx := context.Background()
		if _, err := tb.admin().CreateTopic(ctx, 2, 1, nil, "txn-in"); err != nil {
			t.Fatal(err)
		}

		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorType, fc.CoordinatorKey, fc.CoordinatorKeys = 1, "t-a", []string{"t-a"}
		fcr := request[*kmsg.FindCoordinatorResponse](t, cl, fc)
		if len(fcr.Coordinators) != 1 || fcr.Coordinators[0].ErrorCode != 0 || fcr.Coordinators[0].NodeID != 0 {
			t.Fatalf("FindCoordinator type 1: %+v", fcr.Coordinators)
		}

		first := initTxn(t, cl, "t-a", 30000)
		wantTxnCode(t, "InitProducerId", first.ErrorCode, 0)
		init := initTxn(t, cl, "t-a", 30000)
		if init.ErrorCode != 0 || init.ProducerID != first.ProducerID || init.ProducerEpoch != first.ProducerEpoch+1 {
			t.Fatalf("second InitProducerId: %s pid %d epoch %d, want pid %d epoch %d", codeName(init.ErrorCode),
				init.ProducerID, init.ProducerEpoch, first.ProducerID, first.ProducerEpoch+1)
		}
		pid, epoch := init.ProducerID, init.ProducerEpoch
		wantTxnCode(t, "InitProducerId timeout above transaction.max.timeout.ms", initTxn(t, cl, "t-big", 120000).ErrorCode,
			kerr.InvalidTransactionTimeout.Code)

		wantTxnCode(t, "EndTxn unknown id", endTxn(t, cl, "t-unknown", 1, 0, true), kerr.InvalidProducerIDMapping.Code)
		wantTxnCode(t, "EndTxn fenced epoch", endTxn(t, cl, "t-a", pid, epoch-1, false), kerr.ProducerFenced.Code)
		wantTxnCode(t, "EndTxn v1 fenced epoch", endTxn(t, old, "t-a", pid, epoch-1, false), kerr.InvalidProducerEpoch.Code)
		wantTxnCode(t, "EndTxn wrong producer id", endTxn(t, cl, "t-a", pid+1, epoch, false), kerr.InvalidProducerIDMapping.Code)
		wantTxnCode(t, "EndTxn commit without a transaction", endTxn(t, cl, "t-a", pid, epoch, true), kerr.InvalidTxnState.Code)

		got := addPartitions(t, cl, "t-a", pid, epoch, "txn-in", 0, 7)
		wantTxnCode(t, "AddPartitionsToTxn existing partition beside a missing one", got[0], kerr.OperationNotAttempted.Code)
		wantTxnCode(t, "AddPartitionsToTxn missing partition", got[7], kerr.UnknownTopicOrPartition.Code)
		got = addPartitions(t, cl, "t-a", pid, epoch, "no-such-topic", 0)
		wantTxnCode(t, "AddPartitionsToTxn unknown topic", got[0], kerr.UnknownTopicOrPartition.Code)
		wantTxnCode(t, "AddPartitionsToTxn fenced", addPartitions(t, cl, "t-a", pid, epoch-1, "txn-in", 0)[0], kerr.ProducerFenced.Code)
		wantTxnCode(t, "AddPartitionsToTxn v1 fenced", addPartitions(t, old, "t-a", pid, epoch-1, "txn-in", 0)[0], kerr.InvalidProducerEpoch.Code)
		wantTxnCode(t, "AddPartitionsToTxn", addPartitions(t, cl, "t-a", pid, epoch, "txn-in", 0)[0], 0)

		// The verify-only form (KIP-890), as a partition leader sends it.
		vr := kmsg.NewPtrAddPartitionsToTxnRequest()
		vt := kmsg.NewAddPartitionsToTxnRequestTransaction()
		vt.TransactionalID, vt.ProducerID, vt.ProducerEpoch, vt.VerifyOnly = "t-a", pid, epoch, true
		vtt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		vtt.Topic, vtt.Partitions = "txn-in", []int32{0, 1}
		vt.Topics = append(vt.Topics, vtt)
		vr.Transactions = append(vr.Transactions, vt)
		vresp := request[*kmsg.AddPartitionsToTxnResponse](t, cl, vr)
		if len(vresp.Transactions) != 1 || len(vresp.Transactions[0].Topics) != 1 || len(vresp.Transactions[0].Topics[0].Partitions) != 2 {
			t.Fatalf("verify-only answer: %+v", vresp)
		}
		for _, p := range vresp.Transactions[0].Topics[0].Partitions {
			want := int16(0)
			if p.Partition == 1 {
				want = kerr.TransactionAbortable.Code
			}
			wantTxnCode(t, "verify-only txn-in-"+strconv.Itoa(int(p.Partition)), p.ErrorCode, want)
		}
		if code, _ := tb.Broker.verifyTxnPartition("t-a", pid, epoch, "txn-in", 0); code != 0 {
			t.Errorf("txnVerify hook: %s", codeName(code))
		}

		// TxnOffsetCommit: refused before AddOffsetsToTxn, pending after.
		txnCommit := func() int16 {
			r := kmsg.NewPtrTxnOffsetCommitRequest()
			r.TransactionalID, r.Group, r.ProducerID, r.ProducerEpoch, r.Generation = "t-a", "g", pid, epoch, -1
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = "txn-in"
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = 0, 42
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			resp := request[*kmsg.TxnOffsetCommitResponse](t, cl, r)
			return resp.Topics[0].Partitions[0].ErrorCode
		}
		wantTxnCode(t, "TxnOffsetCommit before AddOffsetsToTxn", txnCommit(), kerr.InvalidTxnState.Code)
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "t-a", pid, epoch, "g"
		wantTxnCode(t, "AddOffsetsToTxn", request[*kmsg.AddOffsetsToTxnResponse](t, cl, ao).ErrorCode, 0)
		wantTxnCode(t, "TxnOffsetCommit", txnCommit(), 0)
		fetchOffset := func() int64 {
			offs, err := tb.admin().FetchOffsets(ctx, "g")
			if err != nil {
				t.Fatal(err)
			}
			if o, ok := offs.Lookup("txn-in", 0); ok && o.Err == nil {
				return o.At
			}
			return -1
		}
		if at := fetchOffset(); at != -1 {
			t.Errorf("transactional offset visible before the commit: %d", at)
		}
		stableFetch := func() int16 {
			r := kmsg.NewPtrOffsetFetchRequest()
			r.Group, r.RequireStable = "g", true
			rt := kmsg.NewOffsetFetchRequestTopic()
			rt.Topic, rt.Partitions = "txn-in", []int32{0}
			r.Topics = append(r.Topics, rt)
			cl7 := txnClient(tb, map[kmsg.Key]int16{kmsg.OffsetFetch: 7})
			resp := request[*kmsg.OffsetFetchResponse](t, cl7, r)
			return resp.Topics[0].Partitions[0].ErrorCode
		}
		wantTxnCode(t, "OffsetFetch require_stable with a pending transactional commit", stableFetch(), kerr.UnstableOffsetCommit.Code)

		s := describeTxn(t, cl, "t-a")
		offsetsPart := group.PartitionFor("g", 5)
		if s.State != "Ongoing" || s.ProducerID != pid || s.ProducerEpoch != epoch || s.TimeoutMillis != 30000 || len(s.Topics) != 2 ||
			s.Topics[0].Topic != offsetsTopic || s.Topics[0].Partitions[0] != offsetsPart || s.Topics[1].Topic != "txn-in" {
			t.Errorf("DescribeTransactions: %+v", s)
		}
		wantTxnCode(t, "DescribeTransactions unknown id", describeTxn(t, cl, "t-unknown").ErrorCode, kerr.TransactionalIDNotFound.Code)
		lt := kmsg.NewPtrListTransactionsRequest()
		lt.StateFilters = []string{"Ongoing", "Bogus"}
		ltr := request[*kmsg.ListTransactionsResponse](t, cl, lt)
		if len(ltr.TransactionStates) != 1 || ltr.TransactionStates[0].TransactionalID != "t-a" ||
			len(ltr.UnknownStateFilters) != 1 || ltr.UnknownStateFilters[0] != "Bogus" {
			t.Errorf("ListTransactions Ongoing: %+v", ltr)
		}
		lt = kmsg.NewPtrListTransactionsRequest()
		pattern := "^t-[a-z]$"
		lt.TransactionalIDPattern = &pattern
		if ltr := request[*kmsg.ListTransactionsResponse](t, cl, lt); len(ltr.TransactionStates) != 1 {
			t.Errorf("ListTransactions pattern: %+v", ltr.TransactionStates)
		}

		// The admin client's view (kafka-transactions.sh uses the same APIs).
		adm := tb.admin()
		described, err := adm.DescribeTransactions(ctx, "t-a")
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := described["t-a"]; !ok || d.State != "Ongoing" || d.ProducerID != pid || d.Coordinator != 0 {
			t.Errorf("kadm DescribeTransactions: %+v", described)
		}
		listed, err := adm.ListTransactions(ctx, []int64{pid}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := listed["t-a"]; len(listed) != 1 || !ok || l.State != "Ongoing" {
			t.Errorf("kadm ListTransactions: %+v", listed)
		}

		// Clients cannot write the coordinator's topic.
		pr := kmsg.NewPtrProduceRequest()
		pr.Acks, pr.TimeoutMillis = -1, 5000
		ptp := kmsg.NewProduceRequestTopic()
		ptp.Topic = transactionStateTopic
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = appendRecordBatch(nil, time.Now().UnixMilli(), [][2][]byte{{[]byte("k"), []byte("v")}})
		ptp.Partitions = append(ptp.Partitions, pp)
		pr.Topics = append(pr.Topics, ptp)
		presp := request[*kmsg.ProduceResponse](t, cl, pr)
		wantTxnCode(t, "produce to __transaction_state", presp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidTopicException.Code)

		// A transactional produce to a partition outside the transaction.
		tpr := kmsg.NewPtrProduceRequest()
		txnID := "t-a"
		tpr.TransactionID, tpr.Acks, tpr.TimeoutMillis = &txnID, -1, 5000
		tpt := kmsg.NewProduceRequestTopic()
		tpt.Topic = "txn-in"
		tpp := kmsg.NewProduceRequestTopicPartition()
		tpp.Partition = 1
		tpp.Records = appendTxnRecordBatch(time.Now().UnixMilli(), pid, epoch, [][2][]byte{{[]byte("k"), []byte("v")}})
		tpt.Partitions = append(tpt.Partitions, tpp)
		tpr.Topics = append(tpr.Topics, tpt)
		code := request[*kmsg.ProduceResponse](t, cl, tpr).Topics[0].Partitions[0].ErrorCode
		if code != kerr.TransactionAbortable.Code && code != kerr.InvalidTxnState.Code {
			t.Errorf("transactional produce outside the transaction: %s, want TRANSACTION_ABORTABLE or INVALID_TXN_STATE", codeName(code))
		}

		wantTxnCode(t, "EndTxn commit", endTxn(t, cl, "t-a", pid, epoch, true), 0)
		waitTxnState(t, cl, "t-a", "CompleteCommit")
		if at := fetchOffset(); at != 42 {
			t.Errorf("committed transactional offset: %d, want 42", at)
		}
		wantTxnCode(t, "OffsetFetch require_stable after the commit", stableFetch(), 0)

		tb.restart()
		cl = txnClient(tb, nil)
		s = describeTxn(t, cl, "t-a")
		if s.ErrorCode != 0 || s.ProducerID != pid || s.ProducerEpoch != epoch || (s.State != "CompleteCommit" && s.State != "PrepareCommit") {
			t.Fatalf("after restart: %+v", s)
		}
		waitTxnState(t, cl, "t-a", "CompleteCommit")
		if at := fetchOffset(); at != 42 {
			t.Errorf("committed transactional offset after restart: %d, want 42", at)
		}
		if r := initTxn(t, cl, "t-a", 30000); r.ErrorCode != 0 || r.ProducerID != pid || r.ProducerEpoch != epoch+1 {
			t.Errorf("InitProducerId after restart: %s pid %d epoch %d", codeName(r.ErrorCode), r.ProducerID, r.ProducerEpoch)
		}
	})
}

// TestTxnTimeoutAfterRestart: an Ongoing transaction survives a restart and
// is then aborted by the coordinator once past its timeout (epoch bumped,
// so its producer is fenced); a committed id keeps its state.
func TestTxnTimeoutAfterRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		clk := clock.NewManual(time.Unix(1_700_000_000, 0))
		tb := startTxnBroker(t, backend, clk)
		cl := txnClient(tb, nil)
		if _, err := tb.admin().CreateTopic(context.Background(), 1, 1, nil, "txn-t"); err != nil {
			t.Fatal(err)
		}
		init := initTxn(t, cl, "t-slow", 5000)
		wantTxnCode(t, "InitProducerId", init.ErrorCode, 0)
		pid, epoch := init.ProducerID, init.ProducerEpoch
		wantTxnCode(t, "AddPartitionsToTxn", addPartitions(t, cl, "t-slow", pid, epoch, "txn-t", 0)[0], 0)
		// A second id with a transaction completed before the restart.
		other := initTxn(t, cl, "t-done", 5000)
		wantTxnCode(t, "InitProducerId t-done", other.ErrorCode, 0)

		tb.restart()
		cl = txnClient(tb, nil)
		s := describeTxn(t, cl, "t-slow")
		if s.State != "Ongoing" || s.ProducerEpoch != epoch {
			t.Fatalf("after restart: %+v", s)
		}
		// Past the timeout, the next cleanup tick aborts it. At
		// transaction.version 2 (the default) the coordinator's abort
		// fences the epoch and bumps it again as a v2 abort does (Kafka
		// takes the server's level for an abort it starts itself).
		clk.Advance(txnTestCleanupInterval)
		s = waitTxnState(t, cl, "t-slow", "CompleteAbort")
		if s.ProducerID != pid || s.ProducerEpoch != epoch+2 {
			t.Errorf("aborted by timeout: pid %d epoch %d, want %d %d", s.ProducerID, s.ProducerEpoch, pid, epoch+2)
		}
		wantTxnCode(t, "EndTxn of the timed-out producer", endTxn(t, cl, "t-slow", pid, epoch, true), kerr.ProducerFenced.Code)
		if s := describeTxn(t, cl, "t-done"); s.State != "Empty" || s.ProducerID != other.ProducerID {
			t.Errorf("t-done after restart: %+v", s)
		}
	})
}

// TestTxnFranzCommitAbort: a franz-go transactional producer commits one
// transaction and aborts another; a read_committed consumer sees exactly
// the committed records, in order.
func TestTxnFranzCommitAbort(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTxnBroker(t, backend, nil)
		ctx := context.Background()
		if _, err := tb.admin().CreateTopic(ctx, 2, 1, nil, "txn-out"); err != nil {
			t.Fatal(err)
		}
		p := tb.client(kgo.TransactionalID("franz-ca"), kgo.DefaultProduceTopic("txn-out"))
		produce := func(commit bool, values ...string) {
			t.Helper()
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				if err := p.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatal(err)
			}
		}
		produce(true, "c1", "c2")
		produce(false, "a1", "a2")
		produce(true, "c3")
		got := consumeCommitted(t, tb, "txn-out", 3)
		if !sameSet(got, "c1", "c2", "c3") {
			t.Fatalf("read_committed saw %v, want c1 c2 c3", got)
		}
	})
}

func sameSet(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	m := map[string]int{}
	for _, g := range got {
		m[g]++
	}
	for _, w := range want {
		if m[w]--; m[w] < 0 {
			return false
		}
	}
	return true
}

// consumeCommitted reads topic read_committed from the start until n
// records arrived (bounded), then polls once more to see there are no
// others, and returns their values.
func consumeCommitted(t *testing.T, tb *testBroker, topic string, n int) []string {
	t.Helper()
	c := tb.client(kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(got) < n {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed: %d of %d records: %v", len(got), n, got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	short, cancelShort := context.WithTimeout(context.Background(), time.Second)
	defer cancelShort()
	c.PollFetches(short).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	return got
}

// TestTxnGroupTransactSession: franz-go's consume-transform-produce; every
// input record is in the output exactly once and the group's committed
// offsets match the input's end.
func TestTxnGroupTransactSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTxnBroker(t, backend, nil)
		ctx := context.Background()
		adm := tb.admin()
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, "ctp-in"); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, "ctp-out"); err != nil {
			t.Fatal(err)
		}
		const n = 200
		in := tb.client(kgo.DefaultProduceTopic("ctp-in"))
		for i := range n {
			if err := in.ProduceSync(ctx, kgo.StringRecord("r"+strconv.Itoa(i))).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(tb.Addr), kgo.TransactionalID("ctp"),
			kgo.ConsumerGroup("ctp-group"), kgo.ConsumeTopics("ctp-in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("ctp-out"))
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		done := 0
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for done < n {
			fs := sess.PollFetches(pctx)
			if pctx.Err() != nil {
				t.Fatalf("consumed %d of %d", done, n)
			}
			if err := sess.Begin(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				sess.Produce(pctx, kgo.StringRecord("out-"+string(r.Value)), nil)
				done++
			})
			if committed, err := sess.End(pctx, kgo.TryCommit); err != nil || !committed {
				t.Fatalf("End: committed %v, %v", committed, err)
			}
		}
		got := consumeCommitted(t, tb, "ctp-out", n)
		seen := map[string]int{}
		for _, v := range got {
			seen[v]++
		}
		for i := range n {
			if c := seen["out-r"+strconv.Itoa(i)]; c != 1 {
				t.Errorf("out-r%d seen %d times", i, c)
			}
		}
		offs, err := adm.FetchOffsets(ctx, "ctp-group")
		if err != nil {
			t.Fatal(err)
		}
		ends, err := adm.ListEndOffsets(ctx, "ctp-in")
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(e kadm.ListedOffset) {
			o, ok := offs.Lookup(e.Topic, e.Partition)
			if e.Offset == 0 && !ok {
				return // an empty partition: nothing consumed, nothing committed
			}
			if !ok || o.At != e.Offset {
				t.Errorf("ctp-in-%d: committed %v (found %v), end %d", e.Partition, o.At, ok, e.Offset)
			}
		})
	})
}

// TestTxnZombieFencing: a second producer with the same transactional id
// fences the first; the first gets PRODUCER_FENCED (or
// INVALID_PRODUCER_EPOCH) and nothing it writes after is visible to
// read_committed.
func TestTxnZombieFencing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTxnBroker(t, backend, nil)
		ctx := context.Background()
		if _, err := tb.admin().CreateTopic(ctx, 1, 1, nil, "zombie"); err != nil {
			t.Fatal(err)
		}
		opts := []kgo.Opt{kgo.TransactionalID("zombie"), kgo.DefaultProduceTopic("zombie"), kgo.RecordRetries(2)}
		old := tb.client(opts...)
		if err := old.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := old.ProduceSync(ctx, kgo.StringRecord("old-1")).FirstErr(); err != nil {
			t.Fatal(err)
		}
		fresh := tb.client(opts...)
		if err := fresh.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := fresh.ProduceSync(ctx, kgo.StringRecord("new-1")).FirstErr(); err != nil {
			t.Fatal(err)
		}
		zerr := old.ProduceSync(ctx, kgo.StringRecord("old-2")).FirstErr()
		if zerr == nil {
			zerr = old.EndTransaction(ctx, kgo.TryCommit)
		}
		if !errors.Is(zerr, kerr.ProducerFenced) && !errors.Is(zerr, kerr.InvalidProducerEpoch) {
			t.Errorf("zombie: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", zerr)
		}
		if err := fresh.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		if got := consumeCommitted(t, tb, "zombie", 1); len(got) != 1 || got[0] != "new-1" {
			t.Errorf("read_committed saw %v, want only new-1", got)
		}
	})
}

// scriptedMarkers stands in for the data path's WriteTxnMarkers in
// TestTxnMarkerRetry only: it answers each marker with the next code
// scripted for its partition (NONE once the script is used up), from
// another goroutine as the data path does, and records what was asked.
type scriptedMarkers struct {
	mu     sync.Mutex
	script map[txn.TopicPartition][]int16
	asked  [][]txn.TopicPartition
}

func (s *scriptedMarkers) WriteTxnMarkers(req *kmsg.WriteTxnMarkersRequest, done func(*kmsg.WriteTxnMarkersResponse)) {
	resp := kmsg.NewPtrWriteTxnMarkersResponse()
	var asked []txn.TopicPartition
	s.mu.Lock()
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				tp := txn.TopicPartition{Topic: t.Topic, Partition: p}
				asked = append(asked, tp)
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = p
				if codes := s.script[tp]; len(codes) > 0 {
					rp.ErrorCode, s.script[tp] = codes[0], codes[1:]
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	s.asked = append(s.asked, asked)
	s.mu.Unlock()
	go done(resp)
}

// TestTxnMarkerRetry is a unit test of the coordinator glue's marker policy
// (the end-to-end tests above use the real data path): a partition whose
// marker failed is sent again alone until written, a partition deleted
// meanwhile (UNKNOWN_TOPIC_OR_PARTITION) is dropped, the marker on the
// group's __consumer_offsets partition commits the transactional offset,
// and only then is CompleteCommit written.
func TestTxnMarkerRetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		markers := &scriptedMarkers{script: map[txn.TopicPartition][]int16{
			{Topic: "txn-m", Partition: 0}: {kerr.NotLeaderForPartition.Code, kerr.RequestTimedOut.Code},
			{Topic: "txn-m", Partition: 1}: {kerr.UnknownTopicOrPartition.Code},
		}}
		tb := &testBroker{t: t, dir: t.TempDir(), backend: backend, mod: func(o *Options, _ *RegistryOptions) {
			o.Txn = TxnOptions{StateLogNumPartitions: 5}
			o.OffsetsTopicNumPartitions = 5
		}, onNew: func(b *Broker) { b.txns.markers = markers }}
		tb.start()
		t.Cleanup(tb.stop)
		cl := txnClient(tb, nil)
		ctx := context.Background()
		if _, err := tb.admin().CreateTopic(ctx, 2, 1, nil, "txn-m"); err != nil {
			t.Fatal(err)
		}
		init := initTxn(t, cl, "t-m", 30000)
		pid, epoch := init.ProducerID, init.ProducerEpoch
		wantTxnCode(t, "AddPartitionsToTxn", addPartitions(t, cl, "t-m", pid, epoch, "txn-m", 0, 1)[0], 0)
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "t-m", pid, epoch, "gm"
		wantTxnCode(t, "AddOffsetsToTxn", request[*kmsg.AddOffsetsToTxnResponse](t, cl, ao).ErrorCode, 0)
		oc := kmsg.NewPtrTxnOffsetCommitRequest()
		oc.TransactionalID, oc.Group, oc.ProducerID, oc.ProducerEpoch, oc.Generation = "t-m", "gm", pid, epoch, -1
		ot := kmsg.NewTxnOffsetCommitRequestTopic()
		ot.Topic = "txn-m"
		op := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		op.Partition, op.Offset = 1, 7
		ot.Partitions = append(ot.Partitions, op)
		oc.Topics = append(oc.Topics, ot)
		wantTxnCode(t, "TxnOffsetCommit", request[*kmsg.TxnOffsetCommitResponse](t, cl, oc).Topics[0].Partitions[0].ErrorCode, 0)
		wantTxnCode(t, "EndTxn", endTxn(t, cl, "t-m", pid, epoch, true), 0)
		waitTxnState(t, cl, "t-m", "CompleteCommit")

		markers.mu.Lock()
		asked := markers.asked
		markers.mu.Unlock()
		offsets := txn.TopicPartition{Topic: offsetsTopic, Partition: group.PartitionFor("gm", 5)}
		m0 := txn.TopicPartition{Topic: "txn-m", Partition: 0}
		m1 := txn.TopicPartition{Topic: "txn-m", Partition: 1}
		if len(asked) != 3 || !sameTPs(asked[0], offsets, m0, m1) || !sameTPs(asked[1], m0) || !sameTPs(asked[2], m0) {
			t.Errorf("marker requests %v, want all three, then txn-m-0 twice", asked)
		}
		offs, err := tb.admin().FetchOffsets(ctx, "gm")
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offs.Lookup("txn-m", 1); !ok || o.At != 7 {
			t.Errorf("transactional offset after the commit marker: %+v %v, want 7", o, ok)
		}
	})
}

func sameTPs(got []txn.TopicPartition, want ...txn.TopicPartition) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}
