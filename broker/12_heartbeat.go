package broker

// Heartbeat (key 12), versions 0-4.
//
// Behaviour: resets the member's session timer; answers
// REBALANCE_IN_PROGRESS while the group is PreparingRebalance (the member
// must rejoin), ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID
// (v3+ static members), INVALID_GROUP_ID for an empty group id. Answered
// at once on the ring thread (in-memory only).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.Heartbeat, 0, 4, aliasing, (*Broker).serveHeartbeat))
}

func (b *Broker) serveHeartbeat(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.HeartbeatRequest) {
	inst := ""
	if r.InstanceID != nil {
		inst = *r.InstanceID
	}
	c := b.groups
	c.lock()
	code := c.g.Heartbeat(b.clock.Now(), r.Group, r.MemberID, inst, r.Generation)
	c.unlock()
	resp := kmsg.NewHeartbeatResponse()
	resp.Version = hdr.APIVersion
	resp.ErrorCode = code
	b.replyMsg(req, &hdr, &resp)
}
