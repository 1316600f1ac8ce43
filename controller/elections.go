package controller

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// rebalance moves leadership back to preferred replicas (the first of
// each partition's replicas) for every broker whose imbalance exceeds
// LeaderImbalancePercent: the share of the partitions it is preferred
// for that another broker leads. Only partitions whose preferred replica
// is active and in the ISR move. This is the ZooKeeper-era controller's
// rule (leader.imbalance.per.broker.percentage); Kafka's KRaft controller
// ignores the percentage and moves every imbalanced partition.
func (c *Controller) rebalance(b *batch) {
	img := b.image()
	preferred := map[int32]int{}
	imbalanced := map[int32]int{}
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if len(p.Replicas) == 0 {
				continue
			}
			preferred[p.Replicas[0]]++
			if p.Leader != p.Replicas[0] {
				imbalanced[p.Replicas[0]]++
			}
		}
	}
	for _, t := range img.Topics() {
		for _, pid := range partitionIDs(t) {
			p := t.Partitions[pid]
			if len(p.Replicas) == 0 || p.Leader == p.Replicas[0] {
				continue
			}
			pref := p.Replicas[0]
			if imbalanced[pref]*100 <= c.cfg.LeaderImbalancePercent*preferred[pref] {
				continue
			}
			next := p
			next.Leader = c.electLeader(img, p, true)
			if next.Leader == pref {
				b.changeTo(t.ID, pid, p, next)
			}
		}
	}
}

// ElectLeaders answers ElectLeaders (key 43).
//
// Preferred (type 0): a partition led by its first replica gets
// ELECTION_NOT_NEEDED; one whose first replica is not active or not in
// the ISR gets PREFERRED_LEADER_NOT_AVAILABLE; otherwise leadership moves
// to it. Unclean (type 1): a partition with an active leader gets
// ELECTION_NOT_NEEDED; otherwise the first active ISR member leads, else
// the first active replica with the ISR shrunk to it and the leader in
// recovery (LeaderRecoveryState 1, as Kafka), else
// ELIGIBLE_LEADERS_NOT_AVAILABLE. Unknown partitions:
// UNKNOWN_TOPIC_OR_PARTITION. With no topics given (null) every
// partition is tried and, as in Kafka, those that needed no election are
// left out of the response (their topics stay, with no partitions).
func (c *Controller) ElectLeaders(img metadata.Image, req *kmsg.ElectLeadersRequest) (*kmsg.ElectLeadersResponse, []metadata.Record) {
	resp := kmsg.NewPtrElectLeadersResponse()
	resp.Version = req.Version
	if req.ElectionType != 0 && req.ElectionType != 1 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	b := newBatch(img)
	type target struct {
		topic string
		parts []int32
	}
	var targets []target
	all := req.Topics == nil
	if all {
		for _, t := range img.Topics() {
			targets = append(targets, target{t.Name, partitionIDs(t)})
		}
	} else {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.Partitions})
		}
	}
	for _, tg := range targets {
		rt := kmsg.ElectLeadersResponseTopic{Topic: tg.topic}
		for _, pid := range tg.parts {
			code, msg := c.electOne(b, tg.topic, pid, req.ElectionType == 1)
			if all && code == kerr.ElectionNotNeeded.Code {
				continue
			}
			rt.Partitions = append(rt.Partitions, kmsg.ElectLeadersResponseTopicPartition{Partition: pid, ErrorCode: code, ErrorMessage: msg})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, b.done()
}

func (c *Controller) electOne(b *batch, topic string, pid int32, unclean bool) (int16, *string) {
	img := b.image()
	t, ok := img.TopicByName(topic)
	if !ok {
		return kerr.UnknownTopicOrPartition.Code, errMsg("unknown topic %s", topic)
	}
	p, ok := t.Partitions[pid]
	if !ok {
		return kerr.UnknownTopicOrPartition.Code, errMsg("unknown partition %s-%d", topic, pid)
	}
	next := p
	if !unclean {
		if p.Leader == p.Replicas[0] {
			return kerr.ElectionNotNeeded.Code, nil
		}
		if next.Leader = c.electLeader(img, p, true); next.Leader != p.Replicas[0] {
			return kerr.PreferredLeaderNotAvailable.Code, errMsg("preferred replica %d of %s-%d is not active or not in the ISR", p.Replicas[0], topic, pid)
		}
		b.changeTo(t.ID, pid, p, next)
		return 0, nil
	}
	if p.Leader != metadata.NoLeader && c.active(img, p.Leader) {
		return kerr.ElectionNotNeeded.Code, nil
	}
	if next.Leader = c.electLeader(img, p, false); next.Leader == metadata.NoLeader {
		var ok bool
		if next, ok = c.electUnclean(img, p); !ok {
			return kerr.EligibleLeadersNotAvailable.Code, errMsg("no replica of %s-%d is active", topic, pid)
		}
	}
	b.changeTo(t.ID, pid, p, next)
	return 0, nil
}
