package broker

// DescribeClientQuotas (key 48), versions 0-1.
//
// Behaviour: needs DESCRIBE_CONFIGS on the cluster (else
// CLUSTER_AUTHORIZATION_FAILED). The filter is Kafka's
// (ClientQuotasImage.describe): components of type user, client-id or ip,
// each matching an exact name, <default> (a null name) or any name; with
// strict, only entities with no other component. A malformed filter is
// INVALID_REQUEST (an unknown entity type UNSUPPORTED_VERSION), with
// Kafka's messages. Answered on the ring thread from the quota set the
// broker enforces (the image's in a cluster, so any broker answers).
//
// Differences from Apache Kafka: entries are sorted (user, then
// client-id, then ip; <default> first), where Kafka's follow a hash map.

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/quota"
)

func init() {
	register(decoded(kmsg.DescribeClientQuotas, 0, 1, aliasing, (*Broker).describeClientQuotas))
}

func (b *Broker) describeClientQuotas(req netpoll.Request, h proto.RequestHeader, r *kmsg.DescribeClientQuotasRequest) {
	resp := kmsg.DescribeClientQuotasResponse{Version: h.APIVersion}
	if !b.authorizeCluster(req, acl.OpDescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = errMsg("Cluster authorization failed.")
		b.replyMsg(req, &h, &resp)
		return
	}
	filters := make([]quota.Filter, len(r.Components))
	for i, c := range r.Components {
		filters[i] = quota.Filter{Type: c.EntityType, MatchType: int8(c.MatchType), Match: c.Match}
	}
	entries, qerr := b.quotas.mgr.Configs().Describe(filters, r.Strict)
	if qerr != nil {
		resp.ErrorCode, resp.ErrorMessage = qerr.Code, errMsg(qerr.Message)
		b.replyMsg(req, &h, &resp)
		return
	}
	for _, e := range entries {
		re := kmsg.DescribeClientQuotasResponseEntry{}
		for _, c := range e.Entity.Components() {
			re.Entity = append(re.Entity, kmsg.DescribeClientQuotasResponseEntryEntity{Type: c.Type, Name: c.Name.Ptr()})
		}
		for _, k := range slices.Sorted(maps.Keys(e.Values)) {
			re.Values = append(re.Values, kmsg.DescribeClientQuotasResponseEntryValue{Key: k, Value: e.Values[k]})
		}
		resp.Entries = append(resp.Entries, re)
	}
	b.replyMsg(req, &h, &resp)
}
