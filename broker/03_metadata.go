package broker

// Metadata (key 3), versions 0-12.
//
// In a cluster (process.roles set) the answer comes from the metadata
// image instead: every unfenced broker with its rack, each partition's
// leader, epoch, replicas, ISR and offline replicas, the active controller;
// auto-creation goes through the controller (cluster.go). What follows is
// the single node.
//
// Behaviour: lists this broker (node.id, advertised listener) as the only
// broker and the controller, the cluster id persisted in the data dir, and
// the topics of the registry: every partition led by this node with leader
// epoch 0, replicas and ISR [node.id], no offline replicas. v0 with an empty
// topic list and v1+ with a null list mean "all topics"; v1+ with an empty
// list means none. Topics are answered in request order; "all topics" in
// name order.
//
// Auto-creation: a named topic that does not exist is created with
// num.partitions partitions when auto.create.topics.enable is on and the
// request allows it (v4+: AllowAutoTopicCreation; v0-v3 always, which
// kafka-python's Metadata v1 producer relies on). "All topics" requests
// never create. Creation opens logs and fsyncs the topic table, so the
// request is answered from the admin worker once creation is done; requests
// that create nothing are answered on the ring thread.
//
// Internal topics (__consumer_offsets) are flagged IsInternal (v1+), as in
// Kafka, so tools that hide internal topics hide it. Auto-creating
// __consumer_offsets gives it offsets.topic.num.partitions partitions and
// cleanup.policy=compact, as the group coordinator creates it; the other
// internal names (__transaction_state, __share_group_state) are never
// auto-created.
//
// Differences from Apache Kafka:
//   - A topic created by this request is returned at once with its
//     partitions and NONE, not LEADER_NOT_AVAILABLE: Kafka answers LNA
//     because its controller creates the topic asynchronously; here the
//     logs are open and the table is durable before we answer, so LNA would
//     only cost every client a metadata retry (kafka-python waits
//     retry_backoff_ms, librdkafka its topic metadata refresh backoff) for
//     nothing. Both clients accept NONE with partitions on the first reply.
//     LNA is still returned when the admin queue is full (retriable).
//   - An invalid topic name is answered INVALID_TOPIC_EXCEPTION whether or
//     not auto-creation applies (Kafka answers UNKNOWN_TOPIC_OR_PARTITION
//     when it would not auto-create): a client then fails fast instead of
//     retrying a name that can never exist.
//   - v10-v11 requests naming a topic only by id are resolved by id (Kafka
//     rejects ids before v12); an unknown id gets UNKNOWN_TOPIC_ID.
//
// Authorization (authz.go, with the authorizer on), as KafkaApis: a topic
// the principal may not DESCRIBE is left out of an all-topics answer and
// answered TOPIC_AUTHORIZATION_FAILED when named; auto-creation needs
// CREATE on the cluster or the topic, else TOPIC_AUTHORIZATION_FAILED.
// The single node's broker entry is the advertised address of the
// listener the request came in on. Authorized operations (v8+, when asked;
// the cluster's in v8-v10 only) are computed from the ACLs as Kafka does
// (authz.go), -2147483648 when not asked.

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.Metadata, 0, 12, aliasing, (*Broker).serveMetadata))
}

func (b *Broker) serveMetadata(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.MetadataRequest) {
	h := &hdr
	allTopics := r.Topics == nil || (h.APIVersion == 0 && len(r.Topics) == 0)
	// A single node answers from its registry and creates topics itself; a
	// clustered one answers from the metadata image and has the controller
	// create them (cluster.go).
	respond, exists, create := b.metadataResponse, b.registryHasTopic, b.createLocally
	if b.opts.Cluster != nil {
		respond, exists, create = b.clusterMetadataResponse, b.clusterTopicExists, b.createThroughController
	}
	mayCreate := b.reg != nil && b.opts.AutoCreateTopics && !allTopics && (h.APIVersion < 4 || r.AllowAutoTopicCreation)
	var names []string
	if mayCreate {
		for _, t := range r.Topics {
			// Of the internal topics only __consumer_offsets is created, and
			// with the group coordinator's settings (as Kafka does).
			if t.Topic != nil && ValidateTopicName(*t.Topic) == nil && !exists(*t.Topic) &&
				(!isInternalTopic(*t.Topic) || *t.Topic == offsetsTopic) && b.mayAutoCreate(req, *t.Topic) {
				names = append(names, strings.Clone(*t.Topic))
			}
		}
	}
	if len(names) == 0 {
		resp := respond(r, allTopics, nil)
		b.metadataSecure(req, r, &resp, allTopics, mayCreate)
		b.replyMsg(req, h, &resp)
		return
	}
	// Off the ring thread: the frame is recycled when we return, so keep
	// copies of what the response needs.
	rc := kmsg.MetadataRequest{Version: r.Version, AllowAutoTopicCreation: r.AllowAutoTopicCreation,
		IncludeClusterAuthorizedOperations: r.IncludeClusterAuthorizedOperations,
		IncludeTopicAuthorizedOperations:   r.IncludeTopicAuthorizedOperations,
		Topics:                             make([]kmsg.MetadataRequestTopic, len(r.Topics))}
	for i, t := range r.Topics {
		rc.Topics[i].TopicID = t.TopicID
		if t.Topic != nil {
			s := strings.Clone(*t.Topic)
			rc.Topics[i].Topic = &s
		}
	}
	hc := *h
	hc.ClientID = nil
	job := func() {
		resp := respond(&rc, false, create(names))
		b.metadataSecure(req, &rc, &resp, false, mayCreate)
		b.replyMsg(req, &hc, &resp)
	}
	if !b.admin.submit(job) {
		busy := make(map[string]int16, len(names))
		for _, name := range names {
			busy[name] = kerr.LeaderNotAvailable.Code
		}
		resp := respond(r, false, busy)
		b.metadataSecure(req, r, &resp, false, mayCreate)
		b.replyMsg(req, h, &resp)
	}
}

