package broker

// JoinGroup (key 11), versions 0-9.
//
// Behaviour (group/ has the state machine): v4+ requires a known member id
// (KIP-394: a first join without one is answered MEMBER_ID_REQUIRED with a
// generated "clientId-uuid" id); static members (v5+ group.instance.id,
// KIP-345) rejoining a Stable group get their assignment back without a
// rebalance, and an old incarnation is fenced (FENCED_INSTANCE_ID); v9
// leaders rejoining a Stable group get SkipAssignment (KIP-814). The
// answer is delayed until the join phase completes (all members rejoined,
// the initial rebalance delay of an empty group, or the rebalance
// timeout): the netpoll.Request is held and answered from whichever
// goroutine completes the phase. Members per group are bounded
// (GroupMaxSize, default 1000): GROUP_MAX_SIZE_REACHED.
//
// Differences from Apache Kafka: group.max.size defaults to 1000, not
// Integer.MAX_VALUE (a join storm must not exhaust memory). The v8+ reason
// is ignored.

import (
	"bytes"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.JoinGroup, 0, 9, copying, (*Broker).serveJoinGroup))
}

func (b *Broker) serveJoinGroup(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.JoinGroupRequest) {
	h := hdr
	clientID := string(hdr.ClientID)
	h.ClientID = nil
	jr := group.JoinRequest{Group: r.Group, MemberID: r.MemberID, ClientID: clientID, ClientHost: "/" + hostOf(req.RemoteAddr()),
		ProtocolType: r.ProtocolType, SessionTimeout: time.Duration(r.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout: time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond, RequireKnownMemberID: r.Version >= 4}
	if r.InstanceID != nil {
		jr.InstanceID = *r.InstanceID
	}
	if r.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	for _, p := range r.Protocols {
		// kmsg's ReadFrom copies strings but not bytes: the metadata
		// aliases the frame, which is recycled when ServeFrame returns.
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)})
	}
	c := b.groups
	c.lock()
	c.g.Join(b.clock.Now(), jr, func(res group.JoinResult) {
		resp := kmsg.NewJoinGroupResponse()
		resp.Version = h.APIVersion
		resp.ErrorCode, resp.Generation, resp.LeaderID, resp.MemberID = res.Err, res.Generation, res.Leader, res.MemberID
		resp.SkipAssignment = res.SkipAssignment && h.APIVersion >= 9
		if res.Err == 0 {
			pt, pn := res.ProtocolType, res.Protocol
			resp.ProtocolType, resp.Protocol = &pt, &pn
			if h.APIVersion < 9 && res.SkipAssignment {
				// Pre-KIP-814 leaders would recompute the assignment;
				// SyncGroup in Stable returns the current one anyway.
				resp.SkipAssignment = false
			}
			for _, m := range res.Members {
				jm := kmsg.NewJoinGroupResponseMember()
				jm.MemberID, jm.ProtocolMetadata = m.MemberID, m.Metadata
				if m.InstanceID != "" {
					id := m.InstanceID
					jm.InstanceID = &id
				}
				resp.Members = append(resp.Members, jm)
			}
		} else if res.Err == kerr.MemberIDRequired.Code && h.APIVersion < 4 {
			resp.ErrorCode = kerr.UnknownMemberID.Code
		}
		if h.APIVersion < 7 && resp.Protocol == nil {
			empty := ""
			resp.Protocol = &empty // non-nullable before v7
		}
		b.replyMsg(req, &h, &resp)
	})
	c.unlock()
}

// hostOf strips the port from a "host:port" remote address.
func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}
