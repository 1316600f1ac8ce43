package broker

// DescribeAcls (key 29), versions 1-3 (Kafka 4's range).
//
// Behaviour: needs DESCRIBE on the cluster (else CLUSTER_AUTHORIZATION_FAILED);
// without an authorizer SECURITY_DISABLED "No Authorizer is configured.".
// The filter (Kafka's AclBindingFilter; MATCH pattern type included) selects
// bindings, answered grouped by resource pattern; a filter with an UNKNOWN
// field is INVALID_REQUEST. Answered on the ring thread from the
// authorizer's snapshot.
//
// Differences from Apache Kafka: none known.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.DescribeACLs, 1, 3, aliasing, (*Broker).describeACLs))
}

func (b *Broker) describeACLs(req netpoll.Request, h proto.RequestHeader, r *kmsg.DescribeACLsRequest) {
	resp := kmsg.DescribeACLsResponse{Version: h.APIVersion}
	switch {
	case !b.authorizeCluster(req, acl.OpDescribe):
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, errMsg("Cluster authorization failed.")
	case !b.authzOn():
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, errMsg("No Authorizer is configured.")
	default:
		f := aclFilter(int8(r.ResourceType), r.ResourceName, int8(r.ResourcePatternType), r.Principal, r.Host, int8(r.Operation), int8(r.PermissionType))
		bindings, kerrv, msg := b.sec.authz.Describe(f)
		if kerrv != nil {
			resp.ErrorCode, resp.ErrorMessage = kerrv.Code, errMsg(msg)
			break
		}
		for _, bd := range bindings { // sorted: one pattern's bindings are contiguous
			n := len(resp.Resources)
			if n == 0 || resp.Resources[n-1].ResourceType != kmsg.ACLResourceType(bd.Pattern.Type) ||
				resp.Resources[n-1].ResourceName != bd.Pattern.Name || resp.Resources[n-1].ResourcePatternType != kmsg.ACLResourcePatternType(bd.Pattern.PatternType) {
				resp.Resources = append(resp.Resources, kmsg.DescribeACLsResponseResource{ResourceType: kmsg.ACLResourceType(bd.Pattern.Type),
					ResourceName: bd.Pattern.Name, ResourcePatternType: kmsg.ACLResourcePatternType(bd.Pattern.PatternType)})
				n++
			}
			resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, kmsg.DescribeACLsResponseResourceACL{Principal: bd.Entry.Principal,
				Host: bd.Entry.Host, Operation: kmsg.ACLOperation(bd.Entry.Operation), PermissionType: kmsg.ACLPermissionType(bd.Entry.Permission)})
		}
	}
	b.replyMsg(req, &h, &resp)
}

// aclFilter maps a request's filter fields to an acl.Filter (strings
// copied: the request may alias the frame).
func aclFilter(resourceType int8, name *string, patternType int8, principal, host *string, op, perm int8) acl.Filter {
	return acl.FilterFromWire(resourceType, name, patternType, principal, host, op, perm)
}
