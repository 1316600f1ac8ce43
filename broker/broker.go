// Package broker implements the Kafka API semantics on top of netpoll: it is
// the netpoll.Handler that parses each request header, dispatches by API key
// and version, and answers through the connection's ordered response queue.
//
// One file per API, named NN_name.go after the API key, each opening with the
// versions served and every deliberate difference from Apache Kafka.
//
// Decode: ServeFrame decodes every request body once, centrally (api.decode:
// kmsg.RequestForKey's type and one ReadFrom, as franz-go's kfake does),
// and hands the handler its typed kmsg request; a handler never sees the
// body. The exception is the hot path (Produce), whose flyweight parser is
// registered raw behind the same table and reads its own body. A body that
// does not decode closes the connection (badRequest) before any handler
// runs.
//
// Decode bound: a request body is decoded by exactly one decoder, kmsg's
// generated ReadFrom (every API but Produce) or the Produce flyweight, and
// both refuse an array whose count times the smallest encoding of one
// element exceeds the bytes left, before allocating anything for it (kmsg
// from v1.15.1, with the element's minimum size for the version read, so
// there is no per-API pre-walk). Decoding one body byte therefore costs at
// most 32 heap bytes (a Go element over its smallest wire encoding; Kafka's
// own bound is one element per remaining byte, each a Java object), 72 for
// the Produce flyweight, whose partition slots carry the answer too;
// TestDecodeAmplification holds every served API key and version to that.
//
// Threads: ServeFrame runs on a netpoll loop thread and must not block.
// Handlers that wait for something (appends, long-poll fetches) answer later
// from whichever goroutine completes the work.
package broker

import (
	"context"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/pwenc"
	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/metrics"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/quota"
	"github.com/ringbroker/ringbroker/storage"
)

