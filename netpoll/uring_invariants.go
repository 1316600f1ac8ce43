//go:build linux

package netpoll

import "github.com/ringbroker/ringbroker/invariants"

// Invariants of an io_uring loop's accounting, checked under -race or
// -tags invariants. Call them only under `if invariants.Enabled`.
//
//   - A completion for a connection slot carries the slot's current
//     generation and finds an operation of the slot outstanding: a slot is
//     recycled only once every operation submitted for it has completed
//     (maybeFree), which is why handle needs no generation check.
//   - A connection's in-flight bytes are what its ordered queue holds:
//     request bytes plus the cost of answered responses.
//   - The loop's queuedBytes is the sum over its connections of in-flight
//     bytes, stashed bytes, partial-frame bytes held and a TLS connection's
//     held record bytes (reassembly and send buffer); nothing is negative.
//   - The muted list holds every muted connection once; the others in it
//     are closing (unmuteCleared drops them).

// checkCompletion asserts that a completion of kind for slot idx, carrying
// generation gen, belongs to the slot's current connection.
func (l *uloop) checkCompletion(kind uint64, gen, idx uint32) {
	invariants.Check(int(idx) < len(l.conns), "loop %d: completion kind %d for slot %d of %d", l.idx, kind, idx, len(l.conns))
	c := l.conns[idx]
	invariants.Check(c.gen == gen,
		"loop %d: completion kind %d for slot %d carries generation %d, the slot is at %d", l.idx, kind, idx, gen, c.gen)
	invariants.Check(c.ops > 0 && c.fd >= 0,
		"loop %d: completion kind %d for slot %d with %d operations outstanding (fd %d)", l.idx, kind, idx, c.ops, c.fd)
}

// checkConn asserts c's in-flight accounting.
func (l *uloop) checkConn(c *uconn) {
	invariants.Check(c.ops >= 0, "loop %d: slot %d has %d operations outstanding", l.idx, c.idx, c.ops)
	invariants.Check(c.mailed.Load() >= 0, "loop %d: slot %d has %d bytes mailed", l.idx, c.idx, c.mailed.Load())
	q := c.q.bytes()
	invariants.Check(c.inflightBytes == q,
		"loop %d: slot %d counts %d bytes in flight, its queue holds %d", l.idx, c.idx, c.inflightBytes, q)
	// A refused growth waits only while the frame's buffer is short of the
	// frame: a stale one mutes the connection after every feed
	// (muteIfGrowRefused) with nothing left to unmute it.
	invariants.Check(c.growWant == 0 || c.closing || (c.fr.lenHave == 4 && c.fr.held < c.fr.need),
		"loop %d: slot %d waits for a growth of %d bytes, its frame holds %d of %d", l.idx, c.idx, c.growWant, c.fr.held, c.fr.need)
}

// checkLoop asserts the loop's accounting against its connections'.
func (l *uloop) checkLoop() {
	invariants.Check(l.ops >= 0 && l.open >= 0, "loop %d: %d operations outstanding, %d connections open", l.idx, l.ops, l.open)
	invariants.Check(l.mailed.Load() >= 0, "loop %d: %d bytes mailed", l.idx, l.mailed.Load())
	var sum int64
	for _, c := range l.conns {
		l.checkConn(c)
		sum += c.inflightBytes + int64(len(c.stash)) + int64(c.fr.held) + c.tlsHeld
	}
	invariants.Check(l.queuedBytes == sum,
		"loop %d: queuedBytes %d, its connections hold %d", l.idx, l.queuedBytes, sum)
	listed := 0
	for _, c := range l.muted {
		invariants.Check(c.muted || c.closing, "loop %d: slot %d is on the muted list, neither muted nor closing", l.idx, c.idx)
		if c.muted {
			listed++
		}
	}
	muted := 0
	for _, c := range l.conns {
		if c.muted {
			muted++
		}
	}
	invariants.Check(listed == muted, "loop %d: %d muted connections, %d on the muted list", l.idx, muted, listed)
}
