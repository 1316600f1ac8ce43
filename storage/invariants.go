package storage

import "github.com/ringbroker/ringbroker/invariants"

// Assertions on state that can drift without any test noticing, compiled
// in by the invariants build (-tags invariants or -race; see package
// invariants). Each checker computes its condition first and formats a
// message only when it fails: boxing the values for Check on every call
// would allocate on the append path of an invariants build
// (TestAppendSteadyStateAllocs runs there). Call them under
// `if invariants.Enabled`, never from a per-batch or per-record loop.

// checkOffsetsLocked asserts the order of a log's offsets:
//
//	first segment's base <= log start <= high watermark <= log end <= next offset
//	recovery point <= log end; the active segment ends at next offset
//	local mode: high watermark == log end
//
// REQUIRES: l.mu held, on the writer goroutine or the opener (nextOffset
// is the writer's).
func (l *Log) checkOffsetsLocked() {
	first, act := l.segments[0], l.active()
	if first.base <= l.logStart && l.logStart <= l.hw && l.hw <= l.end && l.end <= l.nextOffset &&
		l.recoveryPoint <= l.end && act.next == l.nextOffset && (l.replicated || l.hw == l.end) {
		return
	}
	invariants.Check(false, "log %s: offsets out of order: first segment base %d, log start %d, high watermark %d, log end %d (replicated %v), next offset %d, recovery point %d, active segment [%d, %d)",
		l.dir, first.base, l.logStart, l.hw, l.end, l.replicated, l.nextOffset, l.recoveryPoint, act.base, act.next)
}

// checkLogStartLocked asserts first segment's base <= log start <= high
// watermark, from any goroutine. REQUIRES: l.mu held.
func (l *Log) checkLogStartLocked() {
	if first := l.segments[0]; first.base <= l.logStart && l.logStart <= l.hw {
		return
	}
	invariants.Check(false, "log %s: log start %d outside [first segment base %d, high watermark %d]",
		l.dir, l.logStart, l.segments[0].base, l.hw)
}

// checkSegmentOrder asserts the segment list is sorted and does not
// overlap: base offsets strictly increasing, each segment's offsets within
// [base, next) and next at or below its successor's base (a gap is legal
// after a crash recovery cut a rolled segment's unsynced tail; see Read).
// O(segments): for open and roll, not for a hot path.
// REQUIRES: l.mu held, or the opener.
func (l *Log) checkSegmentOrder() {
	for i, s := range l.segments {
		ok := s.base <= s.next
		if i > 0 {
			prev := l.segments[i-1]
			ok = ok && prev.base < s.base && prev.next <= s.base
		}
		if !ok {
			prevBase, prevNext := int64(-1), int64(-1)
			if i > 0 {
				prevBase, prevNext = l.segments[i-1].base, l.segments[i-1].next
			}
			invariants.Check(false, "log %s: segment %d [%d, %d) out of order after [%d, %d)",
				l.dir, i, s.base, s.next, prevBase, prevNext)
		}
	}
}

// checkRoll asserts that a new active segment starts exactly where the
// previous one ends (a roll never leaves a gap) and after its base.
// REQUIRES: writer goroutine.
func checkRoll(dir string, old, s *segment, nextOffset int64) {
	if old.base < s.base && s.base == old.next && s.base == nextOffset {
		return
	}
	invariants.Check(false, "log %s: rolled segment [%d, %d) followed by a new segment at %d, next offset %d",
		dir, old.base, old.next, s.base, nextOffset)
}

// checkOffsetEntry asserts that an offset index entry (rel, pos) follows
// entry n-1 with both a larger relative offset and a larger position
// (lookups binary-search on either). REQUIRES: n > 0, the writer.
func (ix *index) checkOffsetEntry(n int64, rel, pos uint32) {
	prevRel, prevPos := ix.offsetEntry(n - 1)
	if rel > prevRel && pos > prevPos {
		return
	}
	invariants.Check(false, "index %s: entry %d (offset +%d, position %d) not after entry (offset +%d, position %d)",
		ix.path, n, rel, pos, prevRel, prevPos)
}

// checkTimeEntry asserts that a time index entry (ts, rel) follows entry
// n-1 with a larger timestamp and a relative offset not below it.
// REQUIRES: n > 0, the writer.
func (ix *index) checkTimeEntry(n int64, ts int64, rel uint32) {
	prevTs, prevRel := ix.timeEntry(n - 1)
	if ts > prevTs && rel >= prevRel {
		return
	}
	invariants.Check(false, "time index %s: entry %d (%d, offset +%d) not after entry (%d, offset +%d)",
		ix.path, n, ts, rel, prevTs, prevRel)
}
