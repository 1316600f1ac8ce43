package cluster

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/quorum"
)

// controllerKeys are the requests the controller serves over RPC.
var controllerKeys = map[kmsg.Key]bool{
	kmsg.BrokerRegistration:         true,
	kmsg.BrokerHeartbeat:            true,
	kmsg.CreateTopics:               true,
	kmsg.DeleteTopics:               true,
	kmsg.CreatePartitions:           true,
	kmsg.AlterConfigs:               true,
	kmsg.IncrementalAlterConfigs:    true,
	kmsg.ElectLeaders:               true,
	kmsg.AlterPartitionAssignments:  true,
	kmsg.ListPartitionReassignments: true,
	kmsg.AlterPartition:             true,
	kmsg.AllocateProducerIDs:        true,
	kmsg.DescribeQuorum:             true,
	// controller/security.go
	kmsg.AlterUserSCRAMCredentials: true,
	kmsg.CreateACLs:                true,
	kmsg.DeleteACLs:                true,
	kmsg.AlterClientQuotas:         true,
	kmsg.AddRaftVoter:              true, // dynamic.go
	kmsg.RemoveRaftVoter:           true,
	kmsg.UpdateRaftVoter:           true,
	kmsg.UpdateFeatures:            true, // controller/features.go
}

// producerIDBlock is the size of the producer id block a broker gets
// (Kafka's 1000).
const producerIDBlock = 1000

// allocateProducerIDs hands the next block of producer ids out
// (AllocateProducerIds, key 67): the ProducerIdsRecord moves the image's
// end past it.
func allocateProducerIDs(im metadata.Image, r *kmsg.AllocateProducerIDsRequest) (kmsg.Response, []metadata.Record) {
	resp := kmsg.NewPtrAllocateProducerIDsResponse()
	start := im.ProducerIDsEnd()
	if b, ok := im.Broker(r.BrokerID); !ok || b.Epoch != r.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp, nil
	}
	resp.ProducerIDStart, resp.ProducerIDLen = start, producerIDBlock
	return resp, []metadata.Record{&metadata.ProducerIDsRecord{BrokerID: r.BrokerID, BrokerEpoch: r.BrokerEpoch, ProducerIDsEnd: start + producerIDBlock}}
}

// ctlState is the active controller while this node leads the quorum. mu
// serialises every controller operation: each computes its records from
// the image with every earlier operation's records applied (handle waits
// for its proposal to apply before it unlocks).
type ctlState struct {
	cfg controller.Config

	mu   sync.Mutex
	ctl  *controller.Controller // nil: not the active controller
	term uint64

	// lead is cancelled as soon as the quorum loop reports that this node
	// no longer leads (another leader, none, or the node closing), without
	// c.mu: a proposal waiting for a quorum that went away (every other
	// voter stopped) then ends at once instead of at its timeout, and with
	// it the hold on c.mu that a controlled shutdown's heartbeat and Close
	// wait for. leadMu guards the fields below.
	leadMu     sync.Mutex
	lead       context.Context
	leadCancel context.CancelFunc
	leadTerm   uint64 // the term lead is for
	wonTerm    uint64 // the newest term this node became leader of
	lostTerm   uint64 // the newest term this node led and no longer leads
}

// beginTerm gives the controller of term a fresh lead context, already
// cancelled if the loss of term was reported first (the quorum loop's
// reports and the controller's activation run on different goroutines).
func (c *ctlState) beginTerm(term uint64) {
	c.leadMu.Lock()
	defer c.leadMu.Unlock()
	if c.leadCancel != nil {
		c.leadCancel()
	}
	c.lead, c.leadCancel = context.WithCancel(context.Background())
	c.leadTerm = term
	if c.lostTerm >= term {
		c.leadCancel()
	}
}

// leaderChanged is the quorum loop's report that leader leads term (0:
// none known, as while this node is a candidate). Reports come in order, so
// one naming another leader (or none) after this node won a term means it
// lost that term.
func (c *ctlState) leaderChanged(term uint64, self bool) {
	c.leadMu.Lock()
	defer c.leadMu.Unlock()
	if self {
		c.wonTerm = max(c.wonTerm, term)
		return
	}
	if c.wonTerm == 0 || c.lostTerm >= c.wonTerm {
		return
	}
	c.lostTerm = c.wonTerm
	if c.leadCancel != nil && c.leadTerm <= c.lostTerm {
		c.leadCancel()
	}
}

