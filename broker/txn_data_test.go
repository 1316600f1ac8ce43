package broker

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

// txnBatch is prodBatch with the transactional attribute.
func txnBatch(pid int64, epoch int16, seq int32, values ...[]byte) []byte {
	b := prodBatch(pid, epoch, seq, time.Now().UnixMilli(), values...)
	binary.BigEndian.PutUint16(b[proto.BatchPosAttributes:], binary.BigEndian.Uint16(b[proto.BatchPosAttributes:])|proto.AttrTransactional)
	return recrc(b)
}

// marker is one WriteTxnMarkers marker for one partition of topic "txn".
type marker struct {
	pid        int64
	epoch      int16
	commit     bool
	coordEpoch int32
	partition  int32
}

func (rc *prodConn) writeMarkers(version int16, ms ...marker) []int16 {
	rc.t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = version
	for _, m := range ms {
		req.Markers = append(req.Markers, kmsg.WriteTxnMarkersRequestMarker{ProducerID: m.pid, ProducerEpoch: m.epoch,
			Committed: m.commit, CoordinatorEpoch: m.coordEpoch,
			Topics: []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "txn", Partitions: []int32{m.partition}}}})
	}
	resp := kmsg.NewPtrWriteTxnMarkersResponse()
	if err := rc.roundTrip(req, resp); err != nil {
		rc.t.Fatalf("WriteTxnMarkers: %v", err)
	}
	var codes []int16
	for i, m := range resp.Markers {
		if m.ProducerID != ms[i].pid || len(m.Topics) != 1 || len(m.Topics[0].Partitions) != 1 {
			rc.t.Fatalf("WriteTxnMarkers response shape: %+v", resp)
		}
		codes = append(codes, m.Topics[0].Partitions[0].ErrorCode)
	}
	return codes
}

// fetched is what one partition of a fetch returned.
type fetched struct {
	code          int16
	hw, lso       int64
	aborted       []kmsg.FetchResponseTopicPartitionAbortedTransaction
	abortedNull   bool
	values        []string // data records, in order
	controlBatchs int
	next          int64 // offset after the last batch
	batches       []fetchedBatch
}

type fetchedBatch struct {
	pid                  int64
	base, last           int64
	transactional, abort bool // abort: an ABORT marker
	control              bool
	values               []string
}

// committed filters values as a read_committed client does (Kafka's
// consumer: a transactional batch of a producer whose aborted transaction
// started at or before it, until that producer's ABORT marker, is
// skipped).
func (f fetched) committed() []string {
	pending := slices.Clone(f.aborted)
	sort.Slice(pending, func(i, j int) bool { return pending[i].FirstOffset < pending[j].FirstOffset })
	active := map[int64]bool{}
	var out []string
	for _, b := range f.batches {
		for len(pending) > 0 && pending[0].FirstOffset <= b.last {
			active[pending[0].ProducerID] = true
			pending = pending[1:]
		}
		switch {
		case b.control:
			if b.abort {
				delete(active, b.pid)
			}
		case b.transactional && active[b.pid]:
		default:
			out = append(out, b.values...)
		}
	}
	return out
}

func (rc *prodConn) fetchTxn(partition int32, offset int64, isolation int8, maxWaitMs int32) fetched {
	rc.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 12, -1, maxWaitMs, 1, 1<<20
	req.IsolationLevel = isolation
	req.SessionEpoch = -1
	req.Topics = []kmsg.FetchRequestTopic{{Topic: "txn", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: partition, FetchOffset: offset, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1}}}}
	resp := kmsg.NewPtrFetchResponse()
	if err := rc.roundTrip(req, resp); err != nil {
		rc.t.Fatalf("fetch: %v", err)
	}
	p := resp.Topics[0].Partitions[0]
	f := fetched{code: p.ErrorCode, hw: p.HighWatermark, lso: p.LastStableOffset, aborted: p.AbortedTransactions, abortedNull: p.AbortedTransactions == nil, next: offset}
	for b := p.RecordBatches; len(b) > 0; {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			rc.t.Fatalf("fetched batch: %v", err)
		}
		b = b[12+rb.Length:]
		f.next = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
		fb := fetchedBatch{pid: rb.ProducerID, base: rb.FirstOffset, last: f.next - 1,
			transactional: rb.Attributes&proto.AttrTransactional != 0, control: rb.Attributes&proto.AttrControl != 0}
		recs := rb.Records
		for i := int32(0); i < rb.NumRecords; i++ {
			var r kmsg.Record
			if err := r.ReadFrom(recs); err != nil {
				rc.t.Fatalf("fetched record: %v", err)
			}
			n := len(r.AppendTo(nil))
			recs = recs[n:]
			if fb.control {
				fb.abort = len(r.Key) == 4 && r.Key[3] == 0
			} else {
				fb.values = append(fb.values, string(r.Value))
			}
		}
		f.batches = append(f.batches, fb)
		if fb.control {
			f.controlBatchs++
			continue
		}
		f.values = append(f.values, fb.values...)
	}
	return f
}

