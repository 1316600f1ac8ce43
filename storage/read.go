package storage

import (
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// Region is a batch-aligned byte range of a segment file, for
// splice/sendfile by the caller. It holds a reference on the segment:
// retention may unlink the file meanwhile, but the descriptor stays open
// until Release. Always call Release exactly once (also for an empty
// Region, where it is a no-op).
type Region struct {
	File       *os.File // segment file; do not close it
	Pos        int64    // byte position of the first batch
	Len        int64    // bytes: whole batches only
	BaseOffset int64    // base offset of the first batch in the region (-1 if empty)
	seg        *segment
}

// ReadCached copies the region into dst (len(dst) == r.Len) only if the
// page cache holds all of it, without ever waiting for the disk (preadv2
// with RWF_NOWAIT: EAGAIN instead of a read), and reports whether it did.
// For a caller that must not block (a ring thread): on false it sends the
// region another way. It goes to the file directly, not through the FS
// seam: its only failure mode is that false.
func (r *Region) ReadCached(dst []byte) bool {
	if int64(len(dst)) != r.Len || r.File == nil {
		return false
	}
	n, err := unix.Preadv2(int(r.File.Fd()), [][]byte{dst}, r.Pos, unix.RWF_NOWAIT)
	return err == nil && n == len(dst)
}

// Release drops the region's reference on its segment.
func (r *Region) Release() {
	if r.seg != nil {
		r.seg.release()
		r.seg = nil
	}
}

// Read returns the batches starting with the one that contains offset, up
// to maxBytes, never past the high watermark, from one segment (like Kafka,
// a fetch never spans segments). As in Kafka the first batch is returned
// whole even when it is larger than maxBytes. offset at or past the high
// watermark (but not past the log end) gives an empty Region and no error,
// as Kafka's read at the high-watermark isolation; offset below the log
// start offset or above the log end gives ErrOffsetOutOfRange.
//
// Safe for concurrent use with appends and other reads; it takes the log's
// read lock only to pick the segment, then reads batch headers with pread.
func (l *Log) Read(offset int64, maxBytes int) (Region, error) {
	return l.read(offset, maxBytes, false)
}

// ReadReplica is Read bounded by the log end offset instead of the high
// watermark: what a leader sends a follower (Kafka's FetchLogEnd
// isolation). offset above the log end gives ErrOffsetOutOfRange.
func (l *Log) ReadReplica(offset int64, maxBytes int) (Region, error) {
	return l.read(offset, maxBytes, true)
}

func (l *Log) read(offset int64, maxBytes int, toEnd bool) (Region, error) {
	if l.dirState.isOffline() {
		return Region{BaseOffset: -1}, l.dirState.offlineErr()
	}
	for {
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return Region{BaseOffset: -1}, ErrClosed
		}
		if offset < l.logStart || offset > l.end {
			l.mu.RUnlock()
			return Region{BaseOffset: -1}, ErrOffsetOutOfRange
		}
		upper := l.hw
		if toEnd {
			upper = l.end
		}
		if offset >= upper {
			l.mu.RUnlock()
			return Region{BaseOffset: -1}, nil
		}
		i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].base > offset }) - 1
		if i < 0 {
			i = 0
		}
		s := l.segments[i]
		limit := s.size.Load() // completed bytes: within the log end
		// upper inside this segment (replicated mode, a consumer read):
		// the byte limit is where its batch starts, found below.
		cut := upper < s.next
		var nextBase int64 = -1
		if i+1 < len(l.segments) {
			nextBase = l.segments[i+1].base
		}
		s.acquire()
		l.mu.RUnlock()

		if cut {
			// upper is a batch boundary (a follower's log end), so this
			// is the first byte of the batch at upper; were it inside a
			// batch, that batch would be left out, never cut.
			if p, ok := s.findOffset(upper, limit); ok {
				limit = p
			}
		}
		start, ok := s.findOffset(offset, limit)
		if !ok {
			s.release()
			if nextBase < 0 || cut {
				return Region{BaseOffset: -1}, nil
			}
			offset = nextBase // a gap at the end of a segment: continue in the next
			continue
		}
		end := s.findEnd(start, maxBytes, limit)
		h := headerPool.Get().(*[batchHeaderSize]byte)
		bi, _ := s.readHeader(start, limit, h)
		headerPool.Put(h)
		return Region{File: s.f, Pos: start, Len: end - start, BaseOffset: bi.baseOffset, seg: s}, nil
	}
}

// Waiter is woken once when the high watermark (AddWaiter) or the log end
// (AddEndWaiter) advances after it was added. HWAdvanced runs without the
// log lock on the goroutine that moved the offset (the log's writer, or
// the caller of SetHighWatermark or FollowWrites): it must not block (post
// to the fetcher's loop and wake it). Its argument is the new high
// watermark, or the new log end for an end waiter.
type Waiter interface{ HWAdvanced(hw int64) }

// AddWaiter registers w for the next high-watermark advance, unless the
// high watermark is already above offset, in which case it returns false
// and w is not registered (read now instead). Fetch long-polls use it
// instead of polling; RemoveWaiter cancels on timeout.
func (l *Log) AddWaiter(w Waiter, offset int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hw > offset || l.closing {
		return false
	}
	l.waiters = append(l.waiters, w)
	return true
}