// Options configure a Broker.
type Options struct {
	NodeID int32
	// AdvertisedHost and AdvertisedPort are what Metadata tells clients.
	AdvertisedHost string
	AdvertisedPort int32
	// DataDir holds meta.properties (the cluster id); the first log dir.
	DataDir string
	Logger  *zap.Logger
	// Registry is the topic table; nil serves no topics (tests of the
	// protocol layer alone).
	Registry *Registry
	// AutoCreateTopics and NumPartitions: auto.create.topics.enable and
	// num.partitions.
	AutoCreateTopics bool
	NumPartitions    int32
	// MessageMaxBytes is message.max.bytes, the broker default of a
	// topic's max.message.bytes.
	MessageMaxBytes int32
	// FetchZeroCopy is fetch.zero.copy: serve record bytes with
	// splice/sendfile (true) or read+send.
	FetchZeroCopy bool
	// FetchCopyMaxBytes is fetch.copy.max.bytes: partition regions up to
	// this size are copied into the response instead of spliced (0:
	// never); fetchOp.copySmall.
	FetchCopyMaxBytes int
	// FetchWakeOnLoop is fetch.wake.on.loop: a fetch woken from its long
	// poll is answered on its connection's io_uring loop thread
	// (netpoll.Request.RunOnLoop) instead of a goroutine of its own.
	FetchWakeOnLoop bool
	// FetchSessionCacheSlots is max.incremental.fetch.session.cache.slots
	// and FetchSessionPartitionsMax fetch.session.cache.max.partitions
	// (0: the defaults, 1000 and 100000; negative: none).
	FetchSessionCacheSlots    int
	FetchSessionPartitionsMax int
	// Metrics records per-API request counts and latencies; nil records
	// nothing.
	Metrics *metrics.Registry

	// Consumer groups (group_coordinator.go; zero values take the defaults
	// noted). GroupInitialRebalanceDelay: group.initial.rebalance.delay.ms
	// (0: none). GroupMin/MaxSessionTimeout: group.min/max.session.timeout.ms
	// (0: no minimum / 30 min). GroupMaxSize: members per group (0: 1000).
	// OffsetsTopicNumPartitions: offsets.topic.num.partitions (0: 50).
	// OffsetsTopicSegmentBytes: offsets.topic.segment.bytes (0: 100 MiB).
	// OffsetsRetention: offsets.retention.minutes (0: 7 days).
	// OffsetsTopicReplicationFactor: offsets.topic.replication.factor, in a
	// cluster only (0: the controller's default.replication.factor; a
	// single node always holds one replica).
	GroupInitialRebalanceDelay    time.Duration
	GroupMinSessionTimeout        time.Duration
	GroupMaxSessionTimeout        time.Duration
	GroupMaxSize                  int
	OffsetsTopicNumPartitions     int32
	OffsetsTopicSegmentBytes      int32
	OffsetsRetention              time.Duration
	OffsetsTopicReplicationFactor int16

	// Txn configures the transaction coordinator (txn_coordinator.go).
	// Transactions are always served: the coordinator, transactional
	// produce, WriteTxnMarkers, DescribeProducers and read_committed
	// fetches bounded by the last stable offset (produce_txn.go).
	Txn TxnOptions

	// Cluster, when set, makes this broker one node of a cluster
	// (cluster.go); nil is the single node. ListenerName names the
	// listener whose endpoints Metadata returns ("" = PLAINTEXT).
	Cluster      Cluster
	ListenerName string
	// InterBrokerListener names the listener this broker's own clients of
	// other brokers connect to (transaction markers; "" = ListenerName),
	// and InterBrokerDial opens those connections (nil: plain TCP; a TLS
	// dialer for an SSL inter-broker listener).
	InterBrokerListener string
	InterBrokerDial     func(ctx context.Context, network, addr string) (net.Conn, error)
	// InterBrokerSASL, when set, is the SASL mechanism the transaction
	// markers' client authenticates with on the inter-broker listener
	// (kgo.SASL: kgo re-authenticates as KIP-368 asks); InterBrokerDial
	// then does TLS only.
	InterBrokerSASL sasl.Mechanism

	// DynamicTLS, when set, changes TLS listeners' key and trust stores
	// through IncrementalAlterConfigs (dynamic_tls.go); nil: every broker
	// key is read-only.
	DynamicTLS DynamicTLS
	// PasswordEncoder encrypts the secrets among DynamicTLS's values
	// before they are stored (password.encoder.*; dynamic_tls_store.go).
	PasswordEncoder pwenc.Encoder

	// Security configures SASL listeners, SCRAM credentials and the
	// authorizer (security.go); nil: every listener PLAINTEXT, no
	// authorization.
	Security *SecurityOptions

	// Quota configures client quotas (quota.go).
	Quota QuotaOptions

	// Clock is the time of the group coordinator's timers, the Fetch long
	// poll and the timestamps the group handlers pass the state machine;
	// nil is the wall clock. Tests pass a *clock.Manual to step them.
	Clock clock.Clock

	// ReplicaLagTimeMax is replica.lag.time.max.ms: a partition led here
	// removes a follower from its ISR when it has not caught up for this
	// long (replication.go). 0: Kafka's default, 30 s.
	ReplicaLagTimeMax time.Duration

	// Rack is broker.rack, advertised by a single node's Metadata and
	// DescribeCluster (in a cluster the image's registration carries it).
	Rack string

	// RackAwareReplicaSelector is replica.selector.class set to Kafka's
	// RackAwareReplicaSelector (KIP-392, fetch_preferred.go): a partition
	// led here sends a consumer that names its rack to an in-sync replica
	// in that rack, and partitions followed here serve consumer fetches.
	// false: consumers fetch from leaders only.
	RackAwareReplicaSelector bool
}

// Broker serves Kafka requests.
type Broker struct {
	opts      Options
	log       *zap.Logger
	clock     clock.Clock // opts.Clock, or the wall clock
	clusterID string
	reg       *Registry
	// fetchSessions holds incremental fetch sessions (KIP-227).
	fetchSessions *fetchSessionCache
	apis          [apiTableSize]*api
	admin         adminWorker   // admin_worker.go: off-loop queue for disk-touching admin requests
	groups        *coordinator  // group_coordinator.go: consumer groups and __consumer_offsets
	produce       *produceState // produce_state.go: producer states, producer ids, produce workers
	// txnVerify, when set (by the transaction coordinator, before serving),
	// verifies a transactional produce before its append (KIP-890): the
	// producer's transaction includes the partition. It returns a Kafka
	// error code, 0 for ok, or remote when another broker coordinates
	// txnID (the data path then asks that broker, txn_add.go). nil
	// verifies nothing. It runs on a network loop and must not block;
	// txnID aliases the request frame (copy it to keep it).
	txnVerify func(txnID string, producerID int64, epoch int16, topic string, partition int32) (code int16, remote bool)
	sec       *security   // security.go; nil without Options.Security
	quotas    *quotaState // quota.go
	// creatingOffsets: a clustered broker is asking the controller for
	// __consumer_offsets (cluster_groups.go).
	creatingOffsets atomic.Bool
	// txns coordinates transactions (txn_coordinator.go).
	txns *txnCoordinator
	// repl is the leader's side of replication (replication.go).
	repl *replication

	// features are the finalized features, with the ApiVersions answers
	// that list them (57_update_features.go).
	features         *featureState
	apiVersionsError []byte // v0 body with UNSUPPORTED_VERSION
}

