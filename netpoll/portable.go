package netpoll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/reqtrace"
	"github.com/ringbroker/ringbroker/internal/tlsrec"
	"github.com/ringbroker/ringbroker/invariants"
)

// The portable backend serves the same Handler contract on Go's net package,
// for hosts where io_uring is missing or blocked. Each connection has a reader
// goroutine (it plays the loop's part: it feeds the framer and calls the
// handler) and a writer goroutine that sends answered slots in order.
//
// Concurrency: pconn.mu guards the queue, the accounting and closed/draining;
// pconn.cond (on mu) wakes the writer when a slot is answered and the reader
// when a bound clears. Lock order: portableServer.mu before pconn.mu.
type portableServer struct {
	serverBase
	lns []net.Listener

	mu       sync.Mutex
	conns    map[*pconn]struct{}
	closing  bool
	waiters  map[*pconn]struct{} // conns muted by the server-wide bound
	connsWG  sync.WaitGroup
	acceptWG sync.WaitGroup

	growWaiters atomic.Int32
	queuedBytes atomic.Int64

	// TLS (tls.go): handshakes in progress (bounded by MaxHandshaking)
	// and their sockets, closed by shutdown (under mu).
	handshaking    atomic.Int64
	handshakeConns map[net.Conn]struct{}
	handshakeLog   rateLogger
}

// tcpListen is a plain TCP listener. Go (1.24 on) listens with Multipath
// TCP by default where the kernel has it; a socket accepted from an MPTCP
// listener serves a plain TCP client as TCP, but the kernel does not mark
// it as able to send zero-copy (SOCK_SUPPORT_ZC comes from the listener),
// so IORING_OP_SEND_ZC on it fails with EOPNOTSUPP (kernel 6.18). Kafka
// speaks plain TCP, as do our io_uring listeners (uring_listen.go).
var tcpListen = func() net.ListenConfig {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc
}()

