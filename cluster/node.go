// Package cluster runs one node of a ringbroker cluster (issue 15): it joins
// the metadata quorum (package quorum: raft log on disk, transport, node
// loop), replays the metadata log into the image the broker serves from
// (package metadata), runs the active controller (package controller) while
// this node leads the quorum, and keeps this node registered with the
// controller by heartbeats. The broker sees it through broker.Cluster.
//
// Who runs what:
//   - the quorum loop (quorum.Node, one goroutine) applies committed entries
//     to the image: Apply decodes the entry's metadata records and ApplyAll
//     gives the next image, published at once (Image) and handed, with its
//     deltas, to the broker applier;
//   - the broker applier (one goroutine) calls the broker's OnMetadata in
//     log order: it opens and deletes logs, so it runs off the quorum loop;
//   - the controller (while leader) serves RPCs from every node (broker
//     registration, heartbeats, forwarded admin requests) one at a time: it
//     computes records from the current image, proposes them and answers
//     when they are applied here; a ticker fences brokers whose session
//     expired and elects leaders;
//   - the lifecycle goroutine registers this broker with the controller
//     and heartbeats, and asks for controlled shutdown on Close.
//
// Raft ids are node ids plus one: raft reserves id 0, and Kafka node ids
// start at 0.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/quorum"
	"github.com/ringbroker/ringbroker/storage"
)

// MetadataLogName is the directory of the metadata log under the metadata
// log dir, Kafka's name.
const MetadataLogName = "__cluster_metadata-0"

// Config configures a Node.
type Config struct {
	NodeID    int32
	ClusterID string
	// Voters is controller.quorum.voters; this node is one of them (a
	// static quorum), or it is not and observes. Empty with
	// BootstrapServers: a dynamic quorum.
	Voters []config.Voter
	// BootstrapServers is controller.quorum.bootstrap.servers: a dynamic
	// quorum (KIP-853, dynamic.go). InitialVoters are then the initial
	// voters written into an empty metadata log at the first start
	// (controller.quorum.standalone: this node; or
	// controller.quorum.initial.controllers); empty: join as an observer.
	// ControllerListen is this node's endpoint in the quorum, and
	// ControllerListenerName the listener name AddRaftVoter names it by.
	BootstrapServers       []string
	InitialVoters          []config.Voter
	ControllerListenerName string
	// ControllerListen is the address the controller listener binds
	// (the CONTROLLER listener); "" = this node's voter address.
	ControllerListen string
	// ControllerWrapListener and ControllerDial, when set, put the
	// quorum's connections on TLS (a controller listener mapped to SSL):
	// the listener is wrapped before it accepts, and peers are dialed
	// through ControllerDial (handshake done).
	ControllerWrapListener func(net.Listener) net.Listener
	ControllerDial         func(ctx context.Context, network, addr string) (net.Conn, error)
	// NoControlledShutdown is controlled.shutdown.enable=false: Close
	// stops without asking the controller to move this broker's
	// leaderships first; the controller fences it when its session
	// expires, as Kafka's broker does with that setting.
	NoControlledShutdown bool
	// MetadataDir holds MetadataLogName (metadata.log.dir or the first
	// log dir).
	MetadataDir string
	FS          storage.FS
	// Endpoints are this broker's advertised client listeners, Rack its
	// broker.rack.
	Endpoints []metadata.Endpoint
	Rack      string
	// HeartbeatInterval is broker.heartbeat.interval.ms.
	HeartbeatInterval time.Duration
	// Controller configures the active controller (session timeout,
	// defaults, rebalance).
	Controller controller.Config
	// TickInterval is the raft tick (election timeout = 10 ticks,
	// heartbeat = 1 tick); default 100 ms.
	TickInterval time.Duration
	// SnapshotEvery is the number of entries between metadata snapshots.
	SnapshotEvery uint64
	Logger        *zap.Logger

	// OnMetadata receives every applied image with its deltas, in log
	// order, off the quorum loop (full: the first call after a start or a
	// snapshot: every topic). Typically broker.Broker.OnMetadata.
	OnMetadata func(im *metadata.Image, deltas []metadata.Delta, full bool)
	// LocalTopics lists the topics this node's logs hold. When this node
	// becomes the active controller, the topics missing from the
	// metadata are added with this node as their only replica: a single
	// node joining (or forming) a quorum keeps its topics.
	LocalTopics func() []LocalTopic
	// LocalProducerIDsEnd is the first producer id this node's own history
	// has not handed out; adopted with the local topics, so the cluster's
	// producer ids never repeat one of them.
	LocalProducerIDsEnd func() (int64, error)
	// PreviousBrokerEpoch returns the broker epoch of this broker's last
	// run if it shut down cleanly (its log dirs' clean-shutdown markers),
	// else -1; nil is -1. The registration sends it (Kafka's
	// BrokerRegistration v3 PreviousBrokerEpoch): without it the
	// controller takes the restart as an unclean shutdown and removes the
	// broker from every partition's eligible leader replicas.
	PreviousBrokerEpoch func() int64
	// OnBrokerEpoch receives the broker epoch of each registration, for
	// the next clean shutdown to record (nil: not recorded).
	OnBrokerEpoch func(epoch int64)
}

