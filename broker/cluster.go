package broker

// Cluster mode (issue 15). With Options.Cluster set the broker is one node
// of a cluster: the metadata image replayed from the quorum's log is the
// truth for brokers, topics and partition leadership, and the registry
// follows it (topic_registry_cluster.go).
//
//   - Metadata and DescribeCluster answer from the image: every unfenced
//     broker's endpoint on this listener, each partition's leader, leader
//     epoch, replicas, ISR and offline replicas, the active controller.
//   - The admin requests that change metadata (CreateTopics, DeleteTopics,
//     CreatePartitions, AlterConfigs, IncrementalAlterConfigs) are
//     forwarded to the active controller (Kafka's forwarding) and answered
//     with its answer once this node has applied the records it wrote.
//     Metadata's auto-creation forwards a CreateTopics the same way.
//   - A partition this node holds no replica of, or does not lead, is
//     answered NOT_LEADER_OR_FOLLOWER; leader epochs come from the image.
//
// OnMetadata is how the cluster package hands the broker each new image.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/internal/ratelog"
	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

// Cluster is the metadata quorum as a clustered broker uses it; package
// cluster implements it.
type Cluster interface {
	// Image is the metadata image this broker answers from: the newest
	// handed to OnMetadata (after a start, until the node has caught up
	// with the quorum, the image applied so far without leaders).
	Image() *metadata.Image
	// ControllerID is the active controller's node id, -1 when unknown.
	ControllerID() int32
	// Forward sends an admin request to the active controller and returns
	// its answer once this node has applied the records it produced.
	Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
	// AllocateProducerIDs takes the next block of producer ids from the
	// controller: ids start..start+n-1 are this broker's alone.
	AllocateProducerIDs(ctx context.Context) (start int64, n int32, err error)
	// AlterPartition asks the controller to change the ISR of partitions
	// this node leads (Kafka's AlterPartitionManager) and returns its
	// answer once this node has applied the change.
	AlterPartition(ctx context.Context, topics []kmsg.AlterPartitionRequestTopic) (*kmsg.AlterPartitionResponse, error)
}

// forwardTimeout bounds a forwarded admin request (Kafka's
// request.timeout.ms for forwarding is 30 s).
const forwardTimeout = 30 * time.Second

// forwardedKeys are the admin APIs a clustered broker forwards.
var forwardedKeys = map[kmsg.Key]bool{
	kmsg.CreateTopics:            true,
	kmsg.DeleteTopics:            true,
	kmsg.CreatePartitions:        true,
	kmsg.AlterConfigs:            true,
	kmsg.IncrementalAlterConfigs: true,
	// 43_elect_leaders.go
	kmsg.ElectLeaders:               true,
	kmsg.AlterPartitionAssignments:  true,
	kmsg.ListPartitionReassignments: true,
	kmsg.DescribeQuorum:             true,
}

// forward answers r, on the admin worker, with the controller's answer.
func (b *Broker) forward(req netpoll.Request, h *proto.RequestHeader, r kmsg.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	r.SetVersion(h.APIVersion)
	resp, err := b.opts.Cluster.Forward(ctx, r)
	if err != nil {
		code := kerr.RequestTimedOut.Code
		var ke *kerr.Error
		if errors.As(err, &ke) {
			code = ke.Code
		}
		b.logForwardErr(h, err)
		b.replyMsg(req, h, busyResponse(r, code, "forwarding to the controller: "+err.Error()))
		return
	}
	resp.SetVersion(h.APIVersion)
	b.replyMsg(req, h, resp)
}

var forwardErrLog ratelog.Every

// logForwardErr logs a failed forward, at most one line a second.
func (b *Broker) logForwardErr(h *proto.RequestHeader, err error) {
	if n, ok := forwardErrLog.Event(time.Second); ok {
		b.log.Warn("forwarding an admin request to the controller failed", zap.String("api", h.APIKey.Name()), zap.Int64("failures_since_last_line", n), zap.Error(err))
	}
}

// image is the cluster's current image (nil when not clustered).
func (b *Broker) image() *metadata.Image {
	if b.opts.Cluster == nil {
		return nil
	}
	return b.opts.Cluster.Image()
}

