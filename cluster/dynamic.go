package cluster

// A dynamic metadata quorum (KIP-853, controller.quorum.bootstrap.servers).
//
// The voter set is raft's configuration and each member's controller
// endpoint travels in the log with the change that adds it (quorum's
// members.go), so every node learns whom to dial from the log: the
// membership loop below adds each member the log names to the transport.
//
//   - First start (an empty metadata log): with controller.quorum.standalone
//     or controller.quorum.initial.controllers the node writes raft's
//     bootstrap entries naming the initial voters (Kafka's format
//     --standalone / --initial-controllers); with neither it starts with an
//     empty configuration and the join loop asks the quorum, through the
//     bootstrap servers, to add it as a learner (Kafka's observer: it is
//     replicated to, applies the log, serves as a broker, never votes).
//   - AddRaftVoter (key 80) adds a node as a voter in two raft
//     configuration changes: as a learner with the request's CONTROLLER
//     endpoint (nothing to do when it joined already), then, once its log
//     caught up with the leader's commit index, promoted to voter. One
//     change at a time; raft's simple changes move one voter, which keeps
//     every old and new majority overlapping.
//   - RemoveRaftVoter (key 81) demotes a voter to learner: a removed node
//     that keeps running goes on following the log as an observer (as in
//     Kafka). A leader that removes itself steps down once the change
//     applies (raft's StepDownOnRemoval) and the others elect a leader.
//
// Both are served by the active controller (the raft leader), off the
// controller's lock: a change waits for a learner to catch up, and broker
// heartbeats must not wait behind it. voterChange (a mutex taken with
// TryLock) keeps them one at a time.

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/quorum"
	"github.com/ringbroker/ringbroker/storage"
)

// joinKey is the RPC key of a joining node's request to be added as a
// learner: not a Kafka API key. Its body is an AddRaftVoterRequest (v0)
// naming the node and its CONTROLLER endpoint.
const joinKey int16 = -101

// controllerListenerName is the listener name AddRaftVoter's endpoint is
// looked up by (Kafka: the first of controller.listener.names).
const defaultControllerListenerName = "CONTROLLER"

// voterCatchUpPoll is how often AddRaftVoter checks a learner's progress.
const voterCatchUpPoll = 20 * time.Millisecond

// dynamic reports whether this node runs a dynamic quorum.
func (n *Node) dynamic() bool { return len(n.cfg.BootstrapServers) > 0 }

// controllerListenerName is the name AddRaftVoter's listeners must use.
func (n *Node) controllerListenerName() string {
	if n.cfg.ControllerListenerName != "" {
		return n.cfg.ControllerListenerName
	}
	return defaultControllerListenerName
}

// onMembers is the quorum loop's OnMembers: it leaves the newest
// membership for membersLoop (never blocks).
func (n *Node) onMembers(m quorum.Membership) {
	n.members.Store(&m)
	select {
	case n.membersCh <- struct{}{}:
	default:
	}
}

// membersLoop makes the transport dial every member the log names, at the
// endpoint it names, and forget members removed from the configuration.
func (n *Node) membersLoop() {
	self := raftID(n.cfg.NodeID)
	known := map[uint64]string{}
	for {
		select {
		case <-n.membersCh:
		case <-n.closing:
			return
		}
		m := n.members.Load()
		if m == nil {
			continue
		}
		for id, addr := range m.Endpoints {
			if id == self || known[id] == addr {
				continue
			}
			if err := n.tr.AddPeer(id, addr); err != nil {
				n.log.Warn("quorum member not added to the transport", zap.Int32("node", nodeID(id)), zap.String("endpoint", addr), zap.Error(err))
				continue
			}
			known[id] = addr
		}
		for id := range known {
			if _, ok := m.Endpoints[id]; !ok {
				n.tr.RemovePeer(id)
				delete(known, id)
			}
		}
	}
}

// isMember reports whether this node is in the quorum's configuration (a
// voter or a learner).
func (n *Node) isMember() bool {
	st := n.rn.Status()
	self := raftID(n.cfg.NodeID)
	return slices.Contains(st.Voters, self) || slices.Contains(st.Learners, self)
}

