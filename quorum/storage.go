// The durable raft log (storage.go) is a Kafka-format log in
// __cluster_metadata-0: one record batch v2 per entry in segments named by
// their first index, the hard state in quorum-state, and snapshots in
// <index>-<term>.checkpoint files, all written through storage.FS and
// fsynced before a write returns.
package quorum

// DiskStorage: the durable raft log of the metadata quorum.
//
// On disk, in <first log dir>/__cluster_metadata-0:
//
//	.lock                                  storage.LockDir's flock, taken first
//	00000000000000000001.log               segments, named by the raft index of
//	00000000000000004711.log               their first entry; a new one starts
//	                                       when the last reaches SegmentBytes
//	quorum-state                           hard state and compaction point
//	00000000000000004000-0000000003.checkpoint   snapshots, <index>-<term>,
//	00000000000000009000-0000000004.checkpoint   the newest two kept
//
// A segment is a Kafka log: one record batch v2 per raft entry (magic 2,
// CRC32C), baseOffset = entry index, partitionLeaderEpoch = entry term (a
// term past MaxInt32 is refused), exactly one record whose value is the
// entry's Data (null for nil Data) and, for a type other than EntryNormal,
// a record header "raft.type" holding the type in one byte. Entries are
// consecutive across segments: a segment's name is the index after the
// previous segment's last entry. quorum-state and the checkpoints are our
// own small formats with a CRC32C (drawn in storage_codec.go), each
// replaced whole through storage.WriteFileAtomic (temp file, fsync,
// rename, fsync of the directory).
//
// Every write method fsyncs what it wrote (and the directory when it made
// or removed a file) before it returns nil. The order of the steps is what
// makes a crash between them safe:
//
//   - Append writes and fsyncs a segment before starting the next one, so
//     only the last segment can hold a torn write. Overwriting a conflicting
//     suffix first removes the later segments (newest first) and truncates
//     and fsyncs the one holding the conflict point; a crash in between
//     leaves a prefix of the old log.
//   - Compact records the compaction point in quorum-state, then removes
//     the segments wholly below it (oldest first) when a durable snapshot
//     covers them. Segments that survive a crash there are below the log's
//     start and ignored.
//   - ApplySnapshot writes the checkpoint, removes every segment newest
//     first, then records the snapshot as the log's start in quorum-state.
//     A crash before that leaves segments that do not hold the snapshot's
//     index and term (raft applies a snapshot only when its log does not):
//     open takes the log to start after the snapshot and finishes the
//     removal of the segments past it, the checkpoint being the durable
//     decision. (A snapshot the log holds was made by CreateSnapshot, which
//     does not move the log's start.)
//
// Open reads every segment, checks every batch, and keeps index, term,
// position and size of each entry in memory; Entries reads the batches back
// with pread. A torn tail of the last segment (a batch that does not frame
// or checksum, with no valid batch after it) is cut, as storage/ recovery
// does: it was never acknowledged, since Append fsyncs before returning.
// Anything else that does not check out (a bad batch in an earlier segment
// or followed by valid ones, a gap between segments, a bad quorum-state, a
// file this package does not write) fails the open with the file named and
// nothing on disk changed.
//
// Rejected: deriving the log's start from the newest snapshot alone (a
// CreateSnapshot does not move it, an ApplySnapshot does, and Compact may
// move it without any snapshot), hence the compaction point in
// quorum-state; and dropping segments on Compact without a snapshot that
// covers them (the entries would exist nowhere else on this node).
//
// Known limit: a bad batch at the very end of the last segment is taken for
// a torn write even if it was bit rot in an acknowledged entry; and a torn
// write that left a hole (later pages of one write on disk, earlier ones
// not) is taken for damage and fails the open rather than risk cutting
// acknowledged entries.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/ringbroker/ringbroker/storage"
)

// MetadataLogDir is the directory name of the metadata log under the first
// log dir, as KRaft names it.
const MetadataLogDir = "__cluster_metadata-0"

// DefaultSegmentBytes is the size at which a segment rolls by default.
const DefaultSegmentBytes = 8 << 20

const (
	stateFile        = "quorum-state"
	segmentSuffix    = ".log"
	checkpointSuffix = ".checkpoint"
	tmpSuffix        = ".tmp" // storage.WriteFileAtomic's temp files
	checkpointsKept  = 2
)