// controllerForClients is the controller id Metadata and DescribeCluster
// give: the active controller while it is a live broker, else this broker.
// Clients send admin requests there, and any broker forwards them (Kafka's
// KRaft brokers even name a random broker).
func (b *Broker) controllerForClients() int32 {
	id := b.opts.Cluster.ControllerID()
	if id >= 0 && isLive(b.image(), id) {
		return id
	}
	return b.opts.NodeID
}

// brokerEndpoint is broker br's endpoint on this broker's listener.
func (b *Broker) brokerEndpoint(br metadata.Broker) (metadata.Endpoint, bool) {
	for _, e := range br.Endpoints {
		if e.Name == b.listenerName() {
			return e, true
		}
	}
	if len(br.Endpoints) > 0 {
		return br.Endpoints[0], true
	}
	return metadata.Endpoint{}, false
}

// interBrokerEndpoint is broker br's endpoint on the inter-broker
// listener (Options.InterBrokerListener), else brokerEndpoint's. The
// markers client's seeds come from it; kgo then follows the Metadata its
// connections' listener answers, the same listener.
func (b *Broker) interBrokerEndpoint(br metadata.Broker) (metadata.Endpoint, bool) {
	if name := b.opts.InterBrokerListener; name != "" {
		for _, e := range br.Endpoints {
			if strings.EqualFold(e.Name, name) {
				return e, true
			}
		}
	}
	return b.brokerEndpoint(br)
}

// requestEndpoint is broker br's endpoint on the listener req came in
// on, as Kafka answers Metadata, DescribeCluster and FindCoordinator (a
// client on a SASL listener must be sent to the other brokers' SASL
// listeners), else brokerEndpoint's.
func (b *Broker) requestEndpoint(req netpoll.Request, br metadata.Broker) (metadata.Endpoint, bool) {
	if s := sessionOf(req); s != nil && s.listener != nil {
		for _, e := range br.Endpoints {
			if strings.EqualFold(e.Name, s.listener.Name) {
				return e, true
			}
		}
	}
	return b.brokerEndpoint(br)
}

// requestAddress is node's address on req's listener (requestEndpoint),
// or host and port as given when the image does not know it.
func (b *Broker) requestAddress(req netpoll.Request, node int32, host string, port int32) (string, int32) {
	if node < 0 {
		return host, port
	}
	if br, ok := b.image().Broker(node); ok {
		if e, ok := b.requestEndpoint(req, br); ok {
			return e.Host, int32(e.Port)
		}
	}
	return host, port
}

func (b *Broker) listenerName() string {
	if b.opts.ListenerName != "" {
		return b.opts.ListenerName
	}
	return "PLAINTEXT"
}

// isLive reports whether broker id is registered and unfenced in im (the
// brokers Metadata lists).
func isLive(im *metadata.Image, id int32) bool {
	br, ok := im.Broker(id)
	return ok && !br.Fenced
}