// bindListeners binds every address, or none: on an error the ones
// already bound are closed.
func bindListeners(addrs []string) ([]net.Listener, error) {
	var lns []net.Listener
	for _, addr := range addrs {
		ln, err := tcpListen.Listen(context.Background(), "tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("listener %q: port already in use by another process (another broker on this port?): %w", addr, err)
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func listenPortable(opts Options) (*portableServer, error) {
	s := &portableServer{
		conns:          make(map[*pconn]struct{}),
		waiters:        make(map[*pconn]struct{}),
		handshakeConns: make(map[net.Conn]struct{}),
	}
	s.init(opts, opts.MaxQueuedBytes)
	s.turn.onRelease = s.wakeGlobalWaiters
	s.lns = opts.bound
	if s.lns == nil {
		lns, err := bindListeners(opts.Listeners)
		if err != nil {
			return nil, err
		}
		s.lns = lns
	}
	for i, ln := range s.lns {
		s.acceptWG.Add(1)
		go s.acceptLoop(i, ln)
	}
	return s, nil
}

func (s *portableServer) addrs() []net.Addr {
	out := make([]net.Addr, len(s.lns))
	for i, ln := range s.lns {
		out[i] = ln.Addr()
	}
	return out
}

func (s *portableServer) stats() Stats {
	s.mu.Lock()
	n := int64(len(s.conns))
	s.mu.Unlock()
	return s.statsWith(n)
}

func (s *portableServer) acceptLoop(listener int, ln net.Listener) {
	defer s.acceptWG.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: pause and retry, never spin (accept.go).
			backoff = nextAcceptBackoff(backoff)
			s.acceptFails.failed(s.opts.Logger, err, backoff, zap.String("backend", BackendPortable))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		var key peerKey
		if s.limits != nil {
			if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
				key = peerKeyOf(ta.IP)
			}
			if ok, reason := s.limits.admit(key); !ok {
				nc.Close()
				s.limits.refuse(nc.RemoteAddr(), reason, BackendPortable)
				continue
			}
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if layer := s.opts.secureLayer(listener); layer != nil {
			s.startHandshake(listener, layer, nc, key)
			continue
		}
		if !s.serve(nc, key, false, func() Session { return s.openSession(listener, nc.RemoteAddr()) }) {
			return
		}
	}
}

// serve starts the reader and writer of an accepted (and, on a TLS
// listener, handshaken) connection; false when the server is closing
// (nc is closed then). open creates its Session.
func (s *portableServer) serve(nc net.Conn, key peerKey, secure bool, open func() Session) bool {
	c := &pconn{s: s, nc: nc, addr: nc.RemoteAddr().String(), fr: framer{maxFrameBytes: s.opts.MaxFrameBytes}, peer: key, limited: s.limits != nil, secure: secure}
	c.cond.L = &c.mu
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		if c.limited {
			s.limits.release(key)
		}
		return false
	}
	s.conns[c] = struct{}{}
	s.connsWG.Add(2)
	s.mu.Unlock()
	c.sess = open()
	s.accepted.Add(1)
	s.opts.Metrics.ConnOpened()
	go c.readLoop()
	go c.writeLoop()
	return true
}

// startHandshake runs the TLS handshake of a connection accepted on a
// TLS listener on a goroutine of its own, bounded in time
// (HandshakeTimeout) and in number (MaxHandshaking), then serves it.
// Nothing of the connection reaches the Handler before the handshake
// completed; a failed handshake closes it with a rate-limited log line.
func (s *portableServer) startHandshake(listener int, layer SecureLayer, nc net.Conn, key peerKey) {
	release := func() {
		if s.limits != nil {
			s.limits.release(key)
		}
	}
	if s.handshaking.Add(1) > int64(s.opts.MaxHandshaking) {
		s.handshaking.Add(-1)
		nc.Close()
		release()
		s.handshakeLog.log(s.opts.Logger, "TLS connection refused: too many handshakes in progress (ring.ssl.max.handshaking)", zap.String("remote", nc.RemoteAddr().String()), zap.Int("limit", s.opts.MaxHandshaking))
		return
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.handshaking.Add(-1)
		nc.Close()
		release()
		return
	}
	s.handshakeConns[nc] = struct{}{}
	s.acceptWG.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.acceptWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.HandshakeTimeout)
		var (
			sc      SecureConn
			records *tlsrec.Conn
			err     error
		)
		if ll, ok := layer.(LoopLayer); ok && s.opts.adopt != nil {
			sc, records, err = ll.HandshakeForLoop(ctx, nc)
			if errors.Is(err, tlsrec.ErrNotEligible) {
				err = nil // TLS 1.2 or a suite the loops do not serve: stay here
			}
			if sc == nil && err != nil {
				sc = layer.Server(nc) // only to close it below
			}
		} else {
			sc = layer.Server(nc)
			err = sc.HandshakeContext(ctx)
		}
		cancel()
		s.handshaking.Add(-1)
		s.mu.Lock()
		delete(s.handshakeConns, nc)
		s.mu.Unlock()
		if err != nil {
			sc.Close()
			release()
			s.handshakeLog.log(s.opts.Logger, "TLS handshake failed", zap.String("remote", nc.RemoteAddr().String()), zap.Error(err))
			return
		}
		state := sc.ConnectionState()
		if records != nil {
			// TLS 1.3 on an AEAD suite: a ring loop takes the connection
			// over (tls_loop.go); nothing of it stays here.
			sess := s.openTLSSession(listener, nc.RemoteAddr(), &state)
			if err := s.opts.adopt(nc, records, key, sess); err != nil {
				sessionDone(sess)
				nc.Close()
				release()
			}
			return
		}
		s.serve(sc, key, true, func() Session { return s.openTLSSession(listener, nc.RemoteAddr(), &state) })
	}()
}

