package broker

// Authorization helpers for the handlers (issue 19): each handler asks
// b.authorize with the request, as KafkaApis asks its authHelper. With the
// authorizer off (authorizer.class.name empty) every answer is yes and
// costs one nil check.
//
// Hot path: Authorize reads an immutable snapshot through an atomic
// pointer and allocates nothing; the session's principal and host are
// computed once per connection, so no per-request cache is needed.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

// authzOn reports whether the authorizer is on.
func (b *Broker) authzOn() bool { return b.sec != nil && b.sec.authz != nil }

// principalOf is the principal and client host of req's connection.
func principalOf(req netpoll.Request) (acl.Principal, string) {
	if s := sessionOf(req); s != nil {
		return s.principal, s.host
	}
	return anonymous, ""
}

// authorize reports whether req's principal may perform op on the
// resource.
func (b *Broker) authorize(req netpoll.Request, op acl.Operation, rt acl.ResourceType, name string) bool {
	if b.sec == nil || b.sec.authz == nil {
		return true
	}
	p, host := principalOf(req)
	return b.sec.authz.Authorize(p, host, op, rt, name)
}

// authorizeCluster is authorize on the cluster resource.
func (b *Broker) authorizeCluster(req netpoll.Request, op acl.Operation) bool {
	return b.authorize(req, op, acl.ResourceCluster, acl.ClusterName)
}

// authorizeIdempotentWrite is InitProducerId's rule without a
// transactional id (KIP-679): IDEMPOTENT_WRITE on the cluster or WRITE on
// some topic; refusal is CLUSTER_AUTHORIZATION_FAILED.
func (b *Broker) authorizeIdempotentWrite(req netpoll.Request) bool {
	if !b.authzOn() {
		return true
	}
	p, host := principalOf(req)
	return b.sec.authz.AuthorizeIdempotentWrite(p, host)
}

// mayAutoCreate: Metadata's auto-creation of topic needs DESCRIBE and
// CREATE (on the cluster or the topic).
func (b *Broker) mayAutoCreate(req netpoll.Request, topic string) bool {
	if !b.authzOn() {
		return true
	}
	return b.authorize(req, acl.OpDescribe, acl.ResourceTopic, topic) &&
		(b.authorizeCluster(req, acl.OpCreate) || b.authorize(req, acl.OpCreate, acl.ResourceTopic, topic))
}

// metadataSecure finishes a Metadata answer for req's connection: the
// brokers' addresses on the request's listener, and, with the
// authorizer on, the topics the principal may not DESCRIBE left out of an
// all-topics answer or answered TOPIC_AUTHORIZATION_FAILED when named;
// a named topic that does not exist and that the principal may not
// create is TOPIC_AUTHORIZATION_FAILED too (KafkaApis.handleTopicMetadataRequest).
// Then the authorized operations r asks for (metadataAuthorizedOps).
func (b *Broker) metadataSecure(req netpoll.Request, r *kmsg.MetadataRequest, resp *kmsg.MetadataResponse, allTopics, mayCreate bool) {
	if b.opts.Cluster == nil && len(resp.Brokers) == 1 {
		resp.Brokers[0].Host, resp.Brokers[0].Port = b.advertised(req)
	}
	if b.opts.Cluster != nil {
		for i := range resp.Brokers {
			br := &resp.Brokers[i]
			br.Host, br.Port = b.requestAddress(req, br.NodeID, br.Host, br.Port) // cluster.go
		}
	}
	if b.authzOn() {
		kept := resp.Topics[:0]
		for _, t := range resp.Topics {
			if t.Topic == nil {
				kept = append(kept, t)
				continue
			}
			name := *t.Topic
			ok := b.authorize(req, acl.OpDescribe, acl.ResourceTopic, name)
			if allTopics {
				if ok {
					kept = append(kept, t)
				}
				continue
			}
			if !ok || (t.ErrorCode == kerr.UnknownTopicOrPartition.Code && mayCreate && !b.mayAutoCreate(req, name)) {
				t = kmsg.MetadataResponseTopic{Topic: t.Topic, ErrorCode: kerr.TopicAuthorizationFailed.Code,
					IsInternal: t.IsInternal, Partitions: []kmsg.MetadataResponseTopicPartition{}}
			}
			kept = append(kept, t)
		}
		resp.Topics = kept
	}
	b.metadataAuthorizedOps(req, r, resp)
}

