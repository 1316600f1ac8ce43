package storage

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/codec"
	"github.com/ringbroker/ringbroker/proto"
)

// txnTestBatch is a transactional batch of one keyed record.
func txnTestBatch(pid int64, seq int32, key, value string, ts int64) []byte {
	b := cleanTestBatch([]wrec{{key: []byte(key), value: []byte(value), ts: ts}}, ts, codec.None, pid, seq)
	rb, _, err := proto.ParseRecordBatch(b)
	if err != nil {
		panic(err)
	}
	rb.SetAttributes(rb.Attributes() | proto.AttrTransactional)
	rb.StampCRC()
	return b
}

// markerTestBatch is a transaction marker as the broker writes it.
func markerTestBatch(pid int64, commit bool, ts int64) []byte {
	key := make([]byte, 4)
	if commit {
		binary.BigEndian.PutUint16(key[2:], 1)
	}
	recs := proto.AppendRecord(nil, &kmsg.Record{Key: key, Value: make([]byte, 6)})
	return proto.AppendRecordBatch(nil, &kmsg.RecordBatch{PartitionLeaderEpoch: -1, Attributes: proto.AttrControl | proto.AttrTransactional,
		FirstTimestamp: ts, MaxTimestamp: ts, ProducerID: pid, FirstSequence: -1, NumRecords: 1, Records: recs})
}

// cleanedView lists a log's batches as "offset:key=value" for data and
// "offset:ABORT/COMMIT(pid)" for markers, "offset:empty(pid)" for empty
// batches.
func cleanedView(t *testing.T, l *Log) []string {
	var out []string
	for _, b := range readAll(t, l, l.LogStartOffset()) {
		rb, _, err := proto.ParseRecordBatch(b.raw)
		if err != nil {
			t.Fatal(err)
		}
		if rb.Control() {
			abort, _ := markerIsAbort(rb)
			kind := "COMMIT"
			if abort {
				kind = "ABORT"
			}
			out = append(out, fmt.Sprintf("%d:%s(%d)", rb.BaseOffset(), kind, rb.ProducerID()))
			continue
		}
		if rb.RecordCount() == 0 {
			out = append(out, fmt.Sprintf("%d:empty(%d)", rb.BaseOffset(), rb.ProducerID()))
			continue
		}
		it := proto.NewRecordIter(rb.Records(), rb.RecordCount())
		var rec proto.Record
		for it.Next(&rec) {
			out = append(out, fmt.Sprintf("%d:%s=%s", rb.BaseOffset()+int64(rec.OffsetDelta), rec.Key, rec.Value))
		}
	}
	return out
}

