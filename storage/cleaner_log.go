package storage

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/ringbroker/ringbroker/internal/codec"
	"github.com/ringbroker/ringbroker/proto"
)

// One cleaning round of one log (Kafka's Cleaner.doClean):
//
//  1. Under the log lock, a snapshot: the segments with their sizes and
//     next offsets, the log start, the high watermark, the settings, and
//     the first dirty offset (where the last round stopped, kept in
//     cleaner-offset-checkpoint). The first uncleanable offset is the
//     active segment's base (never cleaned), the high watermark, or the
//     base of the first segment holding records younger than
//     min.compaction.lag.ms, the recovery point, or the last stable
//     offset (cleaner_txn.go), whichever is lowest.
//     (Not past the recovery point: a record there may vanish in a power
//     loss, and with it the only value of a key whose older records it
//     made the cleaner remove below. Kafka flushes rolled segments before
//     its cleaner reaches them in practice; here it is a rule.) Segments below the
//     active one never change, so the rest of the round reads them
//     without the lock.
//  2. The key map: every keyed record from the first dirty offset on, up
//     to the first uncleanable offset or until the map is full (then the
//     round ends at the last whole batch mapped: its end offset; the rest
//     waits for the next round).
//  3. The last batch of each producer id over the whole log (the map's
//     scan sees the dirty part, batch headers are read for the rest), for
//     the producers still active: a producer whose last batch is older
//     than producer.id.expiration.ms no longer pins it (producerTails).
//  4. The segments below the end offset, from the log start, in groups of
//     at most segment.bytes (and segment.index.bytes of index, and 2³¹
//     offsets): each group is rewritten through cleanRules.filter into one
//     new segment named after the group's first, which replaces the group
//     (cleaner_swap.go).
//  5. The first dirty offset becomes the end offset.
//
// I/O happens without the log lock; each read and write of the cleaner
// goes through its throttle (log.cleaner.io.max.bytes.per.second).

// errCleanAborted: the log is closing (or its group changed); the round
// stopped and left nothing behind.
var errCleanAborted = errors.New("log cleaning aborted")

// segSnap is what a round knows of one segment.
type segSnap struct {
	s        *segment
	base     int64
	next     int64
	size     int64
	maxTs    int64
	idxBytes int64 // both indexes' used bytes, for grouping
}

// cleanable is one log's state as the cleaner judges it.
type cleanable struct {
	segs                    []segSnap // active last
	logStart, hw            int64
	recoveryPoint           int64 // offsets below it are durable
	firstDirty, uncleanable int64
	// aborted: the aborted transactions overlapping [log start,
	// uncleanable), from the transaction indexes (cleaner_txn.go).
	aborted                []AbortedTxn
	cleanBytes, dirtyBytes int64
	cfg                    Config
}

// ratio is the dirty ratio (Kafka's cleanableRatio).
func (c *cleanable) ratio() float64 {
	if c.cleanBytes+c.dirtyBytes == 0 {
		return 0
	}
	return float64(c.dirtyBytes) / float64(c.cleanBytes+c.dirtyBytes)
}

// snapshotForClean returns l's cleanable state at nowMs, or ok=false when
// l is closing or not compacted. With pin, each segment of the snapshot
// gets a reference (released by c.unpin), so that retention or
// DeleteRecords dropping one meanwhile cannot close the descriptor a
// round is reading (a closed, perhaps reused, fd).
func (l *Log) snapshotForClean(nowMs int64, pin bool) (c cleanable, ok bool) {
	stable := l.stableOffsetBound() // before the lock: the broker's state takes its own, then ours
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closing || !l.cfg.Compact {
		return c, false
	}
	c.cfg = l.cfg
	c.logStart, c.hw = l.logStart, l.hw
	c.segs = make([]segSnap, len(l.segments))
	for i, s := range l.segments {
		if pin {
			s.acquire()
		}
		c.segs[i] = segSnap{s: s, base: s.base, next: s.next, size: s.size.Load(), maxTs: s.maxTs,
			idxBytes: s.idx.entries()*offsetEntrySize + s.tidx.entries()*timeEntrySize}
	}
	c.firstDirty = l.firstDirty
	if c.firstDirty < c.logStart || c.firstDirty > c.hw {
		c.firstDirty = c.logStart
	}
	c.recoveryPoint = l.recoveryPoint
	c.uncleanable = min(c.segs[len(c.segs)-1].base, c.hw, c.recoveryPoint, stable)
	if lag := c.cfg.MinCompactionLagMs; lag > 0 {
		for _, s := range c.segs[:len(c.segs)-1] {
			if s.next > c.firstDirty && s.maxTs > nowMs-lag {
				c.uncleanable = min(c.uncleanable, s.base)
				break
			}
		}
	}
	c.uncleanable = max(c.uncleanable, c.firstDirty)
	for i, s := range c.segs[:len(c.segs)-1] {
		end := c.segs[i+1].base
		switch {
		case end <= c.logStart:
		case end <= c.firstDirty:
			c.cleanBytes += s.size
		case s.base < c.uncleanable:
			c.dirtyBytes += s.size
		}
	}
	return c, true
}

