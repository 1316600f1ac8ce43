package storage

import (
	"errors"
	"path/filepath"
)

// High-watermark checkpoint (Kafka's replication-offset-checkpoint).
//
// A replicated partition's high watermark is not something a log can
// derive from its own bytes: it is what the ISR held when the replication
// layer last moved it. Kafka keeps it in one file per log dir,
// replication-offset-checkpoint, in the offset checkpoint format
// (checkpoint.go: version 0, a count, "topic partition offset" lines,
// written to a temp file, fdatasync'd, renamed, dir fsync'd), rewritten
// every replica.high.watermark.checkpoint.interval.ms and at shutdown, and
// read at start so that a restarted leader or follower starts from the
// high watermark it had (Kafka: Partition.createLogIfNotExists with the
// checkpointed offset, clamped to the log by updateHighWatermark) instead
// of exposing its whole log, or none of it, to consumers.
//
// A Manager opened with ManagerOptions.Replicated reads the file at open
// and opens every log in replicated mode (hw.go) with its entry clamped to
// [log start, log end]; a partition without an entry starts at its log
// start, as Kafka's does (its followers' fetches move it up). Entries for
// partitions this run does not open are written back unchanged: an unknown
// entry is kept, never a reason to delete anything. DeleteLog drops the
// partition's entry (a topic created again under the name starts afresh).
// Without Replicated (a single node) the file is neither read nor written:
// the high watermark is the log end.

// ReplicationOffsetCheckpointFile is Kafka's high-watermark checkpoint
// file name in a log dir.
const ReplicationOffsetCheckpointFile = "replication-offset-checkpoint"

// CheckpointHighWatermarks writes replication-offset-checkpoint from the
// open logs' high watermarks over what the file held at open. Without
// ManagerOptions.Replicated it does nothing. Safe from any goroutine;
// concurrent calls are serialized.
func (m *Manager) CheckpointHighWatermarks() error {
	if !m.opts.Replicated || m.dirState.isOffline() {
		return nil // (an offline dir is left as it is: logdir_failure.go)
	}
	m.hwCkMu.Lock()
	defer m.hwCkMu.Unlock()
	m.mu.Lock()
	cp := m.highWatermarksLocked(m.logs)
	m.mu.Unlock()
	return m.writeHighWatermarks(cp)
}

// highWatermarksLocked merges logs' high watermarks over the entries
// kept so far and returns a copy to write. REQUIRES: m.mu held.
func (m *Manager) highWatermarksLocked(logs map[TopicPartition]*Log) map[TopicPartition]int64 {
	for tp, l := range logs {
		m.highWatermarks[tp] = l.HighWatermark()
	}
	cp := make(map[TopicPartition]int64, len(m.highWatermarks))
	for tp, o := range m.highWatermarks {
		cp[tp] = o
	}
	return cp
}

func (m *Manager) writeHighWatermarks(cp map[TopicPartition]int64) error {
	if err := WriteCheckpoint(m.opts.FS, filepath.Join(m.dir, ReplicationOffsetCheckpointFile), cp); err != nil {
		return errors.Join(errors.New("writing "+ReplicationOffsetCheckpointFile), err)
	}
	return nil
}

// restoredHighWatermark is the high watermark a log opened with
// Options.Replicated starts from: hw clamped to [logStart, end].
func restoredHighWatermark(hw, logStart, end int64) int64 {
	return min(max(hw, logStart), end)
}
