package controller

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// Partition reassignment, KRaft style. A reassignment of a partition
// from replicas R to target T records Replicas = T followed by the
// members of R not in T, AddingReplicas = T - R and RemovingReplicas =
// R - T. It completes when every adding replica is in the ISR (the
// leader reports that with AlterPartition): then Replicas = T, the ISR
// loses the removing replicas, and leadership moves to a target replica
// if the leader was being removed. A target adding nobody completes at
// once. Cancelling (null replicas) goes back to R.

// AlterPartitionReassignments answers AlterPartitionReassignments (key
// 45): per partition, an unknown one is UNKNOWN_TOPIC_OR_PARTITION; a
// target that is empty, repeats a broker or names an unregistered one
// INVALID_REPLICA_ASSIGNMENT, as is one (or a cancel) that would leave
// no ISR member among the replicas; a cancel with nothing in progress
// NO_REASSIGNMENT_IN_PROGRESS. A new target for a partition being
// reassigned replaces the old one, computed from the replicas before it.
func (c *Controller) AlterPartitionReassignments(img metadata.Image, req *kmsg.AlterPartitionAssignmentsRequest) (*kmsg.AlterPartitionAssignmentsResponse, []metadata.Record) {
	resp := kmsg.NewPtrAlterPartitionAssignmentsResponse()
	resp.Version = req.Version
	b := newBatch(img)
	for _, rt := range req.Topics {
		out := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		out.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			po := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			po.Partition = rp.Partition
			po.ErrorCode, po.ErrorMessage = c.reassign(b, rt.Topic, rp.Partition, rp.Replicas)
			out.Partitions = append(out.Partitions, po)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, b.done()
}

func (c *Controller) reassign(b *batch, topic string, pid int32, target []int32) (int16, *string) {
	img := b.image()
	t, ok := img.TopicByName(topic)
	if !ok {
		return kerr.UnknownTopicOrPartition.Code, errMsg("unknown topic %s", topic)
	}
	p, ok := t.Partitions[pid]
	if !ok {
		return kerr.UnknownTopicOrPartition.Code, errMsg("unknown partition %s-%d", topic, pid)
	}
	// original is the replica set before any reassignment in progress.
	original := slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.AddingReplicas, r) })
	inProgress := len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
	if target == nil {
		if !inProgress {
			return kerr.NoReassignmentInProgress.Code, errMsg("no reassignment of %s-%d in progress", topic, pid)
		}
		target = original
	} else {
		for i, r := range target {
			if slices.Contains(target[:i], r) {
				return kerr.InvalidReplicaAssignment.Code, errMsg("broker %d is listed twice", r)
			}
			if _, ok := img.Broker(r); !ok {
				return kerr.InvalidReplicaAssignment.Code, errMsg("broker %d is not registered", r)
			}
		}
		if len(target) == 0 {
			return kerr.InvalidReplicaAssignment.Code, errMsg("no replicas")
		}
	}
	next := p
	next.Replicas = slices.Clone(target)
	next.AddingReplicas, next.RemovingReplicas = nil, nil
	for _, r := range target {
		if !slices.Contains(original, r) {
			next.AddingReplicas = append(next.AddingReplicas, r)
		}
	}
	for _, r := range original {
		if !slices.Contains(target, r) {
			next.RemovingReplicas = append(next.RemovingReplicas, r)
			next.Replicas = append(next.Replicas, r)
		}
	}
	// Adding replicas that are no longer wanted leave the ISR, which
	// must keep a member (the data lives there).
	next.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return !slices.Contains(next.Replicas, r) })
	if len(next.ISR) == 0 {
		return kerr.InvalidReplicaAssignment.Code, errMsg("%s-%d: no member of the ISR %v would stay a replica", topic, pid, p.ISR)
	}
	if len(next.AddingReplicas) == 0 {
		next = c.completeReassignment(img, next)
	}
	next = populateELR(img, p, next, c.minISR(img, t), metadata.NoLeader)
	if !slices.Contains(next.Replicas, next.Leader) || !slices.Contains(next.ISR, next.Leader) {
		next.Leader = c.electLeader(img, next, false)
	}
	b.changeTo(t.ID, pid, p, next)
	return 0, nil
}

// completeReassignment returns p with its reassignment done: replicas the
// target, removing replicas out of the ISR (unless that empties it: the
// reassignment then waits for a target replica to join the ISR), and a
// leader from the target.
func (c *Controller) completeReassignment(img metadata.Image, p metadata.Partition) metadata.Partition {
	isr := slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return slices.Contains(p.RemovingReplicas, r) })
	if len(isr) == 0 {
		return p
	}
	next := p
	next.Replicas = slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.RemovingReplicas, r) })
	next.ISR, next.AddingReplicas, next.RemovingReplicas = isr, nil, nil
	if !slices.Contains(next.ISR, next.Leader) || !c.active(img, next.Leader) {
		next.Leader = c.electLeader(img, next, false)
	}
	return next
}

// ListPartitionReassignments answers ListPartitionReassignments (key 46):
// the partitions with a reassignment in progress, of the topics asked
// (null: all). Unknown partitions asked for are left out, as in Kafka.
func (c *Controller) ListPartitionReassignments(img metadata.Image, req *kmsg.ListPartitionReassignmentsRequest) *kmsg.ListPartitionReassignmentsResponse {
	resp := kmsg.NewPtrListPartitionReassignmentsResponse()
	resp.Version = req.Version
	add := func(t *metadata.Topic, pids []int32) {
		out := kmsg.NewListPartitionReassignmentsResponseTopic()
		out.Topic = t.Name
		for _, pid := range pids {
			p, ok := t.Partitions[pid]
			if !ok || len(p.AddingReplicas) == 0 && len(p.RemovingReplicas) == 0 {
				continue
			}
			out.Partitions = append(out.Partitions, kmsg.ListPartitionReassignmentsResponseTopicPartition{Partition: pid,
				Replicas: slices.Clone(p.Replicas), AddingReplicas: nonNil(p.AddingReplicas), RemovingReplicas: nonNil(p.RemovingReplicas)})
		}
		if len(out.Partitions) > 0 {
			resp.Topics = append(resp.Topics, out)
		}
	}
	if req.Topics == nil {
		for _, t := range img.Topics() {
			add(t, partitionIDs(t))
		}
		return resp
	}
	for _, rt := range req.Topics {
		if t, ok := img.TopicByName(rt.Topic); ok {
			add(t, rt.Partitions)
		}
	}
	return resp
}
