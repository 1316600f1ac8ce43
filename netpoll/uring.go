//go:build linux

package netpoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/ring"
)

// The io_uring backend: Options.Loops event loops, each a goroutine locked to
// an OS thread pinned to one CPU, owning one ring created on that thread
// (SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN). Only the loop's thread
// touches its ring, connections and buffer ring. Other goroutines (handlers
// answering later, Shutdown) reach a loop through its mailbox: a
// mutex-guarded slice plus an eventfd the loop keeps a READ armed on; the
// eventfd is written only when the loop has said it is about to sleep.
//
// Per loop: one SO_REUSEPORT listener socket per configured listener with a
// multishot ACCEPT; per connection one multishot RECV into the loop's
// provided-buffer ring (off-heap) and at most one SENDMSG in flight, carrying
// the run of answered responses at the head of the ordered queue.
//
// The loop, one iteration:
//
//	drain mailbox -> answer slots, start sends
//	sleep in io_uring_enter(GETEVENTS, 1, timeout) unless the mailbox has work
//	copy out a batch of CQEs, then handle them (never recursively)
//	once a second: idle connections, shutdown deadline

const (
	kindAccept uint64 = iota + 1
	kindRecv
	kindSend
	kindWake
	kindIgnore // cancels: their CQE carries nothing we need
)

// userData packs kind | generation | index so a completion finds its record.
// Completions need no generation check: a connection slot is recycled only
// once every operation submitted for it has completed (c.ops == 0 in
// maybeFree), so no completion outlives its connection. The generation that
// matters is the one in Request: a handler's late answer for a closed and
// reused slot is dropped by that check in the mailbox (mailComplete).
func userData(kind uint64, gen, idx uint32) uint64 {
	return kind<<56 | uint64(gen&0xffffff)<<32 | uint64(idx)
}

func splitUserData(u uint64) (kind uint64, gen, idx uint32) {
	return u >> 56, uint32(u>>32) & 0xffffff, uint32(u)
}

const (
	cqeBatch      = 256
	maxSendIovecs = 64
	loopTick      = time.Second
	drainTick     = 20 * time.Millisecond
)

type uringServer struct {
	opts   Options
	bounds bounds
	loops  []*uloop
	bound  []net.Addr
	wg     sync.WaitGroup
	limits *connLimiter // nil: no connection limits

	acceptFails acceptFailLog
	turn        frameTurn  // the oversize-frame turn (budget.go)
	copies      copyBudget // bytes handlers copy into responses (budget.go)
	conns       atomic.Int64
	muted       atomic.Int64
	accepted    atomic.Int64
}

// fallbackAllowed reports whether a uring setup error lets auto fall back.
func fallbackAllowed(err error) bool {
	return errors.Is(err, ring.ErrUnavailable) || errors.Is(err, ring.ErrUnsupported)
}

