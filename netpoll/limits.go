package netpoll

import (
	"hash/maphash"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/ratelog"
)

// Connection limits (max.connections, max.connections.per.ip and its
// overrides, max.connection.creation.rate), checked at accept on both
// backends. A connection over a limit is closed at once,
// before it is registered anywhere, with a rate-limited log line, as Kafka
// does (Kafka logs TooManyConnectionsException and closes the socket).
//
// Concurrency: one connLimiter per server, shared by every io_uring loop (or
// every portable accept loop and connection writer). The total is one atomic
// counter. Per-IP counts live in connLimiterShards maps, each behind its own
// mutex, the shard chosen by a hash of the address: two loops accepting from
// different clients almost never touch the same lock, and the critical
// section is a map lookup. The ring threads own nothing here, so a count
// taken on loop 0 may be released by any goroutine.
//
// Rejected design: a mutex-free fixed array of atomic counters indexed by the
// address hash. Two clients whose addresses collide would share one count
// and refuse each other's connections, which a limit that is a promise to
// operators cannot do.
//
// With both limits unlimited (the default) the limiter is nil and accept
// pays nothing; with only max.connections set it pays one atomic add.

// connLimiterShards is the number of per-IP shards (a power of two).
const connLimiterShards = 64

// refusalLogInterval is the least time between two "connection refused"
// log lines; refusals in between are counted into the next line, so a
// client hammering the broker with connections cannot flood the log.
const refusalLogInterval = time.Second

// peerKey is a client IP in 16-byte form (IPv4 as IPv4-mapped IPv6), the
// per-IP map key.
type peerKey [16]byte

// peerKeyOf returns ip's key; a nil or malformed ip maps to the zero key, so
// such peers share one count rather than escaping the limit.
func peerKeyOf(ip net.IP) peerKey {
	var k peerKey
	if ip16 := ip.To16(); ip16 != nil {
		copy(k[:], ip16)
	}
	return k
}

type limiterShard struct {
	mu     sync.Mutex
	counts map[peerKey]int32
	_      [40]byte // keep neighbouring shards' mutexes off one cache line
}

// connLimiter counts open connections, in total and per client IP.
type connLimiter struct {
	maxConns int64 // <= 0: unlimited
	maxPerIP int32 // <= 0: unlimited
	// overrides is max.connections.per.ip.overrides: an address's own
	// limit (0: none at all), in place of maxPerIP.
	overrides map[peerKey]int32
	// perIP: connections are counted per address (maxPerIP or overrides).
	perIP  bool
	logger *zap.Logger
	seed   maphash.Seed

	total  atomic.Int64
	shards [connLimiterShards]limiterShard

	refused atomic.Int64  // connections refused since start
	lines   ratelog.Every // the "connection refused" line

	// creation bounds connections admitted per second
	// (max.connection.creation.rate); nil: unlimited.
	creation *creationRate
	// admitIP is Options.AdmitConn (the ip quotas'
	// connection_creation_rate); nil: none.
	admitIP func(net.IP) bool
}

// withAdmitHook adds Options.AdmitConn to l (creating a limiter when l is
// nil) and returns it; a nil hook leaves l as it is.
func (l *connLimiter) withAdmitHook(hook func(net.IP) bool, logger *zap.Logger) *connLimiter {
	if hook == nil {
		return l
	}
	if l == nil {
		l = &connLimiter{logger: logger, seed: maphash.MakeSeed()}
	}
	l.admitIP = hook
	return l
}

// creationRate counts the connections admitted in the current one-second
// window (max.connection.creation.rate). A connection past the rate is
// closed at accept, like one past max.connections; Kafka instead delays
// the accept until the rate allows it, which here would hold a ring
// thread or leave connections waiting unbounded in the backlog.
type creationRate struct {
	max         int64
	now         func() time.Time
	mu          sync.Mutex
	windowStart time.Time
	admitted    int64
}

// take reports whether one more connection fits in the current window.
func (r *creationRate) take() bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.windowStart) >= time.Second || now.Before(r.windowStart) {
		r.windowStart, r.admitted = now, 0
	}
	if r.admitted >= r.max {
		return false
	}
	r.admitted++
	return true
}