// DiskStorageOptions configure OpenDiskStorageOptions.
type DiskStorageOptions struct {
	FS           storage.FS // nil: storage.DefaultFS
	SegmentBytes int64      // roll size; <= 0: DefaultSegmentBytes
}

// DiskStorage is the raft log on disk (LogStore); see the layout above. It
// is safe for concurrent use: one mutex covers everything, reads included
// (Entries preads under it).
//
// After a write method failed part way, memory and disk may disagree: every
// later write returns the first error (reads keep answering from memory).
// Reopen to recover.
type DiskStorage struct {
	mu           sync.Mutex
	dir          string
	fs           storage.FS
	segmentBytes int64
	lock         *storage.DirLock

	hardState *raftpb.HardState // nil until SetHardState, as MemoryStorage
	snapshot  *raftpb.Snapshot  // EnsureSnapshot'd; data kept in memory
	// compactIndex/Term: what quorum-state holds.
	compactIndex, compactTerm uint64
	// offset is MemoryStorage's ents[0]: the log holds offset+1..; Term
	// answers for offset too.
	offset, offsetTerm uint64
	ents               []entryMeta // ents[k] is index offset+1+k
	segs               []*segment  // by base; the first ones may lie wholly at or below offset
	broken             error
	closed             bool
}

type segment struct {
	base uint64 // index of its first entry (the file name)
	next uint64 // index after its last entry
	path string
	f    *os.File
	size int64 // bytes of whole batches
}

type entryMeta struct {
	term   uint64
	seg    *segment
	pos    int64
	length int32
	size   uint32
}

var _ LogStore = (*DiskStorage)(nil)