// closeTerms: the node is closing; no term it leads or will lead counts.
func (c *ctlState) closeTerms() {
	c.leadMu.Lock()
	defer c.leadMu.Unlock()
	c.lostTerm = math.MaxUint64
	if c.leadCancel != nil {
		c.leadCancel()
	}
}

// leadContext is the current term's lead context (a cancelled one before
// the first term).
func (c *ctlState) leadContext() context.Context {
	c.leadMu.Lock()
	defer c.leadMu.Unlock()
	if c.lead == nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	return c.lead
}

// leadership is one leadership event from the quorum loop: this node
// became the ready leader of term (ready), or the leader of term is
// another node (or none).
type leadership struct {
	term  uint64
	ready bool
}

// leadershipEvents runs the controller's activations in the order the
// quorum loop reported leadership (OnLeader, OnLeaderReady), so a late
// deactivation never undoes a later activation.
func (n *Node) leadershipEvents() {
	for {
		var ev leadership
		select {
		case ev = <-n.leaderEvents:
		case <-n.closing:
			return
		}
		c := &n.ctl
		c.mu.Lock()
		switch {
		case !ev.ready:
			if c.ctl != nil && c.term <= ev.term {
				c.ctl = nil
				n.log.Info("no longer the active controller", zap.Uint64("term", ev.term))
			}
		case ev.term > c.term || c.ctl == nil:
			c.beginTerm(ev.term)
			c.ctl = controller.New(c.cfg)
			c.term = ev.term
			c.ctl.Activate(time.Now(), *n.Image())
			n.log.Info("active controller", zap.Uint64("term", ev.term))
			n.adoptLocalTopics()
		}
		c.mu.Unlock()
	}
}

// leadershipEvent queues ev for leadershipEvents. Called on the quorum
// loop: the queue is deep enough that it only waits when the controller is
// stuck for hundreds of elections.
func (n *Node) leadershipEvent(ev leadership) {
	select {
	case n.leaderEvents <- ev:
	case <-n.closing:
	}
}

// handle runs one controller request. REQUIRES: not holding c.mu.
func (c *ctlState) handle(ctx context.Context, n *Node, req kmsg.Request) (kmsg.Response, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctl == nil {
		return nil, 0, kerr.NotController
	}
	im := *n.Image()
	now := time.Now()
	var resp kmsg.Response
	var recs []metadata.Record
	switch r := req.(type) {
	case *kmsg.BrokerRegistrationRequest:
		resp, recs = c.ctl.RegisterBroker(now, im, int64(n.Applied())+1, r)
	case *kmsg.BrokerHeartbeatRequest:
		resp, recs = c.ctl.Heartbeat(now, im, r)
	case *kmsg.CreateTopicsRequest:
		resp, recs = c.ctl.CreateTopics(im, r)
	case *kmsg.DeleteTopicsRequest:
		resp, recs = c.ctl.DeleteTopics(im, r)
	case *kmsg.CreatePartitionsRequest:
		resp, recs = c.ctl.CreatePartitions(im, r)
	case *kmsg.AlterConfigsRequest:
		resp, recs = c.ctl.AlterConfigs(im, r)
	case *kmsg.IncrementalAlterConfigsRequest:
		resp, recs = c.ctl.IncrementalAlterConfigs(im, r)
	case *kmsg.ElectLeadersRequest:
		resp, recs = c.ctl.ElectLeaders(im, r)
	case *kmsg.AlterPartitionAssignmentsRequest:
		resp, recs = c.ctl.AlterPartitionReassignments(im, r)
	case *kmsg.ListPartitionReassignmentsRequest:
		resp = c.ctl.ListPartitionReassignments(im, r)
	case *kmsg.AlterPartitionRequest:
		resp, recs = c.ctl.AlterPartition(im, r)
	case *kmsg.AllocateProducerIDsRequest:
		resp, recs = allocateProducerIDs(im, r)
	case *kmsg.DescribeQuorumRequest:
		resp = n.describeQuorum(r)
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		resp, recs = c.ctl.AlterUserSCRAMCredentials(im, r)
	case *kmsg.CreateACLsRequest:
		resp, recs = c.ctl.CreateACLs(im, r)
	case *kmsg.DeleteACLsRequest:
		resp, recs = c.ctl.DeleteACLs(im, r)
	case *kmsg.AlterClientQuotasRequest:
		resp, recs = c.ctl.AlterClientQuotas(im, r)
	case *kmsg.UpdateFeaturesRequest:
		resp, recs = c.ctl.UpdateFeatures(im, r)
	default:
		return nil, 0, fmt.Errorf("cluster: the controller does not serve %s", kmsg.Key(req.Key()).Name())
	}
	resp.SetVersion(req.GetVersion())
	index, err := c.propose(ctx, n, recs)
	if err != nil {
		return nil, 0, err
	}
	return resp, index, nil
}

