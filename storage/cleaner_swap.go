package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ringbroker/ringbroker/invariants"
)

// Replacing a group of segments with its cleaned copy, crash-safely
// (Kafka's .cleaned / .swap protocol). X is the group's first base offset,
// Y any other segment of the group:
//
//	write  X.log.cleaned, X.index.cleaned, X.timeindex.cleaned; fsync the log, msync the indexes
//	write  X.txnindex.cleaned (the group's txnindex entries, if any); fsync it
//	rename X.log.cleaned -> X.log.<END>.swap; fsync dir         <- commit point (END: the group's end offset)
//	remove X.index, X.timeindex, X.txnindex, and Y.log, Y.index, Y.timeindex, Y.txnindex
//	rename X.txnindex.cleaned -> X.txnindex (when written)
//	rename X.index.cleaned -> X.index, X.timeindex.cleaned -> X.timeindex; fsync dir
//	rename X.log.<END>.swap -> X.log (replacing the old X.log); fsync dir
//
// Opening a log (load) finishes or forgets what a crash interrupted:
// *.cleaned files are an unfinished copy of segments that are all still
// there: removed. X.log.<END>.swap is a committed copy: it is scanned (it
// was fsync'd before the commit, so it must be whole, possibly empty; a
// damaged one fails the open and touches nothing), every segment with a
// base in (X, END) is removed (exactly the group's others: END is where
// the group ended, whatever the copy kept), X's indexes are removed
// (rebuilt by load), X.txnindex.cleaned, when there, replaces X.txnindex
// (the txnindex cannot be rebuilt from the segment alone: its entries
// name first offsets of transactions in earlier segments), and it is
// renamed to X.log. At any point the
// directory holds either the old segments or the new one, and recovery
// never mixes them.
//
// In memory, the new segment replaces the group in the segment list under
// the log lock after the disk steps. The disk steps run under swapMu, which
// retention and DeleteRecords also hold while they decide and unlink, so
// the group cannot be taken by them meanwhile (the writer only appends new
// segments after the active one, which a group never includes).

const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// cleanGroup rewrites group g into a new segment and swaps it in.
func (t *cleanerThread) cleanGroup(l *Log, c *cleanable, g []segSnap, rules *cleanRules, lastOf producerTails, st *CleanStats) error {
	x := g[0].base
	logTmp := segmentName(l.dir, x, ".log") + cleanedSuffix
	idxTmp := segmentName(l.dir, x, ".index") + cleanedSuffix
	tidxTmp := segmentName(l.dir, x, ".timeindex") + cleanedSuffix
	fs := l.fs
	f, err := fs.OpenFile(logTmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create cleaned segment: %w", err)
	}
	ns := &segment{fs: fs, base: x, path: segmentName(l.dir, x, ".log"), f: f, next: x, maxTs: -1, maxTsOffset: -1, createdNs: g[len(g)-1].s.createdNs}
	ns.refs.Store(1)
	txnTmp := ns.txnIndexPath() + cleanedSuffix
	removeTmp := func() {
		ns.closeFiles()
		for _, p := range []string{logTmp, idxTmp, tidxTmp, txnTmp} {
			fs.Remove(p)
		}
	}
	maxIdx := max(c.cfg.IndexMaxBytes, 64)
	if ns.idx, err = openIndex(fs, idxTmp, offsetEntrySize, true, maxIdx, 0, false); err != nil {
		f.Close()
		fs.Remove(logTmp)
		return err
	}
	if ns.tidx, err = openIndex(fs, tidxTmp, timeEntrySize, true, maxIdx, 0, false); err != nil {
		ns.idx.close()
		f.Close()
		fs.Remove(logTmp)
		fs.Remove(idxTmp)
		return err
	}
	if err := t.writeGroup(l, ns, g, c.cfg.IndexIntervalBytes, rules, lastOf, st); err != nil {
		removeTmp()
		return err
	}
	// The entry of an ABORT marker the group keeps moves along; a removed
	// marker's goes with it (cleaner_txn.go).
	if err := carryTxnEntries(l, ns, g, txnTmp, t.removedMarkers); err != nil {
		removeTmp()
		return err
	}
	committed, err := l.swapIn(ns, g, logTmp, idxTmp, tidxTmp)
	if !committed {
		removeTmp()
		if err == nil {
			err = errCleanAborted
		}
		return err
	}
	if err != nil {
		// Past the commit point: the new segment is in the list, the disk
		// is finished by the next open.
		l.warnf("log %s: cleaned segment %d committed, but finishing the swap failed (the next start finishes it): %v", l.dir, x, err)
	}
	st.Segments += len(g)
	return nil
}

