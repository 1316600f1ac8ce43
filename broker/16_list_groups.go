package broker

// ListGroups (key 16), versions 0-5.
//
// Behaviour: every group with its protocol type; v4+ filter by state
// (case-insensitive, Kafka's state names) and answer each group's state;
// v5+ filter by group type: every group here is "classic".

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.ListGroups, 0, 5, aliasing, (*Broker).serveListGroups))
}

func (b *Broker) serveListGroups(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.ListGroupsRequest) {
	resp := kmsg.NewListGroupsResponse()
	resp.Version = hdr.APIVersion
	typeOK := len(r.TypesFilter) == 0
	for _, t := range r.TypesFilter {
		typeOK = typeOK || strings.EqualFold(t, "classic")
	}
	c := b.groups
	allVisible := b.authorizeCluster(req, acl.OpDescribe) // authz.go: else only the groups it may DESCRIBE
	c.lock()
	if typeOK {
		for _, g := range c.g.Groups() {
			if !allVisible && !b.authorize(req, acl.OpDescribe, acl.ResourceGroup, g.ID) {
				continue
			}
			st := g.State.String()
			if len(r.StatesFilter) > 0 {
				match := false
				for _, f := range r.StatesFilter {
					match = match || strings.EqualFold(f, st)
				}
				if !match {
					continue
				}
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.ID, g.ProtocolType, st, "classic"
			resp.Groups = append(resp.Groups, lg)
		}
	}
	c.unlock()
	b.replyMsg(req, &hdr, &resp)
}
