package broker

import (
	"slices"
	"testing"
)

// TestISRStateSteps drives the leader's ISR state step by step with
// logical times (ms): leadership, follower fetches, the high watermark,
// and the shrink and expand decisions, as Kafka's Partition makes them.
func TestISRStateSteps(t *testing.T) {
	var s isrState
	const self, lagMs = 1, 100
	live := func(int32) (int64, bool) { return 1, true }

	// Node 1 becomes leader at epoch 5 with log end 10; ISR {1,2,3}.
	became, lost := s.follow(self, 1, 5, 7, []int32{1, 2, 3}, []int32{1, 2, 3}, 10, 1000)
	if !became || lost || s.epochStartOffset != 10 {
		t.Fatalf("follow: became %v lost %v epoch start %d", became, lost, s.epochStartOffset)
	}
	// Followers' log ends are unknown: the high watermark cannot move.
	if hw := s.highWatermark(self, 10); hw != -1 {
		t.Fatalf("hw with unknown followers = %d, want -1", hw)
	}
	if s.fetched(9, 0, 10, 1000, -1, -1) {
		t.Fatal("a fetch from a non-replica was recorded")
	}
	s.fetched(2, 10, 10, 1010, -1, -1)
	s.fetched(3, 6, 10, 1010, -1, -1)
	if hw := s.highWatermark(self, 10); hw != 6 {
		t.Fatalf("hw = %d, want 6 (follower 3's log end)", hw)
	}
	// Leader appends up to 20. Follower 3 fetches at 10: it reached the
	// log end the leader had at its previous fetch (10), so it was caught
	// up then (1010), not now.
	s.fetched(3, 10, 20, 1050, -1, -1)
	if f := s.followers[3]; f.lastCaughtUpMs != 1010 {
		t.Fatalf("follower 3 caught up at %d, want 1010", f.lastCaughtUpMs)
	}
	s.fetched(2, 20, 20, 1060, -1, -1)
	if hw := s.highWatermark(self, 20); hw != 10 {
		t.Fatalf("hw = %d, want 10", hw)
	}
	// Follower 3 stops fetching. Within the lag, nobody is out of sync.
	if out := s.outOfSync(self, 20, 1110, lagMs); len(out) != 0 {
		t.Fatalf("out of sync at 1110: %v", out)
	}
	// Past it, follower 3 is; follower 2, at the log end, never is.
	if out := s.outOfSync(self, 20, 1111, lagMs); !slices.Equal(out, []int32{3}) {
		t.Fatalf("out of sync at 1111: %v, want [3]", out)
	}
	// The image applies the shrink (partition epoch 8): the high
	// watermark is now follower 2's log end.
	if became, lost := s.follow(self, 1, 5, 8, []int32{1, 2, 3}, []int32{1, 2}, 20, 1120); became || lost {
		t.Fatalf("same epoch: became %v lost %v", became, lost)
	}
	if hw := s.highWatermark(self, 20); hw != 20 {
		t.Fatalf("hw after shrink = %d, want 20", hw)
	}
	// Follower 3 is back but behind the high watermark: not yet.
	s.fetched(3, 15, 20, 1200, -1, -1)
	if add := s.caughtUp(20, live); len(add) != 0 {
		t.Fatalf("caught up below the hw: %v", add)
	}
	s.fetched(3, 20, 20, 1210, -1, -1)
	if add := s.caughtUp(20, live); !slices.Equal(add, []int32{3}) {
		t.Fatalf("caught up: %v, want [3]", add)
	}
	// While the expansion is in flight, follower 3 bounds the high
	// watermark (the maximal ISR): the leader appends to 30, follower 2
	// reaches it, follower 3 is still at 20.
	s.pending = []int32{1, 2, 3}
	s.fetched(2, 30, 30, 1220, -1, -1)
	if hw := s.highWatermark(self, 30); hw != 20 {
		t.Fatalf("hw with an expansion in flight = %d, want 20", hw)
	}
	s.pending = nil
	if hw := s.highWatermark(self, 30); hw != 30 {
		t.Fatalf("hw once the expansion is dropped = %d, want 30", hw)
	}
	if add := s.caughtUp(20, func(int32) (int64, bool) { return 1, false }); len(add) != 0 {
		t.Fatalf("a fenced broker caught up: %v", add)
	}
	// Node 2 becomes leader: node 1 no longer leads.
	if became, lost := s.follow(self, 2, 6, 9, []int32{1, 2, 3}, []int32{1, 2, 3}, 20, 1300); became || !lost {
		t.Fatalf("lost leadership: became %v lost %v", became, lost)
	}
	if s.fetched(3, 20, 20, 1310, -1, -1) {
		t.Fatal("a fetch recorded while not leading")
	}
	// Leader again at epoch 7: follower state starts over, the ISR
	// members with a full lag's grace.
	if became, _ := s.follow(self, 1, 7, 10, []int32{1, 2, 3}, []int32{1, 3}, 25, 1400); !became {
		t.Fatal("leader again: not became")
	}
	if f := s.followers[3]; f.leo != -1 || f.lastCaughtUpMs != 1400 {
		t.Fatalf("follower 3 after a new epoch: %+v", *f)
	}
	if f := s.followers[2]; f.lastCaughtUpMs != 0 {
		t.Fatalf("follower 2 (not in the ISR) after a new epoch: %+v", *f)
	}
	// A follower below the new epoch's start offset does not join.
	s.fetched(2, 22, 25, 1410, -1, -1)
	if add := s.caughtUp(22, live); len(add) != 0 {
		t.Fatalf("joined below the epoch start offset: %v", add)
	}
}