// metadataAuthorizedOps fills Metadata's authorized operations as
// KafkaApis does: the cluster's (v8-v10, when asked) is 0 without DESCRIBE
// on the cluster; a topic's (v8+, when asked) is computed for every topic
// answered by name except those refused TOPIC_AUTHORIZATION_FAILED; all
// others keep the "not requested" sentinel.
func (b *Broker) metadataAuthorizedOps(req netpoll.Request, r *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) {
	resp.AuthorizedOperations = authorizedOpsNotRequested
	if r.Version >= 8 && r.Version <= 10 && r.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = b.clusterAuthorizedOperations(req)
	}
	topicOps := r.Version >= 8 && r.IncludeTopicAuthorizedOperations
	for i := range resp.Topics {
		t := &resp.Topics[i]
		t.AuthorizedOperations = authorizedOpsNotRequested
		if topicOps && t.Topic != nil && t.ErrorCode != kerr.TopicAuthorizationFailed.Code {
			t.AuthorizedOperations = b.authorizedOperations(req, acl.ResourceTopic, *t.Topic)
		}
	}
}

// groupAuthzOps are the single-group APIs Kafka refuses as a whole when
// the principal may not perform the operation on the group: the answer is
// GROUP_AUTHORIZATION_FAILED everywhere (top level, every partition).
var groupAuthzOps = map[kmsg.Key]acl.Operation{
	kmsg.OffsetCommit: acl.OpRead, kmsg.JoinGroup: acl.OpRead, kmsg.SyncGroup: acl.OpRead,
	kmsg.Heartbeat: acl.OpRead, kmsg.LeaveGroup: acl.OpRead, kmsg.OffsetDelete: acl.OpDelete,
}

// refuseGroupUnauthorized answers r GROUP_AUTHORIZATION_FAILED when the
// principal may not perform op on its group, and reports whether it did.
func (b *Broker) refuseGroupUnauthorized(req netpoll.Request, h *proto.RequestHeader, r kmsg.Request, op acl.Operation) bool {
	for _, g := range groupsOf(r) {
		if !b.authorize(req, op, acl.ResourceGroup, g) {
			b.replyMsg(req, h, groupErrorResponse(r, kerr.GroupAuthorizationFailed.Code, "Not authorized to access group: "+g))
			return true
		}
	}
	return false
}

// mayCreateTopic: CreateTopics needs CREATE on the cluster or the topic.
func (b *Broker) mayCreateTopic(req netpoll.Request, topic string) bool {
	return b.authorizeCluster(req, acl.OpCreate) || b.authorize(req, acl.OpCreate, acl.ResourceTopic, topic)
}

// configAuthz is the authorization of a config resource in
// DescribeConfigs (op DESCRIBE_CONFIGS) and AlterConfigs /
// IncrementalAlterConfigs (ALTER_CONFIGS): a TOPIC resource on the topic
// (TOPIC_AUTHORIZATION_FAILED), a BROKER or BROKER_LOGGER resource on the
// cluster (CLUSTER_AUTHORIZATION_FAILED), as KafkaApis; 0 when allowed.
func (b *Broker) configAuthz(req netpoll.Request, typ kmsg.ConfigResourceType, name string, op acl.Operation) int16 {
	if !b.authzOn() {
		return 0
	}
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if !b.authorize(req, op, acl.ResourceTopic, name) {
			return kerr.TopicAuthorizationFailed.Code
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !b.authorizeCluster(req, op) {
			return kerr.ClusterAuthorizationFailed.Code
		}
	}
	return 0
}

