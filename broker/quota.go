package broker

// Client quotas, enforced (issue 19). The quota configs are a quota.Set:
// on a single node it is stored whole in the local store (the blob
// "client-quotas" beside the SCRAM credentials and ACLs, auth/store's
// Backend) by AlterClientQuotas before it is used; in a cluster it is the
// metadata image's (ClientQuotaRecords written by the controller), so
// every broker enforces the same values, and OnMetadata hands each new
// image's set to the manager.
//
// Enforcement (quota.Manager, Kafka's ClientQuotaManager): a client is
// its principal's name (ANONYMOUS on PLAINTEXT, as Kafka's sanitized
// user) and its client id.
//
//   - Produce: the request's bytes count toward producer_byte_rate once
//     it is handled; the answer carries the throttle in throttle_time_ms
//     and the connection is then not read for that long
//     (netpoll.Request.ReplyThrottled, KIP-219). An acks=0 request is
//     counted when handed to the logs and its throttle mutes the
//     connection without an answer (netpoll.Request.NoReplyThrottled).
//   - Fetch (consumers, not followers): the response's bytes count toward
//     consumer_byte_rate; a client owing a throttle gets Kafka's throttled
//     answer (no records; 01_fetch.go) with the same mute, and the bytes
//     are taken back off its rate.
//   - request_percentage: every request's time in ServeFrame (decode,
//     checks, the hand-off and a synchronous answer) counts, after the
//     handler returns, as percent-seconds: 100 means one ring thread (on
//     the portable backend, one connection reader) busy all the time, so
//     100 x ring.count is the whole broker's request processing (Kafka's
//     100 per network or I/O thread). Time on the workers (produce, admin,
//     log writer) is not counted. The throttle owed is carried by the
//     client's next answer (Produce, Fetch, and every kmsg answer whose
//     header still names the client), the larger of it and a byte-rate
//     throttle, where Kafka throttles the very answer whose handling went
//     over: our synchronous answers are queued before their time is known.
//
// Followers' fetches and the controller's own RPCs are never throttled.
// With no quota of a type set anywhere, that type costs one atomic load
// per request.

import (
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/store"
	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/metrics"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/quota"
)

// QuotaOptions configure the client quotas.
type QuotaOptions struct {
	// WindowNum is quota.window.num (0: 11).
	WindowNum int
	// WindowSize is quota.window.size.seconds (0: 1 s).
	WindowSize time.Duration
	// Backend stores the quota set on a single node; nil: the security
	// options' backend, else a store.FileBackend in DataDir.
	Backend store.Backend
}

// quotasBlob is the local store's blob of the quota set.
const quotasBlob = "client-quotas"

// metricsQuotaRatesMax bounds the rates per quota type the metrics export
// (the most recently used).
const metricsQuotaRatesMax = 100

type quotaState struct {
	mgr     *quota.Manager
	backend store.Backend // nil in a cluster
}

// newQuotas loads the single node's quota set.
func newQuotas(b *Broker) (*quotaState, error) {
	o := b.opts.Quota
	q := &quotaState{mgr: quota.NewManager(quota.Config{Samples: o.WindowNum, WindowMs: o.WindowSize.Milliseconds()})}
	if b.opts.Cluster != nil {
		// The cluster's quotas are the metadata log's; a single node's
		// set is not carried over (kept on disk, not used).
		if _, ok, _ := (store.FileBackend{FS: b.fs(), Dir: b.opts.DataDir}).Load(quotasBlob); ok {
			b.log.Warn("this node's single-node client quotas are not used in a cluster: set them again with AlterClientQuotas (kafka-configs.sh)",
				zap.String("file", quotasBlob))
		}
	}
	if b.opts.Cluster == nil {
		q.backend = o.Backend
		if q.backend == nil && b.sec != nil {
			q.backend = b.sec.backend
		}
		if q.backend == nil {
			q.backend = store.FileBackend{FS: b.fs(), Dir: b.opts.DataDir}
		}
		data, ok, err := q.backend.Load(quotasBlob)
		if err != nil {
			return nil, err
		}
		if ok {
			set, err := quota.Decode(data)
			if err != nil {
				return nil, err
			}
			q.mgr.SetConfigs(set)
		}
	}
	b.opts.Metrics.WatchQuotas(func() []metrics.QuotaStat {
		var out []metrics.QuotaStat
		for _, s := range q.mgr.Stats(time.Now().UnixMilli(), metricsQuotaRatesMax) {
			out = append(out, metrics.QuotaStat{Type: s.Type.Name(), User: s.Key.User, ClientID: s.Key.ClientID,
				Quota: s.Quota, Rate: s.Rate, ThrottleMs: s.Throttle, Throttled: s.Count})
		}
		return out
	})
	return q, nil
}

