package storage

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ringbroker/ringbroker/invariants"
)

// Index files, Kafka's layout (big-endian):
//
//	.index      entries of 8 bytes:  relativeOffset u32 | position u32
//	.timeindex  entries of 12 bytes: timestamp i64      | relativeOffset u32
//
// Both are sparse (one entry per index.interval.bytes of log), sorted, and
// mmap'd MAP_SHARED. The active segment's files are preallocated to
// segment.index.bytes (rounded down to whole entries) and trimmed to their
// used size on roll and on close, as Kafka does; so after a crash an index
// may have a zero-filled tail, which is why recovery rebuilds them.
//
// Concurrency: only the segment's writer appends (the log's writer goroutine,
// or the opener during recovery). It writes the entry bytes, then publishes
// the new count with an atomic store; readers load the count and read only
// entries below it, so they never see a half-written entry.
//
// Lazy creation: a new segment's index files are created at its first
// write (segment.createIndexes), not with the segment. Creating a file is
// the dominant cost of opening a fresh partition (an inode each: on the
// reference VM ~0.9 ms, more than the fsyncs), so a new topic of 1,000
// partitions creates 2,000 inodes fewer, and partitions nobody writes to
// hold no index files, mappings (2 VMAs of vm.max_map_count each) or
// descriptors. Until created (f == nil) an index has no entries, so readers,
// which touch mm only below n, never see the difference; the writer fills
// f and mm before it publishes the first entry. Kafka's LazyIndex defers
// index loading the same way; a segment without index files is what
// recovery already handles (an empty one needs nothing, a non-empty one is
// rebuilt).
type index struct {
	fs        FS
	path      string
	f         *os.File // nil until created (lazy)
	mm        []byte   // mapping; len is the preallocated (or trimmed) size
	entrySize int
	maxBytes  int          // preallocation when created lazily
	n         atomic.Int64 // entries published
	// reservedTo is the byte offset below which the file's blocks are
	// allocated (fallocate): an entry is written through the mapping only
	// into reserved pages. The file is sized with ftruncate and so sparse;
	// touching a page the filesystem cannot allocate (disk full) through a
	// shared mapping is a SIGBUS, not an error. noReserve: the filesystem
	// has no fallocate, so behave as before. REQUIRES: the writer.
	reservedTo int64
	noReserve  bool
}

// pageBytes is the granularity index blocks are reserved in.
const pageBytes = 4096

// reserve makes sure entry n's bytes are backed by allocated blocks. false:
// the disk is full (or another error): skip the entry — index entries are
// hints, a lookup scans from the previous one.
func (ix *index) reserve(n int64) bool {
	end := (n + 1) * int64(ix.entrySize)
	if ix.noReserve || end <= ix.reservedTo {
		return true
	}
	to := min((end+pageBytes-1)/pageBytes*pageBytes, int64(len(ix.mm)))
	err := unix.Fallocate(int(ix.f.Fd()), 0, ix.reservedTo, to-ix.reservedTo)
	switch {
	case err == nil:
		ix.reservedTo = to
		return true
	case err == unix.EOPNOTSUPP || err == unix.ENOSYS:
		ix.noReserve = true
		return true
	}
	return false
}

const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

// openIndex opens (creating if needed) an index file. When writable the
// file is extended to maxBytes (rounded down to entries) and entries holds
// how many existing entries to keep; otherwise the whole file is mapped
// read-only and every whole entry counts. With lazy (writable only), a
// missing file is not created: the index starts empty and create makes
// the file when it is first needed.
func openIndex(fs FS, path string, entrySize int, writable bool, maxBytes int, entries int64, lazy bool) (*index, error) {
	ix := &index{fs: fs, path: path, entrySize: entrySize, maxBytes: maxBytes}
	flags := os.O_RDWR | os.O_CREATE
	if lazy && writable {
		flags = os.O_RDWR
	}
	f, err := fs.OpenFile(path, flags, 0o644)
	if lazy && writable && os.IsNotExist(err) {
		return ix, nil
	}
	if err != nil {
		return nil, err
	}
	if err := ix.mapFile(f, writable, entries); err != nil {
		return nil, err
	}
	return ix, nil
}

