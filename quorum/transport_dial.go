package quorum

// The dialing side of the transport: one runPeer goroutine per peer owns
// the outbound connection to it (see the picture in transport.go).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/ratelog"
)

// peer is one node this node sends to.
type peer struct {
	id     uint64
	addr   atomic.Pointer[string]
	queue  chan *raftpb.Message // raft messages waiting for the connection
	rpcs   chan *call           // RPC requests waiting for the connection
	slots  chan struct{}        // one per Call in progress: the in-flight bound
	ctx    context.Context      // ends on RemovePeer and Close
	cancel context.CancelFunc
	done   chan struct{} // closed when runPeer returns

	dropLog   ratelog.Every
	failLog   ratelog.Every // dial and handshake failures
	refuseLog ratelog.Every

	mu        sync.Mutex
	pending   map[uint64]*call // by correlation id
	conn      net.Conn         // the current connection, nil between connections
	stopped   bool
	connected bool
	lastErr   error
}

// call is one Call in progress.
type call struct {
	ctx    context.Context
	corr   uint64
	frame  []byte // the whole request frame
	result chan rpcResult
	sentOn net.Conn // guarded by peer.mu: the connection it was written on
}

type rpcResult struct {
	body []byte
	err  error
}

func (t *Transport) newPeer(id uint64, addr string) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{
		id:      id,
		queue:   make(chan *raftpb.Message, t.cfg.QueueLen),
		rpcs:    make(chan *call, t.cfg.MaxInflightRPC),
		slots:   make(chan struct{}, t.cfg.MaxInflightRPC),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		pending: make(map[uint64]*call),
		lastErr: ErrNotConnected,
	}
	p.addr.Store(&addr)
	return p
}

// stop ends the peer's goroutine and its connection. Idempotent.
func (p *peer) stop() {
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.conn != nil {
		p.conn.Close()
	}
}

// setConn records the current connection; false when the peer is stopped
// (the caller closes conn).
func (p *peer) setConn(conn net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.conn = conn
	return true
}

func (p *peer) setStatus(connected bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.connected, p.lastErr = connected, err
}

// runPeer dials the peer, serves the connection until it ends, backs off
// and dials again, until the peer is stopped.
func (t *Transport) runPeer(p *peer) {
	defer t.wg.Done()
	defer close(p.done)
	var backoff time.Duration
	for p.ctx.Err() == nil {
		handshaken, err := t.connectAndServe(p)
		if p.ctx.Err() != nil {
			return
		}
		p.setStatus(false, err)
		if handshaken {
			backoff = 0
		}
		backoff = nextBackoff(backoff, t.cfg.MinBackoff, t.cfg.MaxBackoff)
		t.logPeerError(p, err, backoff)
		if !t.waitBackoff(p, jitter(backoff)) {
			return
		}
	}
}

func (t *Transport) logPeerError(p *peer, err error, backoff time.Duration) {
	var refused *RefusedError
	if errors.As(err, &refused) {
		if n, due := p.refuseLog.Event(logInterval); due {
			t.log.Warn("quorum transport: peer refused the connection; retrying", zap.Uint64("peer", p.id),
				zap.String("addr", refused.Addr), zap.Stringer("code", refused.Code), zap.String("reason", refused.Reason),
				zap.Duration("retry_in", backoff), zap.Int64("refusals_since_last_line", n))
		}
		return
	}
	if n, due := p.failLog.Event(logInterval); due {
		t.log.Warn("quorum transport: connection to peer failed; retrying", zap.Uint64("peer", p.id),
			zap.String("addr", *p.addr.Load()), zap.Error(err), zap.Duration("retry_in", backoff),
			zap.Int64("failures_since_last_line", n))
	}
}

// waitBackoff waits d, dropping the raft messages queued meanwhile (raft
// learns the peer is unreachable now rather than after the next dial);
// false when the peer is stopped.
func (t *Transport) waitBackoff(p *peer, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return false
		case <-timer.C:
			return true
		case m := <-p.queue:
			t.dropped(p, m, "not connected")
		}
	}
}

