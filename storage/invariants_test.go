//go:build invariants || race

package storage

import (
	"path/filepath"
	"testing"

	"github.com/ringbroker/ringbroker/invariants/invariantstest"
)

// The storage assertions fire on the drift they describe (this file is
// built only where they are compiled in).
func TestInvariantsCatchDrift(t *testing.T) {
	t.Run("offset index out of order", func(t *testing.T) {
		ix, err := openIndex(OSFS{}, filepath.Join(t.TempDir(), "0.index"), offsetEntrySize, true, 4096, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		defer ix.close()
		ix.appendOffset(10, 100)
		invariantstest.Panics(t, "not after entry", func() { ix.appendOffset(10, 200) })
		invariantstest.Panics(t, "not after entry", func() { ix.appendOffset(20, 50) })
	})
	t.Run("time index offset going back", func(t *testing.T) {
		ix, err := openIndex(OSFS{}, filepath.Join(t.TempDir(), "0.timeindex"), timeEntrySize, true, 4096, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		defer ix.close()
		ix.maybeAppendTime(1000, 10)
		invariantstest.Panics(t, "not after entry", func() { ix.maybeAppendTime(2000, 5) })
	})
	t.Run("overlapping segments", func(t *testing.T) {
		l := &Log{dir: "d", segments: []*segment{{base: 0, next: 10}, {base: 5, next: 12}}}
		invariantstest.Panics(t, "out of order", l.checkSegmentOrder)
		l.segments[1].base = 10
		l.checkSegmentOrder() // contiguous: fine
		l.segments[1].base = 11
		l.checkSegmentOrder() // a gap recovery may leave: fine
	})
	t.Run("high watermark past the log end", func(t *testing.T) {
		l := &Log{dir: "d", segments: []*segment{{base: 0, next: 10}}, hw: 11, end: 11, nextOffset: 10}
		invariantstest.Panics(t, "offsets out of order", l.checkOffsetsLocked)
		l.hw, l.end = 10, 10
		l.checkOffsetsLocked()
		l.hw = 9 // local mode: the high watermark is the log end
		invariantstest.Panics(t, "offsets out of order", l.checkOffsetsLocked)
		l.replicated = true
		l.checkOffsetsLocked()
		l.hw = 10
		l.logStart = 11
		invariantstest.Panics(t, "log start 11 outside", l.checkLogStartLocked)
	})
	t.Run("roll with a gap", func(t *testing.T) {
		invariantstest.Panics(t, "rolled segment", func() { checkRoll("d", &segment{base: 0, next: 10}, &segment{base: 11}, 11) })
	})
}