// unpin releases the references snapshotForClean(..., true) took.
func (c *cleanable) unpin() {
	for _, s := range c.segs {
		s.s.release()
	}
}

// mustClean reports whether the first dirty record is older than
// max.compaction.lag.ms (Kafka's needCompactionNow): read from the header
// of the first dirty batch (one pread, no lock).
func (c *cleanable) mustClean(nowMs int64) bool {
	lag := c.cfg.MaxCompactionLagMs
	if c.dirtyBytes == 0 || lag <= 0 || lag == math.MaxInt64 {
		return false
	}
	for _, s := range c.segs[:len(c.segs)-1] {
		if s.next <= c.firstDirty || s.size == 0 {
			continue
		}
		pos, ok := s.s.findOffset(c.firstDirty, s.size)
		if !ok {
			return false
		}
		h := new([batchHeaderSize]byte)
		if _, err := (fileReader{s.s.fs, s.s.f}).ReadAt(h[:], pos); err != nil {
			return false
		}
		rb, err := proto.ParseRecordBatchHeader(h[:])
		if err != nil {
			return false
		}
		ts := rb.BaseTimestamp()
		if rb.Attributes()&attrDeleteHorizon != 0 || ts < 0 {
			ts = rb.MaxTimestamp()
		}
		return ts >= 0 && nowMs-ts > lag
	}
	return false
}

// segReader yields the whole batches of one segment in [from, end), front
// to back, reading a buffer at a time (grown for a batch larger than it).
type segReader struct {
	fs       FS
	f        *os.File
	pos      int64 // file position of buf[lo]
	end      int64
	buf      []byte
	lo, hi   int
	throttle func(n int64)
	abort    func() bool
}

func (r *segReader) reset(s *segment, from, end int64) {
	r.fs, r.f, r.pos, r.end, r.lo, r.hi = s.fs, s.f, from, end, 0, 0
}

// next returns the next batch and its file position; ok=false at the end.
// The batch aliases the reader's buffer until the next call. A batch that
// does not frame or fails its CRC is an error: the segment is below the
// active one and was checked when written or recovered, so this is damage
// and the round must stop, not clean around it.
func (r *segReader) next() (rb proto.RecordBatch, pos int64, ok bool, err error) {
	if r.pos >= r.end {
		return rb, 0, false, nil
	}
	need := batchHeaderSize
	for {
		if r.hi-r.lo >= need {
			if need == batchHeaderSize {
				bi, err := parseBatchHeader(r.buf[r.lo:r.hi])
				if err != nil {
					return rb, 0, false, fmt.Errorf("segment %s at %d: %w", r.f.Name(), r.pos, err)
				}
				if int64(bi.length) > r.end-r.pos {
					return rb, 0, false, fmt.Errorf("segment %s at %d: batch of %d bytes past the end (%d)", r.f.Name(), r.pos, bi.length, r.end)
				}
				if need = bi.length; r.hi-r.lo < need {
					continue
				}
			}
			b := r.buf[r.lo : r.lo+need]
			rb, _, err := proto.ParseRecordBatch(b)
			if err != nil || !rb.CheckCRC() {
				return rb, 0, false, fmt.Errorf("segment %s at %d: %w", r.f.Name(), r.pos, ErrCorruptBatch)
			}
			pos = r.pos
			r.lo += need
			r.pos += int64(need)
			return rb, pos, true, nil
		}
		if r.abort != nil && r.abort() {
			return rb, 0, false, errCleanAborted
		}
		// Refill: keep the unread bytes, read after them.
		n := copy(r.buf, r.buf[r.lo:r.hi])
		r.lo, r.hi = 0, n
		if need > len(r.buf) {
			nb := make([]byte, need)
			copy(nb, r.buf[:n])
			r.buf = nb
		}
		want := min(int64(len(r.buf)-n), r.end-r.pos-int64(n))
		if want <= 0 {
			return rb, 0, false, fmt.Errorf("segment %s at %d: %d bytes short of a whole batch", r.f.Name(), r.pos, need-n)
		}
		got, err := (fileReader{r.fs, r.f}).ReadAt(r.buf[n:n+int(want)], r.pos+int64(n))
		if err != nil && !(errors.Is(err, io.EOF) && got > 0) {
			return rb, 0, false, fmt.Errorf("reading segment %s: %w", r.f.Name(), err)
		}
		r.hi += got
		if r.throttle != nil {
			r.throttle(int64(got))
		}
	}
}

