package group

import (
	"fmt"
	"strings"
	"testing"
)

// expire [retention=DUR] [exists=topicA,topicB]: offset retention; with
// exists, offsets of topics not listed are expired as deleted topics'.
func (h *harness) handleExpire(t *testing.T, a ddArgs) {
	var exists func(string, int32) bool
	if e, ok := a.kv["exists"]; ok {
		set := map[string]bool{}
		for _, s := range strings.Split(e, ",") {
			set[s] = true
		}
		exists = func(topic string, _ int32) bool { return set[topic] }
	}
	n := h.c.ExpireOffsets(h.now, dur(t, a.kv["retention"], 0), exists)
	fmt.Fprintf(h.out, "expired %d offsets\n", n)
}
