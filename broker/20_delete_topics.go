package broker

// DeleteTopics (key 20), versions 0-6.
//
// Behaviour: v0-v5 name topics; v6 names each topic by name or by topic id
// (exactly one of them, else INVALID_REQUEST). The registry persists the
// deletion first and then removes the partition dirs (a crash in between
// leaves orphans that the next start removes), on the admin worker, off the
// ring thread. Unknown names: UNKNOWN_TOPIC_OR_PARTITION (also for names
// that are not valid topic names, as Kafka answers); unknown ids:
// UNKNOWN_TOPIC_ID; a topic named twice in one request: INVALID_REQUEST.
// v6 responses carry both the name and the id of each deleted topic.
// Internal topics (__consumer_offsets) are refused with
// INVALID_TOPIC_EXCEPTION. Deleting a topic also drops its partitions'
// idempotent producer state (produce_state.go): no snapshot of it is
// written afterwards, at shutdown or into a topic re-created under the same
// name.
//
// Differences from Apache Kafka: internal topics cannot be deleted (Kafka's
// controller deletes __consumer_offsets, and with it every committed
// offset); the timeout is ignored (the deletion is complete, data removed,
// when we answer; Kafka answers once the controller committed it and
// deletes files later); delete.topic.enable does not exist (any other topic
// may be deleted); a full admin queue answers REQUEST_TIMED_OUT.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.DeleteTopics, 0, 6, copying, (*Broker).serveDeleteTopics))
}

func (b *Broker) serveDeleteTopics(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.DeleteTopicsRequest) {
	h := hdr
	h.ClientID = nil
	if b.opts.Cluster != nil {
		// The controller deletes (cluster.go); the request goes as sent.
		b.submitAdmin(req, &h, r, func() { b.forward(req, &h, r) })
		return
	}
	if h.APIVersion < 6 { // one shape for both: v6's list
		r.Topics = r.Topics[:0]
		for i := range r.TopicNames {
			r.Topics = append(r.Topics, kmsg.DeleteTopicsRequestTopic{Topic: &r.TopicNames[i]})
		}
	}
	b.submitAdmin(req, &h, r, func() { b.deleteTopics(req, &h, r) })
}

// deleteTopics runs on the admin worker.
func (b *Broker) deleteTopics(req netpoll.Request, h *proto.RequestHeader, r *kmsg.DeleteTopicsRequest) {
	resp := kmsg.DeleteTopicsResponse{Version: h.APIVersion}
	// Resolve every entry to a topic name first, to find duplicates.
	type entry struct {
		out  kmsg.DeleteTopicsResponseTopic
		name string // "" once answered with an error
	}
	entries := make([]entry, len(r.Topics))
	count := map[string]int{}
	var zero [16]byte
	for i, t := range r.Topics {
		e := &entries[i]
		e.out = kmsg.DeleteTopicsResponseTopic{Topic: t.Topic, TopicID: t.TopicID}
		fail := func(code int16, format string, args ...any) {
			e.out.ErrorCode, e.out.ErrorMessage = code, errMsg(fmt.Sprintf(format, args...))
		}
		switch {
		case b.reg == nil:
			fail(kerr.UnknownServerError.Code, "%v", errNoRegistry)
		case t.Topic != nil && t.TopicID != zero:
			fail(kerr.InvalidRequest.Code, "topic named by both name and id")
		case t.Topic != nil && !b.authorize(req, acl.OpDelete, acl.ResourceTopic, *t.Topic): // authz.go
			fail(kerr.TopicAuthorizationFailed.Code, "Authorization failed.")
		case t.Topic != nil:
			e.name = *t.Topic
			if tp := b.reg.Topic(e.name); tp == nil {
				fail(kerr.UnknownTopicOrPartition.Code, "topic %s does not exist", e.name)
				e.name = ""
			} else {
				e.out.TopicID = tp.ID
			}
		case t.TopicID != zero:
			if tp := b.reg.TopicByID(t.TopicID); tp == nil {
				fail(kerr.UnknownTopicID.Code, "topic id %x does not exist", t.TopicID)
			} else if !b.authorize(req, acl.OpDelete, acl.ResourceTopic, tp.Name) {
				// Kafka hides the name from who may not DESCRIBE it;
				// we hide it from who may not DELETE it.
				fail(kerr.TopicAuthorizationFailed.Code, "Authorization failed.")
			} else {
				e.name = tp.Name
				name := tp.Name
				e.out.Topic = &name
			}
		default:
			fail(kerr.InvalidRequest.Code, "topic named by neither name nor id")
		}
		if e.name != "" && isInternalTopic(e.name) {
			// Deleting __consumer_offsets would drop every committed offset
			// at the next start.
			fail(kerr.InvalidTopicException.Code, "topic %s is internal and cannot be deleted", e.name)
			e.name = ""
		}
		if e.name != "" {
			count[e.name]++
		}
	}
	for i := range entries {
		e := &entries[i]
		if e.name != "" {
			if count[e.name] > 1 {
				e.out.ErrorCode, e.out.ErrorMessage = kerr.InvalidRequest.Code, errMsg("duplicate topic "+e.name+" in the request")
			} else if err := b.deleteTopic(e.name); err != nil {
				e.out.ErrorCode, e.out.ErrorMessage = kafkaError(err)
			} else {
				b.opts.Metrics.DeleteTopic(e.name)
			}
		}
		resp.Topics = append(resp.Topics, e.out)
	}
	b.replyMsg(req, h, &resp)
}

// deleteTopic deletes a topic and its partitions' producer state. Admin
// worker only.
func (b *Broker) deleteTopic(name string) error {
	var parts []*Partition
	if t := b.reg.Topic(name); t != nil {
		parts = viewTopic(b.reg, t).partitions
	}
	return b.dropPartitions(parts, func() error { return b.reg.DeleteTopic(name) })
}

// dropPartitions runs remove, which deletes or sets aside the logs of
// parts, with their producer snapshots held (none is written into a
// directory going away) and their producer state forgotten when it
// succeeds (shutdown would otherwise snapshot it into dirs that are gone).
// DeleteTopics and a replica leaving this node (cluster.go) share it.
func (b *Broker) dropPartitions(parts []*Partition, remove func() error) error {
	b.holdProducerSnapshots(parts, true)
	if err := remove(); err != nil {
		b.holdProducerSnapshots(parts, false)
		return err
	}
	b.forgetProducerState(parts)
	return nil
}
