package group

// __consumer_offsets records, in Apache Kafka's key/value schemas (kmsg's
// generated types), so a Kafka tool reading the topic understands them:
//
//	offset commit   key   OffsetCommitKey   v1: group, topic, partition
//	                value OffsetCommitValue v3: offset, leader epoch, metadata, commit timestamp
//	group metadata  key   GroupMetadataKey  v2: group
//	                value GroupMetadataValue v3: protocol type, generation, protocol, leader,
//	                      state timestamp, members (id, instance id, client id/host,
//	                      timeouts, subscription, assignment)
//
// A nil value is a tombstone. The topic is compacted by key on load: records
// are applied in log order, so the last value of a key wins and a tombstone
// deletes it.

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetKey encodes the key of a committed offset record.
func OffsetKey(groupID string, tp TopicPartition) []byte {
	k := kmsg.OffsetCommitKey{Version: 1, Group: groupID, Topic: tp.Topic, Partition: tp.Partition}
	return k.AppendTo(nil)
}

// OffsetValue encodes a committed offset.
func OffsetValue(o Offset) []byte {
	v := kmsg.OffsetCommitValue{Version: 3, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata,
		CommitTimestamp: o.CommitTimestamp}
	return v.AppendTo(nil)
}

// GroupKey encodes the key of a group metadata record.
func GroupKey(groupID string) []byte {
	k := kmsg.GroupMetadataKey{Version: 2, Group: groupID}
	return k.AppendTo(nil)
}

// GroupValue encodes g's metadata.
func GroupValue(g *Group) []byte {
	v := kmsg.GroupMetadataValue{Version: 3, ProtocolType: g.ProtocolType, Generation: g.Generation,
		CurrentStateTimestamp: g.StateTimestamp}
	if g.Protocol != "" {
		p := g.Protocol
		v.Protocol = &p
	}
	if g.Leader != "" {
		l := g.Leader
		v.Leader = &l
	}
	for _, m := range g.Members() {
		mv := kmsg.GroupMetadataValueMember{MemberID: m.ID, ClientID: m.ClientID, ClientHost: m.ClientHost,
			RebalanceTimeoutMillis: int32(m.RebalanceTimeout.Milliseconds()),
			SessionTimeoutMillis:   int32(m.SessionTimeout.Milliseconds()),
			Subscription:           m.Metadata(g.Protocol), Assignment: m.Assignment}
		if m.InstanceID != "" {
			id := m.InstanceID
			mv.InstanceID = &id
		}
		v.Members = append(v.Members, mv)
	}
	return v.AppendTo(nil)
}

// ErrBadRecord is returned by Load for a record it cannot parse.
var ErrBadRecord = errors.New("group: unparsable __consumer_offsets record")