// LocalTopic is a topic found in this node's logs.
type LocalTopic struct {
	Name       string
	ID         metadata.UUID
	Partitions int32
	Configs    map[string]string
}

// Node is this process's member of the cluster.
type Node struct {
	cfg   Config
	log   *zap.Logger
	store *quorum.DiskStorage
	tr    *quorum.Transport
	rn    *quorum.Node

	// observed are the observers' metadata fetches this voter served, for
	// DescribeQuorum (observer_fetches.go).
	observed observerFetches

	image   atomic.Pointer[metadata.Image]
	applied atomic.Uint64
	// served is the image the broker follows (the newest handed to
	// OnMetadata), set once the node has caught up after its start
	// (caughtUp); before that ServedImage gives the newest applied image
	// without leaders (preCatchUp, recomputed when the image changed).
	served     atomic.Pointer[metadata.Image]
	caughtUp   atomic.Bool
	preMu      sync.Mutex
	preFor     *metadata.Image
	preCatchUp *metadata.Image
	// catchUpTo is the metadata index this node must have applied before
	// its broker follows any image: the index of its first registration's
	// answer (0 until then). catchUpWake tells the applier it was set.
	catchUpTo   atomic.Uint64
	catchUpWake chan struct{}
	// synced is the index the broker has followed (OnMetadata returned).
	synced atomic.Uint64
	// directoryID is the directory.id of the metadata dir's meta.properties
	// (zero: none), this node's replica directory id in a dynamic quorum.
	directoryID [16]byte
	// memberNoted: this life tried to write the member marker
	// (member_marker.go). Owned by the quorum loop (publish).
	memberNoted bool
	// appliedCh is closed and replaced at every apply: waitApplied's
	// broadcast.
	appliedMu sync.Mutex
	appliedCh chan struct{}

	// leader is the raft leader's node id, -1 when unknown.
	leader atomic.Int32

	// The broker applier's queue (bounded: the quorum loop waits when the
	// broker is this far behind).
	applyQ chan applyItem
	// leaderEvents carries leadership changes from the quorum loop to
	// leadershipEvents (controller.go), in order.
	leaderEvents chan leadership

	ctl ctlState

	// A dynamic quorum's membership (dynamic.go): the newest the log gave,
	// a wake-up for membersLoop, and one voter change at a time.
	members     atomic.Pointer[quorum.Membership]
	membersCh   chan struct{}
	voterChange sync.Mutex

	incarnation    metadata.UUID
	brokerEpoch    atomic.Int64
	wantShutdown   atomic.Bool
	shutdownOK     chan struct{}
	shutdownOKOnce sync.Once
	shutdownOnce   sync.Once
	// lifecycleCtx bounds the lifecycle loop's registrations and
	// heartbeats; a controlled shutdown cancels it and heartbeats by
	// itself, so a heartbeat of the loop still waiting (holding the
	// controller's lock on this node, for a quorum that is leaving) does
	// not hold up the shutdown's.
	lifecycleCtx    context.Context
	lifecycleCancel context.CancelFunc

	closing chan struct{}
	wg      sync.WaitGroup
}

type applyItem struct {
	index  uint64
	im     *metadata.Image
	deltas []metadata.Delta
	full   bool
}

// raftID maps a node id to its raft id.
func raftID(node int32) uint64 { return uint64(node) + 1 }

// nodeID maps a raft id to its node id (-1 for raft's "none").
func nodeID(raft uint64) int32 {
	if raft == 0 {
		return -1
	}
	return int32(raft - 1)
}

