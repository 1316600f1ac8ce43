package netpoll

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/ringbroker/ringbroker/internal/tlsrec"
)

// TLS connections on the io_uring loops (Options.TLSOnLoops; issue 19).
//
// A TLS listener's connections are still accepted by the portable half of
// the split server (a goroutine per listener) and their handshake runs in
// crypto/tls on a short-lived goroutine, bounded as before
// (HandshakeTimeout, MaxHandshaking). What changes is what follows: a
// connection that agreed on TLS 1.3 with an AEAD suite tlsrec serves
// (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305) is handed to a ring loop
// (an adoption): its socket, its client's admission in the connection
// limiter, its Session and its record layer. From then on it lives on the
// ring like a plaintext connection: ciphertext arrives in provided
// buffers and is decrypted in place (uring_tls.go), responses — file
// regions included, read from the page cache — are sealed into a
// per-connection send buffer. No goroutine stays with it.
//
// Everything else (TLS 1.2, a layer that is not a LoopLayer, the portable
// backend) keeps today's path: a reader and a writer goroutine around
// crypto/tls.
//
// The seam: LoopLayer.HandshakeForLoop returns the record layer the loop
// runs. A kernel-TLS layer would instead install the keys in the socket
// (TCP_ULP "tls") and return no user-space record layer: the loop would
// then serve the connection exactly as a plaintext one, splice included.

// LoopLayer is a SecureLayer whose connections an event loop can take over
// once their handshake is done.
type LoopLayer interface {
	SecureLayer
	// HandshakeForLoop runs nc's handshake. With records non-nil, the loop
	// serves nc from the end of the handshake with that record layer;
	// with tlsrec.ErrNotEligible, conn (a SecureConn whose handshake is
	// done) serves it the portable way; any other error closes it.
	HandshakeForLoop(ctx context.Context, nc net.Conn) (conn SecureConn, records *tlsrec.Conn, err error)
}

// HandshakeForLoop implements LoopLayer: the handshake runs with the
// configuration current at the ClientHello, with session tickets off and
// a key log that keeps this connection's traffic secrets.
func (g *GoTLS) HandshakeForLoop(ctx context.Context, nc net.Conn) (SecureConn, *tlsrec.Conn, error) {
	var secrets tlsrec.Secrets
	cfg := tlsrec.ServerConfig(g.base, &secrets)
	tc, rec, err := tlsrec.Handshake(ctx, nc, cfg, &secrets)
	if err != nil && !errors.Is(err, tlsrec.ErrNotEligible) {
		lingerAfterFailure(nc)
	}
	if tc == nil {
		return nil, nil, err
	}
	return tc, rec, err
}

// lingerFailedMax bounds the drain of a failed handshake's socket. It
// ends sooner when the client closes, as it does once it has read the
// alert; generous because a loaded machine can delay the client's first
// request (one arriving after the close meets a reset, and the client
// may never read the alert).
const (
	lingerFailedMax   = time.Second
	lingerFailedBytes = 256 << 10
)

// lingerAfterFailure reads what the client sent after its handshake
// failed on our side (a TLS 1.3 client sends its first request right
// after its Finished, before it learns that we refused its certificate),
// for a short bounded while: closing a socket with unread bytes sends a
// reset, which can overtake the alert already sent and hide it from the
// client. crypto/tls on the portable path reads ahead and so has usually
// consumed those bytes; RecordConn never does. It runs inside the
// handshake's slot (MaxHandshaking), so failing handshakes stay bounded.
func lingerAfterFailure(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(lingerFailedMax))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, lingerFailedBytes))
}

// adoption is a TLS connection handed from the handshake goroutine to a
// ring loop.
type adoption struct {
	fd      int
	remote  net.Addr
	key     peerKey
	limited bool // key is counted by the shared connection limiter
	sess    Session
	records *tlsrec.Conn
}

// errAdoptRefused: the ring server is shutting down; the caller closes the
// connection.
var errAdoptRefused = errors.New("ring server shutting down")
