//go:build linux

package netpoll

import "testing"

// A growth granted by tryHold (a cached mapping taken whole) after hold
// had refused one must clear the refusal. Otherwise, until its frame is
// served, the connection is muted for a growth it no longer needs (it
// holds all its frame's memory, counted against the loop, and stops
// reading the frame), or growFits hands it the oversize turn it does not
// need; TestLargeFramesUnderBound hung about once in twenty runs this way.
func TestTryHoldClearsRefusedGrowth(t *testing.T) {
	l := &uloop{s: &uringServer{}}
	l.s.bounds = testBounds
	c := &uconn{l: l, fd: 100}
	l.conns = append(l.conns, c)
	f := &c.fr

	other := &framer{}
	l.s.turn.take(other)
	l.queuedBytes = 9000
	if c.hold(f, 2000) {
		t.Fatal("hold granted a growth over the loop share with the turn taken")
	}
	if c.growWant != 2000 || l.muteCause(c) != muteGrow {
		t.Fatalf("after the refusal: growWant %d, muteCause %v; want 2000, grow", c.growWant, l.muteCause(c))
	}

	l.queuedBytes = 0 // the loop drained
	if !c.tryHold(f, 2000) {
		t.Fatal("tryHold refused a growth within the loop share")
	}
	f.held = 2000

	// While the frame fills the mapping it holds whole, the loop fills up
	// with other connections' bytes and another framer holds the turn:
	// nothing may stop this connection from reading its frame.
	l.queuedBytes = 9900
	if why := l.muteCause(c); why != 0 {
		t.Fatalf("muteCause %v for a connection that holds its whole frame", why)
	}
	l.s.turn.release(other)
	if l.muteCause(c); f.turn {
		t.Fatal("a connection with nothing to grow took the oversize turn")
	}
}