// buildKeyMap fills t.keys from the records of [c.firstDirty,
// c.uncleanable) and notes producers' last batches there. It returns the
// round's end offset: after the last batch wholly mapped.
func (t *cleanerThread) buildKeyMap(c *cleanable, lastOf producerTails) (int64, error) {
	t.keys.clear()
	mapped := c.firstDirty - 1
	txn := newTxnCleanState(abortedFrom(c.aborted, c.firstDirty))
	for _, s := range c.segs[:len(c.segs)-1] {
		if s.next <= c.firstDirty || s.size == 0 {
			continue
		}
		if s.base >= c.uncleanable {
			break
		}
		from := int64(0)
		if s.base < c.firstDirty {
			p, ok := s.s.findOffset(c.firstDirty, s.size)
			if !ok {
				continue
			}
			from = p
		}
		t.rd.reset(s.s, from, s.size)
		for {
			rb, _, ok, err := t.rd.next()
			if err != nil {
				return 0, err
			}
			if !ok || rb.BaseOffset() >= c.uncleanable {
				break
			}
			t.stats.mapBytes += int64(rb.Size())
			if rb.Control() {
				txn.controlBatch(rb)
			} else if !txn.dataBatch(rb) { // an aborted batch's keys are not the last values
				full, err := t.mapBatch(rb, c.firstDirty)
				if err != nil {
					return 0, err
				}
				if full {
					if mapped < c.firstDirty {
						return 0, fmt.Errorf("the key map (%d keys) cannot hold the keys of one batch (offset %d): raise log.cleaner.dedupe.buffer.size", t.keys.capacity(), rb.BaseOffset())
					}
					return mapped + 1, nil
				}
			}
			if pid := rb.ProducerID(); pid >= 0 {
				lastOf.note(pid, rb.LastOffset(), rb.MaxTimestamp(), rb.Control())
			}
			if rb.LastOffset() >= c.firstDirty {
				mapped = rb.LastOffset()
			}
		}
	}
	return mapped + 1, nil
}

// mapBatch puts rb's keyed records at or after from into the map; full
// when a key did not fit (the batch is then not wholly mapped).
func (t *cleanerThread) mapBatch(rb proto.RecordBatch, from int64) (bool, error) {
	raw := rb.Records()
	if cd := rb.Codec(); cd != codec.None {
		var err error
		if t.scratch.raw, err = codec.Decompress(cd, raw, t.scratch.raw[:0], codec.MaxDecompressedBytes); err != nil {
			return false, fmt.Errorf("batch at offset %d: decompressing records: %w", rb.BaseOffset(), err)
		}
		raw = t.scratch.raw
	}
	it := proto.NewRecordIter(raw, rb.RecordCount())
	var rec proto.Record
	base := rb.BaseOffset()
	for it.Next(&rec) {
		off := base + int64(rec.OffsetDelta)
		if rec.Key != nil && off >= from && !t.keys.put(rec.Key, off) {
			return true, nil
		}
	}
	if err := it.Err(); err != nil {
		return false, fmt.Errorf("batch at offset %d: %w", base, err)
	}
	return false, nil
}

// producerTail is what a round knows of one producer's last batches.
type producerTail struct {
	lastOffset int64 // last offset of its last batch below the recovery point
	maxTs      int64 // that batch's max timestamp (Kafka's lastTimestamp)
	// lastData: last offset of its last data (not control) batch below the
	// recovery point, -1 none.
	lastData int64
	// recent: it has a batch at or past the recovery point (which a power
	// loss may take, leaving the one at lastOffset its last): active.
	recent bool
}

// producerTails maps producer ids to their last batches (Kafka's
// lastRecordsOfActiveProducers, read from the log): the batches at
// lastData and lastOffset stay, empty if need be, so the producer's
// sequence (its last data batch) and epoch (its last batch, which may be a
// transaction marker) survive for idempotence after a producer state is
// rebuilt from the log. An id is removed by expire once the producer is
// inactive. Difference from Kafka: Kafka keeps the batch at the producer
// state's last data offset, and a marker only when the producer has no
// data batch; here a last marker stays too (one more header).
type producerTails map[int64]producerTail

// note records a batch of producer pid ending at lastOffset; control: a
// transaction marker.
func (p producerTails) note(pid, lastOffset, maxTs int64, control bool) {
	e, ok := p[pid]
	if !ok {
		e = producerTail{lastOffset: -1, maxTs: -1, lastData: -1}
	}
	if lastOffset > e.lastOffset {
		e.lastOffset, e.maxTs = lastOffset, maxTs
	}
	if !control && lastOffset > e.lastData {
		e.lastData = lastOffset
	}
	p[pid] = e
}

