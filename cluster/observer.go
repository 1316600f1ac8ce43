package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/quorum"
)

// Broker-only nodes (process.roles=broker, not in controller.quorum.voters)
// follow the metadata quorum without voting, as Kafka's brokers fetch the
// metadata log from the controllers: an observer has no raft log of its
// own; it dials the voters (quorum.Transport's observer mode) and pulls the
// applied entries from one of them with the metadataFetch RPC, or the
// newest snapshot when it is behind the voter's log start, and applies them
// to its image exactly as a voter's quorum loop does. It keeps the image in
// memory only: a restart pulls it again. Registration, heartbeats and
// forwarded requests go to the active controller as from any broker.

// metadataFetchKey is the RPC key of metadataFetch: not a Kafka API key.
const metadataFetchKey int16 = -100

// metadataFetchMaxBytes bounds the payload bytes of one answer.
const metadataFetchMaxBytes = 1 << 20

// metadataFetch answer kinds.
const (
	fetchEntries  int8 = 0
	fetchSnapshot int8 = 1
)

// startObserver starts an observer's transport and follower loop (the
// lifecycle and applier run as on a voter).
func (n *Node) startObserver(voters map[uint64]string) (*Node, error) {
	tr, err := quorum.NewTransport(quorum.TransportConfig{
		NodeID:    raftID(n.cfg.NodeID),
		ClusterID: n.cfg.ClusterID,
		Peers:     voters,
		Observer:  true,
		Logger:    quorumLogger(n.cfg.Logger, "transport", n.cfg.NodeID),
		Dial:      n.cfg.ControllerDial,
	})
	if err != nil {
		return nil, err
	}
	if err := tr.Start(); err != nil {
		tr.Close()
		return nil, err
	}
	n.tr = tr
	n.directoryID = readDirectoryID(n.cfg.FS, n.cfg.MetadataDir) // sent with each fetch, for DescribeQuorum
	ids := make([]uint64, 0, len(voters))
	for id := range voters {
		ids = append(ids, id)
	}
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.follow(ids) }()
	go func() { defer n.wg.Done(); n.applier() }()
	go func() { defer n.wg.Done(); n.lifecycle() }()
	n.log.Info("following the metadata quorum as an observer (process.roles=broker)")
	return n, nil
}

// follow pulls the metadata log from the voters until the node closes: from
// the active controller when one is known, else from each voter in turn.
func (n *Node) follow(voters []uint64) {
	next := uint64(1)
	turn := 0
	failures := 0
	v0 := map[uint64]bool{} // voters that serve metadataFetch v0 only
	for {
		from := voters[turn%len(voters)]
		if l := n.leader.Load(); l >= 0 {
			from = raftID(l)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := n.fetchFrom(ctx, from, &next, v0)
		cancel()
		wait := time.Duration(0)
		switch {
		case err != nil:
			failures++
			turn++
			n.leader.Store(-1)
			if failures%20 == 1 {
				n.log.Info("fetching the metadata log", zap.Uint64("from_node", from-1), zap.Error(err))
			}
			wait = backoff(failures)
		case got == 0:
			failures = 0
			wait = 100 * time.Millisecond // caught up: poll
		default:
			failures = 0
		}
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-n.closing:
				return
			}
		}
		select {
		case <-n.closing:
			return
		default:
		}
	}
}

// fetchFrom pulls one answer from voter and applies it; it returns how many
// entries (or 1 for a snapshot) it applied. v0 are the voters known to
// serve metadataFetch v0 only (an earlier version of ours): v1 adds this
// node's directory id, which such a voter refuses ("want 8"); it is then
// asked at v0 for the rest of this node's life.
func (n *Node) fetchFrom(ctx context.Context, voter uint64, next *uint64, v0 map[uint64]bool) (int, error) {
	req := proto.Writer{}
	req.Int64(int64(*next))
	version := int16(1)
	if v0[voter] {
		version = 0
	} else {
		req.B = append(req.B, n.directoryID[:]...)
	}
	out, err := n.tr.Call(ctx, voter, metadataFetchKey, version, req.B)
	var remote *quorum.RemoteError
	if err != nil && version == 1 && errors.As(err, &remote) && strings.Contains(remote.Message, "want 8") {
		v0[voter] = true
		out, err = n.tr.Call(ctx, voter, metadataFetchKey, 0, req.B[:8])
	}
	if err != nil {
		return 0, err
	}
	ans, err := decodeMetadataFetch(out)
	if err != nil {
		return 0, fmt.Errorf("metadata fetch answer from node %d: %w", nodeID(voter), err)
	}
	n.leader.Store(nodeID(ans.leader))
	sm := (*stateMachine)(n)
	if ans.kind == fetchSnapshot {
		if err := sm.Restore(ans.snapshot, ans.next-1); err != nil {
			return 0, err
		}
		*next = ans.next
		return 1, nil
	}
	for _, e := range ans.entries {
		if err := sm.Apply(e.Index, e.Term, e.Payload); err != nil {
			return 0, err
		}
	}
	if ans.next > *next && len(ans.entries) == 0 {
		// Only entries without payloads (a leader's empty entry): the
		// applied index still moves, which the broker's heartbeat reports.
		sm.advance(ans.next - 1)
	}
	*next = ans.next
	return len(ans.entries), nil
}

