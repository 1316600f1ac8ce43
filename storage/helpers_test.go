package storage

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/proto"
)

// makeBatch builds a valid uncompressed v2 record batch of n records, each
// with a value of valueSize bytes filled with fill, timestamps ts..ts+n-1.
// baseOffset is 0 (the log assigns it).
func makeBatch(n, valueSize int, ts int64, fill byte) []byte {
	val := make([]byte, valueSize)
	for i := range val {
		val[i] = fill
	}
	recs := make([]byte, 0, n*(valueSize+16))
	for i := 0; i < n; i++ {
		recs = proto.AppendRecord(recs, &kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Value: val})
	}
	return proto.AppendRecordBatch(make([]byte, 0, batchHeaderSize+len(recs)), &kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, LastOffsetDelta: int32(n - 1), FirstTimestamp: ts, MaxTimestamp: ts + int64(n) - 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: recs,
	})
}

// syncAppend appends and waits for the callback.
func syncAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	ch := make(chan AppendResult, 1)
	if err := l.Append(b, AppendFunc(func(r AppendResult) { ch <- r })); err != nil {
		t.Fatalf("append: %v", err)
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("append callback timeout")
	}
	return AppendResult{}
}

// testConfig is DefaultConfig with small sizes for tests.
func testConfig() Config {
	c := DefaultConfig()
	c.IndexIntervalBytes = 256
	c.IndexMaxBytes = 4096
	return c
}

// fakeClock is a settable Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// readAll returns every batch (header info + bytes) from offset to the HW
// by walking Read regions.
func readAll(t testing.TB, l *Log, from int64) []readBatch {
	t.Helper()
	var out []readBatch
	off := from
	for {
		r, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		if r.Len == 0 {
			r.Release()
			return out
		}
		buf := make([]byte, r.Len)
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
			t.Fatalf("pread: %v", err)
		}
		r.Release()
		for p := 0; p < len(buf); {
			bi, err := parseBatchHeader(buf[p:])
			if err != nil {
				t.Fatalf("bad batch at %d: %v", p, err)
			}
			if bi.length > len(buf)-p {
				t.Fatalf("batch at offset %d: length %d past the %d bytes read", bi.baseOffset, bi.length, len(buf)-p)
			}
			if !checkBatchCRC(buf[p : p+bi.length]) {
				t.Fatalf("bad crc at offset %d", bi.baseOffset)
			}
			out = append(out, readBatch{bi, buf[p : p+bi.length]})
			p += bi.length
			off = bi.lastOffset() + 1
		}
	}
}

type readBatch struct {
	info batchInfo
	raw  []byte
}

// wantSequence fails unless l holds exactly n batches from offset 0,
// batch i at offset i carrying sequence number i (tsOf); when says at
// what point, for the failure message.
func wantSequence(t testing.TB, l *Log, n int, when string) {
	t.Helper()
	got := readAll(t, l, 0)
	if len(got) != n {
		t.Fatalf("%d batches %s, want %d", len(got), when, n)
	}
	for i, b := range got {
		if tsOf(b) != int64(i) || b.info.baseOffset != int64(i) {
			t.Fatalf("batch %d: seq %d at offset %d", i, tsOf(b), b.info.baseOffset)
		}
	}
}