const apiTableSize = 128

// api is one served API: its version range and handler.
type api struct {
	key      kmsg.Key
	min, max int16
	// serve answers a request that ServeFrame decoded (decoded builds it
	// from a handler taking the request's kmsg type).
	serve func(b *Broker, req netpoll.Request, h proto.RequestHeader, r kmsg.Request)
	// retain: the handler keeps the request after it returns (it answers
	// from another goroutine), so it is allocated fresh. Otherwise the
	// request is recycled through a pool when the handler returns.
	retain bool
	// copyStrings: decoded with the copying ReadFrom, so strings outlive
	// the frame (a handler keeping names past ServeFrame); otherwise they
	// alias the frame (UnsafeReadFrom). Bytes fields alias the frame
	// either way.
	copyStrings bool
	// get returns an empty request to decode into; put takes back an
	// aliasing one when its handler has returned.
	get func() kmsg.Request
	put func(kmsg.Request)
	// serveRaw, set instead of serve, receives the undecoded body: the hot
	// paths (Produce) whose hand-written flyweight parsers allocate nothing
	// per request, which kmsg's decode does per topic and partition.
	serveRaw func(b *Broker, req netpoll.Request, h proto.RequestHeader, body []byte)
}

// decodeMode says how long a decoded request and its strings live; see
// api.retain and api.copyStrings.
type decodeMode uint8

const (
	// aliasing: the request and its strings are the handler's only while it
	// runs.
	aliasing decodeMode = iota
	// copying: the handler keeps the request (and answers later).
	copying
	// scoped: the handler keeps strings it read (Fetch's topic names live
	// in sessions and parked fetches) but not the request itself, so the
	// request is recycled and only its strings are copied.
	scoped
)

// decoded registers an API whose handler takes its decoded kmsg request
// type P (= *T).
func decoded[T any, P interface {
	*T
	kmsg.Request
}](key kmsg.Key, min, max int16, mode decodeMode, serve func(*Broker, netpoll.Request, proto.RequestHeader, P)) api {
	toGroup := groupKeys[key] // looked up once, not per request
	groupOp, authzGroup := groupAuthzOps[key]
	clusterOp, authzCluster := clusterAuthzOps[key]
	_, mutating := mutationStrictFrom[key] // quota_mutation.go
	a := api{key: key, min: min, max: max, retain: mode == copying, copyStrings: mode != aliasing,
		serve: func(b *Broker, req netpoll.Request, h proto.RequestHeader, r kmsg.Request) {
			if authzGroup && b.authzOn() && b.refuseGroupUnauthorized(req, &h, r, groupOp) {
				return // authz.go
			}
			if authzCluster && !b.authorizeCluster(req, clusterOp) {
				b.replyMsg(req, &h, busyResponse(r, kerr.ClusterAuthorizationFailed.Code, "Cluster authorization failed."))
				return // authz.go
			}
			if toGroup && b.opts.Cluster != nil && b.refuseNotCoordinator(req, &h, r) {
				return // cluster_groups.go
			}
			if mutating && b.controllerMutation(req, &h, r) {
				return // quota_mutation.go: controller_mutation_rate
			}
			serve(b, req, h, r.(P))
		},
	}
	if a.retain {
		a.get = func() kmsg.Request { return P(new(T)) }
		a.put = func(kmsg.Request) {}
		return a
	}
	pool := &sync.Pool{New: func() any { return P(new(T)) }}
	a.get = func() kmsg.Request { return pool.Get().(P) }
	a.put = func(r kmsg.Request) {
		// Zeroed, not reset with Default: ReadFrom sets only the fields of
		// the version it reads, so an older version would keep a newer
		// one's.
		*r.(P) = *new(T)
		pool.Put(r)
	}
	return a
}

