package storage

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// segment is one <base>.log file with its .index, .timeindex and, once a
// transaction was aborted in it, .txnindex (txnindex.go).
//
// Ownership: the Log's writer goroutine appends to the active segment and is
// the only writer of writer-owned fields. Fields marked "log.mu" are changed
// under the Log's mutex at write completion so readers see them together
// with the high watermark. size is additionally atomic so Region users can
// read it without the log lock.
type segment struct {
	fs   FS
	base int64
	path string // .log path; index paths derive from it
	f    *os.File
	idx  *index
	tidx *index
	txn  txnIndex     // .txnindex, loaded on first use; its own lock
	size atomic.Int64 // bytes of completed writes (what readers may see)
	// namesDurable: the files' directory entries are known to be on disk
	// (set by Log.durableNames, or at load for files found on disk).
	namesDurable atomic.Bool
	refs         atomic.Int32 // 1 for the log's own reference + one per outstanding Region
	unlnk        atomic.Bool  // files already unlinked (deleted by retention)

	// log.mu
	next        int64 // offset after the last completed batch
	maxTs       int64 // largest batch maxTimestamp, -1 if none
	maxTsOffset int64 // last offset of the batch carrying maxTs
	createdNs   int64 // clock time of creation, for segment.ms
	syncedTo    int64 // offsets below it are fdatasync'd in this file

	// writer goroutine
	bytesSinceIndex int
}

func segmentName(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

// createSegment makes a new empty active segment.
func createSegment(fs FS, dir string, base int64, cfg *Config, nowNs int64) (*segment, error) {
	p := segmentName(dir, base, ".log")
	f, err := fs.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	s := &segment{fs: fs, base: base, path: p, f: f, next: base, syncedTo: base, maxTs: -1, maxTsOffset: -1, createdNs: nowNs}
	s.refs.Store(1)
	// Index files are created at the first write (see index).
	if err := s.openIndexes(true, cfg.IndexMaxBytes, 0, 0); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// openIndexes opens both indexes; writable ones lazily (a missing file is
// created when the segment is first written, createIndexes).
func (s *segment) openIndexes(writable bool, maxBytes int, offEntries, timeEntries int64) error {
	var err error
	if s.idx, err = openIndex(s.fs, s.indexPath(), offsetEntrySize, writable, maxBytes, offEntries, true); err != nil {
		return err
	}
	if s.tidx, err = openIndex(s.fs, s.timeIndexPath(), timeEntrySize, writable, maxBytes, timeEntries, true); err != nil {
		s.idx.close()
		return err
	}
	return nil
}

// createIndexes creates a lazily opened segment's index files; the writer
// calls it before the segment's first write, so a failure fails that
// group cleanly and every written segment has its index files.
// REQUIRES: writer goroutine.
func (s *segment) createIndexes() error {
	if err := s.idx.create(); err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	if err := s.tidx.create(); err != nil {
		return fmt.Errorf("create time index: %w", err)
	}
	return nil
}

func (s *segment) indexPath() string {
	return s.path[:len(s.path)-len(".log")] + ".index"
}

func (s *segment) timeIndexPath() string {
	return s.path[:len(s.path)-len(".log")] + ".timeindex"
}

// indexBatch updates the sparse indexes for a batch just written at pos.
// Kafka's rule: an entry is added before a batch once more than
// index.interval.bytes have been written since the last entry.
// REQUIRES: writer goroutine (or the opener during recovery).
func (s *segment) indexBatch(pos int64, bi batchInfo, interval int, tsSoFar, tsOffSoFar *int64) {
	if bi.maxTimestamp > *tsSoFar {
		*tsSoFar, *tsOffSoFar = bi.maxTimestamp, bi.lastOffset()
	}
	if s.bytesSinceIndex > interval {
		s.idx.appendOffset(uint32(bi.baseOffset-s.base), uint32(pos))
		if *tsSoFar >= 0 {
			s.tidx.maybeAppendTime(*tsSoFar, uint32(*tsOffSoFar-s.base))
		}
		s.bytesSinceIndex = 0
	}
	s.bytesSinceIndex += bi.length
}

// rebuildIndexes scans the segment, checking every batch, and refills both
// indexes from scratch. It returns the scan result; the caller decides what
// to do with an invalid tail.
func (s *segment) rebuildIndexes(interval int, buf []byte) (scanResult, int64, int64, []byte) {
	s.idx.reset()
	s.tidx.reset()
	s.bytesSinceIndex = 0
	maxTs, maxTsOff := int64(-1), int64(-1)
	fi, err := s.f.Stat()
	if err != nil {
		return scanResult{nextOffset: s.base, stopReason: err, readErr: err}, maxTs, maxTsOff, buf
	}
	res, buf := scanSegment(fileReader{s.fs, s.f}, fi.Size(), s.base, buf, func(pos int64, bi batchInfo) {
		s.indexBatch(pos, bi, interval, &maxTs, &maxTsOff)
	})
	return res, maxTs, maxTsOff, buf
}

// trimIndexes appends the final time index entry and shrinks both index
// files to their used size (roll and close). It needs no log lock: entries
// are appended only by the writer, readers read only published ones, and
// those stay inside the trimmed file. It does no disk I/O wait.
func (s *segment) trimIndexes() error {
	if s.maxTs >= 0 {
		s.tidx.maybeAppendTime(s.maxTs, uint32(s.maxTsOffset-s.base))
	}
	if err := s.idx.trim(); err != nil {
		return err
	}
	return s.tidx.trim()
}

// syncIndexes writes both indexes' dirty pages to disk (msync). Rolled
// segments do it in the background flush and Close does it; nothing on an
// append path does. An index lost in a power failure is no data loss: load
// finds it missing or insane and rebuilds it from the segment.
func (s *segment) syncIndexes() error {
	if err := s.idx.sync(); err != nil {
		return err
	}
	if err := s.tidx.sync(); err != nil {
		return err
	}
	return s.syncTxn()
}

// untrimIndexes undoes trimIndexes when a roll fails halfway.
func (s *segment) untrimIndexes() error {
	for _, ix := range []*index{s.idx, s.tidx} {
		if ix.f == nil {
			continue // never created: nothing was trimmed
		}
		if err := ix.fs.Truncate(ix.f, int64(len(ix.mm))); err != nil {
			return err
		}
	}
	return nil
}

// acquire takes a reader reference. REQUIRES: the segment is still in the
// log's list (caller holds log.mu), so refs >= 1.
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the files.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.closeFiles()
	}
}

