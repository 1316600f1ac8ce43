package controller

import (
	"slices"
	"strconv"

	"github.com/ringbroker/ringbroker/metadata"
)

// Eligible leader replicas (KIP-966, on by default as in Kafka 4.1+).
//
// When an ISR change takes a partition's ISR below the topic's min ISR,
// the replicas that leave it (and the ELR members already there) go to
// the partition's ELR: every record the ISR acknowledged with acks=all
// reached min ISR replicas, so each of them has it. With the ELR on,
// fencing removes even the last ISR member (the ISR may be empty, the
// broker goes to the ELR), and an election takes the ISR's first active
// member, else, with the ISR empty, the first active ELR member in
// replica order, which leads cleanly with the ISR reduced to itself and
// leaves the ELR. Only then may an unclean election (topic config, or
// ElectLeaders of type unclean) take another replica; it clears the ELR.
// An ISR back at or above min ISR clears the ELR and LastKnownELR. A
// broker that registers again after an unclean shutdown leaves every ISR
// and ELR: its log may have lost what it acknowledged. LastKnownELR keeps
// the replicas that were in the ISR or the ELR while the ISR was below
// min ISR and have left the ELR since.
//
// This is Kafka's PartitionChangeBuilder (maybePopulateTargetElr,
// isValidNewLeader, tryElection, maybeUpdateRecordElr) without the
// "last known leader" recovery option, which Kafka leaves off by
// default.

// elrFeature is the feature whose finalized level turns the ELR on (1)
// or off (0).
const elrFeature = "eligible.leader.replicas.version"

// minInsyncReplicasKey is the topic config giving the min ISR.
const minInsyncReplicasKey = "min.insync.replicas"

// elrEnabled reports whether the ELR rules apply: the feature
// eligible.leader.replicas.version at 1 or more, or not finalized at all
// (a cluster that never wrote the feature runs at the default, 1).
func elrEnabled(img metadata.Image) bool {
	level, ok := img.FeatureLevel(elrFeature)
	return !ok || level >= 1
}

// minISR returns topic t's effective min ISR (Kafka's
// getTopicEffectiveMinIsr): min.insync.replicas from the topic's config,
// else the configured default, capped at the replication factor of its
// partition 0.
func (c *Controller) minISR(img metadata.Image, t *metadata.Topic) int {
	v, ok := img.Configs(metadata.ConfigResource{Type: metadata.ResourceTopic, Name: t.Name})[minInsyncReplicasKey]
	if !ok {
		v = c.topicCfg.TopicDefault(minInsyncReplicasKey)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		n = 1 // validated when set; a value that is not a count means the default
	}
	if p0, ok := t.Partitions[0]; ok && len(p0.Replicas) < n {
		n = len(p0.Replicas)
	}
	return n
}

// populateELR returns next, the partition old is changing to (its
// target ISR set), with the ELR and LastKnownELR that change gives it
// (Kafka's maybePopulateTargetElr): both cleared when the ISR is at or
// above minISR; otherwise the ELR is the old ELR and old ISR members not
// in the new ISR, less uncleanShutdown (a broker id, or NoLeader for
// none), and LastKnownELR gathers those and its own old members not in
// the new ISR or ELR. Replicas that are no longer in the replica set are
// dropped from both (Kafka keeps them until the next change). With the
// ELR off both are cleared.
func populateELR(img metadata.Image, old, next metadata.Partition, minISR int, uncleanShutdown int32) metadata.Partition {
	if !elrEnabled(img) || len(next.ISR) >= minISR {
		next.ELR, next.LastKnownELR = nil, nil
		return next
	}
	keep := func(r int32) bool { return !slices.Contains(next.ISR, r) && slices.Contains(next.Replicas, r) }
	candidates := union(old.ELR, old.ISR)
	var elr, last []int32
	for _, r := range candidates {
		if keep(r) && r != uncleanShutdown {
			elr = append(elr, r)
		}
	}
	for _, r := range union(candidates, old.LastKnownELR) {
		if keep(r) && !slices.Contains(elr, r) {
			last = append(last, r)
		}
	}
	next.ELR, next.LastKnownELR = elr, last
	return next
}

// union returns the members of a and b, ascending, once each.
func union(a, b []int32) []int32 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// eligible reports whether replica id of p may lead it cleanly (Kafka's
// isValidNewLeader): it is active and in the ISR, or in the ELR while
// the ISR is empty.
func (c *Controller) eligible(img metadata.Image, p metadata.Partition, id int32) bool {
	inISR := slices.Contains(p.ISR, id) || len(p.ISR) == 0 && slices.Contains(p.ELR, id)
	return inISR && c.active(img, id)
}

// takeLeaderFromELR returns p, whose leader an election set, with the
// ISR reduced to that leader and the leader out of the ELR when it was
// elected from the ELR (Kafka's tryElection): it has every acknowledged
// record, and the others of the ELR still may.
func takeLeaderFromELR(old, p metadata.Partition) metadata.Partition {
	if p.Leader == metadata.NoLeader || p.Leader == old.Leader || !slices.Contains(p.ELR, p.Leader) {
		return p
	}
	p.ISR = []int32{p.Leader}
	p.ELR = slices.DeleteFunc(slices.Clone(p.ELR), func(r int32) bool { return r == p.Leader })
	if len(p.ELR) == 0 {
		p.ELR = nil
	}
	return p
}
