package group

// Committed offsets. A commit is two steps because it is acknowledged only
// once its record is in __consumer_offsets: CheckCommit validates the
// committer against the group (generation fencing) before the append, and
// ApplyOffset makes the offset visible when the append completed. An
// OffsetFetch between the two still sees the previous offset, as in Kafka
// (which keeps such offsets "pending" until the append is done).

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is one committed offset.
type Offset struct {
	Offset          int64
	LeaderEpoch     int32 // -1 when unknown
	Metadata        string
	CommitTimestamp int64 // ms
}

// MaxOffsetMetadataBytes is offset.metadata.max.bytes (Kafka's default):
// longer metadata is answered OFFSET_METADATA_TOO_LARGE.
const MaxOffsetMetadataBytes = 4096

// CheckCommit validates an OffsetCommit from (memberID, instanceID, gen) to
// groupID; 0 means the offsets may be appended. A commit with generation < 0
// to a missing or Empty group is a "simple" (admin, non-member) commit and
// is allowed, as in Kafka. A valid member commit also counts as a heartbeat.
func (c *Coordinator) CheckCommit(now time.Time, groupID, memberID, instanceID string, gen int32) int16 {
	if groupID == "" {
		return kerr.InvalidGroupID.Code
	}
	g := c.groups[groupID]
	if g == nil {
		if gen < 0 {
			if len(c.groups) >= c.cfg.MaxGroups {
				return kerr.CoordinatorNotAvailable.Code
			}
			return 0
		}
		return kerr.IllegalGeneration.Code
	}
	switch {
	case g.State == Dead:
		return kerr.CoordinatorNotAvailable.Code
	case gen < 0 && memberID == "" && instanceID == "" && g.State == Empty:
		return 0
	case gen < 0 && memberID == "" && instanceID == "":
		// A non-member commit to a group that has members.
		return kerr.UnknownMemberID.Code
	}
	if code := g.checkMember(memberID, instanceID, gen); code != 0 {
		return code
	}
	if g.State == CompletingRebalance {
		// Kafka: the member must sync to learn its new assignment first.
		return kerr.RebalanceInProgress.Code
	}
	m := g.members[memberID]
	m.deadline = now.Add(m.SessionTimeout)
	c.schedule(g, now)
	return 0
}

// ApplyOffset records a committed offset whose append completed, creating
// the group (Empty) if it does not exist.
func (c *Coordinator) ApplyOffset(now time.Time, groupID string, tp TopicPartition, o Offset) {
	g := c.groups[groupID]
	if g == nil {
		g = c.newGroup(groupID, now)
	}
	g.offsets[tp] = o
}

// FetchOffset returns groupID's committed offset of tp.
func (c *Coordinator) FetchOffset(groupID string, tp TopicPartition) (Offset, bool) {
	g := c.groups[groupID]
	if g == nil {
		return Offset{}, false
	}
	o, ok := g.offsets[tp]
	return o, ok
}

// CommittedOffset is one entry of Offsets.
type CommittedOffset struct {
	TopicPartition
	Offset
}

// Offsets returns every committed offset of the group, sorted by topic and
// partition.
func (g *Group) Offsets() []CommittedOffset {
	out := make([]CommittedOffset, 0, len(g.offsets))
	for tp, o := range g.offsets {
		out = append(out, CommittedOffset{tp, o})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// DeleteGroup handles one group of DeleteGroups: only an Empty group can be
// deleted; its offsets and metadata are tombstoned through Persist.
func (c *Coordinator) DeleteGroup(groupID string) int16 {
	if groupID == "" {
		return kerr.InvalidGroupID.Code
	}
	g := c.groups[groupID]
	switch {
	case g == nil || g.State == Dead:
		return kerr.GroupIDNotFound.Code
	case g.State != Empty:
		return kerr.NonEmptyGroup.Code
	}
	c.removeGroup(g)
	return 0
}

func (c *Coordinator) removeGroup(g *Group) {
	for _, co := range g.Offsets() {
		c.persist(g.ID, OffsetKey(g.ID, co.TopicPartition), nil)
	}
	c.persist(g.ID, GroupKey(g.ID), nil)
	g.setState(Dead, time.UnixMilli(g.StateTimestamp))
	if g.heapIndex >= 0 {
		heapRemove(&c.timers, g)
	}
	delete(c.groups, g.ID)
}

// DeleteOffsets handles OffsetDelete: the group-level code and one code per
// partition. Offsets of topics the group's consumers subscribe to cannot be
// deleted while it has members (GROUP_SUBSCRIBED_TO_TOPIC).
func (c *Coordinator) DeleteOffsets(groupID string, tps []TopicPartition) (int16, []int16) {
	if groupID == "" {
		return kerr.InvalidGroupID.Code, nil
	}
	g := c.groups[groupID]
	if g == nil || g.State == Dead {
		return kerr.GroupIDNotFound.Code, nil
	}
	var subscribed map[string]bool
	if g.State != Empty {
		if g.ProtocolType != "consumer" {
			return kerr.NonEmptyGroup.Code, nil
		}
		subscribed = g.subscribedTopics()
	}
	codes := make([]int16, len(tps))
	for i, tp := range tps {
		if subscribed[tp.Topic] {
			codes[i] = kerr.GroupSubscribedToTopic.Code
			continue
		}
		if _, ok := g.offsets[tp]; ok {
			delete(g.offsets, tp)
			c.persist(g.ID, OffsetKey(g.ID, tp), nil)
		}
	}
	return 0, codes
}

// subscribedTopics parses the members' consumer-protocol metadata
// (ConsumerMemberMetadata) of the selected protocol.
func (g *Group) subscribedTopics() map[string]bool {
	out := map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.Metadata(g.Protocol)); err != nil {
			continue
		}
		for _, t := range md.Topics {
			out[t] = true
		}
	}
	return out
}

// ExpireOffsets removes offsets of partitions that no longer exist (deleted
// topics; exists reports whether a partition exists, nil skips the check),
// offsets of Empty groups committed longer than retention ago
// (offsets.retention.minutes, counted from the commit as Kafka < 2.1 did
// and as Kafka still does for groups without a state timestamp), and Empty
// groups left with no offsets. Tombstones go through Persist. Returns the
// number of offsets removed.
func (c *Coordinator) ExpireOffsets(now time.Time, retention time.Duration, exists func(topic string, partition int32) bool) int {
	removed := 0
	for _, g := range c.Groups() {
		for tp, o := range g.offsets {
			gone := exists != nil && !exists(tp.Topic, tp.Partition)
			old := retention > 0 && g.State == Empty && now.UnixMilli()-o.CommitTimestamp > retention.Milliseconds()
			if gone || old {
				delete(g.offsets, tp)
				c.persist(g.ID, OffsetKey(g.ID, tp), nil)
				removed++
			}
		}
		if g.State == Empty && len(g.offsets) == 0 && len(g.members) == 0 && len(g.pending) == 0 && len(g.txnOffsets) == 0 {
			c.removeGroup(g)
		}
	}
	return removed
}

func (c *Coordinator) persist(groupID string, key, value []byte) {
	if c.cfg.Persist != nil {
		c.cfg.Persist(groupID, key, value)
	}
}

// persistGroup writes g's metadata record.
func (c *Coordinator) persistGroup(g *Group) {
	c.persist(g.ID, GroupKey(g.ID), GroupValue(g))
}
