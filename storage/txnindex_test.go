package storage

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand"
	"os"
	"reflect"
	"testing"
)

func TestTxnIndexCodec(t *testing.T) {
	e := AbortedTxn{ProducerID: 7, FirstOffset: 3, LastOffset: 9, LastStableOffset: 10}
	b := AppendTxnEntry(nil, e)
	// Kafka's AbortedTxn: version int16 0, then four big-endian int64s.
	want := "0000" + "0000000000000007" + "0000000000000003" + "0000000000000009" + "000000000000000a"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("entry bytes\n got %s\nwant %s", got, want)
	}
	e2 := AbortedTxn{ProducerID: 8, FirstOffset: 4, LastOffset: 12, LastStableOffset: 12}
	two := AppendTxnEntry(b, e2)
	for _, tc := range []struct {
		name string
		data []byte
		want []AbortedTxn
		bad  bool
	}{
		{"empty", nil, nil, false},
		{"one", b, []AbortedTxn{e}, false},
		{"two", two, []AbortedTxn{e, e2}, false},
		{"partial", two[:50], []AbortedTxn{e}, true},
		{"version", append(append([]byte{}, b...), append([]byte{0, 1}, two[36:]...)...), []AbortedTxn{e}, true},
		{"unordered", AppendTxnEntry(AppendTxnEntry(nil, e2), e), []AbortedTxn{e2}, true},
		{"first after last", AppendTxnEntry(nil, AbortedTxn{ProducerID: 1, FirstOffset: 5, LastOffset: 4}), nil, true},
		{"marker at first", AppendTxnEntry(nil, AbortedTxn{ProducerID: 1, FirstOffset: 0, LastOffset: 0}), nil, true},
		{"lso past marker", AppendTxnEntry(b, AbortedTxn{ProducerID: 1, FirstOffset: 10, LastOffset: 11, LastStableOffset: 104}), []AbortedTxn{e}, true},
	} {
		got, err := DecodeTxnIndex(tc.data)
		if !reflect.DeepEqual(got, tc.want) || (err != nil) != tc.bad {
			t.Errorf("%s: got %v, %v; want %v, bad=%v", tc.name, got, err, tc.want, tc.bad)
		}
		if err != nil && !errors.Is(err, errTxnIndexCorrupt) {
			t.Errorf("%s: error %v is not errTxnIndexCorrupt", tc.name, err)
		}
	}
}

// FuzzDecodeTxnIndex: never panics; the decoded prefix re-encodes to the
// same bytes; a clean decode consumed everything.
func FuzzDecodeTxnIndex(f *testing.F) {
	f.Add([]byte{})
	f.Add(AppendTxnEntry(nil, AbortedTxn{ProducerID: 1, FirstOffset: 0, LastOffset: 3, LastStableOffset: 4}))
	f.Add(AppendTxnEntry(AppendTxnEntry(nil, AbortedTxn{1, 0, 3, 4}), AbortedTxn{2, 2, 5, 6})[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeTxnIndex(data)
		var re []byte
		for _, e := range got {
			re = AppendTxnEntry(re, e)
		}
		if !bytes.Equal(re, data[:len(re)]) {
			t.Fatalf("re-encoded prefix differs")
		}
		if err == nil && len(re) != len(data) {
			t.Fatalf("clean decode of %d bytes kept %d", len(data), len(re))
		}
		if err != nil && len(re) == len(data) {
			t.Fatalf("error %v with everything decoded", err)
		}
	})
}

// txnLog opens a log with small segments and n one-record batches.
func txnLog(t *testing.T, dir string, opts Options, n int) *Log {
	t.Helper()
	cfg := testConfig()
	cfg.SegmentBytes = 500
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		syncAppend(t, l, makeBatch(1, 100, int64(i), 1))
	}
	return l
}

