package storage

import (
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFaultFSPowerLossUndoesUnsyncedEntries: creates, renames (over an
// existing file), removes and mkdirs not covered by a dir sync are undone,
// newest first; synced ones stay; unsynced bytes go.
func TestFaultFSPowerLossUndoesUnsyncedEntries(t *testing.T) {
	dir := t.TempDir()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := WriteFileAtomic(f, a, []byte("old")); err != nil {
		t.Fatal(err)
	}
	// Durable: "old" at a. Now, without dir syncs: replace a, remove it,
	// make a dir with a file, write b without fsync.
	tmp := filepath.Join(dir, "a.tmp")
	fh, err := f.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(fh, []byte("new"), 0)
	f.Sync(fh)
	fh.Close()
	if err := f.Rename(tmp, a); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, a); got != "new" {
		t.Fatalf("a = %q", got)
	}
	if err := f.Remove(a); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "d", "e")
	if err := f.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(f, filepath.Join(sub, "x"), []byte("x")); err != nil {
		t.Fatal(err) // synced in e, but e itself is not durable in d
	}
	fb, err := f.OpenFile(b, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(fb, []byte("unsynced"), 0)
	fb.Close()
	if err := f.PowerLoss(nil); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, a); got != "old" {
		t.Fatalf("after power loss a = %q, want the durable %q", got, "old")
	}
	for _, p := range []string{tmp, b, filepath.Join(dir, "d")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("%s survived the power loss (%v)", p, err)
		}
	}

	// With the dir synced everything stays, and an fsync'd size is kept.
	fb, _ = f.OpenFile(b, os.O_RDWR|os.O_CREATE, 0o644)
	f.WriteAt(fb, []byte("synced"), 0)
	f.Sync(fb)
	f.WriteAt(fb, []byte("+tail"), 6)
	fb.Close()
	f.SyncDir(dir)
	if err := f.PowerLoss(nil); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, b); got != "synced" {
		t.Fatalf("b = %q, want %q", got, "synced")
	}
}

// TestFaultFSInject: Skip and Count pick which matching calls fail, the
// path filters narrow them, and Matched counts the steps.
func TestFaultFSInject(t *testing.T) {
	dir := t.TempDir()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	other := filepath.Join(dir, "other")
	in := f.Inject(Fault{Op: OpRename, PathUnder: filepath.Join(dir, "sub"), Skip: 1, Count: 1, Err: syscall.ENOSPC})
	f.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	for i, want := range []error{nil, syscall.ENOSPC, nil} {
		if err := WriteFileAtomic(f, filepath.Join(dir, "sub", "f"), []byte{byte(i)}); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Fatalf("write %d: %v, want %v", i, err, want)
		}
		if err := WriteFileAtomic(f, other, []byte{byte(i)}); err != nil {
			t.Fatalf("a path outside the filter failed: %v", err)
		}
	}
	if in.Matched() != 3 || in.Failed() != 1 {
		t.Fatalf("matched %d failed %d, want 3 and 1", in.Matched(), in.Failed())
	}
	f.Clear()
	steps := f.Inject(Fault{Op: OpMutating, Skip: 1 << 30})
	WriteFileAtomic(f, other, []byte("x"))
	if steps.Matched() != 5 { // open, write, sync, rename, syncdir
		t.Fatalf("WriteFileAtomic took %d steps, want 5", steps.Matched())
	}
}

// TestRecoveryReadErrorRefusesOpen: an I/O error while recovery scans a
// segment (EIO on pread) is no proof of a torn tail: the
// open fails and nothing is truncated or deleted; the next open, with the
// disk readable again, finds every record.
func TestRecoveryReadErrorRefusesOpen(t *testing.T) {
	dir := t.TempDir()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	cfg.FlushMessages = 1
	l, err := Open(dir, cfg, Options{IO: f, FS: f})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		if r := syncAppend(t, l, makeBatch(1, 300, int64(i), 1)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if len(l.segments) < 3 {
		t.Fatalf("want several segments, have %d", len(l.segments))
	}
	second := l.segments[1].path
	l.crashClose()
	f.Inject(Fault{Op: OpRead, Path: second, Err: syscall.EIO})
	if l2, err := Open(dir, cfg, Options{IO: f, FS: f}); err == nil {
		l2.Close()
		t.Fatal("open succeeded although a segment could not be read")
	} else if !errors.Is(err, syscall.EIO) {
		t.Fatalf("open: %v, want EIO", err)
	}
	f.Clear()
	l, err = Open(dir, cfg, Options{IO: f, FS: f})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := readAll(t, l, 0); len(got) != 12 {
		t.Fatalf("%d batches after the failed open, want 12", len(got))
	}
}

// TestCheckpointReadErrorFailsOpen: an I/O error reading a checkpoint fails
// the manager's open. It used to be ignored like a malformed file, which
// forgot the log start offset DeleteRecords had moved: the deleted records
// were served again.
func TestCheckpointReadErrorFailsOpen(t *testing.T) {
	dir := t.TempDir()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	cfg := testConfig()
	open := func() (*Manager, error) {
		return OpenManager(dir, ManagerOptions{Defaults: cfg, FS: f, NewIO: f.NewIO})
	}
	m, err := open()
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if r := syncAppend(t, l, makeBatch(1, 100, int64(i), 1)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if _, err := l.DeleteRecords(2); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	f.Inject(Fault{Op: OpRead, Path: filepath.Join(dir, LogStartOffsetCheckpointFile)})
	if m, err := open(); err == nil {
		m.Close()
		t.Fatal("open with an unreadable checkpoint succeeded")
	}
	f.Clear()
	if m, err = open(); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if l, err = m.OpenLog("t", 0, cfg); err != nil {
		t.Fatal(err)
	}
	if got := l.LogStartOffset(); got != 2 {
		t.Fatalf("log start offset %d after the failed open, want 2", got)
	}
}

// TestIndexMsyncENOSPC: ENOSPC on every index msync (the rolled-segment
// flusher's and Close's) neither fails an append nor loses one: after a
// power loss, with every index cut to what reached the disk, recovery
// serves every acknowledged batch.
func TestIndexMsyncENOSPC(t *testing.T) {
	dir := t.TempDir()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	cfg.FlushMessages = 1
	in := f.Inject(Fault{Op: OpMsync, Err: syscall.ENOSPC})
	l, err := Open(dir, cfg, Options{IO: f, FS: f})
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	for i := 0; i < n; i++ {
		if r := syncAppend(t, l, makeBatch(1, 300, int64(i), 1)); r.Err != nil {
			t.Fatalf("append %d: %v", i, r.Err)
		}
	}
	l.bgFlushes.Wait()
	if in.Failed() == 0 {
		t.Fatal("no index msync was attempted")
	}
	l.crashClose()
	f.Clear()
	if err := f.PowerLoss(rand.New(rand.NewSource(1))); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, cfg, Options{IO: f, FS: f, RecoveryPoint: n})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wantSequence(t, l, n, "after the power loss")
}