// raw registers a hot path's flyweight handler, which decodes its own body.
func raw(key kmsg.Key, min, max int16, serve func(*Broker, netpoll.Request, proto.RequestHeader, []byte)) api {
	return api{key: key, min: min, max: max, serveRaw: serve}
}

// decode is the one decode of a request body for every API but the raw
// ones: kmsg's generated ReadFrom, bounded as the package comment says.
// Give the request back with a.put when the handler has returned.
func (a *api) decode(version int16, body []byte) (kmsg.Request, error) {
	r := a.get()
	r.SetVersion(version)
	if a.copyStrings {
		return r, r.ReadFrom(body)
	}
	return r, r.(unsafeReader).UnsafeReadFrom(body)
}

// unsafeReader is the aliasing decode every generated kmsg request has
// (kmsg.Request does not name it).
type unsafeReader interface{ UnsafeReadFrom([]byte) error }

// New creates a broker, reading or creating the cluster id in DataDir.
func New(opts Options) (*Broker, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if err := CheckProducerIDFile(opts.DataDir); err != nil {
		return nil, err
	}
	b := &Broker{opts: opts, log: opts.Logger, clock: clock.Or(opts.Clock), reg: opts.Registry,
		fetchSessions: newFetchSessionCache(opts.FetchSessionCacheSlots, opts.FetchSessionPartitionsMax)}
	b.fetchSessions.now = b.clock.Now // session eviction by idle time
	id, err := loadOrCreateMeta(b.fs(), opts.DataDir, opts.NodeID)
	if err != nil {
		return nil, err
	}
	b.clusterID = id
	if opts.Cluster != nil && opts.Registry != nil {
		opts.Registry.ManagedByCluster()
	}
	for _, a := range servedAPIs {
		a := a
		b.apis[a.key] = &a
	}
	if opts.Security != nil {
		if b.sec, err = newSecurity(b, *opts.Security); err != nil {
			return nil, err
		}
	}
	if b.quotas, err = newQuotas(b); err != nil {
		return nil, fmt.Errorf("loading client quotas (%s): %w", quotasBlob, err)
	}
	if err := b.loadDynamicTLS(); err != nil { // dynamic_tls_store.go
		return nil, fmt.Errorf("loading dynamic broker configs (%s): %w", dynamicConfigsBlob, err)
	}
	b.buildAPIVersionsError()
	if _, err = newFeatures(b); err != nil {
		return nil, fmt.Errorf("loading the finalized features (%s): %w", featuresBlob, err)
	}
	b.produce = newProduceState(b)
	b.repl = newReplication(b)
	b.installStableOffsets() // produce_txn.go
	b.groups = newCoordinator(b)
	if err := b.groups.load(); err != nil {
		return nil, fmt.Errorf("loading consumer groups: %w", err)
	}
	b.txns = newTxnCoordinator(b)
	if err := b.txns.load(); err != nil {
		return nil, fmt.Errorf("loading transactions: %w", err)
	}
	return b, nil
}

// fs is the filesystem of the broker's durable files: the registry's
// (RegistryOptions.FS), the real one without a registry.
func (b *Broker) fs() storage.FS {
	if b.reg != nil {
		return b.reg.opts.FS
	}
	return storage.DefaultFS
}

// Close stops the broker's background work (group coordinator timers, the
// produce workers, after the jobs they hold) and snapshots producer state.
// Call it after the network server has drained and before the registry's
// logs close.
func (b *Broker) Close() error {
	b.StopReplication() // waiting acks=all produces are answered
	if b.groups != nil {
		b.groups.close()
	}
	if b.txns != nil {
		b.txns.close()
	}
	b.produce.workers.close()
	return b.CloseProducerState()
}

// topicMetrics returns t's byte counters, resolving them on the first call
// (nil, which records nothing, when metrics.topic.bytes.enable is off).
func (b *Broker) topicMetrics(t *Topic) *metrics.TopicMetrics {
	if m := t.metrics.Load(); m != nil {
		return m
	}
	m := b.opts.Metrics.Topic(t.Name)
	if m == nil || t.metrics.CompareAndSwap(nil, m) {
		return m
	}
	return t.metrics.Load()
}

// ClusterID is the cluster id persisted in the data dir.
func (b *Broker) ClusterID() string { return b.clusterID }