// clusterMetadataResponse is metadataResponse for a clustered broker.
func (b *Broker) clusterMetadataResponse(r *kmsg.MetadataRequest, allTopics bool, topicErrs map[string]int16) kmsg.MetadataResponse {
	im := b.image()
	clusterID := b.clusterID
	resp := kmsg.MetadataResponse{Version: r.Version, ClusterID: &clusterID, ControllerID: b.controllerForClients()}
	for _, br := range im.Brokers() {
		if br.Fenced {
			continue
		}
		if e, ok := b.brokerEndpoint(br); ok {
			mb := kmsg.MetadataResponseBroker{NodeID: br.ID, Host: e.Host, Port: int32(e.Port)}
			if br.Rack != "" {
				rack := br.Rack
				mb.Rack = &rack
			}
			resp.Brokers = append(resp.Brokers, mb)
		}
	}
	// Authorized operations: metadataAuthorizedOps (authz.go).
	const topicOps = authorizedOpsNotRequested
	addTopic := func(t *metadata.Topic) {
		name := t.Name
		mt := kmsg.MetadataResponseTopic{Topic: &name, TopicID: t.ID, IsInternal: isInternalTopic(t.Name), AuthorizedOperations: topicOps,
			Partitions: make([]kmsg.MetadataResponseTopicPartition, 0, len(t.Partitions))}
		for i := int32(0); i < int32(len(t.Partitions)); i++ {
			p, ok := t.Partitions[i]
			if !ok {
				continue
			}
			mp := kmsg.MetadataResponseTopicPartition{Partition: i, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: p.Replicas, ISR: p.ISR}
			for _, rep := range p.Replicas {
				if !isLive(im, rep) {
					mp.OfflineReplicas = append(mp.OfflineReplicas, rep)
				}
			}
			if p.Leader < 0 || !isLive(im, p.Leader) {
				mp.ErrorCode = kerr.LeaderNotAvailable.Code
				mp.Leader = -1
			}
			mt.Partitions = append(mt.Partitions, mp)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	if allTopics {
		for _, t := range im.Topics() {
			addTopic(t)
		}
		return resp
	}
	for _, rt := range r.Topics {
		var t *metadata.Topic
		if rt.Topic != nil {
			if code, ok := topicErrs[*rt.Topic]; ok {
				resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{ErrorCode: code, Topic: rt.Topic, AuthorizedOperations: topicOps})
				continue
			}
			t, _ = im.TopicByName(*rt.Topic)
		} else {
			t, _ = im.TopicByID(rt.TopicID)
		}
		if t != nil {
			addTopic(t)
			continue
		}
		resp.Topics = append(resp.Topics, unknownMetadataTopic(rt, topicOps))
	}
	return resp
}

// clusterTopicExists reports whether the image has topic name.
func (b *Broker) clusterTopicExists(name string) bool {
	_, ok := b.image().TopicByName(name)
	return ok
}

// forwardCreate asks the controller to create topics with partitions
// partitions and replication factor rf (-1: default.replication.factor)
// (Metadata's auto-creation, the coordinators' internal topics) and
// returns each topic's error code (0, or TOPIC_ALREADY_EXISTS when someone
// else won; INVALID_REPLICATION_FACTOR while fewer brokers are registered
// than rf, which callers answer as not available yet).
func (b *Broker) forwardCreate(names []string, partitions int32, rf int16, configs map[string]string) map[string]int16 {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	req.TimeoutMillis = int32(forwardTimeout / time.Millisecond)
	for _, n := range names {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = n, partitions, rf
		for k, v := range configs {
			v := v
			t.Configs = append(t.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: &v})
		}
		req.Topics = append(req.Topics, t)
	}
	out := make(map[string]int16, len(names))
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	resp, err := b.opts.Cluster.Forward(ctx, req)
	if err != nil {
		b.log.Warn("auto-creating topics through the controller", zap.Strings("topics", names), zap.Error(err))
		for _, n := range names {
			out[n] = kerr.LeaderNotAvailable.Code
		}
		return out
	}
	cr, ok := resp.(*kmsg.CreateTopicsResponse)
	if !ok {
		for _, n := range names {
			out[n] = kerr.UnknownServerError.Code
		}
		return out
	}
	for _, t := range cr.Topics {
		out[t.Topic] = t.ErrorCode
	}
	return out
}

// OnMetadata makes the broker follow a newly applied image: the registry
// gets every topic the deltas touch (all topics when full: the first image
// after a start), removed topics are deleted, and each local partition's
// leadership and leader epoch follow the image. Called by the cluster
// package on its apply goroutine, in log order.
func (b *Broker) OnMetadata(im *metadata.Image, deltas []metadata.Delta, full bool) {
	b.syncSecurity(im, deltas, full)
	b.syncQuotas(im, deltas, full)     // quota.go
	b.syncDynamicTLS(im, deltas, full) // dynamic_tls_store.go
	b.syncFeatures(im, deltas, full)   // 57_update_features.go
	if b.reg == nil {
		return
	}
	touched := map[metadata.UUID]bool{}
	var removed []metadata.Topic
	for _, d := range deltas {
		for _, id := range d.AddedTopics {
			touched[id] = true
		}
		for _, p := range d.AddedPartitions {
			touched[p.TopicID] = true
		}
		for _, p := range d.ChangedPartitions {
			touched[p.TopicID] = true
		}
		for _, c := range d.ChangedConfigs {
			if c.Type == metadata.ResourceTopic {
				if t, ok := im.TopicByName(c.Name); ok {
					touched[t.ID] = true
				}
			}
		}
		removed = append(removed, d.RemovedTopics...)
	}
	for _, t := range removed {
		if _, again := im.TopicByID(t.ID); again {
			continue
		}
		var parts []*Partition
		if rt := b.reg.Topic(t.Name); rt != nil && rt.ID == t.ID {
			rt.regMu.RLock()
			parts = rt.Partitions
			rt.regMu.RUnlock()
			for _, p := range parts {
				b.repl.forget(p)
			}
		}
		if err := b.dropPartitions(parts, func() error { return b.reg.RemoveTopic(t.Name, t.ID) }); err != nil {
			b.log.Error("deleting a topic the cluster deleted", zap.String("topic", t.Name), zap.Error(err))
		}
	}
	var topics []*metadata.Topic
	if full {
		topics = im.Topics()
		// Topics this node holds that the metadata does not know (deleted
		// while it was away and compacted into a snapshot, or never
		// registered): kept, never deleted on a guess, and not served.
		for _, t := range b.reg.Topics() {
			if mt, ok := im.TopicByName(t.Name); !ok || mt.ID != t.ID {
				b.log.Warn("topic in this node's logs is not in the cluster metadata applied so far: kept, not served (a topic deleted while this node was away stays so)",
					zap.String("topic", t.Name), zap.String("topic_id", fmt.Sprintf("%x", t.ID)))
			}
		}
	} else {
		for id := range touched {
			if t, ok := im.TopicByID(id); ok {
				topics = append(topics, t)
			}
		}
	}
	for _, t := range topics {
		b.syncTopic(im, t, full)
	}
}

