package quorum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
)

// waitBound bounds every wait of these tests; a wait polls its condition
// every waitPoll and fails the test past the bound.
const (
	waitBound = 30 * time.Second
	waitPoll  = 2 * time.Millisecond
)

// waitFor polls cond until it holds, failing the test after waitBound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for i := 0; i < int(waitBound/waitPoll)+1; i++ {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(waitPoll)
	}
	t.Fatalf("timed out after %v waiting for %s", waitBound, what)
}

// testNode is a Transport with what it received.
type testNode struct {
	id   uint64
	tr   *Transport
	addr string
	logs *observer.ObservedLogs

	unreachable   atomic.Int64
	snapshotFails atomic.Int64
	snapshotsSent atomic.Int64

	mu   sync.Mutex
	seen map[uint64]uint64 // from -> highest Commit received
}

func (n *testNode) onMessage(m *raftpb.Message) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seen[m.GetFrom()] = max(n.seen[m.GetFrom()], m.GetCommit())
}

func (n *testNode) saw(from, commit uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seen[from] >= commit
}

// listen opens a loopback listener on a free port (or on addr).
func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// testConfig is a config with test-sized backoffs and a log observer.
func testConfig(id uint64, clusterID string, voters map[uint64]string, ln net.Listener) (TransportConfig, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.WarnLevel)
	return TransportConfig{
		NodeID:     id,
		ClusterID:  clusterID,
		Listener:   ln,
		Peers:      voters,
		MinBackoff: time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
		Logger:     zap.New(core),
	}, logs
}

// startNode starts a transport for cfg, closed when the test ends.
func startNode(t *testing.T, cfg TransportConfig, logs *observer.ObservedLogs) *testNode {
	t.Helper()
	n := &testNode{id: cfg.NodeID, logs: logs, seen: make(map[uint64]uint64)}
	if cfg.OnMessage == nil {
		cfg.OnMessage = n.onMessage
	}
	cfg.OnUnreachable = func(uint64) { n.unreachable.Add(1) }
	cfg.OnSnapshotFailed = func(uint64) { n.snapshotFails.Add(1) }
	cfg.OnSnapshotSent = func(uint64) { n.snapshotsSent.Add(1) }
	if cfg.OnRPC == nil {
		cfg.OnRPC = func(_ context.Context, from uint64, key, version int16, body []byte) ([]byte, error) {
			if key == 99 {
				return nil, errors.New("key 99 always fails")
			}
			return fmt.Appendf(nil, "node %d answers node %d key %d v%d: %s", cfg.NodeID, from, key, version, body), nil
		}
	}
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	n.tr = tr
	n.addr = tr.Addr().String()
	return n
}

// startCluster starts n good nodes (ids 1..n) of cluster "good".
func startCluster(t *testing.T, count int) ([]*testNode, map[uint64]string) {
	t.Helper()
	voters := make(map[uint64]string)
	lns := make(map[uint64]net.Listener)
	for id := uint64(1); id <= uint64(count); id++ {
		lns[id] = listen(t, "")
		voters[id] = lns[id].Addr().String()
	}
	var nodes []*testNode
	for id := uint64(1); id <= uint64(count); id++ {
		cfg, logs := testConfig(id, "good", voters, lns[id])
		nodes = append(nodes, startNode(t, cfg, logs))
	}
	return nodes, voters
}

func heartbeat(from, to, commit uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(from), To: proto.Uint64(to),
		Term: proto.Uint64(1), Commit: proto.Uint64(commit)}
}

var exchangeRound atomic.Uint64

// exchange makes every node send to every other until each has received
// the round's message from each: raft messages flow both ways between
// every pair. A message may be dropped while a peer reconnects, so the
// sends repeat until received.
func exchange(t *testing.T, nodes []*testNode) {
	t.Helper()
	round := exchangeRound.Add(1)
	polls := 0
	waitFor(t, fmt.Sprintf("raft messages of round %d between every pair", round), func() bool {
		if polls%20 == 0 {
			for _, a := range nodes {
				for _, b := range nodes {
					if a != b {
						a.tr.Send([]*raftpb.Message{heartbeat(a.id, b.id, round)})
					}
				}
			}
		}
		polls++
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b && !b.saw(a.id, round) {
					return false
				}
			}
		}
		return true
	})
}

