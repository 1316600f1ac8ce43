package controller

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// TestRandomCommands drives the controller with random command sequences
// (seeded, replayable: the failing seed and step are in the message) and
// checks, after every command, that its records applied to the image
// (h.apply fails the test otherwise) and that the image is sane: every
// ISR is a non-empty subset of the replicas, every leader is in the ISR
// and active (a fenced broker leads nothing), an ISR of more than one
// member holds only active brokers, a recovering leader's ISR is itself
// alone, adding and removing replicas are disjoint replicas, every
// replica is a registered broker; and after every Tick that no partition
// without a leader has an active ISR member, nor, with
// unclean.leader.election.enable on, an active replica.
var randomSeeds = flag.Int("seeds", 40, "TestRandomCommands: how many seeds to run")

func TestRandomCommands(t *testing.T) {
	seeds, steps := *randomSeeds, 400
	if testing.Short() {
		seeds = 5
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 15))
			h := newHarness(t)
			for step := range steps {
				what := h.randomStep(rng)
				msg := h.check()
				if msg == "" {
					msg = h.checkLeaders(false)
				}
				if msg != "" {
					t.Fatalf("seed %d step %d (%s): %s\n%s", seed, step, what, msg, h.dump())
				}
				if what == "tick" {
					if msg := h.checkLeaders(true); msg != "" {
						t.Fatalf("seed %d step %d after tick: %s\n%s", seed, step, msg, h.dump())
					}
				}
			}
		})
	}
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func (h *harness) randomBroker(rng *rand.Rand) int32 { return int32(1 + rng.IntN(5)) }

func (h *harness) randomTopic(rng *rand.Rand) (*metadata.Topic, bool) {
	ts := h.img.Topics()
	if len(ts) == 0 {
		return nil, false
	}
	return pick(rng, ts), true
}

func (h *harness) randomReplicas(rng *rand.Rand, n int) []int32 {
	perm := rng.Perm(6) // 0..5: broker 0 is never registered
	out := make([]int32, 0, n)
	for _, p := range perm[:n] {
		out = append(out, int32(p))
	}
	return out
}