// propose writes recs through the quorum and returns once they are applied
// here (the index of the entry; with no records the index applied now).
// REQUIRES: c.mu held.
func (c *ctlState) propose(ctx context.Context, n *Node, recs []metadata.Record) (uint64, error) {
	if len(recs) == 0 {
		return n.Applied(), nil
	}
	if ce := n.log.Check(zap.DebugLevel, "controller proposes"); ce != nil {
		ce.Write(zap.String("records", fmt.Sprintf("%+v", recs)))
	}
	for _, rec := range recs {
		if controller.IsUncleanElection(rec) {
			// Kafka logs these too: records the old ISR acknowledged may
			// be lost.
			r := rec.(*metadata.PartitionChangeRecord)
			n.log.Warn("unclean leader election: a replica outside the ISR leads (unclean.leader.election.enable)",
				zap.String("topic_id", fmt.Sprintf("%x", r.TopicID)), zap.Int32("partition", r.PartitionID), zap.Int32("leader", r.Leader))
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.leadContext(), cancel)()
	index, err := n.rn.Propose(ctx, metadata.EncodeBatch(nil, recs))
	if err != nil {
		// The answer computed from these records is void; the broker
		// retries (NOT_CONTROLLER is retriable everywhere).
		n.log.Warn("controller proposal failed", zap.Error(err))
		return 0, kerr.NotController
	}
	return index, nil
}

// controllerTicker runs the controller's clock: session expiry, elections,
// rebalance.
func (n *Node) controllerTicker() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-n.closing:
			return
		}
		c := &n.ctl
		c.mu.Lock()
		if c.ctl != nil {
			recs := c.ctl.Tick(time.Now(), *n.Image())
			if len(recs) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if _, err := c.propose(ctx, n, recs); err != nil {
					n.log.Warn("controller tick records not written", zap.Error(err))
				}
				cancel()
			}
		}
		c.mu.Unlock()
	}
}

// adoptLocalTopics adds this node's topics that the metadata lacks, with
// this node as their only replica, when this node has never registered
// (a single node forming or joining a quorum keeps its topics; later, a
// topic missing from the metadata was deleted and stays so). REQUIRES: c.mu held, controller active.
func (n *Node) adoptLocalTopics() {
	if n.cfg.LocalTopics == nil {
		return
	}
	im := *n.Image()
	if _, known := im.Broker(n.cfg.NodeID); known {
		// Only a node new to the quorum brings its topics: once it is
		// registered, a topic missing from the metadata was deleted.
		return
	}
	var recs []metadata.Record
	for _, lt := range n.cfg.LocalTopics() {
		if _, ok := im.TopicByName(lt.Name); ok {
			continue
		}
		if _, ok := im.TopicByID(lt.ID); ok {
			n.log.Error("a local topic's id belongs to another topic in the cluster metadata; not adopting it", zap.String("topic", lt.Name))
			continue
		}
		recs = append(recs, &metadata.TopicRecord{Name: lt.Name, TopicID: lt.ID})
		for p := int32(0); p < lt.Partitions; p++ {
			self := []int32{n.cfg.NodeID}
			recs = append(recs, &metadata.PartitionRecord{PartitionID: p, TopicID: lt.ID, Replicas: self, ISR: self, Leader: n.cfg.NodeID})
		}
		for _, k := range slices.Sorted(maps.Keys(lt.Configs)) {
			v := lt.Configs[k]
			recs = append(recs, &metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: lt.Name, Name: k, Value: &v})
		}
		n.log.Info("adding a local topic to the cluster metadata", zap.String("topic", lt.Name), zap.Int32("partitions", lt.Partitions))
	}
	if n.cfg.LocalProducerIDsEnd != nil {
		if end, err := n.cfg.LocalProducerIDsEnd(); err != nil {
			n.log.Error("reading this node's producer id history; not adopting its topics", zap.Error(err))
			return
		} else if end > im.ProducerIDsEnd() {
			recs = append(recs, &metadata.ProducerIDsRecord{BrokerID: n.cfg.NodeID, BrokerEpoch: -1, ProducerIDsEnd: end})
		}
	}
	if len(recs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.ctl.propose(ctx, n, recs); err != nil {
		n.log.Error("adding local topics to the cluster metadata failed; retried at the next controller election", zap.Error(err))
	}
}

