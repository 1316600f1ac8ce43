// Package config reads ringbroker's server.properties: Kafka's file syntax
// (java.util.Properties) and Kafka's key names wherever Kafka has the key, plus
// ringbroker's own keys under the ring., append., io., tuning. and metrics.
// prefixes.
//
// Every key lives in one table (keys.go for server.properties, topic_keys.go
// for topics) that holds its scope, Kafka type, default, synonyms,
// documentation and parser; Default, Parse, Set, Print, the topic settings
// (TopicSettings, StorageConfig), DescribeConfigs (DescribeBroker,
// DescribeTopic) and Markdown all read that table, so a key's default cannot
// drift from its documentation or from what clients are told.
//
// Rules:
//   - unknown keys are warnings naming the key (and a close known key if any);
//   - Kafka keys that have no meaning for a single io_uring broker (replication,
//     thread pools, ZooKeeper/KRaft quorum) are accepted silently and listed by
//     Print as ignored;
//   - a bad value is an error naming the key and the line;
//   - where Kafka has several keys for one setting (log.retention.ms / .minutes /
//     .hours, log.roll.ms / .hours, log.dirs / log.dir, node.id / broker.id),
//     Kafka's precedence applies, except that a --set override beats the file.
//
// Concurrency: a Config is built and mutated by one goroutine at startup and is
// read-only afterwards; it has no locks.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
)

// Listener is one entry of listeners / advertised.listeners, parsed from
// "NAME://host:port" (IPv6 hosts in brackets). An empty Host means every
// interface.
type Listener struct {
	Name string // upper-cased listener name, e.g. PLAINTEXT
	Host string // host name or IP literal without brackets; "" = all interfaces
	Port int    // 0..65535; 0 asks the kernel for a free port (tests)
}

// Addr returns host:port for net.Listen / bind (IPv6 bracketed).
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// String returns the listener in its config syntax, NAME://host:port.
func (l Listener) String() string { return l.Name + "://" + l.Addr() }

// QueuedMaxRequestBytesUnbounded is the bound ringbroker uses when
// queued.max.request.bytes is Kafka's -1 ("unbounded") or 0: we put a limit on
// everything, so "unbounded" becomes 256 MiB per process.
const QueuedMaxRequestBytesUnbounded int64 = 268435456

