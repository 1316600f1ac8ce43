package netpoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/tlsrec"
)

// Backend names, as in the io.backend config key.
const (
	BackendAuto     = "auto"
	BackendUring    = "uring"
	BackendPortable = "portable"
)

// Options configure a Server. Zero values take the defaults noted.
type Options struct {
	// Listeners are host:port addresses. Port 0 picks a free port, shared by
	// every loop's SO_REUSEPORT socket.
	Listeners []string
	// Backend is auto (io_uring when usable, else portable), uring or portable.
	Backend string
	// Loops is the number of event loops (io_uring rings); default NumCPU.
	Loops int
	// RingEntries is the SQ size of each ring; default 512.
	RingEntries uint32
	// SQPoll asks for a kernel submission thread per ring. It implies
	// NoDeferTaskrun and no COOP_TASKRUN: the kernel refuses both with
	// SQPOLL.
	SQPoll bool
	// NoDeferTaskrun sets the rings up without IORING_SETUP_DEFER_TASKRUN
	// (ring.defer.taskrun=false): completions' task work then runs at any
	// kernel entry of the loop thread (COOP_TASKRUN stays on) instead of
	// only when the loop asks for events. The zero value keeps it on, the
	// default; off exists to measure what the flag is worth.
	NoDeferTaskrun bool
	// IdleSpin (ring.idle.spin.us): a loop that had work polls its
	// completion queue and mailbox for up to this long before it sleeps
	// in io_uring_enter (0: never). A completion or an answer arriving
	// meanwhile is taken without the sleeping thread's wake-up.
	IdleSpin time.Duration
	// WaitBatch and WaitBatchMin (ring.wait.batch, ring.wait.batch.us):
	// a loop that goes to sleep waits for WaitBatch completions, but for
	// no longer than WaitBatchMin once one is there (IORING_FEAT_MIN_TIMEOUT,
	// Linux 6.12). WaitBatch <= 1 waits for one, as before; a kernel
	// without the feature gets that and one warning.
	WaitBatch    int
	WaitBatchMin time.Duration
	// PinCPUs pins loop i's thread to CPU i mod NumCPU.
	PinCPUs bool
	// ThreadNice (ring.thread.nice; io_uring only): the nice value of
	// each loop's thread, set with setpriority on the thread (0: leave
	// it as the process's). A loop's thread answers every connection it
	// owns, so a wake-up that waits for a CPU delays all of them; a lower
	// value makes the scheduler run it sooner than the log writers and
	// other threads it competes with. Values below the process's need
	// CAP_SYS_NICE or RLIMIT_NICE; without them one warning is logged
	// and the loops run as they would with 0.
	ThreadNice int
	// RecvBufferBytes and RecvBuffers size each loop's provided-buffer ring;
	// default 64 KiB x 256.
	RecvBufferBytes int
	RecvBuffers     int
	// RecvBundle (ring.recv.bundle) arms the multishot receives as bundles
	// (IORING_RECVSEND_BUNDLE): one completion may cover several provided
	// buffers. A kernel without the feature gets plain multishot receives
	// and one warning.
	RecvBundle bool
	// MaxFrameBytes bounds a request frame (socket.request.max.bytes);
	// default 100 MiB.
	MaxFrameBytes int32
	// ConnMaxInflightRequests and ConnMaxInflightBytes bound one connection's
	// requests not yet answered-and-sent, and their request plus response
	// bytes; default 1024 and 16 MiB. Above either the connection is muted.
	ConnMaxInflightRequests int
	ConnMaxInflightBytes    int64
	// MaxQueuedBytes bounds the in-flight bytes of all connections together
	// (queued.max.request.bytes), split evenly between loops; default 256 MiB.
	MaxQueuedBytes int64
	// IdleTimeout closes connections with no traffic and nothing in flight
	// (connections.max.idle.ms); default 10 minutes, <0 disables.
	IdleTimeout time.Duration
	// MaxConns (max.connections) and MaxConnsPerIP (max.connections.per.ip)
	// bound open connections in total and per client IP; a connection over
	// either is closed at accept with a rate-limited log line. <= 0 or
	// 2147483647 (Kafka's default) means unlimited.
	MaxConns      int
	MaxConnsPerIP int
	// MaxConnCreationRate is max.connection.creation.rate: connections
	// accepted per second, server-wide (limits.go); 0 or Kafka's Int32 max:
	// unlimited.
	MaxConnCreationRate int
	// MaxConnsPerIPOverrides is max.connections.per.ip.overrides: client
	// IP (as net.ParseIP reads it) -> its own limit, 0 refusing it.
	MaxConnsPerIPOverrides map[string]int
	// AdmitConn, if set, is asked at accept (after the limits above)
	// whether a connection from ip may open; false closes it like a
	// limit does. It runs on an accepting loop and must not block (the
	// broker's connection_creation_rate quotas of ip entities).
	AdmitConn func(ip net.IP) bool
	// Logger receives connection-level log lines; default nop.
	Logger *zap.Logger
	// Handler serves frames. Required.
	Handler Handler
	// Sessions, if set, creates each connection's Session at accept
	// (session.go).
	Sessions SessionOpener
	// Metrics receives counters; nil records nothing. *metrics.Registry
	// implements it.
	Metrics Metrics

	// Secure, by listener index, is the record layer of a TLS listener
	// (tls.go); a nil or missing entry is a plaintext listener. TLS
	// connections are served by the portable backend's machinery on both
	// backends unless TLSOnLoops moves them to the rings (tls_loop.go).
	Secure []SecureLayer
	// TLSOnLoops (io_uring only): after the handshake, a TLS 1.3
	// connection of a LoopLayer listener is served by a ring loop with an
	// in-loop record layer instead of a reader and a writer goroutine
	// (tls_loop.go, uring_tls.go).
	TLSOnLoops bool
	// TLSSendZC (with TLSOnLoops): a loop seals TLS records into send
	// buffers registered with its ring and sends them with SEND_ZC, when
	// the kernel has it (uring_tls_zc.go); otherwise heap buffers and
	// SENDMSG.
	TLSSendZC bool
	// HandshakeTimeout bounds a TLS handshake; default 10 s.
	HandshakeTimeout time.Duration
	// MaxHandshaking bounds the TLS handshakes in progress per Server;
	// default 1000. A connection over it is closed at accept.
	MaxHandshaking int

	// listenerIDs, set for the halves of a splitServer, maps a backend's
	// own listener index to its index in the Server's Listeners.
	listenerIDs []int
	// limiter, set for the halves of a splitServer, is the connection
	// limiter both halves share (max.connections is per process).
	limiter *connLimiter
	// adopt, set for the portable half of a splitServer with TLSOnLoops,
	// hands a handshaken TLS connection to a ring loop (tls_loop.go): nc
	// is closed on success (the loop owns a duplicate of its socket);
	// on error the caller still owns everything.
	adopt func(nc net.Conn, records *tlsrec.Conn, key peerKey, sess Session) error
	// bound, when set, are the portable backend's listeners already bound
	// (one per Listeners entry): splitServer binds its TLS listeners before
	// the rings start answering, so a client that got an answer on one
	// listener never finds another not yet bound.
	bound []net.Listener
}

