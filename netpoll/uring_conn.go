//go:build linux

package netpoll

import (
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/internal/tlsrec"
	"github.com/ringbroker/ringbroker/invariants"
	"github.com/ringbroker/ringbroker/ring"
)

// Connection lifecycle on an io_uring loop: accept (with the back-off after
// a failed accept), a new connection's slot, close and the slot's reuse once
// every operation submitted for it has completed.

// uconn is one connection on a loop. Everything here is owned by the loop
// thread except closeReq, which handlers set from any goroutine.
type uconn struct {
	l     *uloop
	idx   uint32
	gen   uint32
	fd    int
	addr  string
	fr    framer
	q     orderedQueue
	dirty bool
	// peer is the client IP counted by the server's connLimiter while
	// limited is true; maybeFree releases it when the socket closes.
	peer    peerKey
	limited bool
	// sess is the handler's Session (Options.Sessions); Done when the
	// slot is freed.
	sess Session
	// recvNs: when the last receive completion was handled (reqtrace
	// stamp; loop only, set only while tracing).
	recvNs int64

	recvArmed bool
	sending   bool
	muted     bool
	pressured bool // hit a bound since it last drained: single-shot recv
	closing   bool
	closeReq  atomic.Bool
	ops       int

	inflightBytes int64
	// mailed: answers of c still in the loop's mailbox (any goroutine adds).
	mailed atomic.Int64
	// growWant > 0: the framer was refused a growth of that many bytes; c
	// stays muted while the growth does not fit (growCause).
	growWant   int64
	lastActive time.Time
	// throttleEnd is the end of a throttled answer's quiet period (zero:
	// none): c stays muted until then (muteThrottle).
	throttleEnd time.Time
	// stash holds received bytes not yet parsed because the connection is
	// muted (heap: the provided buffers they arrived in are recycled).
	stash []byte

	// The in-flight SENDMSG: the kernel reads msg, iov and the buffers they
	// point at until the completion; all live here, on the heap, reachable.
	msg       unix.Msghdr
	iov       [maxSendIovecs]unix.Iovec
	sendBufs  []*Buffer
	sendTotal int
	sendDone  int
	fs        fileSend

	// tls is the record layer of a TLS connection adopted after its
	// handshake (uring_tls.go), nil for plaintext; ts is its send.
	tls *tlsrec.Conn
	ts  tlsSend
	// tlsHeld: bytes of tls's reassembly buffer and ts's send buffer
	// counted in the loop's queuedBytes.
	tlsHeld int64
}

func (l *uloop) armAccept(i int) {
	sqe := l.getSQE()
	sqe.PrepAccept(l.lfds[i], true)
	sqe.OpFlags = unix.SOCK_CLOEXEC
	sqe.SetUserData(userData(kindAccept, 0, uint32(i)))
	l.accepting[i] = true
	l.ops++
}

func (l *uloop) onAccept(i int, cqe *ring.CQE) {
	if !cqe.More() {
		l.ops--
		l.accepting[i] = false
	}
	if cqe.Res >= 0 {
		fd := int(cqe.Res)
		if l.draining {
			unix.Close(fd)
		} else {
			l.newConn(fd, i)
		}
		l.acceptBackoff = 0
	} else if errno := unix.Errno(-cqe.Res); errno != unix.ECANCELED {
		// EMFILE and friends: the connection stays in the backlog and an
		// accept re-armed now fails again at once. Pause every listener of
		// the loop; run re-arms them when the pause is over (accept.go).
		l.acceptBackoff = nextAcceptBackoff(l.acceptBackoff)
		l.acceptResumeAt = l.now.Add(l.acceptBackoff)
		l.s.acceptFails.failed(l.s.opts.Logger, errno, l.acceptBackoff, zap.String("backend", BackendUring), zap.Int("loop", l.idx))
		if l.accepting[i] { // a multishot that goes on failing: stop it
			sqe := l.getSQE()
			sqe.PrepCancel(userData(kindAccept, 0, uint32(i)), 0)
			sqe.SetUserData(userData(kindIgnore, 0, 0))
		}
		return
	}
	if !l.accepting[i] && !l.draining && !l.acceptPaused() {
		l.armAccept(i)
	}
}

// acceptPaused reports whether accepting waits after a failure.
func (l *uloop) acceptPaused() bool { return l.acceptBackoff > 0 && l.now.Before(l.acceptResumeAt) }

// resumeAccept re-arms the listeners whose accept ended, once a pause after
// a failed accept is over.
func (l *uloop) resumeAccept() {
	if l.draining || l.acceptPaused() {
		return
	}
	for i := range l.lfds {
		if !l.accepting[i] {
			l.armAccept(i)
		}
	}
}

