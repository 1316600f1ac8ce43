package broker

// Heartbeat (key 12), versions 0-4.
//
// Behaviour: resets the member's session timer; answers
// REBALANCE_IN_PROGRESS while the group is PreparingRebalance (the member
// must rejoin), ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID
// (v3+ static members), INVALID_GROUP_ID for an empty group id. Answered
// at once on the ring thread (in-memory only).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(api{key: 12, min: 0, max: 4, serve: (*Broker).serveHeartbeat})
}

func (b *Broker) serveHeartbeat(req netpoll.Request, hdr proto.RequestHeader, body []byte) {
	r := kmsg.HeartbeatRequest{Version: hdr.APIVersion}
	if err := r.UnsafeReadFrom(body); err != nil {
		b.badRequest(req, &hdr, err)
		return
	}
	inst := ""
	if r.InstanceID != nil {
		inst = *r.InstanceID
	}
	c := b.groups
	c.lock()
	code := c.g.Heartbeat(time.Now(), r.Group, r.MemberID, inst, r.Generation)
	c.unlock()
	resp := kmsg.NewHeartbeatResponse()
	resp.Version = hdr.APIVersion
	resp.ErrorCode = code
	b.replyMsg(req, &hdr, &resp)
}
