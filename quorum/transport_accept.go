package quorum

// The accepting side of the transport: the accept loop and one
// serveInbound goroutine per inbound connection (see transport.go).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// inConn is one inbound connection.
type inConn struct {
	conn   net.Conn
	ctx    context.Context // ends when the connection does: OnRPC's ctx
	cancel context.CancelFunc
	slots  chan struct{} // one per OnRPC handler running

	// Set by the handshake, before the connection is in inboundByID.
	id       uint64
	instance uint64
	observer bool // not a voter: RPCs and pings only (AcceptObservers)

	writeMu sync.Mutex // RPC handlers and the reader (pongs) write
}

func (ic *inConn) close() {
	ic.cancel()
	ic.conn.Close()
}

// write writes whole frames, one writer at a time.
func (ic *inConn) write(b []byte, timeout time.Duration) error {
	ic.writeMu.Lock()
	defer ic.writeMu.Unlock()
	if err := ic.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := ic.conn.Write(b)
	return err
}

// acceptLoop accepts until the listener closes.
func (t *Transport) acceptLoop(ln net.Listener) {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			t.mu.Lock()
			closed := t.closed
			t.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: pause rather than spin.
			backoff = nextBackoff(backoff, 5*time.Millisecond, time.Second)
			if n, due := t.acceptLog.Event(logInterval); due {
				t.log.Warn("quorum transport: accept failed; retrying after a pause", zap.Error(err),
					zap.Duration("retry_in", backoff), zap.Int64("failed_since_last_line", n))
			}
			pause := time.NewTimer(backoff)
			select {
			case <-pause.C:
			case <-t.closing:
				pause.Stop()
				return
			}
			continue
		}
		backoff = 0
		ctx, cancel := context.WithCancel(context.Background())
		ic := &inConn{conn: conn, ctx: ctx, cancel: cancel, slots: make(chan struct{}, t.cfg.MaxInflightRPC)}
		t.mu.Lock()
		switch {
		case t.closed:
			t.mu.Unlock()
			ic.close()
			return
		case len(t.inbound) >= t.cfg.MaxInbound:
			t.mu.Unlock()
			// Best effort and never blocking the loop: no lingering.
			reason := fmt.Sprintf("node %d has %d inbound connections, its cap", t.cfg.NodeID, t.cfg.MaxInbound)
			t.logRefusal(RefuseTooManyConns, conn, reason)
			_ = ic.write(t.refuseFrame(RefuseTooManyConns, reason), 10*time.Millisecond)
			ic.close()
			continue
		}
		t.inbound[ic] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serveInbound(ic)
	}
}

func (t *Transport) refuseFrame(code RefuseCode, reason string) []byte {
	frame, start := beginFrame(nil, frameRefuse)
	return endFrame(appendRefuse(frame, code, reason), start)
}

func (t *Transport) logRefusal(code RefuseCode, conn net.Conn, reason string) {
	e := &t.refuseLogs[0]
	if int(code) > 0 && int(code) < len(t.refuseLogs) {
		e = &t.refuseLogs[code]
	}
	if n, due := e.Event(logInterval); due {
		t.log.Warn("quorum transport: refused an inbound connection", zap.Stringer("remote", conn.RemoteAddr()),
			zap.Stringer("code", code), zap.String("reason", reason), zap.Int64("refused_since_last_line", n))
	}
}

// serveInbound runs the handshake of an inbound connection and then reads
// its frames until it ends.
func (t *Transport) serveInbound(ic *inConn) {
	defer t.wg.Done()
	defer t.dropInbound(ic)
	conn := ic.conn
	if err := conn.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		return
	}
	br := bufio.NewReaderSize(conn, 16<<10)
	code, reason := t.acceptHandshake(ic, br)
	if code != 0 {
		t.refuse(ic, code, reason)
		return
	}
	accept, start := beginFrame(nil, frameAccept)
	if err := ic.write(endFrame(appendAccept(accept, t.instance), start), t.cfg.HandshakeTimeout); err != nil {
		return
	}
	err := t.readInbound(ic, br)
	if !isClosedConn(err) && ic.ctx.Err() == nil {
		if n, due := t.protocolLog.Event(logInterval); due {
			t.log.Warn("quorum transport: closing an inbound connection", zap.Uint64("peer", ic.id),
				zap.Stringer("remote", conn.RemoteAddr()), zap.Error(err), zap.Int64("since_last_line", n))
		}
	}
}