// Config is the effective broker configuration. Field comments give the key;
// keys.go gives defaults and meanings. Fields are plain values so the hot path
// reads them without indirection; treat a Config as read-only once the broker
// starts.
type Config struct {
	// Network (Kafka keys).
	Listeners                   []Listener        // listeners, minus controller.listener.names
	AdvertisedListeners         []Listener        // advertised.listeners; default: listeners, wildcard host -> os.Hostname()
	ListenerSecurityProtocolMap map[string]string // listener.security.protocol.map; every listener must map to PLAINTEXT
	ControllerListenerNames     []string          // controller.listener.names; served to the quorum, not to clients (cluster.go)
	InterBrokerListenerName     string            // inter.broker.listener.name; "" see InterBrokerListener
	SecurityInterBrokerProtocol string            // security.inter.broker.protocol; "" see InterBrokerListener
	NodeID                      int32             // node.id (also broker.id)
	SocketRequestMaxBytes       int32             // socket.request.max.bytes
	QueuedMaxRequestBytes       int64             // queued.max.request.bytes; always > 0 here (see QueuedMaxRequestBytesUnbounded)
	ConnectionsMaxIdleMs        int64             // connections.max.idle.ms; <= 0 disables idle close
	MaxConnections              int               // max.connections
	MaxConnectionsPerIP         int               // max.connections.per.ip
	Quota                       QuotaConfig       // quota.go: quota.window.*, max.connection.creation.rate

	// io_uring event loops (ours).
	RingCount               int    // ring.count; 0 = runtime.NumCPU(), see Rings()
	RingEntries             int    // ring.entries (SQ size, power of two)
	RingCPUAffinity         string // ring.cpu.affinity: auto | true | false
	RingSQPoll              bool   // ring.sqpoll
	RingDeferTaskrun        bool   // ring.defer.taskrun
	RingRecvBundle          bool   // ring.recv.bundle
	RingWaitBatch           int    // ring.wait.batch
	RingWaitBatchUs         int    // ring.wait.batch.us
	RingIdleSpinUs          int    // ring.idle.spin.us
	RingThreadNice          int    // ring.thread.nice
	RingRecvBufferBytes     int    // ring.recv.buffer.bytes
	RingRecvBuffers         int    // ring.recv.buffers (per loop, power of two)
	ConnMaxInflightRequests int    // ring.conn.max.inflight.requests
	ConnMaxInflightBytes    int64  // ring.conn.max.inflight.bytes
	IOBackend               string // io.backend: auto | uring | portable

	// Storage and topic defaults (Kafka keys).
	LogDirs                     []string // log.dirs (also log.dir)
	LogSegmentBytes             int32    // log.segment.bytes
	LogRollMs                   int64    // log.roll.ms (also log.roll.hours)
	LogRetentionMs              int64    // log.retention.ms (also .minutes, .hours); -1 = no time limit
	LogRetentionBytes           int64    // log.retention.bytes; -1 = no size limit
	LogRetentionCheckIntervalMs int64    // log.retention.check.interval.ms
	LogCleanupPolicy            []string // log.cleanup.policy: delete and/or compact
	LogFlushIntervalMessages    int64    // log.flush.interval.messages
	LogFlushIntervalMs          int64    // log.flush.interval.ms
	LogIndexIntervalBytes       int32    // log.index.interval.bytes
	LogIndexSizeMaxBytes        int32    // log.index.size.max.bytes
	MessageMaxBytes             int32    // message.max.bytes
	NumPartitions               int32    // num.partitions
	AutoCreateTopicsEnable      bool     // auto.create.topics.enable
	DeleteTopicEnable           bool     // delete.topic.enable
	DefaultReplicationFactor    int16    // default.replication.factor (1 on a single node)
	LogMessageTimestampType     string   // log.message.timestamp.type: CreateTime | LogAppendTime
	CompressionType             string   // compression.type: producer | uncompressed | gzip | snappy | lz4 | zstd

	// Log cleaner (Kafka keys): CleanerConfig, and the defaults of the
	// topics' compaction keys.
	LogCleanerEnable              bool    // log.cleaner.enable
	LogDirOfflineOnFullDisk       bool    // log.dir.offline.on.full.disk (ours)
	LogCleanerThreads             int     // log.cleaner.threads
	LogCleanerDedupeBufferSize    int64   // log.cleaner.dedupe.buffer.size
	LogCleanerIOBufferSize        int     // log.cleaner.io.buffer.size
	LogCleanerIOBufferLoadFactor  float64 // log.cleaner.io.buffer.load.factor
	LogCleanerIOMaxBytesPerSecond float64 // log.cleaner.io.max.bytes.per.second
	ProducerIDExpirationMs        int32   // producer.id.expiration.ms (the cleaner's view of producer expiry)
	LogCleanerBackoffMs           int64   // log.cleaner.backoff.ms
	LogCleanerDeleteRetentionMs   int64   // log.cleaner.delete.retention.ms
	LogCleanerMinCompactionLagMs  int64   // log.cleaner.min.compaction.lag.ms
	LogCleanerMaxCompactionLagMs  int64   // log.cleaner.max.compaction.lag.ms
	LogCleanerMinCleanableRatio   float64 // log.cleaner.min.cleanable.ratio

	// LogFlushOffsetCheckpointIntervalMs is log.flush.offset.checkpoint.interval.ms:
	// how often the log dirs' checkpoint files are rewritten.
	LogFlushOffsetCheckpointIntervalMs int64

	// Record validation and segment bounds (Kafka keys, and one of ours).
	LogMessageTimestampBeforeMaxMs int64 // log.message.timestamp.before.max.ms
	LogMessageTimestampAfterMaxMs  int64 // log.message.timestamp.after.max.ms
	LogSegmentBytesMin             int32 // log.segment.bytes.min (ours)

	// Appender and fetch (ours).
	AppendBatchMaxBytes int    // append.batch.max.bytes
	AppendLingerMaxMs   int    // append.linger.max.ms
	AppendInline        bool   // append.inline
	LogIOBackend        string // log.io.backend: portable | uring
	FetchZeroCopy       bool   // fetch.zero.copy
	// FetchCopyMaxBytes is fetch.copy.max.bytes (ours).
	FetchCopyMaxBytes int
	// FetchWakeOnLoop is fetch.wake.on.loop (ours).
	FetchWakeOnLoop bool

	// AppendPendingMaxBytes is append.pending.max.bytes (ours).
	AppendPendingMaxBytes int64

	// Fetch sessions (KIP-227).
	FetchSessionCacheSlots    int // max.incremental.fetch.session.cache.slots (Kafka)
	FetchSessionMaxPartitions int // fetch.session.cache.max.partitions (ours)

	// Groups (Kafka keys).
	GroupInitialRebalanceDelayMs  int   // group.initial.rebalance.delay.ms
	GroupMinSessionTimeoutMs      int   // group.min.session.timeout.ms
	GroupMaxSessionTimeoutMs      int   // group.max.session.timeout.ms
	OffsetsTopicNumPartitions     int32 // offsets.topic.num.partitions
	OffsetsTopicSegmentBytes      int32 // offsets.topic.segment.bytes
	OffsetsTopicReplicationFactor int16 // offsets.topic.replication.factor (cluster only)
	OffsetsRetentionMinutes       int   // offsets.retention.minutes

	// Transactions (Kafka keys).
	TransactionStateLogNumPartitions                     int32 // transaction.state.log.num.partitions
	TransactionStateLogSegmentBytes                      int32 // transaction.state.log.segment.bytes
	TransactionStateLogReplicationFactor                 int16 // transaction.state.log.replication.factor (cluster only)
	TransactionStateLogMinISR                            int32 // transaction.state.log.min.isr (cluster only)
	TransactionMaxTimeoutMs                              int32 // transaction.max.timeout.ms
	TransactionalIDExpirationMs                          int32 // transactional.id.expiration.ms
	TransactionAbortTimedOutTransactionCleanupIntervalMs int32 // transaction.abort.timed.out.transaction.cleanup.interval.ms
	TransactionVersion                                   int16 // transaction.version (ours: the finalized feature level)
	AddPartitionsToTxnRetryBackoffMs                     int32 // add.partitions.to.txn.retry.backoff.ms
	AddPartitionsToTxnRetryBackoffMaxMs                  int32 // add.partitions.to.txn.retry.backoff.max.ms

	// Cluster (cluster.go; Kafka keys but cluster.id).
	ProcessRoles                        []string // process.roles, sorted; empty = single node, no quorum
	QuorumVoters                        []Voter  // controller.quorum.voters
	QuorumBootstrapServers              []string // controller.quorum.bootstrap.servers (KIP-853)
	QuorumStandalone                    bool     // controller.quorum.standalone (ours: format --standalone)
	QuorumInitialControllers            []Voter  // controller.quorum.initial.controllers (ours: format --initial-controllers)
	MetadataLogDir                      string   // metadata.log.dir; "" = first log dir
	ClusterID                           string   // cluster.id (ours)
	BrokerRack                          string   // broker.rack
	BrokerSessionTimeoutMs              int32    // broker.session.timeout.ms
	BrokerHeartbeatIntervalMs           int32    // broker.heartbeat.interval.ms
	AutoLeaderRebalanceEnable           bool     // auto.leader.rebalance.enable
	LeaderImbalanceCheckIntervalSeconds int64    // leader.imbalance.check.interval.seconds
	LeaderImbalancePerBrokerPercentage  int32    // leader.imbalance.per.broker.percentage
	ControlledShutdownEnable            bool     // controlled.shutdown.enable
	ReplicaLagTimeMaxMs                 int64    // replica.lag.time.max.ms
	ReplicaSelectorClass                string   // replica.selector.class; "" = leader only

	// Replica fetchers (cluster.go; Kafka keys): the follower side of
	// replication, package replica.
	NumReplicaFetchers     int32 // num.replica.fetchers
	ReplicaFetchMaxBytes   int32 // replica.fetch.max.bytes
	ReplicaFetchWaitMaxMs  int32 // replica.fetch.wait.max.ms
	ReplicaFetchMinBytes   int32 // replica.fetch.min.bytes
	ReplicaFetchBackoffMs  int32 // replica.fetch.backoff.ms
	ReplicaSocketTimeoutMs int32 // replica.socket.timeout.ms
	// ReplicaHighWatermarkCheckpointIntervalMs is
	// replica.high.watermark.checkpoint.interval.ms.
	ReplicaHighWatermarkCheckpointIntervalMs int64

	// Security (security.go; Kafka keys but ring.conn.max.authenticating).
	SaslEnabledMechanisms                 []string // sasl.enabled.mechanisms (per listener: ListenerKey)
	SaslMechanismInterBroker              string   // sasl.mechanism.inter.broker.protocol
	ConnectionFailedAuthenticationDelayMs int      // connection.failed.authentication.delay.ms
	ConnectionsMaxReauthMs                int64    // connections.max.reauth.ms
	SaslServerMaxReceiveSize              int      // sasl.server.max.receive.size
	ConnMaxAuthenticating                 int      // ring.conn.max.authenticating (ours)
	AuthorizerClassName                   string   // authorizer.class.name
	SuperUsers                            string   // super.users, as written
	AllowEveryoneIfNoACLFound             bool     // allow.everyone.if.no.acl.found
	// PasswordEncoder is password.encoder.*: how the secrets of dynamic
	// broker configs are encrypted before they are stored.
	PasswordEncoder PasswordEncoderSettings
	// OAUTHBEARER token validation (KIP-768 keys).
	OAuthJWKSURL       string   // sasl.oauthbearer.jwks.endpoint.url
	OAuthIssuer        string   // sasl.oauthbearer.expected.issuer
	OAuthAudiences     []string // sasl.oauthbearer.expected.audience
	OAuthSubClaim      string   // sasl.oauthbearer.sub.claim.name
	OAuthScopeClaim    string   // sasl.oauthbearer.scope.claim.name
	OAuthClockSkewSecs int      // sasl.oauthbearer.clock.skew.seconds

	// Operations (ours).
	TuningStrict            bool   // tuning.strict
	MetricsListener         string // metrics.listener; "" disables the HTTP endpoint
	MetricsPprofEnable      bool   // metrics.pprof.enable
	MetricsTopicBytesEnable bool   // metrics.topic.bytes.enable

	listenersRaw  []Listener        // listeners as written, before controller listeners are removed
	advertisedRaw []Listener        // advertised.listeners as written; empty = derive from listeners
	src           map[string]source // canonical key -> where its value came from
	shadowed      []string          // settings that lost to a higher-precedence key (for Print)
	ignored       []string          // accepted-but-ignored Kafka keys that were set (for Print)
	stored        map[string]string // Kafka broker keys taken and reported, not acted on (storedInt...): key -> value
	listenerKeys  map[string]string // listener.name.<l>.<key> taken (security.go), name lower-cased
	ssl           map[string]string // ssl.* keys (ssl.go), trimmed

	// TLS (ours, ssl.go).
	TLS TLSLimits
}