// Start opens the metadata log, starts the transport and the quorum loop,
// and the controller and broker lifecycle goroutines. A failed start
// touches nothing it did not create.
func Start(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.FS == nil {
		cfg.FS = storage.DefaultFS
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 2 * time.Second
	}
	var self *config.Voter
	peers := map[uint64]string{}
	var voters []uint64
	for i, v := range cfg.Voters {
		peers[raftID(v.ID)] = v.Addr()
		voters = append(voters, raftID(v.ID))
		if v.ID == cfg.NodeID {
			self = &cfg.Voters[i]
		}
	}
	if self != nil && cfg.ControllerListen == "" {
		cfg.ControllerListen = self.Addr()
	}
	n := &Node{cfg: cfg, log: cfg.Logger, appliedCh: make(chan struct{}), applyQ: make(chan applyItem, 1024), leaderEvents: make(chan leadership, 1024),
		catchUpWake: make(chan struct{}, 1), shutdownOK: make(chan struct{}), closing: make(chan struct{})}
	n.lifecycleCtx, n.lifecycleCancel = context.WithCancel(context.Background())
	n.leader.Store(-1)
	n.brokerEpoch.Store(-1)
	n.image.Store(&metadata.Image{})
	if _, err := rand.Read(n.incarnation[:]); err != nil {
		return nil, err
	}
	if cfg.Controller.NewUUID == nil {
		cfg.Controller.NewUUID = randomUUID
	}
	cfg.Controller.NodeID = cfg.NodeID
	cfg.Controller.ClusterID = cfg.ClusterID
	n.ctl.cfg = cfg.Controller
	n.membersCh = make(chan struct{}, 1)
	var bootstrap []quorum.Member
	if len(cfg.BootstrapServers) > 0 {
		if _, _, err := net.SplitHostPort(cfg.ControllerListen); err != nil {
			return nil, fmt.Errorf("a dynamic quorum needs this node's controller listener: %w", err)
		}
		peers = map[uint64]string{raftID(cfg.NodeID): cfg.ControllerListen}
		n.directoryID = readDirectoryID(cfg.FS, cfg.MetadataDir)
		for _, v := range cfg.InitialVoters {
			m := quorum.Member{ID: raftID(v.ID), Addr: v.Addr()}
			if v.ID == cfg.NodeID && len(cfg.InitialVoters) == 1 {
				// Standalone: this node's own. Several initial voters
				// must write identical bootstrap entries, and each knows
				// only its own directory id (Kafka's --initial-controllers
				// names every one's; ours does not): none then.
				m.DirectoryID = n.directoryID
			}
			bootstrap = append(bootstrap, m)
		}
	} else if self == nil {
		return n.startObserver(peers)
	}

	logDir := filepath.Join(cfg.MetadataDir, MetadataLogName)
	if len(bootstrap) > 0 {
		if err := n.refuseRebootstrap(logDir); err != nil {
			return nil, err
		}
	}
	store, err := quorum.OpenDiskStorage(logDir, cfg.FS)
	if err != nil {
		return nil, fmt.Errorf("metadata log: %w", err)
	}
	n.store = store
	tr, err := quorum.NewTransport(quorum.TransportConfig{
		NodeID:     raftID(cfg.NodeID),
		ClusterID:  cfg.ClusterID,
		ListenAddr: cfg.ControllerListen,
		Peers:      peers,
		Logger:     quorumLogger(cfg.Logger, "transport", cfg.NodeID),
		// The transport calls these only once started, after n.rn is set.
		OnMessage:        func(m *raftpb.Message) { n.rn.Step(m) },
		OnUnreachable:    func(id uint64) { n.rn.ReportUnreachable(id) },
		OnSnapshotFailed: func(id uint64) { n.rn.ReportSnapshot(id, true) },
		OnSnapshotSent:   func(id uint64) { n.rn.ReportSnapshot(id, false) },
		OnRPC:            n.serveRPC,
		AcceptObservers:  true,
		Dynamic:          n.dynamic(),
		WrapListener:     cfg.ControllerWrapListener,
		Dial:             cfg.ControllerDial,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	n.tr = tr
	rn, err := quorum.NewNode(quorum.NodeConfig{
		ID:            raftID(cfg.NodeID),
		Voters:        voters,
		Bootstrap:     bootstrap,
		Join:          n.dynamic() && len(bootstrap) == 0,
		OnMembers:     n.onMembers,
		Store:         store,
		Send:          tr.Send,
		SM:            (*stateMachine)(n),
		SnapshotEvery: cfg.SnapshotEvery,
		Logger:        quorumLogger(cfg.Logger, "raft", cfg.NodeID),
		OnLeader: func(term, leader uint64) {
			n.leader.Store(nodeID(leader))
			n.ctl.leaderChanged(term, leader == raftID(cfg.NodeID))
			if leader != raftID(cfg.NodeID) {
				n.leadershipEvent(leadership{term: term})
			}
		},
		OnLeaderReady: func(term uint64) { n.leadershipEvent(leadership{term: term, ready: true}) },
	})
	if err != nil {
		tr.Close()
		store.Close()
		return nil, err
	}
	n.rn = rn
	if err := tr.Start(); err != nil {
		rn.Stop()
		tr.Close()
		store.Close()
		return nil, fmt.Errorf("controller listener %s: %w", cfg.ControllerListen, err)
	}
	n.wg.Add(3)
	go func() { defer n.wg.Done(); rn.Run(cfg.TickInterval) }()
	go func() { defer n.wg.Done(); n.applier() }()
	go func() { defer n.wg.Done(); n.lifecycle() }()
	n.wg.Add(2)
	go func() { defer n.wg.Done(); n.controllerTicker() }()
	go func() { defer n.wg.Done(); n.leadershipEvents() }()
	if n.dynamic() {
		n.wg.Add(2)
		go func() { defer n.wg.Done(); n.membersLoop() }()
		go func() { defer n.wg.Done(); n.joinLoop() }()
	}
	return n, nil
}

// Image is the newest applied metadata image.
func (n *Node) Image() *metadata.Image { return n.image.Load() }

// ServedImage is the image the broker answers clients from: the newest it
// was handed (OnMetadata). After a start, until the node has caught up with
// the quorum (see applier), it is the newest image applied so far with no
// partition leader: what the node replays off its own disk is the cluster
// as it was when it stopped, so it names no leader, but it still lists the
// brokers and topics (a Metadata answer without them makes librdkafka fail
// the records it holds for those topics, _UNKNOWN_PARTITION).
func (n *Node) ServedImage() *metadata.Image {
	if n.caughtUp.Load() {
		return n.served.Load()
	}
	im := n.image.Load()
	n.preMu.Lock()
	defer n.preMu.Unlock()
	if n.preFor != im {
		n.preFor, n.preCatchUp = im, leaderless(im)
	}
	return n.preCatchUp
}

// leaderless is im with every partition's leader NoLeader.
func leaderless(im *metadata.Image) *metadata.Image {
	recs := im.Records()
	for _, r := range recs {
		if p, ok := r.(*metadata.PartitionRecord); ok {
			p.Leader = metadata.NoLeader
		}
	}
	out, _, err := metadata.Image{}.ApplyAll(recs)
	if err != nil {
		return &metadata.Image{} // cannot happen: im's own records
	}
	return &out
}

// ControllerID is the active controller's node id (the raft leader), -1
// when none is known.
func (n *Node) ControllerID() int32 { return n.leader.Load() }

// Status is the quorum's status as this node sees it (DescribeQuorum);
// empty on an observer.
func (n *Node) Status() quorum.Status {
	if n.rn == nil {
		return quorum.Status{}
	}
	return n.rn.Status()
}

// Applied is the index of the last applied metadata entry.
func (n *Node) Applied() uint64 { return n.applied.Load() }

// ClusterID is the cluster id.
func (n *Node) ClusterID() string { return n.cfg.ClusterID }

// NodeID is this node's id.
func (n *Node) NodeID() int32 { return n.cfg.NodeID }

// waitApplied returns once index is applied here and the broker followed
// it (OnMetadata returned: its logs are open, its leaderships set), or ctx
// ends. Forward uses it, so a client that created a topic through this
// node is served it here at once.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	for {
		n.appliedMu.Lock()
		ch := n.appliedCh
		n.appliedMu.Unlock()
		if n.synced.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.closing:
			return errClosed
		}
	}
}