// acceptHandshake reads and checks the handshake; on success the
// connection is registered as the sender's and the code is 0.
func (t *Transport) acceptHandshake(ic *inConn, br *bufio.Reader) (RefuseCode, string) {
	typ, payload, err := readFrame(br, handshakeFrameMax, nil)
	switch {
	case err != nil:
		return RefuseMalformed, "reading the handshake: " + err.Error()
	case typ != frameHandshake:
		return RefuseMalformed, fmt.Sprintf("the first frame must be a handshake (type %d), got type %d", frameHandshake, typ)
	}
	h, err := decodeHandshake(payload)
	if err != nil {
		var v *versionError
		if errors.As(err, &v) {
			return RefuseVersion, err.Error()
		}
		return RefuseMalformed, err.Error()
	}
	self := t.cfg.NodeID
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return RefuseClosing, fmt.Sprintf("node %d is shutting down", self)
	case h.ClusterID != t.cfg.ClusterID:
		return RefuseClusterID, fmt.Sprintf("node %d is in cluster %q, the sender (node %d) in cluster %q", self, t.cfg.ClusterID, h.From, h.ClusterID)
	case h.To != self && !(t.cfg.Dynamic && h.To == 0):
		return RefuseWrongNode, fmt.Sprintf("this is node %d, the sender (node %d) expected node %d here: stale address?", self, h.From, h.To)
	case !slices.Equal(h.Voters, t.voters):
		return RefuseVoters, fmt.Sprintf("node %d has voters %s, the sender (node %d) has %s", self, votersString(t.voters), h.From, votersString(h.Voters))
	case h.From == self:
		return RefuseDuplicateID, fmt.Sprintf("the sender claims this node's own id %d", self)
	case t.peers[h.From] == nil && !t.cfg.AcceptObservers:
		return RefuseUnknownPeer, fmt.Sprintf("node %d is not a voter or known peer of node %d", h.From, self)
	}
	// In a dynamic quorum a node learns the other members' endpoints from
	// the log the leader sends it, so the leader's raft messages must be
	// taken before the leader is a known peer here.
	ic.observer = t.peers[h.From] == nil && !t.cfg.Dynamic
	if old := t.inboundByID[h.From]; old != nil {
		if old.instance != h.Instance {
			return RefuseDuplicateID, fmt.Sprintf("node %d is already connected to node %d from %s as instance %x; this connection from %s is instance %x: two processes with one node id?",
				h.From, self, old.conn.RemoteAddr(), old.instance, ic.conn.RemoteAddr(), h.Instance)
		}
		// The same process dialed again: its old connection is dead to it.
		old.close()
	}
	ic.id, ic.instance = h.From, h.Instance
	t.inboundByID[h.From] = ic
	return 0, ""
}

// refuse writes a refusal and closes the connection gracefully: a close
// with unread input resets the connection, which can destroy the refusal
// before the dialer reads it, so the input is drained (bounded) first.
func (t *Transport) refuse(ic *inConn, code RefuseCode, reason string) {
	t.logRefusal(code, ic.conn, reason)
	if err := ic.write(t.refuseFrame(code, reason), lingerTime); err != nil {
		return
	}
	if tc, ok := ic.conn.(interface{ CloseWrite() error }); ok {
		if tc.CloseWrite() == nil && ic.conn.SetReadDeadline(time.Now().Add(lingerTime)) == nil {
			_, _ = io.CopyN(io.Discard, ic.conn, lingerBytesMax)
		}
	}
}

