package broker

// SyncGroup (key 14), versions 0-5.
//
// Behaviour: the leader's SyncGroup carries every member's assignment and
// moves the group to Stable; followers' SyncGroups wait (the netpoll.Request
// is held) until it arrives and are answered from the leader's request.
// Fencing: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID,
// REBALANCE_IN_PROGRESS (a new rebalance started), v5+
// INCONSISTENT_GROUP_PROTOCOL when protocol type/name do not match.
//
// Differences from Apache Kafka: answered before the group metadata record
// is durable (see group_coordinator.go).

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.SyncGroup, 0, 5, copying, (*Broker).serveSyncGroup))
}

func (b *Broker) serveSyncGroup(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.SyncGroupRequest) {
	h := hdr
	h.ClientID = nil
	sr := group.SyncRequest{Group: r.Group, MemberID: r.MemberID, Generation: r.Generation, Assignments: map[string][]byte{}}
	if r.InstanceID != nil {
		sr.InstanceID = *r.InstanceID
	}
	if r.ProtocolType != nil {
		sr.ProtocolType = *r.ProtocolType
	}
	if r.Protocol != nil {
		sr.Protocol = *r.Protocol
	}
	for _, a := range r.GroupAssignment {
		// Bytes alias the frame even with ReadFrom: keep a copy.
		sr.Assignments[a.MemberID] = bytes.Clone(a.MemberAssignment)
	}
	c := b.groups
	c.lock()
	c.g.Sync(b.clock.Now(), sr, func(res group.SyncResult) {
		resp := kmsg.NewSyncGroupResponse()
		resp.Version = h.APIVersion
		resp.ErrorCode = res.Err
		if res.Err == 0 {
			pt, pn := res.ProtocolType, res.Protocol
			resp.ProtocolType, resp.Protocol = &pt, &pn
		}
		resp.MemberAssignment = res.Assignment
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
		b.replyMsg(req, &h, &resp)
	})
	c.unlock()
}