var errClosed = errors.New("cluster: node closing")

// Close asks the controller to move this node's leaderships away
// (controlled shutdown, bounded by ctx; unless NoControlledShutdown), then
// stops everything.
func (n *Node) Close(ctx context.Context) error {
	if !n.cfg.NoControlledShutdown {
		n.controlledShutdown(ctx)
	}
	n.shutdownOnce.Do(func() { close(n.closing) })
	n.lifecycleCancel()
	n.ctl.closeTerms() // a proposal still waiting would hold ctl.mu
	n.ctl.mu.Lock()
	n.ctl.ctl = nil
	n.ctl.mu.Unlock()
	if n.rn == nil { // an observer
		err := n.tr.Close()
		n.wg.Wait()
		return err
	}
	// Hand raft leadership to another voter first, so the quorum does not
	// wait an election timeout for a new controller.
	n.handOverLeadership(ctx)
	n.rn.Stop()
	err := n.tr.Close()
	n.wg.Wait()
	if cerr := n.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// handOverLeadership, on the raft leader, transfers the leadership to the
// most up-to-date voter it heard from within the last election timeout and
// waits (at most an election timeout, the bound raft itself gives a
// transfer, or until ctx ends, or the target refuses connections: it
// stopped too) until it has stepped down: stopping at once
// would drop the MsgTimeoutNow still queued for the transport, and the
// others would then wait an election timeout for a leader. A voter not
// heard from lately (stopped or cut off) is never picked: it could not
// take over.
func (n *Node) handOverLeadership(ctx context.Context) {
	st := n.rn.Status()
	if st.Role != quorum.RoleLeader {
		return
	}
	self := raftID(n.cfg.NodeID)
	var to uint64
	for _, v := range st.Voters {
		if v != self && st.RecentActive[v] && (to == 0 || st.Match[v] > st.Match[to]) {
			to = v
		}
	}
	if to == 0 {
		return
	}
	n.rn.TransferLeadership(to)
	bound := time.NewTimer(10 * n.cfg.TickInterval) // the election timeout
	defer bound.Stop()
	poll := time.NewTicker(n.cfg.TickInterval / 10)
	defer poll.Stop()
	for {
		select {
		case <-poll.C:
			if n.rn.Status().Role != quorum.RoleLeader {
				return
			}
			// The target stopped too, or with too many voters stopped no
			// leader can be elected: nothing to hand over.
			if _, err := n.tr.PeerStatus(to); errors.Is(err, syscall.ECONNREFUSED) || n.majorityRefused() {
				return
			}
		case <-bound.C:
			n.log.Info("leadership transfer did not complete within an election timeout; stopping anyway", zap.Uint64("to", to))
			return
		case <-ctx.Done():
			return
		}
	}
}

// ---- the state machine the quorum applies to ----

type stateMachine Node

func (sm *stateMachine) Apply(index, term uint64, payload []byte) error {
	n := (*Node)(sm)
	recs, err := metadata.DecodeBatch(payload)
	if err == nil {
		var next metadata.Image
		var deltas []metadata.Delta
		next, deltas, err = n.image.Load().ApplyAll(recs)
		if err == nil {
			n.publish(index, &next, deltas, false)
			return nil
		}
	}
	// Every member applies the same entries the same way, so skipping a
	// batch that does not apply keeps them identical; the controller that
	// proposed it had a bug. Kafka's metadata loader does the same.
	n.log.Error("metadata entry does not apply; skipped", zap.Uint64("index", index), zap.Error(err))
	n.publish(index, n.image.Load(), nil, false)
	return nil
}

func (sm *stateMachine) Snapshot() ([]byte, error) {
	n := (*Node)(sm)
	return metadata.EncodeBatch(nil, n.image.Load().Records()), nil
}

func (sm *stateMachine) Restore(snap []byte, index uint64) error {
	n := (*Node)(sm)
	recs, err := metadata.DecodeBatch(snap)
	if err != nil {
		return fmt.Errorf("metadata snapshot at %d: %w", index, err)
	}
	im, _, err := metadata.Image{}.ApplyAll(recs)
	if err != nil {
		return fmt.Errorf("metadata snapshot at %d: %w", index, err)
	}
	n.publish(index, &im, nil, true)
	return nil
}

// publish makes im current and queues it for the broker.
func (n *Node) publish(index uint64, im *metadata.Image, deltas []metadata.Delta, full bool) {
	n.image.Store(im)
	n.applied.Store(index)
	if !n.memberNoted && index > 0 && n.store != nil && n.dynamic() {
		n.memberNoted = true
		n.noteMember()
	}
	if n.cfg.OnMetadata == nil {
		n.served.Store(im)
		n.caughtUp.Store(true)
		n.markSynced(index)
		return
	}
	select {
	case n.applyQ <- applyItem{index: index, im: im, deltas: deltas, full: full}:
	case <-n.closing:
	}
}

// markSynced records that the broker has followed the metadata up to index
// (OnMetadata returned for it) and wakes waitApplied.
func (n *Node) markSynced(index uint64) {
	n.synced.Store(index)
	n.appliedMu.Lock()
	close(n.appliedCh)
	n.appliedCh = make(chan struct{})
	n.appliedMu.Unlock()
}

// applier hands images to the broker in log order. The first one after a
// start is a full sync. Images queued meanwhile are coalesced: the broker
// gets the newest with every delta since the last call, so a start that
// replays a long log (or a broker that fell behind) syncs to the end state
// once instead of creating topics a later record deletes.
//
// Nothing is handed to the broker after a start until the node has caught
// up with the quorum: applied the index of its first registration's answer
// (register sets catchUpTo), which covers every change made while it was
// away. What a node replays off its own disk before that is the cluster as
// it was when the node stopped: handed over, a node SIGKILLed while it led a
// partition would lead it again at the old epoch, and take records, until
// the quorum told it otherwise (Kafka's metadata loader publishes nothing
// before it has caught up with the log's high watermark either).
func (n *Node) applier() {
	first := true
	var held *applyItem // coalesced, waiting for the catch-up
	for {
		var it applyItem
		have := held != nil
		if have {
			it, held = *held, nil
		}
		select {
		case next := <-n.applyQ:
			it, have = coalesce(it, have, next), true
		case <-n.catchUpWake:
		case <-n.closing:
			return
		}
		if !have {
			continue
		}
	drain:
		for range cap(n.applyQ) {
			select {
			case next := <-n.applyQ:
				it = coalesce(it, true, next)
			default:
				break drain
			}
		}
		if first {
			if target := n.catchUpTo.Load(); target == 0 || it.index < target {
				held = &it
				continue
			}
		}
		if it.full || first || len(it.deltas) > 0 {
			n.served.Store(it.im)
			n.caughtUp.Store(true)
			n.cfg.OnMetadata(it.im, it.deltas, it.full || first)
			first = false
		}
		n.markSynced(it.index)
	}
}

// coalesce returns it (when have) followed by next: next's index and
// image, both's deltas.
func coalesce(it applyItem, have bool, next applyItem) applyItem {
	if !have {
		return next
	}
	it.index, it.im, it.full = next.index, next.im, it.full || next.full
	it.deltas = append(it.deltas, next.deltas...)
	return it
}

// ---- RPCs: broker to controller ----

// call sends req to the active controller (this node's own when it is the
// controller) and returns the answer and the metadata index the answer
// reflects.
func (n *Node) call(ctx context.Context, req kmsg.Request) (kmsg.Response, uint64, error) {
	ctlID := n.ControllerID()
	if ctlID < 0 {
		return nil, 0, kerr.NotController
	}
	if ctlID == n.cfg.NodeID {
		return n.handleController(ctx, req)
	}
	// A Call to a peer that is not connected waits for the connection
	// until ctx ends; the controller this node last knew of may be the
	// one that just died, so fail at once and let the caller retry with
	// the controller elected meanwhile.
	if connected, err := n.tr.PeerStatus(raftID(ctlID)); !connected {
		return nil, 0, fmt.Errorf("controller %d %w: %v", ctlID, errControllerNotConnected, err)
	}
	// And a connection that dies silently is given up after a bound.
	ctx, cancel := context.WithTimeout(ctx, callAttemptTimeout)
	defer cancel()
	body := req.AppendTo(nil)
	out, err := n.tr.Call(ctx, raftID(ctlID), req.Key(), req.GetVersion(), body)
	if err != nil {
		return nil, 0, err
	}
	return decodeAnswer(req, out)
}

// errControllerNotConnected: the controller this node knows of is not
// connected (call fails at once rather than wait for it).
var errControllerNotConnected = errors.New("not connected")

// callAttemptTimeout bounds one RPC to the controller: its work (compute,
// propose, apply) takes milliseconds; a silent connection is retried.
const callAttemptTimeout = 10 * time.Second

// decodeAnswer decodes an RPC answer: the applied index (8 bytes), then the
// response body in req's version.
func decodeAnswer(req kmsg.Request, out []byte) (kmsg.Response, uint64, error) {
	if len(out) < 8 {
		return nil, 0, fmt.Errorf("cluster: short controller answer (%d bytes)", len(out))
	}
	index := binary.BigEndian.Uint64(out)
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(out[8:]); err != nil {
		return nil, 0, fmt.Errorf("cluster: controller answer: %w", err)
	}
	return resp, index, nil
}

// serveRPC is the transport's OnRPC: a request from another node for the
// controller.
func (n *Node) serveRPC(ctx context.Context, from uint64, key, version int16, body []byte) ([]byte, error) {
	switch key {
	case metadataFetchKey:
		return n.serveMetadataFetch(from, version, body)
	case joinKey:
		return n.serveJoin(ctx, body)
	}
	req := kmsg.RequestForKey(key)
	if req == nil || !controllerKeys[kmsg.Key(key)] {
		return nil, fmt.Errorf("cluster: api key %d is not served by the controller", key)
	}
	req.SetVersion(version)
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("cluster: malformed %s v%d: %w", kmsg.Key(key).Name(), version, err)
	}
	resp, index, err := n.handleController(ctx, req)
	if err != nil {
		return nil, err
	}
	out := binary.BigEndian.AppendUint64(nil, index)
	return resp.AppendTo(out), nil
}

