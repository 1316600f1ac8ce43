package storage

import (
	"encoding/binary"
	"hash/crc32"
	"sync"
	"testing"
	"time"
)

// makeBatch builds a valid uncompressed v2 record batch of n records, each
// with a value of valueSize bytes filled with fill, timestamps ts..ts+n-1.
// baseOffset is 0 (the log assigns it).
func makeBatch(n, valueSize int, ts int64, fill byte) []byte {
	b := make([]byte, batchHeaderSize, batchHeaderSize+n*(valueSize+16))
	val := make([]byte, valueSize)
	for i := range val {
		val[i] = fill
	}
	for i := 0; i < n; i++ {
		var body []byte
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, int64(i)) // timestampDelta
		body = binary.AppendVarint(body, int64(i)) // offsetDelta
		body = binary.AppendVarint(body, -1)       // key length (null)
		body = binary.AppendVarint(body, int64(len(val)))
		body = append(body, val...)
		body = binary.AppendVarint(body, 0) // headers
		b = binary.AppendVarint(b, int64(len(body)))
		b = append(b, body...)
	}
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-logOverhead))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], 0xffffffff)
	b[offMagic] = 2
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(n-1))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts+int64(n)-1))
	binary.BigEndian.PutUint64(b[43:], ^uint64(0)) // producerId -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(n))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crcTable))
	return b
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
