package broker

// DescribeTopicPartitions (key 75), version 0 (KIP-966).
//
// Behaviour, as Kafka's DescribeTopicPartitionsRequestHandler:
//   - An empty topic list describes every topic; otherwise the named topics
//     (duplicates once). Either way topics come sorted by name, and with a
//     cursor only topics from the cursor's name on are described, the
//     cursor's own topic starting at its partition index.
//   - At most ResponsePartitionLimit partitions are returned (capped at
//     describePartitionsMax, Kafka's max.request.partition.size.limit
//     default, and at least 1). When the limit cuts a topic, or is reached
//     exactly with topics left, NextCursor names the first partition not
//     returned; otherwise it is null.
//   - An unknown topic is UNKNOWN_TOPIC_OR_PARTITION with no partitions
//     (it takes no part of the limit). __consumer_offsets is internal.
//   - On a single node every partition is led by this node at epoch 0 with
//     this node as the only replica and ISR (as Metadata says); in a
//     cluster leader, epoch, replicas, ISR and offline replicas come from
//     the metadata image (cluster.go), and so do the eligible leader
//     replicas (ELR) and last known ELR, which a single node leaves
//     empty.
//   - Every topic described gets its authorized operations (the request
//     has no flag for them), computed from the ACLs as Kafka does
//     (authz.go); an unknown or refused topic keeps -2147483648.
//
// Answered on the ring thread: it only reads the registry.
//
// Differences from Apache Kafka: no topic-name validation beyond lookup
// (an invalid name is simply unknown).

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

// describePartitionsMax caps ResponsePartitionLimit (Kafka's
// max.request.partition.size.limit default).
const describePartitionsMax = 2000

func init() {
	register(decoded(kmsg.DescribeTopicPartitions, 0, 0, copying, (*Broker).serveDescribeTopicPartitions))
}

func (b *Broker) serveDescribeTopicPartitions(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.DescribeTopicPartitionsRequest) {
	h := &hdr
	resp := b.describeTopicPartitions(r)
	if b.authzOn() {
		// authz.go: hidden from an all-topics answer, refused when named,
		// as Metadata. (The partition limit and cursor count hidden
		// topics' partitions too.)
		kept := resp.Topics[:0]
		for _, t := range resp.Topics {
			if t.Topic != nil && !b.authorize(req, acl.OpDescribe, acl.ResourceTopic, *t.Topic) {
				if len(r.Topics) == 0 {
					continue
				}
				t = kmsg.DescribeTopicPartitionsResponseTopic{Topic: t.Topic, ErrorCode: kerr.TopicAuthorizationFailed.Code,
					AuthorizedOperations: authorizedOpsNotRequested}
			}
			kept = append(kept, t)
		}
		resp.Topics = kept
	}
	for i := range resp.Topics {
		if t := &resp.Topics[i]; t.Topic != nil && t.ErrorCode == 0 {
			t.AuthorizedOperations = b.authorizedOperations(req, acl.ResourceTopic, *t.Topic)
		}
	}
	b.replyMsg(req, h, resp)
}

// describeTopicPartitions builds the answer to r (pure over the registry).
func (b *Broker) describeTopicPartitions(r *kmsg.DescribeTopicPartitionsRequest) *kmsg.DescribeTopicPartitionsResponse {
	resp := kmsg.NewPtrDescribeTopicPartitionsResponse()
	resp.Version = r.Version
	limit := min(max(r.ResponsePartitionLimit, 1), describePartitionsMax)

	var views []topicView // v.t == nil: unknown topic names[i]
	var names []string
	if len(r.Topics) == 0 {
		views = allTopicViews(b.reg)
		for _, v := range views {
			names = append(names, v.t.Name)
		}
	} else {
		seen := make(map[string]bool, len(r.Topics))
		for _, t := range r.Topics {
			if !seen[t.Topic] {
				seen[t.Topic] = true
				names = append(names, t.Topic)
			}
		}
		sort.Strings(names)
		views = lookupTopics(b.reg, names, nil)
	}
	cursorTopic, cursorPart := "", int32(0)
	if r.Cursor != nil {
		cursorTopic, cursorPart = r.Cursor.Topic, max(r.Cursor.Partition, 0)
	}
	replicas := []int32{b.opts.NodeID}
	left := limit
	for i, v := range views {
		name := names[i]
		if name < cursorTopic {
			continue
		}
		if left == 0 {
			// The limit was reached exactly at the end of the last topic.
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: 0}
			break
		}
		if v.t == nil {
			resp.Topics = append(resp.Topics, kmsg.DescribeTopicPartitionsResponseTopic{
				ErrorCode: kerr.UnknownTopicOrPartition.Code, Topic: &names[i], AuthorizedOperations: authorizedOpsNotRequested})
			continue
		}
		first := int32(0)
		if name == cursorTopic {
			first = cursorPart
		}
		t := kmsg.DescribeTopicPartitionsResponseTopic{Topic: &names[i], TopicID: v.t.ID,
			IsInternal: name == offsetsTopic, AuthorizedOperations: authorizedOpsNotRequested}
		for p := first; p < int32(len(v.partitions)); p++ {
			if left == 0 {
				resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: p}
				break
			}
			rp := kmsg.DescribeTopicPartitionsResponseTopicPartition{
				Partition: p, LeaderID: b.opts.NodeID, LeaderEpoch: 0,
				Replicas: replicas, ISR: replicas,
				EligibleLeaderReplicas: []int32{}, LastKnownELR: []int32{}, OfflineReplicas: []int32{},
			}
			if b.opts.Cluster != nil {
				b.clusterPartitionState(name, &rp) // cluster.go: as the image says
			}
			t.Partitions = append(t.Partitions, rp)
			left--
		}
		resp.Topics = append(resp.Topics, t)
		if resp.NextCursor != nil {
			break
		}
	}
	return resp
}