func (s *segment) closeFiles() error {
	err := s.idx.close()
	if e := s.tidx.close(); err == nil {
		err = e
	}
	if e := s.closeTxn(); err == nil {
		err = e
	}
	if e := s.f.Close(); err == nil {
		err = e
	}
	return err
}

// unlink removes the segment's files from the directory; open descriptors
// (outstanding Regions) keep working until released, which is what lets
// retention run while a fetch is splicing from the segment.
func (s *segment) unlink() error {
	if !s.unlnk.CompareAndSwap(false, true) {
		return nil
	}
	var first error
	for _, p := range []string{s.path, s.indexPath(), s.timeIndexPath()} {
		if err := s.fs.Remove(p); err != nil && !os.IsNotExist(err) && first == nil {
			first = err
		}
	}
	if err := s.unlinkTxn(); err != nil && first == nil {
		first = err
	}
	return first
}

// headerPool holds scratch for reading batch headers on the read path
// without allocating per call.
var headerPool = sync.Pool{New: func() any { return new([batchHeaderSize]byte) }}

// readHeader reads the batch header at pos. ok is false when there is no
// whole header below limit.
func (s *segment) readHeader(pos, limit int64, h *[batchHeaderSize]byte) (batchInfo, bool) {
	if limit-pos < batchHeaderSize {
		return batchInfo{}, false
	}
	if _, err := (fileReader{s.fs, s.f}).ReadAt(h[:], pos); err != nil {
		return batchInfo{}, false
	}
	bi, err := parseBatchHeader(h[:])
	if err != nil || int64(bi.length) > limit-pos {
		return batchInfo{}, false
	}
	return bi, true
}