func listenUring(opts Options) (*uringServer, error) {
	reserveProcs(opts.Loops)
	s := &uringServer{opts: opts, limits: newConnLimiter(opts.MaxConns, opts.MaxConnsPerIP, opts.Logger)}
	s.bounds = bounds{
		connRequests: opts.ConnMaxInflightRequests,
		connBytes:    opts.ConnMaxInflightBytes,
		loopBytes:    max(opts.MaxQueuedBytes/int64(opts.Loops), 1<<20),
	}
	s.copies.limit = opts.MaxQueuedBytes
	s.turn.onRelease = func() {
		for _, l := range s.loops {
			l.post(mail{kind: mailBudget})
		}
	}
	// Bind every loop's sockets up front: port 0 resolves once and the
	// other loops bind the same port. Loop 0's socket binds exclusively
	// first (listenSocket): a port another process holds is refused.
	addrs := append([]string(nil), opts.Listeners...)
	lfds := make([][]int, opts.Loops)
	closeAll := func() {
		for _, fds := range lfds {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}
	for li := range addrs {
		for i := 0; i < opts.Loops; i++ {
			fd, bound, err := listenSocket(addrs[li], i == 0)
			if err != nil {
				closeAll()
				return nil, err
			}
			lfds[i] = append(lfds[i], fd)
			if i == 0 {
				addrs[li] = net.JoinHostPort(bound.IP.String(), fmt.Sprint(bound.Port))
				s.bound = append(s.bound, bound)
			}
		}
	}
	errs := make(chan error, opts.Loops)
	for i := 0; i < opts.Loops; i++ {
		l := &uloop{s: s, idx: i, lfds: lfds[i], accepting: make([]bool, len(lfds[i]))}
		s.loops = append(s.loops, l)
		s.wg.Add(1)
		go l.run(errs)
	}
	var firstErr error
	for range s.loops {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		for _, l := range s.loops {
			l.post(mail{kind: mailShutdown, deadline: time.Now()})
		}
		s.wg.Wait()
		closeAll()
		return nil, firstErr
	}
	return s, nil
}

func (s *uringServer) addrs() []net.Addr { return s.bound }

// reservedProcs is how many Ps reserveProcs has added to GOMAXPROCS, and
// reservedAt the GOMAXPROCS it then set.
var (
	reservedMu    sync.Mutex
	reservedProcs int
	reservedAt    int
)

// reserveProcs adds one Go scheduler P per loop to GOMAXPROCS (once per
// process, for the largest server). A loop thread sleeps in io_uring_enter
// still holding its P, and a goroutine the loop has just woken (a log
// writer, a worker) sits in that P's run queue: with no idle P, it waits for
// sysmon to retake the P from the syscall, up to ~10 ms later — which showed
// as a 100 ms produce p99. With a spare P per loop, the runtime starts the
// woken goroutine on another thread at once; the OS still multiplexes the
// real CPUs. If GOMAXPROCS was changed since (testing's -cpu sets it before
// every benchmark run), the current value is the new base.
func reserveProcs(loops int) {
	reservedMu.Lock()
	defer reservedMu.Unlock()
	cur := runtime.GOMAXPROCS(0)
	if cur != reservedAt {
		reservedProcs = 0
	}
	if loops <= reservedProcs {
		return
	}
	reservedAt = cur + loops - reservedProcs
	runtime.GOMAXPROCS(reservedAt)
	reservedProcs = loops
}

func (s *uringServer) stats() Stats {
	return Stats{Conns: s.conns.Load(), MutedConns: s.muted.Load(), Accepted: s.accepted.Load(), Refused: s.limits.refusedTotal()}
}

func (s *uringServer) shutdown(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Hour)
	}
	for _, l := range s.loops {
		l.post(mail{kind: mailShutdown, deadline: deadline})
	}
	s.wg.Wait()
	if time.Now().After(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

type mailKind uint8

const (
	mailComplete mailKind = iota + 1
	mailShutdown
	mailPing   // Server.Liveness (liveness.go)
	mailBudget // the oversize turn is free: muted connections may take it
)

type mail struct {
	kind     mailKind
	c        *uconn
	gen      uint32
	seq      uint32
	action   completionKind
	buf      *Buffer
	reason   string
	deadline time.Time
}

type uloop struct {
	s    *uringServer
	idx  int
	r    *ring.Ring
	br   *ring.BufRing
	lfds []int
	// accepting[i] is true while listener i's multishot accept is armed.
	accepting []bool

	conns []*uconn
	free  []uint32
	dirty []*uconn // conns with answered slots to send
	muted []*uconn
	pipes []*pipePair // idle pipes for splice
	// pressure: past half the loop's share of queued.max.request.bytes,
	// every receive is single-shot (checkLoopPressure).
	pressure bool
	// resumed is unmuteCleared's scratch list; unmuting guards re-entry.
	resumed  []*uconn
	unmuting bool

	queuedBytes int64
	// mailed is the size of responses answered but still in the mailbox
	// (Request.Reply adds, onComplete moves them to queuedBytes): counted
	// by the bounds from the moment they exist.
	mailed atomic.Int64
	open   int // connections not yet freed
	ops    int // SQEs whose final CQE has not arrived (accept, recv, send, wake)
	cqes   [cqeBatch]ring.CQE

	// mailbox (any goroutine -> loop)
	mbMu      sync.Mutex
	mb        []mail
	mbSpare   []mail
	mbLen     atomic.Int32
	sleeping  atomic.Bool
	wakeArmed atomic.Bool // an eventfd write is outstanding
	efd       int
	efdBuf    ring.Buffer
	wakeReady bool // READ on the eventfd is armed
	live      loopLiveness

	// acceptBackoff is the pause after the last failed accept (0 after a
	// success); no listener is re-armed before acceptResumeAt.
	acceptBackoff  time.Duration
	acceptResumeAt time.Time

	draining      bool
	drainDeadline time.Time
	now           time.Time
	lastTick      time.Time
}

func (l *uloop) post(m mail) {
	l.mbMu.Lock()
	l.mb = append(l.mb, m)
	l.mbLen.Store(int32(len(l.mb)))
	l.mbMu.Unlock()
	// The loop stores sleeping=true and then checks mbLen; we stored mbLen
	// and now check sleeping: one of us sees the other (seq-cst atomics).
	if l.sleeping.Load() && l.wakeArmed.CompareAndSwap(false, true) {
		var one = [8]byte{1}
		_, _ = unix.Write(l.efd, one[:])
	}
}

func (l *uloop) setup() error {
	runtime.LockOSThread()
	if l.s.opts.PinCPUs {
		var set unix.CPUSet
		set.Set(l.idx % runtime.NumCPU())
		_ = unix.SchedSetaffinity(0, &set) // best effort: a cpuset may forbid it
	}
	r, err := ring.New(ring.Params{
		Entries:      l.s.opts.RingEntries,
		CQEntries:    l.s.opts.RingEntries * 8,
		SingleIssuer: true,
		DeferTaskrun: true,
		CoopTaskrun:  true,
		SQPoll:       l.s.opts.SQPoll,
	})
	if err != nil {
		return err
	}
	l.r = r
	n := l.s.opts.RecvBuffers
	if n&(n-1) != 0 || n > 32768 {
		return fmt.Errorf("ring.recv.buffers must be a power of two <= 32768, got %d", n)
	}
	if l.br, err = r.NewBufRing(0, uint16(n), l.s.opts.RecvBufferBytes); err != nil {
		return err
	}
	if l.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	if l.efdBuf, err = ring.AllocBuffer(8); err != nil {
		return err
	}
	return nil
}

func (l *uloop) teardown() {
	if l.br != nil {
		l.br.Close()
	}
	if l.r != nil {
		l.r.Close()
	}
	if l.efd > 0 {
		unix.Close(l.efd)
	}
	if l.efdBuf.Len() > 0 {
		l.efdBuf.Free()
	}
	for _, fd := range l.lfds {
		unix.Close(fd)
	}
	for _, p := range l.pipes {
		unix.Close(p.r)
		unix.Close(p.w)
	}
}

func (l *uloop) run(started chan<- error) {
	defer l.s.wg.Done()
	defer runtime.UnlockOSThread()
	if err := l.setup(); err != nil {
		l.teardown()
		started <- err
		return
	}
	for i := range l.lfds {
		l.armAccept(i)
	}
	l.armWake()
	l.now = time.Now()
	l.lastTick = l.now
	m := l.s.opts.Metrics
	started <- nil

	for {
		l.drainMailbox()
		l.flushDirty()
		if l.draining && l.ops == 0 && l.open == 0 {
			break
		}
		tick := loopTick
		if l.draining {
			tick = drainTick
		}
		wait := tick
		if l.acceptPaused() {
			wait = max(min(wait, l.acceptResumeAt.Sub(l.now)), time.Millisecond)
		}
		l.sleeping.Store(true)
		var err error
		if l.mbLen.Load() > 0 {
			l.sleeping.Store(false)
			_, err = l.r.SubmitAndWait(0)
		} else {
			_, err = l.r.SubmitAndWaitTimeout(1, wait)
			l.sleeping.Store(false)
		}
		m.RingEnter(l.idx)
		if err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EAGAIN) {
			l.s.opts.Logger.Error("io_uring_enter failed; loop stopping", zap.Int("loop", l.idx), zap.Error(err))
			l.forceCloseAll("ring failure")
			break
		}
		for {
			n := l.r.PeekBatch(l.cqes[:])
			if n > 0 {
				m.RingCQEs(l.idx, n)
			}
			for i := 0; i < n; i++ {
				l.handle(&l.cqes[i])
			}
			if n < len(l.cqes) {
				break
			}
		}
		l.now = time.Now()
		if l.acceptBackoff > 0 {
			l.resumeAccept()
		}
		if l.now.Sub(l.lastTick) >= tick {
			l.lastTick = l.now
			l.periodic()
		}
	}
	l.teardown()
}