func (b *Broker) registryHasTopic(name string) bool { return b.reg.Topic(name) != nil }

// createLocally auto-creates topics names in the registry (a single node)
// and returns the error code of each that failed.
func (b *Broker) createLocally(names []string) map[string]int16 {
	createErrs := make(map[string]int16, len(names))
	for _, name := range names {
		var err error
		if name == offsetsTopic {
			_, err = b.groups.persist.create()
		} else {
			_, err = b.reg.CreateTopic(name, b.opts.NumPartitions, nil, false)
		}
		if code, _ := kafkaError(err); code != 0 && code != kerr.TopicAlreadyExists.Code {
			createErrs[name] = code
		}
	}
	return createErrs
}

// metadataResponse builds the response for r. topicErrs overrides the
// answer for named topics (a failed or deferred auto-creation).
func (b *Broker) metadataResponse(r *kmsg.MetadataRequest, allTopics bool, topicErrs map[string]int16) kmsg.MetadataResponse {
	clusterID := b.clusterID
	resp := kmsg.MetadataResponse{
		Version:      r.Version,
		Brokers:      []kmsg.MetadataResponseBroker{{NodeID: b.opts.NodeID, Host: b.opts.AdvertisedHost, Port: b.opts.AdvertisedPort, Rack: b.rackPtr()}},
		ClusterID:    &clusterID,
		ControllerID: b.opts.NodeID,
	}
	// Authorized operations: metadataAuthorizedOps (authz.go), after
	// authorization.
	const topicOps = authorizedOpsNotRequested
	// One replica list shared by every partition: the encoder only reads it.
	replicas := []int32{b.opts.NodeID}
	addTopic := func(v topicView) {
		t := kmsg.MetadataResponseTopic{Topic: &v.t.Name, TopicID: v.t.ID, IsInternal: isInternalTopic(v.t.Name), AuthorizedOperations: topicOps,
			Partitions: make([]kmsg.MetadataResponseTopicPartition, len(v.partitions))}
		for i := range v.partitions {
			t.Partitions[i] = kmsg.MetadataResponseTopicPartition{
				Partition: int32(i), Leader: b.opts.NodeID, LeaderEpoch: 0,
				Replicas: replicas, ISR: replicas, // OfflineReplicas: none
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	if allTopics {
		views := allTopicViews(b.reg)
		resp.Topics = make([]kmsg.MetadataResponseTopic, 0, len(views))
		for _, v := range views {
			addTopic(v)
		}
		return resp
	}
	names := make([]string, len(r.Topics))
	ids := make([][16]byte, len(r.Topics))
	for i, t := range r.Topics {
		if t.Topic != nil {
			names[i] = *t.Topic
		}
		ids[i] = t.TopicID
	}
	views := lookupTopics(b.reg, names, ids)
	resp.Topics = make([]kmsg.MetadataResponseTopic, 0, len(r.Topics))
	for i, t := range r.Topics {
		if code, ok := topicErrs[names[i]]; ok && t.Topic != nil {
			resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{ErrorCode: code, Topic: t.Topic, AuthorizedOperations: topicOps})
			continue
		}
		if views[i].t != nil {
			addTopic(views[i])
			continue
		}
		resp.Topics = append(resp.Topics, unknownMetadataTopic(t, topicOps))
	}
	return resp
}

// unknownMetadataTopic is Metadata's answer for a topic that does not exist:
// UNKNOWN_TOPIC_ID for one asked by id, INVALID_TOPIC_EXCEPTION for a name
// that cannot exist, UNKNOWN_TOPIC_OR_PARTITION otherwise.
func unknownMetadataTopic(t kmsg.MetadataRequestTopic, topicOps int32) kmsg.MetadataResponseTopic {
	e := kmsg.MetadataResponseTopic{ErrorCode: kerr.UnknownTopicOrPartition.Code, Topic: t.Topic, TopicID: t.TopicID, AuthorizedOperations: topicOps}
	switch {
	case t.Topic == nil:
		e.ErrorCode = kerr.UnknownTopicID.Code
	case ValidateTopicName(*t.Topic) != nil:
		e.ErrorCode = kerr.InvalidTopicException.Code
	}
	return e
}
