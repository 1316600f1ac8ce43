package storage

import (
	"fmt"
	"path/filepath"

	"github.com/cockroachdb/datadriven"
)

// read [offset=N] [max=N]: the region Read returns.
func (r *ddRunner) handleRead(d *datadriven.TestData) string {
	reg, err := r.l.Read(r.intArg(d, "offset", 0), int(r.intArg(d, "max", 1<<20)))
	if err != nil {
		return "error: " + err.Error()
	}
	defer reg.Release()
	if reg.Len == 0 {
		return "empty"
	}
	return fmt.Sprintf("%s pos=%d len=%d base=%d", filepath.Base(reg.File.Name()), reg.Pos, reg.Len, reg.BaseOffset)
}

// list-offsets [ts=N]: ListOffset (-1 latest, -2 earliest, else by time).
func (r *ddRunner) handleListOffsets(d *datadriven.TestData) string {
	off, ts, ok := r.l.ListOffset(r.intArg(d, "ts", -1))
	return fmt.Sprintf("offset=%d timestamp=%d found=%v", off, ts, ok)
}

// verify: read every batch from the log start and check offsets increase.
func (r *ddRunner) handleVerify() string {
	got := readAll(r.t, r.l, r.l.LogStartOffset())
	var next int64 = r.l.LogStartOffset()
	for _, g := range got {
		if g.info.baseOffset < next {
			return fmt.Sprintf("offsets not increasing at %d", g.info.baseOffset)
		}
		next = g.info.lastOffset() + 1
	}
	return fmt.Sprintf("%d batches, all CRCs valid, next offset %d", len(got), next)
}