// withCreationRate adds max.connection.creation.rate to l (creating a
// limiter when l is nil) and returns it; perSecond <= 0 or Kafka's
// Int32 max leaves l as it is.
func (l *connLimiter) withCreationRate(perSecond int, logger *zap.Logger, now func() time.Time) *connLimiter {
	if perSecond <= 0 || perSecond >= 1<<31-1 {
		return l
	}
	if l == nil {
		l = &connLimiter{logger: logger, seed: maphash.MakeSeed()}
	}
	l.creation = &creationRate{max: int64(perSecond), now: now}
	return l
}

// newConnLimiter returns nil when neither limit is set (values <= 0 or at
// Kafka's "unlimited" Int32 max), so the accept path can skip it entirely.
func newConnLimiter(maxConns, maxPerIP int, overrides map[string]int, logger *zap.Logger) *connLimiter {
	const unlimited = 1<<31 - 1
	if maxConns >= unlimited {
		maxConns = 0
	}
	if maxPerIP >= unlimited {
		maxPerIP = 0
	}
	if maxConns <= 0 && maxPerIP <= 0 && len(overrides) == 0 {
		return nil
	}
	l := &connLimiter{maxConns: int64(maxConns), maxPerIP: int32(maxPerIP), logger: logger, seed: maphash.MakeSeed()}
	for ip, n := range overrides {
		if parsed := net.ParseIP(ip); parsed != nil {
			if l.overrides == nil {
				l.overrides = map[peerKey]int32{}
			}
			l.overrides[peerKeyOf(parsed)] = int32(min(n, unlimited))
		}
	}
	l.perIP = l.maxPerIP > 0 || len(l.overrides) > 0
	if l.perIP {
		for i := range l.shards {
			l.shards[i].counts = make(map[peerKey]int32)
		}
	}
	return l
}

func (l *connLimiter) shard(k *peerKey) *limiterShard {
	return &l.shards[maphash.Bytes(l.seed, k[:])&(connLimiterShards-1)]
}

// admit counts a new connection from k and reports whether it is within the
// limits; when it is not, nothing is counted and the caller closes it (and
// calls refuse). Safe from any goroutine; nil admits everything.
func (l *connLimiter) admit(k peerKey) (ok bool, reason string) {
	if l == nil {
		return true, ""
	}
	if l.creation != nil && !l.creation.take() {
		return false, "max.connection.creation.rate reached"
	}
	if l.admitIP != nil && !l.admitIP(net.IP(k[:])) {
		return false, "connection_creation_rate quota of the client address reached"
	}
	if l.maxConns > 0 && l.total.Add(1) > l.maxConns {
		l.total.Add(-1)
		return false, "max.connections reached"
	}
	if l.maxConns <= 0 {
		l.total.Add(1) // still counted: Stats and tests read it
	}
	if l.perIP {
		limit, overridden := l.overrides[k]
		if !overridden {
			limit = l.maxPerIP
		}
		s := l.shard(&k)
		s.mu.Lock()
		n := s.counts[k]
		if (overridden || limit > 0) && n >= limit {
			s.mu.Unlock()
			l.total.Add(-1)
			return false, "max.connections.per.ip reached"
		}
		s.counts[k] = n + 1
		s.mu.Unlock()
	}
	return true, ""
}

// release uncounts a connection admit accepted. It must be called exactly
// once per admitted connection, when its socket is closed.
func (l *connLimiter) release(k peerKey) {
	if l == nil {
		return
	}
	l.total.Add(-1)
	if l.perIP {
		s := l.shard(&k)
		s.mu.Lock()
		if n := s.counts[k]; n > 1 {
			s.counts[k] = n - 1
		} else {
			delete(s.counts, k) // the map holds only IPs with open connections
		}
		s.mu.Unlock()
	}
}

// refuse records a refused connection and logs it, at most one line per
// refusalLogInterval (with the number refused since the previous line).
// remote is formatted only when a line is written: a flood of refusals
// costs two atomic adds and a clock read each.
func (l *connLimiter) refuse(remote net.Addr, reason, backend string) {
	l.refused.Add(1)
	pending, due := l.lines.Event(refusalLogInterval)
	if !due {
		return
	}
	l.logger.Warn("connection refused: too many connections",
		zap.Stringer("remote", remote), zap.String("reason", reason),
		zap.Int64("max_connections", l.maxConns), zap.Int32("max_connections_per_ip", l.maxPerIP),
		zap.Int64("refused_since_last_line", pending), zap.String("backend", backend))
}

// refusedTotal is the number of connections refused since start.
func (l *connLimiter) refusedTotal() int64 {
	if l == nil {
		return 0
	}
	return l.refused.Load()
}