// create makes a lazily opened index's file (preallocated, mapped); a
// no-op once it exists. REQUIRES: the segment's writer.
func (ix *index) create() error {
	if ix.f != nil {
		return nil
	}
	f, err := ix.fs.OpenFile(ix.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	return ix.mapFile(f, true, 0)
}

// mapFile sizes (when writable) and maps f, and sets ix.f, ix.mm and the
// entry count. It closes f on error.
func (ix *index) mapFile(f *os.File, writable bool, entries int64) error {
	path, entrySize, maxBytes := ix.path, ix.entrySize, ix.maxBytes
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	size := fi.Size()
	if writable {
		size = int64(maxBytes / entrySize * entrySize)
		if size < int64(entrySize) {
			size = int64(entrySize)
		}
		if entries*int64(entrySize) > size {
			entries = size / int64(entrySize)
		}
		if err := ix.fs.Truncate(f, size); err != nil {
			f.Close()
			return fmt.Errorf("preallocate %s: %w", path, err)
		}
	} else {
		entries = size / int64(entrySize)
	}
	if size > 0 {
		mm, err := ix.fs.Mmap(f, int(size))
		if err != nil {
			f.Close()
			return err
		}
		ix.mm = mm
	}
	ix.f = f
	ix.n.Store(entries)
	// Pages holding existing entries were written, so they are allocated.
	ix.reservedTo = min((entries*int64(entrySize)+pageBytes-1)/pageBytes*pageBytes, int64(len(ix.mm)))
	return nil
}

func (ix *index) entries() int64 { return ix.n.Load() }

// full reports whether another entry would not fit; a lazy index not yet
// created counts the size it will be created with. REQUIRES: the writer.
func (ix *index) full() bool {
	capacity := int64(len(ix.mm))
	if ix.f == nil {
		capacity = max(int64(ix.maxBytes/ix.entrySize*ix.entrySize), int64(ix.entrySize))
	}
	return (ix.n.Load()+1)*int64(ix.entrySize) > capacity
}
func (ix *index) reset() { ix.n.Store(0) }

// offset index entries
func (ix *index) offsetEntry(i int64) (rel uint32, pos uint32) {
	e := ix.mm[i*offsetEntrySize:]
	return binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
}

// appendOffset adds (rel, pos); false if the index is full.
// REQUIRES: single writer; rel and pos larger than the last entry's.
func (ix *index) appendOffset(rel, pos uint32) bool {
	n := ix.n.Load()
	if ix.full() || ix.create() != nil || !ix.reserve(n) {
		return false
	}
	if invariants.Enabled && n > 0 {
		ix.checkOffsetEntry(n, rel, pos)
	}
	e := ix.mm[n*offsetEntrySize:]
	binary.BigEndian.PutUint32(e, rel)
	binary.BigEndian.PutUint32(e[4:], pos)
	ix.n.Store(n + 1)
	return true
}

// lookupOffset returns the entry with the largest relative offset <= rel,
// or (0, 0) when there is none (start of segment).
func (ix *index) lookupOffset(rel uint32) (uint32, uint32) {
	return ix.lastOffsetEntry(func(r, _ uint32) bool { return r <= rel })
}

// lookupPosition returns the entry with the largest position <= pos.
func (ix *index) lookupPosition(pos uint32) (uint32, uint32) {
	return ix.lastOffsetEntry(func(_, p uint32) bool { return p <= pos })
}

// lastOffsetEntry binary-searches the offset index (sorted by both offset
// and position) for the last entry satisfying le; (0, 0) when none does.
func (ix *index) lastOffsetEntry(le func(rel, pos uint32) bool) (uint32, uint32) {
	lo, hi := int64(0), ix.n.Load() // find the first entry for which le is false
	for lo < hi {
		m := int64(uint64(lo+hi) >> 1)
		if le(ix.offsetEntry(m)) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, 0
	}
	return ix.offsetEntry(lo - 1)
}

// time index entries
func (ix *index) timeEntry(i int64) (ts int64, rel uint32) {
	e := ix.mm[i*timeEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), binary.BigEndian.Uint32(e[8:])
}

func (ix *index) lastTime() (int64, bool) {
	n := ix.n.Load()
	if n == 0 {
		return 0, false
	}
	ts, _ := ix.timeEntry(n - 1)
	return ts, true
}

// maybeAppendTime adds (ts, rel) if ts is larger than the last entry's
// timestamp (the time index is monotonic, as in Kafka).
func (ix *index) maybeAppendTime(ts int64, rel uint32) bool {
	if last, ok := ix.lastTime(); ok && ts <= last {
		return true
	}
	n := ix.n.Load()
	if ix.full() || ix.create() != nil || !ix.reserve(n) {
		return false
	}
	if invariants.Enabled && n > 0 {
		ix.checkTimeEntry(n, ts, rel)
	}
	e := ix.mm[n*timeEntrySize:]
	binary.BigEndian.PutUint64(e, uint64(ts))
	binary.BigEndian.PutUint32(e[8:], rel)
	ix.n.Store(n + 1)
	return true
}

// lookupTime returns the relative offset of the entry with the largest
// timestamp <= ts, or 0 (segment start) when there is none.
func (ix *index) lookupTime(ts int64) uint32 {
	lo, hi := int64(0), ix.n.Load()
	for lo < hi {
		m := int64(uint64(lo+hi) >> 1)
		if t, _ := ix.timeEntry(m); t <= ts {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0
	}
	_, rel := ix.timeEntry(lo - 1)
	return rel
}

// sync flushes the mapping to the file (msync), for roll and clean close.
func (ix *index) sync() error {
	if len(ix.mm) == 0 {
		return nil
	}
	return ix.fs.Msync(ix.f, ix.mm)
}

// trim shrinks the file to the used entries. The mapping is kept: only
// entries below n are ever read, and they are inside the file. It does not
// sync (see segment.syncIndexes): a roll must not wait for the disk.
func (ix *index) trim() error {
	if ix.f == nil {
		return nil // never created: no entries, no file
	}
	return ix.fs.Truncate(ix.f, ix.n.Load()*int64(ix.entrySize))
}

func (ix *index) close() error {
	var err error
	if ix.mm != nil {
		err = ix.fs.Munmap(ix.mm)
		ix.mm = nil
	}
	if ix.f != nil {
		if e := ix.f.Close(); err == nil {
			err = e
		}
	}
	return err
}

// sane reports whether a read-only-opened index looks usable for a segment of
// logSize bytes: entries strictly increasing and positions inside the log.
// Kafka does a lighter check; a full walk is cheap at these sizes and catches
// zero-filled tails left by a crash.
func (ix *index) saneOffsets(logSize int64) bool {
	n := ix.n.Load()
	var prevRel, prevPos uint32
	for i := int64(0); i < n; i++ {
		rel, pos := ix.offsetEntry(i)
		if i > 0 && (rel <= prevRel || pos <= prevPos) || int64(pos) >= logSize {
			return false
		}
		prevRel, prevPos = rel, pos
	}
	return true
}

func (ix *index) saneTimes() bool {
	n := ix.n.Load()
	var prev int64
	for i := int64(0); i < n; i++ {
		ts, _ := ix.timeEntry(i)
		if i > 0 && ts <= prev {
			return false
		}
		prev = ts
	}
	return true
}
