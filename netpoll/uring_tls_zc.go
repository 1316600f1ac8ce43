//go:build linux

package netpoll

import (
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/ring"
)

// Registered TLS send buffers (Options.TLSSendZC, issue 19): a loop's TLS
// connections seal their records into a fixed pool of off-heap buffers
// registered with the loop's ring (IORING_REGISTER_BUFFERS) and send them
// with SEND_ZC from the registered buffer (IORING_RECVSEND_FIXED_BUF), so
// the kernel neither copies nor pins the pages at each send.
//
//   - The pool is tlsRegBufs buffers of tlsOutBytes per loop, allocated and
//     registered at setup; a connection holds one while it sends (counted
//     in queuedBytes like the heap buffer, tlsAccount). With the pool empty
//     a connection waits in the loop's FIFO (c.sending stays true, so
//     nothing else starts a send for it) and starts when a buffer returns:
//     nothing is allocated.
//   - SEND_ZC completes twice: the result (CQE_F_MORE set), then the
//     notification that the kernel let go of the buffer. The send counts as
//     one operation until the notification: only then is the result
//     handled, so the buffer is refilled, or returned to the pool, only
//     once the kernel is done with it. A short send sends the rest from the
//     same buffer. A connection closed with a send in flight is freed (and
//     its buffer returned) by maybeFree once that last CQE arrived.
//   - Setup probes SEND_ZC; without it, or when the registration fails
//     (RLIMIT_MEMLOCK), the loop logs why and uses heap buffers and
//     SENDMSG (uring_tls.go).

// tlsRegBufs is the number of registered TLS send buffers per loop
// (8 x 532 KiB = 4.2 MiB): 8 TLS connections of a loop send at once.
const tlsRegBufs = 8

type tlsRegPool struct {
	bufs    []ring.Buffer
	free    []uint16
	waiters []*uconn // FIFO; a closed connection leaves it (dropTLSWaiter)
	// zcRefused: a SEND_ZC failed with EOPNOTSUPP (tlsZCRefused).
	zcRefused bool
}

// setupTLSReg allocates and registers the loop's TLS send buffers, or
// logs why the loop sends TLS from heap buffers.
func (l *uloop) setupTLSReg() {
	fallback := func(why string, err error) {
		l.s.opts.Logger.Info("TLS sends use heap buffers and SENDMSG", zap.Int("loop", l.idx), zap.String("why", why), zap.Error(err))
	}
	p, err := l.r.Probe()
	if err != nil {
		fallback("io_uring probe failed", err)
		return
	}
	if !p.Supported(ring.OpSendZC) {
		fallback("kernel has no IORING_OP_SEND_ZC", nil)
		return
	}
	pool := &tlsRegPool{}
	for i := 0; i < tlsRegBufs; i++ {
		b, err := ring.AllocBuffer(tlsOutBytes)
		if err != nil {
			l.tlsReg = pool
			l.freeTLSReg()
			fallback("allocating send buffers failed", err)
			return
		}
		pool.bufs = append(pool.bufs, b)
		pool.free = append(pool.free, uint16(i))
	}
	if err := l.r.RegisterBuffers(pool.bufs); err != nil {
		l.tlsReg = pool
		l.freeTLSReg()
		fallback("registering send buffers failed", err)
		return
	}
	l.tlsReg = pool
	l.s.opts.Logger.Info("TLS sends use SEND_ZC from registered buffers", zap.Int("loop", l.idx),
		zap.Int("buffers", tlsRegBufs), zap.Int("buffer_bytes", tlsOutBytes))
}

// freeTLSReg unmaps the buffers (the ring is closed, or never had them).
func (l *uloop) freeTLSReg() {
	if l.tlsReg == nil {
		return
	}
	for _, b := range l.tlsReg.bufs {
		_ = b.Free()
	}
	l.tlsReg = nil
}

