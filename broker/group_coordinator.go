package broker

// The group coordinator glue: owns the I/O-free group.Coordinator, its
// timer, and its persistence in the internal topic __consumer_offsets.
//
// Concurrency: coordinator.mu serialises every call into the state machine.
// It is held only for in-memory work and non-blocking storage.Append calls,
// never across I/O that waits, so ring threads may take it (JoinGroup,
// SyncGroup, Heartbeat, OffsetCommit handlers). Delayed JoinGroup/SyncGroup
// answers are sent from whoever completes the rebalance: a ring thread
// handling another member's request, or the timer (a clock.AfterFunc
// callback: its own goroutine on the wall clock, the Advance caller's on
// a manual one). Lock order: coordinator.mu, then the internalTopic's qmu; log
// callbacks take coordinator.mu with no other lock held.
//
// Persistence: every record for a group goes to partition
// group.PartitionFor(groupID, offsets.topic.num.partitions), appended under
// mu, so records of one key reach the log in the order the state machine
// produced them. An OffsetCommit is answered (and the offsets become
// visible to OffsetFetch) when its append is on the partition's ISR
// (coord_append.go: at once on a single node). The topic is created
// through the Registry on first use, off the ring thread: until it exists,
// persistence work queues (internal_topic.go) and a goroutine creates it and
// drains the queue in order. At start (New), an existing topic is read back
// with Log.Read regions + pread and replayed into the state machine (last
// value per key wins, tombstones delete); a record it cannot use is skipped
// and counted (load), never a reason to refuse the start. Clients cannot
// write to the topic (00_produce.go) or delete it (20_delete_topics.go).
//
// Differences from Apache Kafka: SyncGroup answers the leader before its
// group metadata record is durable (Kafka waits for the append); a failed
// metadata append is logged, not answered COORDINATOR_NOT_AVAILABLE. The
// record is still appended before any later record of the group.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

// offsetsTopic is Kafka's internal topic for group state.
const offsetsTopic = "__consumer_offsets"

// isInternalTopic reports whether name is one of Kafka's internal topics
// (Kafka's Topic.isInternal: group offsets, transaction state, share group
// state). Clients may not append to them, delete them or delete records
// from them; Metadata flags them internal. Only __consumer_offsets is ever
// created by this broker; the other two names are reserved as in Kafka.
func isInternalTopic(name string) bool {
	switch name {
	case offsetsTopic, "__transaction_state", "__share_group_state":
		return true
	}
	return false
}

// Defaults for the group Options when left zero.
const (
	defaultOffsetsTopicPartitions = 50
	defaultOffsetsRetention       = 7 * 24 * time.Hour
	// offsetsSweepInterval: how often offsets of deleted topics and expired
	// offsets are removed (Kafka: offsets.retention.check.interval.ms,
	// 10 min; shorter here so a deleted topic's offsets go promptly).
	offsetsSweepInterval = 5 * time.Second
)

type coordinator struct {
	b          *Broker
	log        *zap.Logger
	clock      clock.Clock
	partitions int32
	retention  time.Duration
	segBytes   int32 // offsets.topic.segment.bytes

	mu     sync.Mutex
	closed bool // set by close: timers stop and do nothing more
	g      *group.Coordinator
	timer  clock.Timer // fires at the state machine's next deadline
	armed  time.Time
	// sweep runs onSweep every offsetsSweepInterval while groups exist.
	sweep      clock.Timer
	sweepArmed bool

	// persist is __consumer_offsets, created on first use.
	persist internalTopic

	// Cluster only (coord_movement.go), guarded by mu: the
	// __consumer_offsets partitions whose groups are served here, those
	// being loaded or broken (not served), and a generation per partition
	// that a load in flight checks before it installs what it read.
	served  map[int32]bool
	loading map[int32]bool
	broken  map[int32]bool
	loadGen map[int32]uint64
}

