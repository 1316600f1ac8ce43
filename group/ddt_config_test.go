package group

import (
	"testing"
	"time"
)

// config [delay=DUR] [min=DUR] [max=DUR] [maxmembers=N] [maxgroups=N]: a
// fresh coordinator with no clients and no persisted records.
func (h *harness) handleConfig(t *testing.T, a ddArgs) {
	kv := a.kv
	h.cfg = Config{InitialRebalanceDelay: dur(t, kv["delay"], 0), MinSessionTimeout: dur(t, kv["min"], time.Second),
		MaxSessionTimeout: dur(t, kv["max"], time.Minute), MaxMembers: num(t, kv["maxmembers"], 0),
		MaxGroups: num(t, kv["maxgroups"], 0)}
	h.clients = map[string]*ddClient{}
	h.records = nil
	h.newSince = 0
	h.reset()
}

// advance DUR: move time forward and run Tick.
func (h *harness) handleAdvance(t *testing.T, a ddArgs) {
	h.now = h.now.Add(dur(t, a.arg0(), 0))
	h.c.Tick(h.now)
}