// findOffset returns the position of the first batch whose last offset is >=
// off, below limit, using the sparse index then a short header scan.
func (s *segment) findOffset(off, limit int64) (int64, bool) {
	h := headerPool.Get().(*[batchHeaderSize]byte)
	defer headerPool.Put(h)
	rel := off - s.base
	if rel < 0 {
		rel = 0
	}
	_, p := s.idx.lookupOffset(uint32(min(rel, maxRelativeOffset)))
	pos := int64(p)
	for {
		bi, ok := s.readHeader(pos, limit, h)
		if !ok {
			return 0, false
		}
		if bi.lastOffset() >= off {
			return pos, true
		}
		pos += int64(bi.length)
	}
}

// findEnd returns the end of the last whole batch that ends at or before
// start+maxBytes (but at least the end of the batch at start), below limit.
func (s *segment) findEnd(start int64, maxBytes int, limit int64) int64 {
	h := headerPool.Get().(*[batchHeaderSize]byte)
	defer headerPool.Put(h)
	want := start + int64(maxBytes)
	if want >= limit {
		return limit
	}
	bi, ok := s.readHeader(start, limit, h)
	if !ok {
		return start
	}
	end := start + int64(bi.length)
	if end >= want {
		return end // first batch always whole, even past maxBytes
	}
	pos := end
	if _, ip := s.idx.lookupPosition(uint32(want)); int64(ip) > pos {
		pos = int64(ip) // index entries are batch starts
	}
	for {
		bi, ok := s.readHeader(pos, limit, h)
		if !ok || pos+int64(bi.length) > want {
			return pos
		}
		pos += int64(bi.length)
	}
}

// findTimestamp returns the base offset of the first batch that ends at or
// after offset from and has maxTimestamp >= ts (CreateTime or
// LogAppendTime as stored), and that timestamp.
func (s *segment) findTimestamp(ts, from, limit int64) (int64, int64, bool) {
	h := headerPool.Get().(*[batchHeaderSize]byte)
	defer headerPool.Put(h)
	// Both lookups give a batch start at or before the answer: every
	// batch before the time index entry's offset is older than ts, and
	// every batch before from's is below from.
	rel := s.tidx.lookupTime(ts)
	rel = max(rel, uint32(min(max(from-s.base, 0), maxRelativeOffset)))
	_, p := s.idx.lookupOffset(rel)
	for pos := int64(p); ; {
		bi, ok := s.readHeader(pos, limit, h)
		if !ok {
			return 0, 0, false
		}
		if bi.maxTimestamp >= ts && bi.lastOffset() >= from {
			return bi.baseOffset, bi.maxTimestamp, true
		}
		pos += int64(bi.length)
	}
}

// maxTimestampFrom returns the largest maxTimestamp of the batches that end
// at or after offset from (below limit), and the last offset of the first
// batch carrying it. It reads every such batch header: for ListOffset's
// TimestampMax on the one segment whose recorded maximum is below the log
// start, not for a hot path.
func (s *segment) maxTimestampFrom(from, limit int64) (ts, offset int64, ok bool) {
	pos, found := s.findOffset(from, limit)
	if !found {
		return -1, -1, false
	}
	h := headerPool.Get().(*[batchHeaderSize]byte)
	defer headerPool.Put(h)
	ts, offset = -1, -1
	for {
		bi, more := s.readHeader(pos, limit, h)
		if !more {
			return ts, offset, offset >= 0
		}
		if bi.maxTimestamp > ts {
			ts, offset = bi.maxTimestamp, bi.lastOffset()
		}
		pos += int64(bi.length)
	}
}

// lastBatchEnd reads from the last index entry to the end of a clean segment
// to learn its next offset (clean open: no full scan).
func (s *segment) nextOffsetFromIndex(size int64) int64 {
	h := headerPool.Get().(*[batchHeaderSize]byte)
	defer headerPool.Put(h)
	next := s.base
	pos := int64(0)
	if n := s.idx.entries(); n > 0 {
		_, p := s.idx.offsetEntry(n - 1)
		pos = int64(p)
	}
	for {
		bi, ok := s.readHeader(pos, size, h)
		if !ok {
			return next
		}
		next = bi.lastOffset() + 1
		pos += int64(bi.length)
	}
}

var _ = binary.BigEndian
