package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// LockFile is the per-log-dir lock file, named as Kafka names it: a second
// process (ringbrokerd or Kafka) on the same dir finds it locked.
const LockFile = ".lock"

// ErrDirLocked is returned by LockDir when another process holds the lock.
var ErrDirLocked = errors.New("log dir is locked by another process")

// DirLock is an exclusive flock(2) on <dir>/.lock, held until Release (or
// until the process dies: the kernel drops a flock with its last descriptor,
// so a SIGKILLed broker never leaves a stale lock behind).
type DirLock struct {
	f *os.File
}

// LockDir creates dir if needed and takes its lock without waiting. It
// touches nothing else in dir, so a caller takes it before reading anything:
// what a second process reads or writes behind our back (a stale topic table,
// half a recovery) is exactly what the lock is for. The file itself is never
// removed (removing it would let a third process lock a new inode while the
// first still holds the old one).
func LockDir(fs FS, dir string) (*DirLock, error) {
	fs = fsOrDefault(fs)
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFile)
	f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	if err := fs.Lock(f); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("%s: %w (is another ringbrokerd or Kafka broker using this log dir?)", path, ErrDirLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &DirLock{f: f}, nil
}

// Release drops the lock. Safe on nil and more than once.
func (l *DirLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor releases the flock
	l.f = nil
	return err
}
