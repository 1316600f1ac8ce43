package netpoll

import "sync/atomic"

// Memory bounds beyond the per-connection ones (queued.max.request.bytes,
// MaxQueuedBytes). The in-flight accounting (uring_bounds.go mustMute, portable.go
// waitUnmuted) counts request bytes, answered responses, stashed bytes and
// the buffers of frames still being read; this file holds the two pieces
// that are shared by every loop of a server.
//
// Request memory. A frame that spans receive buffers is copied into a
// buffer that grows as its bytes arrive (framer.grow); each growth is asked
// of the connection first (frameHolder). Up to one receive buffer
// (ring.recv.buffer.bytes) per connection is always granted, like the one
// buffer of stash a muted connection may hold; past that a growth needs room
// under the bound. A connection refused a growth stops being read (muted)
// until there is room — or until it gets the oversize turn: one frame at a
// time per process may grow past the bound. Without it, connections each
// halfway through a large frame could fill the bound between them and wait
// for each other forever; with it, one of them completes, is served, and
// frees the room for the next. So request memory stays within the bound
// plus one frame (socket.request.max.bytes) plus one receive buffer per
// connection. A peer that trickles an oversized frame holds the turn and
// delays other oversized frames (never small ones) until it finishes or
// closes.
//
// Response memory. A response is counted from the moment a handler answers
// (Request.Reply adds its size to the loop's and the connection's mailed
// counters before it reaches the loop's mailbox), so a burst of pipelined
// requests parsed from one receive buffer mutes its connection as soon as
// their answers exceed a bound, not only once the loop has taken the
// answers in. A handler that copies bulk bytes into a response (Fetch with
// fetch.zero.copy=false) reserves them first from the server's copy budget
// (Request.ReserveCopy, process-wide, queued.max.request.bytes); what does
// not fit is sent another way (a FileRegion: zero copy).

// frameTurn is the process-wide oversize turn: at most one framer holds it.
// Safe from any goroutine; a framer's turn flag is owned by its connection.
type frameTurn struct {
	owner atomic.Pointer[framer]
	// onRelease wakes connections waiting for the turn (every loop of the
	// server, or the portable backend's waiters).
	onRelease func()
}

// take gives f the turn if nobody holds it, and reports whether f holds it.
func (t *frameTurn) take(f *framer) bool {
	if f.turn {
		return true
	}
	if t.owner.CompareAndSwap(nil, f) {
		f.turn = true
		return true
	}
	return false
}

// release ends f's turn, if it holds it.
func (t *frameTurn) release(f *framer) {
	if !f.turn {
		return
	}
	f.turn = false
	t.owner.Store(nil)
	if t.onRelease != nil {
		t.onRelease()
	}
}

// copyBudget bounds the bytes handlers copy into responses, process-wide.
type copyBudget struct {
	limit int64
	used  atomic.Int64
}

// take reserves n bytes and reports whether they fit.
func (b *copyBudget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *copyBudget) give(n int64) { b.used.Add(-n) }
