package netpoll

import (
	"fmt"
	"strings"

	"github.com/cockroachdb/datadriven"
)

// pressure queued=N [conns=N]: an io_uring loop (no ring: its connections
// have no receive armed, so nothing is submitted) whose queued bytes are N,
// with conns open connections on first use; runs the loop's pressure check
// (uring_bounds.go checkLoopPressure) under the script's bounds and prints
// whether the loop is under pressure and which connections are marked
// pressured (single-shot receives until each drains). The loop and its
// connections persist through the script.
func (h *orderedHarness) handlePressure(d *datadriven.TestData) string {
	if h.loop == nil {
		h.loop = &uloop{s: &uringServer{}}
		for i := 0; i < int(h.intArg(d, "conns", 1)); i++ {
			h.loop.conns = append(h.loop.conns, &uconn{l: h.loop, idx: uint32(i), fd: 100 + i})
		}
	}
	l := h.loop
	l.s.bounds = h.b
	l.queuedBytes = h.intArg(d, "queued", l.queuedBytes)
	l.checkLoopPressure()
	var marked []string
	for _, c := range l.conns {
		if c.pressured {
			marked = append(marked, fmt.Sprint(c.idx))
		}
	}
	state := "off"
	if l.pressure {
		state = "on"
	}
	return fmt.Sprintf("pressure=%s pressured=[%s]", state, strings.Join(marked, " "))
}