// syncTopic applies one topic of the image to the registry and the local
// partitions' leadership.
func (b *Broker) syncTopic(im *metadata.Image, t *metadata.Topic, full bool) {
	n := int32(0)
	for i := range t.Partitions {
		n = max(n, i+1)
	}
	local := make([]bool, n)
	for i, p := range t.Partitions {
		local[i] = slices.Contains(p.Replicas, b.opts.NodeID)
	}
	b.dropLeavingReplicas(t, local, full)
	configs := im.Configs(metadata.ConfigResource{Type: metadata.ResourceTopic, Name: t.Name})
	if err := b.reg.SyncTopic(t.Name, t.ID, local, configs); err != nil {
		b.log.Error("following the cluster metadata", zap.String("topic", t.Name), zap.Error(err))
		return
	}
	rt := b.reg.Topic(t.Name)
	if rt == nil || rt.ID != t.ID {
		return
	}
	rt.regMu.RLock()
	parts := rt.Partitions
	rt.regMu.RUnlock()
	for i, p := range t.Partitions {
		if int(i) >= len(parts) || !parts[i].Local() {
			continue
		}
		lp := parts[i]
		if p.Leader == b.opts.NodeID && lp.notLeader.Load() {
			// Becoming leader: records appended as a follower went
			// around the producer state, so it is read from the log
			// again (produce_state.go) before the first produce.
			b.forgetProducerState([]*Partition{lp})
		} else if p.Leader != b.opts.NodeID && !lp.notLeader.Load() {
			// Becoming follower: the state a follower keeps is replayed
			// from the batches its fetcher appends (fetch_preferred.go),
			// from a load of the log as it is now; a leader's (appends in
			// flight, transactions whose first offset is only a bound)
			// is not that.
			b.forgetProducerState([]*Partition{lp})
		}
		lp.leaderEpoch.Store(p.LeaderEpoch)
		lp.notLeader.Store(p.Leader != b.opts.NodeID)
		lp.Log.SetLeaderEpoch(p.LeaderEpoch)
		b.repl.follow(lp, p) // replication.go: followers, ISR, high watermark
	}
	if isInternalTopic(t.Name) {
		b.followCoordinators(t, parts) // coord_movement.go
	}
}