// DiskStorageHolds reports, reading only, whether dir holds anything of a
// raft log: a hard state file, a snapshot checkpoint or a non-empty
// segment. A missing dir holds nothing. A node uses it to tell a first
// start from a log that was lost before it opens (and so creates) dir.
func DiskStorageHolds(dir string, fs storage.FS) (bool, error) {
	if fs == nil {
		fs = storage.DefaultFS
	}
	des, err := fs.ReadDir(dir)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, de := range des {
		name := de.Name()
		if name == stateFile {
			return true, nil
		}
		if _, ok := parseCheckpointName(name); ok {
			return true, nil
		}
		if _, ok := parseSegmentName(name); ok {
			info, err := de.Info()
			if err != nil {
				return false, err
			}
			if info.Size() > 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

// OpenDiskStorage opens (creating if needed) the raft log in dir through fs
// with the default segment size.
func OpenDiskStorage(dir string, fs storage.FS) (*DiskStorage, error) {
	return OpenDiskStorageOptions(dir, DiskStorageOptions{FS: fs})
}

// OpenDiskStorageOptions opens (creating if needed) the raft log in dir,
// recovering a torn tail; see the package layout for what fails an open.
func OpenDiskStorageOptions(dir string, opts DiskStorageOptions) (*DiskStorage, error) {
	fs := opts.FS
	if fs == nil {
		fs = storage.DefaultFS
	}
	s := &DiskStorage{dir: dir, fs: fs, segmentBytes: opts.SegmentBytes}
	if s.segmentBytes <= 0 {
		s.segmentBytes = DefaultSegmentBytes
	}
	_, statErr := fs.Stat(dir)
	lock, err := storage.LockDir(fs, dir)
	if err != nil {
		return nil, err
	}
	if os.IsNotExist(statErr) {
		if err := fs.SyncDir(filepath.Dir(dir)); err != nil {
			lock.Release()
			return nil, err
		}
	}
	s.lock = lock
	if err := s.load(); err != nil {
		s.closeFiles()
		lock.Release()
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	return s, nil
}

type checkpointName struct {
	index, term uint64
	name        string
}

// parseSegmentName and parseCheckpointName accept exactly the names this
// package writes.
func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(base) != 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(base, 10, 64)
	return v, err == nil
}

func parseCheckpointName(name string) (checkpointName, bool) {
	stem, ok := strings.CutSuffix(name, checkpointSuffix)
	if !ok || len(stem) != 31 || stem[20] != '-' {
		return checkpointName{}, false
	}
	i, err1 := strconv.ParseUint(stem[:20], 10, 64)
	t, err2 := strconv.ParseUint(stem[21:], 10, 64)
	return checkpointName{index: i, term: t, name: name}, err1 == nil && err2 == nil
}

func segmentName(base uint64) string { return fmt.Sprintf("%020d%s", base, segmentSuffix) }

func checkpointFileName(index, term uint64) string {
	return fmt.Sprintf("%020d-%010d%s", index, term, checkpointSuffix)
}

// loadedSegment is a segment read at open, before anything is decided.
type loadedSegment struct {
	seg   *segment
	ents  []decodedEntry
	valid int64 // bytes of whole entries
	size  int64 // bytes in the file
	torn  error // last segment only: why its tail is cut
}

// load reads the directory; it changes nothing on disk until every check
// passed, then cuts a torn tail and finishes an interrupted ApplySnapshot.
func (s *DiskStorage) load() error {
	des, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var segBases []uint64
	var cps []checkpointName
	haveState := false
	for _, de := range des {
		name := de.Name()
		switch {
		case name == storage.LockFile:
		case name == stateFile:
			haveState = true
		case strings.HasSuffix(name, tmpSuffix) && (name == stateFile+tmpSuffix || isCheckpointTmp(name)):
			// A WriteFileAtomic that did not finish: never the file's
			// content, replaced by the next write of it.
		default:
			if base, ok := parseSegmentName(name); ok && de.Type().IsRegular() {
				segBases = append(segBases, base)
				continue
			}
			if cp, ok := parseCheckpointName(name); ok && de.Type().IsRegular() {
				cps = append(cps, cp)
				continue
			}
			return fmt.Errorf("%s: unknown file in the raft log directory", filepath.Join(s.dir, name))
		}
	}

	var st quorumState
	if haveState {
		path := filepath.Join(s.dir, stateFile)
		b, err := s.fs.ReadFile(path)
		if err != nil {
			return err
		}
		if st, err = decodeState(b); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	s.hardState, s.compactIndex, s.compactTerm = st.hardState, st.compactIndex, st.compactTerm

	// The newest checkpoint that checks out; any that does not is noted
	// so that open does not also remove segments on its word.
	sort.Slice(cps, func(i, j int) bool { return cps[i].index > cps[j].index })
	s.snapshot = raftpb.EnsureSnapshot(nil)
	allCheckpointsValid, found := true, false
	var badCheckpoint error
	for _, cp := range cps {
		path := filepath.Join(s.dir, cp.name)
		b, err := s.fs.ReadFile(path)
		if err != nil {
			return err
		}
		snap, err := decodeCheckpoint(b)
		if err == nil && (snap.GetMetadata().GetIndex() != cp.index || snap.GetMetadata().GetTerm() != cp.term) {
			err = fmt.Errorf("holds snapshot %d-%d", snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm())
		}
		if err != nil {
			allCheckpointsValid = false
			badCheckpoint = fmt.Errorf("%s: %w", path, err)
			continue
		}
		s.snapshot, found = snap, true
		break
	}
	if len(cps) > 0 && !found {
		return badCheckpoint
	}
	snapIndex, snapTerm := s.snapshot.GetMetadata().GetIndex(), s.snapshot.GetMetadata().GetTerm()

	// Segments: every batch checked; only the last may end torn.
	slices.Sort(segBases)
	loaded := make([]loadedSegment, 0, len(segBases))
	for k, base := range segBases {
		path := filepath.Join(s.dir, segmentName(base))
		b, err := s.fs.ReadFile(path)
		if err != nil {
			return err
		}
		ents, valid, stop := decodeSegment(b, base)
		ls := loadedSegment{ents: ents, valid: int64(valid), size: int64(len(b))}
		ls.seg = &segment{base: base, next: base + uint64(len(ents)), path: path, size: int64(valid)}
		if stop != nil {
			last := k == len(segBases)-1
			if !last {
				return fmt.Errorf("%s: %w (not the last segment, so not a torn write)", path, stop)
			}
			if q, ok := entryBatchAfter(b, valid, ls.seg.next); ok {
				return fmt.Errorf("%s: %w, with a valid batch after it at byte %d (damage, not a torn write)", path, stop, q)
			}
			ls.torn = stop
		}
		loaded = append(loaded, ls)
	}

	// Where the log starts (MemoryStorage's ents[0]). Compact moves it to
	// the compaction point in quorum-state, ApplySnapshot to the snapshot;
	// CreateSnapshot does not move it. So a snapshot past the compaction
	// point that the log holds (same index and term) was created from the
	// log, and the log starts at the compaction point; one the log does not
	// hold was applied, and the log starts after it.
	s.offset, s.offsetTerm = s.compactIndex, s.compactTerm
	fromSnapshot := false
	if snapIndex >= s.compactIndex {
		held := false
		for _, ls := range loaded {
			if ls.seg.base <= snapIndex && snapIndex < ls.seg.next {
				held = ls.ents[snapIndex-ls.seg.base].term == snapTerm
			}
		}
		if !held || snapIndex == s.compactIndex {
			s.offset, s.offsetTerm, fromSnapshot = snapIndex, snapTerm, true
		}
	}

	for k, ls := range loaded {
		base, path := ls.seg.base, ls.seg.path
		if k > 0 {
			prev := loaded[k-1].seg
			dead := prev.next <= s.offset+1
			if base != prev.next && !(dead && base > prev.next) {
				return fmt.Errorf("%s: starts at index %d, but %s ends before %d", path, base, prev.path, prev.next)
			}
			if len(loaded[k-1].ents) == 0 {
				return fmt.Errorf("%s: empty segment before %s", prev.path, path)
			}
		}
	}

	// The live log: segments holding entries past offset (or the empty
	// tail the next entry goes to).
	firstLive := len(loaded)
	for k, ls := range loaded {
		if ls.seg.next > s.offset+1 {
			firstLive = k
			break
		}
	}
	superseded := false
	if firstLive < len(loaded) {
		ls := loaded[firstLive]
		switch {
		case ls.seg.base > s.offset+1:
			return fmt.Errorf("%s: starts at index %d, past the log's start %d (a gap)", ls.seg.path, ls.seg.base, s.offset+1)
		case ls.seg.base <= s.offset && ls.ents[s.offset-ls.seg.base].term != s.offsetTerm:
			t := ls.ents[s.offset-ls.seg.base].term
			if !fromSnapshot || !allCheckpointsValid {
				return fmt.Errorf("%s: entry %d has term %d, the compaction point says %d", ls.seg.path, s.offset, t, s.offsetTerm)
			}
			// ApplySnapshot wrote the checkpoint and crashed before
			// removing the log it replaces.
			superseded = true
		}
	}

	var removeFrom int
	if superseded {
		removeFrom = firstLive
		loaded[len(loaded)-1].torn = nil // removed whole, not cut
	} else {
		removeFrom = len(loaded)
	}
	for _, ls := range loaded[:removeFrom] {
		s.segs = append(s.segs, ls.seg)
	}
	for _, ls := range loaded[:removeFrom] {
		for _, de := range ls.ents {
			if de.index > s.offset {
				s.ents = append(s.ents, entryMeta{term: de.term, seg: ls.seg, pos: de.pos, length: de.length, size: de.size})
			}
		}
	}
	if hs := s.hardState; hs != nil && hs.GetCommit() > s.lastIndex() {
		return fmt.Errorf("%s: commit index %d past the log's last index %d", filepath.Join(s.dir, stateFile), hs.GetCommit(), s.lastIndex())
	}

	// Every check passed: now open the files and change what must change.
	for _, seg := range s.segs {
		if seg.f, err = s.fs.OpenFile(seg.path, os.O_RDWR, 0); err != nil {
			return err
		}
	}
	if n := len(s.segs); n > 0 && loaded[n-1].torn != nil {
		tail := s.segs[n-1]
		if err := s.fs.Truncate(tail.f, tail.size); err != nil {
			return fmt.Errorf("cut torn tail of %s at byte %d: %w", tail.path, tail.size, err)
		}
		if err := s.fs.Sync(tail.f); err != nil {
			return err
		}
	}
	if removeFrom < len(loaded) {
		for k := len(loaded) - 1; k >= removeFrom; k-- {
			if err := s.fs.Remove(loaded[k].seg.path); err != nil {
				return err
			}
		}
		if err := s.fs.SyncDir(s.dir); err != nil {
			return err
		}
	}
	return nil
}

func isCheckpointTmp(name string) bool {
	_, ok := parseCheckpointName(strings.TrimSuffix(name, tmpSuffix))
	return ok
}

// Close closes the files and releases the directory lock. Everything was
// durable already.
func (s *DiskStorage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.closeFiles()
	return errors.Join(err, s.lock.Release())
}

func (s *DiskStorage) closeFiles() error {
	var errs []error
	for _, seg := range s.segs {
		if seg.f != nil {
			errs = append(errs, seg.f.Close())
			seg.f = nil
		}
	}
	return errors.Join(errs...)
}

// ---- raft.Storage (reads) ----

// InitialState implements raft.Storage.
func (s *DiskStorage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hs *raftpb.HardState
	if s.hardState != nil {
		hs = proto.Clone(s.hardState).(*raftpb.HardState)
	}
	// As MemoryStorage: the ConfState is Ensure'd in place (AutoLeave
	// set), which Snapshot then shows too.
	s.snapshot.Metadata.ConfState = raftpb.EnsureConfState(s.snapshot.Metadata.ConfState)
	return hs, proto.Clone(s.snapshot.Metadata.ConfState).(*raftpb.ConfState), nil
}

func (s *DiskStorage) lastIndex() uint64 { return s.offset + uint64(len(s.ents)) }

// FirstIndex implements raft.Storage.
func (s *DiskStorage) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset + 1, nil
}

// LastIndex implements raft.Storage.
func (s *DiskStorage) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastIndex(), nil
}

// Term implements raft.Storage.
func (s *DiskStorage) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term(i)
}

func (s *DiskStorage) term(i uint64) (uint64, error) {
	switch {
	case i < s.offset:
		return 0, raft.ErrCompacted
	case i == s.offset:
		return s.offsetTerm, nil
	case i-s.offset > uint64(len(s.ents)):
		return 0, raft.ErrUnavailable
	}
	return s.ents[i-s.offset-1].term, nil
}

// Snapshot implements raft.Storage.
func (s *DiskStorage) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return proto.Clone(s.snapshot).(*raftpb.Snapshot), nil
}

