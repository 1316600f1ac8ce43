//go:build linux

package netpoll

import "time"

// The memory and queue bounds of an io_uring loop: growth of a partial
// frame, the mute rule (mute.go) applied to a connection, loop-wide pressure
// (single-shot receives), and resuming muted connections once a bound clears
// (budget.go describes the accounting).

// hold is the framer's frameHolder: a spanning frame's buffer may grow
// within one receive buffer, within the loop's share, or with the
// oversize turn (budget.go); otherwise the growth waits (growWant) and
// checkMute mutes c while the growth still does not fit (growCause).
func (c *uconn) hold(f *framer, delta int) bool {
	if !c.tryHold(f, delta) {
		c.growWant = int64(delta)
		return false
	}
	return true
}

// tryHold grants a growth that fits now and reports false, noting
// nothing, when it does not (frameTryHolder; hold also notes the refusal).
// A grant clears any refusal noted before: after every feed,
// muteIfGrowRefused mutes a connection with a growth noted, so a stale one
// would mute a connection that already holds its frame, with nothing left
// to unmute it (a cached mapping taken whole did that once).
func (c *uconn) tryHold(f *framer, delta int) bool {
	l := c.l
	if !l.s.bounds.growFits(f, delta, l.used(), &l.s.turn) {
		return false
	}
	c.growWant = 0
	l.queuedBytes += int64(delta)
	return true
}

// spanDone ends the oversize turn of a completed frame.
func (c *uconn) spanDone(f *framer) { c.l.s.turn.release(f) }

// muteIfGrowRefused mutes c when its framer was refused a growth: the rest
// of its bytes wait in the stash, and unmuteCleared resumes c once
// the growth fits (an unmute is the only path that drains a stash).
func (l *uloop) muteIfGrowRefused(c *uconn) {
	if c.growWant > 0 && !c.muted && !c.closing {
		c.pressured = true
		l.mute(c)
	}
}

// used is the memory the loop accounts: in flight, stashed, partial
// frames, and answers still in the mailbox.
func (l *uloop) used() int64 { return l.queuedBytes + l.mailed.Load() }

func (l *uloop) overLoop() bool { return l.used() >= l.s.bounds.loopBytes }

// muteCause is why c must stop receiving (mute.go): over its own in-flight
// bound, or the loop over its share of queued.max.request.bytes while c has
// a request in flight, or refused a growth of its partial frame that still
// does not fit. Memory stays within the loop share plus one request (and one
// receive buffer of stash) per connection.
func (l *uloop) muteCause(c *uconn) muteCause {
	used := l.used()
	if why := l.s.bounds.muteCause(c.q.len(), c.inflightBytes+c.mailed.Load(), used); why != 0 {
		return why
	}
	if !c.throttleEnd.IsZero() {
		if c.throttleEnd.After(l.now) {
			return muteThrottle
		}
		c.throttleEnd = time.Time{}
	}
	return l.s.bounds.growCause(&c.fr, c.growWant, used, &l.s.turn)
}

// throttle starts (or extends) c's quiet period after a throttled answer
// and mutes it: its recv is cancelled; what arrives meanwhile waits in
// the stash.
func (l *uloop) throttle(c *uconn, d time.Duration) {
	c.throttleEnd = throttleUntil(c.throttleEnd, time.Now(), d)
	if l.throttleNext.IsZero() || c.throttleEnd.Before(l.throttleNext) {
		l.throttleNext = c.throttleEnd
	}
	if !c.muted && !c.closing {
		l.mute(c)
	}
}

// throttleTick resumes the connections whose quiet period is over and
// finds the next end among those still quiet.
func (l *uloop) throttleTick() {
	l.throttleNext = time.Time{}
	l.unmuteCleared()
	for _, c := range l.muted {
		if !c.closing && c.throttleEnd.After(l.now) && (l.throttleNext.IsZero() || c.throttleEnd.Before(l.throttleNext)) {
			l.throttleNext = c.throttleEnd
		}
	}
}

// mustMute reports whether c must stop receiving.
func (l *uloop) mustMute(c *uconn) bool { return l.muteCause(c) != 0 }

func (l *uloop) checkMute(c *uconn) {
	l.checkLoopPressure()
	if c.muted || !l.mustMute(c) {
		return
	}
	c.pressured = true
	l.mute(c)
}

// checkLoopPressure switches the whole loop to single-shot receives once it
// is past half its share of queued.max.request.bytes (and back below a
// quarter). A muted connection can overshoot by what its multishot recv
// pulled before the cancel landed — up to one buffer ring — and with many
// clients pushing at once those overshoots add up (100 non-reading producers
// took a 16 MiB loop share to ~500 MiB). Under pressure every armed multishot
// recv is cancelled and re-armed single-shot (one buffer per arm), so the
// overshoot is one buffer per connection.
func (l *uloop) checkLoopPressure() {
	half := l.s.bounds.loopBytes / 2
	switch {
	case !l.pressure && l.queuedBytes >= half:
		l.pressure = true
		for _, c := range l.conns {
			if c.fd < 0 || c.closing || c.pressured {
				continue
			}
			c.pressured = true
			if c.recvArmed { // a multishot: its last CQE re-arms single-shot
				sqe := l.getSQE()
				sqe.PrepCancel(userData(kindRecv, c.gen, c.idx), 0)
				sqe.SetUserData(userData(kindIgnore, 0, 0))
			}
		}
	case l.pressure && l.queuedBytes < half/2:
		l.pressure = false // connections go back to multishot as each drains
	}
}

// mute stops reading c: it joins the muted list and its recv is cancelled.
// A muted connection gives up the oversize turn: it must not hold it while
// it waits on its own client.
func (l *uloop) mute(c *uconn) {
	l.s.turn.release(&c.fr)
	if !c.muted {
		c.muted = true
		l.muted = append(l.muted, c)
		l.s.connMuted()
	}
	if c.recvArmed {
		sqe := l.getSQE()
		sqe.PrepCancel(userData(kindRecv, c.gen, c.idx), 0)
		sqe.SetUserData(userData(kindIgnore, 0, 0))
	}
}

// unmuteCleared resumes muted connections that mustMute no longer holds, and
// drops closing ones from the list.
func (l *uloop) unmuteCleared() {
	if l.unmuting {
		return
	}
	l.unmuting = true // drainStash may mute again: no re-entry
	defer func() { l.unmuting = false }()
	kept := l.muted[:0]
	resumed := l.resumed[:0]
	for _, c := range l.muted {
		switch {
		case c.closing:
			// dropped from the list; counted down in closeConn
		case l.mustMute(c) || l.draining:
			kept = append(kept, c)
		default:
			c.muted = false
			l.s.connUnmuted()
			resumed = append(resumed, c)
		}
	}
	for i := len(kept); i < len(l.muted); i++ {
		l.muted[i] = nil
	}
	l.muted = kept
	for i, c := range resumed {
		if l.drainStash(c) && !c.muted && !c.closing && !c.recvArmed {
			l.armRecv(c)
		}
		resumed[i] = nil
	}
	l.resumed = resumed[:0]
}