// randomStep runs one random command and says which.
func (h *harness) randomStep(rng *rand.Rand) string {
	switch n := rng.IntN(100); {
	case n < 1:
		// A raft leader change: a new controller on the same image.
		h.c = New(h.c.cfg)
		h.c.Activate(h.now, h.img)
		return "failover"
	case n < 8:
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.BrokerID, req.ClusterID = h.randomBroker(rng), "cluster"
		req.IncarnationID[15] = byte(1 + rng.IntN(2))
		rack := pick(rng, []string{"a", "b", "c"})
		req.Rack = &rack
		_, recs := h.c.RegisterBroker(h.now, h.img, h.offset, req)
		h.apply(recs)
		return "register"
	case n < 40:
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID = h.randomBroker(rng)
		br, _ := h.img.Broker(req.BrokerID)
		req.BrokerEpoch = br.Epoch
		if rng.IntN(20) == 0 {
			req.BrokerEpoch--
		}
		req.CurrentMetadataOffset = h.offset - 1 - int64(rng.IntN(2))
		req.WantFence = rng.IntN(40) == 0
		req.WantShutdown = rng.IntN(60) == 0
		_, recs := h.c.Heartbeat(h.now, h.img, req)
		h.apply(recs)
		return "heartbeat"
	case n < 55:
		h.now = h.now.Add(time.Duration(rng.IntN(2500)) * time.Millisecond)
		h.apply(h.c.Tick(h.now, h.img))
		return "tick"
	case n < 65:
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = fmt.Sprintf("t%d", rng.IntN(8))
		if rng.IntN(4) == 0 {
			for p := range 1 + rng.IntN(3) {
				rt.ReplicaAssignment = append(rt.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: int32(p), Replicas: h.randomReplicas(rng, 2)})
			}
		} else {
			rt.NumPartitions, rt.ReplicationFactor = int32(1+rng.IntN(4)), int16(1+rng.IntN(3))
		}
		req.Topics = append(req.Topics, rt)
		_, recs := h.c.CreateTopics(h.img, req)
		h.apply(recs)
		return "create-topics"
	case n < 68:
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TopicNames = []string{fmt.Sprintf("t%d", rng.IntN(8))}
		_, recs := h.c.DeleteTopics(h.img, req)
		h.apply(recs)
		return "delete-topics"
	case n < 72:
		t, ok := h.randomTopic(rng)
		if !ok {
			return "nothing"
		}
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: t.Name, Count: int32(len(t.Partitions) + rng.IntN(3))}}
		_, recs := h.c.CreatePartitions(h.img, req)
		h.apply(recs)
		return "create-partitions"
	case n < 78:
		req := kmsg.NewPtrElectLeadersRequest()
		req.ElectionType = int8(rng.IntN(2))
		_, recs := h.c.ElectLeaders(h.img, req)
		h.apply(recs)
		return "elect"
	case n < 86:
		t, ok := h.randomTopic(rng)
		if !ok {
			return "nothing"
		}
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Partition = int32(rng.IntN(len(t.Partitions) + 1))
		if rng.IntN(3) > 0 {
			rp.Replicas = h.randomReplicas(rng, 1+rng.IntN(3))
		}
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: t.Name, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{rp}}}
		_, recs := h.c.AlterPartitionReassignments(h.img, req)
		h.apply(recs)
		return "reassign"
	case n < 90:
		// unclean.leader.election.enable on or off for a random topic.
		t, ok := h.randomTopic(rng)
		if !ok {
			return "nothing"
		}
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, t.Name
		v := pick(rng, []string{"true", "false"})
		rr.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: uncleanLeaderElectionKey, Value: &v}}
		req.Resources = append(req.Resources, rr)
		_, recs := h.c.IncrementalAlterConfigs(h.img, req)
		h.apply(recs)
		return "unclean-" + v
	default:
		// The leader of a random partition reports an ISR: a random
		// subset of the replicas, with itself (sometimes without, or
		// with stale epochs, another version, a recovery state).
		t, ok := h.randomTopic(rng)
		if !ok || len(t.Partitions) == 0 {
			return "nothing"
		}
		pid := int32(rng.IntN(len(t.Partitions)))
		p := t.Partitions[pid]
		sender := p.Leader
		if sender == metadata.NoLeader || rng.IntN(10) == 0 {
			sender = pick(rng, p.Replicas)
		}
		var isr []int32
		if rng.IntN(10) > 0 {
			isr = append(isr, sender)
		}
		for _, r := range p.Replicas {
			if r != sender && rng.IntN(2) == 0 {
				isr = append(isr, r)
			}
		}
		br, _ := h.img.Broker(sender)
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch, rp.NewISR = pid, p.LeaderEpoch, p.PartitionEpoch, isr
		if rng.IntN(10) == 0 {
			rp.LeaderEpoch += int32(rng.IntN(3)) - 1
		}
		if rng.IntN(10) == 0 {
			rp.PartitionEpoch += int32(rng.IntN(3)) - 1
		}
		rp.LeaderRecoveryState = p.LeaderRecoveryState
		if rng.IntN(3) == 0 {
			rp.LeaderRecoveryState = 0
		}
		req := kmsg.NewPtrAlterPartitionRequest()
		req.Version, req.BrokerID, req.BrokerEpoch = int16(rng.IntN(4)), sender, br.Epoch
		for _, id := range isr {
			e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			m, _ := h.img.Broker(id)
			e.BrokerID, e.BrokerEpoch = id, m.Epoch
			if rng.IntN(10) == 0 {
				e.BrokerEpoch = -1
			}
			rp.NewEpochISR = append(rp.NewEpochISR, e)
		}
		req.Topics = []kmsg.AlterPartitionRequestTopic{{Topic: t.Name, TopicID: t.ID, Partitions: []kmsg.AlterPartitionRequestTopicPartition{rp}}}
		_, recs := h.c.AlterPartition(h.img, req)
		h.apply(recs)
		return "alter-partition"
	}
}

