//go:build linux

package netpoll

import (
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/internal/reqtrace"
	"github.com/ringbroker/ringbroker/invariants"
	"github.com/ringbroker/ringbroker/ring"
)

// The send path of an io_uring loop: one SENDMSG in flight per connection,
// carrying the run of answered responses at the head of its ordered queue
// (responses carrying file regions go through uring_files.go).

func (l *uloop) flushDirty() {
	for i, c := range l.dirty {
		c.dirty = false
		if !c.closing && !c.sending {
			l.startSend(c)
		}
		l.dirty[i] = nil
	}
	l.dirty = l.dirty[:0]
}

func (l *uloop) startSend(c *uconn) {
	for {
		c.sendBufs = c.q.nextReady(c.sendBufs[:0], maxSendIovecs)
		if len(c.sendBufs) > 0 {
			break
		}
		// Only no-reply slots were answered: they leave without bytes.
		if !c.q.hasUnsent() && c.q.sent == c.q.head {
			return
		}
		l.finishSent(c)
		if !c.q.hasUnsent() {
			return
		}
	}
	if reqtrace.Enabled() {
		for _, b := range c.sendBufs {
			b.trace.Mark(reqtrace.SendQueued)
		}
	}
	if c.tls != nil {
		l.startTLSSend(c)
		return
	}
	if c.sendBufs[0].hasFiles() {
		l.startFileSend(c, c.sendBufs[0])
		return
	}
	c.sendTotal = 0
	for i, b := range c.sendBufs {
		c.iov[i] = unix.Iovec{Base: &b.B[0]}
		c.iov[i].SetLen(len(b.B))
		c.sendTotal += len(b.B)
	}
	c.sendDone = 0
	l.submitSend(c, 0, len(c.sendBufs))
}

func (l *uloop) submitSend(c *uconn, first, n int) {
	c.msg = unix.Msghdr{Iov: &c.iov[first]}
	c.msg.SetIovlen(n - first)
	sqe := l.getSQE()
	sqe.PrepSendmsg(c.fd, &c.msg, unix.MSG_NOSIGNAL)
	sqe.SetUserData(userData(kindSend, c.gen, c.idx))
	c.sending = true
	l.opStarted(c)
}

func (l *uloop) onSend(c *uconn, cqe *ring.CQE) {
	if c.tls != nil {
		l.onTLSSend(c, cqe)
		return
	}
	c.sending = false
	l.opEnded(c)
	if c.closing {
		l.maybeFree(c)
		return
	}
	if cqe.Res < 0 {
		l.closeConn(c, "send: "+unix.Errno(-cqe.Res).Error(), zap.DebugLevel)
		l.maybeFree(c)
		return
	}
	l.s.opts.Metrics.BytesOut(int(cqe.Res))
	c.sendDone += int(cqe.Res)
	if c.sendDone < c.sendTotal {
		// Short send: skip the iovecs that left, trim the first partial one.
		off, first := c.sendDone, 0
		for first < len(c.sendBufs) && off >= len(c.sendBufs[first].B) {
			off -= len(c.sendBufs[first].B)
			first++
		}
		b := c.sendBufs[first].B[off:]
		c.iov[first] = unix.Iovec{Base: &b[0]}
		c.iov[first].SetLen(len(b))
		l.submitSend(c, first, len(c.sendBufs))
		return
	}
	for i := range c.sendBufs {
		c.sendBufs[i] = nil
	}
	l.afterSend(c)
}

// afterSend runs when a response run has fully left: pop it, send what is
// ready next, close a draining connection that has nothing left.
func (l *uloop) afterSend(c *uconn) {
	l.finishSent(c)
	if c.q.closeNow {
		l.closeConn(c, "closed after its response (ReplyThenClose)", zap.DebugLevel)
		return
	}
	if c.q.hasUnsent() {
		l.startSend(c)
	}
	if l.draining && c.q.len() == 0 && !c.sending {
		l.closeConn(c, "shutdown", zap.DebugLevel)
	}
}

// finishSent pops the slots whose bytes have left and updates accounting;
// connections muted by a bound that cleared resume receiving.
func (l *uloop) finishSent(c *uconn) {
	req, resp := c.q.popSent()
	c.inflightBytes -= req + resp
	l.queuedBytes -= req + resp
	if invariants.Enabled {
		l.checkConn(c)
	}
	if c.q.len() == 0 && len(c.stash) == 0 {
		c.pressured = false // drained: multishot again from the next arm
	}
	// Over the loop bound only c's own state changed: scan the muted list
	// only if c itself may resume, so a loop full of muted connections does
	// not pay O(muted) per send.
	if len(l.muted) > 0 && (!l.overLoop() || (c.muted && !l.mustMute(c))) {
		l.unmuteCleared()
	}
}
