package broker

// FindCoordinator (key 10), versions 0-6.
//
// Behaviour: a single node is the coordinator for every key: group keys
// (type 0) and transactional ids (type 1) are answered with this node, v4+
// batches keys and answers each. In a cluster a group's coordinator is the
// leader of its __consumer_offsets partition (cluster_groups.go), a
// transactional id's the leader of its __transaction_state partition
// (txn_coordinator.go). An empty group key is answered with this node too,
// as Kafka does (the group APIs then reject the empty id with
// INVALID_GROUP_ID).
//
// Differences from Apache Kafka: share keys (type 2) INVALID_REQUEST. Kafka creates __consumer_offsets and
// __transaction_state on the first FindCoordinator; we create them on the
// first write (group_coordinator.go, txn_coordinator.go).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.FindCoordinator, 0, 6, aliasing, (*Broker).serveFindCoordinator))
}

func (b *Broker) serveFindCoordinator(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.FindCoordinatorRequest) {
	resp := kmsg.NewFindCoordinatorResponse()
	resp.Version = hdr.APIVersion
	code := int16(0)
	var msg *string
	switch r.CoordinatorType {
	case 0:
	case 1:
	default:
		code = kerr.InvalidRequest.Code
	}
	host, port := b.advertised(req) // security.go: the request's listener
	node := b.opts.NodeID
	if code != 0 {
		node, host, port = -1, "", -1
	}
	// locate answers one group key: this broker, or in a cluster the
	// broker leading the group's __consumer_offsets partition.
	locate := func(key string) (int32, string, int32, int16, *string) {
		if code == 0 && r.CoordinatorType == 1 && !b.authorize(req, acl.OpDescribe, acl.ResourceTransactionalID, key) { // authz.go
			return -1, "", -1, kerr.TransactionalIDAuthorizationFailed.Code, nil
		}
		if code == 0 && r.CoordinatorType == 0 && !b.authorize(req, acl.OpDescribe, acl.ResourceGroup, key) { // authz.go
			return -1, "", -1, kerr.GroupAuthorizationFailed.Code, nil
		}
		if code != 0 || b.opts.Cluster == nil {
			return node, host, port, code, msg
		}
		if r.CoordinatorType == 1 {
			node, host, port, code, msg = b.txnClusterCoordinator(key)
		} else {
			node, host, port, code, msg = b.clusterCoordinator(key)
		}
		host, port = b.requestAddress(req, node, host, port) // on the request's listener
		return node, host, port, code, msg
	}
	if hdr.APIVersion < 4 {
		resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage = locate(r.CoordinatorKey)
	} else {
		for _, k := range r.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = k
			c.NodeID, c.Host, c.Port, c.ErrorCode, c.ErrorMessage = locate(k)
			resp.Coordinators = append(resp.Coordinators, c)
		}
	}
	b.replyMsg(req, &hdr, &resp)
}