func newCoordinator(b *Broker) *coordinator {
	o := &b.opts
	c := &coordinator{b: b, log: b.log.Named("group"), clock: b.clock, partitions: o.OffsetsTopicNumPartitions, retention: o.OffsetsRetention,
		served: map[int32]bool{}, loading: map[int32]bool{}, broken: map[int32]bool{}, loadGen: map[int32]uint64{}}
	c.persist = internalTopic{b: b, name: offsetsTopic, log: c.log,
		spec: func() (int32, int16, map[string]string) { return c.partitions, c.replicationFactor(), c.topicConfig() }}
	if c.partitions <= 0 {
		c.partitions = defaultOffsetsTopicPartitions
	}
	if c.retention <= 0 {
		c.retention = defaultOffsetsRetention
	}
	if c.segBytes = o.OffsetsTopicSegmentBytes; c.segBytes <= 0 {
		c.segBytes = defaultOffsetsTopicSegmentBytes
	}
	maxSession := o.GroupMaxSessionTimeout
	if maxSession <= 0 {
		maxSession = 30 * time.Minute
	}
	c.g = group.New(group.Config{
		InitialRebalanceDelay: o.GroupInitialRebalanceDelay,
		MinSessionTimeout:     o.GroupMinSessionTimeout,
		MaxSessionTimeout:     maxSession,
		MaxMembers:            o.GroupMaxSize,
		NewMemberID:           newMemberID,
		Persist:               c.persistLocked,
		// Kafka logs a member's failure at INFO; since_last_heartbeat tells
		// a client that stopped heartbeating from a broker that lost track.
		SessionExpired: func(groupID, memberID string, lastSeen time.Time, session time.Duration) {
			c.log.Info("member session expired", zap.String("group", groupID), zap.String("member", memberID),
				zap.Duration("since_last_heartbeat", clock.Since(c.clock, lastSeen)), zap.Duration("session_timeout", session))
		},
	})
	c.timer = c.clock.AfterFunc(time.Hour, c.onTimer)
	c.timer.Stop()
	c.sweep = c.clock.AfterFunc(offsetsSweepInterval, c.onSweep)
	c.sweep.Stop()
	return c
}

// newMemberID returns clientID-<uuid>, Kafka's member id format.
func newMemberID(clientID string) string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s-%s", clientID, h[0:8], h[8:12], h[12:16], h[16:20], h[20:])
}

// lock takes mu; unlock re-arms the timers for what the state machine now
// waits for, then releases it. Every entry point uses the pair.
func (c *coordinator) lock() { c.mu.Lock() }

func (c *coordinator) unlock() {
	if c.closed {
		c.mu.Unlock()
		return
	}
	next, ok := c.g.NextDeadline()
	switch {
	case !ok:
		if !c.armed.IsZero() {
			c.timer.Stop()
			c.armed = time.Time{}
		}
	case !next.Equal(c.armed):
		c.armed = next
		c.timer.Reset(max(clock.Until(c.clock, next), 0))
	}
	if c.g.NumGroups() > 0 && !c.sweepArmed {
		// Armed once, not pushed back by every call: a busy coordinator
		// must still sweep.
		c.sweepArmed = true
		c.sweep.Reset(offsetsSweepInterval)
	}
	c.mu.Unlock()
}

// close stops the coordinator's timers; a timer already firing finds it
// closed and does nothing. Called before the logs close, so no group work
// appends to (or logs about) a closed log.
func (c *coordinator) close() {
	c.mu.Lock()
	c.closed = true
	c.timer.Stop()
	c.sweep.Stop()
	c.mu.Unlock()
}

func (c *coordinator) onTimer() {
	c.lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.armed = time.Time{}
	c.g.Tick(c.clock.Now())
	c.unlock()
}

// onSweep removes offsets of deleted topics and expired offsets.
func (c *coordinator) onSweep() {
	reg := c.b.reg
	c.lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.sweepArmed = false
	c.g.ExpireOffsets(c.clock.Now(), c.retention, func(topic string, partition int32) bool {
		return reg == nil || reg.HasPartition(topic, partition)
	})
	c.unlock()
}

// persistLocked is group.Config.Persist: append one record for groupID.
// REQUIRES: mu held.
func (c *coordinator) persistLocked(groupID string, key, value []byte) {
	batch := appendRecordBatch(nil, c.clock.Now().UnixMilli(), [][2][]byte{{key, value}})
	part := group.PartitionFor(groupID, c.partitions)
	if c.b.opts.Cluster != nil && !c.served[part] {
		// A group left in memory by a request that raced the partition's
		// unload: its log is another leader's now (coord_movement.go).
		return
	}
	c.persist.with(func(t *Topic, _ bool) {
		p := partitionOf(t, part)
		if p == nil || c.b.coordRefuse(p) == kerr.NotLeaderForPartition.Code {
			return
		}
		if err := p.Log.Append(batch, storage.AppendFunc(func(r storage.AppendResult) {
			if r.Err != nil {
				c.log.Warn("group metadata append failed", zap.String("group", groupID), zap.Error(r.Err))
			}
		})); err != nil {
			c.log.Warn("group metadata append refused", zap.String("group", groupID), zap.Error(err))
		}
	})
}

func partitionOf(t *Topic, index int32) *Partition {
	t.regMu.RLock()
	defer t.regMu.RUnlock()
	if int(index) >= len(t.Partitions) || !t.Partitions[index].Local() {
		return nil
	}
	return t.Partitions[index]
}

// defaultOffsetsTopicSegmentBytes is Kafka's offsets.topic.segment.bytes.
const defaultOffsetsTopicSegmentBytes = 100 << 20

