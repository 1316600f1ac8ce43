package storage

// Transaction index: <base>.txnindex beside each segment (Kafka's
// TransactionIndex), one entry per transaction aborted by a marker written
// in that segment, in marker order. Kafka's exact format, big-endian:
//
//	+---------+------------+-------------+------------+------------------+
//	| version | producerId | firstOffset | lastOffset | lastStableOffset |
//	| int16 0 | int64      | int64       | int64      | int64            |
//	+---------+------------+-------------+------------+------------------+
//	  34 bytes per entry, no header, no trailer
//
// firstOffset is the transaction's first offset in the partition,
// lastOffset the offset of the ABORT marker, lastStableOffset the LSO once
// the marker was written (what lets collection stop early: an entry whose
// lastStableOffset is at or past the fetch's upper bound is the last that
// can matter).
//
// Who writes: the storage layer knows nothing of producers; the broker's
// producer state computes each entry when an ABORT marker's append
// completes and calls Log.AppendAbortedTxn, which appends it to the
// segment holding the marker (pwrite through the FS; page cache only).
//
// Durability: the file is fsync'd with its segment's indexes
// (segment.syncIndexes: rolled-segment flush, Close, the cleaner) and by
// Log.SyncTxnIndexes, which the broker calls before it writes a producer
// state snapshot. An entry lost in a crash is re-derived by the broker's
// producer state load, which replays the control batches after its
// snapshot (AppendAbortedTxn ignores an entry already present and inserts
// one missing in the middle). Entries past the log end after an unclean
// start (the log was cut below their marker) are dropped when the log is
// opened (dropTxnEntriesPast). A damaged file keeps its valid prefix: it
// is never a reason to refuse a start.
//
// Deletion: the file goes with its segment (segment.unlink: retention,
// DeleteRecords, the cleaner's replaced segments; DeleteLog removes the
// whole directory). The cleaner carries the entries of the segments it
// rewrites into the new segment's txnindex (cleaner_swap.go).
//
// Concurrency: each segment's txnIndex has its own mutex, a leaf lock
// taken without Log.mu. Entries are loaded from the file on first use and
// kept in memory (34 bytes each).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// AbortedTxn is one transaction index entry (Kafka's AbortedTxn).
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64 // the ABORT marker's offset
	LastStableOffset int64
}

// TxnEntrySize is the size of one .txnindex entry.
const TxnEntrySize = 34

const txnIndexVersion = 0

// AppendTxnEntry appends e in the .txnindex format.
func AppendTxnEntry(dst []byte, e AbortedTxn) []byte {
	dst = binary.BigEndian.AppendUint16(dst, txnIndexVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.ProducerID))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.FirstOffset))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.LastOffset))
	return binary.BigEndian.AppendUint64(dst, uint64(e.LastStableOffset))
}

var errTxnIndexCorrupt = errors.New("corrupt transaction index")