// servedAPIs lists every API this broker answers, with its versions. Each
// NN_name.go file registers its API from init, so adding an API touches only
// its own file.
var servedAPIs []api

func register(a api) {
	for _, have := range servedAPIs {
		if have.key == a.key {
			panic(fmt.Sprintf("broker: API key %d registered twice", a.key))
		}
	}
	servedAPIs = append(servedAPIs, a)
}

// ServeFrame implements netpoll.Handler.
func (b *Broker) ServeFrame(req netpoll.Request, frame []byte) {
	// A handler bug must cost one connection, not the broker: every other
	// client on this ring thread would go down with it.
	defer func() {
		if v := recover(); v != nil {
			b.log.Error("handler panic; closing the connection", zap.Any("panic", v),
				zap.String("remote", req.RemoteAddr()), zap.ByteString("stack", debug.Stack()))
			req.Close("internal error")
		}
	}()
	if s := sessionOf(req); s != nil && s.gated() && b.serveGated(req, s, frame) {
		return // security.go: the SASL gate
	}
	b.dispatch(req, frame)
}

// dispatch parses the request header and hands the request to its API.
func (b *Broker) dispatch(req netpoll.Request, frame []byte) {
	h, err := proto.ParseRequestHeader(frame)
	if err != nil {
		b.closeBad(req, "unparsable request header", zap.Error(err))
		return
	}
	var a *api
	if h.APIKey >= 0 && int(h.APIKey) < len(b.apis) {
		a = b.apis[h.APIKey]
	}
	if a == nil {
		b.closeBad(req, "unknown or unsupported API key", zap.Int16("api_key", h.APIKey.Int16()), zap.Int16("api_version", h.APIVersion))
		return
	}
	if h.APIVersion < a.min || h.APIVersion > a.max {
		if h.APIKey == kmsg.ApiVersions {
			// KIP-511: answer with a v0 body carrying UNSUPPORTED_VERSION
			// and our versions, so the client can retry with one we serve.
			b.reply(req, &h, b.apiVersionsError)
			return
		}
		b.closeBad(req, "unsupported API version", zap.String("api", h.APIKey.Name()), zap.Int16("api_version", h.APIVersion))
		return
	}
	start := time.Now()
	if a.serveRaw != nil {
		a.serveRaw(b, req, h, frame[h.BodyOffset:])
	} else if r, err := a.decode(h.APIVersion, frame[h.BodyOffset:]); err != nil {
		a.put(r)
		b.badRequest(req, &h, err)
	} else {
		a.serve(b, req, h, r)
		a.put(r)
	}
	// The dispatch time (decode, validate, hand-off); answers that complete
	// later are timed by their handlers' own metrics.
	took := time.Since(start)
	b.opts.Metrics.Request(h.APIKey.Int16(), took)
	if b.quotas != nil && b.quotas.mgr.Enabled(quota.Request) {
		b.recordRequestTime(req, &h, took) // quota.go
	}
}

// closeBad logs and closes a connection that sent something Kafka would
// close it for.
func (b *Broker) closeBad(req netpoll.Request, msg string, fields ...zap.Field) {
	b.log.Warn(msg, append(fields, zap.String("remote", req.RemoteAddr()))...)
	req.Close(msg)
}

// reply sends header + body as the response to h.
func (b *Broker) reply(req netpoll.Request, h *proto.RequestHeader, body []byte) {
	buf := netpoll.GetBuffer()
	buf.B = proto.AppendResponseHeader(buf.B, h)
	buf.B = append(buf.B, body...)
	req.Reply(buf)
}

// replyMsg encodes a kmsg response after the header.
func (b *Broker) replyMsg(req netpoll.Request, h *proto.RequestHeader, resp interface{ AppendTo([]byte) []byte }) {
	buf := netpoll.GetBuffer()
	buf.B = proto.AppendResponseHeader(buf.B, h)
	b.replyMsgQuota(req, h, resp, buf) // quota.go: request_percentage
}

// badRequest closes the connection for a body that does not parse, as Kafka
// does (InvalidRequestException closes the channel).
func (b *Broker) badRequest(req netpoll.Request, h *proto.RequestHeader, err error) {
	b.closeBad(req, fmt.Sprintf("malformed %s v%d request", h.APIKey.Name(), h.APIVersion), zap.Error(err))
}