// dropLeavingReplicas removes the partitions of t this node holds a log of
// but is no longer a replica of (local from the image): deleted when a
// delta took them away, set aside as stray on a full image (the first
// after a start: the move completed while this node was away). The
// replica fetchers stopped following them before (the applier's Retire);
// acks=all waiters and the ISR check drop them, the coordinators unload
// their groups or transactions, then Registry.RemoveReplicas does the
// durable part.
func (b *Broker) dropLeavingReplicas(t *metadata.Topic, local []bool, full bool) {
	rt := b.reg.Topic(t.Name)
	if rt == nil || rt.ID != t.ID {
		return // another topic of that name: SyncTopic reports it
	}
	rt.regMu.RLock()
	parts := rt.Partitions
	rt.regMu.RUnlock()
	var leaving []*Partition
	var indexes []int32
	self := b.opts.NodeID
	for i, p := range parts {
		if !p.Local() || i >= len(local) || local[i] {
			continue
		}
		if mp, ok := t.Partitions[int32(i)]; !ok || slices.Contains(mp.AddingReplicas, self) || slices.Contains(mp.RemovingReplicas, self) {
			continue // (the replicas include both in KRaft; never on a doubt)
		}
		leaving = append(leaving, p)
		indexes = append(indexes, int32(i))
	}
	if len(leaving) == 0 {
		return
	}
	if isInternalTopic(t.Name) {
		// Not among the replicas: their coordinators unload now, before
		// the log goes.
		b.followCoordinators(t, parts)
	}
	for _, p := range leaving {
		b.repl.forget(p)
	}
	err := b.dropPartitions(leaving, func() error { return b.reg.RemoveReplicas(t.Name, t.ID, indexes, full) })
	if err != nil {
		b.log.Error("removing replicas the cluster metadata no longer assigns to this node; kept", zap.String("topic", t.Name), zap.Int32s("partitions", indexes), zap.Error(err))
	}
}

// servedPartition is the partition topic/index when this node leads it, or
// the error code to answer: NOT_LEADER_OR_FOLLOWER for a partition of the
// cluster this node does not lead, UNKNOWN_TOPIC_OR_PARTITION when there is
// no such partition.
func (b *Broker) servedPartition(topic string, index int32) (*Partition, int16) {
	var p *Partition
	if b.reg != nil {
		p = b.reg.Partition(topic, index)
	}
	if b.opts.Cluster == nil {
		if p == nil {
			return nil, kerr.UnknownTopicOrPartition.Code
		}
		return p, 0
	}
	if p != nil && !p.notLeader.Load() {
		return p, 0
	}
	if t, ok := b.image().TopicByName(topic); ok {
		if _, ok := t.Partitions[index]; ok {
			return nil, kerr.NotLeaderForPartition.Code
		}
	}
	return nil, kerr.UnknownTopicOrPartition.Code
}

// checkPartitionEpoch applies Kafka's current_leader_epoch fencing against
// the partition's leader epoch (0 on a single node, which never changes
// leaders; the image's in a cluster): -1 means the client does not know it.
func checkPartitionEpoch(p *Partition, current int32) int16 {
	served := p.leaderEpoch.Load()
	switch {
	case current == -1 || current == served:
		return 0
	case current > served:
		return kerr.UnknownLeaderEpoch.Code
	default:
		return kerr.FencedLeaderEpoch.Code
	}
}

// createThroughController auto-creates topics names through the
// controller (Metadata in a cluster) and returns the error code of each
// that is not served here yet: a failure, or LEADER_NOT_AVAILABLE
// (retriable) while this broker has not applied it.
func (b *Broker) createThroughController(names []string) map[string]int16 {
	errs := map[string]int16{}
	var plain, offsets []string
	for _, n := range names {
		if n == offsetsTopic {
			offsets = append(offsets, n)
		} else {
			plain = append(plain, n)
		}
	}
	if len(plain) > 0 {
		maps.Copy(errs, b.forwardCreate(plain, b.opts.NumPartitions, -1, nil))
	}
	if len(offsets) > 0 {
		maps.Copy(errs, b.forwardCreate(offsets, b.groups.partitions, b.groups.replicationFactor(), b.groups.topicConfig()))
	}
	for n, code := range errs {
		if code == 0 || code == kerr.TopicAlreadyExists.Code {
			delete(errs, n)
			if !b.clusterTopicExists(n) {
				errs[n] = kerr.LeaderNotAvailable.Code
			}
		}
	}
	return errs
}

// currentLeader is a partition's leader as KIP-951 reports it with
// NOT_LEADER_OR_FOLLOWER, so a client retries against the new leader
// without a Metadata round trip.
type currentLeader struct {
	id, epoch int32
}

// currentLeader is topic/partition's leader in the image, nil when it has
// none (offline) or the partition is unknown.
func (b *Broker) currentLeader(topic string, partition int32) *currentLeader {
	t, ok := b.image().TopicByName(topic)
	if !ok {
		return nil
	}
	p, ok := t.Partitions[partition]
	if !ok || p.Leader < 0 || !isLive(b.image(), p.Leader) {
		return nil
	}
	return &currentLeader{id: p.Leader, epoch: p.LeaderEpoch}
}