// topicConfig is the config __consumer_offsets is created with: compacted,
// with offsets.topic.segment.bytes segments (Kafka's
// GroupCoordinator.groupMetadataTopicConfigs).
func (c *coordinator) topicConfig() map[string]string {
	return map[string]string{"cleanup.policy": "compact", "segment.bytes": strconv.Itoa(int(c.segBytes))}
}

// replicationFactor is what __consumer_offsets is created with in a
// cluster: offsets.topic.replication.factor, or -1 (the controller's
// default) when unset. Kafka's offsets topic has no min.isr key of its
// own: min.insync.replicas' default (1) applies, as here.
func (c *coordinator) replicationFactor() int16 {
	if rf := c.b.opts.OffsetsTopicReplicationFactor; rf > 0 {
		return rf
	}
	return -1
}

// loadSkipLogMax: the first this many records skipped at load are logged
// one by one; the rest only count towards the summary line.
const loadSkipLogMax = 10

// load replays an existing __consumer_offsets into the state machine.
// Called from New, before serving. A record it cannot use (malformed, or
// not a group record) is skipped and counted, never a reason to refuse the
// start: one bad record would otherwise keep the broker down. The first
// loadSkipLogMax skips are logged with their place, then a summary.
//
// In a cluster nothing is read here: a partition's groups are loaded when
// the image makes this broker its leader (coord_movement.go), from the
// log as it then is.
func (c *coordinator) load() error {
	if c.b.reg == nil {
		return nil
	}
	t := c.b.reg.Topic(offsetsTopic)
	if t == nil {
		return nil
	}
	c.persist.topic.Store(t)
	if c.b.opts.Cluster != nil {
		return nil
	}
	now := c.clock.Now()
	records, skipped := 0, 0
	for _, p := range viewTopic(c.b.reg, t).partitions {
		if !p.Local() {
			continue
		}
		recs, skips, err := c.readPartition(p)
		skipped += skips
		if err != nil {
			return err
		}
		records += c.replayLocked(now, p.Index, recs)
	}
	c.g.FinishLoad(now)
	c.g.ExpireOffsets(now, c.retention, func(topic string, partition int32) bool {
		return c.b.reg.HasPartition(topic, partition)
	})
	fields := []zap.Field{zap.Int("records", records), zap.Int("skipped", skipped), zap.Int("groups", c.g.NumGroups())}
	if skipped > 0 {
		c.log.Warn("loaded groups from __consumer_offsets, skipping unusable records", fields...)
	} else {
		c.log.Info("loaded groups from __consumer_offsets", fields...)
	}
	c.lock()
	c.unlock()
	return nil
}

// offsetsRecord is one item of a __consumer_offsets partition read back:
// a group record, a transactional offset (producerID >= 0), or a marker.
type offsetsRecord struct {
	base       int64
	producerID int64 // -1: a plain record
	key, value []byte
	marker     bool // a transaction marker of producerID (commit says which)
	commit     bool
}

// readPartition reads p's records, from the log start up to the log end
// as Kafka loads (FetchIsolation.LOG_END: on a replicated leader the high
// watermark may be below it). The walk is bounded by the log end read
// once at its start. Records it cannot use are skipped (counted, the
// first loadSkipLogMax logged); an error is a read failing.
func (c *coordinator) readPartition(p *Partition) ([]offsetsRecord, int, error) {
	var out []offsetsRecord
	skipped := 0
	skip := func(offset int64, why error) {
		skipped++
		if skipped <= loadSkipLogMax {
			c.log.Warn("skipping unusable __consumer_offsets record at load", zap.Int32("partition", p.Index),
				zap.Int64("offset", offset), zap.Error(why))
		}
	}
	l := p.Log
	off, end := l.LogStartOffset(), l.LogEndOffset()
	for off < end {
		reg, err := l.ReadReplica(off, 1<<20)
		if err != nil {
			return nil, skipped, fmt.Errorf("reading %s-%d at %d: %w", offsetsTopic, p.Index, off, err)
		}
		if reg.Len == 0 {
			reg.Release()
			break
		}
		buf := make([]byte, reg.Len)
		_, err = reg.File.ReadAt(buf, reg.Pos)
		reg.Release()
		if err != nil {
			return nil, skipped, fmt.Errorf("reading %s-%d: %w", offsetsTopic, p.Index, err)
		}
		next, err := forEachOffsetsRecord(buf, func(base int64, key, value []byte) {
			out = append(out, offsetsRecord{base: base, producerID: -1, key: key, value: value})
		}, func(base, producerID int64, key, value []byte) {
			// TxnOffsetCommit (28_txn_offset_commit.go).
			out = append(out, offsetsRecord{base: base, producerID: producerID, key: key, value: value})
		}, func(producerID int64, commit bool) {
			out = append(out, offsetsRecord{producerID: producerID, marker: true, commit: commit})
		}, skip)
		if err != nil {
			// The log validated every batch it holds, so this is a
			// bug or damage below the log: keep what was read.
			c.log.Error("__consumer_offsets batch framing broken; rest of the partition not loaded",
				zap.Int32("partition", p.Index), zap.Int64("offset", max(next, off)), zap.Error(err))
		}
		if err != nil || next <= off {
			break
		}
		off = next
	}
	return out, skipped, nil
}