// quotaClient is who a request's usage is counted for; zero: nobody
// (quotas of that type off, or a follower).
type quotaClient struct {
	on       bool
	user     string
	clientID string
}

// quotaClientOf names req's client for quota type t, or returns the zero
// quotaClient when no quota of t is set (no allocation then).
func (b *Broker) quotaClientOf(req netpoll.Request, h *proto.RequestHeader, t quota.Type) quotaClient {
	if b.quotas == nil || !b.quotas.mgr.Enabled(t) {
		return quotaClient{}
	}
	user := anonymous.Name
	if s := sessionOf(req); s != nil && s.principal.Name != "" {
		user = s.principal.Name
	}
	return quotaClient{on: true, user: user, clientID: string(h.ClientID)}
}

// recordQuota counts v for c and returns the throttle c owes, in
// milliseconds.
func (b *Broker) recordQuota(c quotaClient, t quota.Type, v float64) int32 {
	if !c.on {
		return 0
	}
	ms := b.quotas.mgr.Record(t, c.user, c.clientID, v, b.clock.Now().UnixMilli())
	if ms > 0 {
		if ce := b.log.Check(zap.DebugLevel, "client throttled"); ce != nil {
			ce.Write(zap.String("quota", t.Key()), zap.String("user", c.user), zap.String("client_id", c.clientID), zap.Int64("throttle_ms", ms))
		}
	}
	return int32(min(ms, 1<<31-1))
}

// unrecordQuota takes back v recorded for c (a throttled Fetch's bytes,
// which it does not carry), as Kafka's unrecordQuotaSensor.
func (b *Broker) unrecordQuota(c quotaClient, t quota.Type, v float64) {
	if c.on {
		b.quotas.mgr.Unrecord(t, c.user, c.clientID, v, b.clock.Now().UnixMilli())
	}
}

// recordRequestTime counts d of handler time for req's client under
// request_percentage.
func (b *Broker) recordRequestTime(req netpoll.Request, h *proto.RequestHeader, d time.Duration) {
	b.recordQuota(b.quotaClientOf(req, h, quota.Request), quota.Request, float64(d)*100/float64(time.Second))
}

// requestThrottle is the throttle c owes under request_percentage now,
// recording nothing.
func (b *Broker) requestThrottle(c quotaClient) int32 {
	if !c.on {
		return 0
	}
	return int32(min(b.quotas.mgr.Check(quota.Request, c.user, c.clientID, b.clock.Now().UnixMilli()), 1<<31-1))
}

// replyMsgQuota is replyMsg's throttle: with a request_percentage quota
// on the client, a kmsg answer that has throttle_time_ms carries what the
// client owes and the connection is muted for it.
func (b *Broker) replyMsgQuota(req netpoll.Request, h *proto.RequestHeader, resp interface{ AppendTo([]byte) []byte }, buf *netpoll.Buffer) {
	if b.quotas != nil && h.ClientID != nil && b.quotas.mgr.Enabled(quota.Request) {
		if tr, ok := resp.(kmsg.SetThrottleResponse); ok {
			if ms := b.requestThrottle(b.quotaClientOf(req, h, quota.Request)); ms > 0 {
				tr.SetThrottle(ms)
				buf.B = resp.AppendTo(buf.B)
				req.ReplyThrottled(buf, time.Duration(ms)*time.Millisecond)
				return
			}
		}
	}
	buf.B = resp.AppendTo(buf.B)
	req.Reply(buf)
}

// AdmitConnection is netpoll's Options.AdmitConn: the
// connection_creation_rate quota of ip entities (ip=<address>, else
// ip=<default>). An address already over its rate is refused (closed at
// accept; Kafka closes it after a delay) and not counted.
func (b *Broker) AdmitConnection(ip net.IP) bool {
	if b.quotas == nil || !b.quotas.mgr.Enabled(quota.ConnectionCreation) {
		return true
	}
	return b.quotas.mgr.AdmitConnection(ip.String(), b.clock.Now().UnixMilli())
}

// replyQuota sends buf, throttled for ms milliseconds when ms > 0.
func replyQuota(req netpoll.Request, buf *netpoll.Buffer, ms int32) {
	if ms > 0 {
		req.ReplyThrottled(buf, time.Duration(ms)*time.Millisecond)
		return
	}
	req.Reply(buf)
}

// setQuotas publishes a new quota set (a cluster's image).
func (b *Broker) setQuotas(s quota.Set) {
	if b.quotas != nil {
		b.quotas.mgr.SetConfigs(s)
	}
}

// syncQuotas enforces the image's quota set when it changed (cluster).
func (b *Broker) syncQuotas(im *metadata.Image, deltas []metadata.Delta, full bool) {
	changed := full
	for i := range deltas {
		changed = changed || deltas[i].ChangedQuotas
	}
	if changed {
		b.setQuotas(im.Quotas())
	}
}
