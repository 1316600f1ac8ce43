package group

import (
	"fmt"
	"strings"
	"testing"
)

// sync <client> [gen=N] [assign=c1:x,c2:y] [proto=P] [instance=I]
func (h *harness) handleSync(t *testing.T, a ddArgs) {
	kv := a.kv
	name := a.arg0()
	cl := h.client(name)
	gen := int32(num(t, kv["gen"], int(cl.gen)))
	assign := map[string][]byte{}
	if s := kv["assign"]; s != "" {
		for _, pair := range strings.Split(s, ",") {
			c, v, _ := strings.Cut(pair, ":")
			assign[h.client(c).member] = []byte(v)
		}
	}
	h.c.Sync(h.now, SyncRequest{Group: a.group(), MemberID: cl.member, InstanceID: kv["instance"], Generation: gen,
		Protocol: kv["proto"], Assignments: assign}, func(r SyncResult) {
		if r.Err != 0 {
			fmt.Fprintf(h.out, "%s: sync %s\n", name, codeName(r.Err))
			return
		}
		fmt.Fprintf(h.out, "%s: sync ok assignment=%q\n", name, r.Assignment)
	})
}
