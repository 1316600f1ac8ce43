package netpoll

import "testing"

// testBounds: 4 requests or 1000 bytes per connection, 10000 bytes per
// loop, 100 bytes of partial frame always granted.
var testBounds = bounds{connRequests: 4, connBytes: 1000, loopBytes: 10000, recvBufferBytes: 100}

func TestMuteCause(t *testing.T) {
	for _, tc := range []struct {
		name     string
		requests int
		inflight int64
		loopUsed int64
		want     muteCause
	}{
		{"idle", 0, 0, 0, 0},
		{"within every bound", 3, 999, 9999, 0},
		{"request bound", 4, 10, 0, muteConn},
		{"byte bound", 1, 1000, 0, muteConn},
		{"loop bound with a request in flight", 1, 10, 10000, muteLoop},
		// Nothing in flight: the loop bound never holds it, so a client
		// that never reads cannot starve the others.
		{"loop bound with nothing in flight", 0, 0, 20000, 0},
		{"both", 4, 1000, 10000, muteConn | muteLoop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := testBounds.muteCause(tc.requests, tc.inflight, tc.loopUsed); got != tc.want {
				t.Fatalf("muteCause(%d, %d, %d) = %v, want %v", tc.requests, tc.inflight, tc.loopUsed, got, tc.want)
			}
		})
	}
}

func TestGrowFits(t *testing.T) {
	for _, tc := range []struct {
		name       string
		held       int
		hasTurn    bool
		turnTaken  bool // another framer holds the oversize turn
		delta      int
		loopUsed   int64
		want       bool
		wantTurned bool // f holds the turn afterwards
	}{
		{name: "shrink over every bound", held: 5000, delta: -100, loopUsed: 50000, turnTaken: true, want: true},
		{name: "within one receive buffer", held: 40, delta: 60, loopUsed: 50000, turnTaken: true, want: true},
		{name: "within the loop share", held: 100, delta: 900, loopUsed: 9100, turnTaken: true, want: true},
		{name: "holder of the turn", held: 100, hasTurn: true, delta: 5000, loopUsed: 50000, want: true, wantTurned: true},
		{name: "over the loop share takes the free turn", held: 100, delta: 900, loopUsed: 9101, want: true, wantTurned: true},
		{name: "over the loop share, turn taken", held: 100, delta: 900, loopUsed: 9101, turnTaken: true, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var turn frameTurn
			if tc.turnTaken {
				turn.take(&framer{})
			}
			f := &framer{held: tc.held}
			if tc.hasTurn {
				turn.take(f)
			}
			if got := testBounds.growFits(f, tc.delta, tc.loopUsed, &turn); got != tc.want {
				t.Fatalf("growFits = %v, want %v", got, tc.want)
			}
			if f.turn != tc.wantTurned {
				t.Fatalf("turn held = %v, want %v", f.turn, tc.wantTurned)
			}
		})
	}
}

func TestGrowCause(t *testing.T) {
	var turn frameTurn
	other := &framer{}
	turn.take(other)
	f := &framer{held: 100}
	if got := testBounds.growCause(f, 0, 50000, &turn); got != 0 {
		t.Fatalf("no growth wanted: %v, want none", got)
	}
	if got := testBounds.growCause(f, 900, 9101, &turn); got != muteGrow {
		t.Fatalf("growth over the loop share, turn taken: %v, want grow", got)
	}
	if got := testBounds.growCause(f, 900, 9100, &turn); got != 0 {
		t.Fatalf("growth within the loop share: %v, want none", got)
	}
	turn.release(other)
	if got := testBounds.growCause(f, 900, 50000, &turn); got != 0 || !f.turn {
		t.Fatalf("growth with the turn free: %v (turn %v), want none with the turn taken", got, f.turn)
	}
}

func TestMuteCauseString(t *testing.T) {
	for c, want := range map[muteCause]string{
		0:                              "none",
		muteConn:                       "conn",
		muteLoop | muteGrow:            "loop|grow",
		muteConn | muteLoop | muteGrow: "conn|loop|grow",
	} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(c), got, want)
		}
	}
}
