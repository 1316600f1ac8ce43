package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/datadriven"
)

// start [slots=N] [partitions-max=N]: a broker on a fresh data dir, its
// fetch session cache on the runner's clock.
func (r *ddBroker) handleStart(d *datadriven.TestData) string {
	if r.tb != nil {
		d.Fatalf(r.t, "already started")
	}
	slots, partsMax := int(r.intArg(d, "slots", 0)), int(r.intArg(d, "partitions-max", 0))
	r.tb = &testBroker{t: r.t, dir: r.t.TempDir(), backend: r.backend,
		mod: func(o *Options, _ *RegistryOptions) {
			o.FetchSessionCacheSlots, o.FetchSessionPartitionsMax = slots, partsMax
		},
		onNew: func(b *Broker) {
			b.fetchSessions.now = func() time.Time { return time.Unix(0, r.nowNs.Load()) }
		},
	}
	r.tb.start()
	r.t.Cleanup(r.tb.stop)
	r.conn = dialProd(r.t, r.tb.Addr)
	return "ok"
}

// restart [lose-snapshots]: stop (a clean shutdown writes producer
// snapshots) and start again on the same data dir, then reconnect. With
// lose-snapshots every producer snapshot is deleted while the broker is
// down, so producer state is rebuilt from the log's batch headers.
func (r *ddBroker) handleRestart(d *datadriven.TestData) string {
	var dirs []string
	for _, topic := range r.tb.Reg.Topics() {
		for _, p := range topic.Partitions {
			dirs = append(dirs, p.Log.Dir())
		}
	}
	r.tb.stop()
	removed := 0
	if d.HasArg("lose-snapshots") {
		for _, dir := range dirs {
			snaps, _ := filepath.Glob(filepath.Join(dir, "*.snapshot"))
			for _, s := range snaps {
				if err := os.Remove(s); err != nil {
					r.t.Fatal(err)
				}
				removed++
			}
		}
	}
	r.tb.start()
	r.conn = dialProd(r.t, r.tb.Addr)
	if d.HasArg("lose-snapshots") {
		return fmt.Sprintf("removed %d snapshots", removed)
	}
	return "ok"
}

// create-topic name [partitions=N]
func (r *ddBroker) handleCreateTopic(d *datadriven.TestData) string {
	name := r.pos(d, 0)
	if _, err := r.tb.Reg.CreateTopic(name, int32(r.intArg(d, "partitions", 1)), nil, false); err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

// advance DUR: step the fetch session cache's clock.
func (r *ddBroker) handleAdvance(d *datadriven.TestData) string {
	dur, err := time.ParseDuration(r.pos(d, 0))
	if err != nil {
		d.Fatalf(r.t, "advance: %v", err)
	}
	r.nowNs.Add(int64(dur))
	return "ok"
}
