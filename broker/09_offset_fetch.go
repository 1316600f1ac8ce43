package broker

// OffsetFetch (key 9), versions 1-9 (multi-group from v8).
//
// Behaviour: answers the committed offset (with leader epoch v5+ and
// metadata) of each requested partition, -1 for partitions without a
// commit; a null topic list (v2+) answers every committed offset of the
// group. A missing group answers -1 everywhere, as Kafka does. Offsets
// whose commit append has not completed are not yet visible. In-memory:
// answered at once.
//
// RequireStable (v7+, KIP-447): a partition with a transactional offset
// commit not yet decided by its marker (28_txn_offset_commit.go) answers
// UNSTABLE_OFFSET_COMMIT, which the consumer retries; without it the last
// committed offset is answered.
//
// Differences from Apache Kafka: the v9 member id and epoch (KIP-848
// consumers) are ignored.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.OffsetFetch, 1, 9, aliasing, (*Broker).serveOffsetFetch))
}

type fetchedPartition struct {
	partition int32
	o         group.Offset
	found     bool
	// unstable: RequireStable and a transactional commit is pending.
	unstable bool
}

type fetchedTopic struct {
	topic string
	parts []fetchedPartition
}

// fetchGroupOffsets answers one group. topics nil means every commit.
// REQUIRES: b.groups.mu held.
func (b *Broker) fetchGroupOffsets(groupID string, topics map[string][]int32, order []string, all, requireStable bool) []fetchedTopic {
	c := b.groups
	var out []fetchedTopic
	if all {
		g := c.g.Group(groupID)
		if g == nil {
			return nil
		}
		for _, co := range g.Offsets() {
			if n := len(out); n == 0 || out[n-1].topic != co.Topic {
				out = append(out, fetchedTopic{topic: co.Topic})
			}
			out[len(out)-1].parts = append(out[len(out)-1].parts, fetchedPartition{co.Partition, co.Offset, true,
				requireStable && c.g.HasPendingTxnOffset(groupID, co.TopicPartition)})
		}
		return out
	}
	for _, t := range order {
		ft := fetchedTopic{topic: t}
		for _, p := range topics[t] {
			tp := group.TopicPartition{Topic: t, Partition: p}
			o, ok := c.g.FetchOffset(groupID, tp)
			ft.parts = append(ft.parts, fetchedPartition{p, o, ok, requireStable && c.g.HasPendingTxnOffset(groupID, tp)})
		}
		out = append(out, ft)
	}
	return out
}

func (fp *fetchedPartition) values() (int64, int32, *string) {
	if !fp.found || fp.unstable {
		empty := ""
		return -1, -1, &empty
	}
	md := fp.o.Metadata
	return fp.o.Offset, fp.o.LeaderEpoch, &md
}

func (b *Broker) serveOffsetFetch(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.OffsetFetchRequest) {
	resp := kmsg.NewOffsetFetchResponse()
	resp.Version = hdr.APIVersion
	c := b.groups
	c.lock()
	if hdr.APIVersion < 8 {
		topics, order := map[string][]int32{}, []string(nil)
		for _, t := range r.Topics {
			if _, ok := topics[t.Topic]; !ok {
				order = append(order, t.Topic)
			}
			topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
		}
		for _, ft := range b.fetchGroupOffsets(r.Group, topics, order, r.Topics == nil, r.RequireStable) {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = ft.topic
			for i := range ft.parts {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition = ft.parts[i].partition
				rp.Offset, rp.LeaderEpoch, rp.Metadata = ft.parts[i].values()
				if ft.parts[i].unstable {
					rp.ErrorCode = kerr.UnstableOffsetCommit.Code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	} else {
		for _, g := range r.Groups {
			topics, order := map[string][]int32{}, []string(nil)
			for _, t := range g.Topics {
				if _, ok := topics[t.Topic]; !ok {
					order = append(order, t.Topic)
				}
				topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
			}
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group = g.Group
			for _, ft := range b.fetchGroupOffsets(g.Group, topics, order, g.Topics == nil, r.RequireStable) {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = ft.topic
				for i := range ft.parts {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition = ft.parts[i].partition
					rp.Offset, rp.LeaderEpoch, rp.Metadata = ft.parts[i].values()
					if ft.parts[i].unstable {
						rp.ErrorCode = kerr.UnstableOffsetCommit.Code
					}
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
	}
	c.unlock()
	if b.authzOn() {
		b.offsetFetchSecure(req, r, &resp)
	}
	b.replyMsg(req, &hdr, &resp)
}

// offsetFetchSecure applies authorization to an OffsetFetch answer, as
// KafkaApis: a group the principal may not DESCRIBE is
// GROUP_AUTHORIZATION_FAILED (the top-level error before v8, with no
// topics); a topic it may not DESCRIBE is left out of an all-topics answer
// and TOPIC_AUTHORIZATION_FAILED on each partition when named.
func (b *Broker) offsetFetchSecure(req netpoll.Request, r *kmsg.OffsetFetchRequest, resp *kmsg.OffsetFetchResponse) {
	denied := kerr.TopicAuthorizationFailed.Code
	if resp.Version < 8 {
		if !b.authorize(req, acl.OpDescribe, acl.ResourceGroup, r.Group) {
			resp.Topics, resp.ErrorCode = nil, kerr.GroupAuthorizationFailed.Code
			return
		}
		kept := resp.Topics[:0]
		for _, t := range resp.Topics {
			if !b.authorize(req, acl.OpDescribe, acl.ResourceTopic, t.Topic) {
				if r.Topics == nil {
					continue
				}
				for i := range t.Partitions {
					t.Partitions[i].Offset, t.Partitions[i].Metadata, t.Partitions[i].ErrorCode = -1, nil, denied
				}
			}
			kept = append(kept, t)
		}
		resp.Topics = kept
		return
	}
	for gi := range resp.Groups {
		g := &resp.Groups[gi]
		if !b.authorize(req, acl.OpDescribe, acl.ResourceGroup, g.Group) {
			g.Topics, g.ErrorCode = nil, kerr.GroupAuthorizationFailed.Code
			continue
		}
		all := gi < len(r.Groups) && r.Groups[gi].Topics == nil
		kept := g.Topics[:0]
		for _, t := range g.Topics {
			if !b.authorize(req, acl.OpDescribe, acl.ResourceTopic, t.Topic) {
				if all {
					continue
				}
				for i := range t.Partitions {
					t.Partitions[i].Offset, t.Partitions[i].Metadata, t.Partitions[i].ErrorCode = -1, nil, denied
				}
			}
			kept = append(kept, t)
		}
		g.Topics = kept
	}
}