func (s *portableServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for _, ln := range s.lns {
		ln.Close()
	}
	for nc := range s.handshakeConns {
		nc.Close() // its handshake fails at once
	}
	conns := make([]*pconn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.acceptWG.Wait()
	for _, c := range conns {
		c.mu.Lock()
		c.draining = true
		c.cond.Broadcast()
		c.mu.Unlock()
		_ = c.nc.SetReadDeadline(time.Now()) // stop reading new requests
	}
	done := make(chan struct{})
	go func() { s.connsWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.mu.Lock()
			c.closeLocked("shutdown deadline")
			c.mu.Unlock()
		}
		<-done
		return ctx.Err()
	}
}

// wakeGlobalWaiters un-mutes connections that stopped on the server-wide
// bound, once it has cleared.
func (s *portableServer) wakeGlobalWaiters() {
	s.mu.Lock()
	for c := range s.waiters {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	}
	s.mu.Unlock()
}

type pconn struct {
	s    *portableServer
	nc   net.Conn
	addr string
	fr   framer // reader goroutine only
	// recvNs: when the last read returned (reqtrace stamp; reader
	// goroutine only, set only while tracing).
	recvNs int64
	// peer is the client IP counted by the server's connLimiter while
	// limited is true; set at accept, released once in finishLocked.
	peer    peerKey
	limited bool
	// sess is the handler's Session (Options.Sessions), set before the
	// reader starts and Done when it stops (it alone calls ServeFrame).
	sess Session
	// secure: nc is a SecureConn (a TLS listener): file regions are read
	// and written through it, not sent with sendfile.
	secure bool

	mu            sync.Mutex
	cond          sync.Cond
	q             orderedQueue
	inflightBytes int64
	closed        bool
	draining      bool
	// throttleEnd is the end of a throttled answer's quiet period (zero:
	// none); throttleTimer wakes the reader at it.
	throttleEnd   time.Time
	throttleTimer *time.Timer
}

func (c *pconn) remoteAddr() string { return c.addr }

func (c *pconn) copies() *copyBudget { return &c.s.copies }

// runOnLoop: the portable backend has no loop thread (Request.RunOnLoop).
func (c *pconn) runOnLoop(func()) bool { return false }

// hold is the framer's frameHolder, on the reader goroutine: a spanning
// frame's buffer may grow within one receive buffer, within
// MaxQueuedBytes, or with the oversize turn (budget.go); otherwise the
// reader waits here — the connection is not read meanwhile — until one of
// them holds or the connection closes (false).
func (c *pconn) hold(f *framer, delta int) bool {
	s, d := c.s, int64(delta)
	fits := func() bool { return s.bounds.growFits(f, delta, s.queuedBytes.Load(), &s.turn) }
	if !fits() {
		s.growWaiters.Add(1)
		s.connMuted()
		s.mu.Lock()
		s.waiters[c] = struct{}{}
		s.mu.Unlock()
		c.mu.Lock()
		for !c.closed && !fits() {
			c.cond.Wait()
		}
		closed := c.closed
		c.mu.Unlock()
		s.mu.Lock()
		delete(s.waiters, c)
		s.mu.Unlock()
		s.connUnmuted()
		s.growWaiters.Add(-1)
		if closed {
			return false
		}
	}
	if s.queuedBytes.Add(d) < s.bounds.loopBytes && d < 0 && s.growWaiters.Load() > 0 {
		s.wakeGlobalWaiters()
	}
	return true
}

// tryHold is hold without waiting (frameTryHolder): false when the growth
// does not fit now.
func (c *pconn) tryHold(f *framer, delta int) bool {
	s := c.s
	if !s.bounds.growFits(f, delta, s.queuedBytes.Load(), &s.turn) {
		return false
	}
	s.queuedBytes.Add(int64(delta))
	return true
}

// spanDone ends the oversize turn of a completed frame.
func (c *pconn) spanDone(f *framer) { c.s.turn.release(f) }

