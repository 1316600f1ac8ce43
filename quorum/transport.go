package quorum

// The quorum transport: raft messages and controller RPCs between nodes,
// in the frames of frame.go over TCP.
//
// Shape (one Transport per node):
//
//	              Send(msgs) ──► peer.queue (bounded, drop when full) ─┐
//	              Call(...)  ──► peer.rpcs ────────────────────────────┤
//	                                                                   ▼
//	  runPeer (one goroutine per peer): dial, handshake, write frames; a reader
//	  goroutine per connection takes RPC responses and pongs. Between
//	  connections: backoff with jitter, queued raft messages dropped and
//	  reported unreachable.
//
//	  acceptLoop (one goroutine): accept, cap inbound connections, one
//	  serveInbound goroutine per connection: handshake check, then raft
//	  messages to OnMessage, RPC requests to OnRPC (at most MaxInflightRPC
//	  handler goroutines per connection), pings answered with pongs.
//
// Each node dials every peer for the traffic it originates; the peer's
// traffic towards it arrives on the peer's own connection. Raft tolerates
// loss and reordering across reconnects, so a message dropped on a full
// queue or a dead connection is reported to raft (OnUnreachable,
// OnSnapshotFailed) and never retried here.
//
// Liveness: the dialer pings every IdleTimeout/3 and the acceptor answers
// with a pong; either side closes a connection that stays silent for
// IdleTimeout. That bounds how long a half-open connection (a crashed host)
// can make its peer refuse the restarted node as a duplicate id.
//
// Concurrency: Transport.mu guards the peer map, the inbound connection
// sets, started and closed. peer.mu guards the peer's pending calls, its
// current connection and status. Lock order: Transport.mu before peer.mu;
// no callback (OnMessage, OnRPC, OnUnreachable, OnSnapshotFailed) runs
// under a lock.
//
// Rejected: one connection per pair of nodes carrying both directions. It
// needs a tie-break when both nodes dial at once and makes the duplicate-id
// check depend on who won; etcd's rafthttp uses one stream per direction
// for the same reason.

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ringbroker/ringbroker/internal/ratelog"
)

// Defaults of TransportConfig.
const (
	DefaultMaxFrame         = 16 << 20
	DefaultQueueLen         = 1024
	DefaultMinBackoff       = 50 * time.Millisecond
	DefaultMaxBackoff       = 5 * time.Second
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultIdleTimeout      = 10 * time.Second
	DefaultMaxInbound       = 1024
	DefaultMaxInflightRPC   = 64
)

const (
	// logInterval is the least time between two lines of one rate-limited
	// kind (per peer for the dialer, per refusal code for the acceptor).
	logInterval = 10 * time.Second
	// writeBatchBytes is how many bytes of queued frames the writer
	// gathers into one write.
	writeBatchBytes = 1 << 20
	// readBufferKeep is the largest payload buffer a connection keeps
	// between frames; a bigger frame gets its own buffer, dropped after.
	readBufferKeep = 64 << 10
	// lingerMax bounds the bytes and time a refused connection is drained
	// for after the refusal is written, so closing it does not reset the
	// connection before the refusal reaches the dialer.
	lingerBytesMax = 64 << 10
	lingerTime     = time.Second
)