// connectAndServe makes one connection to the peer and writes its queued
// frames until the connection fails or the peer stops. handshaken reports
// whether the handshake was accepted.
func (t *Transport) connectAndServe(p *peer) (handshaken bool, err error) {
	addr := *p.addr.Load()
	conn, err := t.dial(p.ctx, addr)
	if err != nil {
		return false, err
	}
	if !p.setConn(conn) {
		conn.Close()
		return false, ErrClosed
	}
	defer func() {
		p.mu.Lock()
		p.conn = nil
		p.mu.Unlock()
		conn.Close()
	}()
	br := bufio.NewReaderSize(conn, 16<<10)
	if err := t.handshake(p, conn, br, addr); err != nil {
		return false, err
	}
	p.setStatus(true, nil)

	readerExit := make(chan struct{})
	var readerErr error // written by the reader before it closes readerExit
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer close(readerExit)
		readerErr = t.readOutbound(p, conn, br)
	}()
	err = t.writeOutbound(p, conn, readerExit)
	conn.Close()
	<-readerExit
	if err == nil {
		err = readerErr
	}
	t.failSent(p, conn)
	return true, err
}

// handshake sends this node's handshake and reads the answer.
func (t *Transport) handshake(p *peer, conn net.Conn, br *bufio.Reader, addr string) error {
	return t.handshakeTo(p.id, conn, br, addr)
}

// handshakeTo is handshake to node id to (0: whichever node listens at
// addr, which only a dynamic quorum's node accepts).
func (t *Transport) handshakeTo(to uint64, conn net.Conn, br *bufio.Reader, addr string) error {
	if err := conn.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		return err
	}
	frame, start := beginFrame(nil, frameHandshake)
	frame = endFrame(appendHandshake(frame, &handshake{
		Version:   protocolVersion,
		ClusterID: t.cfg.ClusterID,
		From:      t.cfg.NodeID,
		To:        to,
		Instance:  t.instance,
		Voters:    t.voters,
	}), start)
	if _, err := conn.Write(frame); err != nil {
		return fmt.Errorf("send handshake: %w", err)
	}
	typ, payload, err := readFrame(br, handshakeFrameMax, nil)
	if err != nil {
		return fmt.Errorf("read handshake answer: %w", err)
	}
	switch typ {
	case frameAccept:
		version, _, err := decodeAccept(payload)
		if err != nil {
			return err
		}
		if version != protocolVersion {
			return fmt.Errorf("peer accepted with protocol version %d, this node speaks %d", version, protocolVersion)
		}
	case frameRefuse:
		code, reason, err := decodeRefuse(payload)
		if err != nil {
			return err
		}
		return &RefusedError{Peer: to, Addr: addr, Code: code, Reason: reason}
	default:
		return fmt.Errorf("handshake answered with frame type %d", typ)
	}
	return conn.SetDeadline(time.Time{})
}

// writeOutbound writes queued raft messages, RPC requests and pings until
// the connection fails (readerDone) or the peer stops.
func (t *Transport) writeOutbound(p *peer, conn net.Conn, readerExit <-chan struct{}) error {
	ping := time.NewTicker(t.cfg.IdleTimeout / 3)
	defer ping.Stop()
	var buf []byte
	// snapshotInBuf: buf holds a MsgSnap; snapshotSent: one was written on
	// this connection.
	snapshotInBuf, snapshotSent := false, false
	defer func() {
		// Written is not received: a snapshot whose connection ends may
		// be lost, and raft waits for it until told.
		if (snapshotSent || snapshotInBuf) && t.cfg.OnSnapshotFailed != nil {
			t.cfg.OnSnapshotFailed(p.id)
		}
	}()
	for {
		buf = buf[:0]
		select {
		case <-p.ctx.Done():
			return ErrClosed
		case <-readerExit:
			return nil // the reader's error tells why
		case m := <-p.queue:
			buf = t.appendQueuedRaft(p, buf, m, &snapshotInBuf)
		case c := <-p.rpcs:
			buf = p.appendQueuedCall(buf, c, conn)
		case <-ping.C:
			buf = appendEmptyFrame(buf, framePing)
		}
	gather:
		for len(buf) < writeBatchBytes {
			select {
			case m := <-p.queue:
				buf = t.appendQueuedRaft(p, buf, m, &snapshotInBuf)
			case c := <-p.rpcs:
				buf = p.appendQueuedCall(buf, c, conn)
			default:
				break gather
			}
		}
		if len(buf) == 0 {
			continue
		}
		if err := conn.SetWriteDeadline(time.Now().Add(t.cfg.IdleTimeout)); err != nil {
			return err
		}
		if _, err := conn.Write(buf); err != nil {
			return err
		}
		if snapshotInBuf {
			snapshotInBuf, snapshotSent = false, true
			if t.cfg.OnSnapshotSent != nil {
				t.cfg.OnSnapshotSent(p.id)
			}
		}
		if cap(buf) > 2*writeBatchBytes {
			buf = nil // one huge message is not a reason to keep its buffer
		}
	}
}

