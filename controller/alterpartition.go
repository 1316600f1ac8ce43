package controller

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// AlterPartition answers AlterPartition (key 56), a partition leader's
// request to change its ISR (Kafka's ReplicationControlManager
// alterPartition, checks in its order).
//
// Per request: an unregistered broker, or a broker epoch other than its
// registration's, is STALE_BROKER_EPOCH (no partition is looked at).
//
// Per topic: unknown is UNKNOWN_TOPIC_ID (by id, v2+) or
// UNKNOWN_TOPIC_OR_PARTITION (by name, v0-1). Per partition:
//
//   - unknown: UNKNOWN_TOPIC_OR_PARTITION;
//   - a leader epoch or partition epoch above the partition's:
//     NOT_CONTROLLER (the sender has seen metadata this controller has
//     not: it is likely no longer the active controller);
//   - a leader epoch below the partition's: FENCED_LEADER_EPOCH;
//   - the sender not the leader (at the current leader epoch, which
//     only a confused broker can send): INVALID_REQUEST, as Kafka;
//   - a partition epoch below the partition's: INVALID_UPDATE_VERSION
//     (the leader's view is stale; it refreshes its metadata);
//   - an ISR that is empty, repeats a broker, names a broker that is not
//     a replica, or lacks the leader: INVALID_REQUEST;
//   - LeaderRecoveryState 1 (recovering) with more than one ISR member,
//     or asked of a partition that has recovered, or any value but 0
//     and 1: INVALID_REQUEST;
//   - an ISR member that is not registered, is fenced, is in controlled
//     shutdown, or (v3, NewEpochISR) whose broker epoch is given and
//     differs from its registration's: INELIGIBLE_REPLICA (v2+;
//     OPERATION_NOT_ATTEMPTED before). Every member is checked, not only
//     the new ones: the controller removed fenced and shutting-down
//     brokers from every ISR, so a leader that names one is behind.
//
// Otherwise the partition takes the ISR and the recovery state asked
// for, in a PartitionChangeRecord that bumps the partition epoch and not
// the leader epoch; an ISR below min ISR puts the replicas it drops in
// the ELR, one at or above it clears the ELR (see populateELR); an ISR and recovery state equal to the current ones
// write nothing and answer the current state. An ISR that puts every
// adding replica in the ISR completes the partition's reassignment in the
// same record; if that moves the leadership (the leader was being
// removed), the record is written and the answer is NEW_LEADER_ELECTED
// (v2+; FENCED_LEADER_EPOCH before), as in Kafka, so that the old leader
// learns the new state from the metadata. A successful answer carries
// the partition's leader, leader epoch, ISR, recovery state and partition
// epoch after the change.
//
// The sender itself being fenced needs no check of its own: a fenced
// broker leads nothing (fencing moves its leaderships), so its request
// fails one of the checks above.
func (c *Controller) AlterPartition(img metadata.Image, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, []metadata.Record) {
	resp := kmsg.NewPtrAlterPartitionResponse()
	resp.Version = req.Version
	br, ok := img.Broker(req.BrokerID)
	if !ok || br.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp, nil
	}
	b := newBatch(img)
	for _, rt := range req.Topics {
		out := kmsg.NewAlterPartitionResponseTopic()
		out.Topic, out.TopidID = rt.Topic, rt.TopicID // sic: franz-go spells it TopidID
		cur := b.image()
		var t *metadata.Topic
		var found bool
		unknown := kerr.UnknownTopicOrPartition.Code
		if req.Version >= 2 {
			t, found = cur.TopicByID(rt.TopicID)
			unknown = kerr.UnknownTopicID.Code
		} else {
			t, found = cur.TopicByName(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			po := kmsg.NewAlterPartitionResponseTopicPartition()
			po.Partition = rp.Partition
			if !found {
				po.ErrorCode = unknown
			} else {
				po = c.alterPartition(b, t.ID, req.Version, req.BrokerID, rp)
			}
			out.Partitions = append(out.Partitions, po)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, b.done()
}

// isrMember is one broker of a requested ISR, with the broker epoch the
// leader knows for it (-1: not given, before v3).
type isrMember struct {
	id    int32
	epoch int64
}

// requestedISR returns the ISR rp asks for: NewEpochISR from v3, NewISR
// before (Kafka reads only the field of the request's version).
func requestedISR(version int16, rp kmsg.AlterPartitionRequestTopicPartition) []isrMember {
	var isr []isrMember
	if version >= 3 {
		for _, e := range rp.NewEpochISR {
			isr = append(isr, isrMember{e.BrokerID, e.BrokerEpoch})
		}
		return isr
	}
	for _, id := range rp.NewISR {
		isr = append(isr, isrMember{id, -1})
	}
	return isr
}

func (c *Controller) alterPartition(b *batch, topic metadata.UUID, version int16, sender int32, rp kmsg.AlterPartitionRequestTopicPartition) kmsg.AlterPartitionResponseTopicPartition {
	po := kmsg.NewAlterPartitionResponseTopicPartition()
	po.Partition = rp.Partition
	img := b.image()
	t, _ := img.TopicByID(topic)
	p, ok := t.Partitions[rp.Partition]
	if !ok {
		po.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return po
	}
	members := requestedISR(version, rp)
	if po.ErrorCode = c.checkAlterPartition(img, version, sender, p, rp, members); po.ErrorCode != 0 {
		return po
	}
	next := p
	next.ISR = make([]int32, len(members))
	for i, m := range members {
		next.ISR[i] = m.id
	}
	next.LeaderRecoveryState = rp.LeaderRecoveryState
	inProgress := len(next.AddingReplicas) > 0 || len(next.RemovingReplicas) > 0
	if inProgress && !slices.ContainsFunc(next.AddingReplicas, func(r int32) bool { return !slices.Contains(next.ISR, r) }) {
		next = c.completeReassignment(img, next)
	}
	next = populateELR(img, p, next, c.minISR(img, t), metadata.NoLeader)
	b.changeTo(topic, rp.Partition, p, next)
	nt, _ := b.image().TopicByID(topic)
	q := nt.Partitions[rp.Partition]
	if q.Leader != sender {
		// Only a completed reassignment moves the leader here.
		po.ErrorCode = kerr.NewLeaderElected.Code
		if version < 2 {
			po.ErrorCode = kerr.FencedLeaderEpoch.Code
		}
		return po
	}
	po.LeaderID, po.LeaderEpoch, po.ISR = q.Leader, q.LeaderEpoch, slices.Clone(q.ISR)
	po.LeaderRecoveryState, po.PartitionEpoch = q.LeaderRecoveryState, q.PartitionEpoch
	return po
}

// checkAlterPartition returns the error code of an AlterPartition of p
// from sender asking for the ISR members (0: none), in Kafka's order;
// see AlterPartition.
func (c *Controller) checkAlterPartition(img metadata.Image, version int16, sender int32, p metadata.Partition,
	rp kmsg.AlterPartitionRequestTopicPartition, members []isrMember) int16 {
	switch {
	case rp.LeaderEpoch > p.LeaderEpoch || rp.PartitionEpoch > p.PartitionEpoch:
		return kerr.NotController.Code
	case rp.LeaderEpoch < p.LeaderEpoch:
		return kerr.FencedLeaderEpoch.Code
	case sender != p.Leader:
		return kerr.InvalidRequest.Code
	case rp.PartitionEpoch < p.PartitionEpoch:
		return kerr.InvalidUpdateVersion.Code
	case len(members) == 0, rp.LeaderRecoveryState != 0 && rp.LeaderRecoveryState != 1:
		return kerr.InvalidRequest.Code
	}
	for i, m := range members {
		if !slices.Contains(p.Replicas, m.id) || slices.ContainsFunc(members[:i], func(o isrMember) bool { return o.id == m.id }) {
			return kerr.InvalidRequest.Code
		}
	}
	if !slices.ContainsFunc(members, func(m isrMember) bool { return m.id == p.Leader }) {
		return kerr.InvalidRequest.Code
	}
	if rp.LeaderRecoveryState == 1 && (len(members) > 1 || p.LeaderRecoveryState == 0) {
		// A recovering leader's ISR is itself alone until it has
		// recovered, and recovery cannot start again (Kafka's rules).
		return kerr.InvalidRequest.Code
	}
	for _, m := range members {
		br, ok := img.Broker(m.id)
		if !ok || !c.active(img, m.id) || m.epoch != -1 && m.epoch != br.Epoch {
			if version < 2 {
				return kerr.OperationNotAttempted.Code
			}
			return kerr.IneligibleReplica.Code
		}
	}
	return 0
}
