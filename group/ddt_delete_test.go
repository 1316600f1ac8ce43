package group

import (
	"fmt"
	"testing"
)

// delete [group=]: DeleteGroups.
func (h *harness) handleDelete(a ddArgs) {
	fmt.Fprintf(h.out, "delete %s\n", codeName(h.c.DeleteGroup(a.group())))
}

// delete-offsets topic=T p=N [group=]: OffsetDelete of one partition.
func (h *harness) handleDeleteOffsets(t *testing.T, a ddArgs) {
	top, codes := h.c.DeleteOffsets(a.group(), []TopicPartition{{a.kv["topic"], int32(num(t, a.kv["p"], 0))}})
	fmt.Fprintf(h.out, "delete-offsets %s", codeName(top))
	for _, c := range codes {
		fmt.Fprintf(h.out, " %s", codeName(c))
	}
	fmt.Fprintln(h.out)
}