// AddEndWaiter is AddWaiter for the log end instead of the high
// watermark: follower fetch long-polls, which read up to the log end.
// RemoveWaiter cancels it too.
func (l *Log) AddEndWaiter(w Waiter, offset int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.end > offset || l.closing {
		return false
	}
	l.endWaiters = append(l.endWaiters, w)
	return true
}

// RemoveWaiter unregisters w if it is still waiting (AddWaiter or
// AddEndWaiter).
func (l *Log) RemoveWaiter(w Waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiters = removeWaiter(l.waiters, w)
	l.endWaiters = removeWaiter(l.endWaiters, w)
}

func removeWaiter(ws []Waiter, w Waiter) []Waiter {
	for i, x := range ws {
		if x == w {
			last := len(ws) - 1
			ws[i] = ws[last]
			ws[last] = nil
			return ws[:last]
		}
	}
	return ws
}

// maxTimestampOffset answers ListOffset(TimestampMax): the last offset of
// the first batch at or after the log start carrying the largest
// timestamp. Each segment knows its own largest timestamp and where it is,
// except that the segment holding the log start may have it below the log
// start (DeleteRecords inside the segment): that one segment's batch
// headers from the log start on are read to find its largest timestamp
// among the batches that remain. Skipping that segment instead answered
// "not found", or a later segment's smaller maximum, depending on where
// the segments happened to roll. REQUIRES: l.mu read-locked; it unlocks.
func (l *Log) maxTimestampOffset() (offset, timestamp int64, found bool) {
	lso := l.logStart
	var head *segment
	var headLimit int64
	best, off := int64(-1), int64(-1)
	for _, s := range l.segments {
		switch {
		case s.next <= lso || s.maxTs < 0:
			// below the log start (not yet deleted), or empty
		case s.maxTsOffset < lso:
			head, headLimit = s, s.size.Load()
		case s.maxTs > best:
			best, off = s.maxTs, s.maxTsOffset
		}
	}
	if head == nil {
		l.mu.RUnlock()
		return off, best, off >= 0
	}
	head.acquire()
	l.mu.RUnlock()
	defer head.release()
	// head comes before every other candidate: it wins a tie.
	if ts, o, ok := head.maxTimestampFrom(lso, headLimit); ok && ts >= best {
		return o, ts, true
	}
	return off, best, off >= 0
}

// HWChanged returns a channel closed at the next high-watermark advance,
// for goroutine-based waiters (tests, tools). One channel is shared by all
// callers until it fires.
func (l *Log) HWChanged() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hwChan == nil {
		l.hwChan = make(chan struct{})
	}
	return l.hwChan
}

// Special timestamps of ListOffsets, as in Kafka.
const (
	TimestampLatest   = -1
	TimestampEarliest = -2
	TimestampMax      = -3
)

// ListOffset answers Kafka ListOffsets for one partition. ts is a
// timestamp in ms or one of TimestampLatest (returns the high watermark),
// TimestampEarliest (log start offset) or TimestampMax (the batch with the
// largest timestamp). For a real timestamp it returns the base offset of
// the first batch at or after the log start whose maxTimestamp >= ts,
// found through the .timeindex, and that batch's maxTimestamp (the log
// start offset instead of the base offset when it is inside that batch); found=false when there is none (Kafka
// answers offset -1, timestamp -1).
//
// Offsets are batch-granular (the base offset of the batch, and for
// TimestampMax the batch's last offset, Kafka's "shallow" offset): this
// package does not decode records. The broker reads that one batch back to
// answer the exact record, as Kafka does (broker/list_offsets_exact.go).
func (l *Log) ListOffset(ts int64) (offset, timestamp int64, found bool) {
	l.mu.RLock()
	switch ts {
	case TimestampLatest:
		defer l.mu.RUnlock()
		return l.hw, -1, true
	case TimestampEarliest:
		defer l.mu.RUnlock()
		return l.logStart, -1, true
	case TimestampMax:
		return l.maxTimestampOffset() // releases l.mu
	}
	l.mu.RUnlock()
	// A segment whose max timestamp reaches ts holds a batch that does,
	// but when the log start is inside that segment the batch may be
	// below it, and then the answer is in a later segment: it used to be
	// the log start with a deleted batch's timestamp, or not found,
	// depending on where the segments happened to roll.
	searched := int64(-1) // base offset of the last segment searched
	for {
		l.mu.RLock()
		lso := l.logStart
		var s *segment
		var limit int64
		for _, c := range l.segments {
			if c.base > searched && c.maxTs >= ts && c.next > lso {
				s, limit = c, c.size.Load()
				break
			}
		}
		if s == nil {
			l.mu.RUnlock()
			return -1, -1, false
		}
		s.acquire()
		l.mu.RUnlock()
		off, bts, ok := s.findTimestamp(ts, lso, limit)
		s.release()
		if ok {
			return max(off, lso), bts, true
		}
		searched = s.base
	}
}