// TransportConfig configures a Transport. Zero durations and sizes take
// the defaults above.
type TransportConfig struct {
	// NodeID is this node's raft id (non-zero).
	NodeID uint64
	// ClusterID must be the same on every node (at most 1024 bytes).
	ClusterID string
	// ListenAddr is the host:port to listen on ("127.0.0.1:0" picks a
	// port); empty listens on this node's address in Peers. Ignored when
	// Listener is set.
	ListenAddr string
	// Listener, when set, is used instead of listening on ListenAddr; the
	// Transport closes it. Tests use it to know every port before the
	// voter set is built.
	Listener net.Listener
	// WrapListener, when set, wraps the listener (given or opened) before
	// it accepts: a TLS controller listener's tls.NewListener.
	WrapListener func(net.Listener) net.Listener
	// Dial, when set, opens connections to peers and bootstrap servers
	// (a TLS controller listener's dialer, handshake done); nil: plain
	// TCP. The context bounds the dial (HandshakeTimeout).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Peers is the voter set, this node included: id -> host:port. Every
	// node must have the same set (the handshake compares them). Nodes
	// added later with AddPeer are known but not voters.
	Peers map[uint64]string
	// MaxFrame bounds a frame after the handshake (raft messages, RPC
	// bodies); raft's MaxSizePerMsg must be well below it. Bigger frames
	// end the connection; a raft message that would not fit is dropped
	// and logged.
	MaxFrame int
	// QueueLen bounds the raft messages queued for one peer.
	QueueLen int
	// MinBackoff and MaxBackoff bound the reconnect backoff, which doubles
	// per failed attempt with jitter and resets after a handshake.
	MinBackoff, MaxBackoff time.Duration
	// HandshakeTimeout bounds dialing and the handshake, both sides.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that receives nothing for this long
	// (pings go every IdleTimeout/3).
	IdleTimeout time.Duration
	// MaxInbound caps the inbound connections, handshaking ones included.
	MaxInbound int
	// MaxInflightRPC caps the RPCs in flight per peer (Call) and per
	// inbound connection (OnRPC handlers).
	MaxInflightRPC int
	// Logger gets rate-limited warnings; nil logs nothing.
	Logger *zap.Logger

	// OnMessage receives each raft message addressed to this node, from
	// the reading goroutine of the sender's connection: messages from one
	// peer arrive in order, from different peers concurrently. While it
	// runs, that connection is not read.
	OnMessage func(m *raftpb.Message)
	// OnUnreachable is called when a message to id is dropped (queue full,
	// peer not connected). It may run on Send's goroutine or the peer's;
	// it must not block and must not call Send.
	OnUnreachable func(id uint64)
	// OnSnapshotFailed is called when a MsgSnap to id was dropped, or its
	// connection ended after it was written (raft then resends it; see
	// raft.Node.ReportSnapshot). Same rules as OnUnreachable.
	OnSnapshotFailed func(id uint64)
	// OnSnapshotSent is called once a MsgSnap to id was written to its
	// connection: raft's SnapshotFinish, as etcd's own transport reports
	// it once the snapshot was sent. Raft's leader leaves StateSnapshot on
	// the follower's answer only if it has not compacted its log past the
	// snapshot meanwhile; otherwise it waits for this report (or a failure)
	// and, without it, sends that follower nothing but heartbeats. Same
	// rules as OnUnreachable.
	OnSnapshotSent func(id uint64)
	// OnRPC serves an RPC from node from, on a goroutine of its own (at
	// most MaxInflightRPC per connection). ctx ends when the connection
	// or the Transport closes; Close waits for every handler to return.
	// A returned error reaches the caller as a *RemoteError.
	OnRPC func(ctx context.Context, from uint64, key, version int16, body []byte) ([]byte, error)

	// Observer: this node is not a voter (a broker-only node following the
	// quorum): Peers are the voters and do not include it, it never
	// listens, and it only dials voters for RPCs.
	Observer bool
	// AcceptObservers: a voter accepts handshakes from node ids outside
	// the voter set (with this cluster id and voter set) as observers,
	// which may call RPCs and ping; a raft message from one ends its
	// connection.
	AcceptObservers bool
	// Dynamic: a dynamic quorum's transport (KIP-853). The voter set
	// changes with the log, so the handshake carries none and compares
	// none (Peers is this node alone at first; members are added with
	// AddPeer as the log names them), and a handshake addressed to node 0
	// (CallAddr: "whoever listens here") is accepted.
	Dynamic bool
}

// Errors of Send, Call and the connections.
var (
	// ErrClosed is returned by calls on a closed Transport, or when a
	// peer is removed during a Call.
	ErrClosed = errors.New("quorum transport: closed")
	// ErrUnknownPeer is a Call to an id that is neither a voter nor added.
	ErrUnknownPeer = errors.New("quorum transport: unknown peer")
	// ErrConnectionLost is a Call whose request was written on a
	// connection that ended before the response arrived: the request may
	// or may not have been served.
	ErrConnectionLost = errors.New("quorum transport: connection lost before the response")
	// ErrNotConnected is a peer's status before its first connection.
	ErrNotConnected = errors.New("quorum transport: not connected yet")
)

// RefusedError is a handshake the peer refused, as the dialer sees it.
type RefusedError struct {
	Peer   uint64
	Addr   string
	Code   RefuseCode
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("quorum transport: node %d at %s refused the connection (%s): %s", e.Peer, e.Addr, e.Code, e.Reason)
}

// RemoteError is an RPC that reached the peer and failed there.
type RemoteError struct {
	Code    int16
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("quorum transport: remote error %d: %s", e.Code, e.Message)
}