// describeQuorum answers DescribeQuorum (key 55) on the active controller
// (the raft leader), as Kafka's KafkaRaftClient does from its LeaderState:
// leader id and epoch (the raft term), the high watermark and each voter's
// and observer's (a dynamic quorum's raft learners) log end offset, last
// fetch and last caught-up times as this leader saw them in its term
// (quorum.ReplicaTimes: a raft follower's answer to an append or heartbeat
// stands for a KRaft follower's Fetch), the leader itself at now for
// both. Offsets are exclusive as Kafka's: the raft log's entry i is at
// offset i of __cluster_metadata-0, so the high watermark is the commit
// index + 1 and a log end offset the match index + 1; a member that has
// not answered this leader yet has -1 (Kafka's unknown end offset) and
// -1 times. Kafka's offsets count records, ours raft entries (one batch
// of records each). Directory ids are those a dynamic quorum's log names
// (cluster/dynamic.go), else Kafka's NO_DIRECTORY_ID (zero).
func (n *Node) describeQuorum(r *kmsg.DescribeQuorumRequest) *kmsg.DescribeQuorumResponse {
	resp := kmsg.NewPtrDescribeQuorumResponse()
	st := n.rn.Status()
	nowMs := time.Now().UnixMilli()
	for _, t := range r.Topics {
		rt := kmsg.DescribeQuorumResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeQuorumResponseTopicPartition()
			rp.Partition = p.Partition
			if t.Topic != "__cluster_metadata" || p.Partition != 0 {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			if st.Role != quorum.RoleLeader {
				// Leadership moved between the forward and now: Kafka's
				// non-leader answer.
				rp.ErrorCode = kerr.NotLeaderForPartition.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			rp.LeaderID, rp.LeaderEpoch, rp.HighWatermark = nodeID(st.Leader), int32(st.Term), int64(st.Commit)+1
			for _, v := range st.Voters {
				rp.CurrentVoters = append(rp.CurrentVoters, replicaState(st, v, nowMs))
			}
			// Kafka's observers are the replicas that fetch without
			// voting: here the raft learners of a dynamic quorum, then
			// the broker-only nodes that fetched from this leader
			// (observer_fetches.go).
			for _, l := range st.Learners {
				rp.Observers = append(rp.Observers, replicaState(st, l, nowMs))
			}
			rp.Observers = append(rp.Observers, n.observed.states(nowMs, func(id uint64) bool {
				return slices.Contains(st.Voters, id) || slices.Contains(st.Learners, id)
			})...)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	eps := n.memberEndpoints(st)
	for _, id := range slices.Sorted(maps.Keys(eps)) {
		host, port, err := net.SplitHostPort(eps[id])
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			continue
		}
		resp.Nodes = append(resp.Nodes, kmsg.DescribeQuorumResponseNode{NodeID: id,
			Listeners: []kmsg.DescribeQuorumResponseNodeListener{{Name: n.controllerListenerName(), Host: host, Port: uint16(p)}}})
	}
	return resp
}

// replicaState is member id's line of DescribeQuorum from the leader's
// status st (see describeQuorum).
func replicaState(st quorum.Status, id uint64, nowMs int64) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
	rs.ReplicaID = nodeID(id)
	rs.LogEndOffset, rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = -1, -1, -1
	rs.ReplicaDirectoryID = st.DirectoryIDs[id]
	if id == st.ID {
		rs.LogEndOffset = int64(st.Match[id]) + 1
		rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = nowMs, nowMs
		return rs
	}
	if times, ok := st.Replicas[id]; ok {
		rs.LogEndOffset = int64(st.Match[id]) + 1
		rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = times.LastFetchMs, times.LastCaughtUpMs
	}
	return rs
}
