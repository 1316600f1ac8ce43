package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/datadriven"
)

// Leader-epoch commands (testdata/leader_epoch*.txt, TestLeaderEpochScripts):
//
//	set-epoch N                      SetLeaderEpoch(N): stamped into the next appends
//	epochs                           the cache's entries, then the file's content
//	end-offset epoch=N [leader=N]    EndOffsetForEpoch (with leader: ...AsLeader)
//	epoch-file                       write the input as leader-epoch-checkpoint (no input: remove it)
//	truncate-to offset=N             TruncateTo(N)

// set-epoch N: the epoch stamped into later appends.
func (r *ddRunner) handleSetEpoch(d *datadriven.TestData) string {
	if len(d.CmdArgs) != 1 {
		d.Fatalf(r.t, "set-epoch N")
	}
	var e int32
	if _, err := fmt.Sscan(d.CmdArgs[0].Key, &e); err != nil {
		d.Fatalf(r.t, "set-epoch: %v", err)
	}
	r.l.SetLeaderEpoch(e)
	return ""
}

// epochs: the cache ("cache: (epoch, start) ..."), then the file as it is
// on disk, or "no file".
func (r *ddRunner) handleEpochs() string {
	var b strings.Builder
	b.WriteString("cache:")
	if r.l == nil {
		b.WriteString(" (log closed)")
	} else {
		for _, e := range r.l.LeaderEpochs() {
			fmt.Fprintf(&b, " (%d, %d)", e.Epoch, e.StartOffset)
		}
	}
	b.WriteString("\n")
	data, err := os.ReadFile(filepath.Join(r.dir, LeaderEpochCheckpointFile))
	switch {
	case os.IsNotExist(err):
		b.WriteString("no file\n")
	case err != nil:
		fmt.Fprintf(&b, "error: %v\n", err)
	default:
		b.WriteString("file:\n")
		b.Write(data)
	}
	return b.String()
}

// end-offset epoch=N [leader=N]: what OffsetForLeaderEpoch would answer.
func (r *ddRunner) handleEndOffset(d *datadriven.TestData) string {
	epoch := int32(r.intArg(d, "epoch", -1))
	var e int32
	var o int64
	if _, ok := arg(d, "leader"); ok {
		e, o = r.l.EndOffsetForEpochAsLeader(epoch, int32(r.intArg(d, "leader", -1)))
	} else {
		e, o = r.l.EndOffsetForEpoch(epoch)
	}
	return fmt.Sprintf("epoch=%d end-offset=%d", e, o)
}

// epoch-file: replace (or, with no input, remove) the file while the log
// is closed.
func (r *ddRunner) handleEpochFile(d *datadriven.TestData) string {
	p := filepath.Join(r.dir, LeaderEpochCheckpointFile)
	if d.Input == "" {
		if err := os.Remove(p); err != nil {
			return "error: " + err.Error()
		}
		return ""
	}
	if err := os.WriteFile(p, []byte(d.Input+"\n"), 0o644); err != nil {
		return "error: " + err.Error()
	}
	return ""
}

// truncate-to offset=N: TruncateTo; prints the state.
func (r *ddRunner) handleTruncateTo(d *datadriven.TestData) string {
	if err := r.l.TruncateTo(r.intArg(d, "offset", -1)); err != nil {
		return "error: " + err.Error()
	}
	return r.state()
}