// Load applies one __consumer_offsets record read back at start, in log
// order. Unknown key versions (Kafka's transaction or future records) are
// ignored. After the last record call FinishLoad.
func (c *Coordinator) Load(now time.Time, key, value []byte) error {
	if len(key) < 2 {
		return ErrBadRecord
	}
	switch version := int16(key[0])<<8 | int16(key[1]); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("%w: offset key: %v", ErrBadRecord, err)
		}
		tp := TopicPartition{k.Topic, k.Partition}
		if value == nil {
			if g := c.groups[k.Group]; g != nil {
				delete(g.offsets, tp)
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("%w: offset value: %v", ErrBadRecord, err)
		}
		le := int32(-1)
		if v.Version >= 3 {
			le = v.LeaderEpoch
		}
		c.ApplyOffset(now, k.Group, tp, Offset{Offset: v.Offset, LeaderEpoch: le, Metadata: v.Metadata, CommitTimestamp: v.CommitTimestamp})
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("%w: group key: %v", ErrBadRecord, err)
		}
		g := c.groups[k.Group]
		if value == nil {
			if g != nil {
				if g.heapIndex >= 0 {
					heapRemove(&c.timers, g)
				}
				delete(c.groups, k.Group)
			}
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("%w: group value: %v", ErrBadRecord, err)
		}
		if g == nil {
			g = c.newGroup(k.Group, now)
		}
		g.ProtocolType, g.Generation, g.StateTimestamp = v.ProtocolType, v.Generation, v.CurrentStateTimestamp
		g.Protocol, g.Leader = deref(v.Protocol), deref(v.Leader)
		g.members, g.order, g.static = map[string]*Member{}, nil, map[string]string{}
		for _, mv := range v.Members {
			m := &Member{ID: mv.MemberID, InstanceID: deref(mv.InstanceID), ClientID: mv.ClientID, ClientHost: mv.ClientHost,
				SessionTimeout:   time.Duration(mv.SessionTimeoutMillis) * time.Millisecond,
				RebalanceTimeout: time.Duration(mv.RebalanceTimeoutMillis) * time.Millisecond,
				ProtocolType:     v.ProtocolType, Assignment: mv.Assignment,
				Protocols: []Protocol{{Name: g.Protocol, Metadata: mv.Subscription}}}
			if m.RebalanceTimeout <= 0 {
				m.RebalanceTimeout = m.SessionTimeout
			}
			g.members[m.ID] = m
			g.order = append(g.order, m.ID)
			if m.InstanceID != "" {
				g.static[m.InstanceID] = m.ID
			}
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// FinishLoad ends loading: groups with members resume Stable with fresh
// session deadlines from now (members that are gone expire after their
// session timeout, as after a Kafka coordinator failover); groups without
// members are Empty.
func (c *Coordinator) FinishLoad(now time.Time) { c.FinishLoadOf(now, nil) }

// FinishLoadOf is FinishLoad for the groups inPartition reports as loaded
// now (nil: every group): a coordinator that took over one
// __consumer_offsets partition leaves the groups it already served alone.
func (c *Coordinator) FinishLoadOf(now time.Time, inPartition func(groupID string) bool) {
	for id, g := range c.groups {
		if inPartition != nil && !inPartition(id) {
			continue
		}
		if len(g.members) == 0 {
			g.State = Empty
			g.Protocol, g.Leader = "", ""
			continue
		}
		g.State = Stable
		if g.members[g.Leader] == nil {
			g.Leader = g.order[0]
		}
		for _, m := range g.members {
			m.deadline = now.Add(m.SessionTimeout)
		}
		c.schedule(g, now)
	}
}

// PartitionFor returns the __consumer_offsets partition of groupID, as
// Kafka computes it: abs(Java String.hashCode(groupID)) % partitions.
func PartitionFor(groupID string, partitions int32) int32 {
	var h int32
	for _, r := range utf16Units(groupID) {
		h = 31*h + int32(r)
	}
	if h == -1<<31 {
		return 0 // Kafka's Utils.abs maps MIN_VALUE to 0
	}
	if h < 0 {
		h = -h
	}
	return h % partitions
}

// utf16Units returns s as Java's UTF-16 code units (hashCode's input).
func utf16Units(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

// Unload drops every group inPartition reports (its __consumer_offsets
// partition is no longer led here: Kafka's removeGroupsForPartition),
// without writing anything: the state stays in the log for the next
// coordinator. Members waiting on a join or sync are answered errCode
// (NOT_COORDINATOR), so their clients look the coordinator up again. It
// returns the number of groups dropped.
func (c *Coordinator) Unload(inPartition func(groupID string) bool, errCode int16) int {
	n := 0
	for id, g := range c.groups {
		if !inPartition(id) {
			continue
		}
		for _, m := range g.members {
			if r := m.joinReply; r != nil {
				m.joinReply = nil
				r(JoinResult{Err: errCode, MemberID: m.ID})
			}
			if r := m.syncReply; r != nil {
				m.syncReply = nil
				r(SyncResult{Err: errCode})
			}
		}
		if g.heapIndex >= 0 {
			heapRemove(&c.timers, g)
		}
		delete(c.groups, id)
		n++
	}
	return n
}