func (c *pconn) readLoop() {
	defer c.s.connsWG.Done()
	defer func() { // the framer is ours: give back what it holds
		c.s.turn.release(&c.fr)
		c.fr.discard(c)
		sessionDone(c.sess)
	}()
	buf := make([]byte, c.s.opts.RecvBufferBytes)
	var pending []byte // bytes read but not parsed: a bound stopped the framer
	for {
		if !c.waitUnmuted() {
			return
		}
		if len(pending) > 0 {
			n, ferr := c.fr.feed(pending, c)
			if ferr != nil {
				c.close(ferr.Error(), zap.WarnLevel)
				return
			}
			pending = pending[n:]
			continue
		}
		if !c.armReadDeadline() {
			continue // throttled meanwhile: wait it out first
		}
		n, err := c.nc.Read(buf)
		if reqtrace.Enabled() {
			c.recvNs = reqtrace.Now() // the receive stamp of the frames it completes
		}
		if n > 0 && err == nil && c.throttled() {
			// The answer's throttle raced this read (the deadline that
			// complete set lost to the bytes): they wait, unparsed, for
			// the quiet period to end, as io_uring's stash does.
			c.s.opts.Metrics.BytesIn(n)
			pending = buf[:n]
			continue
		}
		if n > 0 {
			c.s.opts.Metrics.BytesIn(n)
			k, ferr := c.fr.feed(buf[:n], c)
			if ferr != nil {
				c.close(ferr.Error(), zap.WarnLevel)
				return
			}
			pending = buf[k:n]
		}
		if err != nil {
			c.mu.Lock()
			draining, idle := c.draining, c.q.len() == 0
			c.mu.Unlock()
			switch {
			case draining:
				return // the writer closes once the queue is sent
			case errors.Is(err, os.ErrDeadlineExceeded) && c.throttled():
				continue // a throttled answer cut the read short
			case errors.Is(err, os.ErrDeadlineExceeded) && !idle:
				continue // requests in flight: not idle
			case errors.Is(err, os.ErrDeadlineExceeded):
				c.close("idle for connections.max.idle.ms", zap.InfoLevel)
			case errors.Is(err, io.EOF) && !c.fr.pending():
				c.close("client closed", zap.DebugLevel)
			default:
				c.close("read: "+err.Error(), zap.DebugLevel)
			}
			return
		}
	}
}

// armReadDeadline sets the next read's deadline (connections.max.idle.ms,
// or none) unless a throttled answer arrived since waitUnmuted (false).
// Under c.mu, so that complete either sees this deadline and cuts it
// short, or is seen here.
func (c *pconn) armReadDeadline() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.throttleEnd.IsZero() {
		return false
	}
	var d time.Time
	switch {
	case c.draining:
		d = time.Now() // shutdown: read nothing new
	case c.s.opts.IdleTimeout > 0:
		d = time.Now().Add(c.s.opts.IdleTimeout)
	}
	_ = c.nc.SetReadDeadline(d)
	return true
}

// throttled reports whether a throttled answer's quiet period is set.
func (c *pconn) throttled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.throttleEnd.IsZero()
}

// waitUnmuted blocks while a bound is exceeded; false means the connection
// is closed.
func (c *pconn) waitUnmuted() bool {
	s := c.s
	c.mu.Lock()
	defer c.mu.Unlock()
	counted, registered := false, false
	for !c.closed {
		// The mute rule (mute.go), as on io_uring: the server-wide bound
		// holds only connections with a request in flight, so clients that
		// never read cannot starve the others; the writer's Broadcast wakes
		// us when our own queue drains.
		why := s.bounds.muteCause(c.q.len(), c.inflightBytes, s.queuedBytes.Load())
		if !c.throttleEnd.IsZero() {
			if wait := time.Until(c.throttleEnd); wait > 0 {
				why |= muteThrottle
				c.armThrottleTimerLocked(wait)
			} else {
				c.throttleEnd = time.Time{}
			}
		}
		if why == 0 {
			break
		}
		if !counted {
			counted = true
			s.connMuted()
		}
		if why&muteLoop != 0 && !registered {
			// Register for the server-wide wake-up, then look again at
			// everything: c.mu is let go meanwhile, so the writer may have
			// sent our last answer (its Broadcast found nobody waiting) or
			// the bound may have cleared. Looking only at the bound here
			// once left a connection waiting for good on its own drained
			// queue while clients that never read held the bound.
			registered = true
			c.mu.Unlock()
			s.mu.Lock()
			s.waiters[c] = struct{}{}
			s.mu.Unlock()
			if testHookRegistered != nil {
				testHookRegistered(c)
			}
			c.mu.Lock()
			continue
		}
		c.cond.Wait()
	}
	if counted {
		s.connUnmuted()
		c.mu.Unlock()
		s.mu.Lock()
		delete(s.waiters, c)
		s.mu.Unlock()
		c.mu.Lock()
	}
	return !c.closed
}