// fetchAllTxn fetches from 0 until nothing more comes back.
func (rc *prodConn) fetchAllTxn(partition int32, isolation int8) fetched {
	rc.t.Helper()
	all := rc.fetchTxn(partition, 0, isolation, 0)
	for off := all.next; ; {
		more := rc.fetchTxn(partition, off, isolation, 0)
		if more.next == off {
			return all
		}
		all.values = append(all.values, more.values...)
		all.batches = append(all.batches, more.batches...)
		for _, a := range more.aborted {
			if !slices.ContainsFunc(all.aborted, func(h kmsg.FetchResponseTopicPartitionAbortedTransaction) bool {
				return h.ProducerID == a.ProducerID && h.FirstOffset == a.FirstOffset
			}) {
				all.aborted = append(all.aborted, a)
			}
		}
		all.controlBatchs += more.controlBatchs
		off = more.next
	}
}

func (rc *prodConn) listLatest(partition int32, isolation int8) int64 {
	rc.t.Helper()
	return rc.listOffsetAt(partition, isolation, -1)
}

func (rc *prodConn) listOffsetAt(partition int32, isolation int8, ts int64) int64 {
	rc.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID, req.IsolationLevel = 5, -1, isolation
	req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "txn", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: partition, Timestamp: ts, CurrentLeaderEpoch: -1}}}}
	resp := kmsg.NewPtrListOffsetsResponse()
	if err := rc.roundTrip(req, resp); err != nil {
		rc.t.Fatalf("ListOffsets: %v", err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		rc.t.Fatalf("ListOffsets: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if w := int16(0); want != nil {
		w = want.Code
		if got != w {
			t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
		}
	} else if got != 0 {
		t.Fatalf("%s: %v, want no error", what, kerr.ErrorForCode(got))
	}
}

// TestTransactionalDataPath: transactional produce to three partitions,
// markers committing and aborting, read_committed and read_uncommitted
// fetches, ListOffsets isolation, the transaction index bytes, a clean and
// an unclean restart, and a franz-go read_committed consumer.
//
//	partition 0: A's transaction c0-0..2, c0-3..4, COMMIT
//	partition 1: A's transaction x1-0..2, ABORT; A's c1-0..1, COMMIT
//	partition 2: B's idempotent p2-0; A's transaction c2-0..1 left open
func TestTransactionalDataPath(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startDataPathBroker(t, backend)
		prodCreate(t, tb, "txn", 3, nil)
		rc := dialProd(t, tb.Addr)
		a := rc.initProducerID(4, nil).ProducerID
		b := rc.initProducerID(4, nil).ProducerID

		produce := func(p int32, batch []byte, want *kerr.Error) {
			t.Helper()
			wantCode(t, "produce", rc.produceRaw(9, "txn", p, batch).ErrorCode, want)
		}
		produce(0, txnBatch(a, 0, 0, prodValues("c0", 3)...), nil)
		produce(0, txnBatch(a, 0, 3, prodValues("c0x", 2)...), nil)
		produce(1, txnBatch(a, 0, 0, prodValues("x1", 3)...), nil)
		produce(2, prodBatch(b, 0, 0, time.Now().UnixMilli(), prodValues("p2", 1)...), nil)
		produce(2, txnBatch(a, 0, 0, prodValues("c2", 2)...), nil)
		// A non-transactional batch while A's transaction is open.
		produce(2, prodBatch(a, 0, 2, time.Now().UnixMilli(), prodValues("bad", 1)...), kerr.InvalidTxnState)

		// Open transactions hold the LSO.
		if f := rc.fetchTxn(0, 0, 1, 0); f.lso != 0 || f.hw != 5 || len(f.values) != 0 || f.code != 0 {
			t.Fatalf("read_committed with the transaction open: %+v", f)
		}
		if f := rc.fetchTxn(0, 0, 0, 0); f.lso != 0 || len(f.values) != 5 || !f.abortedNull {
			t.Fatalf("read_uncommitted with the transaction open: %+v", f)
		}
		if got := rc.listLatest(2, 1); got != 1 {
			t.Fatalf("ListOffsets read_committed on partition 2: %d, want 1", got)
		}
		if got := rc.listLatest(2, 0); got != 3 {
			t.Fatalf("ListOffsets read_uncommitted on partition 2: %d, want 3", got)
		}
		// A timestamp lookup landing in the open transaction (offset 1):
		// none read_committed, found read_uncommitted.
		if got := rc.listOffsetAt(2, 1, 0); got != 0 {
			t.Fatalf("ListOffsets ts 0 read_committed on partition 2: %d, want 0", got)
		}
		if got := rc.listOffsetAt(0, 1, 0); got != -1 {
			t.Fatalf("ListOffsets ts 0 read_committed on partition 0 (all open): %d, want -1", got)
		}
		if got := rc.listOffsetAt(0, 0, 0); got != 0 {
			t.Fatalf("ListOffsets ts 0 read_uncommitted on partition 0: %d, want 0", got)
		}

		// A read_committed long poll at the LSO returns when the
		// transaction commits (not at its max wait).
		poll := dialProd(t, tb.Addr)
		polled := make(chan fetched, 1)
		go func() { polled <- poll.fetchTxn(0, 0, 1, 20000) }()

		codes := rc.writeMarkers(1,
			marker{pid: a, commit: true, coordEpoch: 3, partition: 0},
			marker{pid: a, commit: false, coordEpoch: 3, partition: 1})
		wantCode(t, "commit p0", codes[0], nil)
		wantCode(t, "abort p1", codes[1], nil)
		select {
		case f := <-polled:
			if len(f.values) != 5 || f.lso != 6 {
				t.Fatalf("long poll after commit: %+v", f)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("read_committed long poll not woken by the commit")
		}
		produce(1, txnBatch(a, 0, 3, prodValues("c1", 2)...), nil)
		wantCode(t, "commit p1", rc.writeMarkers(0, marker{pid: a, commit: true, coordEpoch: 3, partition: 1})[0], nil)

		// Marker errors.
		wantCode(t, "unknown partition", rc.writeMarkers(1, marker{pid: a, commit: true, coordEpoch: 3, partition: 7})[0], kerr.UnknownTopicOrPartition)
		wantCode(t, "fenced coordinator", rc.writeMarkers(1, marker{pid: a, commit: true, coordEpoch: 2, partition: 0})[0], kerr.TransactionCoordinatorFenced)
		wantCode(t, "epoch bump", rc.writeMarkers(1, marker{pid: a, epoch: 1, commit: false, coordEpoch: 3, partition: 0})[0], nil)
		wantCode(t, "old epoch", rc.writeMarkers(1, marker{pid: a, epoch: 0, commit: false, coordEpoch: 3, partition: 0})[0], kerr.InvalidProducerEpoch)
		produce(0, txnBatch(a, 0, 5, prodValues("old", 1)...), kerr.InvalidProducerEpoch)

		check := func(when string) {
			t.Helper()
			p0 := rc.fetchAllTxn(0, 1)
			if !slices.Equal(p0.values, append(prodStrings("c0", 3), prodStrings("c0x", 2)...)) || len(p0.aborted) != 0 || p0.controlBatchs != 2 {
				t.Fatalf("%s: partition 0 read_committed: %+v", when, p0)
			}
			p1 := rc.fetchAllTxn(1, 1)
			if !slices.Equal(p1.values, append(prodStrings("x1", 3), prodStrings("c1", 2)...)) || !slices.Equal(p1.committed(), prodStrings("c1", 2)) ||
				len(p1.aborted) != 1 || p1.aborted[0].ProducerID != a || p1.aborted[0].FirstOffset != 0 {
				t.Fatalf("%s: partition 1 read_committed: %+v", when, p1)
			}
			p1u := rc.fetchAllTxn(1, 0)
			if len(p1u.values) != 5 || !p1u.abortedNull {
				t.Fatalf("%s: partition 1 read_uncommitted: %+v", when, p1u)
			}
			p2 := rc.fetchAllTxn(2, 1)
			if !slices.Equal(p2.values, prodStrings("p2", 1)) || p2.lso != 1 || p2.hw != 3 {
				t.Fatalf("%s: partition 2 read_committed: %+v", when, p2)
			}
			if got := rc.listLatest(2, 1); got != 1 {
				t.Fatalf("%s: partition 2 LSO %d, want 1", when, got)
			}
			// Kafka's bytes: (version 0, pid, first 0, last 3 (the marker), LSO 4).
			want := storage.AppendTxnEntry(nil, storage.AbortedTxn{ProducerID: a, FirstOffset: 0, LastOffset: 3, LastStableOffset: 4})
			data, err := os.ReadFile(filepath.Join(tb.Reg.Partition("txn", 1).Log.Dir(), "00000000000000000000.txnindex"))
			if err != nil || !slices.Equal(data, want) {
				t.Fatalf("%s: txnindex %x (%v), want %x", when, data, err, want)
			}
		}
		check("before restart")

		tb.restart()
		rc = dialProd(t, tb.Addr)
		check("after a clean restart")

		// Unclean: no clean-shutdown marker, no producer state snapshots,
		// no transaction indexes (lost in the crash): rebuilt from the log.
		tb.stop()
		var lost []string
		for _, pat := range []string{storage.CleanShutdownFile, "*/*.snapshot", "*/*.txnindex"} {
			m, _ := filepath.Glob(filepath.Join(tb.dir, pat))
			lost = append(lost, m...)
		}
		for _, p := range lost {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.ContainsFunc(lost, func(p string) bool { return strings.HasSuffix(p, ".txnindex") }) {
			t.Fatalf("no txnindex to lose: %v", lost)
		}
		tb.start()
		rc = dialProd(t, tb.Addr)
		check("after an unclean restart")

		// Commit partition 2; a franz-go read_committed consumer sees
		// exactly the committed records.
		wantCode(t, "commit p2", rc.writeMarkers(1, marker{pid: a, epoch: 1, commit: true, coordEpoch: 3, partition: 2})[0], nil)
		if got := rc.listLatest(2, 1); got != 4 {
			t.Fatalf("partition 2 LSO after commit %d, want 4", got)
		}
		want := append(append(append(prodStrings("c0", 3), prodStrings("c0x", 2)...), prodStrings("c1", 2)...), append(prodStrings("p2", 1), prodStrings("c2", 2)...)...)
		sort.Strings(want)
		cl := tb.client(kgo.ConsumeTopics("txn"), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var got []string
		for len(got) < len(want) {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumer got %v, want %v", got, want)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("consumer: %v", err) })
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Fatalf("read_committed consumer got %v, want %v", got, want)
		}
	})
}

func prodStrings(prefix string, n int) []string {
	var out []string
	for _, v := range prodValues(prefix, n) {
		out = append(out, string(v))
	}
	return out
}

// startDataPathBroker serves a broker whose transactional produce is not
// verified against the coordinator (Broker.txnVerify nil): the data path's
// tests write transactional batches and markers at the kmsg level, with no
// transaction in the coordinator.
func startDataPathBroker(t *testing.T, backend string) *testBroker {
	t.Helper()
	tb := &testBroker{t: t, dir: t.TempDir(), backend: backend, onNew: noTxnVerify}
	tb.start()
	t.Cleanup(tb.stop)
	return tb
}

// noTxnVerify clears the coordinator's KIP-890 hook (startDataPathBroker).
func noTxnVerify(b *Broker) { b.txnVerify = nil }

// TestTxnVerifyAndDescribeProducers: the KIP-890 hook sees the request's
// transactional id and refuses with its code; DescribeProducers reports
// the producer state, before and after a marker.
func TestTxnVerifyAndDescribeProducers(t *testing.T) {
	type call struct {
		txnID     string
		pid       int64
		partition int32
	}
	calls := make(chan call, 16)
	tb := &testBroker{t: t, dir: t.TempDir(), backend: testBackends[0],
		onNew: func(b *Broker) {
			b.txnVerify = func(txnID string, pid int64, epoch int16, topic string, partition int32) (int16, bool) {
				calls <- call{txnID, pid, partition}
				if partition == 1 {
					return kerr.InvalidTxnState.Code, false
				}
				return 0, false
			}
		}}
	tb.start()
	t.Cleanup(tb.stop)
	prodCreate(t, tb, "txn", 2, nil)
	rc := dialProd(t, tb.Addr)
	a := rc.initProducerID(4, nil).ProducerID
	txnID := "app-1"
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 9, -1, 5000, &txnID
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "txn", Partitions: []kmsg.ProduceRequestTopicPartition{
		{Partition: 0, Records: txnBatch(a, 0, 0, prodValues("v", 2)...)},
		{Partition: 1, Records: txnBatch(a, 0, 0, prodValues("w", 1)...)},
	}}}
	resp := kmsg.NewPtrProduceResponse()
	if err := rc.roundTrip(req, resp); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "verified partition", resp.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "refused partition", resp.Topics[0].Partitions[1].ErrorCode, kerr.InvalidTxnState)
	for i := 0; i < 2; i++ {
		c := <-calls
		if c.txnID != txnID || c.pid != a {
			t.Fatalf("txnVerify called with %+v", c)
		}
	}

	describe := func() kmsg.DescribeProducersResponseTopicPartitionActiveProducer {
		t.Helper()
		req := kmsg.NewPtrDescribeProducersRequest()
		req.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "txn", Partitions: []int32{0}}}
		resp := kmsg.NewPtrDescribeProducersResponse()
		if err := rc.roundTrip(req, resp); err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || len(p.ActiveProducers) != 1 {
			t.Fatalf("DescribeProducers: %+v", p)
		}
		return p.ActiveProducers[0]
	}
	if p := describe(); p.ProducerID != a || p.ProducerEpoch != 0 || p.LastSequence != 1 || p.CurrentTxnStartOffset != 0 || p.CoordinatorEpoch != -1 || p.LastTimestamp <= 0 {
		t.Fatalf("open transaction: %+v", p)
	}
	wantCode(t, "commit", rc.writeMarkers(1, marker{pid: a, commit: true, coordEpoch: 7, partition: 0})[0], nil)
	if p := describe(); p.CurrentTxnStartOffset != -1 || p.CoordinatorEpoch != 7 {
		t.Fatalf("after the commit: %+v", p)
	}
}

