package replica_test

import (
	"testing"

	"github.com/ringbroker/ringbroker/replica"
)

// TestTruncationPoint: Kafka's getOffsetTruncationState, case by case. The
// follower's cache is {epoch 1 from 0, epoch 3 from 10, epoch 5 from 20},
// log end 30.
func TestTruncationPoint(t *testing.T) {
	follower := func(e int32) (int32, int64) {
		switch {
		case e >= 5:
			return 5, 30
		case e >= 3:
			return 3, 20
		case e >= 1:
			return 1, 10
		}
		return e, 0 // below every epoch: the start of the first
	}
	const logEnd = 30
	for _, c := range []struct {
		name        string
		leaderEpoch int32
		leaderEnd   int64
		want        int64
		done        bool
	}{
		{"leader knows no epoch <= ours: nothing proven, nothing cut", -1, -1, 30, true},
		{"old leader without epochs: its end", -1, 25, 25, true},
		{"same latest epoch, leader longer: no cut", 5, 40, 30, true},
		{"same latest epoch, leader shorter: cut at its end", 5, 26, 26, true},
		{"leader's epoch 3 ends at 15, ours at 20: cut at 15", 3, 15, 15, true},
		{"leader's epoch 4 unknown here: cut where our epoch 3 ends, ask again", 4, 25, 20, false},
		{"leader's epoch 0 below all of ours: the leader's end for it", 0, 0, 0, true},
	} {
		got, done := replica.TruncationPoint(c.leaderEpoch, c.leaderEnd, logEnd, follower)
		if got != c.want || done != c.done {
			t.Errorf("%s: got (%d, %v), want (%d, %v)", c.name, got, done, c.want, c.done)
		}
	}
	// No entry at all for the answered epoch (Kafka's None case).
	none := func(int32) (int32, int64) { return -1, -1 }
	if got, done := replica.TruncationPoint(2, 12, logEnd, none); got != 12 || !done {
		t.Errorf("no follower entry: got (%d, %v), want (12, true)", got, done)
	}
}

// TestWholeBatches: a response cut inside a batch keeps the whole batches
// before it.
func TestWholeBatches(t *testing.T) {
	batch := func(n int) []byte {
		b := make([]byte, 12+n)
		b[8], b[9], b[10], b[11] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return b
	}
	a, b := batch(70), batch(300)
	both := append(append([]byte{}, a...), b...)
	for _, c := range []struct {
		in   []byte
		want int
	}{
		{nil, 0},
		{both, len(both)},
		{both[:len(both)-1], len(a)},
		{both[:len(a)+11], len(a)},
		{both[:5], 0},
	} {
		if got := len(replica.WholeBatches(c.in)); got != c.want {
			t.Errorf("%d bytes in: %d whole, want %d", len(c.in), got, c.want)
		}
	}
}

// TestFetcherIndex: Kafka's getFetcherId, abs(31*hashCode(topic)+partition) % n.
func TestFetcherIndex(t *testing.T) {
	// "test".hashCode() == 3556498 in Java; 31*3556498+1 == 110251439.
	if got := replica.FetcherIndex("test", 1, 7); got != 110251439%7 {
		t.Errorf("fetcherIndex(test, 1, 7) = %d, want %d", got, 110251439%7)
	}
	for p := int32(0); p < 100; p++ {
		if got := replica.FetcherIndex("a-rather-long-topic-name-that-overflows", p, 3); got < 0 || got >= 3 {
			t.Fatalf("index %d out of [0, 3)", got)
		}
	}
}
