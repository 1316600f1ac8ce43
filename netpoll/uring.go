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
// maybeFree), so no completion outlives its connection (checkCompletion in
// uring_invariants.go asserts it under -race and -tags invariants). The
// generation that matters is the one in Request: a handler's late answer
// for a closed and reused slot is dropped by that check in the mailbox
// (mailComplete).
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
	serverBase
	loops []*uloop
	bound []net.Addr
	wg    sync.WaitGroup
	conns atomic.Int64
	// niceOnce: one warning when a loop cannot set Options.ThreadNice.
	niceOnce sync.Once
	// bundleOnce: one warning when the kernel lacks RecvSendBundle.
	bundleOnce sync.Once
	// waitMinOnce: one warning when the kernel lacks batched waits.
	waitMinOnce sync.Once
	// tlsZCSends counts SEND_ZC submissions from registered TLS send
	// buffers (uring_tls_zc.go).
	tlsZCSends atomic.Int64
	// tlsRegSends counts all sends from them (SEND_ZC or SEND).
	tlsRegSends atomic.Int64
	// tlsRegHeld: registered TLS send buffers held by connections.
	tlsRegHeld atomic.Int64
	// Adoptions of TLS connections (tls_loop.go): refused once
	// adoptClosed; adoptNext spreads them over the loops.
	adoptMu     sync.Mutex
	adoptClosed bool
	adoptNext   atomic.Uint32
}

// fallbackAllowed reports whether a uring setup error lets auto fall back.
func fallbackAllowed(err error) bool {
	return errors.Is(err, ring.ErrUnavailable) || errors.Is(err, ring.ErrUnsupported)
}

func listenUring(opts Options) (*uringServer, error) {
	reserveProcs(opts.Loops)
	s := &uringServer{}
	s.init(opts, max(opts.MaxQueuedBytes/int64(opts.Loops), 1<<20))
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
	// Every loop exists before any runs: a running loop reads s.loops (the
	// oversize turn's release mails them all, adoption picks one).
	errs := make(chan error, opts.Loops)
	for i := 0; i < opts.Loops; i++ {
		s.loops = append(s.loops, &uloop{s: s, idx: i, lfds: lfds[i], accepting: make([]bool, len(lfds[i]))})
	}
	for _, l := range s.loops {
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
	return s.statsWith(s.conns.Load())
}

func (s *uringServer) shutdown(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Hour)
	}
	s.closeAdoption()
	for _, l := range s.loops {
		l.post(mail{kind: mailShutdown, deadline: deadline})
	}
	s.wg.Wait()
	if time.Now().After(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}
