//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/internal/reqtrace"
	"github.com/ringbroker/ringbroker/invariants"
	"github.com/ringbroker/ringbroker/ring"
)

// The io_uring loop (the iteration drawn in uring.go) and its mailbox: the
// loop's state (uloop), ring setup and teardown, CQE dispatch, the mailbox
// other goroutines post answers and shutdown to, and draining at shutdown.
// Everything here runs on the loop's thread except post and complete.

type mailKind uint8

const (
	mailComplete mailKind = iota + 1
	mailShutdown
	mailPing   // Server.Liveness (liveness.go)
	mailBudget // the oversize turn is free: muted connections may take it
	mailAdopt  // a TLS connection handed over after its handshake (tls_loop.go)
	mailRun    // a function to run on the loop's thread (Request.RunOnLoop)
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
	adopt    *adoption
	fn       func()
}

type uloop struct {
	s   *uringServer
	idx int
	r   *ring.Ring
	br  *ring.BufRing
	// bundle: multishot receives are armed as bundles (Options.RecvBundle
	// on a kernel that has them); bundled counts the receives that filled
	// more than one buffer (read by tests).
	bundle  bool
	bundled atomic.Int64
	// waitBatch: completions a sleeping loop waits for, within
	// Options.WaitBatchMin once one is there (1: no batching).
	waitBatch uint32
	lfds      []int
	// wokeNs: when the last io_uring_enter returned (reqtrace stamp; set
	// only while tracing).
	wokeNs int64
	// accepting[i] is true while listener i's multishot accept is armed.
	accepting []bool
	// tid is the loop's thread (set by setup).
	tid int

	conns []*uconn
	free  []uint32
	dirty []*uconn // conns with answered slots to send
	muted []*uconn
	pipes []*pipePair // idle pipes for splice
	// tlsOuts: idle send buffers of TLS connections (uring_tls.go).
	tlsOuts [][]byte
	// tlsReg: the registered TLS send buffers, nil when TLS sends use
	// tlsOuts and SENDMSG (uring_tls_zc.go).
	tlsReg *tlsRegPool
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
	mbMu    sync.Mutex
	mb      []mail
	mbSpare []mail
	mbLen   atomic.Int32
	// mbClosed (under mbMu): the loop has stopped; postRun refuses.
	mbClosed  bool
	sleeping  atomic.Bool
	wakeArmed atomic.Bool // an eventfd write is outstanding
	efd       int
	efdBuf    ring.Buffer
	wakeReady bool // READ on the eventfd is armed
	// worked: this iteration handled a completion or mail (IdleSpin
	// spins only after work, so an idle loop sleeps at once).
	worked bool
	live   loopLiveness

	// acceptBackoff is the pause after the last failed accept (0 after a
	// success); no listener is re-armed before acceptResumeAt.
	acceptBackoff  time.Duration
	acceptResumeAt time.Time
	// throttleNext is the earliest end of a muted connection's quiet
	// period (zero: none); the loop wakes for it (throttleTick).
	throttleNext time.Time

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
	l.wakeIfSleeping()
}

// wakeIfSleeping writes the eventfd once a mail is in the mailbox. The loop
// stores sleeping=true and then checks mbLen; the poster stored mbLen and
// now checks sleeping: one of them sees the other (seq-cst atomics).
func (l *uloop) wakeIfSleeping() {
	if l.sleeping.Load() && l.wakeArmed.CompareAndSwap(false, true) {
		var one = [8]byte{1}
		_, _ = unix.Write(l.efd, one[:])
	}
}

// spin polls the CQ and the mailbox for up to d before the loop sleeps
// (Options.IdleSpin): on a virtual machine a sleeping thread's wake-up (an
// idle vCPU halted, an IPI to start it again) is the largest share of a
// hand-off between threads; a loop still polling takes the completion or
// the answer at once. The submissions queued so far go out first.
func (l *uloop) spin(d time.Duration) {
	if l.r.SQReady() > 0 {
		if _, err := l.r.Submit(); err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EAGAIN) {
			return // the wait below reports it
		}
	}
	end := time.Now().Add(d)
	for i := 0; ; i++ {
		if l.mbLen.Load() > 0 || l.r.Pending() {
			return
		}
		if i&63 == 63 && !time.Now().Before(end) {
			return
		}
	}
}

