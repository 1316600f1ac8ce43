package broker

// CreateAcls (key 30), versions 1-3 (Kafka 4's range: v0 was removed).
//
// Behaviour: needs ALTER on the cluster (else every creation is
// CLUSTER_AUTHORIZATION_FAILED); without an authorizer every creation is
// SECURITY_DISABLED "No Authorizer is configured.", as Kafka's AclApis.
// Each binding is validated and added by auth/acl (Kafka's checks and
// messages, INVALID_REQUEST); a binding already present succeeds. The new
// ACL set is written to the durable store (auth/store) before the answer,
// on the admin worker; a failed write restores the previous set and
// answers UNKNOWN_SERVER_ERROR for every creation.
//
// Differences from Apache Kafka: auth/acl's (a principal without a colon
// or an empty host is INVALID_REQUEST; a bound on the number of bindings,
// POLICY_VIOLATION beyond it).

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/auth/store"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.CreateACLs, 1, 3, copying, func(b *Broker, req netpoll.Request, h proto.RequestHeader, r *kmsg.CreateACLsRequest) {
		h.ClientID = nil
		allowed := b.authorizeCluster(req, acl.OpAlter) // on the ring: the connection's session
		b.submitAdmin(req, &h, r, func() { b.createACLs(req, &h, r, allowed) })
	}))
}

// createACLs runs on the admin worker.
func (b *Broker) createACLs(req netpoll.Request, h *proto.RequestHeader, r *kmsg.CreateACLsRequest, allowed bool) {
	resp := kmsg.CreateACLsResponse{Version: h.APIVersion, Results: make([]kmsg.CreateACLsResponseResult, len(r.Creations))}
	failAll := func(code int16, msg string) {
		for i := range resp.Results {
			resp.Results[i] = kmsg.CreateACLsResponseResult{ErrorCode: code, ErrorMessage: errMsg(msg)}
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
	bindings := make([]acl.Binding, len(r.Creations))
	for i, c := range r.Creations {
		bindings[i] = acl.Binding{
			Pattern: acl.ResourcePattern{Type: acl.ResourceTypeFromCode(int8(c.ResourceType)), Name: c.ResourceName,
				PatternType: acl.PatternTypeFromCode(int8(c.ResourcePatternType))},
			Entry: acl.Entry{Principal: c.Principal, Host: c.Host, Operation: acl.OperationFromCode(int8(c.Operation)),
				Permission: acl.PermissionFromCode(int8(c.PermissionType))},
		}
	}
	authz := b.sec.authz
	before, gen := authz.Bindings(), authz.Generation()
	results := authz.Create(bindings)
	if authz.Generation() != gen {
		if err := b.sec.saveACLs(before); err != nil {
			b.log.Error("CreateAcls: storing the ACLs failed; previous set restored", zap.Error(err))
			failAll(kerr.UnknownServerError.Code, "storing the ACLs failed")
			return
		}
	}
	for i, res := range results {
		if res.Err != nil {
			resp.Results[i] = kmsg.CreateACLsResponseResult{ErrorCode: res.Err.Code, ErrorMessage: errMsg(res.Message)}
		}
	}
	b.replyMsg(req, h, &resp)
}

// saveACLs writes the current ACL set to the store; on failure it
// restores before (the set the store still holds) and returns the error.
// REQUIRES: the admin worker (ACL writes are serialised there).
func (s *security) saveACLs(before []acl.Binding) error {
	data, err := s.authz.Encode()
	if err == nil {
		err = s.backend.Save(store.ACLsBlob, data)
	}
	if err != nil {
		if lerr := s.authz.Load(before); lerr != nil {
			return fmt.Errorf("%w; restoring the previous ACLs failed too: %v", err, lerr)
		}
	}
	return err
}