// handleController runs a request on this node's controller: voter
// changes off the controller's lock (dynamic.go), the rest through it.
func (n *Node) handleController(ctx context.Context, req kmsg.Request) (kmsg.Response, uint64, error) {
	var resp kmsg.Response
	switch r := req.(type) {
	case *kmsg.AddRaftVoterRequest:
		resp = n.addRaftVoter(ctx, r)
	case *kmsg.RemoveRaftVoterRequest:
		resp = n.removeRaftVoter(ctx, r)
	case *kmsg.UpdateRaftVoterRequest:
		resp = n.updateRaftVoter(ctx, r)
	default:
		return n.ctl.handle(ctx, n, req)
	}
	if resp == nil {
		return nil, 0, kerr.NotController
	}
	// A configuration change is no metadata entry: the forwarding broker
	// has nothing to wait for (its applied index counts metadata entries
	// only, so the change's own index would never be reached).
	return resp, n.Applied(), nil
}

// Forward is broker.Cluster's: an admin request to the controller, answered
// once this node applied what the controller wrote for it.
func (n *Node) Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	var lastErr error
	for attempt := 0; ; attempt++ {
		resp, index, err := n.call(ctx, req)
		if err == nil {
			if err := n.waitApplied(ctx, index); err != nil {
				return nil, err
			}
			return resp, nil
		}
		lastErr = err
		// No controller yet, or it moved: wait a little and try the new one.
		select {
		case <-time.After(backoff(attempt)):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), lastErr)
		case <-n.closing:
			return nil, errClosed
		}
	}
}

