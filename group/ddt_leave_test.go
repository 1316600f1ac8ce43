package group

import (
	"fmt"
	"strings"
)

// leave <client>[,<client>...] [instance=I] [by=instance]: one LeaveGroup
// naming every client (by member id, or by instance id alone with
// by=instance).
func (h *harness) handleLeave(a ddArgs) {
	var lms []LeaveMember
	names := strings.Split(a.arg0(), ",")
	for _, n := range names {
		lm := LeaveMember{MemberID: h.client(n).member, InstanceID: a.kv["instance"]}
		if a.kv["instance"] != "" && a.kv["by"] == "instance" {
			lm.MemberID = ""
		}
		lms = append(lms, lm)
	}
	codes := h.c.Leave(h.now, a.group(), lms)
	for i, n := range names {
		fmt.Fprintf(h.out, "%s: leave %s\n", n, codeName(codes[i]))
	}
}