// TestCleanerTransactions: the cleaner removes aborted batches (and keeps
// their keys' older values), keeps markers while they cover something or
// are young, removes them after, carries the txnindex entries of the
// markers it keeps, and never cleans past the last stable offset.
func TestCleanerTransactions(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.Compact, cfg.NoDeleteRetention = true, true
	cfg.SegmentBytes = 100 // a segment per batch
	cfg.FlushMessages = 1  // the recovery point follows the high watermark
	cfg.DeleteRetentionMs = time.Hour.Milliseconds()
	l, err := Open(t.TempDir(), cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := func() int64 { return clk.Now().UnixMilli() }
	plain := func(k, v string) []byte {
		return cleanTestBatch([]wrec{{key: []byte(k), value: []byte(v), ts: now()}}, now(), codec.None, -1, 0)
	}
	for _, b := range [][]byte{
		plain("k1", "v1"),                       // 0
		txnTestBatch(5, 0, "k1", "x", now()),    // 1: aborted
		markerTestBatch(5, false, now()),        // 2
		txnTestBatch(6, 0, "k2", "c", now()),    // 3: committed
		markerTestBatch(6, true, now()),         // 4
		txnTestBatch(5, 1, "k3", "c", now()),    // 5: pid 5's next transaction, committed
		markerTestBatch(5, true, now()),         // 6
		txnTestBatch(7, 0, "k1", "open", now()), // 7: open transaction
		plain("k9", "tail"),                     // 8
		plain("k9", "tail2"),                    // 9 (active)
	} {
		syncAppend(t, l, b)
	}
	if err := l.AppendAbortedTxn(AbortedTxn{ProducerID: 5, FirstOffset: 1, LastOffset: 2, LastStableOffset: 3}); err != nil {
		t.Fatal(err)
	}
	l.SetStableOffset(func() int64 { return 7 }) // pid 7's transaction is open
	c := NewCleaner(CleanerConfig{Clock: clk}, nil)
	if _, err := c.CleanLog(l); err != nil {
		t.Fatal(err)
	}
	want := []string{"0:k1=v1", "2:ABORT(5)", "3:k2=c", "4:COMMIT(6)", "5:k3=c", "6:COMMIT(5)", "7:k1=open", "8:k9=tail", "9:k9=tail2"}
	if got := cleanedView(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first clean:\n got %v\nwant %v", got, want)
	}
	if got := l.AbortedTxns(0, 10); len(got) != 1 || got[0].LastOffset != 2 {
		t.Fatalf("txnindex after the first clean: %v", got)
	}

	// Later: the transaction commits, the markers are old; the next
	// round removes the markers covering nothing left (not a producer's
	// last batch: pid 5's is at 6, pid 6's at 4).
	clk.Advance(2 * time.Hour)
	for _, b := range [][]byte{markerTestBatch(7, true, now()), plain("k9", "tail3"), plain("k9", "tail4")} {
		syncAppend(t, l, b)
	}
	l.SetStableOffset(nil)
	if _, err := c.CleanLog(l); err != nil {
		t.Fatal(err)
	}
	// (k1=v1 goes too: the committed k1=open supersedes it.)
	want = []string{"3:k2=c", "4:COMMIT(6)", "5:k3=c", "6:COMMIT(5)", "7:k1=open", "10:COMMIT(7)", "11:k9=tail3", "12:k9=tail4"}
	if got := cleanedView(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("second clean:\n got %v\nwant %v", got, want)
	}
	if got := l.AbortedTxns(0, 14); len(got) != 0 {
		t.Fatalf("txnindex entry of a removed marker: %v", got)
	}
}

// TestCleanerCarriesTxnIndex: a group of several segments is cleaned into
// one; the entries of their .txnindex files end up in the new segment's,
// and the old files are gone. When the swap's txnindex rename fails after
// the commit point, the next (unclean) open finishes it.
func TestCleanerCarriesTxnIndex(t *testing.T) {
	for _, interrupt := range []bool{false, true} {
		t.Run(fmt.Sprintf("interrupted=%v", interrupt), func(t *testing.T) {
			clk := newFakeClock()
			dir := t.TempDir()
			fio := NewFaultIO(nil)
			fio.SetScratchDir(t.TempDir())
			cfg := testConfig()
			cfg.Compact, cfg.NoDeleteRetention = true, true
			cfg.SegmentBytes = 100 // a segment per batch while writing
			cfg.FlushMessages = 1
			cfg.DeleteRetentionMs = time.Hour.Milliseconds()
			l, err := Open(dir, cfg, Options{Clock: clk, IO: fio, FS: fio})
			if err != nil {
				t.Fatal(err)
			}
			now := clk.Now().UnixMilli()
			for _, b := range [][]byte{
				txnTestBatch(5, 0, "a", "x", now), // 0
				markerTestBatch(5, false, now),    // 1
				txnTestBatch(6, 0, "b", "y", now), // 2
				markerTestBatch(6, false, now),    // 3
				txnTestBatch(5, 1, "c", "z", now), // 4
				markerTestBatch(5, true, now),     // 5
				txnTestBatch(6, 1, "d", "w", now), // 6
				markerTestBatch(6, true, now),     // 7
				cleanTestBatch([]wrec{{key: []byte("e"), value: []byte("v"), ts: now}}, now, codec.None, -1, 0), // 8 (active)
			} {
				syncAppend(t, l, b)
			}
			want := []AbortedTxn{{ProducerID: 5, FirstOffset: 0, LastOffset: 1, LastStableOffset: 2}, {ProducerID: 6, FirstOffset: 2, LastOffset: 3, LastStableOffset: 4}}
			for _, e := range want {
				if err := l.AppendAbortedTxn(e); err != nil {
					t.Fatal(err)
				}
			}
			big := cfg
			big.SegmentBytes = 1 << 20 // clean all into one group
			if err := l.SetConfig(big); err != nil {
				t.Fatal(err)
			}
			var in *Injection
			if interrupt {
				in = fio.Inject(Fault{Op: OpRename, Path: segmentName(dir, 0, ".txnindex") + cleanedSuffix})
			}
			c := NewCleaner(CleanerConfig{Clock: clk}, nil)
			if _, err := c.CleanLog(l); err != nil {
				t.Fatal(err)
			}
			if got := l.AbortedTxns(0, 9); !sameTxns(got, want) {
				t.Fatalf("after the clean: %v", got)
			}
			if interrupt {
				if in.Failed() == 0 {
					t.Fatal("the txnindex rename was not interrupted")
				}
				l.crashClose()
				fio.Clear()
				if l, err = Open(dir, cfg, Options{Clock: clk, IO: fio, FS: fio}); err != nil {
					t.Fatal(err)
				}
			}
			defer l.Close()
			if l.NumSegments() != 2 {
				t.Fatalf("%d segments, want the cleaned one and the active one", l.NumSegments())
			}
			if got := l.AbortedTxns(0, 9); !sameTxns(got, want) {
				t.Fatalf("after the swap: %v", got)
			}
			for _, base := range []int64{2, 3} {
				if _, err := os.Stat(segmentName(dir, base, ".txnindex")); !os.IsNotExist(err) {
					t.Fatalf("replaced segment %d's txnindex: %v", base, err)
				}
			}
		})
	}
}
