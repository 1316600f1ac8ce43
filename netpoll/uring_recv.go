//go:build linux

package netpoll

import (
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/internal/reqtrace"
	"github.com/ringbroker/ringbroker/invariants"
	"github.com/ringbroker/ringbroker/ring"
)

// The receive path of an io_uring loop: the multishot (or, under pressure,
// single-shot) RECV into provided buffers, the framer feeding requests to the
// handler, and the stash that keeps the bytes of a muted connection.

// armRecv arms receive: multishot normally; one buffer at a time for a
// connection under pressure (it hit a bound and has not drained since),
// because a multishot recv re-armed after an unmute pulls everything the
// client queued meanwhile — megabytes — before a new mute could stop it.
func (l *uloop) armRecv(c *uconn) {
	sqe := l.getSQE()
	if c.pressured || l.pressure {
		sqe.PrepRecv(c.fd, nil, uint32(l.br.BufSize()), 0)
		sqe.SetFlags(ring.SQEBufferSelect)
		sqe.SetBufGroup(l.br.Group())
	} else {
		sqe.PrepRecvMultishot(c.fd, l.br.Group(), 0)
		if l.bundle {
			sqe.SetRecvBundle()
		}
	}
	sqe.SetUserData(userData(kindRecv, c.gen, c.idx))
	c.recvArmed = true
	l.opStarted(c)
}

func (l *uloop) onRecv(c *uconn, cqe *ring.CQE) {
	if !cqe.More() {
		c.recvArmed = false
		l.opEnded(c)
	}
	res := cqe.Res
	if reqtrace.Enabled() {
		c.recvNs = reqtrace.Now() // the receive stamp of the frames it completes
	}
	if id, ok := cqe.BufferID(); ok {
		l.received(c, id, res)
	}
	switch {
	case c.closing:
	case res == 0:
		level := zap.DebugLevel
		reason := "client closed"
		if c.fr.pending() {
			level, reason = zap.WarnLevel, "client closed mid-frame"
		}
		l.closeConn(c, reason, level)
	case res < 0 && unix.Errno(-res) != unix.ENOBUFS && unix.Errno(-res) != unix.ECANCELED:
		l.closeConn(c, "recv: "+unix.Errno(-res).Error(), zap.DebugLevel)
	}
	if c.closing {
		l.maybeFree(c)
		return
	}
	l.checkMute(c)
	if !c.recvArmed && !c.muted {
		l.armRecv(c)
	}
}

// received takes the provided buffers of a receive of res bytes whose first
// buffer is id, feeds their bytes to the connection and gives them back to
// the kernel. A bundled receive fills several buffers in the ring's order;
// any other fills one.
func (l *uloop) received(c *uconn, id uint16, res int32) {
	n := 1
	if res > 0 {
		if n = l.br.Bufs(int(res)); n > 1 {
			l.bundled.Add(1)
		}
		if !c.closing {
			l.s.opts.Metrics.BytesIn(int(res))
			c.lastActive = l.now
		}
	}
	rest := int(max(res, 0))
	for range n {
		if !l.br.Take(id) {
			// The kernel named a buffer this loop holds: the ring's
			// bookkeeping is wrong, so no byte of this receive can be
			// trusted, and no buffer of it is given back (one the
			// kernel still holds would be provided twice).
			if invariants.Enabled {
				invariants.Check(false, "loop %d: a receive named provided buffer %d, which the loop holds", l.idx, id)
			}
			l.closeConn(c, "recv: a completion named a receive buffer the loop holds", zap.ErrorLevel)
			l.br.Publish()
			return
		}
		chunk := min(rest, l.br.BufSize())
		if chunk > 0 && !c.closing {
			if c.tls != nil {
				l.consumeTLS(c, l.br.Buf(id)[:chunk])
			} else {
				l.consume(c, l.br.Buf(id)[:chunk])
			}
		}
		rest -= chunk
		next := l.br.Next(id)
		l.br.Add(id)
		id = next
	}
	l.br.Publish()
}

// consume feeds received bytes to the framer. Once a bound mutes the
// connection, parsing stops at that frame and the rest waits in c.stash
// (copied: the provided buffer goes back to the kernel) until it unmutes; a
// recv that was already running when the mute was decided keeps appending
// there until its cancel lands. That is the one unavoidable overshoot of
// the bounds: within one io_uring_enter, the kernel's task work may fill
// every free provided buffer for a multishot recv before the loop sees a
// single completion, so a connection can hold its in-flight bound plus up
// to one buffer ring (ring.recv.buffers x ring.recv.buffer.bytes) of
// unparsed bytes. After a mute the connection stays on single-shot recvs
// (one buffer each) until it drains, so the overshoot happens once.
func (l *uloop) consume(c *uconn, data []byte) {
	if c.muted || len(c.stash) > 0 {
		l.stashBytes(c, data)
		return
	}
	n, err := c.fr.feed(data, c)
	if err != nil {
		l.closeConn(c, err.Error(), zap.WarnLevel)
		return
	}
	if n < len(data) && !c.closing {
		l.stashBytes(c, data[n:])
	}
	l.muteIfGrowRefused(c)
}

// stashBytes keeps unparsed bytes. They count toward the loop's bound
// (memory the loop holds) but not the connection's: the stash is parsed only
// after an unmute, so a connection bound that counted it could never clear
// once one multishot burst stashed more than ring.conn.max.inflight.bytes.
func (l *uloop) stashBytes(c *uconn, data []byte) {
	c.stash = append(c.stash, data...)
	l.queuedBytes += int64(len(data))
}

// drainStash parses stashed bytes after an unmute. It reports whether the
// stash is empty (the caller may re-arm recv).
func (l *uloop) drainStash(c *uconn) bool {
	if len(c.stash) == 0 {
		return true
	}
	n, err := c.fr.feed(c.stash, c)
	if err != nil {
		l.closeConn(c, err.Error(), zap.WarnLevel)
		return false
	}
	l.muteIfGrowRefused(c)
	l.queuedBytes -= int64(n)
	rest := copy(c.stash, c.stash[n:])
	c.stash = c.stash[:rest]
	if rest == 0 && cap(c.stash) > stashKeepMaxBytes {
		c.stash = nil
	}
	return rest == 0
}

// stashKeepMaxBytes: a larger emptied stash is returned to the GC.
const stashKeepMaxBytes = 256 << 10

// onFrame is the framer's sink: one request, on the loop thread. It returns
// false to stop parsing: the connection is closing or a bound muted it.
func (c *uconn) onFrame(frame []byte) bool {
	if c.closing || c.closeReq.Load() {
		return false
	}
	l := c.l
	seq := c.q.push(int32(len(frame)))
	c.inflightBytes += int64(len(frame))
	l.queuedBytes += int64(len(frame))
	l.s.opts.Handler.ServeFrame(Request{conn: c, sess: c.sess, gen: c.gen, seq: seq, tr: reqtrace.Begin(frame, c.recvNs)}, frame)
	if c.closeReq.Load() {
		return false
	}
	l.checkMute(c)
	return !c.muted
}
