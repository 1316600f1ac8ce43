package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestTxnOffsets: transactional offsets stay invisible until their
// producer's marker; a commit materializes them, an abort drops them, and
// only groups of the marker's partition are touched.
func TestTxnOffsets(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := New(Config{})
	tp := TopicPartition{"in", 0}
	if code := c.CheckTxnCommit(now, "g", "", "", -1); code != 0 {
		t.Fatalf("memberless txn commit: %v", kerr.ErrorForCode(code))
	}
	if code := c.CheckTxnCommit(now, "", "", "", -1); code != kerr.InvalidGroupID.Code {
		t.Fatalf("empty group: %v", kerr.ErrorForCode(code))
	}
	c.ApplyTxnOffset(now, "g", 7, tp, Offset{Offset: 10, LeaderEpoch: -1})
	c.ApplyTxnOffset(now, "h", 7, tp, Offset{Offset: 20, LeaderEpoch: -1})
	c.ApplyTxnOffset(now, "g", 8, TopicPartition{"in", 1}, Offset{Offset: 5, LeaderEpoch: -1})
	if _, ok := c.FetchOffset("g", tp); ok {
		t.Fatal("pending offset visible before the marker")
	}
	if !c.HasPendingTxnOffset("g", tp) {
		t.Fatal("pending offset not reported")
	}
	// Marker of producer 7 in the partition of g only.
	if n := c.CompleteTxnOffsets(7, true, func(g string) bool { return g == "g" }); n != 1 {
		t.Fatalf("completed %d, want 1", n)
	}
	if o, ok := c.FetchOffset("g", tp); !ok || o.Offset != 10 {
		t.Fatalf("after commit: %v %v", o, ok)
	}
	if _, ok := c.FetchOffset("h", tp); ok {
		t.Fatal("h's offset committed by a marker of another partition")
	}
	if n := c.CompleteTxnOffsets(7, false, nil); n != 1 {
		t.Fatalf("abort dropped %d, want 1", n)
	}
	if _, ok := c.FetchOffset("h", tp); ok || c.HasPendingTxnOffset("h", tp) {
		t.Fatal("aborted offset kept")
	}
	if !c.HasPendingTxnOffset("g", TopicPartition{"in", 1}) {
		t.Fatal("producer 8's offset lost")
	}
	// An Empty group with only pending offsets is not expired away.
	c.ExpireOffsets(now.Add(time.Hour), time.Minute, nil)
	if c.Group("g") == nil {
		t.Fatal("group with pending transactional offsets removed")
	}
}