// Entries implements raft.Storage: entries [lo, hi), as many as fit
// maxSize (by proto.Size, as MemoryStorage counts) but at least one, read
// from the segments. Where MemoryStorage panics (hi past the last index),
// it returns an error.
func (s *DiskStorage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lo <= s.offset {
		return nil, raft.ErrCompacted
	}
	if hi > s.lastIndex()+1 || lo > hi {
		return nil, fmt.Errorf("raft log entries [%d, %d) out of bounds [%d, %d]", lo, hi, s.offset+1, s.lastIndex())
	}
	if len(s.ents) == 0 {
		return nil, raft.ErrUnavailable
	}
	metas := s.ents[lo-s.offset-1 : hi-s.offset-1]
	if len(metas) == 0 {
		return []*raftpb.Entry{}, nil
	}
	n, size := 1, uint64(metas[0].size)
	for ; n < len(metas); n++ {
		size += uint64(metas[n].size)
		if size > maxSize {
			break
		}
	}
	metas = metas[:n]
	out := make([]*raftpb.Entry, 0, n)
	// One pread per run of entries in the same segment.
	for len(metas) > 0 {
		run := 1
		for run < len(metas) && metas[run].seg == metas[0].seg {
			run++
		}
		first, last := metas[0], metas[run-1]
		buf := make([]byte, last.pos+int64(last.length)-first.pos)
		if err := s.readFull(first.seg, buf, first.pos); err != nil {
			return nil, err
		}
		for k, m := range metas[:run] {
			b := buf[m.pos-first.pos : m.pos-first.pos+int64(m.length)]
			e, err := decodeEntry(b)
			idx := lo + uint64(len(out))
			if err == nil && (e.GetIndex() != idx || e.GetTerm() != m.term) {
				err = fmt.Errorf("holds entry %d term %d where %d term %d was expected", e.GetIndex(), e.GetTerm(), idx, m.term)
			}
			if err != nil {
				return nil, fmt.Errorf("%s at byte %d: %w", first.seg.path, metas[k].pos, err)
			}
			out = append(out, e)
		}
		metas = metas[run:]
	}
	return out, nil
}