// advance marks index applied without a state change.
func (sm *stateMachine) advance(index uint64) {
	n := (*Node)(sm)
	n.publish(index, n.image.Load(), nil, false)
}

// serveMetadataFetch answers observer (a raft id): the applied entries
// from the requested index, or the newest snapshot when they are compacted
// away, with the leader this voter knows of. The request is the index
// (int64), then at version 1 the observer's directory id (16 bytes).
func (n *Node) serveMetadataFetch(observer uint64, version int16, body []byte) ([]byte, error) {
	want := 8
	if version >= 1 {
		want = 24
	}
	if len(body) != want {
		// "want 8" is what a v1 observer looks for to fall back to v0.
		return nil, fmt.Errorf("metadata fetch v%d: %d-byte request, want %d", version, len(body), want)
	}
	r := proto.NewReader(body, false)
	from := uint64(r.Int64())
	var dir [16]byte
	if version >= 1 {
		copy(dir[:], r.Span(16))
	}
	if !r.Complete() {
		return nil, fmt.Errorf("metadata fetch v%d: %d-byte request, want %d", version, len(body), want)
	}
	n.observed.fetched(observer, dir, from, n.Applied()+1, time.Now().UnixMilli())
	entries, next, snap, err := n.rn.ReadApplied(from, metadataFetchMaxBytes)
	if err != nil {
		return nil, err
	}
	w := proto.Writer{}
	w.Int64(int64(n.rn.Status().Leader))
	if snap != nil {
		w.Int8(fetchSnapshot)
		w.Int64(int64(next))
		return append(w.B, snap.GetData()...), nil
	}
	w.Int8(fetchEntries)
	w.Int64(int64(next))
	w.Int32(int32(len(entries)))
	for _, e := range entries {
		w.Int64(int64(e.Index))
		w.Int64(int64(e.Term))
		w.Int32(int32(len(e.Payload)))
		w.B = append(w.B, e.Payload...)
	}
	return w.B, nil
}

type metadataFetchAnswer struct {
	leader   uint64
	kind     int8
	next     uint64
	snapshot []byte
	entries  []quorum.AppliedEntry
}

var errShortFetch = errors.New("truncated")

// metadataFetchEntryMin is the smallest encoding of one entry: index,
// term and payload length.
const metadataFetchEntryMin = 20

// decodeMetadataFetch decodes serveMetadataFetch's answer, bounded by its
// length (FuzzMetadataFetch).
func decodeMetadataFetch(b []byte) (metadataFetchAnswer, error) {
	var a metadataFetchAnswer
	r := proto.NewReader(b, false)
	a.leader, a.kind, a.next = uint64(r.Int64()), r.Int8(), uint64(r.Int64())
	if !r.Ok() {
		return a, errShortFetch
	}
	switch a.kind {
	case fetchSnapshot:
		if a.next == 0 {
			return a, errors.New("snapshot at index -1")
		}
		a.snapshot = r.Span(r.Len())
		return a, nil
	case fetchEntries:
	default:
		return a, fmt.Errorf("unknown answer kind %d", a.kind)
	}
	count := r.ArrayLen(metadataFetchEntryMin)
	if !r.Ok() {
		return a, fmt.Errorf("%w: entry count", errShortFetch)
	}
	prev := uint64(0)
	for range count {
		e := quorum.AppliedEntry{Index: uint64(r.Int64()), Term: uint64(r.Int64())}
		e.Payload = r.Span(int(r.Int32()))
		if !r.Ok() {
			return a, errShortFetch
		}
		if e.Index <= prev || e.Index >= a.next {
			return a, fmt.Errorf("entry index %d out of order (next %d)", e.Index, a.next)
		}
		prev = e.Index
		a.entries = append(a.entries, e)
	}
	if r.Len() != 0 {
		return a, fmt.Errorf("%d trailing bytes", r.Len())
	}
	return a, nil
}