// postRun posts f to run on the loop's thread, unless the loop has stopped.
func (l *uloop) postRun(f func()) bool {
	l.mbMu.Lock()
	if l.mbClosed {
		l.mbMu.Unlock()
		return false
	}
	l.mb = append(l.mb, mail{kind: mailRun, fn: f})
	l.mbLen.Store(int32(len(l.mb)))
	l.mbMu.Unlock()
	l.wakeIfSleeping()
	return true
}

// closeMailbox ends postRun's acceptance when the loop stops, and runs the
// functions still posted on goroutines of their own: each was promised a
// run (postRun reported true).
func (l *uloop) closeMailbox() {
	l.mbMu.Lock()
	l.mbClosed = true
	box := l.mb
	l.mb = nil
	l.mbLen.Store(0)
	l.mbMu.Unlock()
	for i := range box {
		if box[i].kind == mailRun {
			go box[i].fn()
		}
	}
}

func (l *uloop) setup() error {
	runtime.LockOSThread()
	l.tid = unix.Gettid()
	if l.s.opts.PinCPUs {
		var set unix.CPUSet
		set.Set(l.idx % runtime.NumCPU())
		_ = unix.SchedSetaffinity(0, &set) // best effort: a cpuset may forbid it
	}
	if nice := l.s.opts.ThreadNice; nice != 0 {
		// Best effort: a nice value below the process's needs
		// CAP_SYS_NICE or RLIMIT_NICE (systemd's LimitNICE=).
		if err := unix.Setpriority(unix.PRIO_PROCESS, l.tid, nice); err != nil {
			l.s.niceOnce.Do(func() {
				l.s.opts.Logger.Warn("ring.thread.nice: the loop threads keep the process's priority", zap.Int("nice", nice), zap.Error(err))
			})
		}
	}
	r, err := ring.New(ring.Params{
		Entries:      l.s.opts.RingEntries,
		CQEntries:    l.s.opts.RingEntries * 8,
		SingleIssuer: true,
		// The kernel refuses DEFER_TASKRUN and COOP_TASKRUN (with its
		// TASKRUN_FLAG) beside SQPOLL, whose kernel thread runs the task
		// work itself: ring.sqpoll turns both off.
		DeferTaskrun: !l.s.opts.NoDeferTaskrun && !l.s.opts.SQPoll,
		CoopTaskrun:  !l.s.opts.SQPoll,
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
	l.waitBatch = 1
	if b := l.s.opts.WaitBatch; b > 1 && l.s.opts.WaitBatchMin >= time.Microsecond {
		if r.Features()&ring.FeatMinTimeout != 0 {
			l.waitBatch = uint32(b)
		} else {
			l.s.waitMinOnce.Do(func() {
				l.s.opts.Logger.Warn("ring.wait.batch: the kernel has no batched waits (IORING_FEAT_MIN_TIMEOUT, Linux 6.12); the loops wake for each completion")
			})
		}
	}
	if l.s.opts.RecvBundle {
		l.bundle = r.Features()&ring.FeatRecvSendBundle != 0
		if !l.bundle {
			l.s.bundleOnce.Do(func() {
				l.s.opts.Logger.Warn("ring.recv.bundle: the kernel has no bundled receives (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10); the loops receive one buffer per completion")
			})
		}
	}
	if l.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	if l.efdBuf, err = ring.AllocBuffer(8); err != nil {
		return err
	}
	if l.s.opts.TLSOnLoops && l.s.opts.TLSSendZC {
		l.setupTLSReg()
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
	l.freeTLSReg() // after the ring: no send of the kernel's uses them now
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
	defer func() {
		// A pinned or reniced thread stays locked, so the runtime ends it
		// with the loop instead of giving it to other goroutines.
		if !l.s.opts.PinCPUs && l.s.opts.ThreadNice == 0 {
			runtime.UnlockOSThread()
		}
	}()
	if err := l.setup(); err != nil {
		l.closeMailbox()
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
			if invariants.Enabled {
				l.checkLoop() // every slot freed: nothing may stay counted
			}
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
		if !l.throttleNext.IsZero() {
			wait = max(min(wait, l.throttleNext.Sub(l.now)), time.Millisecond)
		}
		if spin := l.s.opts.IdleSpin; spin > 0 && l.worked {
			l.spin(spin)
		}
		l.worked = false
		l.sleeping.Store(true)
		var err error
		if l.mbLen.Load() > 0 || l.r.Pending() {
			l.sleeping.Store(false)
			_, err = l.r.SubmitAndWait(0)
		} else {
			if l.waitBatch > 1 {
				_, err = l.r.SubmitAndWaitMin(l.waitBatch, l.s.opts.WaitBatchMin, wait)
			} else {
				_, err = l.r.SubmitAndWaitTimeout(1, wait)
			}
			l.sleeping.Store(false)
		}
		if reqtrace.Enabled() {
			l.wokeNs = reqtrace.Now()
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
				l.worked = true
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
		if !l.throttleNext.IsZero() && !l.now.Before(l.throttleNext) {
			l.throttleTick()
		}
		if l.now.Sub(l.lastTick) >= tick {
			l.lastTick = l.now
			l.periodic()
		}
	}
	l.closeMailbox()
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

// opStarted counts an SQE submitted for c whose final CQE is still to come:
// c's slot is not reused until every such operation has ended (maybeFree).
func (l *uloop) opStarted(c *uconn) {
	c.ops++
	l.ops++
}

// opEnded counts the final CQE of one of c's operations.
func (l *uloop) opEnded(c *uconn) {
	c.ops--
	l.ops--
	if invariants.Enabled {
		invariants.Check(c.ops >= 0 && l.ops >= 0, "loop %d: slot %d ended an operation it never started (%d left, loop %d)", l.idx, c.idx, c.ops, l.ops)
	}
}

func (l *uloop) armWake() {
	sqe := l.getSQE()
	sqe.PrepRead(l.efd, l.efdBuf.Ptr(), 8, 0)
	sqe.SetUserData(userData(kindWake, 0, 0))
	l.wakeReady = true
	l.ops++
}

func (l *uloop) handle(cqe *ring.CQE) {
	kind, gen, idx := splitUserData(cqe.UserData)
	if invariants.Enabled {
		switch kind {
		case kindRecv, kindSend, kindFileSend, kindSpliceIn, kindSpliceOut:
			l.checkCompletion(kind, gen, idx)
		}
	}
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

func (l *uloop) drainMailbox() {
	if l.mbLen.Load() == 0 {
		return
	}
	l.worked = true
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
		case mailAdopt:
			l.onAdopt(m.adopt)
		case mailRun:
			m.fn()
		}
		*m = mail{}
	}
	l.mbMu.Lock()
	l.mbSpare = box[:0]
	l.mbMu.Unlock()
}

func (l *uloop) onComplete(m *mail) {
	c := m.c
	if m.buf != nil && m.buf.trace != nil {
		m.buf.trace.MarkAt(reqtrace.LoopWoke, l.wokeNs)
		m.buf.trace.Mark(reqtrace.LoopTook)
	}
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
		if m.buf != nil { // NoReplyThrottled
			if m.buf.throttle > 0 {
				l.throttle(c, m.buf.throttle)
			}
			m.buf.Release()
		}
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
		if m.buf.throttle > 0 {
			l.throttle(c, m.buf.throttle)
		}
	}
	if invariants.Enabled {
		l.checkConn(c)
	}
	if !c.dirty {
		c.dirty = true
		l.dirty = append(l.dirty, c)
	}
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
	if invariants.Enabled {
		l.checkLoop()
	}
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
