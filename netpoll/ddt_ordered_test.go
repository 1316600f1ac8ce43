package netpoll

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cockroachdb/datadriven"
)

// push [n=N] [bytes=N]: n requests arrive.
func (h *orderedHarness) handlePush(d *datadriven.TestData) string {
	n, bytes := int(h.intArg(d, "n", 1)), int32(h.intArg(d, "bytes", 100))
	var seqs []string
	for i := 0; i < n; i++ {
		seqs = append(seqs, fmt.Sprint(h.q.push(bytes)))
	}
	return "seq " + strings.Join(seqs, " ")
}

// ddFileRef is a file reference whose releases the harness counts.
type ddFileRef struct {
	h   *orderedHarness
	tag string
}

func (r ddFileRef) Release() { r.h.freed[r.tag]++ }

// complete seq=N [tag=S] [bytes=N] [files] [none]: a handler answers.
func (h *orderedHarness) handleComplete(d *datadriven.TestData) string {
	seq := uint32(h.intArg(d, "seq", 0))
	var buf *Buffer
	if !d.HasArg("none") {
		tag := fmt.Sprint(seq)
		if a, ok := d.Arg("tag"); ok {
			tag = a.SingleVal(h.t)
		}
		size := int(h.intArg(d, "bytes", 64))
		buf = &Buffer{B: make([]byte, 4, max(size, 4+len(tag)))}
		buf.B = append(buf.B, tag...)
		if d.HasArg("files") {
			buf.Files = []FileRegion{{At: len(buf.B), Fd: -1, Len: 1000, Ref: ddFileRef{h, tag}}}
		}
		h.tags[buf] = tag
	}
	if !h.q.complete(seq, buf) {
		buf.Release() // a dropped stale completion: the caller releases it
		return "dropped"
	}
	return "ok"
}

// send [max=N]: the buffers the next send would carry, in order.
func (h *orderedHarness) handleSend(d *datadriven.TestData) string {
	bufs := h.q.nextReady(nil, int(h.intArg(d, "max", 64)))
	if len(bufs) == 0 {
		return "nothing to send"
	}
	var tags []string
	for _, b := range bufs {
		t := h.tags[b]
		if b.hasFiles() {
			t += "+file"
		}
		tags = append(tags, t)
	}
	return "send " + strings.Join(tags, " ")
}

// sent: the send completed; the slots it carried leave the queue.
func (h *orderedHarness) handleSent() string {
	req, resp := h.q.popSent()
	return fmt.Sprintf("popped req-bytes=%d resp-bytes=%d%s", req, resp, h.fileReleases())
}

// close: the connection closed with everything still queued.
func (h *orderedHarness) handleClose() string {
	h.q.releaseAll()
	return "closed" + h.fileReleases()
}

// fileReleases lists the file references released since the last call, and
// how many times each (it must be once).
func (h *orderedHarness) fileReleases() string {
	if len(h.freed) == 0 {
		return ""
	}
	var ts []string
	for t, n := range h.freed {
		if n == 1 {
			ts = append(ts, t)
		} else {
			ts = append(ts, fmt.Sprintf("%s(x%d)", t, n))
		}
	}
	sort.Strings(ts)
	clear(h.freed)
	return " files-released=" + strings.Join(ts, ",")
}

// state: every slot from head to tail; "|" marks where the next send starts.
func (h *orderedHarness) handleState() string {
	var b strings.Builder
	fmt.Fprintf(&b, "head=%d sent=%d tail=%d slots=%d\n", h.q.head, h.q.sent, h.q.tail, len(h.q.slots))
	for seq := h.q.head; seq != h.q.tail; seq++ {
		if seq == h.q.sent {
			b.WriteString("  |\n")
		}
		s := h.q.at(seq)
		switch s.state {
		case slotPending:
			fmt.Fprintf(&b, "  %d pending\n", seq)
		case slotNoReply:
			fmt.Fprintf(&b, "  %d no-reply\n", seq)
		case slotReady:
			fmt.Fprintf(&b, "  %d ready %s\n", seq, h.tags[s.buf])
		default:
			fmt.Fprintf(&b, "  %d free?\n", seq)
		}
	}
	if h.q.sent == h.q.tail && h.q.head != h.q.tail {
		b.WriteString("  |\n")
	}
	return b.String()
}