func TestTransportExchangeAndRPC(t *testing.T) {
	nodes, _ := startCluster(t, 3)
	exchange(t, nodes)
	exchange(t, nodes)

	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			resp, err := a.tr.Call(ctx, b.id, 7, 3, []byte("hello"))
			if err != nil {
				t.Fatalf("call %d -> %d: %v", a.id, b.id, err)
			}
			if want := fmt.Sprintf("node %d answers node %d key 7 v3: hello", b.id, a.id); string(resp) != want {
				t.Fatalf("call %d -> %d: got %q, want %q", a.id, b.id, resp, want)
			}
		}
	}
	_, err := nodes[0].tr.Call(ctx, 2, 99, 0, nil)
	var remote *RemoteError
	if !errors.As(err, &remote) || remote.Code != rpcErrHandler || remote.Message != "key 99 always fails" {
		t.Fatalf("call of a failing handler: got %v", err)
	}
	if resp, err := nodes[0].tr.Call(ctx, 1, 7, 1, []byte("me")); err != nil || string(resp) != "node 1 answers node 1 key 7 v1: me" {
		t.Fatalf("call to self: %q, %v", resp, err)
	}
	if _, err := nodes[0].tr.Call(ctx, 1, 99, 0, nil); !errors.As(err, &remote) || remote.Code != rpcErrHandler {
		t.Fatalf("failing call to self: %v", err)
	}
	if _, err := nodes[0].tr.Call(ctx, 42, 1, 0, nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("call to an unknown node: got %v", err)
	}

	// Many concurrent calls, more than the in-flight cap: all answered.
	var wg sync.WaitGroup
	errs := make(chan error, 3*DefaultMaxInflightRPC)
	for i := range 3 * DefaultMaxInflightRPC {
		wg.Go(func() {
			body := fmt.Appendf(nil, "call %d", i)
			resp, err := nodes[1].tr.Call(ctx, 3, 1, 0, body)
			if err == nil && !bytes.HasSuffix(resp, body) {
				err = fmt.Errorf("call %d: response %q", i, resp)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTransportCallUnreachableTimesOut(t *testing.T) {
	dead := listen(t, "")
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there now
	ln := listen(t, "")
	cfg, logs := testConfig(1, "good", map[uint64]string{1: ln.Addr().String(), 2: deadAddr}, ln)
	n := startNode(t, cfg, logs)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := n.tr.Call(ctx, 2, 1, 0, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call to an unreachable peer: got %v, want the context's deadline", err)
	}
	waitFor(t, "a dial error in the peer status", func() bool {
		up, err := n.tr.PeerStatus(2)
		return !up && err != nil && !errors.Is(err, ErrNotConnected)
	})
	// Messages to it are dropped and reported while it is down.
	waitFor(t, "unreachable reports", func() bool {
		n.tr.Send([]*raftpb.Message{heartbeat(1, 2, 1)})
		return n.unreachable.Load() > 0
	})
}

// rawHandshake writes a frame on a fresh connection to addr and returns
// the acceptor's answer.
func rawExchange(t *testing.T, addr string, send []byte) (typ byte, payload []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(waitBound)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(send); err != nil {
		t.Fatal(err)
	}
	typ, payload, err = readFrame(conn, handshakeFrameMax, nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", send, err)
	}
	// Then the acceptor closes.
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the answer: got %v, want EOF", err)
	}
	return typ, payload
}

func wantRefusal(t *testing.T, typ byte, payload []byte, code RefuseCode, reasonPart string) {
	t.Helper()
	if typ != frameRefuse {
		t.Fatalf("answer frame type %d, want a refusal", typ)
	}
	gotCode, reason, err := decodeRefuse(payload)
	if err != nil {
		t.Fatal(err)
	}
	if gotCode != code || !strings.Contains(reason, reasonPart) {
		t.Fatalf("refusal (%s) %q, want (%s) containing %q", gotCode, reason, code, reasonPart)
	}
}

func TestTransportRefusesStrangers(t *testing.T) {
	nodes, voters := startCluster(t, 3)
	exchange(t, nodes) // node 2's connections to 1 and 3 are up

	// rogue starts a transport that dials the good nodes and waits until
	// node 1 refuses it with code; the reason reaches its status and log.
	rogue := func(id uint64, clusterID string, rogueVoters map[uint64]string, code RefuseCode, reasonPart string) {
		t.Helper()
		ln := listen(t, "")
		cfg, logs := testConfig(id, clusterID, rogueVoters, ln)
		n := startNode(t, cfg, logs)
		var refused *RefusedError
		waitFor(t, fmt.Sprintf("node 1 refusing rogue node %d with %s", id, code), func() bool {
			_, err := n.tr.PeerStatus(1)
			return errors.As(err, &refused)
		})
		if refused.Code != code || !strings.Contains(refused.Reason, reasonPart) || refused.Peer != 1 {
			t.Fatalf("rogue node %d: refused with %v, want %s containing %q", id, refused, code, reasonPart)
		}
		if logs.FilterMessageSnippet("refused").Len() == 0 {
			t.Fatalf("rogue node %d: the refusal is not logged", id)
		}
		exchange(t, nodes)
		n.tr.Close()
	}
	with := func(id uint64, addr string) map[uint64]string {
		m := make(map[uint64]string)
		for k, v := range voters {
			m[k] = v
		}
		m[id] = addr
		return m
	}
	// Same voters (node 2's address included), another cluster.
	rogue(2, "other", voters, RefuseClusterID, `cluster "other"`)
	// Same everything as node 2, which is connected: a second process
	// with node 2's id.
	rogue(2, "good", voters, RefuseDuplicateID, "two processes with one node id")
	// A fourth voter the good nodes do not have.
	rogue(4, "good", with(4, "127.0.0.1:1"), RefuseVoters, "has voters [1@")
	addr1 := nodes[0].addr
	// Raw garbage: an HTTP request reads as a length far past the cap.
	typ, payload := rawExchange(t, addr1, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	wantRefusal(t, typ, payload, RefuseMalformed, "exceeds the maximum")
	// A well-framed handshake with a bad magic.
	frame, start := beginFrame(nil, frameHandshake)
	typ, payload = rawExchange(t, addr1, endFrame(append(frame, "hello there"...), start))
	wantRefusal(t, typ, payload, RefuseMalformed, "bad magic")
	// Another protocol version.
	frame, start = beginFrame(nil, frameHandshake)
	typ, payload = rawExchange(t, addr1, endFrame(append(frame, "RBQT\x00\x09"...), start))
	wantRefusal(t, typ, payload, RefuseVersion, "version 9")
	// A first frame that is not a handshake.
	typ, payload = rawExchange(t, addr1, appendEmptyFrame(nil, framePing))
	wantRefusal(t, typ, payload, RefuseMalformed, "must be a handshake")
	// A handshake for another node id at this address.
	frame, start = beginFrame(nil, frameHandshake)
	frame = endFrame(appendHandshake(frame, &handshake{Version: protocolVersion, ClusterID: "good", From: 2, To: 3,
		Voters: nodes[1].tr.voters}), start)
	typ, payload = rawExchange(t, addr1, frame)
	wantRefusal(t, typ, payload, RefuseWrongNode, "expected node 3")

	exchange(t, nodes)
	for _, n := range nodes {
		if up, err := n.tr.PeerStatus(n.id%3 + 1); !up || err != nil {
			t.Fatalf("node %d: connection to %d: up %v, %v", n.id, n.id%3+1, up, err)
		}
	}
}

func TestTransportUnknownPeerRefused(t *testing.T) {
	nodes, voters := startCluster(t, 2)
	exchange(t, nodes)
	// Node 1 forgets node 2: node 2's handshakes are refused from then on.
	nodes[0].tr.RemovePeer(2)
	waitFor(t, "node 1 refusing node 2 as unknown", func() bool {
		_, err := nodes[1].tr.PeerStatus(1)
		var refused *RefusedError
		return errors.As(err, &refused) && refused.Code == RefuseUnknownPeer
	})
	// And accepted again once added back.
	if err := nodes[0].tr.AddPeer(2, voters[2]); err != nil {
		t.Fatal(err)
	}
	exchange(t, nodes)
}

func TestTransportQueueFullDrops(t *testing.T) {
	// The peer accepts TCP and never answers the handshake, so nothing
	// drains the queue.
	silent := listen(t, "")
	defer silent.Close()
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	defer func() {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	ln := listen(t, "")
	cfg, logs := testConfig(1, "good", map[uint64]string{1: ln.Addr().String(), 2: silent.Addr().String()}, ln)
	cfg.QueueLen = 4
	cfg.HandshakeTimeout = time.Hour
	n := startNode(t, cfg, logs)

	var msgs []*raftpb.Message
	for i := range 10 {
		msgs = append(msgs, heartbeat(1, 2, uint64(i)))
	}
	snap := &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
		Snapshot: &raftpb.Snapshot{Data: []byte("state")}}
	n.tr.Send(append(msgs, snap))
	if got := n.unreachable.Load(); got != 7 {
		t.Fatalf("unreachable reports %d, want 7 (11 messages, queue of 4)", got)
	}
	if got := n.snapshotFails.Load(); got != 1 {
		t.Fatalf("snapshot failures %d, want 1", got)
	}
	if logs.FilterMessageSnippet("dropping raft messages").Len() != 1 {
		t.Fatalf("want one (rate-limited) drop line, got %v", logs.All())
	}
}

// TestTransportReportsSnapshotSent: a MsgSnap written to a connected peer
// is reported sent (raft's SnapshotFinish), once, and not failed; the peer
// receives it.
func TestTransportReportsSnapshotSent(t *testing.T) {
	nodes, _ := startCluster(t, 2)
	exchange(t, nodes)
	snap := &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(1),
		Snapshot: &raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(5), Term: proto.Uint64(1)}}}
	nodes[0].tr.Send([]*raftpb.Message{snap})
	waitFor(t, "the snapshot reported sent", func() bool { return nodes[0].snapshotsSent.Load() == 1 })
	exchange(t, nodes) // later traffic flows: the report came once, no failure
	if sent, failed := nodes[0].snapshotsSent.Load(), nodes[0].snapshotFails.Load(); sent != 1 || failed != 0 {
		t.Fatalf("snapshot reports: %d sent, %d failed; want 1 and 0", sent, failed)
	}
}

func TestTransportPeerRestartReconnects(t *testing.T) {
	nodes, voters := startCluster(t, 3)
	exchange(t, nodes)
	// Node 2 goes away and comes back on the same address.
	nodes[1].tr.Close()
	waitFor(t, "node 1 seeing node 2 gone", func() bool {
		up, _ := nodes[0].tr.PeerStatus(2)
		return !up
	})
	ln := listen(t, voters[2])
	cfg, logs := testConfig(2, "good", voters, ln)
	nodes[1] = startNode(t, cfg, logs)
	exchange(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	if _, err := nodes[0].tr.Call(ctx, 2, 1, 0, nil); err != nil {
		t.Fatal(err)
	}
}

func TestTransportCloseStopsEverything(t *testing.T) {
	baseline := runtime.NumGoroutine()
	func() {
		voters := make(map[uint64]string)
		lns := make(map[uint64]net.Listener)
		for id := uint64(1); id <= 3; id++ {
			lns[id] = listen(t, "")
			voters[id] = lns[id].Addr().String()
		}
		blocked := make(chan struct{})
		var nodes []*testNode
		for id := uint64(1); id <= 3; id++ {
			cfg, logs := testConfig(id, "good", voters, lns[id])
			// A handler that only returns when its connection ends.
			cfg.OnRPC = func(ctx context.Context, _ uint64, key, _ int16, body []byte) ([]byte, error) {
				if key == 5 {
					close(blocked)
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return body, nil
			}
			nodes = append(nodes, startNode(t, cfg, logs))
		}
		exchange(t, nodes)
		// An RPC stuck in its handler, a stranger mid-handshake and a
		// caller waiting on an unanswered call, all at Close.
		callDone := make(chan error, 1)
		go func() {
			_, err := nodes[0].tr.Call(context.Background(), 2, 5, 0, nil)
			callDone <- err
		}()
		<-blocked
		stranger, err := net.Dial("tcp", nodes[2].addr)
		if err != nil {
			t.Fatal(err)
		}
		defer stranger.Close()
		for _, n := range nodes {
			if err := n.tr.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-callDone; err == nil {
			t.Fatal("a call in flight at Close succeeded")
		}
		if err := nodes[0].tr.Start(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Start after Close: %v", err)
		}
		nodes[0].tr.Send([]*raftpb.Message{heartbeat(1, 2, 1)}) // dropped, no panic
	}()
	waitFor(t, fmt.Sprintf("goroutines back to the baseline of %d", baseline), func() bool {
		return runtime.NumGoroutine() <= baseline
	})
}

func TestNewTransportValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  TransportConfig
	}{
		{"node id 0", TransportConfig{ClusterID: "c", Peers: map[uint64]string{0: "a:1"}}},
		{"no cluster id", TransportConfig{NodeID: 1, Peers: map[uint64]string{1: "a:1"}}},
		{"self not a voter", TransportConfig{NodeID: 1, ClusterID: "c", Peers: map[uint64]string{2: "a:1"}}},
		{"bad address", TransportConfig{NodeID: 1, ClusterID: "c", Peers: map[uint64]string{1: "a"}}},
		{"small max frame", TransportConfig{NodeID: 1, ClusterID: "c", Peers: map[uint64]string{1: "a:1"}, MaxFrame: 100}},
	} {
		if _, err := NewTransport(tc.cfg); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// handshaken dials addr and completes a handshake as node from of the
// given voters, returning the connection for the test to misbehave on.
func handshaken(t *testing.T, addr string, from, to uint64, voters []Voter) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(waitBound)); err != nil {
		t.Fatal(err)
	}
	frame, start := beginFrame(nil, frameHandshake)
	frame = endFrame(appendHandshake(frame, &handshake{Version: protocolVersion, ClusterID: "good", From: from, To: to,
		Instance: 12345, Voters: voters}), start)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	typ, payload, err := readFrame(conn, handshakeFrameMax, nil)
	if err != nil || typ != frameAccept {
		t.Fatalf("handshake answer: type %d %q %v", typ, payload, err)
	}
	return conn
}

// waitClosed reads conn until the acceptor closes it (bounded by the
// connection's deadline).
func waitClosed(t *testing.T, conn net.Conn, why string) {
	t.Helper()
	for range 1 << 20 {
		typ, _, err := readFrame(conn, DefaultMaxFrame, nil)
		if err != nil {
			if isClosedConn(err) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscallReset) {
				return
			}
			t.Fatalf("%s: read %v, want the acceptor to close", why, err)
		}
		if typ != framePong && typ != frameRPCResponse {
			t.Fatalf("%s: unexpected frame type %d", why, typ)
		}
	}
	t.Fatalf("%s: connection never closed", why)
}

func TestTransportClosesMisbehavingPeers(t *testing.T) {
	ln := listen(t, "")
	voters := map[uint64]string{1: ln.Addr().String(), 2: "127.0.0.1:1", 3: "127.0.0.1:2"}
	cfg, logs := testConfig(1, "good", voters, ln)
	cfg.MaxFrame = handshakeFrameMax
	cfg.IdleTimeout = 200 * time.Millisecond
	n := startNode(t, cfg, logs)
	vs := n.tr.voters

	// A raft message claiming another sender.
	conn := handshaken(t, n.addr, 2, 1, vs)
	spoof, err := marshalRaft(nil, heartbeat(3, 1, 1), handshakeFrameMax)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(spoof); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, conn, "spoofed sender")
	if n.saw(3, 1) {
		t.Fatal("a spoofed raft message was delivered")
	}

	// A frame over MaxFrame after the handshake.
	conn = handshaken(t, n.addr, 2, 1, vs)
	if _, err := conn.Write([]byte{0, 0x10, 0, 0, frameRaft}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, conn, "oversized frame")

	// An unknown frame type.
	conn = handshaken(t, n.addr, 2, 1, vs)
	if _, err := conn.Write(appendEmptyFrame(nil, 42)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, conn, "unknown frame type")

	// Pings are answered; silence is closed after the idle timeout.
	conn = handshaken(t, n.addr, 2, 1, vs)
	if _, err := conn.Write(appendEmptyFrame(nil, framePing)); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := readFrame(conn, handshakeFrameMax, nil); err != nil || typ != framePong {
		t.Fatalf("ping answered with type %d, %v", typ, err)
	}
	waitClosed(t, conn, "silent peer")

	// A good message from the right sender still arrives afterwards.
	conn = handshaken(t, n.addr, 2, 1, vs)
	good, _ := marshalRaft(nil, heartbeat(2, 1, 7), handshakeFrameMax)
	if _, err := conn.Write(good); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the good message", func() bool { return n.saw(2, 7) })
	if logs.FilterMessageSnippet("closing an inbound connection").Len() == 0 {
		t.Fatal("protocol errors are not logged")
	}
}

