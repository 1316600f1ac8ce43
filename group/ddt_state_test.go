package group

import (
	"fmt"
	"sort"
	"strings"
)

// groups: list every group.
func (h *harness) handleGroups() {
	for _, g := range h.c.Groups() {
		fmt.Fprintf(h.out, "%s %s %s\n", g.ID, g.State, g.ProtocolType)
	}
}

// state [group=]: dump one group, its members, pending members and offsets.
func (h *harness) dumpGroup(g *Group) {
	out := h.out
	if g == nil {
		fmt.Fprintln(out, "no group")
		return
	}
	fmt.Fprintf(out, "%s: %s gen=%d type=%s proto=%s leader=%s\n", g.ID, g.State, g.Generation, g.ProtocolType, g.Protocol, h.name(g.Leader))
	for _, m := range g.Members() {
		fmt.Fprintf(out, "  member %s id=%s", h.name(m.ID), m.ID)
		if m.InstanceID != "" {
			fmt.Fprintf(out, " instance=%s", m.InstanceID)
		}
		fmt.Fprintf(out, " session=%s assignment=%q\n", m.SessionTimeout, m.Assignment)
	}
	if len(g.pending) > 0 {
		var ids []string
		for id := range g.pending {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Fprintf(out, "  pending %s\n", strings.Join(ids, " "))
	}
	for _, o := range g.Offsets() {
		fmt.Fprintf(out, "  offset %s-%d=%d\n", o.Topic, o.Partition, o.Offset.Offset)
	}
}