func TestTxnIndexLog(t *testing.T) {
	dir := t.TempDir()
	l := txnLog(t, dir, Options{}, 20)
	if l.NumSegments() < 4 {
		t.Fatalf("want several segments, have %d", l.NumSegments())
	}
	// b is open from 0 to 9: the LSO at a's and d's markers is 0.
	a := AbortedTxn{ProducerID: 1, FirstOffset: 1, LastOffset: 2, LastStableOffset: 0}
	b := AbortedTxn{ProducerID: 2, FirstOffset: 0, LastOffset: 9, LastStableOffset: 10}
	c := AbortedTxn{ProducerID: 3, FirstOffset: 12, LastOffset: 14, LastStableOffset: 15}
	d := AbortedTxn{ProducerID: 1, FirstOffset: 5, LastOffset: 8, LastStableOffset: 0}
	for _, e := range []AbortedTxn{a, b, c, b, d} { // b twice: idempotent; d inserted before b
		if err := l.AppendAbortedTxn(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AppendAbortedTxn(AbortedTxn{ProducerID: 9, FirstOffset: 20, LastOffset: 25}); err != nil {
		t.Fatal(err) // past the log end: ignored
	}
	for _, tc := range []struct {
		from, upper int64
		want        []AbortedTxn
	}{
		{0, 20, []AbortedTxn{a, d, b, c}},
		{3, 20, []AbortedTxn{d, b, c}},
		{0, 1, []AbortedTxn{b}}, // b's LSO (10) ends the collection
		{9, 12, []AbortedTxn{b}},
		{10, 20, []AbortedTxn{c}},
		{15, 20, nil},
	} {
		got := l.AbortedTxns(tc.from, tc.upper)
		// The upper bound stops collection once an entry's LSO passes it,
		// so later entries may be missing but never ones that overlap.
		if !sameTxns(got, tc.want) {
			t.Errorf("AbortedTxns(%d, %d) = %v, want %v", tc.from, tc.upper, got, tc.want)
		}
	}
	// Kafka's bytes in the marker's segment's file.
	segOf := func(off int64) *segment {
		for i := len(l.segments) - 1; i >= 0; i-- {
			if l.segments[i].base <= off {
				return l.segments[i]
			}
		}
		return nil
	}
	sb := segOf(9)
	data, err := os.ReadFile(sb.txnIndexPath())
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, e := range []AbortedTxn{a, d, b} {
		if segOf(e.LastOffset) == sb {
			want = AppendTxnEntry(want, e)
		}
	}
	if !bytes.Equal(data, want) {
		t.Fatalf("%s:\n got %x\nwant %x", sb.txnIndexPath(), data, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Clean reopen: the same entries.
	l2, err := Open(dir, l.cfg, Options{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.AbortedTxns(0, 20); !sameTxns(got, []AbortedTxn{a, d, b, c}) {
		t.Fatalf("after reopen: %v", got)
	}
	// DeleteRecords past c's segment deletes the segments and their files.
	cPath := segOf(14).txnIndexPath()
	if _, err := l2.DeleteRecords(l2.HighWatermark()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cPath, sb.txnIndexPath()} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived its segment: %v", p, err)
		}
	}
	l2.Close()
}

func sameTxns(got, want []AbortedTxn) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return reflect.DeepEqual(got, want)
}

// TestTxnIndexRecover: an unclean open drops entries whose marker is past
// the recovered log end, keeps the valid prefix of a damaged file and
// never fails because of the txnindex.
func TestTxnIndexRecover(t *testing.T) {
	dir := t.TempDir()
	l := txnLog(t, dir, Options{}, 6)
	cfg := l.cfg
	keep := AbortedTxn{ProducerID: 1, FirstOffset: 1, LastOffset: 4, LastStableOffset: 5}
	if err := l.AppendAbortedTxn(keep); err != nil {
		t.Fatal(err)
	}
	act := l.active()
	path := act.txnIndexPath()
	l.crashClose()
	// Entries for markers the crash lost (past the end), and a torn tail.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(AppendTxnEntry(nil, AbortedTxn{ProducerID: 2, FirstOffset: 5, LastOffset: 7, LastStableOffset: 8}))
	f.Write([]byte{0, 0, 1})
	f.Close()
	l2, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.AbortedTxns(0, 100); !sameTxns(got, []AbortedTxn{keep}) {
		t.Fatalf("after unclean open: %v", got)
	}
	data, _ := os.ReadFile(path)
	if !bytes.Equal(data, AppendTxnEntry(nil, keep)) {
		t.Fatalf("file not cut back: %x", data)
	}
	l2.Close()
	// A missing file is an empty index.
	os.Remove(path)
	l3, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := l3.AbortedTxns(0, 100); len(got) != 0 {
		t.Fatalf("missing file: %v", got)
	}
	l3.Close()
}

func TestReadBelow(t *testing.T) {
	l := txnLog(t, t.TempDir(), Options{}, 8) // 2 batches a segment
	defer l.Close()
	for _, tc := range []struct {
		from, upper int64
		batches     int
	}{{0, 8, 8}, {0, 3, 3}, {1, 2, 1}, {2, 2, 0}, {3, 2, 0}, {0, 0, 0}, {3, 7, 4}} {
		n := 0
		for off := tc.from; ; {
			r, err := l.ReadBelow(off, 1<<20, tc.upper)
			if err != nil {
				t.Fatal(err)
			}
			if r.Len == 0 {
				break
			}
			for pos := r.Pos; pos < r.Pos+r.Len; {
				h := headerPool.Get().(*[batchHeaderSize]byte)
				bi, ok := r.seg.readHeader(pos, r.Pos+r.Len, h)
				headerPool.Put(h)
				if !ok || bi.baseOffset >= tc.upper {
					t.Fatalf("from %d upper %d: batch at %d: %v %d", tc.from, tc.upper, pos, ok, bi.baseOffset)
				}
				pos += int64(bi.length)
				off = bi.lastOffset() + 1
				n++
			}
			r.Release()
		}
		if n != tc.batches {
			t.Errorf("ReadBelow(%d, upper %d): %d batches, want %d", tc.from, tc.upper, n, tc.batches)
		}
	}
	if _, err := l.ReadBelow(9, 1<<20, 2); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
}

// TestTxnIndexPowerLoss: entries made durable by SyncTxnIndexes (what the
// broker does before a producer state snapshot, and a rolled segment's
// flush) survive a power loss during later txnindex writes; the log opens.
func TestTxnIndexPowerLoss(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		dir := t.TempDir()
		fio := NewFaultIO(nil)
		fio.SetScratchDir(t.TempDir())
		cfg := testConfig()
		cfg.FlushMessages = 1 // appends acknowledged once on disk
		l, err := Open(dir, cfg, Options{IO: fio, FS: fio})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			syncAppend(t, l, makeBatch(1, 50, int64(i), 1))
		}
		var synced []AbortedTxn
		for i := int64(0); i < 4; i++ {
			e := AbortedTxn{ProducerID: i, FirstOffset: i, LastOffset: i + 1, LastStableOffset: i + 2}
			if err := l.AppendAbortedTxn(e); err != nil {
				t.Fatal(err)
			}
			synced = append(synced, e)
		}
		if err := l.SyncTxnIndexes(); err != nil {
			t.Fatal(err)
		}
		// Not synced: may be lost, torn, or survive.
		for i := int64(5); i < 5+int64(rng.Intn(4)); i++ {
			if err := l.AppendAbortedTxn(AbortedTxn{ProducerID: i, FirstOffset: i, LastOffset: i + 1, LastStableOffset: i + 2}); err != nil {
				t.Fatal(err)
			}
		}
		l.crashClose()
		if err := fio.PowerLoss(rng); err != nil {
			t.Fatal(err)
		}
		l2, err := Open(dir, cfg, Options{IO: fio, FS: fio})
		if err != nil {
			t.Fatalf("seed %d: open after power loss: %v", seed, err)
		}
		got := l2.AbortedTxns(0, 100)
		if len(got) < len(synced) || !reflect.DeepEqual(got[:len(synced)], synced) {
			t.Fatalf("seed %d: synced entries lost: %v", seed, got)
		}
		if l2.HighWatermark() != 10 {
			t.Fatalf("seed %d: acknowledged batches lost: hw %d", seed, l2.HighWatermark())
		}
		l2.Close()
	}
}

// TestTruncateDropsTxnEntries: Log.TruncateTo removes the transaction
// index entries whose marker it cut, and keeps the ones below.
func TestTruncateDropsTxnEntries(t *testing.T) {
	l := txnLog(t, t.TempDir(), Options{}, 20)
	a := AbortedTxn{ProducerID: 1, FirstOffset: 1, LastOffset: 2, LastStableOffset: 3}
	c := AbortedTxn{ProducerID: 3, FirstOffset: 12, LastOffset: 14, LastStableOffset: 15}
	for _, e := range []AbortedTxn{a, c} {
		if err := l.AppendAbortedTxn(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.TruncateTo(14); err != nil { // inside the marker's segment
		t.Fatal(err)
	}
	// The log grows past the cut marker's offset again: its entry must
	// not come back with other records at those offsets.
	for i := 0; i < 10; i++ {
		syncAppend(t, l, makeBatch(1, 100, int64(100+i), 1))
	}
	if got := l.AbortedTxns(0, 20); !sameTxns(got, []AbortedTxn{a}) {
		t.Fatalf("after TruncateTo(14) and 10 appends: AbortedTxns = %v, want %v", got, []AbortedTxn{a})
	}
}