// joinLoop asks the quorum, through the bootstrap servers, to add this
// node as a learner until the log says it is a member, and to update its
// endpoint while the log names another one than its controller listener
// (the node moved), until the log names the new one.
func (n *Node) joinLoop() {
	host, port, _ := net.SplitHostPort(n.cfg.ControllerListen)
	p, _ := strconv.Atoi(port)
	req := kmsg.NewPtrAddRaftVoterRequest()
	req.ClusterID = &n.cfg.ClusterID
	req.VoterID = n.cfg.NodeID
	req.VoterDirectoryID = n.directoryID
	req.Listeners = []kmsg.AddRaftVoterRequestListener{{Name: n.controllerListenerName(), Host: host, Port: uint16(p)}}
	body := req.AppendTo(nil)
	var servers []string
	for _, s := range n.cfg.BootstrapServers {
		if s != n.cfg.ControllerListen {
			servers = append(servers, s)
		}
	}
	self := raftID(n.cfg.NodeID)
	moved := false
	for attempt := 0; ; attempt++ {
		st := n.rn.Status()
		member := slices.Contains(st.Voters, self) || slices.Contains(st.Learners, self)
		logged := st.Endpoints[self]
		wait := 100 * time.Millisecond
		switch {
		case member && logged == n.cfg.ControllerListen:
			n.log.Info("a member of the dynamic metadata quorum", zap.String("endpoint", n.cfg.ControllerListen))
			return
		case member && logged == "":
			// The entries naming it are not applied yet.
		case len(servers) == 0:
			n.log.Warn("no other bootstrap server to join the metadata quorum or update this node's endpoint through (controller.quorum.bootstrap.servers names only this node)")
			return
		default:
			// Not a member: ask to be added as a learner. A member whose
			// logged endpoint is another (the node moved): the same request
			// carries the new endpoint, which the controller writes into
			// the log. Both go through the bootstrap servers, since the
			// leader, dialing no or the old endpoint, may never reach this
			// node to say who leads.
			if member && !moved {
				n.log.Info("the metadata log names another endpoint for this node; asking the controller to update it",
					zap.String("logged", logged), zap.String("endpoint", n.cfg.ControllerListen))
				moved = true
			}
			server := servers[attempt%len(servers)]
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out, err := n.tr.CallAddr(ctx, server, joinKey, 0, body)
			cancel()
			if err == nil {
				n.learnEndpoints(out)
				wait = 200 * time.Millisecond // wait for the log to say so
			} else {
				if attempt%len(servers) == 0 {
					n.log.Info("asking the metadata quorum to add this node or update its endpoint", zap.String("bootstrap_server", server), zap.Error(err))
				}
				wait = backoff(attempt / len(servers))
			}
		}
		select {
		case <-time.After(wait):
		case <-n.closing:
			return
		}
	}
}

// learnEndpoints adds the members a join answer names to the transport, so
// this node answers the leader's first messages before its log names them.
func (n *Node) learnEndpoints(out []byte) {
	self := raftID(n.cfg.NodeID)
	for _, line := range strings.Split(string(out), "\n") {
		id, addr, ok := strings.Cut(line, "=")
		raft, perr := strconv.ParseUint(id, 10, 64)
		if !ok || perr != nil || raft == 0 || raft == self {
			continue
		}
		if err := n.tr.AddPeer(raft, addr); err != nil {
			n.log.Warn("quorum member from the join answer not added", zap.Uint64("raft_id", raft), zap.String("endpoint", addr), zap.Error(err))
		}
	}
}

// updateEndpoint writes member node's new endpoint into the log with a
// configuration change that leaves the configuration as it is (a voter
// added as a voter again, a learner as a learner). REQUIRES: changeVoters.
func (n *Node) updateEndpoint(ctx context.Context, st quorum.Status, node int32, addr string, dir [16]byte) (int16, string) {
	id := raftID(node)
	typ := raftpb.ConfChangeAddNode
	switch {
	case node < 0:
		return kerr.VoterNotFound.Code, ""
	case slices.Contains(st.Voters, id):
	case slices.Contains(st.Learners, id):
		typ = raftpb.ConfChangeAddLearnerNode
	default:
		return kerr.VoterNotFound.Code, fmt.Sprintf("node %d is not a member of the quorum", node)
	}
	if known, ok := st.DirectoryIDs[id]; ok && dir != [16]byte{} && known != dir {
		// Another replica under a member's node id (its metadata dir was
		// replaced?): Kafka would count it as another replica; keyed by
		// node id, we keep the member's and say so.
		n.log.Warn("a quorum member's request names another directory id than the log's; keeping the log's",
			zap.Int32("node", node), zap.String("directory_id", kafkaUUID(dir)), zap.String("logged", kafkaUUID(known)))
		dir = known
	}
	if st.Endpoints[id] == addr && (dir == [16]byte{} || st.DirectoryIDs[id] == dir) {
		return 0, ""
	}
	if _, err := n.rn.ProposeConfChange(ctx, []*raftpb.ConfChangeSingle{confChange(typ, id)},
		[]quorum.Member{{ID: id, Addr: addr, DirectoryID: dir}}); err != nil {
		return kerr.RequestTimedOut.Code, err.Error()
	}
	n.log.Info("updated a quorum member's endpoint", zap.Int32("node", node), zap.String("endpoint", addr))
	return 0, ""
}

