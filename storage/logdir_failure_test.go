package storage

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestIsLogDirFailure(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&os.PathError{Op: "pwritev", Path: "x", Err: syscall.ENOSPC}, true},
		{&os.PathError{Op: "fdatasync", Path: "x", Err: syscall.EIO}, true},
		{fmt.Errorf("roll: %w", &os.PathError{Op: "open", Path: "x", Err: syscall.EROFS}), true},
		{syscall.EDQUOT, true},
		{syscall.EINTR, false},
		{syscall.EAGAIN, false},
		{fmt.Errorf("%w: truncate failed", ErrLogFailed), true},
		{ErrClosed, false},
		{ErrBacklog, false},
		{ErrCorruptBatch, false},
		{ErrInvalidBatch, false},
		{ErrReplicaOffset, false},
		{&dirOfflineError{cause: syscall.EIO}, false}, // already offline
		{errors.New("something else"), false},
	} {
		if got := IsLogDirFailure(c.err); got != c.want {
			t.Errorf("IsLogDirFailure(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// dirFiles maps every file under dir to a digest of its bytes.
func dirFiles(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitDirFailure waits (bounded) for the OnLogDirFailure report.
func waitDirFailure(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no log dir failure reported within 10s")
	}
	return nil
}

// TestLogDirFailureTakesDirOffline: a write or fdatasync error (ENOSPC,
// EIO) of one log takes its dir offline: the owner is told once, the dir's
// logs refuse appends and reads with ErrLogDirOffline, no new log opens in
// it, retention, DeleteRecords, truncation, checkpoints and deletion leave
// it alone, Close changes no byte in it (no clean-shutdown marker), and a
// reopen once the fault is gone recovers every acknowledged record.
func TestLogDirFailureTakesDirOffline(t *testing.T) {
	for _, c := range []struct {
		name  string
		errno syscall.Errno
		sync  bool // fail the fdatasync (flush.messages=1) instead of the write
	}{
		{"write-ENOSPC", syscall.ENOSPC, false},
		{"write-EIO", syscall.EIO, false},
		{"fdatasync-EIO", syscall.EIO, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			if c.sync {
				cfg.FlushMessages = 1
			}
			f := NewFaultIO(nil)
			f.SetScratchDir(t.TempDir())
			reports := make(chan error, 4)
			m, err := OpenManager(dir, ManagerOptions{Defaults: cfg, FS: f, NewIO: f.NewIO,
				OnLogDirFailure: func(d string, cause error) bool {
					if d != dir {
						t.Errorf("failure reported for %s, want %s", d, dir)
					}
					select {
					case reports <- cause:
					default:
					}
					return true
				}})
			if err != nil {
				t.Fatal(err)
			}
			l, err := m.OpenLog("t", 0, cfg)
			if err != nil {
				t.Fatal(err)
			}
			const acked = 5
			for i := 0; i < acked; i++ {
				if r := syncAppend(t, l, makeBatch(1, 100, int64(i), 'a')); r.Err != nil {
					t.Fatalf("append %d: %v", i, r.Err)
				}
			}
			if c.sync {
				f.SetSyncError(c.errno)
			} else {
				f.SetWriteError(c.errno)
			}
			if r := syncAppend(t, l, makeBatch(1, 100, acked, 'a')); !errors.Is(r.Err, c.errno) {
				t.Fatalf("append with the fault: %v, want %v", r.Err, c.errno)
			}
			if cause := waitDirFailure(t, reports); !errors.Is(cause, c.errno) {
				t.Fatalf("reported cause %v, want %v", cause, c.errno)
			}
			if off, cause := m.Offline(); !off || !errors.Is(cause, c.errno) {
				t.Fatalf("Offline() = %v, %v", off, cause)
			}
			if !l.DirOffline() {
				t.Fatal("log does not see its dir offline")
			}
			if err := l.Append(makeBatch(1, 100, 9, 'a'), AppendFunc(func(AppendResult) {})); !errors.Is(err, ErrLogDirOffline) {
				t.Fatalf("append to an offline dir: %v, want ErrLogDirOffline", err)
			}
			if _, err := l.Read(0, 1<<20); !errors.Is(err, ErrLogDirOffline) {
				t.Fatalf("read of an offline dir: %v", err)
			}
			if _, err := l.ReadBelow(0, 1<<20, 1); !errors.Is(err, ErrLogDirOffline) {
				t.Fatalf("ReadBelow of an offline dir: %v", err)
			}
			if _, err := m.OpenLog("u", 0, cfg); !errors.Is(err, ErrLogDirOffline) {
				t.Fatalf("new log in an offline dir: %v", err)
			}
			if _, err := l.DeleteRecords(2); !errors.Is(err, ErrLogDirOffline) {
				t.Fatalf("DeleteRecords in an offline dir: %v", err)
			}
			if err := l.TruncateTo(1); !errors.Is(err, ErrLogDirOffline) {
				t.Fatalf("TruncateTo in an offline dir: %v", err)
			}
			if err := m.DeleteLog("t", 0); !errors.Is(err, ErrLogDirOffline) {
				t.Fatalf("DeleteLog in an offline dir: %v", err)
			}
			// What the failure left is what stays.
			f.SetWriteError(nil)
			f.SetSyncError(nil)
			before := dirFiles(t, dir)
			if n, err := l.EnforceRetention(time.Now().Add(365 * 24 * time.Hour)); n != 0 || err != nil {
				t.Fatalf("retention in an offline dir: %d, %v", n, err)
			}
			if err := m.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); !errors.Is(err, ErrLogDirOffline) {
				t.Fatalf("Close of an offline dir: %v, want ErrLogDirOffline", err)
			}
			after := dirFiles(t, dir)
			if fmt.Sprint(before) != fmt.Sprint(after) {
				t.Fatalf("an offline dir changed:\nbefore %v\nafter  %v", before, after)
			}
			if _, ok := after[CleanShutdownFile]; ok {
				t.Fatal("clean-shutdown marker written in an offline dir")
			}
			// The restart after the disk is fixed.
			m2, err := OpenManager(dir, ManagerOptions{Defaults: cfg, FS: f, NewIO: f.NewIO})
			if err != nil {
				t.Fatal(err)
			}
			defer m2.Close()
			if m2.HadCleanShutdown() {
				t.Fatal("reopen trusts an offline dir as cleanly shut down")
			}
			l2, err := m2.OpenLog("t", 0, cfg)
			if err != nil {
				t.Fatal(err)
			}
			wantSequence(t, l2, acked, "after the reopen")
			if r := syncAppend(t, l2, makeBatch(1, 100, acked, 'a')); r.Err != nil || r.BaseOffset != acked {
				t.Fatalf("append after the reopen: %+v", r)
			}
		})
	}
}

// TestLogDirFailureOnSegmentRoll: ENOSPC creating the next segment (the
// roll) takes the dir offline too, nothing of the full segment is lost or
// removed, and after the reopen the roll succeeds.
func TestLogDirFailureOnSegmentRoll(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	reports := make(chan error, 4)
	m, err := OpenManager(dir, ManagerOptions{Defaults: cfg, FS: f, NewIO: f.NewIO,
		OnLogDirFailure: func(_ string, cause error) bool {
			select {
			case reports <- cause:
			default:
			}
			return true
		}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Two batches of ~1.5 KiB fill the first segment; the third rolls.
	for i := 0; i < 2; i++ {
		if r := syncAppend(t, l, makeBatch(1, 1500, int64(i), 'r')); r.Err != nil {
			t.Fatalf("append %d: %v", i, r.Err)
		}
	}
	if n := segmentCount(l); n != 1 {
		t.Fatalf("%d segments before the roll, want 1", n)
	}
	in := f.Inject(Fault{Op: OpOpen, PathUnder: filepath.Join(dir, "t-0"), Err: syscall.ENOSPC})
	if r := syncAppend(t, l, makeBatch(1, 1500, 2, 'r')); !errors.Is(r.Err, syscall.ENOSPC) {
		t.Fatalf("append needing a roll on a full disk: %v, want ENOSPC", r.Err)
	}
	if in.Failed() == 0 {
		t.Fatal("the roll did not try to create a file")
	}
	if cause := waitDirFailure(t, reports); !errors.Is(cause, syscall.ENOSPC) {
		t.Fatalf("reported %v, want ENOSPC", cause)
	}
	f.Clear()
	before := dirFiles(t, dir)
	if err := m.Close(); !errors.Is(err, ErrLogDirOffline) {
		t.Fatalf("Close: %v", err)
	}
	after := dirFiles(t, dir)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("an offline dir changed:\nbefore %v\nafter  %v", before, after)
	}
	m2, err := OpenManager(dir, ManagerOptions{Defaults: cfg, FS: f, NewIO: f.NewIO})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	l2, err := m2.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantSequence(t, l2, 2, "after the reopen")
	if r := syncAppend(t, l2, makeBatch(1, 1500, 2, 'r')); r.Err != nil || r.BaseOffset != 2 {
		t.Fatalf("append after the reopen: %+v", r)
	}
	if n := segmentCount(l2); n != 2 {
		t.Fatalf("%d segments after the roll, want 2", n)
	}
	wantSequence(t, l2, 3, "after the roll")
}

// TestLogDirFailureNeedsOwner: without OnLogDirFailure, or with one that
// declines (the broker's log.dir.offline.on.full.disk=false for ENOSPC), a
// write error stays the caller's (the dir stays online, the next append
// succeeds once the fault is gone): what the storage tests of write errors
// rely on.
func TestLogDirFailureNeedsOwner(t *testing.T) {
	for _, owner := range []string{"none", "declines"} {
		t.Run(owner, func(t *testing.T) { testLogDirFailureNeedsOwner(t, owner) })
	}
}

func testLogDirFailureNeedsOwner(t *testing.T, owner string) {
	dir := t.TempDir()
	cfg := testConfig()
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	opts := ManagerOptions{Defaults: cfg, FS: f, NewIO: f.NewIO}
	asked := 0
	if owner == "declines" {
		opts.OnLogDirFailure = func(string, error) bool { asked++; return false }
	}
	m, err := OpenManager(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := m.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.SetWriteError(syscall.ENOSPC)
	if r := syncAppend(t, l, makeBatch(1, 100, 0, 'n')); !errors.Is(r.Err, syscall.ENOSPC) {
		t.Fatalf("append: %v", r.Err)
	}
	f.SetWriteError(nil)
	if off, _ := m.Offline(); off {
		t.Fatal("dir offline without an owner to tell")
	}
	if r := syncAppend(t, l, makeBatch(1, 100, 0, 'n')); r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("append after the fault: %+v", r)
	}
	if owner == "declines" && asked == 0 {
		t.Fatal("the owner was not asked")
	}
}

func segmentCount(l *Log) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segments)
}

