package storage

import (
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Op is a set of filesystem operations, for Fault.Op.
type Op uint32

// The operations a Fault can match. OpWrite and OpSync cover the IO side
// too (Writev; Datasync and a Writev's linked sync).
const (
	OpOpen     Op = 1 << iota // OpenFile
	OpWrite                   // WriteAt, Writev
	OpRead                    // Pread, ReadFile
	OpSync                    // Sync, Datasync
	OpTruncate                // Truncate
	OpRename                  // Rename (matches from or to)
	OpRemove                  // Remove, RemoveAll
	OpMkdir                   // MkdirAll
	OpReadDir                 // ReadDir
	OpStat                    // Stat, Lstat
	OpSyncDir                 // SyncDir
	OpMmap                    // Mmap
	OpMsync                   // Msync
	OpLock                    // Lock

	// OpAny matches every operation.
	OpAny Op = 1<<iota - 1
	// OpMutating matches the operations that change what is on disk or
	// make it durable: the steps of a write sequence.
	OpMutating = OpOpen | OpWrite | OpSync | OpTruncate | OpRename | OpRemove | OpMkdir | OpSyncDir | OpMsync
)

var opNames = []string{"open", "write", "read", "sync", "truncate", "rename", "remove", "mkdir", "readdir", "stat", "syncdir", "mmap", "msync", "lock"}

func (o Op) String() string {
	var names []string
	for i, n := range opNames {
		if o&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// Fault describes operations to fail, pebble errorfs style: among the
// calls matching Op and the path filters, the first Skip pass and the
// Count after them fail with Err.
type Fault struct {
	Op        Op     // operations matched (0 = OpAny)
	Path      string // only this exact path ("" = any)
	PathUnder string // only paths inside this directory, or it ("" = any)
	Skip      int    // matching calls let through first
	Count     int    // calls failed after the skipped ones (0 = all following)
	Err       error  // the errno (syscall.EIO, syscall.ENOSPC...; nil = EIO)
}

// Injection is an injected Fault; its counters tell a test how many
// operations matched, which is how a test enumerates the steps of a
// sequence (inject with a huge Skip, run, read Matched).
type Injection struct {
	Fault
	matched, failed int
	owner           *FaultIO
}

// Matched is the number of calls the fault has matched so far.
func (in *Injection) Matched() int {
	in.owner.mu.Lock()
	defer in.owner.mu.Unlock()
	return in.matched
}

// Failed is the number of calls it failed.
func (in *Injection) Failed() int {
	in.owner.mu.Lock()
	defer in.owner.mu.Unlock()
	return in.failed
}

// Inject adds a fault; it applies until Clear (or until Count calls
// failed).
func (f *FaultIO) Inject(ft Fault) *Injection {
	if ft.Op == 0 {
		ft.Op = OpAny
	}
	if ft.Err == nil {
		ft.Err = syscall.EIO
	}
	in := &Injection{Fault: ft, owner: f}
	f.mu.Lock()
	f.injections = append(f.injections, in)
	f.mu.Unlock()
	return in
}

// Clear removes every injected fault.
func (f *FaultIO) Clear() {
	f.mu.Lock()
	f.injections = nil
	f.mu.Unlock()
}

// injectedLocked returns the error the first matching injection fails op
// on path (or path2, a rename's target) with, counting the match in every
// injection it matches. REQUIRES: f.mu.
func (f *FaultIO) injectedLocked(op Op, path, path2 string) error {
	var out error
	for _, in := range f.injections {
		if in.Op&op == 0 || !(in.matches(path) || path2 != "" && in.matches(path2)) {
			continue
		}
		in.matched++
		if in.matched <= in.Skip || in.Count > 0 && in.failed >= in.Count {
			continue
		}
		in.failed++
		if out == nil {
			out = in.Err
		}
	}
	return out
}

func (in *Injection) matches(path string) bool {
	if in.Path != "" && path != in.Path {
		return false
	}
	return in.PathUnder == "" || isUnder(path, in.PathUnder)
}

// isUnder reports whether path is dir or inside it.
func isUnder(path, dir string) bool {
	path, dir = filepath.Clean(path), filepath.Clean(dir)
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

// fault checks the injections for op and returns a PathError if one fires.
func (f *FaultIO) fault(op Op, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faultLocked(op, path, "")
}

func (f *FaultIO) faultLocked(op Op, path, path2 string) error {
	if err := f.injectedLocked(op, path, path2); err != nil {
		return &os.PathError{Op: op.String() + " (injected)", Path: path, Err: err}
	}
	return nil
}

// A dirOp is a change of directory entries not yet durable: it is undone
// by PowerLoss unless SyncDir was called on every directory in dirs since.
type dirOp struct {
	kind  string // "create", "mkdir", "rename", "remove"
	path  string // created, made, removed, or the rename's target
	from  string // rename: the source
	grave string // remove, or rename over an entry: where the old entry waits
	dirs  []string
	// tracked: the removed (or renamed-over) entry's files, restored with it.
	tracked map[string]*faultFile
}

// SetScratchDir sets where removed entries are kept until their removal is
// durable (so PowerLoss can bring them back). It must be on the same
// filesystem as the files (a rename moves them there). Default: a new
// directory in os.TempDir().
func (f *FaultIO) SetScratchDir(dir string) {
	f.mu.Lock()
	f.scratch = dir
	f.mu.Unlock()
}

// buryLocked moves path (a file or a tree) into the scratch dir and
// returns where it went, taking its tracked files along. REQUIRES: f.mu.
func (f *FaultIO) buryLocked(path string) (string, map[string]*faultFile, error) {
	if f.scratch == "" {
		d, err := os.MkdirTemp("", "ringbroker-faultfs-")
		if err != nil {
			return "", nil, err
		}
		f.scratch = d
	}
	grave, err := os.MkdirTemp(f.scratch, "grave-")
	if err != nil {
		return "", nil, err
	}
	grave = filepath.Join(grave, filepath.Base(path))
	if err := os.Rename(path, grave); err != nil {
		os.Remove(filepath.Dir(grave))
		if !errors.Is(err, syscall.EXDEV) {
			return "", nil, err
		}
		// Scratch on another filesystem: remove for real; PowerLoss
		// cannot bring this one back.
		if err := os.RemoveAll(path); err != nil {
			return "", nil, err
		}
		f.untrackLocked(path)
		return "", nil, nil
	}
	return grave, f.untrackLocked(path), nil
}

// untrackLocked removes and returns the tracking of path and everything
// under it.
func (f *FaultIO) untrackLocked(path string) map[string]*faultFile {
	out := map[string]*faultFile{}
	for name, ff := range f.files {
		if isUnder(name, path) {
			out[name] = ff
			delete(f.files, name)
		}
	}
	return out
}

// movePathsLocked rewrites every tracked file and pending op under from to
// lie under to (a directory or file renamed), in ops[:upto] and f.files.
func (f *FaultIO) movePathsLocked(from, to string, upto int) {
	re := func(p string) string {
		if isUnder(p, from) {
			return to + strings.TrimPrefix(filepath.Clean(p), filepath.Clean(from))
		}
		return p
	}
	for name, ff := range f.files {
		if n := re(name); n != name {
			delete(f.files, name)
			f.files[n] = ff
		}
	}
	for _, op := range f.pending[:upto] {
		op.path, op.from = re(op.path), re(op.from)
		for i := range op.dirs {
			op.dirs[i] = re(op.dirs[i])
		}
	}
}

// OpenFile implements FS. A file created (or emptied by O_TRUNC) starts
// with nothing durable; one found is taken as durable as it is.
func (f *FaultIO) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.faultLocked(OpOpen, name, ""); err != nil {
		return nil, err
	}
	_, statErr := os.Stat(name)
	file, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	switch {
	case os.IsNotExist(statErr) && flag&os.O_CREATE != 0:
		f.pending = append(f.pending, &dirOp{kind: "create", path: name, dirs: []string{filepath.Dir(name)}})
		f.files[name] = &faultFile{}
	case flag&os.O_TRUNC != 0:
		f.files[name] = &faultFile{}
	case f.files[name] == nil && flag&(os.O_WRONLY|os.O_RDWR) != 0:
		if fi, err := file.Stat(); err == nil {
			f.files[name] = &faultFile{synced: fi.Size(), written: fi.Size()}
		}
	}
	return file, nil
}

// WriteAt implements FS.
func (f *FaultIO) WriteAt(file *os.File, b []byte, off int64) (int, error) {
	if err := f.fault(OpWrite, file.Name()); err != nil {
		// As with Writev: a failed write may have put part of it there.
		if len(b) > 1 {
			file.WriteAt(b[:len(b)/2], off)
		}
		return 0, err
	}
	n, err := file.WriteAt(b, off)
	f.mu.Lock()
	ff := f.file(file.Name())
	ff.written = max(ff.written, off+int64(n))
	f.mu.Unlock()
	return n, err
}

// ReadFile implements FS.
func (f *FaultIO) ReadFile(name string) ([]byte, error) {
	if err := f.fault(OpRead, name); err != nil {
		return nil, err
	}
	return os.ReadFile(name)
}

// Pread implements FS.
func (f *FaultIO) Pread(file *os.File, b []byte, off int64) (int, error) {
	if err := f.fault(OpRead, file.Name()); err != nil {
		return 0, err
	}
	return OSFS{}.Pread(file, b, off)
}

// Truncate implements FS. The new size is not durable until a sync.
func (f *FaultIO) Truncate(file *os.File, size int64) error {
	if err := f.fault(OpTruncate, file.Name()); err != nil {
		return err
	}
	if err := file.Truncate(size); err != nil {
		return err
	}
	f.mu.Lock()
	ff := f.file(file.Name())
	ff.synced = min(ff.synced, size)
	ff.written = min(ff.written, size)
	f.mu.Unlock()
	return nil
}

// Sync implements FS (fsync; recorded as Datasync records it).
func (f *FaultIO) Sync(file *os.File) error {
	if err := f.fault(OpSync, file.Name()); err != nil {
		return err
	}
	if err := file.Sync(); err != nil {
		return err
	}
	return f.markSynced(file)
}

// markSynced records file's current size as durable (after an fsync or
// fdatasync of it succeeded).
func (f *FaultIO) markSynced(file *os.File) error {
	fi, err := file.Stat()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.file(file.Name()).synced = fi.Size()
	f.mu.Unlock()
	return nil
}

// Rename implements FS. It is durable once both directories are synced;
// PowerLoss before that moves it back (and restores what it replaced).
func (f *FaultIO) Rename(from, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.faultLocked(OpRename, from, to); err != nil {
		return err
	}
	if _, err := os.Lstat(from); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err.(*os.PathError).Err}
	}
	op := &dirOp{kind: "rename", path: to, from: from, dirs: []string{filepath.Dir(to)}}
	if filepath.Dir(from) != filepath.Dir(to) {
		op.dirs = append(op.dirs, filepath.Dir(from))
	}
	if fi, err := os.Lstat(to); err == nil && !fi.IsDir() {
		grave, tracked, err := f.buryLocked(to)
		if err != nil {
			return err
		}
		op.grave, op.tracked = grave, tracked
	}
	if err := os.Rename(from, to); err != nil {
		if op.grave != "" {
			os.Rename(op.grave, to)
			for n, ff := range op.tracked {
				f.files[n] = ff
			}
		}
		return err
	}
	f.movePathsLocked(from, to, len(f.pending))
	f.pending = append(f.pending, op)
	return nil
}

// Remove implements FS.
func (f *FaultIO) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.faultLocked(OpRemove, name, ""); err != nil {
		return err
	}
	fi, err := os.Lstat(name)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if ents, err := os.ReadDir(name); err != nil || len(ents) > 0 {
			return os.Remove(name) // fails as os.Remove fails
		}
	}
	return f.removeLocked(name)
}

