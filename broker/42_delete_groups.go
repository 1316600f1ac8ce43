package broker

// DeleteGroups (key 42), versions 0-2.
//
// Behaviour: an Empty group is deleted with its committed offsets
// (tombstones for every offset key and the group metadata key are appended
// to __consumer_offsets); a group with members is NON_EMPTY_GROUP, an
// unknown one GROUP_ID_NOT_FOUND, "" INVALID_GROUP_ID.
//
// Differences from Apache Kafka: answered once the tombstones are queued
// on the log, not when their append completed (a crash in between brings
// the group back on restart, like a lost DeleteGroups).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.DeleteGroups, 0, 2, aliasing, (*Broker).serveDeleteGroups))
}

func (b *Broker) serveDeleteGroups(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.DeleteGroupsRequest) {
	resp := kmsg.NewDeleteGroupsResponse()
	resp.Version = hdr.APIVersion
	c := b.groups
	c.lock()
	for _, id := range r.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		if b.authorize(req, acl.OpDelete, acl.ResourceGroup, id) { // authz.go
			rg.ErrorCode = c.g.DeleteGroup(id)
		} else {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
		}
		resp.Groups = append(resp.Groups, rg)
	}
	c.unlock()
	b.replyMsg(req, &hdr, &resp)
}
