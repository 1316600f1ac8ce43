package broker

// AlterClientQuotas (key 49), versions 0-1.
//
// Behaviour: needs ALTER_CONFIGS on the cluster (else every entry is
// CLUSTER_AUTHORIZATION_FAILED). Validation is Kafka's controller's
// (ClientQuotaControlManager, quota.Set.Alter), per entry: an empty
// entity, a duplicate or unknown entity type, an empty name, ip combined
// with user or client-id, an unknown key for the entity, a value not
// above 0, a fractional value of an integral key (producer_byte_rate,
// consumer_byte_rate, connection_creation_rate) or a key altered twice
// are INVALID_REQUEST with Kafka's messages, and an entry with an error
// has none of its ops applied. validate_only checks and changes nothing.
//
// Single node: the new set is written to the local store (the blob
// "client-quotas", atomically) before it is enforced and before the
// answer, on the admin worker; a failed write answers
// UNKNOWN_SERVER_ERROR for every entry that would have changed and
// changes nothing. A request with more than 10,000 entries closes the
// connection (Kafka has no such bound). Cluster: forwarded to the active controller, which
// writes a ClientQuotaRecord per changed key; the answer comes once this
// broker has applied them (and so enforces them).

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/quota"
)

func init() {
	register(decoded(kmsg.AlterClientQuotas, 0, 1, copying, func(b *Broker, req netpoll.Request, h proto.RequestHeader, r *kmsg.AlterClientQuotasRequest) {
		h.ClientID = nil // aliases the frame; answered from the worker
		if len(r.Entries) > alterClientQuotasEntriesMax {
			// No real caller sends this many; answering each entry would
			// cost more memory per received byte than the decode bound
			// allows (a frame of empty entries, TestHostileArrayCountAmplification).
			req.Close("AlterClientQuotas with more than 10,000 entries")
			return
		}
		allowed := b.authorizeCluster(req, acl.OpAlterConfigs)
		b.submitAdmin(req, &h, r, func() {
			if allowed && b.opts.Cluster != nil {
				b.forward(req, &h, r)
				return
			}
			b.replyMsg(req, &h, b.alterClientQuotas(r, allowed))
		})
	}))
}

// alterClientQuotasEntriesMax bounds the entries of one AlterClientQuotas;
// a request with more is closed (Kafka has no bound; its Java objects cost
// it more than ours).
const alterClientQuotasEntriesMax = 10000

// quotaAlterMu serialises single-node alterations: each computes its
// changes from the set the previous one published.
var quotaAlterMu sync.Mutex

// alterClientQuotas runs on the admin worker (single node).
func (b *Broker) alterClientQuotas(r *kmsg.AlterClientQuotasRequest, allowed bool) *kmsg.AlterClientQuotasResponse {
	alts := quota.Alterations(r)
	answer := func(errs []*quota.Error) *kmsg.AlterClientQuotasResponse { return quota.AlterResponse(r, errs) }
	if !allowed {
		errs := make([]*quota.Error, len(alts))
		for i := range errs {
			errs[i] = &quota.Error{Code: kerr.ClusterAuthorizationFailed.Code, Message: "Cluster authorization failed."}
		}
		return answer(errs)
	}
	quotaAlterMu.Lock()
	defer quotaAlterMu.Unlock()
	cur := b.quotas.mgr.Configs()
	entities, errs, changes := cur.Alter(alts)
	if r.ValidateOnly || len(changes) == 0 {
		return answer(errs)
	}
	next := cur.Apply(changes...)
	data, err := next.Encode()
	if err == nil {
		err = b.quotas.backend.Save(quotasBlob, data)
	}
	if err != nil {
		b.log.Error("storing client quotas failed; nothing changed", zap.Error(err))
		changed := map[quota.Entity]bool{}
		for _, c := range changes {
			changed[c.Entity] = true
		}
		for i := range errs {
			if errs[i] == nil && changed[entities[i]] {
				errs[i] = &quota.Error{Code: kerr.UnknownServerError.Code, Message: "storing the client quotas failed"}
			}
		}
		return answer(errs)
	}
	b.quotas.mgr.SetConfigs(next)
	return answer(errs)
}
