package broker

// ListTransactions (key 66), versions 0-2.
//
// Behaviour: the transactional ids of every transaction coordinator on this
// broker (txn_coordinator.go), filtered as Kafka does: by state name (an
// unknown name is returned in unknown_state_filters and matches nothing),
// by producer id, v1+ by duration (transactions started at least that many
// ms ago; -1 none), v2+ by a regular expression on the id (RE2 syntax;
// one that does not compile is INVALID_REGULAR_EXPRESSION). Sorted by id.
//
// Authorization (KafkaApis): only the ids the principal may DESCRIBE are
// listed.
//
// Differences from Apache Kafka: the regular expression is Go's RE2, not
// Java's (the same for the patterns tools send).

import (
	"regexp"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/txn"
)

func init() {
	register(decoded(kmsg.ListTransactions, 0, 2, aliasing, (*Broker).serveListTransactions))
}

// txnStateNames are Kafka's state names ListTransactions filters on.
var txnStateNames = map[string]bool{}

func init() {
	for s := txn.Empty; s <= txn.PrepareEpochFence; s++ {
		txnStateNames[s.String()] = true
	}
}

func (b *Broker) serveListTransactions(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.ListTransactionsRequest) {
	resp := kmsg.NewListTransactionsResponse()
	resp.Version = hdr.APIVersion
	states := map[string]bool{}
	for _, s := range r.StateFilters {
		if txnStateNames[s] {
			states[s] = true
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
	}
	if len(r.StateFilters) > 0 && len(states) == 0 {
		// Only unknown states asked for: nothing matches.
		b.replyMsg(req, &hdr, &resp)
		return
	}
	pids := map[int64]bool{}
	for _, p := range r.ProducerIDFilters {
		pids[p] = true
	}
	var pattern *regexp.Regexp
	if hdr.APIVersion >= 2 && r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
		re, err := regexp.Compile(*r.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			b.replyMsg(req, &hdr, &resp)
			return
		}
		pattern = re
	}
	duration := int64(-1)
	if hdr.APIVersion >= 1 {
		duration = r.DurationFilterMillis
	}
	tc := b.txns
	tc.mu.Lock()
	nowMs := tc.clock.Now().UnixMilli()
	for _, co := range tc.coords {
		for _, id := range co.IDs() {
			m := co.Transaction(id)
			switch {
			case len(states) > 0 && !states[m.State.String()]:
			case len(pids) > 0 && !pids[m.ProducerID]:
			case duration >= 0 && nowMs-m.StartTimestamp < duration:
			case pattern != nil && !pattern.MatchString(id):
			case !b.authorize(req, acl.OpDescribe, acl.ResourceTransactionalID, id):
			default:
				s := kmsg.NewListTransactionsResponseTransactionState()
				s.TransactionalID, s.ProducerID, s.TransactionState = id, m.ProducerID, m.State.String()
				resp.TransactionStates = append(resp.TransactionStates, s)
			}
		}
	}
	tc.mu.Unlock()
	sort.Slice(resp.TransactionStates, func(i, j int) bool {
		return resp.TransactionStates[i].TransactionalID < resp.TransactionStates[j].TransactionalID
	})
	b.replyMsg(req, &hdr, &resp)
}