// Transport carries raft messages and RPCs between the nodes of the
// metadata quorum. Its methods are safe for concurrent use.
type Transport struct {
	cfg      TransportConfig
	log      *zap.Logger
	instance uint64
	voters   []Voter // sorted by id: the voter set the handshake carries
	nextCorr atomic.Uint64
	wg       sync.WaitGroup // every goroutine of the Transport
	closing  chan struct{}  // closed by Close

	mu          sync.Mutex
	started     bool
	closed      bool
	ln          net.Listener
	peers       map[uint64]*peer
	inbound     map[*inConn]struct{}
	inboundByID map[uint64]*inConn // handshaken inbound connections

	refuseLogs  [len(refuseNames)]ratelog.Every // acceptor side, per code
	acceptLog   ratelog.Every
	protocolLog ratelog.Every
	unknownLog  ratelog.Every
}

// NewTransport validates cfg and returns a Transport that neither listens
// nor dials until Start.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	if cfg.NodeID == 0 {
		return nil, errors.New("quorum transport: node id 0 (raft reserves it)")
	}
	if cfg.ClusterID == "" || len(cfg.ClusterID) > stringMax {
		return nil, fmt.Errorf("quorum transport: cluster id must be 1 to %d bytes, got %d", stringMax, len(cfg.ClusterID))
	}
	if _, ok := cfg.Peers[cfg.NodeID]; ok == cfg.Observer {
		if cfg.Observer {
			return nil, fmt.Errorf("quorum transport: observer %d is in the voter set", cfg.NodeID)
		}
		return nil, fmt.Errorf("quorum transport: the voter set must include this node (%d)", cfg.NodeID)
	}
	if len(cfg.Peers) > votersMax {
		return nil, fmt.Errorf("quorum transport: %d voters (at most %d)", len(cfg.Peers), votersMax)
	}
	voters := make([]Voter, 0, len(cfg.Peers))
	for id, addr := range cfg.Peers {
		if err := checkPeer(id, addr); err != nil {
			return nil, err
		}
		voters = append(voters, Voter{ID: id, Addr: addr})
	}
	slices.SortFunc(voters, func(a, b Voter) int { return cmpUint64(a.ID, b.ID) })
	handshakeVoters := voters
	if cfg.Dynamic {
		handshakeVoters = nil
	}
	setDefault(&cfg.MaxFrame, DefaultMaxFrame)
	if cfg.MaxFrame < handshakeFrameMax {
		return nil, fmt.Errorf("quorum transport: max frame %d is below %d", cfg.MaxFrame, handshakeFrameMax)
	}
	setDefault(&cfg.QueueLen, DefaultQueueLen)
	setDefault(&cfg.MinBackoff, DefaultMinBackoff)
	setDefault(&cfg.MaxBackoff, DefaultMaxBackoff)
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	setDefault(&cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	setDefault(&cfg.MaxInbound, DefaultMaxInbound)
	setDefault(&cfg.MaxInflightRPC, DefaultMaxInflightRPC)
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	var seed [8]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("quorum transport: instance id: %w", err)
	}
	t := &Transport{
		cfg:         cfg,
		log:         log.With(zap.Uint64("node", cfg.NodeID)),
		instance:    binary.BigEndian.Uint64(seed[:]),
		voters:      handshakeVoters,
		peers:       make(map[uint64]*peer),
		inbound:     make(map[*inConn]struct{}),
		inboundByID: make(map[uint64]*inConn),
		closing:     make(chan struct{}),
	}
	for _, v := range voters {
		if v.ID != cfg.NodeID {
			t.peers[v.ID] = t.newPeer(v.ID, v.Addr)
		}
	}
	return t, nil
}

func checkPeer(id uint64, addr string) error {
	if id == 0 {
		return errors.New("quorum transport: peer id 0 (raft reserves it)")
	}
	if len(addr) > stringMax {
		return fmt.Errorf("quorum transport: address of node %d longer than %d bytes", id, stringMax)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("quorum transport: address of node %d: %w", id, err)
	}
	return nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Start listens and starts dialing the peers.
func (t *Transport) Start() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return ErrClosed
	case t.started:
		return errors.New("quorum transport: already started")
	}
	ln := t.cfg.Listener
	if t.cfg.Observer {
		// Dials only: nothing to listen on.
		t.started = true
		for _, p := range t.peers {
			t.wg.Add(1)
			go t.runPeer(p)
		}
		return nil
	}
	if ln == nil {
		addr := t.cfg.ListenAddr
		if addr == "" {
			addr = t.cfg.Peers[t.cfg.NodeID]
		}
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("quorum transport: listen on %s: %w", addr, err)
		}
	}
	if t.cfg.WrapListener != nil {
		ln = t.cfg.WrapListener(ln)
	}
	t.started = true
	t.ln = ln
	t.wg.Add(1)
	go t.acceptLoop(ln)
	for _, p := range t.peers {
		t.wg.Add(1)
		go t.runPeer(p)
	}
	return nil
}