// testHookRegistered, when set by a test, runs in waitUnmuted between the
// connection's registration as a server-wide waiter and its next look at the
// bounds, with no lock held.
var testHookRegistered func(c *pconn)

// onFrame runs on the reader goroutine.
func (c *pconn) onFrame(frame []byte) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	seq := c.q.push(int32(len(frame)))
	c.inflightBytes += int64(len(frame))
	c.mu.Unlock()
	c.s.queuedBytes.Add(int64(len(frame)))
	c.s.opts.Handler.ServeFrame(Request{conn: c, sess: c.sess, seq: seq, tr: reqtrace.Begin(frame, c.recvNs)}, frame)
	// Stop parsing at a bound; readLoop keeps the rest until it clears.
	c.mu.Lock()
	over := c.closed || c.s.bounds.overConn(c.q.len(), c.inflightBytes)
	c.mu.Unlock()
	return !over && c.s.queuedBytes.Load() < c.s.bounds.loopBytes
}

func (c *pconn) complete(_ uint32, seq uint32, kind completionKind, buf *Buffer, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if buf != nil && buf.trace != nil {
		buf.trace.Mark(reqtrace.LoopTook)
	}
	if c.closed {
		buf.Release()
		return
	}
	switch kind {
	case completeClose:
		c.closeLockedLevel(reason, zap.WarnLevel)
		return
	case completeNoReply:
		if buf != nil { // NoReplyThrottled
			if buf.throttle > 0 {
				c.throttleEnd = throttleUntil(c.throttleEnd, time.Now(), buf.throttle)
				_ = c.nc.SetReadDeadline(time.Now())
			}
			buf.Release()
		}
		buf = nil
	}
	if !c.q.complete(seq, buf) {
		buf.Release()
		return
	}
	if buf != nil {
		c.inflightBytes += buf.cost()
		c.s.queuedBytes.Add(buf.cost())
		if buf.throttle > 0 {
			c.throttleEnd = throttleUntil(c.throttleEnd, time.Now(), buf.throttle)
			_ = c.nc.SetReadDeadline(time.Now()) // a read in progress stops: not read meanwhile
		}
	}
	if invariants.Enabled {
		c.checkLocked()
	}
	c.cond.Broadcast()
}

// armThrottleTimerLocked makes sure the reader is woken after wait (the end
// of the quiet period). REQUIRES: c.mu held.
func (c *pconn) armThrottleTimerLocked(wait time.Duration) {
	if c.throttleTimer == nil {
		c.throttleTimer = time.AfterFunc(wait, func() {
			c.mu.Lock()
			c.cond.Broadcast()
			c.mu.Unlock()
		})
		return
	}
	c.throttleTimer.Reset(wait)
}