// syscallReset is a connection reset by the acceptor's close.
var syscallReset = syscall.ECONNRESET

func TestTransportInboundCap(t *testing.T) {
	voters := make(map[uint64]string)
	lns := make(map[uint64]net.Listener)
	for id := uint64(1); id <= 2; id++ {
		lns[id] = listen(t, "")
		voters[id] = lns[id].Addr().String()
	}
	cfg1, logs1 := testConfig(1, "good", voters, lns[1])
	cfg1.MaxInbound = 2
	n1 := startNode(t, cfg1, logs1)
	// Two strangers that never send a handshake hold both slots.
	var strangers []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", n1.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		strangers = append(strangers, c)
	}
	waitFor(t, "both strangers accepted", func() bool {
		n1.tr.mu.Lock()
		defer n1.tr.mu.Unlock()
		return len(n1.tr.inbound) == 2
	})
	c, err := net.Dial("tcp", n1.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(waitBound)); err != nil {
		t.Fatal(err)
	}
	typ, payload, err := readFrame(c, handshakeFrameMax, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantRefusal(t, typ, payload, RefuseTooManyConns, "cap")
	// Node 2 gets in once the strangers leave.
	for _, s := range strangers {
		s.Close()
	}
	cfg2, logs2 := testConfig(2, "good", voters, lns[2])
	n2 := startNode(t, cfg2, logs2)
	exchange(t, []*testNode{n1, n2})
}

