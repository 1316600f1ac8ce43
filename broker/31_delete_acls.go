package broker

// DeleteAcls (key 31), versions 1-3 (Kafka 4's range).
//
// Behaviour: needs ALTER on the cluster (else every filter's result is
// CLUSTER_AUTHORIZATION_FAILED); without an authorizer SECURITY_DISABLED.
// Each filter removes the bindings it matches (auth/acl: every filter is
// applied to the set as it was before the request) and its result lists
// them; an UNKNOWN field is INVALID_REQUEST for that filter. The new set
// is written to the durable store before the answer, on the admin worker;
// a failed write restores the previous set and answers
// UNKNOWN_SERVER_ERROR for every filter.
//
// Differences from Apache Kafka: no limit on matches per request (the set
// itself is bounded).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.DeleteACLs, 1, 3, copying, func(b *Broker, req netpoll.Request, h proto.RequestHeader, r *kmsg.DeleteACLsRequest) {
		h.ClientID = nil
		allowed := b.authorizeCluster(req, acl.OpAlter)
		b.submitAdmin(req, &h, r, func() { b.deleteACLs(req, &h, r, allowed) })
	}))
}

// deleteACLs runs on the admin worker.
func (b *Broker) deleteACLs(req netpoll.Request, h *proto.RequestHeader, r *kmsg.DeleteACLsRequest, allowed bool) {
	resp := kmsg.DeleteACLsResponse{Version: h.APIVersion, Results: make([]kmsg.DeleteACLsResponseResult, len(r.Filters))}
	failAll := func(code int16, msg string) {
		for i := range resp.Results {
			resp.Results[i] = kmsg.DeleteACLsResponseResult{ErrorCode: code, ErrorMessage: errMsg(msg)}
		}
		b.replyMsg(req, h, &resp)
	}
	switch {
	case !allowed:
		failAll(kerr.ClusterAuthorizationFailed.Code, "Cluster authorization failed.")
		return
	case !b.authzOn():
		failAll(kerr.SecurityDisabled.Code, "No Authorizer is configured.")
		return
	case b.opts.Cluster != nil:
		// The controller writes ACL records (controller/security.go);
		// every node's authorizer follows the log (cluster.go).
		b.forward(req, h, r)
		return
	}
	filters := make([]acl.Filter, len(r.Filters))
	for i, f := range r.Filters {
		filters[i] = aclFilter(int8(f.ResourceType), f.ResourceName, int8(f.ResourcePatternType), f.Principal, f.Host, int8(f.Operation), int8(f.PermissionType))
	}
	authz := b.sec.authz
	before, gen := authz.Bindings(), authz.Generation()
	results := authz.Delete(filters)
	if authz.Generation() != gen {
		if err := b.sec.saveACLs(before); err != nil {
			b.log.Error("DeleteAcls: storing the ACLs failed; previous set restored", zap.Error(err))
			failAll(kerr.UnknownServerError.Code, "storing the ACLs failed")
			return
		}
	}
	for i, res := range results {
		out := &resp.Results[i]
		if res.Err != nil {
			out.ErrorCode, out.ErrorMessage = res.Err.Code, errMsg(res.Message)
			continue
		}
		for _, bd := range res.Deleted {
			out.MatchingACLs = append(out.MatchingACLs, kmsg.DeleteACLsResponseResultMatchingACL{
				ResourceType: kmsg.ACLResourceType(bd.Pattern.Type), ResourceName: bd.Pattern.Name,
				ResourcePatternType: kmsg.ACLResourcePatternType(bd.Pattern.PatternType),
				Principal:           bd.Entry.Principal, Host: bd.Entry.Host,
				Operation: kmsg.ACLOperation(bd.Entry.Operation), PermissionType: kmsg.ACLPermissionType(bd.Entry.Permission)})
		}
	}
	b.replyMsg(req, h, &resp)
}
