package group

// Transactional offsets (TxnOffsetCommit; Kafka's GroupMetadata
// pendingTransactionalOffsetCommits). A transactional producer's offsets
// are appended to __consumer_offsets as a transactional batch; once that
// append completed they are pending under the producer id, invisible to
// OffsetFetch, until the transaction's marker reaches the group's
// __consumer_offsets partition: a COMMIT marker makes them the group's
// committed offsets, an ABORT drops them. Load replays the same way (the
// broker feeds ApplyTxnOffset for records of transactional batches and
// CompleteTxnOffsets for markers, in log order).
//
// Kafka's finer rule (an offset committed non-transactionally after the
// transactional one was written wins over it when the marker comes, by
// log offset) is simplified here: the marker's offsets always win. The
// consume-transform-produce flow never commits the same partition both
// ways at once.

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CheckTxnCommit validates a TxnOffsetCommit to groupID; 0 means the
// offsets may be appended. As in Kafka, a commit with no member (generation
// -1 and no member id, what TxnOffsetCommit before v3 always sends) is not
// checked against the group; a member's (KIP-447) is fenced like an
// OffsetCommit.
func (c *Coordinator) CheckTxnCommit(now time.Time, groupID, memberID, instanceID string, gen int32) int16 {
	if groupID == "" {
		return kerr.InvalidGroupID.Code
	}
	g := c.groups[groupID]
	if gen < 0 && memberID == "" && instanceID == "" {
		switch {
		case g == nil && len(c.groups) >= c.cfg.MaxGroups:
			return kerr.CoordinatorNotAvailable.Code
		case g != nil && g.State == Dead:
			return kerr.CoordinatorNotAvailable.Code
		}
		return 0
	}
	return c.CheckCommit(now, groupID, memberID, instanceID, gen)
}

// ApplyTxnOffset records a transactional offset whose append completed:
// pending under producerID until CompleteTxnOffsets. Creates the group
// (Empty) if it does not exist.
func (c *Coordinator) ApplyTxnOffset(now time.Time, groupID string, producerID int64, tp TopicPartition, o Offset) {
	g := c.groups[groupID]
	if g == nil {
		g = c.newGroup(groupID, now)
	}
	if g.txnOffsets == nil {
		g.txnOffsets = map[int64]map[TopicPartition]Offset{}
	}
	m := g.txnOffsets[producerID]
	if m == nil {
		m = map[TopicPartition]Offset{}
		g.txnOffsets[producerID] = m
	}
	m[tp] = o
}

// CompleteTxnOffsets applies a transaction marker of producerID written to
// a __consumer_offsets partition: for every group inPartition reports as
// stored there (nil: every group), a commit moves the producer's pending
// offsets into the committed ones, an abort drops them. Returns the number
// of offsets committed or dropped.
func (c *Coordinator) CompleteTxnOffsets(producerID int64, commit bool, inPartition func(groupID string) bool) int {
	n := 0
	for id, g := range c.groups {
		m, ok := g.txnOffsets[producerID]
		if !ok || (inPartition != nil && !inPartition(id)) {
			continue
		}
		for tp, o := range m {
			if commit {
				g.offsets[tp] = o
			}
			n++
		}
		delete(g.txnOffsets, producerID)
		if len(g.txnOffsets) == 0 {
			g.txnOffsets = nil
		}
	}
	return n
}

// HasPendingTxnOffset reports whether a transaction holds an undecided
// offset of tp for groupID (OffsetFetch with require_stable answers
// UNSTABLE_OFFSET_COMMIT for it, KIP-447).
func (c *Coordinator) HasPendingTxnOffset(groupID string, tp TopicPartition) bool {
	g := c.groups[groupID]
	if g == nil {
		return false
	}
	for _, m := range g.txnOffsets {
		if _, ok := m[tp]; ok {
			return true
		}
	}
	return false
}

// LoadTxnOffset replays one record of a transactional batch of producerID
// read back from __consumer_offsets: an offset becomes pending, as
// ApplyTxnOffset; any other record is loaded as Load does (a transactional
// batch only ever holds offsets).
func (c *Coordinator) LoadTxnOffset(now time.Time, producerID int64, key, value []byte) error {
	if len(key) < 2 {
		return ErrBadRecord
	}
	if version := int16(key[0])<<8 | int16(key[1]); version != 0 && version != 1 {
		return c.Load(now, key, value)
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: offset key: %v", ErrBadRecord, err)
	}
	if value == nil {
		return nil // Kafka's TxnOffsetCommit never writes a tombstone
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return fmt.Errorf("%w: offset value: %v", ErrBadRecord, err)
	}
	le := int32(-1)
	if v.Version >= 3 {
		le = v.LeaderEpoch
	}
	c.ApplyTxnOffset(now, k.Group, producerID, TopicPartition{k.Topic, k.Partition},
		Offset{Offset: v.Offset, LeaderEpoch: le, Metadata: v.Metadata, CommitTimestamp: v.CommitTimestamp})
	return nil
}
