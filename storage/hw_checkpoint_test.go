package storage

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHighWatermarkCheckpoint: a replicated Manager writes each open log's
// high watermark to replication-offset-checkpoint at Close (and on
// CheckpointHighWatermarks), keeps entries of partitions it did not open,
// and a reopened log starts in replicated mode from its entry, clamped to
// the log: consumers read up to it, not to the log end, and not less.
func TestHighWatermarkCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ReplicationOffsetCheckpointFile)
	// An entry for a partition this run never opens: kept, never acted on.
	if err := os.WriteFile(path, []byte("0\n1\nother 3 42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := OpenManager(dir, ManagerOptions{Defaults: testConfig(), Replicated: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.OpenLog("t", 0, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !l.Replicated() || l.HighWatermark() != 0 {
		t.Fatalf("new log: replicated %v hw %d, want replicated at 0", l.Replicated(), l.HighWatermark())
	}
	for i := 0; i < 5; i++ {
		syncAppend(t, l, makeBatch(2, 10, 1, byte(i))) // offsets 0-9
	}
	if got := l.SetHighWatermark(6); got != 6 {
		t.Fatalf("SetHighWatermark(6) = %d", got)
	}
	if err := m.CheckpointHighWatermarks(); err != nil {
		t.Fatal(err)
	}
	cp, err := ReadCheckpoint(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	if cp[TopicPartition{"t", 0}] != 6 || cp[TopicPartition{"other", 3}] != 42 || len(cp) != 2 {
		t.Fatalf("periodic checkpoint %v, want t-0=6 and other-3=42", cp)
	}
	l.SetHighWatermark(8)
	l2, err := m.OpenLog("t", 1, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	syncAppend(t, l2, makeBatch(3, 10, 1, 1))
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if cp, err = ReadCheckpoint(nil, path); err != nil {
		t.Fatal(err)
	}
	if cp[TopicPartition{"t", 0}] != 8 || cp[TopicPartition{"t", 1}] != 0 || cp[TopicPartition{"other", 3}] != 42 {
		t.Fatalf("shutdown checkpoint %v, want t-0=8 t-1=0 other-3=42", cp)
	}

	// Restart: the high watermark is the checkpointed one, not the log
	// end (10) nor the log start (0).
	m, err = OpenManager(dir, ManagerOptions{Defaults: testConfig(), Replicated: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err = m.OpenLog("t", 0, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !l.Replicated() || l.HighWatermark() != 8 || l.LogEndOffset() != 10 {
		t.Fatalf("reopened: replicated %v hw %d end %d, want replicated, hw 8, end 10", l.Replicated(), l.HighWatermark(), l.LogEndOffset())
	}
	bs := readAll(t, l, 0)
	if last := bs[len(bs)-1].info.lastOffset(); len(bs) != 4 || last != 7 {
		t.Fatalf("consumer read %d batches up to %d, want 4 up to offset 7 (below the high watermark)", len(bs), last)
	}
	if r, err := l.ReadReplica(8, 1<<20); err != nil || r.Len == 0 {
		t.Fatalf("replica read above the high watermark: %v len %d", err, r.Len)
	} else {
		r.Release()
	}
}

// TestHighWatermarkCheckpointClamped: an entry beyond the log end (the
// tail was lost in a crash) opens at the log end; one below the log start
// at the log start; no entry at the log start (Kafka's 0, clamped).
func TestHighWatermarkCheckpointClamped(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenManager(dir, ManagerOptions{Defaults: testConfig(), Replicated: true})
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		l, err := m.OpenLog("t", p, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			syncAppend(t, l, makeBatch(2, 10, 1, byte(i))) // offsets 0-5
		}
		l.SetHighWatermark(6)
	}
	m.Log("t", 1).SetHighWatermark(6)
	if _, err := m.Log("t", 1).DeleteRecords(4); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ReplicationOffsetCheckpointFile)
	if err := os.WriteFile(path, []byte("0\n2\nt 0 100\nt 1 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err = OpenManager(dir, ManagerOptions{Defaults: testConfig(), Replicated: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for p, want := range []int64{6, 4, 0} {
		l, err := m.OpenLog("t", int32(p), testConfig())
		if err != nil {
			t.Fatal(err)
		}
		if got := l.HighWatermark(); got != want {
			t.Fatalf("t-%d: hw %d, want %d (log start %d, end %d)", p, got, want, l.LogStartOffset(), l.LogEndOffset())
		}
	}
}

// TestHighWatermarkCheckpointLocal: a Manager without Replicated (a single
// node) neither reads nor writes the file and opens logs in local mode.
func TestHighWatermarkCheckpointLocal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ReplicationOffsetCheckpointFile)
	if err := os.WriteFile(path, []byte("0\n1\nt 0 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := OpenManager(dir, ManagerOptions{Defaults: testConfig()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.OpenLog("t", 0, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	syncAppend(t, l, makeBatch(3, 10, 1, 1))
	if l.Replicated() || l.HighWatermark() != 3 {
		t.Fatalf("local: replicated %v hw %d, want local at 3", l.Replicated(), l.HighWatermark())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "0\n1\nt 0 1\n" {
		t.Fatalf("file changed by a local manager: %q %v", data, err)
	}
}