// updateRaftVoter serves UpdateRaftVoter (key 82) on the active
// controller: a member's new CONTROLLER endpoint, written into the log
// with a configuration change that leaves the configuration as it is.
// Kafka takes it from voters only; here observers (learners, which the
// leader dials too) may send it as well. Kafka's codes: UNSUPPORTED_VERSION
// (a static quorum), INCONSISTENT_CLUSTER_ID, REQUEST_TIMED_OUT (another
// change running, leader not ready), VOTER_NOT_FOUND, INVALID_REQUEST (no
// listener of the controller listener's name).
func (n *Node) updateRaftVoter(ctx context.Context, r *kmsg.UpdateRaftVoterRequest) kmsg.Response {
	resp := kmsg.NewPtrUpdateRaftVoterResponse()
	resp.SetVersion(r.Version)
	code, _ := n.voterPreamble(r.ClusterID, "updating")
	if code == 0 {
		code, _ = n.changeVoters(ctx, func(st quorum.Status) (int16, string) {
			listeners := make([]kmsg.AddRaftVoterRequestListener, len(r.Listeners))
			for i, l := range r.Listeners {
				listeners[i] = kmsg.AddRaftVoterRequestListener{Name: l.Name, Host: l.Host, Port: l.Port}
			}
			addr, code, msg := n.voterEndpoint(listeners)
			if code != 0 {
				return code, msg
			}
			return n.updateEndpoint(ctx, st, r.VoterID, addr, r.VoterDirectoryID)
		})
	}
	if code == kerr.NotController.Code {
		return nil
	}
	resp.ErrorCode = code
	return resp
}

// serveJoin serves joinKey: on the active controller, adds the node as a
// learner; elsewhere, passes the request to the active controller.
func (n *Node) serveJoin(ctx context.Context, body []byte) ([]byte, error) {
	if !n.dynamic() {
		return nil, fmt.Errorf("cluster: node %d runs a static quorum (controller.quorum.voters)", n.cfg.NodeID)
	}
	ctlID := n.ControllerID()
	if ctlID < 0 {
		return nil, kerr.NotController
	}
	if ctlID != n.cfg.NodeID {
		ctx, cancel := context.WithTimeout(ctx, callAttemptTimeout)
		defer cancel()
		return n.tr.Call(ctx, raftID(ctlID), joinKey, 0, body)
	}
	req := kmsg.NewPtrAddRaftVoterRequest()
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("cluster: malformed join request: %w", err)
	}
	code, msg := n.changeVoters(ctx, func(st quorum.Status) (int16, string) {
		id := raftID(req.VoterID)
		if req.ClusterID == nil || *req.ClusterID != n.cfg.ClusterID {
			return kerr.InconsistentClusterID.Code, "another cluster id"
		}
		addr, code, msg := n.voterEndpoint(req.Listeners)
		if code != 0 {
			return code, msg
		}
		if slices.Contains(st.Voters, id) || slices.Contains(st.Learners, id) {
			// A member already: update its endpoint if it moved (what
			// UpdateRaftVoter does for a voter).
			return n.updateEndpoint(ctx, st, req.VoterID, addr, req.VoterDirectoryID)
		}
		if _, err := n.rn.ProposeConfChange(ctx, []*raftpb.ConfChangeSingle{confChange(raftpb.ConfChangeAddLearnerNode, id)},
			[]quorum.Member{{ID: id, Addr: addr, DirectoryID: req.VoterDirectoryID}}); err != nil {
			return kerr.RequestTimedOut.Code, "adding the learner: " + err.Error()
		}
		n.log.Info("added an observer (raft learner) to the metadata quorum", zap.Int32("node", req.VoterID), zap.String("endpoint", addr))
		return 0, ""
	})
	if code != 0 {
		return nil, fmt.Errorf("cluster: join refused: %s: %s", kerr.ErrorForCode(code), msg)
	}
	// The answer: every member's endpoint, "raftID=host:port" lines.
	var out []byte
	for id, addr := range n.rn.Status().Endpoints {
		out = fmt.Appendf(out, "%d=%s\n", id, addr)
	}
	return out, nil
}

func confChange(typ raftpb.ConfChangeType, id uint64) *raftpb.ConfChangeSingle {
	return &raftpb.ConfChangeSingle{Type: typ.Enum(), NodeId: new(id)}
}