// DecodeTxnIndex decodes a .txnindex file. It returns the entries of the
// longest valid prefix and an error naming the first invalid byte, if any
// (a partial trailing entry, a version other than 0, an entry whose marker
// is not after its first offset, whose lastStableOffset is negative or
// past the marker + 1, or whose marker is not after the previous entry's).
func DecodeTxnIndex(data []byte) ([]AbortedTxn, error) {
	var out []AbortedTxn
	for pos := 0; pos < len(data); pos += TxnEntrySize {
		if len(data)-pos < TxnEntrySize {
			return out, fmt.Errorf("%w: partial entry at byte %d", errTxnIndexCorrupt, pos)
		}
		p := data[pos:]
		if v := int16(binary.BigEndian.Uint16(p)); v != txnIndexVersion {
			return out, fmt.Errorf("%w: version %d at byte %d", errTxnIndexCorrupt, v, pos)
		}
		e := AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(p[2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(p[10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(p[18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(p[26:])),
		}
		// A marker follows its transaction's first batch, and the LSO
		// when it was written is at most just past it: anything else is
		// not an entry (a torn write's garbage would end collection early).
		if e.FirstOffset < 0 || e.LastOffset <= e.FirstOffset || e.LastStableOffset < 0 || e.LastStableOffset > e.LastOffset+1 ||
			(len(out) > 0 && e.LastOffset <= out[len(out)-1].LastOffset) {
			return out, fmt.Errorf("%w: bad entry at byte %d", errTxnIndexCorrupt, pos)
		}
		out = append(out, e)
	}
	return out, nil
}

// txnIndex is one segment's transaction index.
type txnIndex struct {
	mu      sync.Mutex
	loaded  bool
	entries []AbortedTxn // sorted by LastOffset
	f       *os.File     // opened by the first write
	dirty   bool         // written since the last sync
	// nameSynced: the directory was fsync'd since this process opened the
	// file (which may have created it).
	nameSynced bool
}

func (s *segment) txnIndexPath() string {
	return s.path[:len(s.path)-len(".log")] + ".txnindex"
}

// loadTxnLocked reads the file on first use. REQUIRES: s.txn.mu held.
func (s *segment) loadTxnLocked(warnf func(string, ...any)) {
	t := &s.txn
	if t.loaded {
		return
	}
	t.loaded = true
	data, err := s.fs.ReadFile(s.txnIndexPath())
	if err != nil {
		if !os.IsNotExist(err) && warnf != nil {
			warnf("segment %s: reading transaction index: %v (treated as empty)", s.path, err)
		}
		return
	}
	t.entries, err = DecodeTxnIndex(data)
	if err != nil && warnf != nil {
		warnf("segment %s: %v: keeping the %d entries before it", s.path, err, len(t.entries))
	}
}

// rewriteTxnLocked writes the whole file from t.entries.
// REQUIRES: s.txn.mu held.
func (s *segment) rewriteTxnLocked() error {
	t := &s.txn
	if err := s.openTxnLocked(); err != nil {
		return err
	}
	buf := make([]byte, 0, len(t.entries)*TxnEntrySize)
	for _, e := range t.entries {
		buf = AppendTxnEntry(buf, e)
	}
	if err := s.fs.Truncate(t.f, 0); err != nil {
		return err
	}
	t.dirty = true
	_, err := s.fs.WriteAt(t.f, buf, 0)
	return err
}

func (s *segment) openTxnLocked() error {
	t := &s.txn
	if t.f != nil {
		return nil
	}
	f, err := s.fs.OpenFile(s.txnIndexPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open transaction index: %w", err)
	}
	t.f = f
	return nil
}

// addTxn inserts e in order; an entry with the same marker offset is
// already there: nothing to do.
func (s *segment) addTxn(e AbortedTxn, warnf func(string, ...any)) error {
	t := &s.txn
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.unlnk.Load() {
		return nil // retention or the cleaner removed the segment meanwhile
	}
	s.loadTxnLocked(warnf)
	i := sort.Search(len(t.entries), func(i int) bool { return t.entries[i].LastOffset >= e.LastOffset })
	if i < len(t.entries) && t.entries[i].LastOffset == e.LastOffset {
		if t.entries[i] == e {
			return nil
		}
		// Re-derived from the log after a crash: the log is right, the
		// entry (a torn write that still decodes) is not.
		t.entries[i] = e
		return s.rewriteTxnLocked()
	}
	t.entries = append(t.entries, AbortedTxn{})
	copy(t.entries[i+1:], t.entries[i:])
	t.entries[i] = e
	if i < len(t.entries)-1 {
		return s.rewriteTxnLocked() // a lost entry re-derived: rare
	}
	if err := s.openTxnLocked(); err != nil {
		return err
	}
	t.dirty = true
	_, err := s.fs.WriteAt(t.f, AppendTxnEntry(nil, e), int64(i*TxnEntrySize))
	return err
}

// dropTxnPast removes the entries whose marker is at or past offset.
func (s *segment) dropTxnPast(offset int64, warnf func(string, ...any)) error {
	t := &s.txn
	t.mu.Lock()
	defer t.mu.Unlock()
	s.loadTxnLocked(warnf)
	i := sort.Search(len(t.entries), func(i int) bool { return t.entries[i].LastOffset >= offset })
	if i == len(t.entries) {
		return nil
	}
	t.entries = t.entries[:i]
	return s.rewriteTxnLocked()
}

// syncTxn fsyncs the file if it was written since the last sync.
func (s *segment) syncTxn() error {
	t := &s.txn
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil || !t.dirty {
		return nil
	}
	if err := s.fs.Sync(t.f); err != nil {
		return err
	}
	if !t.nameSynced {
		if err := s.fs.SyncDir(filepath.Dir(s.path)); err != nil {
			return err
		}
		t.nameSynced = true
	}
	t.dirty = false
	return nil
}

// closeTxn closes the file (segment.closeFiles).
func (s *segment) closeTxn() error {
	t := &s.txn
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	return err
}

// unlinkTxn removes the file (segment.unlink). Taking the lock orders it
// with addTxn, which checks unlnk under it: no write recreates the file.
func (s *segment) unlinkTxn() error {
	t := &s.txn
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := s.fs.Remove(s.txnIndexPath()); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// txnEntries returns a copy of the segment's entries.
func (s *segment) txnEntries(warnf func(string, ...any)) []AbortedTxn {
	t := &s.txn
	t.mu.Lock()
	defer t.mu.Unlock()
	s.loadTxnLocked(warnf)
	return append([]AbortedTxn(nil), t.entries...)
}

// AppendAbortedTxn records an aborted transaction in the transaction index
// of the segment holding its marker (e.LastOffset), which must be below
// the high watermark. Idempotent: an entry for the same marker is replaced only
// if it differs (re-derived after a crash tore it).
// Blocking file I/O (a pwrite): the broker calls it on the log writer
// goroutine right after the marker's append completed, or on a produce
// worker when it re-derives entries.
func (l *Log) AppendAbortedTxn(e AbortedTxn) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	if e.LastOffset < l.logStart || e.LastOffset >= l.end {
		l.mu.RUnlock()
		return nil // removed by retention already, or not in the log
	}
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > e.LastOffset }) - 1
	if i < 0 {
		l.mu.RUnlock()
		return nil
	}
	s := l.segments[i]
	s.acquire()
	l.mu.RUnlock()
	defer s.release()
	if err := s.addTxn(e, l.warnf); err != nil {
		return fmt.Errorf("log %s: transaction index of segment %d: %w", l.dir, s.base, err)
	}
	return nil
}

// AbortedTxns returns the aborted transactions that overlap the offsets
// [from, upper): entries with LastOffset >= from and FirstOffset < upper,
// from the transaction indexes of the segment holding from and the later
// ones, until an entry's LastStableOffset reaches upper (Kafka's
// collectAbortedTransactions with an upper bound: a transaction's marker
// may be in any later segment). It reads small files the first time a
// segment's index is used; after that, memory only.
func (l *Log) AbortedTxns(from, upper int64) []AbortedTxn {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil
	}
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > from }) - 1
	if i < 0 {
		i = 0
	}
	var segs []*segment
	for ; i < len(l.segments); i++ {
		s := l.segments[i]
		s.acquire()
		segs = append(segs, s)
	}
	l.mu.RUnlock()
	var out []AbortedTxn
	done := false
	for _, s := range segs {
		if !done {
			for _, e := range s.txnEntries(l.warnf) {
				if e.LastOffset >= from && e.FirstOffset < upper {
					out = append(out, e)
				}
				if e.LastStableOffset >= upper {
					done = true
					break
				}
			}
		}
		s.release()
	}
	return out
}

