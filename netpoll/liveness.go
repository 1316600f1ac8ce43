package netpoll

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Liveness: the daemon's systemd watchdog sends a keep-alive only while
// every event loop still turns. A goroutine cannot look inside a loop that
// is stuck (a handler that blocks on the ring thread, a callback that spins,
// a loop that returned after an error), so it asks: each Liveness call posts
// a ping through the loop's mailbox, the same path as completions and
// Shutdown, and the loop answers it when it drains the mailbox, which it does
// on every turn. A ping still unanswered at the next call means the loop has
// not completed a turn since the previous call.
//
// Rejected: a per-turn "last progress" timestamp stored by the loop. An idle
// loop sleeps in io_uring_enter for up to its tick and must not look stuck,
// so the reader would need to know whether the loop sleeps or spins; the
// ping wakes it and needs no such knowledge. The cost is one mail per loop
// per call (every few seconds).
//
// The portable backend has no loops: each connection has its own reader and
// writer goroutines, so a blocked handler stops only its connection, and
// there is nothing whose stall stops every client. Its Liveness is always
// nil.

// loopLiveness is a loop's ping state. pingPostedNs is the wall time
// (UnixNano) Liveness posted the ping the loop has not yet answered, 0 when
// none is outstanding. Liveness stores it (one caller at a time); the loop
// clears it.
type loopLiveness struct {
	pingPostedNs atomic.Int64
}

// answerPing is the loop's side: called from drainMailbox for a mailPing.
func (lv *loopLiveness) answerPing() { lv.pingPostedNs.Store(0) }

// Liveness reports the event loops that have not answered the ping posted by
// the previous call, naming each loop and how long its ping has waited, and
// posts a new ping to every loop that answered. nil means every loop
// completed a turn since the previous call. The first call always returns
// nil. Call it periodically from one goroutine (the systemd watchdog calls
// it every keep-alive period); the period is the stall it detects.
func (s *Server) Liveness() error { return s.b.liveness() }

func (s *uringServer) liveness() error {
	now := time.Now().UnixNano()
	var stuck []string
	for _, l := range s.loops {
		posted := l.live.pingPostedNs.Load()
		if posted != 0 {
			stuck = append(stuck, fmt.Sprintf("event loop %d has not answered for %v", l.idx, time.Duration(now-posted).Round(time.Millisecond)))
			continue
		}
		l.live.pingPostedNs.Store(now)
		l.post(mail{kind: mailPing})
	}
	if len(stuck) > 0 {
		return fmt.Errorf("netpoll: %s", strings.Join(stuck, "; "))
	}
	return nil
}

func (s *portableServer) liveness() error { return nil }