// voterEndpoint is the CONTROLLER endpoint among an AddRaftVoter's
// listeners.
func (n *Node) voterEndpoint(listeners []kmsg.AddRaftVoterRequestListener) (string, int16, string) {
	name := n.controllerListenerName()
	for _, l := range listeners {
		if l.Name == name && l.Host != "" && l.Port != 0 {
			return net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))), 0, ""
		}
	}
	return "", kerr.InvalidRequest.Code, fmt.Sprintf("Provided listeners do not contain a listener for %s", name)
}

// changeVoters runs one membership change on the active controller: the
// common checks in Kafka's order, then change. It returns the Kafka error
// code (0: done) and message.
func (n *Node) changeVoters(ctx context.Context, change func(st quorum.Status) (int16, string)) (int16, string) {
	n.ctl.mu.Lock()
	active := n.ctl.ctl != nil
	n.ctl.mu.Unlock()
	if !active {
		return kerr.NotController.Code, "not the active controller"
	}
	if !n.voterChange.TryLock() {
		return kerr.RequestTimedOut.Code, "Request timed out waiting for leader to handle previous voter change request"
	}
	defer n.voterChange.Unlock()
	st := n.rn.Status()
	if st.Role != quorum.RoleLeader || !st.LeaderReady {
		return kerr.RequestTimedOut.Code, "Request timed out waiting for leader to establish HWM and fence previous voter changes"
	}
	return change(st)
}

// addRaftVoter serves AddRaftVoter (key 80) on the active controller.
func (n *Node) addRaftVoter(ctx context.Context, r *kmsg.AddRaftVoterRequest) kmsg.Response {
	resp := kmsg.NewPtrAddRaftVoterResponse()
	resp.SetVersion(r.Version)
	if ms := r.TimeoutMillis; ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	code, msg := n.voterPreamble(r.ClusterID, "adding")
	if code == 0 {
		code, msg = n.changeVoters(ctx, func(st quorum.Status) (int16, string) {
			id := raftID(r.VoterID)
			if r.VoterID < 0 {
				return kerr.InvalidRequest.Code, "voter id must not be negative"
			}
			if slices.Contains(st.Voters, id) {
				return kerr.DuplicateVoter.Code, fmt.Sprintf("The voter id for %d is already part of the set of voters %v.", r.VoterID, nodeIDs(st.Voters))
			}
			addr, code, msg := n.voterEndpoint(r.Listeners)
			if code != 0 {
				return code, msg
			}
			dir := r.VoterDirectoryID
			if !slices.Contains(st.Learners, id) || st.Endpoints[id] != addr || (dir != [16]byte{} && st.DirectoryIDs[id] != dir) {
				if _, err := n.rn.ProposeConfChange(ctx, []*raftpb.ConfChangeSingle{confChange(raftpb.ConfChangeAddLearnerNode, id)},
					[]quorum.Member{{ID: id, Addr: addr, DirectoryID: dir}}); err != nil {
					return kerr.RequestTimedOut.Code, "adding the new voter as a learner: " + err.Error()
				}
			}
			// Caught up: its log reaches the leader's commit index as it
			// was once the learner was in place, and it was heard from.
			target := n.rn.Status().Commit
			for {
				st := n.rn.Status()
				if st.Role != quorum.RoleLeader {
					return kerr.NotController.Code, "leadership moved"
				}
				if st.Match[id] >= target && st.RecentActive[id] {
					break
				}
				select {
				case <-time.After(voterCatchUpPoll):
				case <-ctx.Done():
					return kerr.RequestTimedOut.Code, fmt.Sprintf("Aborted add voter operation for %d since it is lagging behind (log end %d, leader's commit %d)", r.VoterID, st.Match[id], target)
				case <-n.closing:
					return kerr.RequestTimedOut.Code, "controller shutting down"
				}
			}
			if _, err := n.rn.ProposeConfChange(ctx, []*raftpb.ConfChangeSingle{confChange(raftpb.ConfChangeAddNode, id)}, nil); err != nil {
				return kerr.RequestTimedOut.Code, "promoting the learner: " + err.Error()
			}
			n.log.Info("added a voter to the metadata quorum", zap.Int32("node", r.VoterID), zap.String("endpoint", addr))
			return 0, ""
		})
	}
	if code == kerr.NotController.Code {
		return nil // the broker retries with the new controller
	}
	resp.ErrorCode = code
	if code != 0 {
		resp.ErrorMessage = &msg
	}
	return resp
}

