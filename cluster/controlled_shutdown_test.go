package cluster

import (
	"testing"
)

// controlled.shutdown.enable=false (Config.NoControlledShutdown): a node
// stops without asking the controller first, so the controller never marks
// it in controlled shutdown and fences it when its session expires instead.
// (The default, a controlled shutdown, is what every other test's stop
// does.)
func TestControlledShutdownDisabled(t *testing.T) {
	tc := newTestCluster(t)
	waitFor(t, "an active controller", func() bool { return tc.controller() >= 0 })
	i := (tc.controller() + 1) % 3
	n := tc.nodes[i]
	id := int32(i + 1)
	waitFor(t, "the node's registration", func() bool { return n.brokerEpoch.Load() >= 0 })
	n.cfg.NoControlledShutdown = true
	tc.stop(i)
	if n.wantShutdown.Load() {
		t.Fatal("controlled shutdown disabled, but the node asked the controller for one")
	}
	other := tc.nodes[(i+1)%3]
	waitFor(t, "the stopped broker fenced", func() bool {
		b, ok := other.Image().Broker(id)
		return ok && b.Fenced
	})
	if b, _ := other.Image().Broker(id); b.InControlledShutdown {
		t.Errorf("controlled shutdown disabled: broker %d was marked in controlled shutdown: %+v", id, b)
	}
}