func (s *DiskStorage) readFull(seg *segment, b []byte, off int64) error {
	for n := 0; n < len(b); {
		m, err := s.fs.Pread(seg.f, b[n:], off+int64(n))
		if err != nil {
			return err
		}
		if m == 0 {
			return fmt.Errorf("%s: short read at byte %d", seg.path, off+int64(n))
		}
		n += m
	}
	return nil
}

// ---- writes ----

// writable reports the error a write method must return before doing
// anything.
func (s *DiskStorage) writable() error {
	if s.closed {
		return errors.New("raft log storage is closed")
	}
	if s.broken != nil {
		return fmt.Errorf("raft log storage failed earlier, reopen it: %w", s.broken)
	}
	return nil
}

// fail records err as the reason memory and disk may now disagree.
func (s *DiskStorage) fail(err error) error {
	if err != nil && s.broken == nil {
		s.broken = err
	}
	return err
}

// SetHardState implements LogStore: quorum-state replaced atomically.
func (s *DiskStorage) SetHardState(st *raftpb.HardState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	var hs *raftpb.HardState
	if st != nil {
		hs = proto.Clone(st).(*raftpb.HardState)
	}
	if err := s.writeState(hs, s.compactIndex, s.compactTerm); err != nil {
		return err
	}
	s.hardState = hs
	return nil
}