// removeRaftVoter serves RemoveRaftVoter (key 81) on the active controller.
func (n *Node) removeRaftVoter(ctx context.Context, r *kmsg.RemoveRaftVoterRequest) kmsg.Response {
	resp := kmsg.NewPtrRemoveRaftVoterResponse()
	resp.SetVersion(r.Version)
	code, msg := n.voterPreamble(r.ClusterID, "removing")
	if code == 0 {
		code, msg = n.changeVoters(ctx, func(st quorum.Status) (int16, string) {
			id := raftID(r.VoterID)
			if r.VoterID < 0 || !slices.Contains(st.Voters, id) || len(st.Voters) == 1 {
				return kerr.VoterNotFound.Code, fmt.Sprintf("Cannot remove voter %d from the set of voters %v", r.VoterID, nodeIDs(st.Voters))
			}
			// Kafka's voters are (id, directory id) pairs: a directory id
			// that is not the voter's names another replica. Either side
			// unknown (zero) matches.
			if known, ok := st.DirectoryIDs[id]; ok && r.VoterDirectoryID != [16]byte{} && known != r.VoterDirectoryID {
				return kerr.VoterNotFound.Code, fmt.Sprintf("Cannot remove voter %d with directory id %s: the voter's directory id is %s",
					r.VoterID, kafkaUUID(r.VoterDirectoryID), kafkaUUID(known))
			}
			// Never lose the quorum by the change: the voters left must
			// still hold a majority this leader is connected to (etcd's
			// strict reconfiguration check; raft's RecentActive flags are
			// reset every election timeout, too coarse to decide on).
			self := raftID(n.cfg.NodeID)
			left, alive := 0, 0
			for _, v := range st.Voters {
				if v == id {
					continue
				}
				left++
				if connected, _ := n.tr.PeerStatus(v); v == self || connected {
					alive++
				}
			}
			if alive <= left/2 {
				return kerr.RequestTimedOut.Code, fmt.Sprintf("removing voter %d would leave %d of the %d remaining voters reachable, not a majority", r.VoterID, alive, left)
			}
			if _, err := n.rn.ProposeConfChange(ctx, []*raftpb.ConfChangeSingle{confChange(raftpb.ConfChangeAddLearnerNode, id)}, nil); err != nil {
				return kerr.RequestTimedOut.Code, "removing the voter: " + err.Error()
			}
			n.log.Info("removed a voter from the metadata quorum (it stays an observer)", zap.Int32("node", r.VoterID))
			return 0, ""
		})
	}
	if code == kerr.NotController.Code {
		return nil
	}
	resp.ErrorCode = code
	if code != 0 {
		resp.ErrorMessage = &msg
	}
	return resp
}

// voterPreamble: the checks before the controller's: a static quorum does
// not change (Kafka: kraft.version 0), and the cluster id must match.
func (n *Node) voterPreamble(clusterID *string, what string) (int16, string) {
	if !n.dynamic() {
		return kerr.UnsupportedVersion.Code, fmt.Sprintf("Cluster doesn't support %s voter because the kraft.version feature is 0 (a static quorum: controller.quorum.voters)", what)
	}
	if clusterID != nil && *clusterID != n.cfg.ClusterID {
		return kerr.InconsistentClusterID.Code, fmt.Sprintf("cluster id %q is not this cluster's", *clusterID)
	}
	return 0, ""
}

// nodeIDs maps raft ids to node ids.
func nodeIDs(ids []uint64) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = nodeID(id)
	}
	return out
}

// memberEndpoints are the endpoints DescribeQuorum names: the log's for a
// dynamic quorum, the configuration's for a static one.
func (n *Node) memberEndpoints(st quorum.Status) map[int32]string {
	out := map[int32]string{}
	if n.dynamic() {
		for _, id := range slices.Sorted(maps.Keys(st.Endpoints)) {
			out[nodeID(id)] = st.Endpoints[id]
		}
		return out
	}
	for _, v := range n.cfg.Voters {
		out[v.ID] = v.Addr()
	}
	return out
}

// kafkaUUID is a 16-byte id in Kafka's text form (base64url, no padding).
func kafkaUUID(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// readDirectoryID is the directory.id of dir's meta.properties (KIP-858's
// log dir id, which KIP-853 calls the replica directory id): zero when the
// file or the key is missing or not a Kafka uuid.
func readDirectoryID(fs storage.FS, dir string) [16]byte {
	var id [16]byte
	b, err := fs.ReadFile(filepath.Join(dir, "meta.properties"))
	if err != nil {
		return id
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "directory.id=")
		if !ok {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(v))
		if err == nil && len(raw) == len(id) {
			copy(id[:], raw)
		}
	}
	return id
}
