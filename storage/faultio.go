package storage

import (
	"os"
	"sync"
)

// FaultIO is the fault-injecting backend, for tests (pebble's errorfs and
// its crashable memfs, TigerBeetle's testing/io in spirit). It is an IO
// (wrapping another for the writes) and an FS (faultfs.go, over the real
// filesystem), so one FaultIO given as the FS and, through NewIO, as every
// log's IO sees every durable file. It
// remembers, per file, how many bytes the last successful fdatasync, fsync
// or msync covered, and which directory entries no SyncDir has made
// durable yet, so PowerLoss can drop everything that was not.
//
// Faults: SetWriteError and SetSyncError fail every data write or sync;
// Inject fails chosen operations (the Nth rename under a dir, ENOSPC on
// an index msync, EIO on a pread).
//
// All knobs are safe to change while the log runs.
type FaultIO struct {
	inner IO

	mu          sync.Mutex
	writeErr    error         // every Writev fails with it while set
	syncErr     error         // every Datasync (and linked sync) fails with it while set
	shortWrites int           // >0: each Writev writes at most this many bytes
	syncGate    chan struct{} // non-nil: every Datasync waits until it is closed
	syncEntered chan string   // non-nil: gets each gated Datasync's file name
	writes      int           // successful Writev calls
	files       map[string]*faultFile

	// The FS side (faultfs.go): injected faults, and the directory
	// changes not yet made durable by a SyncDir, oldest first.
	injections []*Injection
	pending    []*dirOp
	scratch    string // where removed entries wait until durable (lazily made)
}

type faultFile struct {
	synced  int64 // size covered by the last successful fdatasync
	written int64 // largest end written through us
}

// NewFaultIO wraps inner (nil = PortableIO). The FS methods act on the real
// filesystem (OSFS).
func NewFaultIO(inner IO) *FaultIO {
	if inner == nil {
		inner = NewPortableIO()
	}
	return &FaultIO{inner: inner, files: map[string]*faultFile{}}
}

// SetWriteError makes every following write fail with err (nil clears).
func (f *FaultIO) SetWriteError(err error) { f.mu.Lock(); f.writeErr = err; f.mu.Unlock() }

// SetSyncError makes every following fdatasync fail with err (nil clears).
func (f *FaultIO) SetSyncError(err error) { f.mu.Lock(); f.syncErr = err; f.mu.Unlock() }

// SetShortWrites caps each write at n bytes (0 clears).
func (f *FaultIO) SetShortWrites(n int) { f.mu.Lock(); f.shortWrites = n; f.mu.Unlock() }

// Writes returns the number of successful Writev calls so far.
func (f *FaultIO) Writes() int { f.mu.Lock(); defer f.mu.Unlock(); return f.writes }

func (f *FaultIO) file(name string) *faultFile {
	ff := f.files[name]
	if ff == nil {
		ff = &faultFile{}
		f.files[name] = ff
	}
	return ff
}

// NewIO returns an IO for one more log that shares f's faults, file
// tracking and power loss but writes through its own PortableIO (an IO
// serves one log: the portable backend keeps a per-log iovec array). Pass
// it as ManagerOptions.NewIO when f is also the FS of many logs.
func (f *FaultIO) NewIO() (IO, error) { return &faultLogIO{f: f, inner: NewPortableIO()}, nil }

// faultLogIO is one log's view of a shared FaultIO.
type faultLogIO struct {
	f     *FaultIO
	inner IO
}

func (v *faultLogIO) Writev(file *os.File, iov [][]byte, off int64, datasync bool) (int, bool, error) {
	return v.f.writev(v.inner, file, iov, off, datasync)
}
func (v *faultLogIO) Datasync(file *os.File) error { return v.f.datasync(v.inner, file) }
func (v *faultLogIO) Close() error                 { return v.inner.Close() }

// Writev implements IO.
func (f *FaultIO) Writev(file *os.File, iov [][]byte, off int64, datasync bool) (int, bool, error) {
	return f.writev(f.inner, file, iov, off, datasync)
}

func (f *FaultIO) writev(inner IO, file *os.File, iov [][]byte, off int64, datasync bool) (int, bool, error) {
	f.mu.Lock()
	werr, short := f.writeErr, f.shortWrites
	if werr == nil {
		werr = f.injectedLocked(OpWrite, file.Name(), "")
	}
	f.mu.Unlock()
	if werr != nil {
		// A failing write may still have put some bytes in the file: write
		// half of the first iovec so the log must clean up after itself.
		if len(iov) > 0 && len(iov[0]) > 1 {
			inner.Writev(file, [][]byte{iov[0][:len(iov[0])/2]}, off, false)
		}
		return 0, false, &os.PathError{Op: "pwritev", Path: file.Name(), Err: werr}
	}
	total := iovLen(iov)
	if short > 0 && short < total {
		var cut [][]byte
		left := short
		for _, b := range iov {
			if left == 0 {
				break
			}
			n := min(left, len(b))
			cut = append(cut, b[:n])
			left -= n
		}
		iov, datasync = cut, false
	}
	n, _, err := inner.Writev(file, iov, off, false)
	f.mu.Lock()
	ff := f.file(file.Name())
	ff.written = max(ff.written, off+int64(n))
	if err == nil {
		f.writes++
	}
	f.mu.Unlock()
	if err != nil || !datasync || n < total {
		return n, false, err
	}
	if err := f.datasync(inner, file); err != nil {
		return n, false, err
	}
	return n, true, nil
}

// SetSyncGate makes every following Datasync block until gate is closed,
// as a disk behind a long write-back queue does; each one sends its file's
// name to entered (if non-nil, without blocking) when it starts waiting.
// SetSyncGate(nil, nil) stops gating new calls (close the gate to release
// waiting ones).
func (f *FaultIO) SetSyncGate(gate chan struct{}, entered chan string) {
	f.mu.Lock()
	f.syncGate, f.syncEntered = gate, entered
	f.mu.Unlock()
}

// Datasync implements IO.
func (f *FaultIO) Datasync(file *os.File) error { return f.datasync(f.inner, file) }

func (f *FaultIO) datasync(inner IO, file *os.File) error {
	f.mu.Lock()
	serr, gate, entered := f.syncErr, f.syncGate, f.syncEntered
	if serr == nil {
		serr = f.injectedLocked(OpSync, file.Name(), "")
	}
	f.mu.Unlock()
	if gate != nil {
		if entered != nil {
			select {
			case entered <- file.Name():
			default:
			}
		}
		<-gate
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: file.Name(), Err: serr}
	}
	if err := inner.Datasync(file); err != nil {
		return err
	}
	return f.markSynced(file)
}

// Close implements IO. The inner IO is not closed: a FaultIO is reused
// across reopen in tests.
func (f *FaultIO) Close() error { return nil }
