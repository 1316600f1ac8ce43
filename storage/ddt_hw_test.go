package storage

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/cockroachdb/datadriven"
)

// set-hw N: SetHighWatermark(N), then the state.
func (r *ddRunner) handleSetHW(d *datadriven.TestData) string {
	if len(d.CmdArgs) != 1 {
		d.Fatalf(r.t, "set-hw N")
	}
	hw, err := strconv.ParseInt(d.CmdArgs[0].Key, 10, 64)
	if err != nil {
		d.Fatalf(r.t, "set-hw: %v", err)
	}
	got := r.l.SetHighWatermark(hw)
	return fmt.Sprintf("returned %d\n%s", got, r.state())
}

// read-replica [offset=N] [max=N]: the region ReadReplica returns.
func (r *ddRunner) handleReadReplica(d *datadriven.TestData) string {
	reg, err := r.l.ReadReplica(r.intArg(d, "offset", 0), int(r.intArg(d, "max", 1<<20)))
	if err != nil {
		return "error: " + err.Error()
	}
	defer reg.Release()
	if reg.Len == 0 {
		return "empty"
	}
	return fmt.Sprintf("%s pos=%d len=%d base=%d", filepath.Base(reg.File.Name()), reg.Pos, reg.Len, reg.BaseOffset)
}
