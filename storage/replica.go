package storage

import (
	"errors"
	"fmt"

	"github.com/ringbroker/ringbroker/proto"
)

// ErrReplicaOffset: an AppendReplica's batches do not start at the log end
// offset (Kafka's UnexpectedAppendOffsetException), or do not follow one
// another. Nothing was written; the follower should look at its log end
// offset and fetch (or truncate) again.
var ErrReplicaOffset = errors.New("log: replica batches not at the log end offset")

// AppendReplica appends batches a leader sent, as a follower does (Kafka's
// appendAsFollower): at their own offsets, bytes kept identical — no
// baseOffset, partitionLeaderEpoch or timestamp is rewritten. The input is
// one or more whole v2 batches, validated here on the caller's goroutine
// (framing, magic, CRC32C: ErrInvalidBatch / ErrCorruptBatch) and checked
// for contiguity: each batch must start right after the previous one ends
// (on a compacted log, anywhere after it: cleaning leaves gaps). The first
// batch must start at the log end offset when the writer takes it (on a
// compacted log, at or after it); otherwise cb gets ErrReplicaOffset and
// nothing is written. That check runs on the writer, because the log end
// moves with the appends queued before this one.
//
// The batches go through the writer goroutine like Append's (same queue,
// backlog bound, write, flush policy and callback rules; see Append), but
// each AppendReplica is a group of its own. Before the write the epoch
// cache assigns each batch's partitionLeaderEpoch at its base offset (as
// Kafka's follower does; -1 assigns nothing), writing the file first when
// that adds an entry.
//
// Not done yet: the high watermark still follows the completed writes,
// as on a leader, so Read and HW waiters see everything replicated; a
// follower's high watermark set from the leader's (bounded by the log
// end) is left to the replica fetcher's change.
func (l *Log) AppendReplica(batches []byte, cb AppendCallback) error {
	first, last, records, err := checkReplicaBatches(batches, l.cfg.Compact)
	if err != nil {
		return err
	}
	r := getReq(len(batches))
	r.buf = append(r.buf[:0], batches...)
	r.cb, r.records, r.offsets = cb, records, last+1-first
	r.replicaBase = first
	return l.enqueueReq(r)
}

// checkReplicaBatches validates a follower's input: framing, magic and CRC
// of every batch, and offsets that follow one another (gapped allows a
// gap). It returns the first and last offsets and the record count.
func checkReplicaBatches(buf []byte, gapped bool) (first, last, records int64, err error) {
	if _, _, records, err = validateBatches(buf); err != nil {
		return 0, 0, 0, err
	}
	first, last = -1, -1
	for p := 0; p < len(buf); {
		bi, _ := parseBatchHeader(buf[p:])
		switch {
		case bi.baseOffset < 0:
			return 0, 0, 0, fmt.Errorf("%w: negative base offset %d", ErrInvalidBatch, bi.baseOffset)
		case first >= 0 && bi.baseOffset != last+1 && !(gapped && bi.baseOffset > last):
			return 0, 0, 0, fmt.Errorf("%w: batch at %d after a batch ending at %d", ErrReplicaOffset, bi.baseOffset, last)
		}
		if first < 0 {
			first = bi.baseOffset
		}
		last = bi.lastOffset()
		p += bi.length
	}
	return first, last, records, nil
}

// writeReplicaGroup writes a group made of one AppendReplica (see
// takeGroup): checks it starts at the log end, assigns its epochs, then
// writes it unchanged. REQUIRES: writer goroutine; l.mu not held.
func (l *Log) writeReplicaGroup(now int64) {
	r := l.group[0]
	next := l.nextOffset
	if r.replicaBase != next && !(l.cfg.Compact && r.replicaBase > next) {
		l.completeGroup(fmt.Errorf("%w: first batch at %d, log end offset %d", ErrReplicaOffset, r.replicaBase, next), false, 0, now)
		return
	}
	for p := 0; p < len(r.buf); {
		rb, rest, err := proto.ParseRecordBatch(r.buf[p:])
		if err != nil {
			break // validated on the way in
		}
		if err := l.assignEpoch(rb.PartitionLeaderEpoch(), rb.BaseOffset()); err != nil {
			l.completeGroup(err, false, 0, now)
			return
		}
		p = len(r.buf) - len(rest)
	}
	l.writeGroupAt(now, -1, true)
}