func (s *DiskStorage) writeState(hs *raftpb.HardState, compactIndex, compactTerm uint64) error {
	b, err := encodeState(quorumState{hardState: hs, compactIndex: compactIndex, compactTerm: compactTerm})
	if err != nil {
		return err // nothing written
	}
	return s.fail(storage.WriteFileAtomic(s.fs, filepath.Join(s.dir, stateFile), b))
}

// Append implements LogStore with MemoryStorage's rules: entries at or
// below the first index are skipped, an overlap with the tail replaces the
// conflicting suffix, and a gap after the last index is an error (where
// MemoryStorage panics).
func (s *DiskStorage) Append(entries []*raftpb.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	first := s.offset + 1
	last := entries[0].GetIndex() + uint64(len(entries)) - 1
	if last < first {
		return nil
	}
	if first > entries[0].GetIndex() {
		entries = entries[first-entries[0].GetIndex():]
	}
	start := entries[0].GetIndex()
	if start > s.lastIndex()+1 {
		return fmt.Errorf("raft log append at %d leaves a gap after the last index %d", start, s.lastIndex())
	}
	if si := s.snapshot.GetMetadata().GetIndex(); start <= si && start <= s.lastIndex() {
		// raft snapshots applied entries, which it never replaces; and
		// open tells a created snapshot from an applied one by whether the
		// log holds it.
		return fmt.Errorf("raft log append at %d would replace entries up to the snapshot at %d", start, si)
	}
	// Encode everything before touching the disk (a refused term or a
	// non-consecutive index changes nothing).
	batches := make([][]byte, len(entries))
	sizes := make([]uint32, len(entries))
	for k, e := range entries {
		if e.GetIndex() != start+uint64(k) {
			return fmt.Errorf("raft log append: entry %d at position %d of a run starting at %d", e.GetIndex(), k, start)
		}
		b, err := encodeEntry(nil, e)
		if err != nil {
			return err
		}
		batches[k] = b
		sizes[k] = uint32(proto.Size(canonicalEntry(e)))
	}
	if start <= s.lastIndex() {
		if err := s.truncateFrom(start); err != nil {
			return err
		}
	}
	return s.fail(s.appendBatches(start, entries, batches, sizes))
}

// canonicalEntry is e as Entries will return it (Type set only when not
// EntryNormal), for the size Entries counts.
func canonicalEntry(e *raftpb.Entry) *raftpb.Entry {
	c := &raftpb.Entry{Index: proto.Uint64(e.GetIndex()), Term: proto.Uint64(e.GetTerm()), Data: e.Data}
	if e.GetType() != raftpb.EntryType_EntryNormal {
		c.Type = e.GetType().Enum()
	}
	return c
}

