package storage

import (
	"time"

	"github.com/cockroachdb/datadriven"
)

// append [n=N] [records=N] [size=N] [ts=MS]: n batches of records records of
// size bytes each, one after the other. Batch i's first timestamp is ts+i*10
// when ts is given, else its sequence number times 10.
func (r *ddRunner) handleAppend(d *datadriven.TestData) string {
	n := int(r.intArg(d, "n", 1))
	_, fixed := arg(d, "ts")
	base := r.intArg(d, "ts", 0)
	for i := 0; i < n; i++ {
		first := r.seq * 10
		if fixed {
			first = base + int64(i)*10
		}
		res := syncAppend(r.t, r.l, makeBatch(int(r.intArg(d, "records", 1)), int(r.intArg(d, "size", 100)), first, byte(r.seq)))
		if res.Err != nil {
			return "error: " + res.Err.Error()
		}
		r.seq++
	}
	r.l.bgFlushes.Wait() // rolled-segment flushes: deterministic recovery point
	return r.state()
}

// advance DUR: move the log's clock forward (segment.ms rolls and
// retention.ms read it).
func (r *ddRunner) handleAdvance(d *datadriven.TestData) string {
	if len(d.CmdArgs) != 1 {
		d.Fatalf(r.t, "advance DUR")
	}
	dur, err := time.ParseDuration(d.CmdArgs[0].Key)
	if err != nil {
		d.Fatalf(r.t, "advance: %v", err)
	}
	r.clock.Advance(dur)
	return ""
}
