package broker

// LeaveGroup (key 13), versions 0-5.
//
// Behaviour: v0-v2 remove one member (top-level error code); v3+ remove a
// batch of members, each by member id or by group.instance.id (static
// members, KIP-345), with a code per member (UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID) and the top-level code NONE. The group rebalances
// without them. In-memory only: answered at once.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.LeaveGroup, 0, 5, copying, (*Broker).serveLeaveGroup))
}

func (b *Broker) serveLeaveGroup(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.LeaveGroupRequest) {
	var lms []group.LeaveMember
	if r.Version < 3 {
		lms = []group.LeaveMember{{MemberID: r.MemberID}}
	} else {
		for _, m := range r.Members {
			lm := group.LeaveMember{MemberID: m.MemberID}
			if m.InstanceID != nil {
				lm.InstanceID = *m.InstanceID
			}
			lms = append(lms, lm)
		}
	}
	resp := kmsg.NewLeaveGroupResponse()
	resp.Version = hdr.APIVersion
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		b.replyMsg(req, &hdr, &resp)
		return
	}
	c := b.groups
	c.lock()
	codes := c.g.Leave(b.clock.Now(), r.Group, lms)
	c.unlock()
	if r.Version < 3 {
		resp.ErrorCode = codes[0]
	} else {
		for i, m := range r.Members {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, m.InstanceID, codes[i]
			resp.Members = append(resp.Members, rm)
		}
	}
	b.replyMsg(req, &hdr, &resp)
}