// truncateFrom durably removes entries from index i on (offset < i <=
// lastIndex): later segments removed newest first and the directory
// fsynced, then the one holding i cut and fsynced.
func (s *DiskStorage) truncateFrom(i uint64) error {
	removed := false
	for len(s.segs) > 0 && s.segs[len(s.segs)-1].base >= i {
		seg := s.segs[len(s.segs)-1]
		seg.f.Close()
		seg.f = nil
		if err := s.fs.Remove(seg.path); err != nil {
			return s.fail(err)
		}
		s.segs = s.segs[:len(s.segs)-1]
		removed = true
	}
	// The removals are durable before the cut: a crash in between must
	// not bring later segments back behind a shorter one.
	if removed {
		if err := s.fs.SyncDir(s.dir); err != nil {
			return s.fail(err)
		}
	}
	if len(s.segs) > 0 && s.segs[len(s.segs)-1].next > i {
		seg := s.segs[len(s.segs)-1]
		pos := s.ents[i-s.offset-1].pos
		if err := s.fs.Truncate(seg.f, pos); err != nil {
			return s.fail(err)
		}
		if err := s.fs.Sync(seg.f); err != nil {
			return s.fail(err)
		}
		seg.size, seg.next = pos, i
	}
	s.ents = s.ents[:i-s.offset-1]
	return nil
}

// appendBatches writes the batches of entries start.. at the tail, rolling
// to a new segment at segmentBytes; each segment is fsynced before the next
// is created, the directory after a segment was created.
func (s *DiskStorage) appendBatches(start uint64, entries []*raftpb.Entry, batches [][]byte, sizes []uint32) error {
	created := false
	var buf []byte
	var tail *segment
	var bufStart int64
	flush := func() error {
		if tail == nil || len(buf) == 0 {
			return nil
		}
		n, err := s.fs.WriteAt(tail.f, buf, bufStart)
		if err == nil && n < len(buf) {
			err = fmt.Errorf("write %s: short write (%d of %d bytes)", tail.path, n, len(buf))
		}
		if err != nil {
			return err
		}
		if err := s.fs.Sync(tail.f); err != nil {
			return err
		}
		buf = buf[:0]
		return nil
	}
	for k := range entries {
		idx := start + uint64(k)
		if tail == nil {
			if n := len(s.segs); n > 0 && s.segs[n-1].next == idx && s.segs[n-1].size < s.segmentBytes {
				tail = s.segs[n-1]
				bufStart = tail.size
			}
		} else if tail.size >= s.segmentBytes {
			if err := flush(); err != nil {
				return err
			}
			// A segment made by this Append is in the directory before
			// the next one is: whatever the filesystem's ordering, a
			// crash cannot keep a later segment and lose an earlier one.
			if created {
				if err := s.fs.SyncDir(s.dir); err != nil {
					return err
				}
				created = false
			}
			tail = nil
		}
		if tail == nil {
			seg := &segment{base: idx, next: idx, path: filepath.Join(s.dir, segmentName(idx))}
			f, err := s.fs.OpenFile(seg.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			seg.f = f
			s.segs = append(s.segs, seg)
			created = true
			tail, bufStart = seg, 0
		}
		buf = append(buf, batches[k]...)
		s.ents = append(s.ents, entryMeta{term: entries[k].GetTerm(), seg: tail, pos: tail.size, length: int32(len(batches[k])), size: sizes[k]})
		tail.size += int64(len(batches[k]))
		tail.next = idx + 1
	}
	if err := flush(); err != nil {
		return err
	}
	if created {
		return s.fs.SyncDir(s.dir)
	}
	return nil
}

// CreateSnapshot implements LogStore: a snapshot at i (offset <= i <=
// lastIndex) with the term of i, written as a checkpoint; the older
// checkpoints past the newest two are removed.
func (s *DiskStorage) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return nil, err
	}
	if i <= s.snapshot.GetMetadata().GetIndex() {
		return nil, raft.ErrSnapOutOfDate
	}
	if i > s.lastIndex() {
		return nil, fmt.Errorf("snapshot %d is past the last index %d", i, s.lastIndex())
	}
	term, err := s.term(i)
	if err != nil {
		return nil, err
	}
	snap := proto.Clone(s.snapshot).(*raftpb.Snapshot)
	snap.Metadata.Index = proto.Uint64(i)
	snap.Metadata.Term = proto.Uint64(term)
	if cs != nil {
		snap.Metadata.ConfState = proto.Clone(cs).(*raftpb.ConfState)
	}
	snap.Data = data
	if err := s.writeCheckpoint(snap); err != nil {
		return nil, err
	}
	s.snapshot = snap
	return proto.Clone(snap).(*raftpb.Snapshot), s.fail(s.pruneCheckpoints())
}

