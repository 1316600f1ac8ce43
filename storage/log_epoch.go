package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// A Log's leader-epoch cache (leader_epoch.go holds the rules and the file
// codec). Kafka's LeaderEpochFileCache as UnifiedLog drives it:
//
//   - Appends: before a group is written the writer assigns the group's
//     epoch at the group's first offset (Append stamps l.leaderEpoch into
//     every batch of a group; AppendReplica assigns each batch's own
//     epoch). A batch stamped -1 (a log written before it had a leader
//     epoch) assigns nothing. A change is written to the file (and made
//     durable) before the data, as in Kafka: the file never lacks the
//     epoch of a batch on disk, it can only hold an entry past the log end,
//     which truncateFromEnd at the next open drops. A failed write fails
//     the group, like a failed data write.
//   - Log start moves (DeleteRecords, retention): truncateFromStart.
//   - TruncateTo: truncateFromEnd, after the data is cut.
//   - Open: the file is read; a missing file (on a log holding batches) or
//     a corrupt one (reported through Warnf) is rebuilt from the
//     partitionLeaderEpoch of every batch; otherwise the batches recovery
//     scanned add the epochs above the file's latest (Kafka's
//     LogSegment.recover). Then truncateFromEnd(log end) and
//     truncateFromStart(log start), and the file is rewritten if any of
//     this changed it. A file that cannot be read (EIO, not bad content)
//     fails the open.
//
// Concurrency: the entries are guarded by l.mu (readers: EndOffsetForEpoch,
// LeaderEpochs). l.epochFileMu serializes changes that are written to the
// file: a changer takes it, changes the entries under l.mu, and writes a
// snapshot taken after its change, so the file's last write is the latest
// state. Lock order: l.swapMu, then l.epochFileMu, then l.mu.

// epochFilePath is the partition's leader-epoch-checkpoint.
func (l *Log) epochFilePath() string { return filepath.Join(l.dir, LeaderEpochCheckpointFile) }

// persistEpochs writes the current entries to the file. After a failure
// the file is marked stale (l.epochFileStale), so the next truncation of
// the cache writes it even when it changes nothing in memory.
// REQUIRES: l.epochFileMu held, l.mu not held.
func (l *Log) persistEpochs() error {
	l.mu.RLock()
	data := encodeLeaderEpochCheckpoint(l.epochs.entries)
	l.mu.RUnlock()
	if err := WriteFileAtomic(l.fs, l.epochFilePath(), data); err != nil {
		l.epochFileStale = true
		return fmt.Errorf("write %s: %w", l.epochFilePath(), err)
	}
	l.epochFileStale = false
	return nil
}

// assignEpoch records that epoch starts at startOffset (Kafka's
// maybeAssignEpochStartOffset), writing the file when that changes the
// cache; on a failed write the entries are put back as they were and the
// error returned (the caller fails the append). Nothing for epoch < 0.
// REQUIRES: writer goroutine (or the opener), l.mu not held.
func (l *Log) assignEpoch(epoch int32, startOffset int64) error {
	if epoch < 0 {
		return nil
	}
	l.mu.RLock()
	last, ok := l.epochs.latest()
	l.mu.RUnlock()
	if ok && last.Epoch == epoch && startOffset >= last.StartOffset {
		return nil // the common case: the current epoch continues
	}
	l.epochFileMu.Lock()
	defer l.epochFileMu.Unlock()
	l.mu.Lock()
	prev := l.epochs.clone()
	changed := l.epochs.assign(epoch, startOffset)
	l.mu.Unlock()
	if !changed {
		return nil
	}
	if err := l.persistEpochs(); err != nil {
		l.mu.Lock()
		l.epochs.entries = prev
		l.mu.Unlock()
		return err
	}
	return nil
}

// truncateEpochsFromStart moves the cache's start to the log start offset
// (after DeleteRecords or retention moved it) and writes the file if that
// changed it. REQUIRES: l.mu not held.
func (l *Log) truncateEpochsFromStart() error {
	l.epochFileMu.Lock()
	defer l.epochFileMu.Unlock()
	l.mu.Lock()
	changed := l.epochs.truncateFromStart(l.logStart)
	l.mu.Unlock()
	if !changed && !l.epochFileStale {
		return nil
	}
	return l.persistEpochs()
}

// truncateEpochsFromEnd drops the entries at or after end (the log end
// after TruncateTo) and writes the file if that changed it.
// REQUIRES: l.mu not held.
func (l *Log) truncateEpochsFromEnd(end int64) error {
	l.epochFileMu.Lock()
	defer l.epochFileMu.Unlock()
	l.mu.Lock()
	changed := l.epochs.truncateFromEnd(end)
	l.mu.Unlock()
	if !changed && !l.epochFileStale {
		return nil
	}
	return l.persistEpochs()
}