// isLast: the batch of pid ending at lastOffset is its active producer's
// last batch or last data batch.
func (p producerTails) isLast(pid, lastOffset int64) bool {
	e, ok := p[pid]
	return ok && pid >= 0 && lastOffset >= 0 && (e.lastOffset == lastOffset || e.lastData == lastOffset)
}

// expire forgets the producers Kafka's ProducerStateManager would have
// expired by nowMs: no batch for producer.id.expiration.ms (by the max
// timestamp of its last batch, as Kafka's isProducerExpired) and no
// transaction open. An open transaction's batches are at or past the last
// stable offset, so past the round's end: a producer with one has no
// batch below it that expiry could unpin, or has a batch past the
// recovery point (recent). Their last batches go like any other once
// nothing in them is kept; the broker's producer state is not changed
// (it does not expire producers: produce_state.go).
func (p producerTails) expire(nowMs, expirationMs int64) {
	for pid, e := range p {
		if !e.recent && e.maxTs <= nowMs-expirationMs {
			delete(p, pid)
		}
	}
}

// producerTails notes the last batch of each producer id in the parts of
// the log the key map did not read: [log start, first dirty) and [end,
// recovery point), from batch headers only. (Not past the recovery point:
// a producer's later batch there may vanish in a power loss, and the
// batch the cleaner dropped for it would then have been its last.) The
// producers with a batch past the recovery point are marked recent.
func (t *cleanerThread) producerTails(c *cleanable, end int64, lastOf producerTails) {
	h := new([batchHeaderSize]byte)
	walk := func(s segSnap, from, to int64, recent bool) {
		pos := int64(0)
		if s.base < from {
			p, ok := s.s.findOffset(from, s.size)
			if !ok {
				return
			}
			pos = p
		}
		for {
			bi, ok := s.s.readHeader(pos, s.size, h)
			if !ok || bi.baseOffset >= to {
				return
			}
			rb, _ := proto.ParseRecordBatchHeader(h[:])
			if pid := rb.ProducerID(); pid >= 0 {
				if recent {
					e, ok := lastOf[pid]
					if !ok {
						e = producerTail{lastOffset: -1, maxTs: -1, lastData: -1} // no batch below the recovery point
					}
					e.recent = true
					lastOf[pid] = e
				} else {
					lastOf.note(pid, bi.lastOffset(), rb.MaxTimestamp(), rb.Control())
				}
			}
			pos += int64(bi.length)
		}
	}
	for i, s := range c.segs {
		segEnd := s.next
		if i+1 < len(c.segs) {
			segEnd = c.segs[i+1].base
		}
		if s.base < c.firstDirty && segEnd > c.logStart {
			walk(s, c.logStart, c.firstDirty, false)
		}
		if segEnd > end && s.base < c.recoveryPoint {
			walk(s, end, c.recoveryPoint, false)
		}
		if segEnd > c.recoveryPoint {
			walk(s, c.recoveryPoint, math.MaxInt64, true)
		}
	}
}

// groups splits the segments below end into the groups a round rewrites
// (Kafka's groupSegmentsBySize): consecutive segments of at most
// segment.bytes together, segment.index.bytes of each index, and a span of
// offsets that fits an int32. A group never ends with an empty segment
// (its replacement must end where the group did; cleaner_swap.go), so
// empty segments at a group's end are left alone.
func groups(c *cleanable, end int64) [][]segSnap {
	var cands []segSnap
	var succ []int64 // base of each candidate's successor
	for i, s := range c.segs[:len(c.segs)-1] {
		if s.base >= end {
			break
		}
		if c.segs[i+1].base <= c.logStart {
			continue // entirely below the log start: retention's
		}
		cands = append(cands, s)
		succ = append(succ, c.segs[i+1].base)
	}
	limit := func(i int) int64 { return succ[i] - 1 } // a bound on the last offset of cands[i]
	var out [][]segSnap
	for i := 0; i < len(cands); {
		g := []segSnap{cands[i]}
		size, idx := cands[i].size, cands[i].idxBytes
		j := i + 1
		for j < len(cands) && size+cands[j].size <= c.cfg.SegmentBytes &&
			idx+cands[j].idxBytes <= int64(c.cfg.IndexMaxBytes) &&
			(cands[j].size == 0 || limit(j)-g[0].base <= math.MaxInt32) {
			g = append(g, cands[j])
			size += cands[j].size
			idx += cands[j].idxBytes
			j++
		}
		i = j
		for len(g) > 0 && g[len(g)-1].size == 0 {
			g = g[:len(g)-1]
		}
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}