func (s *DiskStorage) writeCheckpoint(snap *raftpb.Snapshot) error {
	b, err := encodeCheckpoint(snap)
	if err != nil {
		return err
	}
	path := filepath.Join(s.dir, checkpointFileName(snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()))
	return s.fail(storage.WriteFileAtomic(s.fs, path, b))
}

// pruneCheckpoints removes the checkpoints older than the newest
// checkpointsKept, oldest first.
func (s *DiskStorage) pruneCheckpoints() error {
	des, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var cps []checkpointName
	for _, de := range des {
		if cp, ok := parseCheckpointName(de.Name()); ok {
			cps = append(cps, cp)
		}
	}
	if len(cps) <= checkpointsKept {
		return nil
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].index < cps[j].index })
	for _, cp := range cps[:len(cps)-checkpointsKept] {
		if err := s.fs.Remove(filepath.Join(s.dir, cp.name)); err != nil {
			return err
		}
	}
	return s.fs.SyncDir(s.dir)
}

// ApplySnapshot implements LogStore: the checkpoint is written, then the
// whole log is removed (newest segment first); the log starts after the
// snapshot. A snapshot below the compaction point is refused (raft never
// applies one below its commit index, which bounds compaction).
func (s *DiskStorage) ApplySnapshot(snap *raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	snap = proto.Clone(raftpb.EnsureSnapshot(snap)).(*raftpb.Snapshot)
	cur, idx := s.snapshot.GetMetadata().GetIndex(), snap.GetMetadata().GetIndex()
	if cur != 0 && cur >= idx {
		return raft.ErrSnapOutOfDate
	}
	if idx < s.compactIndex {
		return fmt.Errorf("snapshot %d is below the compaction point %d", idx, s.compactIndex)
	}
	if err := s.writeCheckpoint(snap); err != nil {
		return err
	}
	s.snapshot = snap
	for len(s.segs) > 0 {
		seg := s.segs[len(s.segs)-1]
		seg.f.Close()
		seg.f = nil
		if err := s.fs.Remove(seg.path); err != nil {
			return s.fail(err)
		}
		s.segs = s.segs[:len(s.segs)-1]
	}
	s.ents = nil
	s.offset, s.offsetTerm = idx, snap.GetMetadata().GetTerm()
	if err := s.fs.SyncDir(s.dir); err != nil {
		return s.fail(err)
	}
	// The log start moved to the snapshot: recorded so that a later
	// CreateSnapshot (which the log holds) does not hide it at open.
	if err := s.writeState(s.hardState, s.offset, s.offsetTerm); err != nil {
		return err
	}
	s.compactIndex, s.compactTerm = s.offset, s.offsetTerm
	return s.fail(s.pruneCheckpoints())
}

// Compact implements LogStore: the log starts after i (offset < i <=
// lastIndex), term(i) kept. The point is written to quorum-state; the
// segments wholly below i are removed only when a durable snapshot at or
// past i covers them.
func (s *DiskStorage) Compact(i uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if i <= s.offset {
		return raft.ErrCompacted
	}
	if i > s.lastIndex() {
		return fmt.Errorf("compact %d is past the last index %d", i, s.lastIndex())
	}
	term, _ := s.term(i)
	if err := s.writeState(s.hardState, i, term); err != nil {
		return err
	}
	s.compactIndex, s.compactTerm = i, term
	s.ents = s.ents[i-s.offset:]
	s.offset, s.offsetTerm = i, term
	if s.snapshot.GetMetadata().GetIndex() < i {
		return nil
	}
	removed := 0
	for removed < len(s.segs)-1 && s.segs[removed].next <= i {
		seg := s.segs[removed]
		seg.f.Close()
		seg.f = nil
		if err := s.fs.Remove(seg.path); err != nil {
			s.segs = s.segs[removed:]
			return s.fail(err)
		}
		removed++
	}
	s.segs = s.segs[removed:]
	if removed > 0 {
		return s.fail(s.fs.SyncDir(s.dir))
	}
	return nil
}