// getSQE returns a free SQE, submitting queued ones when the SQ is full.
func (l *uloop) getSQE() *ring.SQE {
	for {
		if sqe := l.r.GetSQE(); sqe != nil {
			return sqe
		}
		if _, err := l.r.Submit(); err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EAGAIN) {
			l.s.opts.Logger.Error("io_uring submit failed", zap.Error(err))
		}
	}
}

func (l *uloop) armAccept(i int) {
	sqe := l.getSQE()
	sqe.PrepAccept(l.lfds[i], true)
	sqe.OpFlags = unix.SOCK_CLOEXEC
	sqe.SetUserData(userData(kindAccept, 0, uint32(i)))
	l.accepting[i] = true
	l.ops++
}

func (l *uloop) armWake() {
	sqe := l.getSQE()
	sqe.PrepRead(l.efd, l.efdBuf.Ptr(), 8, 0)
	sqe.SetUserData(userData(kindWake, 0, 0))
	l.wakeReady = true
	l.ops++
}

func (l *uloop) handle(cqe *ring.CQE) {
	kind, _, idx := splitUserData(cqe.UserData)
	switch kind {
	case kindAccept:
		l.onAccept(int(idx), cqe)
	case kindRecv:
		l.onRecv(l.conns[idx], cqe)
	case kindSend:
		l.onSend(l.conns[idx], cqe)
	case kindWake:
		l.ops--
		l.wakeReady = false
		l.wakeArmed.Store(false)
		if !l.draining { // while draining the loop ticks fast instead
			l.armWake()
		}
	case kindFileSend, kindSpliceIn, kindSpliceOut:
		l.onFileOp(kind, l.conns[idx], cqe)
	case kindIgnore:
	default:
		l.s.opts.Logger.Error("completion of unknown kind", zap.Uint64("user_data", cqe.UserData))
	}
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
			l.newConn(fd)
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

func (l *uloop) newConn(fd int) {
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
	c.closeReq.Store(false)
	c.lastActive = l.now
	c.addr = ""
	if peer != nil {
		c.addr = peer.String()
	}
	c.peer, c.limited = key, l.s.limits != nil
	l.open++
	l.s.opts.Metrics.ConnOpened()
	l.s.conns.Add(1)
	l.s.accepted.Add(1)
	l.armRecv(c)
}

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
	}
	sqe.SetUserData(userData(kindRecv, c.gen, c.idx))
	c.recvArmed = true
	c.ops++
	l.ops++
}

