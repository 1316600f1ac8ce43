package storage

import (
	"testing"
	"time"
)

// TestListOffsetLogStartInsideSegment: with the log start moved inside a
// segment (DeleteRecords), ListOffset answers from the batches at or after
// it only. Found by TestMetamorphic: the answer depended on where the
// segments rolled (a timestamp query answered the log start with a deleted
// batch's timestamp; TimestampMax skipped the whole segment, answering a
// later segment's smaller maximum or "not found").
func TestListOffsetLogStartInsideSegment(t *testing.T) {
	clk := newFakeClock()
	cfg := testConfig()
	cfg.SegmentMs, cfg.TimeRollMinMs = 1000, 0
	l, err := Open(t.TempDir(), cfg, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Segment 0: offsets 0, 1, 2 with timestamps 1000, 10, 20.
	for _, ts := range []int64{1000, 10, 20} {
		syncAppend(t, l, makeBatch(1, 10, ts, 1))
	}
	type answer struct {
		offset, ts int64
		found      bool
	}
	list := func(ts int64) answer {
		o, at, f := l.ListOffset(ts)
		return answer{o, at, f}
	}
	if _, err := l.DeleteRecords(1); err != nil {
		t.Fatal(err)
	}
	// Only batches below the log start reach 50: not found.
	if got := list(50); got != (answer{-1, -1, false}) {
		t.Fatalf("ListOffset(50) in one segment = %+v, want not found", got)
	}
	// The largest timestamp left is 20, at offset 2.
	if got := list(TimestampMax); got != (answer{2, 20, true}) {
		t.Fatalf("ListOffset(max) in one segment = %+v, want offset 2 ts 20", got)
	}
	// Segment 1: offset 3 with timestamp 15.
	clk.Advance(2 * time.Second)
	syncAppend(t, l, makeBatch(1, 10, 15, 1))
	if n := l.NumSegments(); n != 2 {
		t.Fatalf("%d segments, want 2", n)
	}
	for _, c := range []struct {
		ts   int64
		want answer
	}{
		{50, answer{-1, -1, false}},
		{12, answer{2, 20, true}},
		{16, answer{2, 20, true}},
		{TimestampMax, answer{2, 20, true}},
		{5, answer{1, 10, true}},
	} {
		if got := list(c.ts); got != c.want {
			t.Errorf("ListOffset(%d) = %+v, want %+v", c.ts, got, c.want)
		}
	}
	// A later segment answers once the first holds nothing that does.
	syncAppend(t, l, makeBatch(1, 10, 600, 1)) // offset 4
	if got := list(50); got != (answer{4, 600, true}) {
		t.Fatalf("ListOffset(50) = %+v, want offset 4 ts 600", got)
	}
}