// writeGroup filters g's batches into ns, indexing them as it goes, and
// makes ns durable.
func (t *cleanerThread) writeGroup(l *Log, ns *segment, g []segSnap, interval int, rules *cleanRules, lastOf producerTails, st *CleanStats) error {
	var filePos int64 // file position of t.wbuf[0]
	t.wbuf = t.wbuf[:0]
	tsSoFar, tsOffSoFar := int64(-1), int64(-1)
	clear(t.removedMarkers)
	flush := func() error {
		if len(t.wbuf) == 0 {
			return nil
		}
		for n := 0; n < len(t.wbuf); {
			m, err := l.fs.WriteAt(ns.f, t.wbuf[n:], filePos+int64(n))
			if err != nil {
				return fmt.Errorf("writing cleaned segment: %w", err)
			}
			n += m
		}
		t.c.throttle(int64(len(t.wbuf)))
		st.BytesWritten += int64(len(t.wbuf))
		filePos += int64(len(t.wbuf))
		t.wbuf = t.wbuf[:0]
		return nil
	}
	for _, s := range g {
		t.rd.reset(s.s, 0, s.size)
		for {
			rb, _, ok, err := t.rd.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			st.BytesRead += int64(rb.Size())
			pid := rb.ProducerID()
			retainEmpty := lastOf.isLast(pid, rb.LastOffset())
			start := len(t.wbuf)
			var out []byte
			var v batchVerdict
			var fst filterStats
			switch txnVerdict(rules, rb, retainEmpty) {
			case txnDropMarker:
				if t.removedMarkers == nil {
					t.removedMarkers = map[int64]bool{}
				}
				t.removedMarkers[rb.BaseOffset()] = true
				v, fst.read = verdictDrop, int64(rb.RecordCount())
			case txnDropAborted:
				v, fst.read = verdictDrop, int64(rb.RecordCount())
				if retainEmpty {
					out, v = appendEmptyBatch(t.wbuf, rb), verdictEmpty
				}
			default:
				if out, v, fst, err = rules.filter(rb, retainEmpty, &t.scratch, t.wbuf); err != nil {
					return err
				}
			}
			st.RecordsRead += fst.read
			st.RecordsWritten += fst.kept
			switch v {
			case verdictDrop:
				continue
			case verdictOriginal:
				t.wbuf = append(t.wbuf, out...)
			default:
				t.wbuf = out
			}
			bi, err := parseBatchHeader(t.wbuf[start:])
			if err != nil {
				return fmt.Errorf("cleaned batch at offset %d: %w", rb.BaseOffset(), err)
			}
			ns.indexBatch(filePos+int64(start), bi, interval, &tsSoFar, &tsOffSoFar)
			ns.next = bi.lastOffset() + 1
			if len(t.wbuf) >= t.c.ioBuf {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if t.c.aborted(l) {
		return errCleanAborted
	}
	if ns.next > g[len(g)-1].next {
		return fmt.Errorf("cleaned copy of segments %d..%d ends at %d, past %d", g[0].base, g[len(g)-1].base, ns.next, g[len(g)-1].next)
	}
	ns.size.Store(filePos)
	ns.maxTs, ns.maxTsOffset = tsSoFar, tsOffSoFar
	ns.syncedTo = ns.next
	if err := ns.trimIndexes(); err != nil {
		return err
	}
	if err := ns.syncIndexes(); err != nil {
		return err
	}
	return l.fs.Sync(ns.f)
}

// swapIn replaces g by ns on disk and in the segment list. committed
// reports whether the commit point was passed (then ns is in the list,
// even if a later step failed); otherwise nothing changed and the caller
// removes the temporary files.
func (l *Log) swapIn(ns *segment, g []segSnap, logTmp, idxTmp, tidxTmp string) (committed bool, err error) {
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	l.mu.RLock()
	i := l.groupIndexLocked(g)
	closing := l.closing
	l.mu.RUnlock()
	if i < 0 || closing {
		return false, nil
	}
	if l.swapUnfinished != nil {
		if err := l.swapUnfinished(); err != nil {
			return false, fmt.Errorf("finishing an earlier cleaned segment's swap: %w", err)
		}
		l.swapUnfinished = nil
	}
	fs := l.fs
	x := ns.base
	swap := swapName(l.dir, x, g[len(g)-1].next)
	if err := fs.Rename(logTmp, swap); err != nil {
		return false, err
	}
	if err := fs.SyncDir(l.dir); err != nil {
		// Whether the rename is durable is unknown: a swap that survives
		// is a whole, valid copy, so rolling forward at the next open is
		// as good as rolling back now. Roll back while we can.
		if rerr := fs.Rename(swap, logTmp); rerr == nil {
			return false, err
		}
	}
	// Committed. The old segments' files are ours to remove: mark them
	// unlinked so nothing removes the new files by name later.
	for _, s := range g {
		s.s.unlnk.Store(true)
	}
	finish := func() error { return l.finishSwap(ns, g, swap, idxTmp, tidxTmp) }
	if err = finish(); err != nil {
		l.swapUnfinished = finish
	}

	l.mu.Lock()
	i = l.groupIndexLocked(g) // only rolls happened meanwhile: same place
	segs := make([]*segment, 0, len(l.segments)-len(g)+1)
	segs = append(segs, l.segments[:i]...)
	segs = append(segs, ns)
	segs = append(segs, l.segments[i+len(g):]...)
	l.segments = segs
	if invariants.Enabled {
		l.checkSegmentOrder()
	}
	l.mu.Unlock()
	for _, s := range g {
		s.s.release()
	}
	return true, err
}

// finishSwap takes the steps after a swap's commit point, in order, and
// stops at the first that fails. The swap file, left in place, is then the
// durable record that they are due: the next open finishes them
// (finishCleanerSwaps), and so does the next swap of this log
// (l.swapUnfinished) once the disk lets it; every step is idempotent.
// Carrying on past a failed removal instead would rename the swap over
// X.log and leave a replaced segment beside its replacement, which the
// next open cannot tell from a live one (it fails on the overlap); and a
// later round swapping a group that holds ns while ns's own swap file is
// still there would leave a stale swap for the next open to roll forward
// over newer segments. REQUIRES: l.swapMu held.
func (l *Log) finishSwap(ns *segment, g []segSnap, swap, idxTmp, tidxTmp string) error {
	fs := l.fs
	x := ns.base
	gone := func(err error) error {
		if os.IsNotExist(err) {
			return nil // done by an earlier attempt
		}
		return err
	}
	for _, s := range g {
		for _, ext := range []string{".index", ".timeindex", ".txnindex"} {
			if err := gone(fs.Remove(segmentName(l.dir, s.base, ext))); err != nil {
				return err
			}
		}
		if s.base != x {
			if err := gone(fs.Remove(segmentName(l.dir, s.base, ".log"))); err != nil {
				return err
			}
		}
	}
	if ns.unlnk.Load() {
		// Retention removed ns meanwhile (by its name, X.log: the old
		// file). Its swap and indexes go too.
		for _, p := range []string{swap, idxTmp, tidxTmp, ns.txnIndexPath() + cleanedSuffix} {
			if err := gone(fs.Remove(p)); err != nil {
				return err
			}
		}
		return fs.SyncDir(l.dir)
	}
	// Before the swap's rename: once the swap file is gone, nothing says
	// the cleaned txnindex is the one to keep.
	if err := gone(fs.Rename(ns.txnIndexPath()+cleanedSuffix, ns.txnIndexPath())); err != nil {
		return err
	}
	if err := gone(fs.Rename(idxTmp, ns.indexPath())); err != nil {
		return err
	}
	if err := gone(fs.Rename(tidxTmp, ns.timeIndexPath())); err != nil {
		return err
	}
	ns.idx.path, ns.tidx.path = ns.indexPath(), ns.timeIndexPath()
	if err := fs.SyncDir(l.dir); err != nil {
		return err
	}
	if err := gone(fs.Rename(swap, ns.path)); err != nil {
		return err
	}
	if err := fs.SyncDir(l.dir); err != nil {
		return err
	}
	ns.namesDurable.Store(true)
	return nil
}

// groupIndexLocked returns where g's segments sit, consecutively, in the
// segment list (never including the active one), or -1.
// REQUIRES: l.mu held.
func (l *Log) groupIndexLocked(g []segSnap) int {
	for i, s := range l.segments {
		if s != g[0].s {
			continue
		}
		if i+len(g) >= len(l.segments) {
			return -1
		}
		for k := range g {
			if l.segments[i+k] != g[k].s {
				return -1
			}
		}
		return i
	}
	return -1
}

// swapName is the commit name of group [x, end)'s cleaned copy:
// <x>.log.<end>.swap. The group's end is in the name because the copy may
// end earlier (its last records removed), and recovery must know which
// segments it replaced without keeping a batch at the end to say so (an
// empty batch alone at a segment's end stalls KafkaJS and breaks
// kafka-python's fetch).
func swapName(dir string, x, end int64) string {
	return fmt.Sprintf("%s.%020d%s", segmentName(dir, x, ".log"), end, swapSuffix)
}

// parseSwapName reads <x>.log.<end>.swap, or <x>.log.swap (end -1: the
// group ended at the copy's own end).
func parseSwapName(name string) (x, end int64, ok bool) {
	rest := strings.TrimSuffix(name, swapSuffix)
	xs, es, found := strings.Cut(rest, ".log")
	x, err := strconv.ParseInt(xs, 10, 64)
	if !found || err != nil || x < 0 {
		return 0, 0, false
	}
	if es == "" {
		return x, -1, true
	}
	end, err = strconv.ParseInt(strings.TrimPrefix(es, "."), 10, 64)
	if !strings.HasPrefix(es, ".") || err != nil || end < x {
		return 0, 0, false
	}
	return x, end, true
}

// finishCleanerSwaps runs at open, before segments are discovered (see the
// protocol above): unfinished copies are removed, committed swaps finished.
// Nothing else is touched. Every swap is checked before anything is: one
// that does not scan whole fails the open with the directory as it was
// (a failed open touches nothing).
func (l *Log) finishCleanerSwaps() error {
	ents, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	type swapFile struct {
		x, end int64 // end -1: a swap named without its group's end
		name   string
	}
	var swaps []swapFile
	var cleaned []string
	bases := map[int64]bool{}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, cleanedSuffix):
			cleaned = append(cleaned, name)
		case strings.HasSuffix(name, swapSuffix):
			if x, end, ok := parseSwapName(name); ok {
				swaps = append(swaps, swapFile{x, end, name})
			}
		case strings.HasSuffix(name, ".log"):
			b, err := strconv.ParseInt(strings.TrimSuffix(name, ".log"), 10, 64)
			if err == nil && b >= 0 {
				bases[b] = true
			}
		}
	}
	sort.Slice(swaps, func(i, j int) bool { return swaps[i].x < swaps[j].x })
	next := make([]int64, len(swaps)) // where each swap's group ended
	for i, sw := range swaps {
		x := sw.x
		swap := filepath.Join(l.dir, sw.name)
		f, err := l.fs.OpenFile(swap, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		res, _ := scanSegment(fileReader{l.fs, f}, fi.Size(), x, nil, nil)
		f.Close()
		if res.stopReason != nil || res.batches == 0 && sw.end < 0 || sw.end >= 0 && res.nextOffset > max(sw.end, x) {
			return fmt.Errorf("cleaned segment %s is damaged (%v); it was made durable before it replaced anything, so this is not a crash we recover from: leaving the directory as it is", swap, res.stopReason)
		}
		next[i] = max(res.nextOffset, sw.end)
	}
	swapOf := map[int64]bool{}
	for _, sw := range swaps {
		swapOf[sw.x] = true
	}
	for _, name := range cleaned {
		if x, ok := cleanedTxnIndexBase(name); ok && swapOf[x] {
			continue // committed with its swap: renamed in place below
		}
		l.warnf("log %s: removing %s, an unfinished cleaner copy (the segments it copied are intact)", l.dir, name)
		if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
			return err
		}
	}
	for i, sw := range swaps {
		x, swap := sw.x, filepath.Join(l.dir, sw.name)
		for y := range bases {
			if y > x && y < next[i] {
				l.warnf("log %s: finishing an interrupted cleaner swap: removing segment %d, replaced by cleaned segment %d", l.dir, y, x)
				for _, ext := range []string{".log", ".index", ".timeindex", ".txnindex"} {
					if err := l.fs.Remove(segmentName(l.dir, y, ext)); err != nil && !os.IsNotExist(err) {
						return err
					}
				}
				delete(bases, y)
			}
		}
		for _, ext := range []string{".index", ".timeindex"} {
			if err := l.fs.Remove(segmentName(l.dir, x, ext)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		// A cleaned txnindex still there was not renamed yet: it replaces
		// X's (without one, X.txnindex is already the cleaned one, or the
		// group had no aborted transaction).
		txnTmp := segmentName(l.dir, x, ".txnindex") + cleanedSuffix
		if err := l.fs.Rename(txnTmp, segmentName(l.dir, x, ".txnindex")); err != nil && !os.IsNotExist(err) {
			return err
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
		if err := l.fs.Rename(swap, segmentName(l.dir, x, ".log")); err != nil {
			return err
		}
		l.warnf("log %s: finished an interrupted cleaner swap of segment %d", l.dir, x)
		bases[x] = true
	}
	if len(cleaned) > 0 || len(swaps) > 0 {
		return l.fs.SyncDir(l.dir)
	}
	return nil
}

// carryTxnEntries gives ns the transaction index entries of g's segments
// and, when there are any, writes them to txnTmp and fsyncs it.
func carryTxnEntries(l *Log, ns *segment, g []segSnap, txnTmp string, removedMarkers map[int64]bool) error {
	var carried []AbortedTxn
	for _, s := range g {
		for _, e := range s.s.txnEntries(l.warnf) {
			if !removedMarkers[e.LastOffset] {
				carried = append(carried, e)
			}
		}
	}
	ns.txn.loaded, ns.txn.entries = true, carried
	if len(carried) == 0 {
		return nil
	}
	buf := make([]byte, 0, len(carried)*TxnEntrySize)
	for _, e := range carried {
		buf = AppendTxnEntry(buf, e)
	}
	f, err := l.fs.OpenFile(txnTmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create cleaned transaction index: %w", err)
	}
	defer f.Close()
	if _, err := l.fs.WriteAt(f, buf, 0); err != nil {
		return fmt.Errorf("writing cleaned transaction index: %w", err)
	}
	return l.fs.Sync(f)
}

// cleanedTxnIndexBase parses "<X>.txnindex.cleaned".
func cleanedTxnIndexBase(name string) (int64, bool) {
	rest, ok := strings.CutSuffix(name, ".txnindex"+cleanedSuffix)
	if !ok {
		return 0, false
	}
	x, err := strconv.ParseInt(rest, 10, 64)
	return x, err == nil && x >= 0
}
