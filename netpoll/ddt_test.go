package netpoll

// Datadriven scripts (github.com/cockroachdb/datadriven, laid out as etcd
// raft's rafttest) for the ordered response queue (ordered.go), fed fake
// completions, with both backends' mute rule (bounds.muteCause, mute.go)
// applied to the in-flight figures the queue accounts for. go test -run
// TestOrderedScripts -rewrite regenerates the expected output. This file
// holds the runner and the dispatch; the handlers are in
// ddt_ordered_test.go.
//
// Commands (a connection and its queue per script):
//
//	bounds [requests=N] [bytes=N] [loop=N]
//	                                     the connection bounds (default 1024 and 16 MiB)
//	                                     and the loop's share of queued bytes (default 1 GiB)
//	loop other=N                         bytes the loop accounts for other connections
//	start-at seq=N                       a fresh queue whose first sequence number is N
//	push [n=N] [bytes=N]                 n requests of bytes request bytes each
//	complete seq=N [tag=S] [bytes=N] [files] [none]
//	                                     answer a slot: a response tagged S costing bytes
//	                                     (its capacity), splicing a file region with files,
//	                                     no response with none
//	send [max=N]                         take the run of answered slots the next send carries
//	sent                                 the send finished: pop what it carried
//	close                                the connection closed: release everything
//	state                                the queue's slots
//	pressure queued=N [conns=N]          an io_uring loop's pressure check at N queued bytes
//
// Every command but state and pressure ends with the connection's figures: queue length,
// in-flight requests and bytes (request bytes of every queued slot plus the
// cost of every answer not yet sent), and why the mute rule stops reading
// it (none, conn, loop).

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

func TestOrderedScripts(t *testing.T) {
	paths, _ := filepath.Glob("testdata/ordered/*.txt")
	if len(paths) == 0 {
		t.Fatal("no scripts")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			h := newOrderedHarness()
			datadriven.RunTest(t, p, func(t *testing.T, d *datadriven.TestData) string {
				h.t = t
				return h.handle(d)
			})
		})
	}
}

// orderedHarness is one connection's queue and the bookkeeping the script
// checks: which buffers and file references were released, and how often.
type orderedHarness struct {
	t     *testing.T
	q     orderedQueue
	b     bounds
	other int64  // the loop's bytes of other connections
	loop  *uloop // pressure's loop, made on first use
	tags  map[*Buffer]string
	freed map[string]int // tag -> releases of its file reference
}

func newOrderedHarness() *orderedHarness {
	return &orderedHarness{b: bounds{connRequests: 1024, connBytes: 16 << 20, loopBytes: 1 << 30}, tags: map[*Buffer]string{}, freed: map[string]int{}}
}

func (h *orderedHarness) handle(d *datadriven.TestData) string {
	var out string
	switch d.Cmd {
	case "bounds":
		h.b.connRequests = int(h.intArg(d, "requests", int64(h.b.connRequests)))
		h.b.connBytes = h.intArg(d, "bytes", h.b.connBytes)
		h.b.loopBytes = h.intArg(d, "loop", h.b.loopBytes)
	case "loop":
		h.other = h.intArg(d, "other", h.other)
	case "start-at":
		seq := uint32(h.intArg(d, "seq", 0))
		h.q = orderedQueue{head: seq, sent: seq, tail: seq}
	case "push":
		out = h.handlePush(d)
	case "complete":
		out = h.handleComplete(d)
	case "send":
		out = h.handleSend(d)
	case "sent":
		out = h.handleSent()
	case "close":
		out = h.handleClose()
	case "state":
		return h.handleState()
	case "pressure":
		return h.handlePressure(d)
	default:
		d.Fatalf(h.t, "unknown command %q", d.Cmd)
	}
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out + h.figures()
}

func (h *orderedHarness) intArg(d *datadriven.TestData, k string, def int64) int64 {
	a, ok := d.Arg(k)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(a.SingleVal(h.t), 10, 64)
	if err != nil {
		d.Fatalf(h.t, "%s: bad %s: %v", d.Cmd, k, err)
	}
	return n
}

// inflight is what the backends count against the connection bounds: the
// request bytes of every queued slot and the cost of every answer the queue
// still holds.
func (h *orderedHarness) inflight() (requests int, bytes int64) {
	for seq := h.q.head; seq != h.q.tail; seq++ {
		s := h.q.at(seq)
		bytes += int64(s.reqBytes)
		if s.buf != nil {
			bytes += s.buf.cost()
		}
	}
	return h.q.len(), bytes
}

func (h *orderedHarness) figures() string {
	n, bytes := h.inflight()
	why := h.b.muteCause(n, bytes, h.other+bytes)
	return fmt.Sprintf("len=%d in-flight=%d bytes=%d mute=%v", h.q.len(), n, bytes, why)
}
