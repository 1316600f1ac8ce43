package storage

import (
	"bytes"
	"fmt"
	"strconv"
)

// The leader-epoch cache (Kafka's LeaderEpochFileCache): for each leader
// epoch that wrote to this partition, the first offset written in it. A
// follower asks the leader "where does my last epoch end in your log?"
// (OffsetForLeaderEpoch, answered by EndOffsetForEpoch) and truncates its
// own log there (Log.TruncateTo), which is what replaces Kafka's old
// truncate-to-high-watermark and its lost-write bugs (KIP-101, KIP-279).
//
// This file holds the pure part: the entries and their rules, and the
// checkpoint file's codec. log_epoch.go ties it to a Log (when entries are
// added, when the file is written, how it is loaded and rebuilt).
//
// Invariant: entries are sorted, and both epoch and startOffset strictly
// increase from one entry to the next.

// EpochEntry is one leader epoch and the first offset written in it.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// UndefinedEpoch and UndefinedEpochOffset are Kafka's UNDEFINED_EPOCH and
// UNDEFINED_EPOCH_OFFSET: what EndOffsetForEpoch answers when it knows
// nothing about an epoch.
const (
	UndefinedEpoch       int32 = -1
	UndefinedEpochOffset int64 = -1
)

// epochCache is the list of entries; see the invariant above. Not safe
// for concurrent use: the Log guards it with l.mu.
type epochCache struct {
	entries []EpochEntry
}

// latest returns the last entry; ok is false when the cache is empty.
func (c *epochCache) latest() (e EpochEntry, ok bool) {
	if len(c.entries) == 0 {
		return EpochEntry{}, false
	}
	return c.entries[len(c.entries)-1], true
}

// assign records that epoch starts at startOffset, as Kafka's assign: a
// no-op when it is the latest epoch at the same or a later offset;
// otherwise every entry at the end whose epoch is >= epoch or whose start
// offset is >= startOffset is removed first (they would break the
// ordering: a leader that was elected but never wrote, or a lower epoch
// seen again after a truncation), then the entry is added. REQUIRES:
// epoch >= 0 and startOffset >= 0 (the caller filters batches stamped -1,
// the value of a log written before it had a leader epoch). Reports
// whether the cache changed.
func (c *epochCache) assign(epoch int32, startOffset int64) bool {
	if last, ok := c.latest(); ok && last.Epoch == epoch && startOffset >= last.StartOffset {
		return false
	}
	n := len(c.entries)
	for n > 0 && (c.entries[n-1].Epoch >= epoch || c.entries[n-1].StartOffset >= startOffset) {
		n--
	}
	c.entries = append(c.entries[:n], EpochEntry{epoch, startOffset})
	return true
}

