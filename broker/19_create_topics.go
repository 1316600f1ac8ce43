package broker

// CreateTopics (key 19), versions 0-7.
//
// Behaviour: each topic is validated as Kafka's controller does, then
// created in the registry (logs opened, topic table fsync'd) on the admin
// worker, off the ring thread; the response is sent when every topic is
// done. Per topic:
//   - a name outside Kafka's rules: INVALID_TOPIC_EXCEPTION; a name given
//     twice in one request: INVALID_REQUEST; an existing topic:
//     TOPIC_ALREADY_EXISTS;
//   - num_partitions -1 (v4+, and any version here) = num.partitions;
//     0 or below -1: INVALID_PARTITIONS;
//   - replication_factor -1 or 1: fine (one broker); 0 or below -1:
//     INVALID_REPLICATION_FACTOR; above 1: INVALID_REPLICATION_FACTOR
//     ("only 1 broker");
//   - a manual replica assignment is honoured when it could be satisfied by
//     one broker: num_partitions and replication_factor must both be -1
//     (else INVALID_REQUEST), partitions 0..n-1 each exactly once, each
//     with the replica list [node.id] (else INVALID_REPLICA_ASSIGNMENT);
//   - configs: unknown keys, bad values and null values: INVALID_CONFIG;
//   - validate_only (v1+): all checks, nothing created.
//
// v5+ responses carry the topic's configs (as DescribeConfigs would
// describe them), partition count and replication factor; v7+ the topic id
// (zero for validate_only, as in Kafka).
//
// Differences from Apache Kafka:
//   - internal topic names (__consumer_offsets, __transaction_state,
//     __share_group_state) are refused with INVALID_REQUEST
//     (TOPIC_ALREADY_EXISTS once __consumer_offsets exists), as Kafka
//     refuses __cluster_metadata; Kafka creates them as asked. The group
//     coordinator creates __consumer_offsets with its own partition count,
//     which every group's partition is computed from.
//   - the timeout is ignored (creation finishes before we answer, so there
//     is never a REQUEST_TIMED_OUT for a slow controller); no
//     create.topic.policy (POLICY_VIOLATION never occurs); a full admin
//     queue answers REQUEST_TIMED_OUT.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(adminDecoded(kmsg.CreateTopics, 0, 7, (*Broker).createTopics))
}

// createTopicError is a failed topic's response entry.
func createTopicError(topic string, code int16, msg *string) kmsg.CreateTopicsResponseTopic {
	t := kmsg.NewCreateTopicsResponseTopic() // NumPartitions, ReplicationFactor = -1
	t.Topic, t.ErrorCode, t.ErrorMessage = topic, code, msg
	return t
}

// createTopics runs on the admin worker (adminDecoded).
func (b *Broker) createTopics(req netpoll.Request, h *proto.RequestHeader, r *kmsg.CreateTopicsRequest) {
	resp := kmsg.CreateTopicsResponse{Version: h.APIVersion}
	count := map[string]int{}
	for _, t := range r.Topics {
		count[t.Topic]++
	}
	answered := map[string]bool{}
	for i := range r.Topics {
		t := &r.Topics[i]
		if count[t.Topic] > 1 {
			if !answered[t.Topic] {
				answered[t.Topic] = true
				resp.Topics = append(resp.Topics, createTopicError(t.Topic, kerr.InvalidRequest.Code, errMsg("duplicate topic name "+t.Topic+" in the request")))
			}
			continue
		}
		if !b.mayCreateTopic(req, t.Topic) { // authz.go
			resp.Topics = append(resp.Topics, createTopicError(t.Topic, kerr.TopicAuthorizationFailed.Code, errMsg("Authorization failed.")))
			continue
		}
		resp.Topics = append(resp.Topics, b.createTopic(t, r.ValidateOnly, h.APIVersion))
	}
	b.replyMsg(req, h, &resp)
}

// createTopic validates and creates one topic.
func (b *Broker) createTopic(t *kmsg.CreateTopicsRequestTopic, validateOnly bool, version int16) kmsg.CreateTopicsResponseTopic {
	fail := func(code int16, format string, args ...any) kmsg.CreateTopicsResponseTopic {
		return createTopicError(t.Topic, code, errMsg(fmt.Sprintf(format, args...)))
	}
	if b.reg == nil {
		return fail(kerr.UnknownServerError.Code, "%v", errNoRegistry)
	}
	if err := ValidateTopicName(t.Topic); err != nil {
		code, msg := kafkaError(err)
		return createTopicError(t.Topic, code, msg)
	}
	if isInternalTopic(t.Topic) {
		if b.reg.Topic(t.Topic) != nil {
			return fail(kerr.TopicAlreadyExists.Code, "topic %s already exists", t.Topic)
		}
		// Groups map to offsets.topic.num.partitions partitions: a client's
		// partition count would leave some mapped to none.
		return fail(kerr.InvalidRequest.Code, "creation of internal topic %s is prohibited: the broker creates it", t.Topic)
	}
	partitions := t.NumPartitions
	if len(t.ReplicaAssignment) > 0 {
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return fail(kerr.InvalidRequest.Code, "both numPartitions or replicationFactor and replicasAssignments were set; both cannot be used at the same time")
		}
		seen := make([]bool, len(t.ReplicaAssignment))
		for _, a := range t.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(seen) || seen[a.Partition] {
				return fail(kerr.InvalidReplicaAssignment.Code, "partitions should be a consecutive 0-based integer sequence, got partition %d", a.Partition)
			}
			seen[a.Partition] = true
			if len(a.Replicas) != 1 || a.Replicas[0] != b.opts.NodeID {
				return fail(kerr.InvalidReplicaAssignment.Code, "partition %d: replicas %v; the only broker is %d", a.Partition, a.Replicas, b.opts.NodeID)
			}
		}
		partitions = int32(len(t.ReplicaAssignment))
	} else {
		switch {
		case partitions == -1:
			partitions = b.opts.NumPartitions
		case partitions <= 0:
			return fail(kerr.InvalidPartitions.Code, "number of partitions was set to an invalid non-positive value (%d)", partitions)
		}
		switch {
		case t.ReplicationFactor == -1 || t.ReplicationFactor == 1:
		case t.ReplicationFactor <= 0:
			return fail(kerr.InvalidReplicationFactor.Code, "replication factor must be larger than 0, or -1 to use the default value")
		default:
			return fail(kerr.InvalidReplicationFactor.Code, "unable to replicate the partition %d time(s): the target replication factor of %d cannot be reached because only 1 broker(s) are registered", t.ReplicationFactor, t.ReplicationFactor)
		}
	}
	configs := make(map[string]string, len(t.Configs))
	for _, c := range t.Configs {
		if c.Value == nil {
			return fail(kerr.InvalidConfig.Code, "null value not supported for topic config %s", c.Name)
		}
		configs[c.Name] = *c.Value
	}
	created, err := b.reg.CreateTopic(t.Topic, partitions, configs, validateOnly)
	if err != nil {
		code, msg := kafkaError(err)
		return createTopicError(t.Topic, code, msg)
	}
	out := kmsg.NewCreateTopicsResponseTopic()
	out.Topic = t.Topic
	out.NumPartitions, out.ReplicationFactor = partitions, 1
	if created != nil {
		out.TopicID = created.ID
	}
	if version >= 5 {
		for _, e := range b.reg.cfg.DescribeTopic(configs) {
			out.Configs = append(out.Configs, kmsg.CreateTopicsResponseTopicConfig{
				Name: e.Name, Value: e.Value, ReadOnly: e.ReadOnly, Source: int8(e.Source),
			})
		}
	}
	return out
}