// Addr is the listening address, nil before Start.
func (t *Transport) Addr() net.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln == nil {
		return nil
	}
	return t.ln.Addr()
}

// Close stops every goroutine of the Transport and closes every
// connection and the listener; it returns once they are gone. Calls in
// progress return ErrClosed.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.closing)
	var err error
	if t.ln != nil {
		err = t.ln.Close()
	} else if t.cfg.Listener != nil {
		err = t.cfg.Listener.Close()
	}
	for ic := range t.inbound {
		ic.close()
	}
	for _, p := range t.peers {
		p.stop()
	}
	t.mu.Unlock()
	t.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// AddPeer makes id a known peer at addr (a broker that is not a voter),
// or changes the address of a known one (used from the next dial on).
// Inbound handshakes from id are accepted from then on.
func (t *Transport) AddPeer(id uint64, addr string) error {
	if err := checkPeer(id, addr); err != nil {
		return err
	}
	if id == t.cfg.NodeID {
		return errors.New("quorum transport: AddPeer of this node's own id")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if p := t.peers[id]; p != nil {
		p.addr.Store(&addr)
		return nil
	}
	p := t.newPeer(id, addr)
	t.peers[id] = p
	if t.started {
		t.wg.Add(1)
		go t.runPeer(p)
	}
	return nil
}

// RemovePeer stops dialing id, fails its calls in progress with ErrClosed
// and closes its inbound connection; later handshakes from id are refused
// as unknown. The voter set the handshake carries is configuration and
// does not change.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	ic := t.inboundByID[id]
	if ic != nil {
		ic.close()
	}
	running := t.started && !t.closed // else runPeer never ran, or Close waits for it
	t.mu.Unlock()
	if p != nil {
		p.stop()
		if running {
			<-p.done
		}
	}
}

// Send queues raft messages for their peers and never blocks. A message
// to a peer whose queue is full, or to an unknown peer, is dropped;
// OnUnreachable (and, for a MsgSnap, OnSnapshotFailed) reports it. Send
// takes ownership of the messages: the caller must not modify them after.
func (t *Transport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		to := m.GetTo()
		t.mu.Lock()
		p, closed := t.peers[to], t.closed
		t.mu.Unlock()
		if closed {
			return
		}
		if p == nil {
			if n, due := t.unknownLog.Event(logInterval); due {
				t.log.Warn("quorum transport: dropping raft messages to an unknown node",
					zap.Uint64("to", to), zap.Stringer("type", m.GetType()), zap.Int64("dropped_since_last_line", n))
			}
			continue
		}
		select {
		case p.queue <- m:
		default:
			t.dropped(p, m, "queue full")
		}
	}
}

// dropped reports a raft message to p that will not be sent.
func (t *Transport) dropped(p *peer, m *raftpb.Message, why string) {
	if n, due := p.dropLog.Event(logInterval); due {
		t.log.Warn("quorum transport: dropping raft messages", zap.Uint64("peer", p.id),
			zap.String("reason", why), zap.Int64("dropped_since_last_line", n))
	}
	if m.GetType() == raftpb.MsgSnap && t.cfg.OnSnapshotFailed != nil {
		t.cfg.OnSnapshotFailed(p.id)
	}
	if t.cfg.OnUnreachable != nil {
		t.cfg.OnUnreachable(p.id)
	}
}