// Metrics is what netpoll reports. Implementations must not allocate or
// block: they are called on the ring threads per completion.
type Metrics interface {
	BytesIn(n int)
	BytesOut(n int)
	ConnOpened()
	ConnClosed()
	ConnMuted()
	ConnUnmuted()
	RingCQEs(ring, n int)
	RingEnter(ring int)
}

// nopMetrics is used when Options.Metrics is nil, so call sites need no
// checks.
type nopMetrics struct{}

func (nopMetrics) BytesIn(int)       {}
func (nopMetrics) BytesOut(int)      {}
func (nopMetrics) ConnOpened()       {}
func (nopMetrics) ConnClosed()       {}
func (nopMetrics) ConnMuted()        {}
func (nopMetrics) ConnUnmuted()      {}
func (nopMetrics) RingCQEs(int, int) {}
func (nopMetrics) RingEnter(int)     {}

func (o *Options) setDefaults() {
	if o.Backend == "" {
		o.Backend = BackendAuto
	}
	if o.Loops <= 0 {
		o.Loops = runtime.NumCPU()
	}
	if o.RingEntries == 0 {
		o.RingEntries = 512
	}
	if o.RecvBufferBytes <= 0 {
		o.RecvBufferBytes = 64 << 10
	}
	if o.RecvBuffers <= 0 {
		o.RecvBuffers = 256
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = 100 << 20
	}
	if o.ConnMaxInflightRequests <= 0 {
		o.ConnMaxInflightRequests = 1024
	}
	if o.ConnMaxInflightBytes <= 0 {
		o.ConnMaxInflightBytes = 16 << 20
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = 256 << 20
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.MaxHandshaking <= 0 {
		o.MaxHandshaking = 1000
	}
}

// Stats is a snapshot of a server's connection counts.
type Stats struct {
	Conns      int64 // open connections
	MutedConns int64 // connections whose receive is paused by a bound
	Accepted   int64 // connections accepted since start
	Refused    int64 // connections closed at accept by MaxConns/MaxConnsPerIP
}

// backend is what the io_uring and portable implementations provide.
type backend interface {
	addrs() []net.Addr
	shutdown(ctx context.Context) error
	stats() Stats
	liveness() error
}

// serverBase is what both backends keep per server: the options, the mute
// bounds, the connection limits, and the budgets and counters shared by all
// of the server's loops (or connections).
type serverBase struct {
	opts   Options
	bounds bounds
	limits *connLimiter // nil: no connection limits

	acceptFails acceptFailLog
	turn        frameTurn  // the oversize-frame turn (budget.go)
	copies      copyBudget // bytes handlers copy into responses (budget.go)
	accepted    atomic.Int64
	muted       atomic.Int64 // connections not being read because of a bound
}

// newServerLimiter is the connection limiter opts ask for: max.connections,
// the per-IP limits and overrides, max.connection.creation.rate and the
// admission hook (ip quotas).
func newServerLimiter(opts Options) *connLimiter {
	l := newConnLimiter(opts.MaxConns, opts.MaxConnsPerIP, opts.MaxConnsPerIPOverrides, opts.Logger)
	l = l.withCreationRate(opts.MaxConnCreationRate, opts.Logger, time.Now)
	return l.withAdmitHook(opts.AdmitConn, opts.Logger)
}

// init sets what derives from opts; loopBytes is the share of
// MaxQueuedBytes one loop may hold (the portable backend: all of it).
func (b *serverBase) init(opts Options, loopBytes int64) {
	b.opts = opts
	b.limits = opts.limiter
	if b.limits == nil {
		b.limits = newServerLimiter(opts)
	}
	b.bounds = bounds{
		connRequests:    opts.ConnMaxInflightRequests,
		connBytes:       opts.ConnMaxInflightBytes,
		loopBytes:       loopBytes,
		recvBufferBytes: opts.RecvBufferBytes,
	}
	b.copies.limit = opts.MaxQueuedBytes
}

// statsWith returns the server's Stats with conns open connections.
func (b *serverBase) statsWith(conns int64) Stats {
	return Stats{Conns: conns, MutedConns: b.muted.Load(), Accepted: b.accepted.Load(), Refused: b.limits.refusedTotal()}
}

// Server accepts Kafka connections and feeds their frames to a Handler.
type Server struct {
	b              backend
	name           string
	fallbackReason string
	tlsNote        string
}

// Listen binds the listeners and starts serving. With Backend auto, an
// io_uring failure of kind ring.ErrUnavailable/ErrUnsupported falls back to
// the portable backend and FallbackReason says why.
func Listen(opts Options) (*Server, error) {
	if opts.Handler == nil {
		return nil, errors.New("netpoll: Options.Handler is nil")
	}
	if len(opts.Listeners) == 0 {
		return nil, errors.New("netpoll: no listeners")
	}
	opts.setDefaults()
	switch opts.Backend {
	case BackendPortable:
		b, err := listenPortable(opts)
		if err != nil {
			return nil, err
		}
		return &Server{b: b, name: BackendPortable}, nil
	case BackendUring, BackendAuto:
		if opts.hasSecure() {
			return listenSplit(opts)
		}
		b, err := listenUring(opts)
		if err == nil {
			return &Server{b: b, name: BackendUring}, nil
		}
		if opts.Backend == BackendUring || !fallbackAllowed(err) {
			return nil, err
		}
		pb, perr := listenPortable(opts)
		if perr != nil {
			return nil, perr
		}
		return &Server{b: pb, name: BackendPortable, fallbackReason: err.Error()}, nil
	default:
		return nil, fmt.Errorf("netpoll: unknown backend %q (want auto, uring or portable)", opts.Backend)
	}
}

// Backend names the backend serving: "uring" or "portable".
func (s *Server) Backend() string { return s.name }

// FallbackReason is why auto chose portable, or "".
func (s *Server) FallbackReason() string { return s.fallbackReason }

// TLSNote says which machinery serves the TLS listeners when it is not
// the backend's own (io_uring serving plaintext, the portable backend's
// goroutines serving TLS), or "".
func (s *Server) TLSNote() string { return s.tlsNote }

// Addrs are the bound listener addresses, one per configured listener.
func (s *Server) Addrs() []net.Addr { return s.b.addrs() }

// Stats returns connection counts.
func (s *Server) Stats() Stats { return s.b.stats() }

// Shutdown stops accepting, stops reading new requests, waits (until ctx is
// done) for in-flight requests to be answered and sent, then closes every
// connection.
func (s *Server) Shutdown(ctx context.Context) error { return s.b.shutdown(ctx) }
