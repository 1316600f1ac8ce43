package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestUnload: dropping the groups of a partition no longer led answers
// the members waiting on a join NOT_COORDINATOR, writes nothing, and
// leaves the other groups alone.
func TestUnload(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	persisted := 0
	c := New(Config{InitialRebalanceDelay: time.Second, MaxSessionTimeout: time.Minute,
		NewMemberID: func(id string) string { return id + "-m" },
		Persist:     func(string, []byte, []byte) { persisted++ }})
	tp := TopicPartition{"in", 0}
	c.ApplyOffset(now, "h", tp, Offset{Offset: 7, LeaderEpoch: -1})
	var got *JoinResult
	c.Join(now, JoinRequest{Group: "g", ClientID: "c", ProtocolType: "consumer", Protocols: []Protocol{{Name: "range"}},
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second}, func(r JoinResult) { got = &r })
	if got != nil {
		t.Fatalf("join answered before the initial rebalance delay: %+v", *got)
	}
	before := persisted
	if n := c.Unload(func(id string) bool { return id == "g" }, kerr.NotCoordinator.Code); n != 1 {
		t.Fatalf("unloaded %d groups, want 1", n)
	}
	if got == nil || got.Err != kerr.NotCoordinator.Code {
		t.Fatalf("waiting join answered %+v, want NOT_COORDINATOR", got)
	}
	if persisted != before {
		t.Fatalf("unload wrote %d records", persisted-before)
	}
	if c.Group("g") != nil {
		t.Fatal("unloaded group still served")
	}
	if _, ok := c.NextDeadline(); ok {
		t.Fatal("unloaded group's timer still armed")
	}
	if o, ok := c.FetchOffset("h", tp); !ok || o.Offset != 7 {
		t.Fatalf("other partition's group changed: %v %v", o, ok)
	}
}
