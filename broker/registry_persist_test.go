package broker

import (
	"errors"
	"math/rand"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/storage"
)

var flushEvery = map[string]string{"flush.messages": "1"}

// openFaultRegistry opens a registry whose every file operation and log
// write goes through f.
func openFaultRegistry(t *testing.T, f *storage.FaultIO, dirs []string) (*Registry, error) {
	t.Helper()
	return OpenRegistry(RegistryOptions{LogDirs: dirs, Logger: zaptest.NewLogger(t),
		FS: f, NewIO: f.NewIO})
}

// reopenAfterFault closes r and opens dirs again through f. With stopped
// (the machine stopped at the fault), every mutating operation fails from
// before the close on, and a power loss drawn from seed drops what was not
// synced before the new start.
func reopenAfterFault(t *testing.T, r *Registry, f *storage.FaultIO, dirs []string, stopped bool, seed int64) (*Registry, error) {
	t.Helper()
	if stopped {
		f.Inject(storage.Fault{Op: storage.OpMutating, Err: syscall.EIO})
	}
	r.Close()
	f.Clear()
	if stopped {
		if err := f.PowerLoss(rand.New(rand.NewSource(seed))); err != nil {
			t.Fatal(err)
		}
	}
	return openFaultRegistry(t, f, dirs)
}

// openFaultRegistryWithOld opens a registry on a fresh dir through a new
// FaultIO and gives it topic "old" with 2 partitions and 3 records.
func openFaultRegistryWithOld(t *testing.T) (*storage.FaultIO, string, *Registry) {
	t.Helper()
	f := storage.NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	dir := t.TempDir()
	r, err := openFaultRegistry(t, f, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateTopic("old", 2, flushEvery, false); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, r, "old", 3)
	return f, dir, r
}

// TestDeleteTopicNotDurableIsUndone: a DeleteTopic whose table write
// renamed the new table into place but could not fsync the directory
// reports failure, and the topic goes on taking records. The table must
// then say so: before the fix the next start read the renamed table (the
// newest generation) and deleted the topic with every record acknowledged
// after the failed delete.
func TestDeleteTopicNotDurableIsUndone(t *testing.T) {
	f, dir, r := openFaultRegistryWithOld(t)
	f.Inject(storage.Fault{Op: storage.OpSyncDir, Path: dir, Count: 1})
	if err := r.DeleteTopic("old"); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("delete: %v, want KAFKA_STORAGE_ERROR", err)
	}
	if r.Topic("old") == nil {
		t.Fatal("a delete reported failed dropped the topic")
	}
	appendRecords(t, r, "old", 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := openFaultRegistry(t, f, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Topic("old") == nil {
		t.Fatal("the start after a failed delete deleted the topic and its acknowledged records")
	}
	wantWatermarks(t, "after restart", highWatermarks(r, "old", 2), 5, 5)
}

// TestDeleteTopicUncertainStopsServing: when the table cannot be rewritten
// either, the disk may say deleted, so the topic is no longer served
// (nothing acknowledged to it can be lost), its logs stay, and the next
// start follows the table it finds.
func TestDeleteTopicUncertainStopsServing(t *testing.T) {
	f, dir, r := openFaultRegistryWithOld(t)
	in := f.Inject(storage.Fault{Op: storage.OpSyncDir, Path: dir})
	if err := r.DeleteTopic("old"); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("delete: %v, want KAFKA_STORAGE_ERROR", err)
	}
	if r.Topic("old") != nil {
		t.Fatal("a delete that may have been recorded left the topic served")
	}
	if in.Failed() < 2 {
		t.Fatalf("the table was not rewritten after the failure (%d failed dir syncs)", in.Failed())
	}
	for _, p := range []string{"old-0", "old-1"} {
		if _, err := f.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("%s removed although the deletion is uncertain: %v", p, err)
		}
	}
	f.Clear()
	r.Close()
}

// TestStartupUnreadablePartitionMetadataRefuses: an I/O error reading a
// partition.metadata is not a torn file: the directory might hold another
// topic id, and adopting it by its name alone could serve a deleted
// topic's records as this one's. The start is refused before it writes
// anything (before the fix it went on, identifying the dir by name), and
// succeeds once the file reads.
func TestStartupUnreadablePartitionMetadataRefuses(t *testing.T) {
	f, dir, r := openFaultRegistryWithOld(t)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, dir)
	f.Inject(storage.Fault{Op: storage.OpRead, Path: filepath.Join(dir, "old-1", partitionMetadataFile)})
	if r, err := openFaultRegistry(t, f, []string{dir}); err == nil {
		r.Close()
		t.Fatal("start with an unreadable partition.metadata succeeded")
	}
	if after := treeDigest(t, dir); after != before {
		t.Fatalf("the refused start changed the dir:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	f.Clear()
	r, err := openFaultRegistry(t, f, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wantWatermarks(t, "after the refused start", highWatermarks(r, "old", 2), 3, 3)
}
