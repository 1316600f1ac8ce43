package controller

import (
	"cmp"
	"slices"

	"github.com/ringbroker/ringbroker/metadata"
)

// placer assigns replicas to new partitions: each topic's leaders spread
// evenly over the active brokers (as Kafka's placer does: a broker that
// joins does not take all of a new topic), ties going to the brokers with
// the fewest leaderships overall (so topics created one after another stay
// even), and each partition's
// replicas on as many racks as there are (Kafka's StripedReplicaPlacer
// goals, reached differently: Kafka starts at a random broker of a
// rack-alternating list; we start at the least-loaded broker so that
// tests are deterministic and repeated creates stay balanced).
type placer struct {
	// order is the active brokers, alternating racks: the first broker
	// of each rack (racks and brokers by name and id), then the second
	// of each, and so on.
	order []metadata.Broker
	// leaders and replicas count what each broker holds.
	leaders, replicas map[int32]int
	// topicLeaders counts the leaderships of the topic being placed
	// (forTopic).
	topicLeaders map[int32]int
}

// forTopic starts placing partitions of topic t (nil: a new topic): its
// existing leaderships count first.
func (pl *placer) forTopic(t *metadata.Topic) {
	pl.topicLeaders = map[int32]int{}
	if t == nil {
		return
	}
	for _, p := range t.Partitions {
		if len(p.Replicas) > 0 {
			pl.topicLeaders[p.Replicas[0]]++
		}
	}
}

// placerFor returns the batch's placer, built on first use: one per
// request, counting the replicas placed so far in it, rather than one
// per topic (which would read every partition of the image per topic).
func (c *Controller) placerFor(b *batch) *placer {
	if b.placer == nil {
		b.placer = c.newPlacer(b.image())
	}
	return b.placer
}

func (c *Controller) newPlacer(img metadata.Image) *placer {
	byRack := map[string][]metadata.Broker{}
	var racks []string
	for _, b := range img.Brokers() {
		if !c.active(img, b.ID) {
			continue
		}
		if _, ok := byRack[b.Rack]; !ok {
			racks = append(racks, b.Rack)
		}
		byRack[b.Rack] = append(byRack[b.Rack], b)
	}
	slices.Sort(racks)
	pl := &placer{leaders: map[int32]int{}, replicas: map[int32]int{}}
	for i := 0; len(pl.order) < len(img.Brokers()); i++ {
		added := false
		for _, r := range racks {
			if i < len(byRack[r]) {
				pl.order = append(pl.order, byRack[r][i])
				added = true
			}
		}
		if !added {
			break
		}
	}
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if len(p.Replicas) > 0 {
				pl.leaders[p.Replicas[0]]++
			}
			for _, r := range p.Replicas {
				pl.replicas[r]++
			}
		}
	}
	return pl
}

// place returns the replicas of one new partition, rf of them; the
// caller has checked rf <= len(order). The leader is the broker with the
// fewest (preferred) leaderships, ties to the earliest in order; the
// followers are the next brokers in order after it, brokers on racks the
// partition does not use yet first, fewest replicas first among those.
func (pl *placer) place(rf int) []int32 {
	n := len(pl.order)
	start := 0
	less := func(a, b int32) bool {
		if pl.topicLeaders[a] != pl.topicLeaders[b] {
			return pl.topicLeaders[a] < pl.topicLeaders[b]
		}
		return pl.leaders[a] < pl.leaders[b]
	}
	for i := 1; i < n; i++ {
		if less(pl.order[i].ID, pl.order[start].ID) {
			start = i
		}
	}
	out := []int32{pl.order[start].ID}
	racks := map[string]bool{pl.order[start].Rack: true}
	var rest []metadata.Broker
	for k := 1; k < n; k++ {
		rest = append(rest, pl.order[(start+k)%n])
	}
	// Stable: equal keys keep their order after the leader.
	slices.SortStableFunc(rest, func(a, b metadata.Broker) int { return cmp.Compare(pl.replicas[a.ID], pl.replicas[b.ID]) })
	for pass := 0; pass < 2 && len(out) < rf; pass++ {
		for _, b := range rest {
			if len(out) == rf {
				break
			}
			if slices.Contains(out, b.ID) || (pass == 0 && racks[b.Rack]) {
				continue
			}
			out = append(out, b.ID)
			racks[b.Rack] = true
		}
	}
	pl.leaders[out[0]]++
	if pl.topicLeaders != nil {
		pl.topicLeaders[out[0]]++
	}
	for _, r := range out {
		pl.replicas[r]++
	}
	return out
}