func (l *uloop) newConn(fd, listener int) {
	sa, peerErr := unix.Getpeername(fd)
	var peer *net.TCPAddr
	if peerErr == nil {
		peer = sockaddrToTCP(sa)
	}
	var key peerKey
	if l.s.limits != nil {
		if peer != nil {
			key = peerKeyOf(peer.IP)
		}
		if ok, reason := l.s.limits.admit(key); !ok {
			unix.Close(fd)
			l.s.limits.refuse(peer, reason, BackendUring)
			return
		}
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	var remote net.Addr
	if peer != nil {
		remote = peer
	}
	l.setupConn(fd, peer, key, l.s.limits != nil, l.s.openSession(listener, remote), nil)
}

// setupConn gives an accepted (or adopted: tls_loop.go) connection a slot
// and starts receiving. records is its TLS record layer, nil for
// plaintext.
func (l *uloop) setupConn(fd int, peer *net.TCPAddr, key peerKey, limited bool, sess Session, records *tlsrec.Conn) {
	var c *uconn
	if n := len(l.free); n > 0 {
		c = l.conns[l.free[n-1]]
		l.free = l.free[:n-1]
	} else {
		c = &uconn{l: l, idx: uint32(len(l.conns))}
		c.fr.maxFrameBytes = l.s.opts.MaxFrameBytes
		l.conns = append(l.conns, c)
	}
	c.fd = fd
	c.gen = (c.gen + 1) & 0xffffff
	c.closing, c.muted, c.pressured = false, false, false
	c.throttleEnd = time.Time{}
	c.closeReq.Store(false)
	c.lastActive = l.now
	c.addr = ""
	if peer != nil {
		c.addr = peer.String()
	}
	c.peer, c.limited = key, limited
	c.sess = sess
	c.tls = records
	l.open++
	l.s.opts.Metrics.ConnOpened()
	l.s.conns.Add(1)
	l.s.accepted.Add(1)
	l.armRecv(c)
}

func (c *uconn) remoteAddr() string { return c.addr }

func (c *uconn) runOnLoop(f func()) bool { return c.l.postRun(f) }

func (c *uconn) copies() *copyBudget { return &c.l.s.copies }

// closeConn starts closing c: shutdown() makes its outstanding recv and
// send complete; the slot is freed (maybeFree) once they have.
func (l *uloop) closeConn(c *uconn, reason string, level zapLevel) {
	if c.closing {
		return
	}
	c.closing = true
	if c.tls != nil {
		l.tlsClosing(c)
	}
	if c.muted {
		c.muted = false
		l.s.connUnmuted()
	}
	_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
	l.s.opts.Logger.Check(level, "connection closed").Write(
		zap.String("remote", c.addr), zap.String("reason", reason),
		zap.String("backend", BackendUring), zap.Int("loop", l.idx))
	l.maybeFree(c)
}

func (l *uloop) maybeFree(c *uconn) {
	if !c.closing || c.ops > 0 || c.fd < 0 {
		return
	}
	unix.Close(c.fd)
	c.fd = -1
	if c.limited {
		c.limited = false
		l.s.limits.release(c.peer)
	}
	c.q.releaseAll()
	sessionDone(c.sess)
	c.sess = nil
	l.queuedBytes -= c.inflightBytes + int64(len(c.stash)) + int64(c.fr.held) + c.tlsHeld
	c.tlsHeld = 0
	if c.tls != nil {
		c.tls.Release()
		c.tls = nil
		l.dropTLSWaiter(c)
		l.putTLSOut(&c.ts)
		c.ts = tlsSend{}
	}
	c.inflightBytes = 0
	l.s.turn.release(&c.fr)
	c.growWant = 0
	if c.fr.mapped {
		releaseMapping(c.fr.partial)
	}
	c.fr = framer{maxFrameBytes: c.fr.maxFrameBytes}
	c.stash = nil
	c.gen = (c.gen + 1) & 0xffffff // answers still on their way are now stale
	if invariants.Enabled {
		invariants.Check(l.queuedBytes >= 0, "loop %d: queuedBytes %d after freeing slot %d", l.idx, l.queuedBytes, c.idx)
	}
	l.free = append(l.free, c.idx)
	l.open--
	l.s.opts.Metrics.ConnClosed()
	l.s.conns.Add(-1)
	if len(l.muted) > 0 {
		l.unmuteCleared()
	}
}

func (l *uloop) forceCloseAll(reason string) {
	for _, c := range l.conns {
		if c.fd >= 0 {
			l.closeConn(c, reason, zap.WarnLevel)
		}
	}
}