// startTLSReg gives c a registered buffer for a new send (c.ts reset), or
// queues c until one returns (false).
func (l *uloop) startTLSReg(c *uconn) bool {
	p := l.tlsReg
	n := len(p.free)
	if n == 0 {
		if !c.ts.waiting {
			c.ts = tlsSend{waiting: true}
			p.waiters = append(p.waiters, c)
		}
		c.sending = true
		return false
	}
	i := p.free[n-1]
	p.free = p.free[:n-1]
	l.s.tlsRegHeld.Add(1)
	c.ts = tlsSend{out: p.bufs[i].Bytes()[:0:tlsOutBytes], reg: int(i) + 1}
	return true
}

// putTLSReg returns buffer i to the pool and starts the first waiting
// connection's send with it.
func (l *uloop) putTLSReg(i int) {
	p := l.tlsReg
	p.free = append(p.free, uint16(i))
	l.s.tlsRegHeld.Add(-1)
	for len(p.waiters) > 0 {
		c := p.waiters[0]
		copy(p.waiters, p.waiters[1:])
		p.waiters[len(p.waiters)-1] = nil
		p.waiters = p.waiters[:len(p.waiters)-1]
		c.ts.waiting = false
		c.sending = false
		if c.closing { // closed while it waited: nothing to send
			l.maybeFree(c)
			continue
		}
		l.startTLSSend(c)
		return
	}
}

// dropTLSWaiter takes a connection being freed out of the queue.
func (l *uloop) dropTLSWaiter(c *uconn) {
	if l.tlsReg == nil || !c.ts.waiting {
		return
	}
	w := l.tlsReg.waiters
	for i := range w {
		if w[i] == c {
			copy(w[i:], w[i+1:])
			w[len(w)-1] = nil
			l.tlsReg.waiters = w[:len(w)-1]
			break
		}
	}
	c.ts.waiting = false
}

// submitTLSZC sends b (inside c's registered buffer) with SEND_ZC, or
// with SEND once the kernel refused SEND_ZC on the loop's sockets.
func (l *uloop) submitTLSZC(c *uconn, b []byte) {
	sqe := l.getSQE()
	c.ts.zc = !l.tlsReg.zcRefused
	if c.ts.zc {
		sqe.PrepSendZCFixed(c.fd, unsafe.Pointer(&b[0]), uint32(len(b)), unix.MSG_NOSIGNAL, uint16(c.ts.reg-1))
		l.s.tlsZCSends.Add(1)
	} else {
		sqe.PrepSend(c.fd, unsafe.Pointer(&b[0]), uint32(len(b)), unix.MSG_NOSIGNAL)
	}
	sqe.SetUserData(userData(kindSend, c.gen, c.idx))
	c.sending = true
	l.opStarted(c)
	l.s.tlsRegSends.Add(1)
}

// tlsZCRefused handles a SEND_ZC the kernel refused (EOPNOTSUPP: the
// socket does not do zero-copy, as with sockets accepted from a Multipath
// TCP listener, which ours are not: portable.go, tcpListen): the loop's
// TLS sends go by SEND from the registered buffers from now on, and c's
// bytes, none of which left, go again.
func (l *uloop) tlsZCRefused(c *uconn) {
	if !l.tlsReg.zcRefused {
		l.tlsReg.zcRefused = true
		l.s.opts.Logger.Info("TLS sends: the kernel refuses SEND_ZC on this socket (EOPNOTSUPP); SEND from the registered buffers",
			zap.Int("loop", l.idx))
	}
	l.tlsSubmit(c)
}

// zcCompletion folds SEND_ZC's two CQEs into one: false for the first
// of two (its result is kept); true with a CQE carrying the send's result
// once the last has arrived.
func (ts *tlsSend) zcCompletion(cqe *ring.CQE) (*ring.CQE, bool) {
	if cqe.More() {
		ts.zcRes = cqe.Res
		return nil, false
	}
	if cqe.Notif() {
		return &ring.CQE{UserData: cqe.UserData, Res: ts.zcRes}, true
	}
	return cqe, true // a failed send: no notification follows
}
