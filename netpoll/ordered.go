package netpoll

import "github.com/ringbroker/ringbroker/invariants"

// orderedQueue is a connection's ordered response queue: one slot per request
// in arrival order. Handlers complete slots in any order; responses leave
// from the head, strictly in request order, while later requests keep being
// added at the tail (the pipelined model: the connection is not muted while a
// request is in flight, only when a bound is hit).
//
//	 head            sent            tail
//	  |   sending     |  waiting or   |
//	  v               v  ready        v
//	[ s | s | s | r | p | r | p | ... ]
//
// [head, sent) are handed to the kernel by the current send; [sent, tail)
// are pending (p) or ready (r). The next send takes the run of ready slots
// starting at sent.
//
// Slots are addressed by a 32-bit sequence number that wraps; the ring of
// slots grows by doubling up to the connection's in-flight bound, which is
// enforced by the caller (mute), never by dropping.
//
// It is I/O-free and owned by one goroutine at a time (the loop, or the
// portable backend's connection mutex holder).
//
// Invariants (checked under -race or -tags invariants): head <= sent <=
// tail in sequence order and the live slots fit the ring; an unanswered
// slot is never behind sent, so a response leaves only once every earlier
// request has been answered; a slot leaves (popSent) only answered, one
// sequence number after the other.
type orderedQueue struct {
	slots []slot
	head  uint32
	sent  uint32
	tail  uint32
	// closeNow: popSent popped a buffer sent with ReplyThenClose; the
	// owner closes the connection.
	closeNow bool
}

type slotState uint8

const (
	slotFree slotState = iota
	slotPending
	slotReady   // has a response buffer
	slotNoReply // answered without a response
)

type slot struct {
	state    slotState
	buf      *Buffer
	reqBytes int32
}

func (q *orderedQueue) len() int { return int(q.tail - q.head) }

func (q *orderedQueue) at(seq uint32) *slot { return &q.slots[seq&uint32(len(q.slots)-1)] }

// push adds a pending slot for a request of reqBytes and returns its sequence
// number.
func (q *orderedQueue) push(reqBytes int32) uint32 {
	if q.len() == len(q.slots) {
		q.grow()
	}
	seq := q.tail
	*q.at(seq) = slot{state: slotPending, reqBytes: reqBytes}
	q.tail++
	if invariants.Enabled {
		q.checkBounds()
	}
	return seq
}

func (q *orderedQueue) grow() {
	n := 2 * len(q.slots)
	if n == 0 {
		n = 16
	}
	slots := make([]slot, n)
	for seq := q.head; seq != q.tail; seq++ {
		slots[seq&uint32(n-1)] = *q.at(seq)
	}
	q.slots = slots
}

// contains reports whether seq names a slot still in the queue and not yet
// answered.
func (q *orderedQueue) contains(seq uint32) bool {
	return seq-q.head < q.tail-q.head && q.at(seq).state == slotPending
}

// complete answers slot seq with buf (nil for no reply). It reports false for
// an unknown or already answered slot, which the caller treats as a dropped
// stale completion.
func (q *orderedQueue) complete(seq uint32, buf *Buffer) bool {
	if !q.contains(seq) {
		return false
	}
	if invariants.Enabled {
		invariants.Check(seq-q.head >= q.sent-q.head,
			"ordered queue: unanswered slot %d is behind sent %d (head %d): a later response left before it", seq, q.sent, q.head)
	}
	s := q.at(seq)
	if buf == nil {
		s.state = slotNoReply
	} else {
		s.state, s.buf = slotReady, buf
	}
	return true
}

// nextReady appends to dst the buffers of the run of answered slots starting
// at sent, up to max buffers, advances sent past them (no-reply slots are
// skipped over), and returns dst. Slots stay in the queue until popSent.
// A buffer that splices files goes out alone: the run stops before it, or
// right after it when it is first. A ReplyThenClose buffer ends the run.
func (q *orderedQueue) nextReady(dst []*Buffer, max int) []*Buffer {
	for q.sent != q.tail && len(dst) < max {
		s := q.at(q.sent)
		if s.state == slotPending {
			break
		}
		if s.state == slotReady {
			if s.buf.hasFiles() {
				if len(dst) > 0 {
					break
				}
				q.sent++
				return append(dst, s.buf)
			}
			dst = append(dst, s.buf)
			if s.buf.closeAfter {
				q.sent++ // nothing after it leaves: the connection closes
				break
			}
		}
		q.sent++
	}
	if invariants.Enabled {
		q.checkBounds()
	}
	return dst
}

// popSent removes the slots in [head, sent) — their bytes have left — and
// returns the request bytes and response bytes they accounted for. Buffers
// are released.
func (q *orderedQueue) popSent() (reqBytes, respBytes int64) {
	for q.head != q.sent {
		s := q.at(q.head)
		if invariants.Enabled {
			invariants.Check(s.state == slotReady || s.state == slotNoReply,
				"ordered queue: slot %d leaves unanswered (state %d; head %d, sent %d, tail %d)", q.head, s.state, q.head, q.sent, q.tail)
		}
		reqBytes += int64(s.reqBytes)
		if s.buf != nil {
			respBytes += s.buf.cost()
			q.closeNow = q.closeNow || s.buf.closeAfter
			s.buf.Release()
		}
		*s = slot{}
		q.head++
	}
	return reqBytes, respBytes
}

// hasUnsent reports whether some slot at or after sent is answered, i.e. a
// send could start now.
func (q *orderedQueue) hasUnsent() bool {
	return q.sent != q.tail && q.at(q.sent).state != slotPending
}

// releaseAll drops every slot (connection closed), releasing buffers.
func (q *orderedQueue) releaseAll() {
	for seq := q.head; seq != q.tail; seq++ {
		s := q.at(seq)
		s.buf.Release()
		*s = slot{}
	}
	q.head, q.sent, q.tail = 0, 0, 0
	q.closeNow = false
}

// bytes is what the queued slots account for: request bytes and the cost
// of answered responses (the connection's in-flight bytes, for invariant
// checks).
func (q *orderedQueue) bytes() int64 {
	var n int64
	for seq := q.head; seq != q.tail; seq++ {
		s := q.at(seq)
		n += int64(s.reqBytes)
		if s.buf != nil {
			n += s.buf.cost()
		}
	}
	return n
}

// checkBounds asserts head <= sent <= tail (in wrapping sequence order) and
// that the live slots fit the ring. Call it under invariants.Enabled.
func (q *orderedQueue) checkBounds() {
	invariants.Check(q.sent-q.head <= q.tail-q.head,
		"ordered queue: sent %d outside [head %d, tail %d]", q.sent, q.head, q.tail)
	invariants.Check(q.len() <= len(q.slots),
		"ordered queue: %d live slots in a ring of %d", q.len(), len(q.slots))
}
