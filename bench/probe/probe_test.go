package probe

import (
	"testing"
	"time"
)

func TestRunTiny(t *testing.T) {
	r := Run(Options{Dir: t.TempDir(), Duration: 100 * time.Millisecond, Bytes: 8 << 20,
		SustainedBytes: 8 << 20, SustainedDuration: time.Second})
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %v", r.Errors)
	}
	for name, v := range map[string]float64{"loopback": r.LoopbackGBps, "write": r.WriteBufferedGBps,
		"sync": r.WriteSyncEachMBGBps, "sustained": r.WriteSyncSustainedGBps, "splice": r.SpliceGBps, "sendfile": r.SendfileGBps, "rw": r.ReadWriteGBps} {
		if v <= 0 {
			t.Errorf("%s = %v", name, v)
		}
	}
	t.Logf("%+v", r)
}