// appendQueuedRaft appends a raft message frame, or drops the message when
// it does not encode within MaxFrame; it sets *snapshotInBuf for a MsgSnap.
func (t *Transport) appendQueuedRaft(p *peer, buf []byte, m *raftpb.Message, snapshotInBuf *bool) []byte {
	out, err := marshalRaft(buf, m, t.cfg.MaxFrame)
	if err != nil {
		if n, due := t.protocolLog.Event(logInterval); due {
			t.log.Error("quorum transport: raft message not sendable (raft's MaxSizePerMsg must stay below MaxFrame)",
				zap.Uint64("peer", p.id), zap.Stringer("type", m.GetType()), zap.Error(err), zap.Int64("since_last_line", n))
		}
		t.dropped(p, m, "not sendable")
		return buf
	}
	if m.GetType() == raftpb.MsgSnap {
		*snapshotInBuf = true
	}
	return out
}

// appendQueuedCall appends a call's request unless its caller gave up,
// and records which connection carries it.
func (p *peer) appendQueuedCall(buf []byte, c *call, conn net.Conn) []byte {
	if c.ctx.Err() != nil {
		return buf
	}
	p.mu.Lock()
	_, waiting := p.pending[c.corr]
	c.sentOn = conn
	p.mu.Unlock()
	if !waiting {
		return buf
	}
	return append(buf, c.frame...)
}

// failSent fails the calls written on conn, which has ended.
func (t *Transport) failSent(p *peer, conn net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for corr, c := range p.pending {
		if c.sentOn == conn {
			delete(p.pending, corr)
			c.result <- rpcResult{err: ErrConnectionLost}
		}
	}
}

// readOutbound reads RPC responses and pongs from an outbound connection
// until it fails, and returns why.
func (t *Transport) readOutbound(p *peer, conn net.Conn, br *bufio.Reader) error {
	fr := t.frameReader(conn, br)
	for {
		typ, payload, err := fr.next()
		if err != nil {
			return err
		}
		switch typ {
		case framePong:
		case frameRPCResponse:
			s, err := decodeRPCResponse(payload)
			if err != nil {
				return err
			}
			p.mu.Lock()
			c := p.pending[s.Correlation]
			delete(p.pending, s.Correlation)
			p.mu.Unlock()
			if c == nil {
				continue // the caller gave up
			}
			r := rpcResult{body: append([]byte(nil), s.Body...)}
			if s.ErrCode != 0 {
				r = rpcResult{err: &RemoteError{Code: s.ErrCode, Message: s.ErrMessage}}
			}
			c.result <- r
		default:
			return fmt.Errorf("unexpected frame type %d from the acceptor", typ)
		}
	}
}

// CallAddr sends one RPC to whichever node of a dynamic quorum listens at
// addr, on a connection of its own that it closes after the answer: how a
// node that knows only the bootstrap servers' addresses
// (controller.quorum.bootstrap.servers), not their ids, reaches the quorum.
// ctx bounds the whole call.
func (t *Transport) CallAddr(ctx context.Context, addr string, key, version int16, body []byte) ([]byte, error) {
	if !t.cfg.Dynamic {
		return nil, errors.New("quorum transport: CallAddr needs a dynamic quorum")
	}
	conn, err := t.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	br := bufio.NewReaderSize(conn, 16<<10)
	if err := t.handshakeTo(0, conn, br, addr); err != nil {
		return nil, err
	}
	corr := t.nextCorr.Add(1)
	if _, err := conn.Write(appendRPCRequest(nil, &rpcRequest{Correlation: corr, Key: key, Version: version, Body: body})); err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
	}
	for {
		typ, payload, err := readFrame(br, t.cfg.MaxFrame, nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if typ != frameRPCResponse {
			continue // a pong
		}
		s, err := decodeRPCResponse(payload)
		if err != nil {
			return nil, err
		}
		if s.Correlation != corr {
			return nil, fmt.Errorf("quorum transport: answer to call %d, expected %d", s.Correlation, corr)
		}
		if s.ErrCode != 0 {
			return nil, &RemoteError{Code: s.ErrCode, Message: s.ErrMessage}
		}
		return s.Body, nil
	}
}

// dial connects to addr within HandshakeTimeout: through cfg.Dial when
// set (a TLS controller listener), else plain TCP.
func (t *Transport) dial(ctx context.Context, addr string) (net.Conn, error) {
	if t.cfg.Dial != nil {
		ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
		defer cancel()
		return t.cfg.Dial(ctx, "tcp", addr)
	}
	d := net.Dialer{Timeout: t.cfg.HandshakeTimeout}
	return d.DialContext(ctx, "tcp", addr)
}