// SyncTxnIndexes fsyncs every transaction index written since its last
// sync. The broker calls it before writing a producer state snapshot, so
// the entries of markers below the snapshot's offset are on disk.
func (l *Log) SyncTxnIndexes() error {
	l.mu.RLock()
	segs := make([]*segment, 0, len(l.segments))
	for _, s := range l.segments {
		s.acquire()
		segs = append(segs, s)
	}
	l.mu.RUnlock()
	var errs []error
	for _, s := range segs {
		if err := s.syncTxn(); err != nil {
			errs = append(errs, fmt.Errorf("log %s: sync of segment %d's transaction index: %w", l.dir, s.base, err))
		}
		s.release()
	}
	return errors.Join(errs...)
}

// dropTxnEntriesPast removes, from every segment, the transaction index
// entries whose marker is at or past offset. Open calls it after an
// unclean start's recovery with the log end; a truncation of the log
// (Log.TruncateTo) must call it with the new end.
// REQUIRES: nothing else uses the segments' indexes concurrently, or
// l.mu held (it takes only the segments' own locks).
func (l *Log) dropTxnEntriesPast(offset int64) {
	for _, s := range l.segments {
		if _, err := l.fs.Stat(s.txnIndexPath()); err != nil {
			continue // none (the common case): nothing to read
		}
		// A segment's entries are markers inside it: below its end too.
		if err := s.dropTxnPast(min(offset, s.next), l.warnf); err != nil && l.warnf != nil {
			l.warnf("log %s: segment %d: cutting the transaction index at offset %d: %v", l.dir, s.base, offset, err)
		}
	}
}