// appendTag writes a tagged-field section holding the leader as tag tag
// (LeaderId int32, LeaderEpoch int32, its own empty tags): Produce's tag 0,
// Fetch's tag 1.
func (l *currentLeader) appendTag(w *proto.Writer, tag uint32) {
	w.Uvarint(1) // one tagged field
	w.Uvarint(tag)
	w.Uvarint(9) // its size
	w.Int32(l.id)
	w.Int32(l.epoch)
	w.Tags()
}

// appendNodeEndpoints writes a top-level tagged-field section holding the
// endpoints of the brokers ids (KIP-951 node_endpoints, tag 0 of Produce
// v10+ and Fetch v16+ responses), each on the listener req came in on, as
// Metadata answers (Kafka's KafkaApis takes them from the request's
// listener too): a client on a second listener must not be sent to the
// first.
func (b *Broker) appendNodeEndpoints(w *proto.Writer, req netpoll.Request, ids []int32) {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	body := proto.Writer{Flexible: true}
	var n int
	var entries proto.Writer
	entries.Flexible = true
	im := b.image()
	for _, id := range ids {
		br, ok := im.Broker(id)
		if !ok {
			continue
		}
		e, ok := b.requestEndpoint(req, br)
		if !ok {
			continue
		}
		n++
		entries.Int32(id)
		entries.String(e.Host)
		entries.Int32(int32(e.Port))
		entries.NullableString(br.Rack)
		entries.Tags()
	}
	body.ArrayLen(n)
	body.B = append(body.B, entries.B...)
	w.Uvarint(1)
	w.Uvarint(0)
	w.Uvarint(uint32(len(body.B)))
	w.B = append(w.B, body.B...)
}

// clusterPartitionState fills rp's leader, epoch, replicas, ISR, eligible
// leader replicas (KIP-966's ELR and LastKnownELR) and offline replicas
// from the image (DescribeTopicPartitions in a cluster, as Metadata
// answers them). An empty ISR is legal (its last member was fenced into
// the ELR), as in Kafka's answers.
func (b *Broker) clusterPartitionState(topic string, rp *kmsg.DescribeTopicPartitionsResponseTopicPartition) {
	im := b.image()
	t, ok := im.TopicByName(topic)
	if !ok {
		return
	}
	p, ok := t.Partitions[rp.Partition]
	if !ok {
		return
	}
	rp.LeaderID, rp.LeaderEpoch, rp.Replicas, rp.ISR = p.Leader, p.LeaderEpoch, p.Replicas, nonNilIDs(p.ISR)
	rp.EligibleLeaderReplicas, rp.LastKnownELR = nonNilIDs(p.ELR), nonNilIDs(p.LastKnownELR)
	rp.OfflineReplicas = []int32{}
	for _, r := range p.Replicas {
		if !isLive(im, r) {
			rp.OfflineReplicas = append(rp.OfflineReplicas, r)
		}
	}
	if p.Leader < 0 || !isLive(im, p.Leader) {
		rp.LeaderID, rp.ErrorCode = -1, kerr.LeaderNotAvailable.Code
	}
}

// nonNilIDs returns ids, or an empty list for nil: the image keeps empty
// lists as nil, and a nullable field (EligibleLeaderReplicas) would
// encode nil as null where Kafka sends an empty list.
func nonNilIDs(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

// syncSecurity makes the SCRAM credentials and the authorizer's ACLs those
// of the image when a record changed them (or on the first image): in a
// cluster they live in the metadata log, not in the node's local store.
func (b *Broker) syncSecurity(im *metadata.Image, deltas []metadata.Delta, full bool) {
	if b.sec == nil {
		return
	}
	scram, acls := full, full
	for _, d := range deltas {
		scram, acls = scram || d.ChangedScram, acls || d.ChangedACLs
	}
	if scram {
		b.sec.creds.Replace(controller.ScramSet(*im))
	}
	if acls && b.sec.authz != nil {
		recs := im.ACLs()
		bindings := make([]acl.Binding, len(recs))
		for i, r := range recs {
			bindings[i] = controller.ACLBinding(r)
		}
		if err := b.sec.authz.Load(bindings); err != nil {
			b.log.Error("loading the cluster's ACLs failed; the previous set stays", zap.Error(err))
		}
	}
}
