package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/internal/dirtree"
	"github.com/ringbroker/ringbroker/storage"
)

func openRegistryDirs(t *testing.T, dirs ...string) (*Registry, error) {
	t.Helper()
	return OpenRegistry(RegistryOptions{LogDirs: dirs, Logger: zaptest.NewLogger(t)})
}

func mustOpenRegistryDirs(t *testing.T, dirs ...string) *Registry {
	t.Helper()
	r, err := openRegistryDirs(t, dirs...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// appendRecords appends n one-record batches to every partition of topic
// and waits until they are written.
func appendRecords(t *testing.T, r *Registry, topic string, n int) {
	t.Helper()
	tp := r.Topic(topic)
	done := make(chan error, n*len(tp.Partitions))
	for _, p := range tp.Partitions {
		for i := 0; i < n; i++ {
			if err := p.Log.Append(testBatch([]byte(fmt.Sprintf("%s-%d-%d", topic, p.Index, i))), storage.AppendFunc(func(res storage.AppendResult) { done <- res.Err })); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < cap(done); i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// highWatermarks returns each partition's high watermark (-1: missing).
func highWatermarks(r *Registry, topic string, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = -1
		if p := r.Partition(topic, int32(i)); p != nil {
			out[i] = p.Log.HighWatermark()
		}
	}
	return out
}

func wantWatermarks(t *testing.T, what string, got []int64, want ...int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: high watermarks %v, want %v", what, got, want)
	}
}

// treeDigest is dirtree.Digest of roots: equal digests mean nothing was
// touched.
func treeDigest(t *testing.T, roots ...string) string {
	t.Helper()
	digest, err := dirtree.Digest(roots...)
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

// TestRegistryStartupFailureDeletesNothing: a partition that cannot be
// opened (a directory where its segment file should be) fails the start,
// and the topic's partitions that did open keep every record. (The old
// rollback removed them: the next start served them empty.)
func TestRegistryStartupFailureDeletesNothing(t *testing.T) {
	dir := t.TempDir()
	r := mustOpenRegistryDirs(t, dir)
	if _, err := r.CreateTopic("orders", 3, nil, false); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, r, "orders", 5)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "orders-1", "00000000000000000000.log")
	aside := filepath.Join(t.TempDir(), "segment")
	if err := os.Rename(seg, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(seg, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := openRegistryDirs(t, dir); err == nil {
		t.Fatal("start with an unopenable partition succeeded")
	} else if !strings.Contains(err.Error(), "orders") {
		t.Fatalf("error does not name the topic: %v", err)
	}
	for _, p := range []string{"orders-0", "orders-2"} {
		if _, err := os.Stat(filepath.Join(dir, p, "00000000000000000000.log")); err != nil {
			t.Fatalf("%s after the failed start: %v", p, err)
		}
	}
	// Fixed up, the next start serves every record.
	if err := os.Remove(seg); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, seg); err != nil {
		t.Fatal(err)
	}
	r = mustOpenRegistryDirs(t, dir)
	defer r.Close()
	wantWatermarks(t, "after the fixed-up start", highWatermarks(r, "orders", 3), 5, 5, 5)
}

// TestRegistryStartupSetsAsideUnknownDirs: partition-shaped directories
// no topic accounts for are renamed to -stray with their content, never
// deleted, and a topic created later under that name starts empty.
func TestRegistryStartupSetsAsideUnknownDirs(t *testing.T) {
	dir := t.TempDir()
	r := mustOpenRegistryDirs(t, dir)
	if _, err := r.CreateTopic("keep", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, r, "keep", 3)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	unknown := []string{"ghost-0", "backup-2024", "keep-7", "foo-0"}
	for _, d := range unknown {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, d, "00000000000000000000.log"), []byte("precious "+d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Not partition-shaped: left exactly as it is.
	if err := os.MkdirAll(filepath.Join(dir, "backup", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = mustOpenRegistryDirs(t, dir)
	wantWatermarks(t, "keep", highWatermarks(r, "keep", 1), 3)
	for _, d := range unknown {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("%s still under its partition name (%v)", d, err)
		}
		got, _ := filepath.Glob(filepath.Join(dir, d+".*"+straySuffix))
		if len(got) != 1 {
			t.Fatalf("%s: stray copies %v, want one", d, got)
		}
		data, err := os.ReadFile(filepath.Join(got[0], "00000000000000000000.log"))
		if err != nil || string(data) != "precious "+d {
			t.Fatalf("%s: content %q, %v", d, data, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "backup", "x")); err != nil {
		t.Fatal(err)
	}
	tp, err := r.CreateTopic("foo", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if hw := tp.Partitions[0].Log.HighWatermark(); hw != 0 {
		t.Fatalf("new topic foo adopted stray data: high watermark %d", hw)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// A start with nothing unknown renames nothing.
	before, _ := filepath.Glob(filepath.Join(dir, "*"))
	r = mustOpenRegistryDirs(t, dir)
	r.Close()
	after, _ := filepath.Glob(filepath.Join(dir, "*"))
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("second start changed the log dir:\n%v\n%v", before, after)
	}
}

// TestRegistryTableSurvivesReorderAndLoss: the topic table is in every log
// dir and each partition directory names its topic id, so swapping
// log.dirs, deleting the table, or replacing the first disk loses no
// partition that is still on disk.
func TestRegistryTableSurvivesReorderAndLoss(t *testing.T) {
	d0, d1 := t.TempDir(), t.TempDir()
	r := mustOpenRegistryDirs(t, d0, d1)
	if _, err := r.CreateTopic("orders", 4, map[string]string{"retention.ms": "3600000"}, false); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, r, "orders", 2)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{d0, d1} {
		if _, err := os.Stat(filepath.Join(d, metadataFile)); err != nil {
			t.Fatalf("topic table copy in %s: %v", d, err)
		}
	}

	t.Run("swapped", func(t *testing.T) {
		r := mustOpenRegistryDirs(t, d1, d0)
		wantWatermarks(t, "swapped log.dirs", highWatermarks(r, "orders", 4), 2, 2, 2, 2)
		appendRecords(t, r, "orders", 1)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		r = mustOpenRegistryDirs(t, d0, d1)
		defer r.Close()
		wantWatermarks(t, "swapped back", highWatermarks(r, "orders", 4), 3, 3, 3, 3)
	})

	t.Run("table deleted everywhere", func(t *testing.T) {
		for _, d := range []string{d0, d1} {
			if err := os.Remove(filepath.Join(d, metadataFile)); err != nil {
				t.Fatal(err)
			}
		}
		r := mustOpenRegistryDirs(t, d0, d1)
		wantWatermarks(t, "table deleted", highWatermarks(r, "orders", 4), 3, 3, 3, 3)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{d0, d1} {
			if _, err := os.Stat(filepath.Join(d, metadataFile)); err != nil {
				t.Fatalf("table not rewritten in %s: %v", d, err)
			}
		}
		// The overrides were only in the table (documented): set them
		// again for the next case.
		r = mustOpenRegistryDirs(t, d0, d1)
		defer r.Close()
		if c := r.Topic("orders").Configs; len(c) != 0 {
			t.Fatalf("recovered topic has configs %v", c)
		}
		if err := r.SetTopicConfigs("orders", map[string]string{"retention.ms": "3600000"}, false); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("first disk replaced", func(t *testing.T) {
		ents, _ := os.ReadDir(d0)
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(d0, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		r := mustOpenRegistryDirs(t, d0, d1)
		defer r.Close()
		// Partitions 0 and 2 lived on the replaced disk; 1 and 3 keep
		// their records.
		wantWatermarks(t, "first disk replaced", highWatermarks(r, "orders", 4), 0, 3, 0, 3)
		if r.Topic("orders").Configs["retention.ms"] != "3600000" {
			t.Fatalf("configs lost with the first disk: %v", r.Topic("orders").Configs)
		}
	})
}

// TestRegistryTableNewestCopyWins: the copies carry a generation and the
// start takes the newest, whichever dir holds it.
func TestRegistryTableNewestCopyWins(t *testing.T) {
	d0, d1 := t.TempDir(), t.TempDir()
	r := mustOpenRegistryDirs(t, d0, d1)
	if _, err := r.CreateTopic("a", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	stale, err := os.ReadFile(filepath.Join(d1, metadataFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetTopicConfigs("a", map[string]string{"retention.ms": "1000"}, false); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// d1 holds a stale copy (as if its write had been lost).
	if err := os.WriteFile(filepath.Join(d1, metadataFile), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, order := range [][]string{{d0, d1}, {d1, d0}} {
		r := mustOpenRegistryDirs(t, order...)
		if got := r.Topic("a").Configs["retention.ms"]; got != "1000" {
			t.Fatalf("order %v: retention.ms %q, want the newest copy's 1000", order, got)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRegistryLogDirLock: one process per log dir. A second registry on
// the same dir is refused before reading anything, and touches nothing.
func TestRegistryLogDirLock(t *testing.T) {
	d0, d1 := t.TempDir(), t.TempDir()
	r := mustOpenRegistryDirs(t, d0, d1)
	if _, err := r.CreateTopic("a", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, d0, d1)
	if _, err := openRegistryDirs(t, d1); !errors.Is(err, storage.ErrDirLocked) {
		t.Fatalf("second registry on a locked dir: %v, want ErrDirLocked", err)
	}
	if after := treeDigest(t, d0, d1); after != before {
		t.Fatalf("refused start changed the dirs:\n%s\n---\n%s", before, after)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := openRegistryDirs(t, d0, d0); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("a dir listed twice: %v", err)
	}
	r = mustOpenRegistryDirs(t, d1, d0) // released by Close
	r.Close()
}

// TestRegistryRefusesForeignDir: a log dir of another node (an Apache
// Kafka log dir) refuses the start before anything in it is touched.
func TestRegistryRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"meta.properties": "#\n#Thu Nov 20 10:00:00 UTC 2025\nnode.id=3\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAA\nversion=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qk\n",
		"__consumer_offsets-0/00000000000000000000.log": "kafka data",
		"__consumer_offsets-0/partition.metadata":       "version: 0\ntopic_id: 3B2W1CJ2TWKyDnTrz5dFuw\n",
		"topic-0/00000000000000000000.log":              "kafka data",
		"topic-0/00000000000000000000.index":            "",
		"recovery-point-offset-checkpoint":              "0\n1\ntopic 0 0\n",
		".lock":                                         "",
	}
	if err := dirtree.Write(dir, files); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, dir)
	_, err := openRegistryDirs(t, dir)
	if err == nil || !strings.Contains(err.Error(), "node.id 3") {
		t.Fatalf("foreign dir: %v", err)
	}
	if after := treeDigest(t, dir); after != before {
		t.Fatalf("refused start changed the dir:\n%s\n---\n%s", before, after)
	}
	// Two dirs of different clusters refuse too.
	mine := t.TempDir()
	if err := writeMeta(storage.DefaultFS, dir, "other-cluster", 0); err != nil {
		t.Fatal(err)
	}
	if err := writeMeta(storage.DefaultFS, mine, "my-cluster", 0); err != nil {
		t.Fatal(err)
	}
	// (as an earlier start of ours left it: the lock file is the one file
	// a refused start may create)
	if err := os.WriteFile(filepath.Join(mine, storage.LockFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before = treeDigest(t, dir, mine)
	if _, err := openRegistryDirs(t, mine, dir); err == nil || !strings.Contains(err.Error(), "different clusters") {
		t.Fatalf("dirs of two clusters: %v", err)
	}
	if after := treeDigest(t, dir, mine); after != before {
		t.Fatalf("refused start changed the dirs")
	}
}

// TestRegistryFinishesRecordedDeletion: a partition directory of a topic
// whose deletion the table recorded is removed at the next start (the
// crash came between "deleted" and "removed"); one of an unknown id is set
// aside instead.
func TestRegistryFinishesRecordedDeletion(t *testing.T) {
	dir := t.TempDir()
	r := mustOpenRegistryDirs(t, dir)
	if _, err := r.CreateTopic("gone", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "gone-0")
	if err := copyTree(filepath.Join(dir, "gone-0"), saved); err != nil {
		t.Fatal(err)
	}
	r = mustOpenRegistryDirs(t, dir)
	if err := r.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(saved, filepath.Join(dir, "gone-0")); err != nil {
		t.Fatal(err)
	}
	// A removal interrupted after DeleteLog's rename to -delete.
	interrupted := filepath.Join(dir, "gone-1.0123456789abcdef0123456789abcdef"+storage.DeleteSuffix)
	if err := copyTree(saved, interrupted); err != nil {
		t.Fatal(err)
	}
	r = mustOpenRegistryDirs(t, dir)
	r.Close()
	if _, err := os.Stat(interrupted); !os.IsNotExist(err) {
		t.Fatalf("interrupted removal not finished: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "gone-0")); !os.IsNotExist(err) {
		t.Fatalf("deleted topic's directory not removed: %v", err)
	}
	if strays, _ := filepath.Glob(filepath.Join(dir, "*"+straySuffix)); len(strays) != 0 {
		t.Fatalf("deleted topic's directory set aside instead: %v", strays)
	}
}

// TestRegistryCreateTopicFailureCleansUp: a CreateTopics that fails part
// way removes every directory it created (and only those), at once.
func TestRegistryCreateTopicFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	r := mustOpenRegistryDirs(t, dir)
	defer r.Close()
	listTopicDirs := func(prefix string) []string {
		got, _ := filepath.Glob(filepath.Join(dir, prefix+"-*"))
		return got
	}

	t.Run("partition.metadata write fails", func(t *testing.T) {
		var writes atomic.Int64 // the hook runs on several goroutines
		r.writeFile = func(path string, data []byte) error {
			if filepath.Base(path) == partitionMetadataFile {
				if writes.Add(1) == 7 {
					return syscall.ENOSPC
				}
			}
			return r.writeMetadataFile(path, data)
		}
		defer func() { r.writeFile = r.writeMetadataFile }()
		if _, err := r.CreateTopic("half", 20, nil, false); err == nil {
			t.Fatal("create succeeded")
		}
		if got := listTopicDirs("half"); len(got) != 0 {
			t.Fatalf("left behind: %v", got)
		}
		if r.Topic("half") != nil {
			t.Fatal("topic registered")
		}
	})

	t.Run("EMFILE after mkdir", func(t *testing.T) {
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		low := lim
		low.Cur = uint64(len(fds) + 12) // a few logs open, then EMFILE
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			t.Fatal(err)
		}
		_, createErr := r.CreateTopic("emfile", 64, nil, false)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		if createErr == nil {
			t.Fatal("create under a low nofile succeeded")
		}
		if got := listTopicDirs("emfile"); len(got) != 0 {
			t.Fatalf("%d directories left behind: %v", len(got), got[:min(len(got), 5)])
		}
		// The same create succeeds once descriptors are back.
		if _, err := r.CreateTopic("emfile", 64, nil, false); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a directory already there is not taken over or removed", func(t *testing.T) {
		foreign := filepath.Join(dir, "taken-2")
		if err := os.MkdirAll(foreign, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(foreign, "00000000000000000000.log"), []byte("not ours"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := r.CreateTopic("taken", 4, nil, false); err == nil || !strings.Contains(err.Error(), "taken-2") {
			t.Fatalf("create over an existing directory: %v", err)
		}
		got := listTopicDirs("taken")
		if len(got) != 1 || got[0] != foreign {
			t.Fatalf("directories after the refused create: %v", got)
		}
		if data, err := os.ReadFile(filepath.Join(foreign, "00000000000000000000.log")); err != nil || string(data) != "not ours" {
			t.Fatalf("existing directory changed: %q %v", data, err)
		}
	})
}

// TestRegistryTableOneCopyFailing: a log dir whose copy of the table cannot
// be written (full, failing) does not fail the change; the next start takes
// the newer copy from the other dir, in either order.
func TestRegistryTableOneCopyFailing(t *testing.T) {
	d0, d1 := t.TempDir(), t.TempDir()
	r := mustOpenRegistryDirs(t, d0, d1)
	r.writeFile = func(path string, data []byte) error {
		if path == filepath.Join(d1, metadataFile) {
			return syscall.ENOSPC
		}
		return r.writeMetadataFile(path, data)
	}
	if _, err := r.CreateTopic("a", 2, nil, false); err != nil {
		t.Fatalf("create with one copy failing: %v", err)
	}
	r.writeFile = func(string, []byte) error { return syscall.EIO }
	if _, err := r.CreateTopic("b", 1, nil, false); err == nil {
		t.Fatal("create with every copy failing succeeded")
	}
	if got, _ := filepath.Glob(filepath.Join(d0, "b-*")); len(got) != 0 {
		t.Fatalf("failed create left %v", got)
	}
	r.writeFile = r.writeMetadataFile
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, order := range [][]string{{d1, d0}, {d0, d1}} {
		r := mustOpenRegistryDirs(t, order...)
		if tp := r.Topic("a"); tp == nil || len(tp.Partitions) != 2 || r.Topic("b") != nil {
			t.Fatalf("order %v: topics %v", order, r.Topics())
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRegistryFinishesUnfinishedCreate: a crash in the middle of a
// CreateTopics leaves directories (with or without partition.metadata yet)
// that the table records as an unfinished create: the next start removes
// them, neither adopting a half-made topic nor leaving strays; a directory
// of another name stays (set aside).
func TestRegistryFinishesUnfinishedCreate(t *testing.T) {
	dir := t.TempDir()
	r := mustOpenRegistryDirs(t, dir)
	if _, err := r.CreateTopic("a", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	appendRecords(t, r, "a", 2)
	// What createPartitionLogs leaves when killed after opening two of
	// three partitions and writing one partition.metadata.
	id := [16]byte{1, 2, 3}
	r.writeMu.Lock()
	r.creating = []storedCreate{{Name: "half", ID: id, First: 0}}
	err := r.persistLocked()
	r.creating = nil
	r.writeMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"half-0", "half-1", "other-0"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, d, "00000000000000000000.log"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "half-0", partitionMetadataFile), encodePartitionMetadata(id), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = mustOpenRegistryDirs(t, dir)
	defer r.Close()
	if r.Topic("half") != nil {
		t.Fatal("a half-made topic was adopted")
	}
	wantWatermarks(t, "a", highWatermarks(r, "a", 1), 2)
	if got, _ := filepath.Glob(filepath.Join(dir, "half-*")); len(got) != 0 {
		t.Fatalf("unfinished create's directories left: %v", got)
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "other-0.*"+straySuffix)); len(got) != 1 {
		t.Fatalf("other-0 not set aside: %v", got)
	}
}

// TestCreateAfterClose: a create that arrives after Close (a background
// creation racing with shutdown) is refused with KAFKA_STORAGE_ERROR; it
// used to divide by the zero log dirs left and panic.
func TestCreateAfterClose(t *testing.T) {
	r := mustOpenRegistryDirs(t, t.TempDir())
	if _, err := r.CreateTopic("before", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateTopic("after", 1, nil, false); !errors.Is(err, errRegistryClosed) {
		t.Fatalf("CreateTopic after Close: %v, want %v", err, errRegistryClosed)
	}
	if err := r.CreatePartitions("before", 2, false); !errors.Is(err, errRegistryClosed) {
		t.Fatalf("CreatePartitions after Close: %v, want %v", err, errRegistryClosed)
	}
}
