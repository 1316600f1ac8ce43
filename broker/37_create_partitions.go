package broker

// CreatePartitions (key 37), versions 0-3.
//
// Behaviour: grows each topic to count partitions on the admin worker (new
// logs opened, topic table fsync'd), off the ring thread. Unknown topic:
// UNKNOWN_TOPIC_OR_PARTITION; count not above the current count, or above
// our per-topic bound: INVALID_PARTITIONS; an assignment whose length is
// not count minus the current count, or whose replica lists are not
// [node.id]: INVALID_REPLICA_ASSIGNMENT; a topic named twice in one
// request: INVALID_REQUEST. validate_only runs every check and changes
// nothing. Internal topics are grown like any other, as in Kafka; partitions
// added to __consumer_offsets stay unused (a group's partition is computed
// from offsets.topic.num.partitions) and are read back at start like the
// others.
//
// Differences from Apache Kafka: the timeout is ignored (the partitions
// exist when we answer); a full admin queue answers REQUEST_TIMED_OUT.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(adminDecoded(kmsg.CreatePartitions, 0, 3, (*Broker).createPartitions))
}

// createPartitions runs on the admin worker (adminDecoded).
func (b *Broker) createPartitions(req netpoll.Request, h *proto.RequestHeader, r *kmsg.CreatePartitionsRequest) {
	resp := kmsg.CreatePartitionsResponse{Version: h.APIVersion}
	count := map[string]int{}
	for _, t := range r.Topics {
		count[t.Topic]++
	}
	answered := map[string]bool{}
	for i := range r.Topics {
		t := &r.Topics[i]
		out := kmsg.CreatePartitionsResponseTopic{Topic: t.Topic}
		fail := func(code int16, format string, args ...any) {
			out.ErrorCode, out.ErrorMessage = code, errMsg(fmt.Sprintf(format, args...))
		}
		if !b.authorize(req, acl.OpAlter, acl.ResourceTopic, t.Topic) { // authz.go
			fail(kerr.TopicAuthorizationFailed.Code, "Authorization failed.")
			resp.Topics = append(resp.Topics, out)
			continue
		}
		if count[t.Topic] > 1 {
			if answered[t.Topic] {
				continue
			}
			answered[t.Topic] = true
			fail(kerr.InvalidRequest.Code, "duplicate topic %s in the request", t.Topic)
			resp.Topics = append(resp.Topics, out)
			continue
		}
		var cur topicView
		if b.reg != nil {
			cur = lookupTopics(b.reg, []string{t.Topic}, nil)[0]
		}
		switch {
		case b.reg == nil:
			fail(kerr.UnknownServerError.Code, "%v", errNoRegistry)
		case cur.t == nil:
			fail(kerr.UnknownTopicOrPartition.Code, "topic %s does not exist", t.Topic)
		case t.Assignment != nil && int(t.Count)-len(cur.partitions) > 0 && len(t.Assignment) != int(t.Count)-len(cur.partitions):
			fail(kerr.InvalidReplicaAssignment.Code, "increasing the number of partitions by %d but %d assignments provided", int(t.Count)-len(cur.partitions), len(t.Assignment))
		default:
			for _, a := range t.Assignment {
				if len(a.Replicas) != 1 || a.Replicas[0] != b.opts.NodeID {
					fail(kerr.InvalidReplicaAssignment.Code, "replicas %v; the only broker is %d", a.Replicas, b.opts.NodeID)
					break
				}
			}
			if out.ErrorCode == 0 {
				if err := b.reg.CreatePartitions(t.Topic, t.Count, r.ValidateOnly); err != nil {
					out.ErrorCode, out.ErrorMessage = kafkaError(err)
				}
			}
		}
		resp.Topics = append(resp.Topics, out)
	}
	b.replyMsg(req, h, &resp)
}