func (c *pconn) writeLoop() {
	defer c.s.connsWG.Done()
	bufs := make([]*Buffer, 0, 64)
	vecs := make(net.Buffers, 0, 64)
	var copyBuf []byte // TLS only: file bytes on their way to encryption
	for {
		c.mu.Lock()
		for !c.closed && !c.q.hasUnsent() {
			if c.draining && c.q.len() == 0 {
				c.closeLocked("shutdown")
				break
			}
			c.cond.Wait()
		}
		if c.closed {
			c.finishLocked()
			c.mu.Unlock()
			return
		}
		bufs = c.q.nextReady(bufs[:0], cap(bufs))
		c.mu.Unlock()
		if reqtrace.Enabled() {
			for _, b := range bufs {
				b.trace.Mark(reqtrace.SendQueued)
			}
		}

		var err error
		if len(bufs) == 1 && bufs[0].hasFiles() && c.secure {
			err = writeCopyingFiles(c.nc, bufs[0], &copyBuf)
			n := len(bufs[0].B)
			for _, f := range bufs[0].Files {
				n += int(f.Len)
			}
			c.s.opts.Metrics.BytesOut(n)
		} else if len(bufs) == 1 && bufs[0].hasFiles() {
			err = writeWithFiles(c.nc, bufs[0])
			n := len(bufs[0].B)
			for _, f := range bufs[0].Files {
				n += int(f.Len)
			}
			c.s.opts.Metrics.BytesOut(n)
		} else if len(bufs) > 0 {
			vecs = vecs[:0]
			for _, b := range bufs {
				vecs = append(vecs, b.B)
			}
			w := vecs // WriteTo consumes its receiver
			var n int64
			n, err = w.WriteTo(c.nc)
			c.s.opts.Metrics.BytesOut(int(n))
		}

		c.mu.Lock()
		req, resp := c.q.popSent()
		if c.q.closeNow && err == nil {
			err = errClosedAfterReply
		}
		c.inflightBytes -= req + resp
		before := c.s.queuedBytes.Add(-(req + resp)) + req + resp
		if invariants.Enabled {
			c.checkLocked()
			invariants.Check(before-req-resp >= 0, "portable: queuedBytes %d after a send", before-req-resp)
		}
		c.cond.Broadcast()
		if err == errClosedAfterReply {
			c.closeLocked(err.Error())
		} else if err != nil {
			c.closeLocked("write: " + err.Error())
		}
		c.mu.Unlock()
		if (before >= c.s.bounds.loopBytes || c.s.growWaiters.Load() > 0) && before-req-resp < c.s.bounds.loopBytes {
			c.s.wakeGlobalWaiters()
		}
	}
}

// errClosedAfterReply closes a connection after a ReplyThenClose response.
var errClosedAfterReply = errors.New("closed after its response (ReplyThenClose)")

func (c *pconn) close(reason string, level zapLevel) {
	c.mu.Lock()
	c.closeLockedLevel(reason, level)
	c.mu.Unlock()
}

func (c *pconn) closeLocked(reason string) { c.closeLockedLevel(reason, zap.DebugLevel) }

// closeLockedLevel marks the connection closed and closes the socket; the
// writer goroutine releases what is queued (it may be sending those buffers
// right now). REQUIRES: c.mu held.
func (c *pconn) closeLockedLevel(reason string, level zapLevel) {
	if c.closed {
		return
	}
	c.closed = true
	c.nc.Close()
	if c.throttleTimer != nil {
		c.throttleTimer.Stop()
	}
	c.cond.Broadcast()
	c.s.opts.Logger.Check(level, "connection closed").Write(zap.String("remote", c.addr), zap.String("reason", reason), zap.String("backend", BackendPortable))
}

// finishLocked runs once on the writer goroutine after close.
// REQUIRES: c.mu held.
func (c *pconn) finishLocked() {
	c.q.releaseAll()
	c.s.queuedBytes.Add(-c.inflightBytes)
	c.inflightBytes = 0
	c.mu.Unlock()
	c.s.mu.Lock()
	delete(c.s.conns, c)
	delete(c.s.waiters, c)
	c.s.mu.Unlock()
	c.s.opts.Metrics.ConnClosed()
	if c.limited {
		c.limited = false
		c.s.limits.release(c.peer)
	}
	c.s.wakeGlobalWaiters()
	c.mu.Lock()
}

// checkLocked asserts c's in-flight accounting: its in-flight bytes are what
// its ordered queue holds (request bytes plus the cost of answered
// responses). Call it under invariants.Enabled. REQUIRES: c.mu held.
func (c *pconn) checkLocked() {
	q := c.q.bytes()
	invariants.Check(c.inflightBytes == q, "portable: %s counts %d bytes in flight, its queue holds %d", c.addr, c.inflightBytes, q)
}
