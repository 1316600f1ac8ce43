package netpoll

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/ratelog"
)

// TLS listeners (issue 19).
//
// The record layer sits behind one seam, SecureLayer: it wraps an
// accepted socket into a SecureConn whose handshake runs before the
// framer sees a byte and whose Read/Write carry plaintext. Its one
// implementation is GoTLS (crypto/tls). A layer that is also a LoopLayer
// (tls_loop.go; GoTLS is) lets the io_uring backend take a connection
// over after its handshake: TLS 1.3 connections then live on the rings
// with an in-loop record layer (internal/tlsrec, uring_tls.go), and a
// kernel-TLS layer would plug in at the same place.
//
// Where connections are served: TLS listeners are accepted and
// handshaken by a portable server (splitServer on io_uring, split.go). A
// connection the loops do not take (the portable backend, TLS 1.2,
// Options.TLSOnLoops off) is served by the portable machinery: a reader
// and a writer goroutine, a copy per record into and out of crypto/tls,
// file regions read (pread) before they are encrypted.
//
// Bounds: a handshake not finished within Options.HandshakeTimeout is
// closed, and at most Options.MaxHandshaking handshakes run at once per
// process (a connection over it is closed at accept). Nothing reaches the
// Handler before the handshake completed.

// SecureLayer turns an accepted connection of a TLS listener into a
// SecureConn. Implementations are safe for concurrent use.
type SecureLayer interface {
	Server(nc net.Conn) SecureConn
}

// SecureConn is one connection's record layer: HandshakeContext runs the
// handshake (bounded by ctx), then Read and Write move plaintext.
type SecureConn interface {
	net.Conn
	HandshakeContext(ctx context.Context) error
	ConnectionState() tls.ConnectionState
}

// TLSSessionOpener is a SessionOpener that also takes the TLS state of a
// connection: netpoll calls OpenTLSSession instead of OpenSession for
// connections of a TLS listener, once their handshake completed (the
// client certificate names the principal on an SSL listener).
type TLSSessionOpener interface {
	SessionOpener
	OpenTLSSession(listener int, remote net.Addr, state *tls.ConnectionState) Session
}

// GoTLS is the SecureLayer on crypto/tls. Its configuration may be
// replaced at any time (SetConfig, certificate reload): a connection uses
// the configuration current when its ClientHello arrives.
type GoTLS struct {
	cfg  atomic.Pointer[tls.Config]
	base *tls.Config
}

// NewGoTLS returns a GoTLS serving cfg.
func NewGoTLS(cfg *tls.Config) *GoTLS {
	g := &GoTLS{}
	g.cfg.Store(cfg)
	g.base = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return g.cfg.Load(), nil
	}}
	return g
}

// SetConfig makes cfg the configuration of connections accepted from now.
func (g *GoTLS) SetConfig(cfg *tls.Config) { g.cfg.Store(cfg) }

// Config is the current configuration.
func (g *GoTLS) Config() *tls.Config { return g.cfg.Load() }

// Server implements SecureLayer.
func (g *GoTLS) Server(nc net.Conn) SecureConn { return tls.Server(nc, g.base) }

// secureLayer is listener's SecureLayer (listener: an index into
// Options.Listeners), nil for a plaintext listener.
func (o *Options) secureLayer(listener int) SecureLayer {
	if listener < 0 || listener >= len(o.Secure) {
		return nil
	}
	return o.Secure[listener]
}

// hasSecure reports whether some listener is a TLS listener.
func (o *Options) hasSecure() bool {
	for _, l := range o.Secure {
		if l != nil {
			return true
		}
	}
	return false
}

// rateLogger writes a warning at most once a second, counting the events
// in between (a client failing handshakes in a loop must not flood the
// log).
type rateLogger struct{ lines ratelog.Every }

func (r *rateLogger) log(logger *zap.Logger, msg string, fields ...zap.Field) {
	n, due := r.lines.Event(time.Second)
	if !due {
		return
	}
	logger.Warn(msg, append(fields, zap.Int64("events_since_last_line", n), zap.String("backend", BackendPortable))...)
}
