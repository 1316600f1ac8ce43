package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// FS is the filesystem seam under everything durable: segments and their
// indexes, checkpoints, the clean-shutdown marker and the dir lock here,
// and (through the broker) topic metadata, partition.metadata, producer
// snapshots, the producer-id block and meta.properties. A log's data
// writes go through its IO (Writev, Datasync), which a fault backend
// implements beside FS so that both see the same files.
//
// Files are real *os.File values: reads hand file regions to sendfile and
// splice, so a backend cannot substitute its own file type. A backend
// intercepts the operations instead (pebble's vfs/errorfs in spirit, with
// the descriptor left real): OSFS performs them, FaultIO injects errors by
// operation and path and simulates power loss over every file and
// directory entry made through it.
//
// Implementations are safe for concurrent use.
type FS interface {
	// OpenFile is os.OpenFile: with os.O_CREATE it may create name (a
	// directory entry in name's parent), with os.O_TRUNC it empties it.
	OpenFile(name string, flag int, perm os.FileMode) (*os.File, error)
	// WriteAt is f.WriteAt, for small files written whole (the data of a
	// log goes through IO.Writev).
	WriteAt(f *os.File, b []byte, off int64) (int, error)
	// ReadFile is os.ReadFile.
	ReadFile(name string) ([]byte, error)
	// Pread is pread(2) on f, retried on EINTR; it may return fewer bytes.
	Pread(f *os.File, b []byte, off int64) (int, error)
	// Truncate is ftruncate(2) on f.
	Truncate(f *os.File, size int64) error
	// Sync is fsync(2) on f (data and metadata).
	Sync(f *os.File) error
	// Rename is rename(2); it is durable once both directories are synced.
	Rename(from, to string) error
	// Remove is os.Remove (a file or an empty directory).
	Remove(name string) error
	// RemoveAll is os.RemoveAll.
	RemoveAll(name string) error
	// MkdirAll is os.MkdirAll.
	MkdirAll(dir string, perm os.FileMode) error
	// ReadDir is os.ReadDir.
	ReadDir(dir string) ([]os.DirEntry, error)
	// Stat is os.Stat.
	Stat(name string) (os.FileInfo, error)
	// Lstat is os.Lstat.
	Lstat(name string) (os.FileInfo, error)
	// SyncDir fsyncs directory dir, making the entries created, renamed and
	// removed in it durable.
	SyncDir(dir string) error
	// Mmap maps the first size bytes of f read-write and shared, for
	// random access (no read-around on a page fault; OSFS.Mmap).
	Mmap(f *os.File, size int) ([]byte, error)
	// Msync writes the dirty pages of mm, a mapping of f, to f (MS_SYNC).
	Msync(f *os.File, mm []byte) error
	// Munmap unmaps mm.
	Munmap(mm []byte) error
	// Lock takes an exclusive flock(2) on f without waiting
	// (unix.EWOULDBLOCK when another descriptor holds it).
	Lock(f *os.File) error
}

// OSFS is the real filesystem; the zero value is ready.
type OSFS struct{}

// DefaultFS is what a nil FS option means.
var DefaultFS FS = OSFS{}

// fsOrDefault returns fs, or OSFS when fs is nil.
func fsOrDefault(fs FS) FS {
	if fs == nil {
		return DefaultFS
	}
	return fs
}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}

// WriteAt implements FS.
func (OSFS) WriteAt(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }

// ReadFile implements FS.
func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// Pread implements FS.
func (OSFS) Pread(f *os.File, b []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(int(f.Fd()), b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "pread", Path: f.Name(), Err: err}
		}
		return n, nil
	}
}

// Truncate implements FS.
func (OSFS) Truncate(f *os.File, size int64) error { return f.Truncate(size) }

// Sync implements FS.
func (OSFS) Sync(f *os.File) error { return f.Sync() }

// Rename implements FS.
func (OSFS) Rename(from, to string) error { return os.Rename(from, to) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// RemoveAll implements FS.
func (OSFS) RemoveAll(name string) error { return os.RemoveAll(name) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }

// ReadDir implements FS.
func (OSFS) ReadDir(dir string) ([]os.DirEntry, error) { return os.ReadDir(dir) }

// Stat implements FS.
func (OSFS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// Lstat implements FS.
func (OSFS) Lstat(name string) (os.FileInfo, error) { return os.Lstat(name) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Mmap implements FS. The mapping is advised MADV_RANDOM: the indexes
// (its only users) are appended one entry at a time and binary-searched,
// never read in order. Without the advice the first write fault on a new
// index page reads around it: on a new segment's fallocated, preallocated
// index files the kernel then allocates and zeroes a read-around window
// of page cache, 1.7-3 ms per file on the writer goroutine, measured here
// (BenchmarkIndexFirstEntry; docs/BENCHMARKS.md). The advice is only a
// hint: an error is ignored.
func (OSFS) Mmap(f *os.File, size int) ([]byte, error) {
	mm, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: err}
	}
	if mmapAdviseRandom {
		_ = unix.Madvise(mm, unix.MADV_RANDOM)
	}
	return mm, nil
}

// mmapAdviseRandom: OSFS.Mmap advises MADV_RANDOM. Only
// BenchmarkIndexFirstEntry turns it off, to measure both in one run.
var mmapAdviseRandom = true

// Msync implements FS.
func (OSFS) Msync(f *os.File, mm []byte) error {
	if err := unix.Msync(mm, unix.MS_SYNC); err != nil {
		return &os.PathError{Op: "msync", Path: f.Name(), Err: err}
	}
	return nil
}

// Munmap implements FS.
func (OSFS) Munmap(mm []byte) error { return unix.Munmap(mm) }

// Lock implements FS.
func (OSFS) Lock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

// WriteFileAtomic replaces path with data through fs so that a crash
// leaves the old content or the new, never a mix: a temp file beside it,
// fsync, rename, fsync of the directory. Checkpoints and the broker's small
// metadata files use it. An error wrapping ErrNotDurable means the new
// content is in place but may not survive a crash.
func WriteFileAtomic(fs FS, path string, data []byte) error {
	fs = fsOrDefault(fs)
	tmp := path + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if n, err := fs.WriteAt(f, data, 0); err != nil || n < len(data) {
		f.Close()
		if err == nil {
			err = fmt.Errorf("write %s: short write (%d of %d bytes)", tmp, n, len(data))
		}
		return err
	}
	if err := fs.Sync(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	if err := fs.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("%w: %w", ErrNotDurable, err)
	}
	return nil
}

// ErrNotDurable wraps the error of a WriteFileAtomic that renamed the new
// content into place but could not fsync the directory: readers see the
// new content now, and after a crash either may be there. A caller that
// rolls back on error must also undo what readers (and the next start)
// may find.
var ErrNotDurable = errors.New("replaced, but not durably")

// fileReader reads f through fs.Pread with io.ReaderAt semantics (a short
// read is retried; io.EOF at the end of the file).
type fileReader struct {
	fs FS
	f  *os.File
}

// ReadAt implements io.ReaderAt.
func (r fileReader) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.fs.Pread(r.f, b[n:], off+int64(n))
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}
