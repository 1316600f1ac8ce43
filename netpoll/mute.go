package netpoll

import "time"

// The mute rule, one for both backends. A connection stops being read
// (muted) while
//
//   - it is over its own in-flight bound: ring.conn.max.inflight.requests
//     requests queued, or ring.conn.max.inflight.bytes of requests and
//     answers not yet sent (muteConn);
//   - its loop's share of queued.max.request.bytes (the portable backend:
//     the whole MaxQueuedBytes) is used up and it has a request in flight
//     (muteLoop). A connection with nothing in flight is not held by the
//     loop bound: it may bring one request at a time. Holding it too let
//     clients that never read their answers (so never release what they
//     hold) starve every other connection of the loop for good; this way the
//     loop bound costs well-behaved clients their pipelining, not their
//     service;
//   - the growth of its partial frame was refused and still does not fit
//     (muteGrow, growFits);
//   - a response sent with Request.ReplyThrottled asked for a quiet period
//     (muteThrottle, KIP-219: the broker answers a client over its quota
//     at once and then does not read from it for the throttle time). The
//     mute starts when the answer reaches the connection and lasts at most
//     throttleMax; a later throttled answer extends it, never shortens it.
//
// The backends differ only in how they stop reading: the io_uring loop
// cancels the connection's receive and stashes what was already received
// (uring_bounds.go mustMute), the portable backend's reader goroutine
// waits on a condition variable (portable.go waitUnmuted, hold).

// bounds holds the mute thresholds shared by both backends.
type bounds struct {
	connRequests int
	connBytes    int64
	// loopBytes is a loop's share of queued.max.request.bytes (portable:
	// all of it).
	loopBytes int64
	// recvBufferBytes is the growth of a partial frame granted to every
	// connection regardless of loopBytes (ring.recv.buffer.bytes).
	recvBufferBytes int
}

// overConn reports whether a connection with these in-flight figures must be
// muted.
func (b *bounds) overConn(requests int, bytes int64) bool {
	return requests >= b.connRequests || bytes >= b.connBytes
}

// muteCause is the set of reasons a connection must stop being read; zero
// means it may read.
type muteCause uint8

const (
	muteConn     muteCause = 1 << iota // over its own in-flight bound
	muteLoop                           // the loop's share is used up and it has a request in flight
	muteGrow                           // its partial frame was refused a growth that still does not fit
	muteThrottle                       // a throttled answer's quiet period (ReplyThrottled)
)

// throttleMax bounds one throttled answer's quiet period (the quota
// package bounds its throttles far below it).
const throttleMax = 5 * time.Minute

// throttleUntil returns the end of the quiet period a throttle of d
// started at now asks for, given the current end cur (zero: none).
func throttleUntil(cur, now time.Time, d time.Duration) time.Time {
	end := now.Add(min(d, throttleMax))
	if end.Before(cur) {
		return cur
	}
	return end
}

func (m muteCause) String() string {
	if m == 0 {
		return "none"
	}
	s := ""
	for _, c := range [...]struct {
		bit  muteCause
		name string
	}{{muteConn, "conn"}, {muteLoop, "loop"}, {muteGrow, "grow"}, {muteThrottle, "throttle"}} {
		if m&c.bit != 0 {
			if s != "" {
				s += "|"
			}
			s += c.name
		}
	}
	return s
}

// muteCause applies the in-flight bounds to a connection with requests
// queued (answered or not, until sent) and inflightBytes of requests and
// answers, on a loop that accounts loopUsed bytes. It never reports
// muteGrow: see growCause.
func (b *bounds) muteCause(requests int, inflightBytes, loopUsed int64) muteCause {
	var why muteCause
	if b.overConn(requests, inflightBytes) {
		why |= muteConn
	}
	if requests > 0 && loopUsed >= b.loopBytes {
		why |= muteLoop
	}
	return why
}

// growCause reports muteGrow when f, refused a growth of growWant bytes
// (growWant > 0), still may not have it. Ask only for a connection that
// muteCause lets read: growFits may hand f the oversize turn, and a turn
// must not wait on its holder's client.
func (b *bounds) growCause(f *framer, growWant, loopUsed int64, turn *frameTurn) muteCause {
	if growWant > 0 && !b.growFits(f, int(growWant), loopUsed, turn) {
		return muteGrow
	}
	return 0
}

// growFits reports whether f's partial frame may grow by delta bytes on a
// loop that accounts loopUsed bytes (budget.go): a shrink always, a framer
// holding the oversize turn always, within one receive buffer always,
// within the loop's share; otherwise only by taking the oversize turn,
// which growFits then does.
func (b *bounds) growFits(f *framer, delta int, loopUsed int64, turn *frameTurn) bool {
	return delta <= 0 || f.turn || f.held+delta <= b.recvBufferBytes ||
		loopUsed+int64(delta) <= b.loopBytes || turn.take(f)
}

// connMuted counts a connection that stopped being read because of a bound
// (Stats.MutedConns and the muted-connections metric); connUnmuted counts
// it back.
func (b *serverBase) connMuted() {
	b.muted.Add(1)
	b.opts.Metrics.ConnMuted()
}

func (b *serverBase) connUnmuted() {
	b.muted.Add(-1)
	b.opts.Metrics.ConnUnmuted()
}
