package group

import (
	"fmt"
	"testing"
)

// heartbeat <client> [gen=N] [instance=I]
func (h *harness) handleHeartbeat(t *testing.T, a ddArgs) {
	cl := h.client(a.arg0())
	code := h.c.Heartbeat(h.now, a.group(), cl.member, a.kv["instance"], int32(num(t, a.kv["gen"], int(cl.gen))))
	fmt.Fprintf(h.out, "%s: heartbeat %s\n", a.arg0(), codeName(code))
}