// TestLogDirFailureStopsQueuedWrites: appends queued behind the write that
// takes the dir offline fail with ErrLogDirOffline without being written.
func TestLogDirFailureStopsQueuedWrites(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.FlushMessages = 1 // each group waits for its fdatasync
	f := NewFaultIO(nil)
	f.SetScratchDir(t.TempDir())
	m, err := OpenManager(dir, ManagerOptions{Defaults: cfg, FS: f, NewIO: f.NewIO,
		OnLogDirFailure: func(string, error) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := m.OpenLog("t", 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.SetSyncError(syscall.EIO)
	gate, entered := make(chan struct{}), make(chan string, 4)
	f.SetSyncGate(gate, entered)
	first, second := make(chan AppendResult, 1), make(chan AppendResult, 1)
	if err := l.Append(makeBatch(1, 100, 0, 'q'), AppendFunc(func(r AppendResult) { first <- r })); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered: // the first group is written and waits in its fdatasync
	case <-time.After(10 * time.Second):
		t.Fatal("the first group's fdatasync did not start")
	}
	if err := l.Append(makeBatch(1, 100, 1, 'q'), AppendFunc(func(r AppendResult) { second <- r })); err != nil {
		t.Fatal(err)
	}
	writes := f.Writes()
	f.SetSyncGate(nil, nil)
	close(gate)
	for i, ch := range []chan AppendResult{first, second} {
		select {
		case r := <-ch:
			want := error(syscall.EIO)
			if i == 1 {
				want = ErrLogDirOffline
			}
			if !errors.Is(r.Err, want) {
				t.Fatalf("append %d: %v, want %v", i, r.Err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("append %d not answered", i)
		}
	}
	if got := f.Writes(); got != writes {
		t.Fatalf("%d writes after the dir went offline", got-writes)
	}
}
