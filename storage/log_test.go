package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/proto"
)

func TestAppendReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.SetLeaderEpoch(7)
	var want [][]byte
	for i := 0; i < 50; i++ {
		b := makeBatch(1+i%5, 100, int64(1000+i*10), byte(i))
		r := syncAppend(t, l, b)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		want = append(want, b)
	}
	got := readAll(t, l, 0)
	if len(got) != len(want) {
		t.Fatalf("got %d batches, want %d", len(got), len(want))
	}
	var next int64
	for i, g := range got {
		if g.info.baseOffset != next {
			t.Fatalf("batch %d base %d want %d", i, g.info.baseOffset, next)
		}
		next = g.info.lastOffset() + 1
		// only baseOffset and leader epoch differ from what was sent
		if !bytes.Equal(g.raw[16:], want[i][16:]) { // from magic on
			t.Fatalf("batch %d bytes changed", i)
		}
		if e := int32(uint32(g.raw[12])<<24 | uint32(g.raw[13])<<16 | uint32(g.raw[14])<<8 | uint32(g.raw[15])); e != 7 {
			t.Fatalf("leader epoch %d", e)
		}
	}
	if hw := l.HighWatermark(); hw != next {
		t.Fatalf("hw %d want %d", hw, next)
	}
	// Read from the middle of a batch returns that batch.
	r, err := l.Read(got[10].info.baseOffset+got[10].info.lastOffset()-got[10].info.baseOffset, 1)
	if err != nil || r.BaseOffset != got[10].info.baseOffset || r.Len != int64(got[10].info.length) {
		t.Fatalf("mid-batch read: %+v %v", r, err)
	}
	r.Release()
	if _, err := l.Read(next+1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("want out of range, got %v", err)
	}
	if r, err := l.Read(next, 100); err != nil || r.Len != 0 {
		t.Fatalf("read at hw: %+v %v", r, err)
	}
}

func TestAppendRejectsBadBatches(t *testing.T) {
	l, err := Open(t.TempDir(), testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b := makeBatch(3, 10, 1, 1)
	b[len(b)-1] ^= 0xff
	if err := l.Append(b, nil); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("want ErrCorruptBatch, got %v", err)
	}
	if err := l.Append(b[:20], nil); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("want ErrInvalidBatch, got %v", err)
	}
	b = makeBatch(3, 10, 1, 1)
	b[16] = 1 // magic
	if err := l.Append(b, nil); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("want ErrInvalidBatch for magic 1, got %v", err)
	}
	if l.HighWatermark() != 0 || l.Size() != 0 {
		t.Fatal("something was written")
	}
}