// check returns what is wrong with the image's partitions, or "".
func (h *harness) check() string {
	for _, t := range h.img.Topics() {
		for id, p := range t.Partitions {
			switch {
			case len(p.ISR) == 0 && p.Leader != metadata.NoLeader:
				return fmt.Sprintf("%s-%d: empty ISR with leader %d", t.Name, id, p.Leader)
			case slices.ContainsFunc(p.ELR, func(r int32) bool { return slices.Contains(p.ISR, r) || !slices.Contains(p.Replicas, r) }):
				return fmt.Sprintf("%s-%d: ELR %v not disjoint from ISR %v within replicas %v", t.Name, id, p.ELR, p.ISR, p.Replicas)
			case slices.ContainsFunc(p.LastKnownELR, func(r int32) bool { return slices.Contains(p.ELR, r) || slices.Contains(p.ISR, r) }):
				return fmt.Sprintf("%s-%d: LastKnownELR %v meets ELR %v or ISR %v", t.Name, id, p.LastKnownELR, p.ELR, p.ISR)
			case len(p.ISR) >= h.c.minISR(h.img, t) && (p.ELR != nil || p.LastKnownELR != nil):
				return fmt.Sprintf("%s-%d: ISR %v at min ISR keeps ELR %v, LastKnownELR %v", t.Name, id, p.ISR, p.ELR, p.LastKnownELR)
			case slices.ContainsFunc(p.ISR, func(r int32) bool { return !slices.Contains(p.Replicas, r) }):
				return fmt.Sprintf("%s-%d: ISR %v not within replicas %v", t.Name, id, p.ISR, p.Replicas)
			case p.Leader != metadata.NoLeader && !slices.Contains(p.ISR, p.Leader):
				return fmt.Sprintf("%s-%d: leader %d not in ISR %v", t.Name, id, p.Leader, p.ISR)
			case !within(p.AddingReplicas, p.Replicas) || !within(p.RemovingReplicas, p.Replicas) ||
				slices.ContainsFunc(p.AddingReplicas, func(r int32) bool { return slices.Contains(p.RemovingReplicas, r) }):
				return fmt.Sprintf("%s-%d: adding %v and removing %v not disjoint within replicas %v", t.Name, id, p.AddingReplicas, p.RemovingReplicas, p.Replicas)
			}
			switch {
			case slices.ContainsFunc(p.ISR, func(r int32) bool { return !h.c.active(h.img, r) }):
				// With eligible leader replicas on, even the last member
				// of an ISR leaves it when it is fenced or shuts down.
				return fmt.Sprintf("%s-%d: ISR %v holds an inactive broker", t.Name, id, p.ISR)
			case p.LeaderRecoveryState == 1 && len(p.ISR) > 1:
				return fmt.Sprintf("%s-%d: recovering with ISR %v", t.Name, id, p.ISR)
			}
			for _, r := range p.Replicas {
				if _, ok := h.img.Broker(r); !ok {
					return fmt.Sprintf("%s-%d: replica %d is not a registered broker", t.Name, id, r)
				}
			}
		}
	}
	return ""
}

// checkLeaders returns a partition led by an inactive broker (which
// every command must prevent, moving leadership as it fences), or, with
// afterTick, a leaderless one with an active ISR member (which Tick must
// leave none of), or "".
func (h *harness) checkLeaders(afterTick bool) string {
	for _, t := range h.img.Topics() {
		for id, p := range t.Partitions {
			if p.Leader != metadata.NoLeader && !h.c.active(h.img, p.Leader) {
				return fmt.Sprintf("%s-%d: led by inactive broker %d", t.Name, id, p.Leader)
			}
			if afterTick && p.Leader == metadata.NoLeader && slices.ContainsFunc(p.Replicas, func(r int32) bool { return h.c.eligible(h.img, p, r) }) {
				return fmt.Sprintf("%s-%d: no leader, but ISR %v (ELR %v) has an active member", t.Name, id, p.ISR, p.ELR)
			}
			if afterTick && p.Leader == metadata.NoLeader && uncleanEnabled(h.img, t.Name) &&
				slices.ContainsFunc(p.Replicas, func(r int32) bool { return h.c.active(h.img, r) }) {
				return fmt.Sprintf("%s-%d: no leader, unclean election on, but replicas %v have an active member", t.Name, id, p.Replicas)
			}
		}
	}
	return ""
}

func within(xs, set []int32) bool {
	return !slices.ContainsFunc(xs, func(x int32) bool { return !slices.Contains(set, x) })
}
