package group

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// join <client> [group=] [member=ID|-] [instance=] [protocols=a,b] [meta=S]
// [topics=t1+t2] [type=consumer] [session=DUR] [rebalance=DUR] [v=N]
func (h *harness) handleJoin(t *testing.T, a ddArgs) {
	kv := a.kv
	name := a.arg0()
	cl := h.client(name)
	member := cl.member
	if m, ok := kv["member"]; ok {
		member = m
		if m == "-" {
			member = ""
		}
	}
	var protos []Protocol
	ps := kv["protocols"]
	if ps == "" {
		ps = "range"
	}
	for _, p := range strings.Split(ps, ",") {
		md := []byte(kv["meta"] + ":" + p)
		if ts := kv["topics"]; ts != "" {
			cm := kmsg.ConsumerMemberMetadata{Topics: strings.Split(ts, "+")}
			md = cm.AppendTo(nil)
		}
		protos = append(protos, Protocol{Name: p, Metadata: md})
	}
	typ := kv["type"]
	if typ == "" {
		typ = "consumer"
	}
	req := JoinRequest{Group: a.group(), MemberID: member, InstanceID: kv["instance"], ClientID: name, ClientHost: "/127.0.0.1",
		ProtocolType: typ, Protocols: protos, SessionTimeout: dur(t, kv["session"], 10*time.Second),
		RebalanceTimeout: dur(t, kv["rebalance"], 10*time.Second), RequireKnownMemberID: num(t, kv["v"], 5) >= 4}
	h.c.Join(h.now, req, func(r JoinResult) {
		if r.Err == 0 || r.Err == kerr.MemberIDRequired.Code {
			cl.member = r.MemberID
		}
		if r.Err != 0 {
			fmt.Fprintf(h.out, "%s: join %s member=%s\n", name, codeName(r.Err), r.MemberID)
			return
		}
		cl.gen = r.Generation
		fmt.Fprintf(h.out, "%s: join ok gen=%d member=%s leader=%s proto=%s", name, r.Generation, r.MemberID, h.name(r.Leader), r.Protocol)
		if r.SkipAssignment {
			fmt.Fprintf(h.out, " skip-assignment")
		}
		if len(r.Members) > 0 {
			var ms []string
			for _, m := range r.Members {
				md := string(m.Metadata)
				var cm kmsg.ConsumerMemberMetadata
				if cm.ReadFrom(m.Metadata) == nil && len(cm.Topics) > 0 {
					md = strings.Join(cm.Topics, "+")
				}
				ms = append(ms, h.name(m.MemberID)+"="+md)
			}
			fmt.Fprintf(h.out, " members=[%s]", strings.Join(ms, " "))
		}
		fmt.Fprintln(h.out)
	})
}