func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 5)
	return min(d, time.Second)
}

// randomUUID is a random non-zero topic id (Kafka's Uuid.randomUuid).
func randomUUID() metadata.UUID {
	for {
		var u metadata.UUID
		if _, err := rand.Read(u[:]); err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		if u != (metadata.UUID{}) {
			return u
		}
	}
}

// AllocateProducerIDs is broker.Cluster's: the next producer id block from
// the controller.
func (n *Node) AllocateProducerIDs(ctx context.Context) (int64, int32, error) {
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID = n.cfg.NodeID
	for attempt := 0; ; attempt++ {
		req.BrokerEpoch = n.brokerEpoch.Load()
		var err error
		if req.BrokerEpoch >= 0 {
			var resp kmsg.Response
			var index uint64
			resp, index, err = n.call(ctx, req)
			if err == nil {
				r := resp.(*kmsg.AllocateProducerIDsResponse)
				if r.ErrorCode == 0 {
					return r.ProducerIDStart, r.ProducerIDLen, n.waitApplied(ctx, index)
				}
				err = kerr.ErrorForCode(r.ErrorCode)
			}
		} else {
			err = errors.New("not registered with the controller yet")
		}
		select {
		case <-time.After(backoff(attempt)):
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-n.closing:
			return 0, 0, errClosed
		}
	}
}

// quorumLogger is the logger of the quorum's own lines, which name raft
// ids: each line says so, with this node's two ids.
func quorumLogger(l *zap.Logger, name string, node int32) *zap.Logger {
	return l.Named(name).With(zap.Int32("node_id", node), zap.String("ids", "raft id = node id + 1"))
}