// TestISRStateBrokerEpoch: a follower fetch carrying a broker epoch older
// than the follower's registration (a fetcher of its previous incarnation)
// is refused and records nothing; one carrying the registered epoch (or -1)
// counts, and only a follower whose last fetch carried its registered epoch
// (or -1) joins the ISR, with that epoch in the AlterPartition (KIP-903).
func TestISRStateBrokerEpoch(t *testing.T) {
	var s isrState
	const self = 1
	s.follow(self, 1, 5, 7, []int32{1, 2, 3}, []int32{1, 2}, 10, 1000)
	if epoch, ok := s.followerBrokerEpoch(3); !ok || epoch != -1 {
		t.Fatalf("broker epoch before any fetch: %d %v, want -1 true", epoch, ok)
	}
	// Node 3 registered again at epoch 40; its old fetcher still says 30.
	if s.fetched(3, 10, 10, 1010, 30, 40) {
		t.Fatal("a fetch with a stale broker epoch was recorded")
	}
	if f := s.followers[3]; f.leo != -1 || f.brokerEpochKnown {
		t.Fatalf("stale fetch changed the follower state: %+v", *f)
	}
	registered := func(int32) (int64, bool) { return 40, true }
	if add := s.caughtUp(10, registered); len(add) != 0 {
		t.Fatalf("caught up on a refused fetch: %v", add)
	}
	// The new incarnation fetches with epoch 40: it counts and joins.
	if !s.fetched(3, 10, 10, 1020, 40, 40) {
		t.Fatal("a fetch with the registered broker epoch was refused")
	}
	if add := s.caughtUp(10, registered); !slices.Equal(add, []int32{3}) {
		t.Fatalf("caught up: %v, want [3]", add)
	}
	if epoch, _ := s.followerBrokerEpoch(3); epoch != 40 {
		t.Fatalf("AlterPartition epoch %d, want 40", epoch)
	}
	// The image moved on (registration 50) before the fetch said so: a
	// fetch at 40 is now stale, and the recorded 40 is not eligible.
	if s.fetched(3, 10, 10, 1030, 40, 50) {
		t.Fatal("a fetch older than the registration was recorded")
	}
	if add := s.caughtUp(10, func(int32) (int64, bool) { return 50, true }); len(add) != 0 {
		t.Fatalf("joined with a broker epoch not the registered one: %v", add)
	}
	// A fetch without a broker epoch (before Fetch v15) skips the checks.
	if !s.fetched(3, 10, 10, 1040, -1, 50) {
		t.Fatal("a fetch without a broker epoch was refused")
	}
	if add := s.caughtUp(10, func(int32) (int64, bool) { return 50, true }); !slices.Equal(add, []int32{3}) {
		t.Fatalf("caught up with epoch -1: %v, want [3]", add)
	}
}