// source records where a canonical key's value came from.
type source struct {
	where    string // "default", "override", or "name:line"
	key      string // the key actually written (an alias such as log.retention.hours)
	rank     int    // precedence of that key among its aliases; higher wins
	override bool   // from Set (--set); beats any file setting
	value    string // the value as written
}

func (s source) isDefault() bool { return s.where == "default" }

// hostname is os.Hostname, replaceable in tests.
var hostname = os.Hostname

// Default returns the built-in configuration: every key at its default.
func Default() *Config {
	c := &Config{src: make(map[string]source, len(specs)), stored: map[string]string{}}
	for i := range specs {
		sp := &specs[i]
		if sp.canon != "" || !sp.broker() {
			continue
		}
		if err := sp.set(c, sp.def); err != nil {
			panic(fmt.Sprintf("config: default of %s (%q) does not parse: %v", sp.name, sp.def, err))
		}
		c.src[sp.name] = source{where: "default", key: sp.name, rank: -1}
	}
	c.derive()
	return c
}

// Load reads the properties file at path over the defaults. path "" returns the
// defaults. Warnings (unknown keys, duplicates, shadowed aliases) do not stop
// the broker; errors do.
func Load(path string) (*Config, []string, error) {
	if path == "" {
		return Default(), nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads properties from r over the defaults; name labels sources
// ("name:line") in errors, warnings and Print. The result is validated.
func Parse(r io.Reader, name string) (*Config, []string, error) {
	entries, err := parseProperties(r)
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", name, err)
	}
	c := Default()
	var warnings []string
	seen := make(map[string]int, len(entries))
	for _, e := range entries {
		if prev, ok := seen[e.key]; ok {
			warnings = append(warnings, fmt.Sprintf("%s:%d: key %s also set on line %d; the last one wins", name, e.line, e.key, prev))
		}
		seen[e.key] = e.line
		where := fmt.Sprintf("%s:%d", name, e.line)
		if taken, err := c.setListenerKey(e.key, e.value); err != nil {
			return nil, warnings, fmt.Errorf("config %s: %w", where, err)
		} else if taken {
			continue
		}
		sp := lookup(e.key)
		if sp == nil {
			if reason, ok := ignoredKeys[e.key]; ok {
				c.ignored = append(c.ignored, fmt.Sprintf("%s=%s (%s): %s", e.key, e.value, where, reason))
				continue
			}
			w := fmt.Sprintf("%s: unknown key %s ignored", where, e.key)
			if near := nearestKey(e.key); near != "" {
				w += fmt.Sprintf(" (did you mean %s?)", near)
			}
			warnings = append(warnings, w)
			continue
		}
		warning, err := c.set(sp, e.value, where, false)
		if err != nil {
			return nil, warnings, fmt.Errorf("config %s: %w", where, err)
		}
		if warning != "" {
			warnings = append(warnings, warning)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, warnings, fmt.Errorf("config %s: %w", name, err)
	}
	return c, warnings, nil
}

// Set applies one key=value as an override (--set key=value, tests). An
// override beats any file setting, including a higher-precedence alias in the
// file. Unknown keys are errors here (a typo on the command line should stop
// the broker); accepted-but-ignored Kafka keys are recorded. Set checks the
// value alone; call Validate after the last Set for cross-key checks.
func (c *Config) Set(key, value string) error {
	if taken, err := c.setListenerKey(key, value); taken || err != nil {
		return err
	}
	sp := lookup(key)
	if sp == nil {
		if reason, ok := ignoredKeys[key]; ok {
			c.ignored = append(c.ignored, fmt.Sprintf("%s=%s (override): %s", key, value, reason))
			return nil
		}
		msg := "unknown key " + key
		if near := nearestKey(key); near != "" {
			msg += " (did you mean " + near + "?)"
		}
		return errors.New(msg)
	}
	_, err := c.set(sp, value, "override", true)
	return err
}

// set applies value for sp unless a higher-precedence alias already holds the
// setting. When one of two aliases loses (in either order) it returns a warning
// saying which. The value is parsed either way, so a bad value is an error even
// when shadowed.
func (c *Config) set(sp *spec, value, where string, override bool) (warning string, err error) {
	canon := sp.canonical()
	cur := c.src[canon]
	loses := !cur.isDefault() && (cur.override && !override || cur.override == override && cur.rank > sp.rank)
	if loses {
		if err := sp.set(Default(), value); err != nil {
			return "", fmt.Errorf("%s=%q: %w", sp.name, value, err)
		}
		c.shadowed = append(c.shadowed, fmt.Sprintf("%s=%s (%s) shadowed by %s (%s)", sp.name, value, where, cur.key, cur.where))
		return fmt.Sprintf("%s: %s has no effect: %s (%s) takes precedence", where, sp.name, cur.key, cur.where), nil
	}
	if !cur.isDefault() && cur.override == override && cur.rank < sp.rank {
		c.shadowed = append(c.shadowed, fmt.Sprintf("%s=%s (%s) shadowed by %s (%s)", cur.key, cur.value, cur.where, sp.name, where))
		warning = fmt.Sprintf("%s: %s has no effect: %s (%s) takes precedence", cur.where, cur.key, sp.name, where)
	}
	if canon == "node.id" && !cur.isDefault() && cur.key != sp.name && !override && !cur.override {
		// Kafka requires broker.id and node.id to agree when both are set.
		prev := c.NodeID
		if err := sp.set(c, value); err != nil {
			return "", fmt.Errorf("%s=%q: %w", sp.name, value, err)
		}
		if c.NodeID != prev {
			return "", fmt.Errorf("%s=%d conflicts with %s=%d (%s): they must be equal", sp.name, c.NodeID, cur.key, prev, cur.where)
		}
	} else if err := sp.set(c, value); err != nil {
		return "", fmt.Errorf("%s=%q: %w", sp.name, value, err)
	}
	c.src[canon] = source{where: where, key: sp.name, rank: sp.rank, override: override, value: value}
	c.derive()
	return warning, nil
}

// derive recomputes the values that follow from others: the served listeners
// (listeners minus controller listeners) and, unless set explicitly,
// advertised.listeners.
func (c *Config) derive() {
	c.Listeners = c.Listeners[:0:0]
	for _, l := range c.listenersRaw {
		if !slices.Contains(c.ControllerListenerNames, l.Name) {
			c.Listeners = append(c.Listeners, l)
		}
	}
	if len(c.advertisedRaw) > 0 {
		c.AdvertisedListeners = slices.Clone(c.advertisedRaw)
	} else {
		c.AdvertisedListeners = make([]Listener, len(c.Listeners))
		for i, l := range c.Listeners {
			if isWildcardHost(l.Host) {
				// Kafka advertises the canonical host name for a wildcard
				// listener; a client cannot connect to 0.0.0.0.
				if h, err := hostname(); err == nil && h != "" {
					l.Host = h
				}
			}
			c.AdvertisedListeners[i] = l
		}
	}
}

func isWildcardHost(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }

// Validate checks rules that involve several keys. Parse and Load call it; call
// it yourself after a series of Set calls.
func (c *Config) Validate() error {
	c.derive()
	if len(c.Listeners) == 0 {
		return errors.New("listeners: no listener left to serve (controller.listener.names removes every one)")
	}
	names := map[string]bool{}
	for _, l := range c.listenersRaw {
		if names[l.Name] {
			return fmt.Errorf("listeners: listener name %s appears twice", l.Name)
		}
		names[l.Name] = true
		if slices.Contains(c.ControllerListenerNames, l.Name) {
			continue
		}
		if _, ok := c.ListenerSecurityProtocolMap[l.Name]; !ok {
			return fmt.Errorf("listeners: listener %s has no entry in listener.security.protocol.map", l.Name)
		}
	}
	if err := c.validateSecurity(); err != nil {
		return err
	}
	for _, l := range c.AdvertisedListeners {
		if !names[l.Name] {
			return fmt.Errorf("advertised.listeners: listener %s is not in listeners", l.Name)
		}
		if l.Host == "0.0.0.0" || l.Host == "::" {
			return fmt.Errorf("advertised.listeners: %s uses the non-routable address %s; name a host clients can reach", l.Name, l.Host)
		}
	}
	if c.LogSegmentBytes < c.LogSegmentBytesMin {
		return fmt.Errorf("log.segment.bytes=%d is below log.segment.bytes.min=%d (Kafka 4's minimum is 1048576: tiny segments exhaust descriptors)", c.LogSegmentBytes, c.LogSegmentBytesMin)
	}
	if c.OffsetsTopicSegmentBytes < c.LogSegmentBytesMin {
		return fmt.Errorf("offsets.topic.segment.bytes=%d is below log.segment.bytes.min=%d: __consumer_offsets could not be created", c.OffsetsTopicSegmentBytes, c.LogSegmentBytesMin)
	}
	if c.TransactionStateLogSegmentBytes < c.LogSegmentBytesMin {
		return fmt.Errorf("transaction.state.log.segment.bytes=%d is below log.segment.bytes.min=%d: __transaction_state could not be created", c.TransactionStateLogSegmentBytes, c.LogSegmentBytesMin)
	}
	// Kafka's checks (KafkaConfig, LogManager's validateBrokerLogConfigValues).
	if c.LogCleanerThreads > 0 && c.LogCleanerDedupeBufferSize/int64(c.LogCleanerThreads) <= 1<<20 {
		return fmt.Errorf("log.cleaner.dedupe.buffer.size=%d must be more than 1 MiB (1048576) per cleaner thread (log.cleaner.threads=%d)", c.LogCleanerDedupeBufferSize, c.LogCleanerThreads)
	}
	if c.LogCleanerMinCompactionLagMs > c.LogCleanerMaxCompactionLagMs {
		return fmt.Errorf("log.cleaner.min.compaction.lag.ms=%d is above log.cleaner.max.compaction.lag.ms=%d", c.LogCleanerMinCompactionLagMs, c.LogCleanerMaxCompactionLagMs)
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	if c.GroupMinSessionTimeoutMs > c.GroupMaxSessionTimeoutMs {
		return fmt.Errorf("group.min.session.timeout.ms=%d is above group.max.session.timeout.ms=%d", c.GroupMinSessionTimeoutMs, c.GroupMaxSessionTimeoutMs)
	}
	return nil
}

// Rings returns the number of event loops to run: ring.count, or the CPU count
// when ring.count is 0.
func (c *Config) Rings() int {
	if c.RingCount > 0 {
		return c.RingCount
	}
	return runtime.NumCPU()
}

// Source returns where key's effective value came from: "default", "override",
// or "file:line" (with " as <alias>" when an alias key set it). Unknown keys
// return "".
func (c *Config) Source(key string) string {
	sp := lookup(key)
	if sp == nil {
		return ""
	}
	s := c.src[sp.canonical()]
	if s.key != "" && s.key != sp.canonical() {
		return s.where + " as " + s.key
	}
	return s.where
}

// Print writes the effective configuration in server.properties syntax (so the
// output loads back as a config file), each key preceded by a comment naming
// its source: default, override, or file:line. Shadowed aliases and ignored
// Kafka keys follow as comments.
func (c *Config) Print(w io.Writer) {
	bw := bufio.NewWriter(w)
	bw.WriteString("# ringbroker effective configuration; the comment above each key names its source\n")
	for i := range specs {
		sp := &specs[i]
		if sp.canon != "" || !sp.broker() {
			continue
		}
		src := c.Source(sp.name)
		if sp.name == "advertised.listeners" && len(c.advertisedRaw) == 0 {
			src += " (derived from listeners, wildcard host replaced by the host name)"
		}
		if sp.name == "ring.count" && c.RingCount == 0 {
			src += fmt.Sprintf(" (0 = %d CPUs)", runtime.NumCPU())
		}
		bw.WriteString("# " + src + "\n")
		if v := sp.get(c); sp.sensitive && v != "" {
			bw.WriteString("# " + sp.name + "=[hidden]\n")
		} else {
			writeProperty(bw, sp.name, v)
		}
	}
	for _, s := range c.printListenerKeys() {
		bw.WriteString(s + "\n")
	}
	for _, s := range c.shadowed {
		bw.WriteString("# shadowed: " + s + "\n")
	}
	for _, s := range c.ignored {
		bw.WriteString("# ignored: " + s + "\n")
	}
	bw.Flush()
}

// nearestKey returns a known key within edit distance 2 of k, or "".
func nearestKey(k string) string {
	best, bestD := "", 3
	for i := range specs {
		if !specs[i].broker() {
			continue
		}
		if d := editDistance(k, specs[i].name, bestD); d < bestD {
			best, bestD = specs[i].name, d
		}
	}
	return best
}

// editDistance is Levenshtein distance, giving up (returning limit) once every
// path exceeds limit so the scan over all keys stays cheap.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
