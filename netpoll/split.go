package netpoll

import (
	"context"
	"errors"
	"net"
)

// splitServer serves a Server's plaintext listeners on io_uring and its
// TLS listeners on the portable backend (tls.go); with TLSOnLoops the
// portable half accepts and handshakes, and hands TLS 1.3 connections to
// the rings (tls_loop.go).
// The two halves share the connection limiter; the in-flight byte budget
// (MaxQueuedBytes) is split between them in proportion to their
// listeners, so the process-wide bound holds.
type splitServer struct {
	uring    *uringServer
	portable *portableServer
	// order maps Server listener index to (half, index in the half).
	order []splitRef
}

type splitRef struct {
	secure bool
	idx    int
}

// listenSplit starts a splitServer, or with Backend auto and io_uring
// unusable, one portable server for every listener.
func listenSplit(opts Options) (*Server, error) {
	var plainIDs, secureIDs []int
	order := make([]splitRef, len(opts.Listeners))
	for i := range opts.Listeners {
		if opts.secureLayer(i) != nil {
			order[i] = splitRef{secure: true, idx: len(secureIDs)}
			secureIDs = append(secureIDs, i)
		} else {
			order[i] = splitRef{idx: len(plainIDs)}
			plainIDs = append(plainIDs, i)
		}
	}
	note := "TLS listeners are served by the portable backend's connection goroutines (ring.ssl.loop.enable=false)"
	onLoops := opts.TLSOnLoops
	if onLoops {
		note = "TLS 1.3 connections are served by the io_uring loops after their handshake; TLS 1.2 ones by the portable backend's connection goroutines"
	}
	if len(plainIDs) == 0 && !onLoops {
		if opts.Backend == BackendUring {
			if err := probeUring(opts); err != nil {
				return nil, err
			}
		}
		pb, err := listenPortable(opts)
		if err != nil {
			return nil, err
		}
		return &Server{b: pb, name: BackendPortable, tlsNote: "every listener is TLS: " + note}, nil
	}
	limiter := newServerLimiter(opts)
	plain := opts
	plain.Listeners, plain.Secure, plain.listenerIDs, plain.limiter = pick(opts.Listeners, plainIDs), nil, plainIDs, limiter
	plain.MaxQueuedBytes = max(opts.MaxQueuedBytes*int64(len(plainIDs))/int64(len(opts.Listeners)), 1<<20)
	secure := opts
	secure.Listeners, secure.Secure, secure.listenerIDs, secure.limiter = pick(opts.Listeners, secureIDs), pickSecure(opts, secureIDs), secureIDs, limiter
	secure.MaxQueuedBytes = max(opts.MaxQueuedBytes-plain.MaxQueuedBytes, 1<<20)
	if onLoops {
		// TLS 1.3 connections move to the rings: the portable half keeps a
		// quarter of the TLS listeners' share, for TLS 1.2 clients.
		secure.MaxQueuedBytes = max(opts.MaxQueuedBytes*int64(len(secureIDs))/int64(len(opts.Listeners))/4, 1<<20)
		plain.MaxQueuedBytes = max(opts.MaxQueuedBytes-secure.MaxQueuedBytes, 1<<20)
	}
	// The TLS listeners are bound before the rings start: once any
	// listener answers, every one of them accepts.
	var err error
	if secure.bound, err = bindListeners(secure.Listeners); err != nil {
		return nil, err
	}
	closeBound := func() {
		for _, ln := range secure.bound {
			ln.Close()
		}
	}
	u, err := listenUring(plain)
	if err != nil {
		closeBound()
		if opts.Backend == BackendUring || !fallbackAllowed(err) {
			return nil, err
		}
		pb, perr := listenPortable(opts)
		if perr != nil {
			return nil, perr
		}
		return &Server{b: pb, name: BackendPortable, fallbackReason: err.Error()}, nil
	}
	if onLoops {
		secure.adopt = u.adopt
	}
	p, err := listenPortable(secure)
	if err != nil {
		closeBound()
		_ = u.shutdown(context.Background())
		return nil, err
	}
	return &Server{b: &splitServer{uring: u, portable: p, order: order}, name: BackendUring, tlsNote: note}, nil
}

// probeUring checks that io_uring could serve (Backend uring with every
// listener TLS: nothing runs on it, but asking for it must still fail
// where it is unusable).
func probeUring(opts Options) error {
	o := opts
	o.Listeners, o.Secure, o.Loops = []string{"127.0.0.1:0"}, nil, 1
	u, err := listenUring(o)
	if err != nil {
		return err
	}
	return u.shutdown(context.Background())
}

func pick(addrs []string, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = addrs[id]
	}
	return out
}

func pickSecure(opts Options, ids []int) []SecureLayer {
	out := make([]SecureLayer, len(ids))
	for i, id := range ids {
		out[i] = opts.secureLayer(id)
	}
	return out
}

func (s *splitServer) addrs() []net.Addr {
	ua, pa := s.uring.addrs(), s.portable.addrs()
	out := make([]net.Addr, len(s.order))
	for i, r := range s.order {
		if r.secure {
			out[i] = pa[r.idx]
		} else {
			out[i] = ua[r.idx]
		}
	}
	return out
}

func (s *splitServer) shutdown(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.portable.shutdown(ctx) }()
	err := s.uring.shutdown(ctx)
	return errors.Join(err, <-errc)
}

func (s *splitServer) stats() Stats {
	a, b := s.uring.stats(), s.portable.stats()
	return Stats{Conns: a.Conns + b.Conns, MutedConns: a.MutedConns + b.MutedConns, Accepted: a.Accepted + b.Accepted,
		// The limiter is shared: its refusals are counted once.
		Refused: a.Refused}
}

func (s *splitServer) liveness() error { return s.uring.liveness() }