// loadEpochs loads the cache at open; see the comment at the top of this
// file. recoveredFrom is the base offset of the first segment load scanned
// (math.MaxInt64 when none). Runs before the writer goroutine exists.
func (l *Log) loadEpochs(recoveredFrom int64) error {
	path := l.epochFilePath()
	data, err := l.fs.ReadFile(path)
	var fromFile []EpochEntry
	rebuild := false
	switch {
	case os.IsNotExist(err):
		// A log without batches needs no file yet: the first epoch
		// assigned writes it.
		rebuild = l.nextOffset > l.segments[0].base
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	default:
		if fromFile, err = decodeLeaderEpochCheckpoint(data); err != nil {
			l.warnf("log %s: %v; rebuilding it from the log's batches", l.dir, err)
			rebuild = true
		}
	}
	l.epochs.entries = slices.Clone(fromFile)
	scanFrom := recoveredFrom
	if rebuild {
		l.epochs.entries = nil
		scanFrom = l.segments[0].base
	}
	l.scanEpochs(scanFrom)
	l.epochs.truncateFromEnd(l.nextOffset)
	l.epochs.truncateFromStart(l.logStart)
	if !rebuild && slices.Equal(fromFile, l.epochs.entries) {
		return nil
	}
	if data == nil && len(l.epochs.entries) > 0 {
		l.logf("log %s: %s missing: rebuilt %d entries from the log's batches", l.dir, LeaderEpochCheckpointFile, len(l.epochs.entries))
	}
	if data == nil && len(l.epochs.entries) == 0 {
		// No file, and a log whose batches carry no epoch: nothing to
		// write (the next open scans its headers again).
		return nil
	}
	if err := WriteFileAtomic(l.fs, path, encodeLeaderEpochCheckpoint(l.epochs.entries)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// scanEpochs reads the batch headers of every segment holding offsets at or
// after from and assigns each batch's epoch when it is above the latest
// (Kafka's recovery rule). Headers only: recovery already checked the
// batches it scanned, and for a rebuild the headers are what the cache
// summarises. REQUIRES: the opener.
func (l *Log) scanEpochs(from int64) {
	h := new([batchHeaderSize]byte)
	for i, s := range l.segments {
		if i+1 < len(l.segments) && l.segments[i+1].base <= from {
			continue
		}
		size := s.size.Load()
		for pos := int64(0); ; {
			bi, ok := s.readHeader(pos, size, h)
			if !ok {
				break
			}
			if last, ok := l.epochs.latest(); bi.leaderEpoch >= 0 && (!ok || bi.leaderEpoch > last.Epoch) {
				l.epochs.assign(bi.leaderEpoch, bi.baseOffset)
			}
			pos += int64(bi.length)
		}
	}
}

// EndOffsetForEpoch answers what Kafka's leader-epoch cache answers
// (endOffsetFor): the largest epoch <= epoch this log holds and where it
// ends, the log end offset for the latest epoch, or (UndefinedEpoch,
// UndefinedEpochOffset). See epochCache.endOffsetFor for every case.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.endOffsetFor(epoch, l.active().next)
}

// EndOffsetForEpochAsLeader is EndOffsetForEpoch on the cache of a leader
// in epoch leaderEpoch: Kafka's leader assigns its epoch at the log end
// offset when it becomes leader (Partition.makeLeader), before it writes
// anything, so a follower of an older epoch learns where that epoch ended
// even when the new leader has not appended yet. Here the entry is not
// written at election (SetLeaderEpoch does no I/O); it is counted as if it
// were, and written with the epoch's first batch.
func (l *Log) EndOffsetForEpochAsLeader(epoch, leaderEpoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	leo := l.active().next
	if last, ok := l.epochs.latest(); leaderEpoch < 0 || ok && leaderEpoch <= last.Epoch {
		return l.epochs.endOffsetFor(epoch, leo)
	}
	view := epochCache{entries: l.epochs.clone()}
	view.assign(leaderEpoch, leo)
	return view.endOffsetFor(epoch, leo)
}

// LeaderEpochs returns a copy of the cache's entries, oldest first.
func (l *Log) LeaderEpochs() []EpochEntry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.clone()
}

// LatestEpoch is the epoch of the cache's last entry; ok is false when the
// cache is empty.
func (l *Log) LatestEpoch() (epoch int32, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.epochs.latest()
	return e.Epoch, ok
}
