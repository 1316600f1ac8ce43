package group

import (
	"fmt"
	"testing"
)

// commit <client> [gen=N] [instance=I]: OffsetCommit validation of a member's
// commit.
func (h *harness) handleCommit(t *testing.T, a ddArgs) {
	cl := h.client(a.arg0())
	code := h.c.CheckCommit(h.now, a.group(), cl.member, a.kv["instance"], int32(num(t, a.kv["gen"], int(cl.gen))))
	fmt.Fprintf(h.out, "%s: commit %s\n", a.arg0(), codeName(code))
}

// simple-commit [group=]: a commit with generation -1 and no member.
func (h *harness) handleSimpleCommit(a ddArgs) {
	fmt.Fprintf(h.out, "simple-commit %s\n", codeName(h.c.CheckCommit(h.now, a.group(), "", "", -1)))
}

// apply topic=T p=N offset=N [group=]: store a committed offset.
func (h *harness) handleApply(t *testing.T, a ddArgs) {
	group := a.group()
	tp := TopicPartition{a.kv["topic"], int32(num(t, a.kv["p"], 0))}
	h.c.ApplyOffset(h.now, group, tp,
		Offset{Offset: int64(num(t, a.kv["offset"], 0)), LeaderEpoch: -1, CommitTimestamp: h.now.UnixMilli()})
	// The broker persists committed offsets itself; record it here too so
	// "restart" sees it.
	o, _ := h.c.FetchOffset(group, tp)
	h.records = append(h.records, persisted{group, OffsetKey(group, tp), OffsetValue(o)})
}