// endOffsetFor is Kafka's endOffsetFor(requestedEpoch, logEndOffset):
//
//   - requested UndefinedEpoch: (UndefinedEpoch, UndefinedEpochOffset);
//   - the latest epoch: (epoch, logEndOffset), the epoch still being
//     written to;
//   - larger than every known epoch: undefined (cannot happen for the
//     leader, whose latest epoch is its current one);
//   - smaller than every known epoch: (requested, start offset of the
//     first epoch): the earlier epochs' data is gone from this log;
//   - otherwise the largest known epoch <= requested, ending where the
//     first larger epoch starts.
func (c *epochCache) endOffsetFor(requested int32, logEndOffset int64) (int32, int64) {
	if requested == UndefinedEpoch {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if last, ok := c.latest(); ok && last.Epoch == requested {
		return requested, logEndOffset
	}
	// higher: the first entry with an epoch > requested.
	higher := 0
	for higher < len(c.entries) && c.entries[higher].Epoch <= requested {
		higher++
	}
	if higher == len(c.entries) {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if higher == 0 {
		return requested, c.entries[0].StartOffset
	}
	return c.entries[higher-1].Epoch, c.entries[higher].StartOffset
}

// truncateFromEnd removes the entries starting at or after endOffset
// (the log was truncated to end there). Kafka's truncateFromEnd: nothing
// when endOffset is negative. Reports whether the cache changed.
func (c *epochCache) truncateFromEnd(endOffset int64) bool {
	if endOffset < 0 {
		return false
	}
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= endOffset {
		n--
	}
	changed := n < len(c.entries)
	c.entries = c.entries[:n]
	return changed
}

// truncateFromStart drops the entries that start at or before startOffset
// (the log start moved there: retention, DeleteRecords) and keeps the last
// of them, moved to start at startOffset: the epoch that was current at
// the new log start. Exclusive, as Kafka's: truncateFromStart(6) keeps an
// entry at 6 as it is. Reports whether the cache changed.
func (c *epochCache) truncateFromStart(startOffset int64) bool {
	n := 0
	for n < len(c.entries) && c.entries[n].StartOffset <= startOffset {
		n++
	}
	if n == 0 {
		return false
	}
	kept := EpochEntry{c.entries[n-1].Epoch, startOffset}
	if n == 1 && c.entries[0] == kept {
		return false
	}
	c.entries = append(c.entries[:0], append([]EpochEntry{kept}, c.entries[n:]...)...)
	return true
}

// clone returns a copy of the entries.
func (c *epochCache) clone() []EpochEntry {
	return append([]EpochEntry(nil), c.entries...)
}

// LeaderEpochCheckpointFile is the cache's file in the partition directory
// (Kafka's name and text format):
//
//	0          <- version
//	2          <- number of entries
//	0 0        <- epoch startOffset
//	3 1234
//
// Replaced whole with WriteFileAtomic (temp file, fsync, rename, directory
// fsync) whenever the cache changes, so a crash leaves the old content or
// the new.
const LeaderEpochCheckpointFile = "leader-epoch-checkpoint"

// encodeLeaderEpochCheckpoint renders entries in the file's format.
func encodeLeaderEpochCheckpoint(entries []EpochEntry) []byte {
	b := make([]byte, 0, 8+len(entries)*16)
	b = append(b, "0\n"...)
	b = strconv.AppendInt(b, int64(len(entries)), 10)
	b = append(b, '\n')
	for _, e := range entries {
		b = strconv.AppendInt(b, int64(e.Epoch), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.StartOffset, 10)
		b = append(b, '\n')
	}
	return b
}

// decodeLeaderEpochCheckpoint parses the file. It is strict: exactly what
// encodeLeaderEpochCheckpoint writes (and Kafka writes) is accepted —
// version 0, the count, then that many "epoch startOffset" lines of
// canonical decimals, each line ending in '\n', nothing after — and the
// entries must be non-negative and strictly increasing in both fields.
// Anything else is an error, and the caller rebuilds the cache from the
// log: the file only summarises the batches' partitionLeaderEpoch, so
// refusing a doubtful file costs a scan, never data.
func decodeLeaderEpochCheckpoint(data []byte) ([]EpochEntry, error) {
	lines := bytes.Split(data, []byte{'\n'})
	if len(lines) < 3 || len(lines[len(lines)-1]) != 0 {
		return nil, fmt.Errorf("%s: not newline-terminated lines", LeaderEpochCheckpointFile)
	}
	lines = lines[:len(lines)-1]
	if string(lines[0]) != "0" {
		return nil, fmt.Errorf("%s: unsupported version %q", LeaderEpochCheckpointFile, lines[0])
	}
	count, ok := parseCanonical(lines[1], 31)
	if !ok {
		return nil, fmt.Errorf("%s: bad entry count %q", LeaderEpochCheckpointFile, lines[1])
	}
	if count != int64(len(lines)-2) {
		return nil, fmt.Errorf("%s: %d entries announced, %d present", LeaderEpochCheckpointFile, count, len(lines)-2)
	}
	entries := make([]EpochEntry, 0, count)
	for i, line := range lines[2:] {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("%s:%d: malformed line %q", LeaderEpochCheckpointFile, i+3, line)
		}
		epoch, ok1 := parseCanonical(line[:sp], 31)
		offset, ok2 := parseCanonical(line[sp+1:], 63)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s:%d: malformed line %q", LeaderEpochCheckpointFile, i+3, line)
		}
		e := EpochEntry{int32(epoch), offset}
		if n := len(entries); n > 0 && (e.Epoch <= entries[n-1].Epoch || e.StartOffset <= entries[n-1].StartOffset) {
			return nil, fmt.Errorf("%s:%d: entry %d %d does not follow %d %d", LeaderEpochCheckpointFile, i+3,
				e.Epoch, e.StartOffset, entries[n-1].Epoch, entries[n-1].StartOffset)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// parseCanonical parses a non-negative decimal below 1<<bits written
// canonically (digits only, no leading zero but for "0").
func parseCanonical(b []byte, bits int) (int64, bool) {
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(b), 10, bits+1)
	return v, err == nil && v >= 0
}