func TestLogAppendTime(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.LogAppendTime = true
	l, err := Open(t.TempDir(), cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := syncAppend(t, l, makeBatch(2, 10, 5, 1))
	if r.LogAppendTime != clk.Now().UnixMilli() {
		t.Fatalf("LogAppendTime %d", r.LogAppendTime)
	}
	got := readAll(t, l, 0)
	if got[0].info.maxTimestamp != r.LogAppendTime || !mustHeader(t, got[0].raw).LogAppendTime() {
		t.Fatalf("not stamped: %+v", got[0].info)
	}
}

func TestRollAndIndexLookup(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 8 << 10
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		r := syncAppend(t, l, makeBatch(2, 150, int64(i*100), byte(i)))
		if want := int64(2*i + 1); r.LastOffset != want {
			t.Fatalf("append %d: last offset %d, want %d", i, r.LastOffset, want)
		}
	}
	if n := l.NumSegments(); n < 5 {
		t.Fatalf("expected rolls, got %d segments", n)
	}
	for off := int64(0); off < 400; off += 7 {
		r, err := l.Read(off, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r.BaseOffset != off&^1 {
			t.Fatalf("read %d: base %d", off, r.BaseOffset)
		}
		r.Release()
	}
	// timestamps: batch i has ts i*100 .. i*100+1
	for _, ts := range []int64{0, 1, 2, 550, 10001, 19901} {
		off, bts, ok := l.ListOffset(ts)
		wantBatch := (ts + 98) / 100
		if ts%100 <= 1 {
			wantBatch = ts / 100
		}
		if !ok || off != wantBatch*2 || bts < ts {
			t.Fatalf("ListOffset(%d) = %d,%d,%v want %d", ts, off, bts, ok, wantBatch*2)
		}
	}
	if _, _, ok := l.ListOffset(1 << 40); ok {
		t.Fatal("found offset for future timestamp")
	}
	if off, ts, _ := l.ListOffset(TimestampMax); off != 399 || ts != 19901 {
		t.Fatalf("max timestamp: %d %d", off, ts)
	}
	// maxBytes bounds regions to whole batches
	r, _ := l.Read(0, 1000)
	if r.Len == 0 || r.Len > 1000 {
		t.Fatalf("region len %d", r.Len)
	}
	r.Release()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// clean reopen: no scan, same state
	l2, err := Open(dir, cfg, Options{CleanShutdown: true, RecoveryPoint: 400})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.HighWatermark() != 400 {
		t.Fatalf("hw after reopen %d", l2.HighWatermark())
	}
	if off, _, ok := l2.ListOffset(550); !ok || off != 12 {
		t.Fatalf("ListOffset after reopen %d", off)
	}
	if got := readAll(t, l2, 0); len(got) != 200 {
		t.Fatalf("read %d batches after reopen", len(got))
	}
	r3 := syncAppend(t, l2, makeBatch(1, 10, 1, 1))
	if r3.BaseOffset != 400 {
		t.Fatalf("append after reopen at %d", r3.BaseOffset)
	}
}

func TestRetentionAndDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 4 << 10
	cfg.RetentionBytes = 16 << 10
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 100; i++ {
		syncAppend(t, l, makeBatch(1, 500, int64(i), 1))
	}
	// Hold a region over the first segment while retention deletes it.
	r, err := l.Read(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.EnforceRetention(time.UnixMilli(100))
	if err != nil || n == 0 {
		t.Fatalf("retention deleted %d: %v", n, err)
	}
	if l.Size() > cfg.RetentionBytes+cfg.SegmentBytes {
		t.Fatalf("size %d after retention", l.Size())
	}
	buf := make([]byte, r.Len)
	if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
		t.Fatalf("region unusable after delete: %v", err)
	}
	r.Release()
	lso := l.LogStartOffset()
	if _, err := l.Read(lso-1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000000.log")); !os.IsNotExist(err) {
		t.Fatal("first segment still on disk")
	}
	// DeleteRecords
	nl, err := l.DeleteRecords(90)
	if err != nil || nl != 90 {
		t.Fatalf("DeleteRecords: %d %v", nl, err)
	}
	if off, _, _ := l.ListOffset(TimestampEarliest); off != 90 {
		t.Fatalf("earliest %d", off)
	}
	if _, err := l.DeleteRecords(1000); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatal("delete past hw accepted")
	}
	// time retention: everything old except the active segment
	cfg2 := cfg
	_ = cfg2
	if _, err := l.EnforceRetention(time.UnixMilli(cfg.RetentionMs + 10_000)); err != nil {
		t.Fatal(err)
	}
	if l.NumSegments() != 1 {
		t.Fatalf("%d segments after time retention", l.NumSegments())
	}
}

type chanWaiter chan int64

func (c chanWaiter) HWAdvanced(hw int64) { c <- hw }