func (l *uloop) onRecv(c *uconn, cqe *ring.CQE) {
	if !cqe.More() {
		c.recvArmed = false
		c.ops--
		l.ops--
	}
	res := cqe.Res
	if id, ok := cqe.BufferID(); ok {
		if res > 0 && !c.closing {
			l.s.opts.Metrics.BytesIn(int(res))
			c.lastActive = l.now
			l.consume(c, l.br.Buf(id)[:res])
		}
		l.br.Recycle(id)
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

// muteIfGrowRefused mutes c when its framer was refused a growth: the rest
// of its bytes wait in the stash, and unmuteCleared resumes c once
// growReady (an unmute is the only path that drains a stash).
func (l *uloop) muteIfGrowRefused(c *uconn) {
	if c.growWant > 0 && !c.muted && !c.closing {
		c.pressured = true
		l.mute(c)
	}
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
	l.s.opts.Handler.ServeFrame(Request{conn: c, gen: c.gen, seq: seq}, frame)
	if c.closeReq.Load() {
		return false
	}
	l.checkMute(c)
	return !c.muted
}

func (c *uconn) complete(gen, seq uint32, kind completionKind, buf *Buffer, reason string) {
	if kind == completeClose {
		c.closeReq.Store(true)
	}
	if buf != nil {
		n := buf.cost()
		c.mailed.Add(n)
		c.l.mailed.Add(n)
	}
	c.l.post(mail{kind: mailComplete, c: c, gen: gen, seq: seq, action: kind, buf: buf, reason: reason})
}

func (c *uconn) remoteAddr() string { return c.addr }

func (c *uconn) copies() *copyBudget { return &c.l.s.copies }

// hold is the framer's frameHolder: a spanning frame's buffer may grow
// within one receive buffer, within the loop's share, or with the
// oversize turn (budget.go); otherwise the growth waits (growWant) and
// checkMute mutes c until growReady.
func (c *uconn) hold(f *framer, delta int) bool {
	l, d := c.l, int64(delta)
	if d > 0 && !f.turn && f.held+delta > l.s.opts.RecvBufferBytes &&
		l.used()+d > l.s.bounds.loopBytes && !l.s.turn.take(f) {
		c.growWant = d
		return false
	}
	c.growWant = 0
	l.queuedBytes += d
	return true
}

// spanDone ends the oversize turn of a completed frame.
func (c *uconn) spanDone(f *framer) { c.l.s.turn.release(f) }

func (l *uloop) drainMailbox() {
	if l.mbLen.Load() == 0 {
		return
	}
	l.mbMu.Lock()
	box := l.mb
	l.mb = l.mbSpare[:0]
	l.mbLen.Store(0)
	l.mbMu.Unlock()
	for i := range box {
		m := &box[i]
		switch m.kind {
		case mailShutdown:
			l.startDrain(m.deadline)
		case mailComplete:
			l.onComplete(m)
		case mailPing:
			l.live.answerPing()
		case mailBudget:
			if len(l.muted) > 0 {
				l.unmuteCleared()
			}
		}
		*m = mail{}
	}
	l.mbMu.Lock()
	l.mbSpare = box[:0]
	l.mbMu.Unlock()
}

func (l *uloop) onComplete(m *mail) {
	c := m.c
	if m.buf != nil { // counted in mailed by complete
		n := m.buf.cost()
		c.mailed.Add(-n)
		l.mailed.Add(-n)
	}
	if c.gen != m.gen&0xffffff || c.closing || c.fd < 0 {
		m.buf.Release()
		return
	}
	switch m.action {
	case completeClose:
		l.closeConn(c, m.reason, zap.WarnLevel)
		return
	case completeNoReply:
		m.buf = nil
	}
	if !c.q.complete(m.seq, m.buf) {
		m.buf.Release()
		return
	}
	if m.buf != nil {
		n := m.buf.cost()
		c.inflightBytes += n
		l.queuedBytes += n
	}
	if !c.dirty {
		c.dirty = true
		l.dirty = append(l.dirty, c)
	}
}

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
	c.ops++
	l.ops++
}

func (l *uloop) onSend(c *uconn, cqe *ring.CQE) {
	c.sending = false
	c.ops--
	l.ops--
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

// used is the memory the loop accounts: in flight, stashed, partial
// frames, and answers still in the mailbox.
func (l *uloop) used() int64 { return l.queuedBytes + l.mailed.Load() }

func (l *uloop) overLoop() bool { return l.used() >= l.s.bounds.loopBytes }

// growReady reports whether c, refused a growth of its partial frame, may
// now have it: the loop has room, or c takes the oversize turn. mustMute
// asks only for a connection within its own bounds: a turn must not wait on
// its holder's client.
func (l *uloop) growReady(c *uconn) bool {
	return l.used()+c.growWant <= l.s.bounds.loopBytes || l.s.turn.take(&c.fr)
}

// mustMute reports whether c must stop receiving: it is over its own
// in-flight bound, or the loop is over its share of queued.max.request.bytes
// and c has a request in flight. A connection with nothing in flight is not
// muted by the loop bound: it may bring one request at a time. Muting it too
// let clients that never read their answers (so never release what they
// hold) starve every other connection of the loop for good; this way the
// loop bound costs well-behaved clients their pipelining, not their
// service, and memory stays within the loop share plus one request (and one
// receive buffer of stash) per connection.
//
// A connection refused a growth of a partial frame (hold) is muted until
// growReady.
func (l *uloop) mustMute(c *uconn) bool {
	if l.s.bounds.overConn(c.q.len(), c.inflightBytes+c.mailed.Load()) || (c.q.len() > 0 && l.overLoop()) {
		return true
	}
	return c.growWant > 0 && !l.growReady(c)
}

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
		l.s.muted.Add(1)
		l.s.opts.Metrics.ConnMuted()
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
			l.s.muted.Add(-1)
			l.s.opts.Metrics.ConnUnmuted()
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

// closeConn starts closing c: shutdown() makes its outstanding recv and
// send complete; the slot is freed (maybeFree) once they have.
func (l *uloop) closeConn(c *uconn, reason string, level zapLevel) {
	if c.closing {
		return
	}
	c.closing = true
	if c.muted {
		c.muted = false
		l.s.muted.Add(-1)
		l.s.opts.Metrics.ConnUnmuted()
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
	l.queuedBytes -= c.inflightBytes + int64(len(c.stash)) + int64(c.fr.held)
	c.inflightBytes = 0
	l.s.turn.release(&c.fr)
	c.growWant = 0
	if c.fr.mapped {
		unmapPartial(c.fr.partial)
	}
	c.fr = framer{maxFrameBytes: c.fr.maxFrameBytes}
	c.stash = nil
	c.gen = (c.gen + 1) & 0xffffff // answers still on their way are now stale
	l.free = append(l.free, c.idx)
	l.open--
	l.s.opts.Metrics.ConnClosed()
	l.s.conns.Add(-1)
	if len(l.muted) > 0 {
		l.unmuteCleared()
	}
}

func (l *uloop) startDrain(deadline time.Time) {
	if l.draining {
		return
	}
	l.draining = true
	l.drainDeadline = deadline
	for i := range l.lfds {
		if l.accepting[i] {
			sqe := l.getSQE()
			sqe.PrepCancel(userData(kindAccept, 0, uint32(i)), 0)
			sqe.SetUserData(userData(kindIgnore, 0, 0))
		}
	}
	if l.wakeReady {
		sqe := l.getSQE()
		sqe.PrepCancel(userData(kindWake, 0, 0), 0)
		sqe.SetUserData(userData(kindIgnore, 0, 0))
	}
	for _, c := range l.conns {
		if c.fd < 0 || c.closing {
			continue
		}
		if c.q.len() == 0 {
			l.closeConn(c, "shutdown", zap.DebugLevel)
			continue
		}
		l.mute(c) // stop reading new requests; answer what is in flight
	}
}

func (l *uloop) periodic() {
	if l.draining {
		if l.now.After(l.drainDeadline) {
			l.forceCloseAll("shutdown deadline")
		}
		return
	}
	idle := l.s.opts.IdleTimeout
	if idle <= 0 {
		return
	}
	for _, c := range l.conns {
		if c.fd >= 0 && !c.closing && c.q.len() == 0 && l.now.Sub(c.lastActive) > idle {
			l.closeConn(c, "idle for connections.max.idle.ms", zap.InfoLevel)
		}
	}
}

func (l *uloop) forceCloseAll(reason string) {
	for _, c := range l.conns {
		if c.fd >= 0 {
			l.closeConn(c, reason, zap.WarnLevel)
		}
	}
}

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
	// stays muted until growReady.
	growWant   int64
	lastActive time.Time
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
}
