package broker

// AlterUserScramCredentials (key 51), version 0.
//
// Behaviour: needs ALTER on the cluster (else every user's result is
// CLUSTER_AUTHORIZATION_FAILED). Upsertions carry the salted password the
// client computed (kafka-configs.sh, kadm's AlterUserSCRAMs); the broker
// stores only the SCRAM credential derived from it (stored key, server
// key, salt, iterations). Validation is Kafka's (ScramControlManager),
// per user, and a user with any failed alteration has none applied:
//
//   - unknown mechanism: UNSUPPORTED_SASL_MECHANISM "Unknown SCRAM mechanism";
//   - empty user name: UNACCEPTABLE_CREDENTIAL "Username must not be empty";
//   - iterations below 4096 / above 16384: UNACCEPTABLE_CREDENTIAL
//     "Too few iterations" / "Too many iterations";
//   - deleting a credential that does not exist: RESOURCE_NOT_FOUND
//     "Attempt to delete a user credential that does not exist";
//   - the same (user, mechanism) twice in the request: DUPLICATE_RESOURCE
//     "A user credential cannot be altered twice in the same request".
//
// The new set is written to the durable store (auth/store) before it is
// used and before the answer, on the admin worker; a failed write answers
// UNKNOWN_SERVER_ERROR for every user that would have changed and changes
// nothing.
//
// In a cluster the request is forwarded to the active controller, which
// validates it the same way and writes UserScramCredentialRecord /
// RemoveUserScramCredentialRecord to the metadata log; every node follows
// the log (cluster.go), so a user created through one node authenticates
// on all of them.
//
// Differences from Apache Kafka: an empty salt or salted password is
// UNACCEPTABLE_CREDENTIAL (Kafka stores it); duplicates are (user,
// mechanism) pairs as KIP-554 and ZooKeeper-era Kafka define them.

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/auth/sasl"
	"github.com/ringbroker/ringbroker/auth/store"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.AlterUserSCRAMCredentials, 0, 0, copying, func(b *Broker, req netpoll.Request, h proto.RequestHeader, r *kmsg.AlterUserSCRAMCredentialsRequest) {
		h.ClientID = nil              // aliases the frame; answered from the worker
		for i := range r.Upsertions { // bytes fields alias the frame even when copying
			u := &r.Upsertions[i]
			u.Salt, u.SaltedPassword = bytes.Clone(u.Salt), bytes.Clone(u.SaltedPassword)
		}
		// Authorized here, on the ring thread: the session is the
		// connection's.
		allowed := b.authorizeCluster(req, acl.OpAlter)
		b.submitAdmin(req, &h, r, func() { b.alterUserScramCredentials(req, &h, r, allowed) })
	}))
}

// alterUserScramCredentials runs on the admin worker. Validation is
// store.PlanAlter's; in a cluster the controller validates and writes the
// credentials as metadata records (controller/security.go).
func (b *Broker) alterUserScramCredentials(req netpoll.Request, h *proto.RequestHeader, r *kmsg.AlterUserSCRAMCredentialsRequest, allowed bool) {
	var refusedCode int16
	var refusedMsg string
	switch {
	case !allowed:
		refusedCode, refusedMsg = kerr.ClusterAuthorizationFailed.Code, "Cluster authorization failed."
	case b.sec == nil:
		refusedCode, refusedMsg = kerr.UnsupportedVersion.Code, "SCRAM credentials are not served here: security is not configured"
	case b.opts.Cluster != nil:
		b.forward(req, h, r) // cluster.go
		return
	}
	var current map[store.Key]sasl.Credential
	if b.sec != nil {
		current = b.sec.creds.Snapshot()
	}
	plan := store.PlanAlter(current, r, refusedCode, refusedMsg)
	resp := kmsg.AlterUserSCRAMCredentialsResponse{Version: h.APIVersion, Results: plan.Results}
	if len(plan.Deletions)+len(plan.Upserts) > 0 {
		err := b.sec.creds.Update(plan.Deletions, plan.Upserts, func(data []byte) error {
			return b.sec.backend.Save(store.CredentialsBlob, data)
		})
		if err != nil {
			b.log.Error("AlterUserScramCredentials: storing the credentials failed; nothing changed", zap.Error(err))
			for i := range resp.Results {
				if resp.Results[i].ErrorCode == 0 {
					resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.UnknownServerError.Code, errMsg("storing the credentials failed")
				}
			}
		}
	}
	b.replyMsg(req, h, &resp)
}