// TestTxnFetchSession: a read_committed incremental fetch session (KIP-227)
// reports a partition again when its transaction commits (the LSO moved,
// the records below it became readable).
func TestTxnFetchSession(t *testing.T) {
	tb := startDataPathBroker(t, testBackends[1])
	prodCreate(t, tb, "txn", 1, nil)
	rc := dialProd(t, tb.Addr)
	a := rc.initProducerID(4, nil).ProducerID
	wantCode(t, "produce", rc.produceRaw(9, "txn", 0, txnBatch(a, 0, 0, prodValues("s", 2)...)).ErrorCode, nil)
	fetch := func(id, epoch int32) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.ReplicaID, req.MaxBytes, req.IsolationLevel = 12, -1, 1<<20, 1
		req.SessionID, req.SessionEpoch = id, epoch
		if epoch == 0 {
			req.Topics = []kmsg.FetchRequestTopic{{Topic: "txn", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1}}}}
		}
		resp := kmsg.NewPtrFetchResponse()
		if err := rc.roundTrip(req, resp); err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("fetch session: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		return resp
	}
	full := fetch(0, 0)
	if p := full.Topics[0].Partitions[0]; p.LastStableOffset != 0 || p.HighWatermark != 2 || len(p.RecordBatches) != 0 {
		t.Fatalf("full fetch with the transaction open: %+v", p)
	}
	if inc := fetch(full.SessionID, 1); len(inc.Topics) != 0 {
		t.Fatalf("incremental fetch with nothing changed: %+v", inc.Topics)
	}
	wantCode(t, "commit", rc.writeMarkers(1, marker{pid: a, commit: true, partition: 0})[0], nil)
	inc := fetch(full.SessionID, 2)
	if len(inc.Topics) != 1 || inc.Topics[0].Partitions[0].LastStableOffset != 3 || len(inc.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("incremental fetch after the commit: %+v", inc.Topics)
	}
}