func TestTransportPeersBeforeStart(t *testing.T) {
	ln := listen(t, "")
	addr := ln.Addr().String()
	ln.Close() // Start listens on the node's own voter address
	tr, err := NewTransport(TransportConfig{NodeID: 1, ClusterID: "c", Peers: map[uint64]string{1: addr, 2: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.AddPeer(3, "127.0.0.1:2"); err != nil {
		t.Fatal(err)
	}
	tr.RemovePeer(2) // returns although nothing runs yet
	tr.RemovePeer(3)
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	if got := tr.Addr().String(); got != addr {
		t.Fatalf("listening on %s, want the voter address %s", got, addr)
	}
	if err := tr.AddPeer(1, "127.0.0.1:3"); err == nil {
		t.Fatal("AddPeer of the node's own id")
	}
}

// An observer (a node outside the voter set) calls RPCs on voters that
// accept observers; a voter that does not refuses it as unknown; a raft
// message from an observer ends its connection.
func TestTransportObserver(t *testing.T) {
	voters := map[uint64]string{}
	lns := map[uint64]net.Listener{}
	for id := uint64(1); id <= 2; id++ {
		lns[id] = listen(t, "")
		voters[id] = lns[id].Addr().String()
	}
	cfg1, logs1 := testConfig(1, "good", voters, lns[1])
	cfg1.AcceptObservers = true
	startNode(t, cfg1, logs1)
	cfg2, logs2 := testConfig(2, "good", voters, lns[2])
	startNode(t, cfg2, logs2)

	ocfg, _ := testConfig(7, "good", voters, nil)
	ocfg.Observer = true
	obs, err := NewTransport(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.Start(); err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	if obs.Addr() != nil {
		t.Errorf("an observer listens on %v", obs.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []byte
	waitFor(t, "the observer's RPC to node 1", func() bool {
		out, err = obs.Call(ctx, 1, 3, 0, []byte("hi"))
		return err == nil
	})
	if want := "node 1 answers node 7 key 3 v0: hi"; string(out) != want {
		t.Errorf("answer %q, want %q", out, want)
	}
	waitFor(t, "node 2 refusing the observer as unknown", func() bool {
		_, err := obs.PeerStatus(2)
		var refused *RefusedError
		return errors.As(err, &refused) && refused.Code == RefuseUnknownPeer
	})
	// A raft message from an observer is a protocol error.
	conn := handshaken(t, voters[1], 8, 1, mustVoters(voters))
	defer conn.Close()
	frame, err := marshalRaft(nil, heartbeat(8, 1, 1), DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, conn, "a raft message from an observer")

	if _, err := NewTransport(TransportConfig{NodeID: 1, ClusterID: "good", Peers: voters, Observer: true}); err == nil {
		t.Error("a voter configured as observer was accepted")
	}
}

func mustVoters(m map[uint64]string) []Voter {
	var vs []Voter
	for id, addr := range m {
		vs = append(vs, Voter{ID: id, Addr: addr})
	}
	slices.SortFunc(vs, func(a, b Voter) int { return cmpUint64(a.ID, b.ID) })
	return vs
}
