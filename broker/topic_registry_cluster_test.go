package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringbroker/ringbroker/storage"
)

// A clustered node holds logs only for its own replicas; the table keeps the
// rest as remote across a restart, and a found directory of a remote
// partition is set aside, not opened or deleted.
func TestSyncTopicRemotePartitions(t *testing.T) {
	dir := t.TempDir()
	id := [16]byte{1, 2, 3}
	r := openTestRegistry(t, dir)
	if err := r.SyncTopic("orders", id, []bool{true, false, true}, map[string]string{"retention.ms": "1000"}); err != nil {
		t.Fatal(err)
	}
	check := func(r *Registry, n int, local ...int32) {
		t.Helper()
		tp := r.Topic("orders")
		if tp == nil || tp.ID != id || len(tp.Partitions) != n {
			t.Fatalf("topic %+v, want %d partitions", tp, n)
		}
		want := map[int32]bool{}
		for _, i := range local {
			want[i] = true
		}
		for i := int32(0); i < int32(n); i++ {
			if got := r.Partition("orders", i) != nil; got != want[i] {
				t.Errorf("partition %d local=%v, want %v", i, got, want[i])
			}
			_, err := os.Stat(filepath.Join(dir, partitionDirName("orders", i)))
			if (err == nil) != want[i] {
				t.Errorf("partition %d directory exists=%v, want %v", i, err == nil, want[i])
			}
		}
	}
	check(r, 3, 0, 2)
	// Unchanged sync: nothing to do. Growth and a partition becoming local.
	if err := r.SyncTopic("orders", id, []bool{true, false, true}, map[string]string{"retention.ms": "1000"}); err != nil {
		t.Fatal(err)
	}
	if err := r.SyncTopic("orders", id, []bool{true, true, true, false}, map[string]string{"retention.ms": "2000"}); err != nil {
		t.Fatal(err)
	}
	check(r, 4, 0, 1, 2)
	if got := r.Topic("orders").ConfigOverrides()["retention.ms"]; got != "2000" {
		t.Errorf("retention.ms %q", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openTestRegistry(t, dir)
	check(r, 4, 0, 1, 2)
	// Another id under the same name is refused and keeps the logs.
	if err := r.SyncTopic("orders", [16]byte{9}, []bool{true}, nil); err == nil {
		t.Fatal("a different topic id was accepted")
	}
	check(r, 4, 0, 1, 2)
	// RemoveTopic with another id does nothing; with the id it deletes.
	if err := r.RemoveTopic("orders", [16]byte{9}); err != nil || r.Topic("orders") == nil {
		t.Fatalf("RemoveTopic of another id: %v", err)
	}
	if err := r.RemoveTopic("orders", id); err != nil || r.Topic("orders") != nil {
		t.Fatalf("RemoveTopic: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// A directory for a partition the table says is remote is a stray: set
// aside at the start, never opened as the partition nor deleted.
func TestRemotePartitionDirectoryIsSetAside(t *testing.T) {
	dir := t.TempDir()
	id := [16]byte{7}
	r := openTestRegistry(t, dir)
	if err := r.SyncTopic("t", id, []bool{true, false}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, partitionDirName("t", 1))
	if err := os.MkdirAll(stray, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stray, "keep.me"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = openTestRegistry(t, dir)
	defer r.Close()
	if r.Partition("t", 1) != nil {
		t.Fatal("remote partition opened from a stray directory")
	}
	entries, _ := os.ReadDir(dir)
	kept := false
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "keep.me")); err == nil {
			kept = true
		}
	}
	if !kept {
		t.Fatal("the stray directory's data is gone")
	}
}

// The metadata quorum's log directory is not a topic: the start neither
// adopts it nor sets it aside.
func TestClusterMetadataDirIsNotAStray(t *testing.T) {
	dir := t.TempDir()
	meta := filepath.Join(dir, "__cluster_metadata-0")
	if err := os.MkdirAll(meta, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(meta, "quorum-state"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := openTestRegistry(t, dir)
	defer r.Close()
	if r.Topic("__cluster_metadata") != nil {
		t.Fatal("the metadata log was adopted as a topic")
	}
	if _, err := os.Stat(filepath.Join(meta, "quorum-state")); err != nil {
		t.Fatalf("the metadata log was moved: %v", err)
	}
}

// A replica the metadata takes off this node: live (a delta) its directory
// is deleted once the table says remote, on a full image (the first after a
// start) it is set aside as -stray with every file kept; another topic id
// removes nothing, and a restart recreates neither.
func TestRemoveReplicas(t *testing.T) {
	dir := t.TempDir()
	id := [16]byte{4, 2}
	r := openTestRegistry(t, dir)
	if err := r.SyncTopic("moved", id, []bool{true, true, true}, nil); err != nil {
		t.Fatal(err)
	}
	exists := func(i int32) bool {
		_, err := os.Stat(filepath.Join(dir, partitionDirName("moved", i)))
		return err == nil
	}
	suffixed := func(suffix string) []string {
		var out []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), suffix) {
				out = append(out, e.Name())
			}
		}
		return out
	}
	if err := r.RemoveReplicas("moved", [16]byte{9}, []int32{1}, false); err != nil || r.Partition("moved", 1) == nil || !exists(1) {
		t.Fatalf("RemoveReplicas of another topic id removed something (err %v)", err)
	}
	if err := r.RemoveReplicas("moved", id, []int32{1}, false); err != nil {
		t.Fatal(err)
	}
	if r.Partition("moved", 1) != nil || exists(1) {
		t.Fatal("partition 1 still local or its directory still there")
	}
	if d := suffixed(storage.DeleteSuffix); len(d) != 0 {
		t.Fatalf("left behind: %v", d)
	}
	if r.Partition("moved", 0) == nil || r.Partition("moved", 2) == nil || len(r.Topic("moved").Partitions) != 3 {
		t.Fatal("the other partitions changed")
	}
	// A partition not local here is nothing to remove.
	if err := r.RemoveReplicas("moved", id, []int32{1, 7}, false); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openTestRegistry(t, dir)
	if r.Partition("moved", 1) != nil || exists(1) || r.Partition("moved", 0) == nil {
		t.Fatal("the restart brought partition 1 back or lost partition 0")
	}
	// Set aside: renamed with its files.
	marker := filepath.Join(dir, partitionDirName("moved", 2), "keep.me")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveReplicas("moved", id, []int32{2}, true); err != nil {
		t.Fatal(err)
	}
	strays := suffixed(straySuffix)
	if len(strays) != 1 || exists(2) || r.Partition("moved", 2) != nil {
		t.Fatalf("partition 2 not set aside: strays %v", strays)
	}
	if _, err := os.Stat(filepath.Join(dir, strays[0], "keep.me")); err != nil {
		t.Fatalf("the stray lost its files: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openTestRegistry(t, dir)
	defer r.Close()
	if r.Partition("moved", 2) != nil || exists(2) || len(suffixed(straySuffix)) != 1 || r.Partition("moved", 0) == nil {
		t.Fatal("the restart changed the set-aside partition or lost partition 0")
	}
}