func TestWaiters(t *testing.T) {
	l, err := Open(t.TempDir(), testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w := make(chanWaiter, 1)
	if !l.AddWaiter(w, 0) {
		t.Fatal("waiter not added at hw 0")
	}
	ch := l.HWChanged()
	syncAppend(t, l, makeBatch(3, 1, 1, 1))
	if hw := <-w; hw != 3 {
		t.Fatalf("waiter woke with %d", hw)
	}
	<-ch
	if l.AddWaiter(w, 2) {
		t.Fatal("added although hw > offset")
	}
	w2 := make(chanWaiter, 1)
	l.AddWaiter(w2, 3)
	l.RemoveWaiter(w2)
	syncAppend(t, l, makeBatch(1, 1, 1, 1))
	select {
	case <-w2:
		t.Fatal("removed waiter fired")
	default:
	}
}

func TestManagerCheckpointsAndCleanShutdown(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenManager(dir, ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.OpenLog("orders", 3, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		syncAppend(t, l, makeBatch(2, 10, 1, 1))
	}
	l.DeleteRecords(4)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, RecoveryPointCheckpointFile))
	if string(raw) != "0\n1\norders 3 10\n" {
		t.Fatalf("recovery checkpoint %q", raw)
	}
	raw, _ = os.ReadFile(filepath.Join(dir, LogStartOffsetCheckpointFile))
	if string(raw) != "0\n1\norders 3 4\n" {
		t.Fatalf("log start checkpoint %q", raw)
	}
	m2, err := OpenManager(dir, ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !m2.HadCleanShutdown() {
		t.Fatal("no clean shutdown seen")
	}
	if _, err := os.Stat(filepath.Join(dir, CleanShutdownFile)); !os.IsNotExist(err) {
		t.Fatal("marker not consumed")
	}
	tps, _ := m2.Existing()
	if len(tps) != 1 || tps[0] != (TopicPartition{"orders", 3}) {
		t.Fatalf("existing %v", tps)
	}
	l2, err := m2.OpenLog("orders", 3, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if l2.LogStartOffset() != 4 || l2.HighWatermark() != 10 {
		t.Fatalf("lso %d hw %d", l2.LogStartOffset(), l2.HighWatermark())
	}
	m2.Close()
}

func mustHeader(t testing.TB, b []byte) proto.RecordBatch {
	t.Helper()
	rb, err := proto.ParseRecordBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

// TestAppendBatch: a validated view is appended like Append's bytes, and a
// negative lastOffsetDelta is still refused.
func TestAppendBatch(t *testing.T) {
	l, err := Open(t.TempDir(), testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rb, _, err := proto.ParseRecordBatch(makeBatch(3, 10, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan AppendResult, 1)
	if err := l.AppendBatch(rb, AppendFunc(func(r AppendResult) { ch <- r })); err != nil {
		t.Fatal(err)
	}
	if r := <-ch; r.Err != nil || r.BaseOffset != 0 || r.LastOffset != 2 {
		t.Fatalf("append: %+v", r)
	}
	bad := makeBatch(1, 10, 1, 1)
	bad[23], bad[24], bad[25], bad[26] = 0xff, 0xff, 0xff, 0xff // lastOffsetDelta -1
	rb, _, _ = proto.ParseRecordBatch(bad)
	if err := l.AppendBatch(rb, nil); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("negative lastOffsetDelta: %v", err)
	}
	if got := readAll(t, l, 0); len(got) != 1 || got[0].info.lastOffset() != 2 {
		t.Fatalf("read back %d batches", len(got))
	}
}

// TestCleanShutdownBrokerEpoch: the marker carries the broker epoch set
// before Close (Kafka's {"version":0,"brokerEpoch":N}), the next open
// reads it back; an empty marker (a single node) or none reads as -1.
func TestCleanShutdownBrokerEpoch(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenManager(dir, ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.PreviousBrokerEpoch(); got != -1 {
		t.Fatalf("fresh dir: previous epoch %d", got)
	}
	m.SetBrokerEpoch(42)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, CleanShutdownFile))
	if string(raw) != `{"version":0,"brokerEpoch":42}` {
		t.Fatalf("marker %q", raw)
	}
	m2, err := OpenManager(dir, ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !m2.HadCleanShutdown() || m2.PreviousBrokerEpoch() != 42 {
		t.Fatalf("clean %t previous epoch %d", m2.HadCleanShutdown(), m2.PreviousBrokerEpoch())
	}
	if err := m2.Close(); err != nil { // no epoch set: an empty marker
		t.Fatal(err)
	}
	m3, err := OpenManager(dir, ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !m3.HadCleanShutdown() || m3.PreviousBrokerEpoch() != -1 {
		t.Fatalf("clean %t previous epoch %d", m3.HadCleanShutdown(), m3.PreviousBrokerEpoch())
	}
	m3.Close()
}
