package broker

// DescribeGroups (key 15), versions 0-5.
//
// Behaviour: state (Kafka's names), protocol type, selected protocol and
// members (member id, v4+ group.instance.id, client id/host, the member's
// metadata for the selected protocol and its assignment; metadata and
// assignment only when the group is Stable or CompletingRebalance, as in
// Kafka). An unknown group is answered with state "Dead" and NONE (Kafka's
// answer before v6). An empty group id is INVALID_GROUP_ID. v3+
// authorized operations: -2147483648 unless asked, then, for a group
// answered without error, the operations the principal may perform on it
// (authz.go), as Kafka.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.DescribeGroups, 0, 5, aliasing, (*Broker).serveDescribeGroups))
}

func (b *Broker) serveDescribeGroups(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.DescribeGroupsRequest) {
	resp := kmsg.NewDescribeGroupsResponse()
	resp.Version = hdr.APIVersion
	c := b.groups
	c.lock()
	for _, id := range r.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		rg.AuthorizedOperations = authorizedOpsNotRequested
		g := c.g.Group(id)
		switch {
		case !b.authorize(req, acl.OpDescribe, acl.ResourceGroup, id): // authz.go
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case id == "":
			rg.ErrorCode = kerr.InvalidGroupID.Code
		case g == nil:
			rg.State = group.Dead.String()
		default:
			rg.State, rg.ProtocolType, rg.Protocol = g.State.String(), g.ProtocolType, g.Protocol
			for _, m := range g.Members() {
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.ClientID, rm.ClientHost = m.ID, m.ClientID, m.ClientHost
				if m.InstanceID != "" {
					inst := m.InstanceID
					rm.InstanceID = &inst
				}
				rm.ProtocolMetadata, rm.MemberAssignment = []byte{}, []byte{}
				if g.State == group.Stable || g.State == group.CompletingRebalance {
					if md := m.Metadata(g.Protocol); md != nil {
						rm.ProtocolMetadata = md
					}
					if m.Assignment != nil {
						rm.MemberAssignment = m.Assignment
					}
				}
				rg.Members = append(rg.Members, rm)
			}
		}
		if r.IncludeAuthorizedOperations && rg.ErrorCode == 0 {
			rg.AuthorizedOperations = b.authorizedOperations(req, acl.ResourceGroup, id)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	// Encode under the lock: members' slices belong to the state machine.
	buf := netpoll.GetBuffer()
	buf.B = proto.AppendResponseHeader(buf.B, &hdr)
	buf.B = resp.AppendTo(buf.B)
	c.unlock()
	req.Reply(buf)
}
