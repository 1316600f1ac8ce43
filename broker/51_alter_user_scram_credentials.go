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
// Differences from Apache Kafka: an empty salt or salted password is
// UNACCEPTABLE_CREDENTIAL (Kafka stores it); duplicates are (user,
// mechanism) pairs as KIP-554 and ZooKeeper-era Kafka define them; in a
// cluster every user is refused with UNSUPPORTED_VERSION and a message:
// credentials are stored per node until they move to the metadata log
// (config refuses SCRAM listeners in a cluster for the same reason).

import (
	"bytes"
	"slices"

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

// alterUserScramCredentials runs on the admin worker.
func (b *Broker) alterUserScramCredentials(req netpoll.Request, h *proto.RequestHeader, r *kmsg.AlterUserSCRAMCredentialsRequest, allowed bool) {
	resp := kmsg.AlterUserSCRAMCredentialsResponse{Version: h.APIVersion}
	var users []string
	userErr := map[string]kmsg.AlterUserSCRAMCredentialsResponseResult{}
	seen := map[store.Key]bool{}
	note := func(user string) {
		if _, ok := userErr[user]; !ok {
			users = append(users, user)
			userErr[user] = kmsg.AlterUserSCRAMCredentialsResponseResult{User: user}
		}
	}
	fail := func(user string, code int16, msg string) {
		if res := userErr[user]; res.ErrorCode == 0 {
			res.ErrorCode, res.ErrorMessage = code, errMsg(msg)
			userErr[user] = res
		}
	}
	for _, d := range r.Deletions {
		note(d.Name)
	}
	for _, u := range r.Upsertions {
		note(u.Name)
	}
	switch {
	case !allowed:
		for _, u := range users {
			fail(u, kerr.ClusterAuthorizationFailed.Code, "Cluster authorization failed.")
		}
	case b.sec == nil || b.opts.Cluster != nil:
		for _, u := range users {
			fail(u, kerr.UnsupportedVersion.Code, "SCRAM credentials are not served here: they are stored per node, and only by a single node with security configured")
		}
	}
	var current map[store.Key]sasl.Credential
	if b.sec != nil {
		current = b.sec.creds.Snapshot()
	}
	validate := func(name string, code int8) (store.Key, *sasl.ScramMechanism, bool) {
		m := store.MechanismByCode(code)
		k := store.Key{User: name, Mechanism: code}
		switch {
		case m == nil:
			fail(name, kerr.UnsupportedSaslMechanism.Code, "Unknown SCRAM mechanism")
		case name == "":
			fail(name, kerr.UnacceptableCredential.Code, "Username must not be empty")
		case seen[k]:
			fail(name, kerr.DuplicateResource.Code, "A user credential cannot be altered twice in the same request")
		default:
			seen[k] = true
			return k, m, true
		}
		return k, m, false
	}
	var deletions []store.Key
	upserts := map[store.Key]sasl.Credential{}
	for _, d := range r.Deletions {
		k, _, ok := validate(d.Name, d.Mechanism)
		if !ok {
			continue
		}
		if _, exists := current[k]; !exists {
			fail(d.Name, kerr.ResourceNotFound.Code, "Attempt to delete a user credential that does not exist")
			continue
		}
		deletions = append(deletions, k)
	}
	for _, u := range r.Upsertions {
		k, m, ok := validate(u.Name, u.Mechanism)
		if !ok {
			continue
		}
		switch {
		case int(u.Iterations) < m.MinIterations:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Too few iterations")
		case int(u.Iterations) > m.MaxIterations:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Too many iterations")
		case len(u.Salt) == 0 || len(u.Salt) > 1024 || len(u.SaltedPassword) == 0:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Salt and salted password must not be empty (salt at most 1024 bytes)")
		default:
			upserts[k] = m.CredentialFromSaltedPassword(u.SaltedPassword, u.Salt, int(u.Iterations))
		}
	}
	// A user with a failed alteration has none applied.
	deletions = slices.DeleteFunc(deletions, func(k store.Key) bool { return userErr[k.User].ErrorCode != 0 })
	for k := range upserts {
		if userErr[k.User].ErrorCode != 0 {
			delete(upserts, k)
		}
	}
	if len(deletions)+len(upserts) > 0 {
		err := b.sec.creds.Update(deletions, upserts, func(data []byte) error {
			return b.sec.backend.Save(store.CredentialsBlob, data)
		})
		if err != nil {
			b.log.Error("AlterUserScramCredentials: storing the credentials failed; nothing changed", zap.Error(err))
			for _, u := range users {
				fail(u, kerr.UnknownServerError.Code, "storing the credentials failed")
			}
		}
	}
	for _, u := range users {
		resp.Results = append(resp.Results, userErr[u])
	}
	b.replyMsg(req, h, &resp)
}