// Call sends an RPC to node to and waits for its response, until ctx
// ends. While the peer is unreachable the request waits in its queue (at
// most MaxInflightRPC calls per peer; more wait for a slot). The body is
// copied before Call returns or sends. A Call to this node's own id runs
// OnRPC on the caller's goroutine, so a caller need not know where the
// controller is.
func (t *Transport) Call(ctx context.Context, to uint64, key, version int16, body []byte) ([]byte, error) {
	if to == t.cfg.NodeID {
		return t.callSelf(ctx, key, version, body)
	}
	t.mu.Lock()
	p, closed := t.peers[to], t.closed
	t.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case p == nil:
		return nil, fmt.Errorf("%w: %d", ErrUnknownPeer, to)
	case len(body)+1+rpcRequestOverhead > t.cfg.MaxFrame:
		return nil, fmt.Errorf("quorum transport: rpc body of %d bytes does not fit a frame of %d", len(body), t.cfg.MaxFrame)
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, ErrClosed
	}
	defer func() { <-p.slots }()
	c := &call{ctx: ctx, corr: t.nextCorr.Add(1), result: make(chan rpcResult, 1)}
	c.frame = appendRPCRequest(nil, &rpcRequest{Correlation: c.corr, Key: key, Version: version, Body: body})
	p.mu.Lock()
	p.pending[c.corr] = c
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, c.corr)
		p.mu.Unlock()
	}()
	select {
	case p.rpcs <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, ErrClosed
	}
	select {
	case r := <-c.result:
		return r.body, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, ErrClosed
	}
}

func (t *Transport) callSelf(ctx context.Context, key, version int16, body []byte) ([]byte, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case t.cfg.OnRPC == nil:
		return nil, &RemoteError{Code: rpcErrNoHandler, Message: fmt.Sprintf("node %d serves no RPCs", t.cfg.NodeID)}
	}
	resp, err := t.cfg.OnRPC(ctx, t.cfg.NodeID, key, version, slices.Clone(body))
	if err != nil {
		// The same error a remote caller gets, so callers handle one kind.
		return nil, &RemoteError{Code: rpcErrHandler, Message: truncate(err.Error(), stringMax)}
	}
	return resp, nil
}

// PeerStatus reports whether the outbound connection to id is up, and
// otherwise why not: the last dial or handshake error (a *RefusedError
// when the peer refused), ErrNotConnected before the first attempt ends,
// ErrUnknownPeer for an id that is not a peer.
func (t *Transport) PeerStatus(id uint64) (connected bool, err error) {
	t.mu.Lock()
	p := t.peers[id]
	t.mu.Unlock()
	if p == nil {
		return false, ErrUnknownPeer
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected, p.lastErr
}

// nextBackoff doubles prev within [min, max]; jitter picks the wait in
// [d/2, d] so peers that failed together do not retry together.
func nextBackoff(prev, lo, hi time.Duration) time.Duration {
	if prev < lo {
		return lo
	}
	return min(2*prev, hi)
}

func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// votersString formats a voter set for a refusal reason.
func votersString(vs []Voter) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(v.String())
	}
	b.WriteByte(']')
	return b.String()
}

// isClosedConn reports an error that only says the connection was closed
// (by us or the peer): not worth a warning.
func isClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}

// marshalRaft appends a raft message frame to dst; it reports false (dst
// unchanged) when the message does not encode or does not fit max.
func marshalRaft(dst []byte, m *raftpb.Message, max int) ([]byte, error) {
	dst, start := beginFrame(dst, frameRaft)
	out, err := proto.MarshalOptions{}.MarshalAppend(dst, m)
	if err != nil {
		return dst[:start], err
	}
	if len(out)-start-4 > max {
		return dst[:start], &frameTooLargeError{length: len(out) - start - 4, max: max}
	}
	return endFrame(out, start), nil
}

// connFrames reads the frames of one connection after its handshake: each
// read is bounded by the idle timeout and the max frame, and a payload
// buffer of up to readBufferKeep bytes is reused from frame to frame (the
// payload returned is valid until the next call).
type connFrames struct {
	conn net.Conn
	br   *bufio.Reader
	idle time.Duration
	max  int
	buf  []byte
}

func (t *Transport) frameReader(conn net.Conn, br *bufio.Reader) *connFrames {
	return &connFrames{conn: conn, br: br, idle: t.cfg.IdleTimeout, max: t.cfg.MaxFrame}
}

func (f *connFrames) next() (typ byte, payload []byte, err error) {
	if err := f.conn.SetReadDeadline(time.Now().Add(f.idle)); err != nil {
		return 0, nil, err
	}
	typ, payload, err = readFrame(f.br, f.max, f.buf)
	if err != nil {
		return 0, nil, err
	}
	if cap(payload) <= readBufferKeep {
		f.buf = payload[:0]
	}
	return typ, payload, nil
}
