package broker

// The transaction coordinator is not implemented yet (the partition side of
// transactions is, behind Options.Transactions: produce_txn.go). Until it
// is, every request that names a transactional id (FindCoordinator key type
// 1, InitProducerId with a transactional id; Produce with one unless
// Options.Transactions) is answered TRANSACTIONAL_ID_AUTHORIZATION_FAILED with
// errTransactionsUnsupported as the error message where the version carries
// one. That code is the one every client we test treats as fatal at once
// (franz-go, librdkafka, KafkaJS, the Java producer's TransactionManager):
// the retriable COORDINATOR_NOT_AVAILABLE we used to answer made each of them
// retry for 5 to 90 s and fail with a timeout that did not say why.
//
// Each transactional id is logged once per txnLogInterval, so the operator
// sees which application asked for transactions without a log line per
// retry.

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// errTransactionsUnsupported is the ErrorMessage of every answer refusing a
// transactional id.
const errTransactionsUnsupported = "transactions are not supported by ringbroker yet"

const (
	// txnLogInterval is how often one transactional id is logged at most.
	txnLogInterval = time.Minute
	// txnLogIDsMax bounds the ids remembered for rate limiting; past it,
	// stale entries are dropped, and ids beyond it go unlogged until then.
	txnLogIDsMax = 1024
)

// txnLogLimiter remembers when each transactional id was last logged.
// Safe for concurrent use (handlers run on every network loop).
type txnLogLimiter struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed int // ids not logged because the map was full
}

// allow reports whether id should be logged now, and how many ids went
// unlogged for lack of room since the last allowed line.
func (l *txnLogLimiter) allow(id string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[id]; ok && now.Sub(t) < txnLogInterval {
		return false, 0
	}
	if l.last == nil {
		l.last = make(map[string]time.Time)
	}
	if _, ok := l.last[id]; !ok && len(l.last) >= txnLogIDsMax {
		for k, t := range l.last {
			if now.Sub(t) >= txnLogInterval {
				delete(l.last, k)
			}
		}
		if len(l.last) >= txnLogIDsMax {
			l.suppressed++
			return false, 0
		}
	}
	l.last[id] = now
	s := l.suppressed
	l.suppressed = 0
	return true, s
}

// refuseTransactionalID logs (rate-limited) that a client asked for a
// transactional id through api.
func (b *Broker) refuseTransactionalID(api, id, remote string) {
	ok, suppressed := b.txnLog.allow(id, time.Now())
	if !ok {
		return
	}
	fields := []zap.Field{zap.String("api", api), zap.String("transactional.id", id), zap.String("remote", remote)}
	if suppressed > 0 {
		fields = append(fields, zap.Int("other_ids_not_logged", suppressed))
	}
	b.log.Warn("refused a transactional producer: "+errTransactionsUnsupported, fields...)
}