// clusterAuthzOps are the APIs Kafka refuses as a whole without an
// operation on the cluster: CLUSTER_AUTHORIZATION_FAILED at the top level
// and on every entry. DescribeCluster is not one of them: Kafka answers it
// to anyone, with cluster authorized operations 0 without DESCRIBE.
var clusterAuthzOps = map[kmsg.Key]acl.Operation{
	kmsg.DescribeLogDirs: acl.OpDescribe, kmsg.ElectLeaders: acl.OpAlter,
	kmsg.AlterPartitionAssignments: acl.OpAlter, kmsg.ListPartitionReassignments: acl.OpDescribe,
	kmsg.DescribeQuorum: acl.OpDescribe,
}

// Authorized operations (KIP-430): Metadata v8+, DescribeGroups v3+,
// DescribeCluster and DescribeTopicPartitions report, on request, the bit
// set of the operations the principal may perform on a resource, computed
// as Kafka's AuthHelper.authorizedOperations: each operation Kafka supports
// for the resource type (AclEntry.supportedOperations) is asked of the
// authorizer on the resource's literal name, implications included (READ
// grants DESCRIBE, ...); bit n is the operation with AclOperation code n.
// With no authorizer every supported operation is reported.
var (
	topicSupportedOps = []acl.Operation{acl.OpRead, acl.OpWrite, acl.OpCreate, acl.OpDescribe, acl.OpDelete,
		acl.OpAlter, acl.OpDescribeConfigs, acl.OpAlterConfigs}
	groupSupportedOps   = []acl.Operation{acl.OpRead, acl.OpDescribe, acl.OpDelete, acl.OpDescribeConfigs, acl.OpAlterConfigs}
	clusterSupportedOps = []acl.Operation{acl.OpCreate, acl.OpClusterAction, acl.OpDescribeConfigs, acl.OpAlterConfigs,
		acl.OpIdempotentWrite, acl.OpAlter, acl.OpDescribe}
)

// authorizedOpsNotRequested is Kafka's INT32_MIN sentinel for "authorized
// operations not requested" (the schema's default).
const authorizedOpsNotRequested = -2147483648

// supportedOps is AclEntry.supportedOperations for the resource types that
// answer authorized operations.
func supportedOps(rt acl.ResourceType) []acl.Operation {
	switch rt {
	case acl.ResourceTopic:
		return topicSupportedOps
	case acl.ResourceGroup:
		return groupSupportedOps
	case acl.ResourceCluster:
		return clusterSupportedOps
	}
	return nil
}

// opsBitField is Utils.to32BitField over ops: bit n set for code n.
func opsBitField(ops []acl.Operation) int32 {
	var field int32
	for _, op := range ops {
		field |= 1 << op
	}
	return field
}

// authorizedOperations is the bit set of the operations of its type that
// req's principal may perform on resource (rt, name).
func (b *Broker) authorizedOperations(req netpoll.Request, rt acl.ResourceType, name string) int32 {
	ops := supportedOps(rt)
	if !b.authzOn() {
		return opsBitField(ops)
	}
	p, host := principalOf(req)
	var field int32
	for _, op := range ops {
		if b.sec.authz.Authorize(p, host, op, rt, name) {
			field |= 1 << op
		}
	}
	return field
}

// clusterAuthorizedOperations is the cluster's authorized operations as
// Metadata (v8-v10) and DescribeCluster answer them: 0 without DESCRIBE on
// the cluster, else the operations allowed.
func (b *Broker) clusterAuthorizedOperations(req netpoll.Request) int32 {
	if !b.authorizeCluster(req, acl.OpDescribe) {
		return 0
	}
	return b.authorizedOperations(req, acl.ResourceCluster, acl.ClusterName)
}