// dropInbound forgets a connection that ended.
func (t *Transport) dropInbound(ic *inConn) {
	ic.close()
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.inbound, ic)
	if t.inboundByID[ic.id] == ic {
		delete(t.inboundByID, ic.id)
	}
}

// readInbound reads raft messages, RPC requests and pings until the
// connection fails, and returns why (never nil); a protocol error ends it.
func (t *Transport) readInbound(ic *inConn, br *bufio.Reader) error {
	fr := t.frameReader(ic.conn, br)
	for {
		typ, payload, err := fr.next()
		if err != nil {
			return err
		}
		switch typ {
		case frameRaft:
			if ic.observer {
				return fmt.Errorf("raft message from observer %d", ic.id)
			}
			m := &raftpb.Message{}
			if err := proto.Unmarshal(payload, m); err != nil {
				return fmt.Errorf("raft message: %w", err)
			}
			if m.GetFrom() != ic.id || m.GetTo() != t.cfg.NodeID {
				return fmt.Errorf("raft message from %d to %d on the connection of node %d to node %d",
					m.GetFrom(), m.GetTo(), ic.id, t.cfg.NodeID)
			}
			if t.cfg.OnMessage != nil {
				t.cfg.OnMessage(m)
			}
		case frameRPCRequest:
			q, err := decodeRPCRequest(payload)
			if err != nil {
				return err
			}
			if err := t.startRPC(ic, q); err != nil {
				return err
			}
		case framePing:
			if err := ic.write(appendEmptyFrame(nil, framePong), t.cfg.IdleTimeout); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected frame type %d from node %d", typ, ic.id)
		}
	}
}

// startRPC runs OnRPC for q on a goroutine of its own, or answers busy
// when the connection's handlers are at their cap.
func (t *Transport) startRPC(ic *inConn, q rpcRequest) error {
	switch {
	case t.cfg.OnRPC == nil:
		return ic.write(appendRPCResponse(nil, &rpcResponse{Correlation: q.Correlation, ErrCode: rpcErrNoHandler,
			ErrMessage: fmt.Sprintf("node %d serves no RPCs", t.cfg.NodeID)}), t.cfg.IdleTimeout)
	}
	select {
	case ic.slots <- struct{}{}:
	default:
		return ic.write(appendRPCResponse(nil, &rpcResponse{Correlation: q.Correlation, ErrCode: rpcErrBusy,
			ErrMessage: fmt.Sprintf("node %d has %d RPCs of this connection in flight", t.cfg.NodeID, t.cfg.MaxInflightRPC)}), t.cfg.IdleTimeout)
	}
	q.Body = append([]byte(nil), q.Body...) // the frame buffer is reused
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		body, err := t.cfg.OnRPC(ic.ctx, ic.id, q.Key, q.Version, q.Body)
		// The slot is free once the response is ready, before it is
		// written: the caller releases its own slot only after reading the
		// response, so a caller that keeps to MaxInflightRPC is never told
		// busy. The write that follows is bounded by IdleTimeout.
		<-ic.slots
		s := rpcResponse{Correlation: q.Correlation, Body: body}
		switch {
		case err != nil:
			s = rpcResponse{Correlation: q.Correlation, ErrCode: rpcErrHandler, ErrMessage: err.Error()}
		case 1+rpcResponseOverhead+len(body) > t.cfg.MaxFrame:
			s = rpcResponse{Correlation: q.Correlation, ErrCode: rpcErrTooLarge,
				ErrMessage: fmt.Sprintf("response of %d bytes does not fit a frame of %d", len(body), t.cfg.MaxFrame)}
		}
		// A failed write ends the connection through its reader.
		if ic.write(appendRPCResponse(nil, &s), t.cfg.IdleTimeout) != nil {
			ic.close()
		}
	}()
	return nil
}