// replayLocked applies the records read from partition part to the state
// machine (last value per key wins, tombstones delete) and returns how
// many it used. REQUIRES: mu held, or the coordinator not yet serving.
func (c *coordinator) replayLocked(now time.Time, part int32, recs []offsetsRecord) int {
	records, skipped := 0, 0
	skip := func(offset int64, why error) {
		skipped++
		if skipped <= loadSkipLogMax {
			c.log.Warn("skipping unusable __consumer_offsets record at load", zap.Int32("partition", part),
				zap.Int64("offset", offset), zap.Error(why))
		}
	}
	for _, r := range recs {
		switch {
		case r.marker:
			// Only the groups stored in this partition: another
			// partition's pending offsets of the producer may belong to
			// a later transaction whose marker is there.
			c.g.CompleteTxnOffsets(r.producerID, r.commit, func(groupID string) bool {
				return group.PartitionFor(groupID, c.partitions) == part
			})
		case r.producerID >= 0:
			if err := c.g.LoadTxnOffset(now, r.producerID, r.key, r.value); err != nil {
				skip(r.base, err)
				continue
			}
			records++
		default:
			if err := c.g.Load(now, r.key, r.value); err != nil {
				skip(r.base, err)
				continue
			}
			records++
		}
	}
	return records
}

// appendRecordBatch appends one v2 batch holding records (key, value;
// value nil = tombstone) stamped ts, as Kafka's coordinator writes them:
// uncompressed, no producer id, every record at the batch's timestamp
// (delta 0), the partition leader epoch left for the log to stamp. Built
// with kmsg (a cold path: one batch per commit or group change).
func appendRecordBatch(dst []byte, ts int64, records [][2][]byte) []byte {
	var recs []byte
	for i, kv := range records {
		key := kv[0]
		if key == nil {
			key = []byte{} // keys are never null here: length 0, not -1
		}
		recs = proto.AppendRecord(recs, &kmsg.Record{OffsetDelta: int32(i), Key: key, Value: kv[1]})
	}
	return proto.AppendRecordBatch(dst, &kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, // the log stamps it
		LastOffsetDelta:      int32(len(records) - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(records)),
		Records:              recs,
	})
}

var errBadBatch = errors.New("malformed record batch in __consumer_offsets")

// Why a record of __consumer_offsets is skipped at load.
var (
	errNullKey         = errors.New("record with a null key")
	errBadRecord       = errors.New("malformed record")
	errCompressedBatch = errors.New("compressed batch (the coordinator never writes one)")
)

// forEachRecord calls f for each record of the whole batches in buf (with
// its batch's base offset) and returns the offset after the last batch. A
// batch whose records cannot be parsed (a null key, a record running past
// the batch) is skipped from that record on: skip is called once for it
// with its base offset and the reason, and the next batch is read. Only
// broken batch framing, which the log never hands out, stops the walk
// (errBadBatch, with the offset after the last whole batch). Control
// batches are skipped silently (Kafka's transaction markers); compressed
// ones are reported through skip (we never write them; only a client could
// have).
func forEachRecord(buf []byte, f func(base int64, key, value []byte), skip func(base int64, why error)) (int64, error) {
	next := int64(-1)
	for len(buf) >= proto.RecordBatchHeaderSize {
		rb, rest, err := proto.ParseRecordBatch(buf)
		if err != nil {
			return next, errBadBatch
		}
		buf = rest
		base := rb.BaseOffset()
		next = rb.LastOffset() + 1
		if rb.Control() {
			continue
		}
		if rb.Codec() != proto.CodecNone {
			skip(base, errCompressedBatch)
			continue
		}
		if err := batchRecords(rb, func(key, value []byte) { f(base, key, value) }); err != nil {
			skip(base, err)
		}
	}
	return next, nil
}

// batchRecords calls f for each record of one uncompressed batch rb, up to
// the first it cannot parse.
func batchRecords(rb proto.RecordBatch, f func(key, value []byte)) error {
	it := rb.RecordIter()
	var r proto.Record
	for it.Next(&r) {
		if r.Key == nil {
			return errNullKey
		}
		f(r.Key, r.Value)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%w: %v", errBadRecord, err)
	}
	return nil
}
