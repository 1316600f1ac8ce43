package broker

// OffsetDelete (key 47), version 0.
//
// Behaviour: deletes committed offsets of a group (tombstones appended to
// __consumer_offsets). A consumer group with members keeps the offsets of
// topics its members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC per
// partition); a non-consumer group with members is NON_EMPTY_GROUP; an
// unknown group GROUP_ID_NOT_FOUND; a partition that does not exist
// UNKNOWN_TOPIC_OR_PARTITION.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.OffsetDelete, 0, 0, aliasing, (*Broker).serveOffsetDelete))
}

func (b *Broker) serveOffsetDelete(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.OffsetDeleteRequest) {
	resp := kmsg.NewOffsetDeleteResponse()
	resp.Version = hdr.APIVersion
	var tps []group.TopicPartition
	readable := make([]bool, len(r.Topics)) // authz.go: TOPIC READ (GROUP DELETE: in decoded)
	for ti, t := range r.Topics {
		if readable[ti] = b.authorize(req, acl.OpRead, acl.ResourceTopic, t.Topic); !readable[ti] {
			continue
		}
		for _, p := range t.Partitions {
			tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p.Partition})
		}
	}
	c := b.groups
	c.lock()
	top, codes := c.g.DeleteOffsets(r.Group, tps)
	c.unlock()
	resp.ErrorCode = top
	i := 0
	for ti, t := range r.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if !readable[ti] {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			if top == 0 {
				rp.ErrorCode = codes[i]
				if rp.ErrorCode == 0 && (b.reg == nil || !b.reg.HasPartition(t.Topic, p.Partition)) {
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
			}
			i++
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	b.replyMsg(req, &hdr, &resp)
}