// RemoveAll implements FS.
func (f *FaultIO) RemoveAll(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.faultLocked(OpRemove, name, ""); err != nil {
		return err
	}
	if _, err := os.Lstat(name); os.IsNotExist(err) {
		return nil
	}
	return f.removeLocked(name)
}

func (f *FaultIO) removeLocked(name string) error {
	grave, tracked, err := f.buryLocked(name)
	if err != nil {
		return err
	}
	f.pending = append(f.pending, &dirOp{kind: "remove", path: name, grave: grave, tracked: tracked, dirs: []string{filepath.Dir(name)}})
	return nil
}

// MkdirAll implements FS. Each directory it makes is an entry in its
// parent, lost with everything in it unless the parent is synced.
func (f *FaultIO) MkdirAll(dir string, perm os.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.faultLocked(OpMkdir, dir, ""); err != nil {
		return err
	}
	var made []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		made = append(made, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(made) - 1; i >= 0; i-- {
		f.pending = append(f.pending, &dirOp{kind: "mkdir", path: made[i], dirs: []string{filepath.Dir(made[i])}})
	}
	return nil
}

// ReadDir implements FS.
func (f *FaultIO) ReadDir(dir string) ([]os.DirEntry, error) {
	if err := f.fault(OpReadDir, dir); err != nil {
		return nil, err
	}
	return os.ReadDir(dir)
}

// Stat implements FS.
func (f *FaultIO) Stat(name string) (os.FileInfo, error) {
	if err := f.fault(OpStat, name); err != nil {
		return nil, err
	}
	return os.Stat(name)
}

// Lstat implements FS.
func (f *FaultIO) Lstat(name string) (os.FileInfo, error) {
	if err := f.fault(OpStat, name); err != nil {
		return nil, err
	}
	return os.Lstat(name)
}

// SyncDir implements FS: the entry changes in dir become durable.
func (f *FaultIO) SyncDir(dir string) error {
	if err := f.fault(OpSyncDir, dir); err != nil {
		return err
	}
	if err := (OSFS{}).SyncDir(dir); err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	f.mu.Lock()
	defer f.mu.Unlock()
	// An op is durable once each of its dirs is synced; the dirs left are
	// kept in op.dirs. The same dir synced again covers only ops made
	// before this call (all of them: f.mu serialises).
	kept := f.pending[:0]
	for _, op := range f.pending {
		dirs := op.dirs[:0]
		for _, d := range op.dirs {
			if filepath.Clean(d) != dir {
				dirs = append(dirs, d)
			}
		}
		op.dirs = dirs
		if len(dirs) > 0 {
			kept = append(kept, op)
			continue
		}
		if op.grave != "" {
			os.RemoveAll(filepath.Dir(op.grave))
		}
	}
	clear(f.pending[len(kept):])
	f.pending = kept
	return nil
}

// Mmap implements FS.
func (f *FaultIO) Mmap(file *os.File, size int) ([]byte, error) {
	if err := f.fault(OpMmap, file.Name()); err != nil {
		return nil, err
	}
	return OSFS{}.Mmap(file, size)
}

// Msync implements FS; the file's size at the msync is then durable.
// (Writes through the mapping after it are not undone by PowerLoss: only
// sizes and directory entries are.)
func (f *FaultIO) Msync(file *os.File, mm []byte) error {
	if err := f.fault(OpMsync, file.Name()); err != nil {
		return err
	}
	if err := (OSFS{}).Msync(file, mm); err != nil {
		return err
	}
	return f.markSynced(file)
}

// Munmap implements FS.
func (f *FaultIO) Munmap(mm []byte) error { return OSFS{}.Munmap(mm) }

// Lock implements FS.
func (f *FaultIO) Lock(file *os.File) error {
	if err := f.fault(OpLock, file.Name()); err != nil {
		return err
	}
	return OSFS{}.Lock(file)
}

// PowerLoss simulates losing the page cache. First the directory changes
// no SyncDir made durable are undone, newest first: created files and
// directories disappear (with everything in them), renames go back
// (restoring what they replaced), removed entries come back. With rng nil
// all of them are undone; with rng non-nil a random prefix of them (in
// the order they were made, as a journaling filesystem commits them)
// survives, so a test sees unsynced renames both lost and kept. Then every
// file written, created or truncated through f loses the bytes past its
// last fdatasync/fsync/msync; with rng non-nil a random prefix of an
// unsynced tail survives and, half the time, a few garbage bytes follow
// it (a torn sector), which recovery must cut off. Call it after whatever
// used f was abandoned (crashClose), before reopening.
func (f *FaultIO) PowerLoss(rng *rand.Rand) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	kept := 0
	if rng != nil {
		kept = rng.Intn(len(f.pending) + 1)
	}
	for _, op := range f.pending[:kept] {
		if op.grave != "" {
			os.RemoveAll(filepath.Dir(op.grave)) // the change stands
		}
	}
	for i := len(f.pending) - 1; i >= kept; i-- {
		op := f.pending[i]
		switch op.kind {
		case "create", "mkdir":
			if err := os.RemoveAll(op.path); err != nil {
				errs = append(errs, err)
			}
			f.untrackLocked(op.path)
		case "rename":
			if err := os.Rename(op.path, op.from); err != nil && !os.IsNotExist(err) {
				errs = append(errs, err)
			}
			f.movePathsLocked(op.path, op.from, i)
		case "remove":
		default:
			errs = append(errs, fmt.Errorf("faultfs: unknown op %q", op.kind))
		}
		if op.grave != "" {
			if err := os.Rename(op.grave, op.path); err != nil {
				errs = append(errs, fmt.Errorf("faultfs: restoring %s: %w", op.path, err))
			}
			for n, ff := range op.tracked {
				f.files[n] = ff
			}
			os.RemoveAll(filepath.Dir(op.grave))
		}
	}
	clear(f.pending)
	f.pending = f.pending[:0]
	// In name order, so that a seed replays the same loss (map order is
	// random).
	for _, name := range slices.Sorted(maps.Keys(f.files)) {
		ff := f.files[name]
		fi, err := os.Stat(name)
		if err != nil {
			delete(f.files, name) // deleted
			continue
		}
		keep := min(ff.synced, fi.Size())
		torn := false
		if rng != nil && fi.Size() > keep {
			keep += rng.Int63n(fi.Size() - keep + 1)
			torn = true // only an unsynced tail can come back as garbage
		}
		if keep < fi.Size() {
			if err := os.Truncate(name, keep); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if torn && rng.Intn(2) == 0 {
			junk := make([]byte, 1+rng.Intn(64))
			rng.Read(junk)
			if fh, err := os.OpenFile(name, os.O_WRONLY, 0); err == nil {
				fh.WriteAt(junk, keep)
				fh.Close()
			}
		}
		ff.synced = min(ff.synced, keep)
		ff.written = keep
	}
	return errors.Join(errs...)
}
