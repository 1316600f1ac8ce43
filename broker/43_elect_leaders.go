package broker

// ElectLeaders (key 43), versions 0-2; AlterPartitionReassignments (key
// 45), version 0; ListPartitionReassignments (key 46), version 0;
// DescribeQuorum (key 55), versions 0-2.
//
// Behaviour in a cluster (cluster.go): forwarded to the active controller,
// which elects preferred leaders, starts or cancels reassignments (the data
// is copied by replication, a later issue: until then a reassignment whose
// new replicas never join the ISR stays pending, listed by
// ListPartitionReassignments) and describes the metadata quorum: the
// leader (the active controller), its epoch (the raft term), the high
// watermark and each voter's and observer's log end offset, last fetch and
// last caught-up times as the leader saw them (cluster/controller.go:
// describeQuorum). Directory ids are zero (NO_DIRECTORY_ID).
//
// Single node (no process.roles): every partition is led by its only
// replica, so ElectLeaders answers ELECTION_NOT_NEEDED for each partition
// named (or every partition when none is), a reassignment may only name
// [node.id] (else INVALID_REPLICA_ASSIGNMENT) and completes at once, none
// is ever listed, and DescribeQuorum describes a quorum of this node alone
// (no metadata log: offsets 0; its times now, as Kafka's leader shows its
// own).

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(adminDecoded(kmsg.ElectLeaders, 0, 2, (*Broker).electLeaders))
	register(adminDecoded(kmsg.AlterPartitionAssignments, 0, 0, (*Broker).alterReassignments))
	register(adminDecoded(kmsg.ListPartitionReassignments, 0, 0, (*Broker).listReassignments))
	register(adminDecoded(kmsg.DescribeQuorum, 0, 2, (*Broker).describeQuorum))
}

// electLeaders is the single node's ElectLeaders.
func (b *Broker) electLeaders(req netpoll.Request, h *proto.RequestHeader, r *kmsg.ElectLeadersRequest) {
	resp := kmsg.ElectLeadersResponse{Version: h.APIVersion}
	answer := func(topic string, parts []int32) {
		rt := kmsg.ElectLeadersResponseTopic{Topic: topic}
		for _, p := range parts {
			rp := kmsg.ElectLeadersResponseTopicPartition{Partition: p, ErrorCode: kerr.ElectionNotNeeded.Code}
			if !b.reg.HasPartition(topic, p) {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if b.reg == nil {
		b.replyMsg(req, h, &resp)
		return
	}
	if r.Topics == nil {
		for _, t := range b.reg.Topics() {
			v := viewTopic(b.reg, t)
			parts := make([]int32, len(v.partitions))
			for i := range parts {
				parts[i] = int32(i)
			}
			answer(t.Name, parts)
		}
	} else {
		for _, t := range r.Topics {
			answer(t.Topic, t.Partitions)
		}
	}
	b.replyMsg(req, h, &resp)
}

// alterReassignments is the single node's AlterPartitionReassignments.
func (b *Broker) alterReassignments(req netpoll.Request, h *proto.RequestHeader, r *kmsg.AlterPartitionAssignmentsRequest) {
	resp := kmsg.AlterPartitionAssignmentsResponse{Version: h.APIVersion}
	for _, t := range r.Topics {
		rt := kmsg.AlterPartitionAssignmentsResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.AlterPartitionAssignmentsResponseTopicPartition{Partition: p.Partition}
			switch {
			case b.reg == nil || !b.reg.HasPartition(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case p.Replicas == nil:
				rp.ErrorCode, rp.ErrorMessage = kerr.NoReassignmentInProgress.Code, errMsg("no reassignment in progress")
			case !slices.Equal(p.Replicas, []int32{b.opts.NodeID}):
				rp.ErrorCode, rp.ErrorMessage = kerr.InvalidReplicaAssignment.Code, errMsg("a single node: the only replica is this broker")
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	b.replyMsg(req, h, &resp)
}

// listReassignments is the single node's ListPartitionReassignments: none.
func (b *Broker) listReassignments(req netpoll.Request, h *proto.RequestHeader, _ *kmsg.ListPartitionReassignmentsRequest) {
	resp := kmsg.ListPartitionReassignmentsResponse{Version: h.APIVersion}
	b.replyMsg(req, h, &resp)
}

// describeQuorum is the single node's DescribeQuorum: a quorum of one.
func (b *Broker) describeQuorum(req netpoll.Request, h *proto.RequestHeader, r *kmsg.DescribeQuorumRequest) {
	resp := kmsg.DescribeQuorumResponse{Version: h.APIVersion}
	for _, t := range r.Topics {
		rt := kmsg.DescribeQuorumResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeQuorumResponseTopicPartition()
			rp.Partition = p.Partition
			if t.Topic != clusterMetadataTopic || p.Partition != 0 {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				rp.LeaderID, rp.LeaderEpoch = b.opts.NodeID, 0
				self := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
				self.ReplicaID, self.LogEndOffset = b.opts.NodeID, 0
				now := time.Now().UnixMilli()
				self.LastFetchTimestamp, self.LastCaughtUpTimestamp = now, now
				rp.CurrentVoters = []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{self}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if h.APIVersion >= 2 {
		resp.Nodes = []kmsg.DescribeQuorumResponseNode{{NodeID: b.opts.NodeID, Listeners: []kmsg.DescribeQuorumResponseNodeListener{
			{Name: b.listenerName(), Host: b.opts.AdvertisedHost, Port: uint16(b.opts.AdvertisedPort)}}}}
	}
	b.replyMsg(req, h, &resp)
}
