package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
)

// spec describes one key: where it applies (server.properties, topics or
// both), its Kafka type, its default, its documentation and how to parse it.
// The specs table is the single source of truth for Default, Parse, Print,
// Markdown, topic settings (TopicSettings, hence storage.Config) and
// DescribeConfigs (DescribeBroker, DescribeTopic).
type spec struct {
	name  string
	scope Scope
	typ   Type
	def   string // default in properties syntax (for an alias: Kafka's default)
	doc   string
	ours  bool   // a ringbroker key, not a Kafka one
	canon string // for an alias key: the canonical key whose setting it writes
	rank  int    // precedence among a canonical key and its aliases; higher wins
	// scaled marks an alias in another unit (log.retention.hours): Kafka
	// groups it with its canonical key as DescribeConfigs synonyms.
	scaled bool
	// noKafkaDefault marks a canonical key whose Kafka default is null
	// (log.retention.ms, log.roll.ms: Kafka's default comes from the
	// .hours alias; log.flush.interval.ms: from
	// log.flush.scheduler.interval.ms), so DescribeConfigs reports no
	// DEFAULT_CONFIG synonym for it.
	noKafkaDefault bool
	// sensitive marks a secret (ssl.key.password): Print writes it as a
	// comment without its value, DescribeConfigs answers no value.
	sensitive bool
	set       func(c *Config, v string) error // broker scope
	get       func(c *Config) string          // broker scope, canonical keys only

	// Topic scope. synonyms are the server.properties keys that default
	// the topic key, in Kafka's order of precedence (LogConfig's
	// TopicConfigSynonyms); a synonym without a spec is a Kafka key we do
	// not take, reported with def. check validates a client's value (the
	// topic's own override); store applies an already valid value.
	synonyms []string
	check    func(v string) error
	store    func(t *TopicSettings, v string)
}

// Scope says where a key is set.
type Scope uint8

const (
	// ScopeBroker keys are set in server.properties (or --set).
	ScopeBroker Scope = 1 << iota
	// ScopeTopic keys are set per topic (CreateTopics, AlterConfigs).
	ScopeTopic
	// ScopeBoth keys have one name at both levels (compression.type).
	ScopeBoth = ScopeBroker | ScopeTopic
)

// Type is a key's Kafka ConfigDef type, numbered as DescribeConfigs'
// config_type (kmsg.ConfigType).
type Type int8

// The Kafka config types.
const (
	TypeBoolean  Type = 1
	TypeString   Type = 2
	TypeInt      Type = 3
	TypeShort    Type = 4
	TypeLong     Type = 5
	TypeDouble   Type = 6
	TypeList     Type = 7
	TypeClass    Type = 8
	TypePassword Type = 9
)

func (t Type) String() string {
	switch t {
	case TypeBoolean:
		return "boolean"
	case TypeString:
		return "string"
	case TypeInt:
		return "int"
	case TypeShort:
		return "short"
	case TypeLong:
		return "long"
	case TypeDouble:
		return "double"
	case TypeList:
		return "list"
	case TypeClass:
		return "class"
	case TypePassword:
		return "password"
	}
	return "unknown"
}

func (sp *spec) canonical() string {
	if sp.canon != "" {
		return sp.canon
	}
	return sp.name
}

func (sp *spec) broker() bool { return sp.scope&ScopeBroker != 0 }
func (sp *spec) topic() bool  { return sp.scope&ScopeTopic != 0 }

// kafkaDefault is the key's built-in default as DescribeConfigs reports it
// (a DEFAULT_CONFIG synonym); ok is false for a null default (an empty one:
// advertised.listeners, controller.listener.names, log.retention.minutes).
func (sp *spec) kafkaDefault() (string, bool) {
	if sp.noKafkaDefault || sp.def == "" {
		return "", false
	}
	return sp.def, true
}

var brokerIndex, topicIndex map[string]*spec

func init() {
	brokerIndex = make(map[string]*spec, len(specs))
	topicIndex = make(map[string]*spec, len(topicSpecs))
	for i := range specs {
		sp := &specs[i]
		if sp.scope == 0 {
			sp.scope = ScopeBroker
		}
		if sp.typ == 0 {
			sp.typ = TypeString
		}
		if sp.broker() {
			brokerIndex[sp.name] = sp
		}
		if sp.topic() {
			topicIndex[sp.name] = sp
		}
	}
}

// lookup returns the server.properties key named key, or nil.
func lookup(key string) *spec { return brokerIndex[key] }

// lookupTopic returns the topic key named key, or nil.
func lookupTopic(key string) *spec { return topicIndex[key] }

// kafkaIntMax is the top of Kafka's INT type (Java int).
const kafkaIntMax = math.MaxInt32

// specs is the key table: the server.properties keys, then the topic keys
// (topic_keys.go). compression.type is one entry for both levels.
var specs = append(append(append(append(slices.Clip(brokerSpecs), clusterSpecs...), securitySpecs...), quotaSpecs...), topicSpecs...)

var brokerSpecs = []spec{
	// ---- network
	{name: "listeners", def: "PLAINTEXT://127.0.0.1:9092",
		doc: "Comma-separated `NAME://host:port` to listen on (empty host = all interfaces, `[::1]` for IPv6, port 0 = any free port). Each loop binds every listener with SO_REUSEPORT; a port another process holds (another broker included) is refused at start.",
		set: func(c *Config, v string) error {
			ls, err := parseListeners(v)
			if err != nil {
				return err
			}
			if len(ls) == 0 {
				return errors.New("at least one listener is required")
			}
			c.listenersRaw = ls
			return nil
		},
		get: func(c *Config) string { return formatListeners(c.listenersRaw) }},
	{name: "advertised.listeners", def: "",
		doc: "Listeners returned to clients in Metadata. Default: `listeners`, with a wildcard host replaced by the machine's host name. 0.0.0.0 is refused.",
		set: func(c *Config, v string) error {
			ls, err := parseListeners(v)
			c.advertisedRaw = ls
			return err
		},
		get: func(c *Config) string { return formatListeners(c.AdvertisedListeners) }},
	{name: "listener.security.protocol.map", def: "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
		doc: "Listener name to security protocol, as in Kafka. All four are served: PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL (SASL and TLS settings per listener with the `listener.name.<name>.` prefix; see `ssl.*`).",
		set: func(c *Config, v string) error {
			m := map[string]string{}
			for _, item := range splitList(v) {
				name, proto, ok := strings.Cut(item, ":")
				name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
				if !ok || name == "" {
					return fmt.Errorf("entry %q is not NAME:PROTOCOL", item)
				}
				switch proto {
				case "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
				default:
					return fmt.Errorf("entry %q: unknown security protocol %s", item, proto)
				}
				m[name] = proto
			}
			c.ListenerSecurityProtocolMap = m
			return nil
		},
		get: func(c *Config) string {
			var parts []string
			for _, k := range sortedKeys(c.ListenerSecurityProtocolMap) {
				parts = append(parts, k+":"+c.ListenerSecurityProtocolMap[k])
			}
			return strings.Join(parts, ",")
		}},
	{name: "controller.listener.names", def: "",
		doc: "Listener names of the controller listener (KRaft): not served to clients; a node with the controller role serves the metadata quorum on the first of them. Without process.roles they are accepted (so a stock KRaft file loads) and not served.",
		set: func(c *Config, v string) error {
			c.ControllerListenerNames = nil
			for _, n := range splitList(v) {
				c.ControllerListenerNames = append(c.ControllerListenerNames, strings.ToUpper(n))
			}
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.ControllerListenerNames, ",") }},
	{name: "inter.broker.listener.name", def: "",
		doc: "The listener other brokers' replica fetchers and inter-broker clients (transaction markers) connect to; it must be in `advertised.listeners`. Its security protocol is theirs: PLAINTEXT; SSL with this listener's `ssl.*` keys on the client side too (the key store is the client certificate, the trust store checks the other broker's, `ssl.endpoint.identification.algorithm` its host name); SASL_PLAINTEXT or SASL_SSL with `sasl.mechanism.inter.broker.protocol` and the listener's JAAS `username` and `password`. Unset, with `security.inter.broker.protocol` unset too: the first advertised listener (Kafka would use the listener named PLAINTEXT). Only one of the two keys may be set.",
		set: func(c *Config, v string) error {
			c.InterBrokerListenerName = strings.ToUpper(strings.TrimSpace(v))
			return nil
		},
		get: func(c *Config) string { return c.InterBrokerListenerName }},
	{name: "security.inter.broker.protocol", def: "",
		doc: "Kafka's other way to pick the inter-broker listener: the listener whose name is this protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL). Only one of it and `inter.broker.listener.name` may be set. Unset (Kafka's default is PLAINTEXT): see `inter.broker.listener.name`.",
		set: func(c *Config, v string) error {
			v = strings.ToUpper(strings.TrimSpace(v))
			switch v {
			case "", ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL:
			default:
				return fmt.Errorf("%q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", v)
			}
			c.SecurityInterBrokerProtocol = v
			return nil
		},
		get: func(c *Config) string { return c.SecurityInterBrokerProtocol }},
	intSpec("node.id", "0", 0, kafkaIntMax, "This broker's id in Metadata responses.", func(c *Config) *int32 { return &c.NodeID }),
	intAlias("broker.id", "-1", "node.id", 0, 0, kafkaIntMax, "Older name of `node.id`; if both are set they must be equal.", func(c *Config) *int32 { return &c.NodeID }),
	intSpec("socket.request.max.bytes", "104857600", 1, kafkaIntMax, "Largest request frame accepted; a bigger frame closes the connection with a log line.", func(c *Config) *int32 { return &c.SocketRequestMaxBytes }),
	{name: "queued.max.request.bytes", def: "-1", typ: TypeLong,
		doc: "Bound on the bytes buffered per process before loops mute connections: requests in flight and being read, answers queued. Bytes copied into fetch responses (fetch.zero.copy=false) have a budget of the same size. Kafka's -1 (unbounded) and 0 mean 268435456 (256 MiB) here: we put a limit on everything.",
		set: func(c *Config, v string) error {
			n, err := parseInt(v, -1, math.MaxInt64)
			if err != nil {
				return err
			}
			if n <= 0 {
				n = QueuedMaxRequestBytesUnbounded
			}
			c.QueuedMaxRequestBytes = n
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(c.QueuedMaxRequestBytes, 10) }},
	intSpec("connections.max.idle.ms", "600000", math.MinInt64, math.MaxInt64, "Close a connection idle this long; 0 or less disables idle close.", func(c *Config) *int64 { return &c.ConnectionsMaxIdleMs }),
	intSpec("max.connections", "2147483647", 0, kafkaIntMax, "Connections accepted in total; above it new connections are closed at accept.", func(c *Config) *int { return &c.MaxConnections }),
	intSpec("max.connections.per.ip", "2147483647", 0, kafkaIntMax, "Connections accepted per client IP.", func(c *Config) *int { return &c.MaxConnectionsPerIP }),

	// ---- io_uring loops (ours)
	oursInt("ring.count", "0", 0, 1024, "Event loops (one io_uring each, pinned to a CPU). 0 = number of CPUs.", func(c *Config) *int { return &c.RingCount }),
	powerOfTwo("ring.entries", "512", 1, 32768, "Submission queue entries per ring (power of two); the CQ is sized larger by the ring package.", func(c *Config) *int { return &c.RingEntries }),
	enumSpec("ring.cpu.affinity", "auto", true, []string{"auto", "true", "false"}, "Pin each event loop's thread to one CPU. `auto` pins only when there are fewer rings than CPUs: a loop pinned to a CPU that everything else also needs waits whenever that CPU is busy, even with another CPU idle (measured on a 2-CPU host: end-to-end p99.9 17.5 ms pinned vs 5.0 ms unpinned).", func(c *Config) *string { return &c.RingCPUAffinity }),
	oursBool("ring.sqpoll", "false", "Use a kernel SQ polling thread per ring (IORING_SETUP_SQPOLL): fewer syscalls, one busy kernel thread per ring. Turns DEFER_TASKRUN (ring.defer.taskrun) and COOP_TASKRUN off, which the kernel refuses beside SQPOLL.", func(c *Config) *bool { return &c.RingSQPoll }),
	oursInt("ring.idle.spin.us", "0", 0, 10000, "Microseconds a loop that just handled work keeps polling its completion queue and mailbox (no system call) before it sleeps in io_uring_enter. A completion or an answer from another thread that arrives meanwhile is taken without waking a sleeping thread, which on a virtual machine means restarting a halted vCPU. Costs up to this much CPU per wake-up of each loop; 0 = sleep at once (docs/BENCHMARKS.md, idle spin).", func(c *Config) *int { return &c.RingIdleSpinUs }),
	oursInt("ring.wait.batch", "1", 1, 64, "Completions a loop that goes to sleep waits for before it wakes, for no longer than ring.wait.batch.us once the first is there (IORING_FEAT_MIN_TIMEOUT, Linux 6.12): fewer wake-ups under load, up to ring.wait.batch.us more latency for a lone completion. 1 = wake for each completion. On a kernel without batched waits the loops log one warning and wake for each (docs/BENCHMARKS.md, batched waits).", func(c *Config) *int { return &c.RingWaitBatch }),
	oursInt("ring.wait.batch.us", "50", 1, 10000, "With ring.wait.batch above 1: the longest a sleeping loop holds a completion while it waits for more.", func(c *Config) *int { return &c.RingWaitBatchUs }),
	oursInt("ring.thread.nice", "0", -20, 19, "Nice value of each event loop's thread (setpriority on the thread). A loop answers every connection it owns, so a wake-up that waits for a CPU delays all of them; a lower value lets the scheduler run it ahead of the log writers and the other threads it competes with. Below the process's own value it needs CAP_SYS_NICE or RLIMIT_NICE (systemd: LimitNICE=); without them one warning is logged and the loops keep the process's priority. 0 = leave them as the process (docs/BENCHMARKS.md, loop thread priority).", func(c *Config) *int { return &c.RingThreadNice }),
	oursBool("ring.defer.taskrun", "true", "Set the rings up with IORING_SETUP_DEFER_TASKRUN: a completion's kernel task work runs only when the loop asks for events, in batches, instead of interrupting the loop thread at any kernel entry (COOP_TASKRUN stays on either way). `false` exists to measure the flag (docs/BENCHMARKS.md, ring setup flags).", func(c *Config) *bool { return &c.RingDeferTaskrun }),
	oursInt("ring.recv.buffer.bytes", "65536", 1024, 16<<20, "Size of each provided receive buffer.", func(c *Config) *int { return &c.RingRecvBufferBytes }),
	powerOfTwo("ring.recv.buffers", "256", 1, 32768, "Provided receive buffers per loop (power of two). Off-heap memory per loop = ring.recv.buffers × ring.recv.buffer.bytes.", func(c *Config) *int { return &c.RingRecvBuffers }),
	oursBool("ring.recv.bundle", "false", "Arm the loops' multishot receives as bundles (IORING_RECVSEND_BUNDLE, Linux 6.10): one completion may cover several provided receive buffers when more than one buffer's worth of bytes is waiting, instead of one completion per buffer. On a kernel without bundles the loops log one warning and receive one buffer per completion. Off by default (docs/BENCHMARKS.md, bundled receives).", func(c *Config) *bool { return &c.RingRecvBundle }),
	oursInt("ring.conn.max.inflight.requests", "1024", 1, kafkaIntMax, "Requests a connection may have in flight before its loop mutes it (stops re-arming receive).", func(c *Config) *int { return &c.ConnMaxInflightRequests }),
	oursInt("ring.conn.max.inflight.bytes", "16777216", 1, math.MaxInt64, "Request bytes a connection may have in flight before it is muted.", func(c *Config) *int64 { return &c.ConnMaxInflightBytes }),
	enumSpec("io.backend", "auto", true, []string{"auto", "uring", "portable"}, "`auto` uses io_uring when usable, else the portable (Go net) backend with one log line saying why; `uring` fails if io_uring is unusable; `portable` never uses io_uring.", func(c *Config) *string { return &c.IOBackend }),

	// ---- storage and topic defaults
	{name: "log.dirs", def: "./data", rank: 2, typ: TypeList,
		doc: "Comma-separated data directories. Takes precedence over `log.dir`.",
		set: func(c *Config, v string) error { return setDirs(c, v) },
		get: func(c *Config) string { return strings.Join(c.LogDirs, ",") }},
	{name: "log.dir", def: "./data", canon: "log.dirs", rank: 1, typ: TypeList,
		doc: "Single data directory, used when `log.dirs` is not set.",
		set: func(c *Config, v string) error { return setDirs(c, v) }},
	intSpec("log.segment.bytes", "1073741824", 14, kafkaIntMax, "Roll a new segment when the active one reaches this size. At least `log.segment.bytes.min` (Kafka 4's minimum, 1048576).", func(c *Config) *int32 { return &c.LogSegmentBytes }),
	oursInt("log.segment.bytes.min", "1048576", 14, kafkaIntMax, "Smallest `log.segment.bytes`, and smallest topic `segment.bytes` CreateTopics and AlterConfigs accept (INVALID_CONFIG below it); Kafka 4's minimum by default. A tiny segment size makes a segment per batch until the process runs out of descriptors: lower this only for tests that need many segments from little data.", func(c *Config) *int32 { return &c.LogSegmentBytesMin }),
	noKafkaDefault(withRank(intSpec("log.roll.ms", "604800000", 1, math.MaxInt64, "Roll a new segment after this long even if not full. Takes precedence over `log.roll.hours`.", func(c *Config) *int64 { return &c.LogRollMs }), 2)),
	scaledAlias("log.roll.hours", "168", "log.roll.ms", 1, 1, 3600000, "`log.roll.ms` in hours."),
	noKafkaDefault(withRank(intSpec("log.retention.ms", "604800000", math.MinInt64, math.MaxInt64, "Delete segments older than this; -1 = no time limit. Precedence (Kafka's): `log.retention.ms` > `log.retention.minutes` > `log.retention.hours`.", func(c *Config) *int64 { return &c.LogRetentionMs }), 3)),
	scaledAlias("log.retention.minutes", "", "log.retention.ms", 2, math.MinInt32, 60000, "`log.retention.ms` in minutes."),
	scaledAlias("log.retention.hours", "168", "log.retention.ms", 1, math.MinInt32, 3600000, "`log.retention.ms` in hours."),
	// ---- log cleaner (compaction of topics with cleanup.policy=compact)
	oursBool("log.dir.offline.on.full.disk", "true", "Whether ENOSPC (a full disk or quota) on a log dir takes it offline, as any I/O error does in Kafka: its partitions answer KAFKA_STORAGE_ERROR until the broker restarts, and a broker with no log dir left online (or any failed dir in cluster mode) stops, so that in a cluster the leaderships move to in-sync replicas. `false` keeps the dir online on ENOSPC only: each failed write is cut off the log and answered KAFKA_STORAGE_ERROR, and writes resume by themselves once space returns (a single node that should ride out a full disk); EIO and other I/O errors still take the dir offline.", func(c *Config) *bool { return &c.LogDirOfflineOnFullDisk }),
	boolSpec("log.cleaner.enable", "true", "Run the log cleaner, which compacts topics whose `cleanup.policy` includes `compact` (__consumer_offsets among them). With `false` (or `log.cleaner.threads=0`) those topics are never compacted and keep growing.", func(c *Config) *bool { return &c.LogCleanerEnable }),
	intSpec("log.cleaner.threads", "1", 0, kafkaIntMax, "Cleaner threads (goroutines, never an event loop), each cleaning the dirtiest log it can take.", func(c *Config) *int { return &c.LogCleanerThreads }),
	intSpec("log.cleaner.dedupe.buffer.size", "134217728", math.MinInt64, math.MaxInt64, "Memory of the cleaners' key maps, shared by the threads: more than 1 MiB per thread (Kafka's rule, checked at start). A log with more distinct keys in its dirty part than one map holds is cleaned in several rounds.", func(c *Config) *int64 { return &c.LogCleanerDedupeBufferSize }),
	intSpec("log.cleaner.io.buffer.size", "524288", 1, kafkaIntMax, "Read and write buffer bytes of the cleaner threads; a buffer grows for a larger batch. Kafka takes 0 as well; ringbroker wants at least 1.", func(c *Config) *int { return &c.LogCleanerIOBufferSize }),
	doubleSpec("log.cleaner.io.buffer.load.factor", "0.9", 0, 1, true, "How full a key map may get (a fraction, above 0 and at most 1): higher cleans more per round with more hash collisions. Kafka does not check the range.", func(c *Config) *float64 { return &c.LogCleanerIOBufferLoadFactor }),
	doubleSpec("log.cleaner.io.max.bytes.per.second", "1.7976931348623157E308", 0, math.MaxFloat64, true, "Throttle of the cleaners' reads plus writes, in bytes per second over all threads; the default is unlimited. Must be above 0 (Kafka does not check it).", func(c *Config) *float64 { return &c.LogCleanerIOMaxBytesPerSecond }),
	intSpec("log.cleaner.backoff.ms", "15000", 0, math.MaxInt64, "How long a cleaner thread sleeps when no log needs cleaning.", func(c *Config) *int64 { return &c.LogCleanerBackoffMs }),
	intSpec("log.cleaner.delete.retention.ms", "86400000", 0, math.MaxInt64, "Default of topics' `delete.retention.ms`: how long the cleaner keeps a tombstone (a record with a key and no value) after it first cleaned past it.", func(c *Config) *int64 { return &c.LogCleanerDeleteRetentionMs }),
	intSpec("log.cleaner.max.compaction.lag.ms", "9223372036854775807", 1, math.MaxInt64, "Default of topics' `max.compaction.lag.ms`: a record dirty for longer than this is cleaned whatever the log's dirty ratio (the active segment is never cleaned).", func(c *Config) *int64 { return &c.LogCleanerMaxCompactionLagMs }),
	doubleSpec("log.cleaner.min.cleanable.ratio", "0.5", 0, 1, false, "Default of topics' `min.cleanable.dirty.ratio`: a log is cleaned when its dirty bytes are at least this fraction of its cleanable bytes (0 to 1).", func(c *Config) *float64 { return &c.LogCleanerMinCleanableRatio }),
	intSpec("log.cleaner.min.compaction.lag.ms", "0", 0, math.MaxInt64, "Default of topics' `min.compaction.lag.ms`: records younger than this are not cleaned. At most `log.cleaner.max.compaction.lag.ms` (Kafka's rule, checked at start).", func(c *Config) *int64 { return &c.LogCleanerMinCompactionLagMs }),
	intSpec("producer.id.expiration.ms", "86400000", 1, kafkaIntMax, "A producer id with no batch in a partition for this long (by the max timestamp of its last batch) counts as expired there: the log cleaner no longer keeps that last batch (which it otherwise keeps, empty if need be, so the producer's epoch and sequence survive a restart). ringbroker's producer state itself does not expire producers (Kafka drops them from it after this long).", func(c *Config) *int32 { return &c.ProducerIDExpirationMs }),
	// Defaults of topic keys ringbroker stores without acting on them.
	storedInt("log.local.retention.bytes", "-2", -2, math.MaxInt64, "local.retention.bytes", "no tiered storage"),
	storedInt("log.local.retention.ms", "-2", -2, math.MaxInt64, "local.retention.ms", "no tiered storage"),
	storedBool("log.preallocate", "false", "preallocate", "segments grow as written"),
	noKafkaDefault(storedInt("log.roll.jitter.ms", "0", 0, math.MaxInt64, "segment.jitter.ms", "segments roll at segment.ms exactly")),
	intSpec("log.retention.bytes", "-1", math.MinInt64, math.MaxInt64, "Delete oldest segments while a partition is larger than this; -1 = no size limit.", func(c *Config) *int64 { return &c.LogRetentionBytes }),
	intSpec("log.retention.check.interval.ms", "300000", 1, math.MaxInt64, "How often retention runs.", func(c *Config) *int64 { return &c.LogRetentionCheckIntervalMs }),
	withType(intSpec("log.flush.offset.checkpoint.interval.ms", "60000", 1, kafkaIntMax, "How often each log dir's recovery-point and log-start-offset checkpoint files are rewritten. A recovery point older than the last checkpoint only makes a restart after a crash scan more.", func(c *Config) *int64 { return &c.LogFlushOffsetCheckpointIntervalMs }), TypeInt),
	{name: "log.cleanup.policy", def: "delete", typ: TypeList,
		doc: "`delete`, `compact`, or both (comma-separated): the default cleanup policy for topics.",
		set: func(c *Config, v string) error {
			list := splitList(v)
			if len(list) == 0 {
				return errors.New("at least one of delete, compact is required")
			}
			for _, p := range list {
				if p != "delete" && p != "compact" {
					return fmt.Errorf("%q is not delete or compact", p)
				}
			}
			c.LogCleanupPolicy = list
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.LogCleanupPolicy, ",") }},
	intSpec("log.flush.interval.messages", "9223372036854775807", 1, math.MaxInt64, "fdatasync a partition after this many messages; 1 = every append batch is synced before its produce response. Default: leave flushing to the OS, as Kafka does.", func(c *Config) *int64 { return &c.LogFlushIntervalMessages }),
	noKafkaDefault(intSpec("log.flush.interval.ms", "9223372036854775807", 0, math.MaxInt64, "fdatasync a partition when its oldest unsynced data is this old. Kafka's default (unset) falls back to log.flush.scheduler.interval.ms = Long.MAX_VALUE, i.e. never.", func(c *Config) *int64 { return &c.LogFlushIntervalMs })),
	intSpec("log.index.interval.bytes", "4096", 0, kafkaIntMax, "Bytes of log between offset-index entries.", func(c *Config) *int32 { return &c.LogIndexIntervalBytes }),
	intSpec("log.index.size.max.bytes", "10485760", 4, kafkaIntMax, "Maximum size of an offset or time index file; a full index rolls the segment.", func(c *Config) *int32 { return &c.LogIndexSizeMaxBytes }),
	intSpec("message.max.bytes", "1048588", 0, kafkaIntMax, "Largest record batch accepted by Produce (MESSAGE_TOO_LARGE above it); the default for topics' max.message.bytes.", func(c *Config) *int32 { return &c.MessageMaxBytes }),
	intSpec("num.partitions", "1", 1, kafkaIntMax, "Partitions of an auto-created topic (and CreateTopics with -1).", func(c *Config) *int32 { return &c.NumPartitions }),
	boolSpec("auto.create.topics.enable", "true", "Create a topic on Metadata/Produce for an unknown name, as Kafka does (kafka-python relies on it).", func(c *Config) *bool { return &c.AutoCreateTopicsEnable }),
	boolSpec("delete.topic.enable", "true", "Allow DeleteTopics.", func(c *Config) *bool { return &c.DeleteTopicEnable }),
	intSpec("default.replication.factor", "1", 1, 32767, "Replication factor of topics created without one (CreateTopics with -1, auto-creation). A single node (no process.roles) holds one replica of everything, so only 1 is valid there, an error at startup rather than a failure at topic creation; in a cluster it may not exceed the brokers registered when a topic is created (INVALID_REPLICATION_FACTOR).", func(c *Config) *int16 { return &c.DefaultReplicationFactor }),
	enumSpec("log.message.timestamp.type", "CreateTime", false, []string{"CreateTime", "LogAppendTime"}, "Default timestamp type of topics: the producer's time or the broker's append time.", func(c *Config) *string { return &c.LogMessageTimestampType }),
	intSpec("log.message.timestamp.before.max.ms", "9223372036854775807", 0, math.MaxInt64, "Default of topics' `message.timestamp.before.max.ms`: a CreateTime record more than this many ms older than the broker's clock is refused with INVALID_TIMESTAMP.", func(c *Config) *int64 { return &c.LogMessageTimestampBeforeMaxMs }),
	intSpec("log.message.timestamp.after.max.ms", "3600000", 0, math.MaxInt64, "Default of topics' `message.timestamp.after.max.ms`: a CreateTime record more than this many ms ahead of the broker's clock is refused with INVALID_TIMESTAMP (Kafka 4's default, 1 hour).", func(c *Config) *int64 { return &c.LogMessageTimestampAfterMaxMs }),
	bothScopes(enumSpec("compression.type", "producer", false, compressionTypes, "Compression of a topic's stored batches: a topic's own setting, and in server.properties the default of topics; `producer` keeps the producer's batches byte for byte, another codec recompresses batches that differ.", func(c *Config) *string { return &c.CompressionType }),
		func(t *TopicSettings, v string) { t.CompressionType = v }),

	// ---- appender and fetch (ours)
	oursInt("append.batch.max.bytes", "1048576", 1, kafkaIntMax, "Largest group of produce batches the appender coalesces into one write.", func(c *Config) *int { return &c.AppendBatchMaxBytes }),
	oursInt("append.pending.max.bytes", "67108864", 1, math.MaxInt64, "Bytes a partition's appender may hold accepted but not yet written. Past it a produce batch waits on the partition's produce worker, which retries until the request's timeout (then REQUEST_TIMED_OUT). A batch arriving at an empty queue is always taken, however large.", func(c *Config) *int64 { return &c.AppendPendingMaxBytes }),
	oursBool("append.inline", "false", "Let the thread that receives a Produce request of one partition write its batch itself (pwritev into the page cache; on io_uring the network loop's ring thread) when the partition's writer is idle, instead of handing it to the partition's writer goroutine and getting the answer back through the loop's mailbox. A group that needs a segment roll, a new leader epoch or an fdatasync (flush.messages, flush.ms) still goes to the writer goroutine, so a ring thread never waits in fdatasync; a write that blocks in the kernel (dirty-page throttling) does stall the receiving thread and its other connections, so after an inline write that took over 1 ms and slept in the kernel (or ran that long on the CPU; a write that was only preempted does not count) every log of the same log dir is written by its writer goroutine for the next second. Off by default: it cut the broker's Produce p99 3.7-12x and the client's Produce round trip, and raised one-partition throughput, but moved the consumer's long-poll wake-up onto the ring thread, and the end-to-end tail was not better (docs/BENCHMARKS.md, \"Inline appends\").", func(c *Config) *bool { return &c.AppendInline }),
	oursInt("append.linger.max.ms", "0", 0, 1000, "Longest the appender waits for more batches before writing. 0 = never wait: batches that arrive while the previous write is in flight are coalesced into the next one (group commit without added latency).", func(c *Config) *int { return &c.AppendLingerMaxMs }),
	intSpec("max.incremental.fetch.session.cache.slots", "1000", 0, kafkaIntMax, "Incremental fetch sessions kept (KIP-227). When full, a new session takes the slot of one idle for 2 minutes, or of the smallest one older than 2 minutes if it has more partitions; otherwise the fetch is served without a session. 0 = no sessions.", func(c *Config) *int { return &c.FetchSessionCacheSlots }),
	oursInt("fetch.session.cache.max.partitions", "100000", 0, kafkaIntMax, "Partitions remembered over all fetch sessions (about 200 bytes each). A session that would exceed it is not created, or is closed (FETCH_SESSION_ID_NOT_FOUND) and its client falls back to full fetches. Partitions that do not exist are never remembered.", func(c *Config) *int { return &c.FetchSessionMaxPartitions }),
	oursBool("fetch.zero.copy", "true", "Send fetched record bytes from the segment file by splice (sendfile on the portable backend) instead of copying through user space.", func(c *Config) *bool { return &c.FetchZeroCopy }),
	enumSpec("log.io.backend", "portable", true, []string{"portable", "uring"}, "How each partition's writer goroutine writes its log: `portable` with pwritev and fdatasync system calls; `uring` with an io_uring of its own per partition, one IORING_OP_WRITEV at the segment offset and, when the flush policy asks, an IORING_OP_FSYNC (DATASYNC) linked behind it, both in one io_uring_enter (a ring costs a descriptor and some locked memory per open partition). A log whose ring cannot be set up uses `portable`, with one log line saying why. Off by default: on ext4 every buffered WRITEV goes through an io-wq worker, and measured it lost 9-17% of the produce rate without fdatasync and gained nothing clear of the disk's noise with one (docs/BENCHMARKS.md, \"Log writes on a ring per partition\").", func(c *Config) *string { return &c.LogIOBackend }),
	oursBool("fetch.wake.on.loop", "true", "io_uring: answer a fetch woken from its long poll (by an append, its deadline or a producer-state load) on the loop thread of its connection, through that loop's mailbox, instead of on a goroutine started for it, which then had to hand its answer to the loop anyway. The read follows the rules of an answer given at once: the page cache only (preadv2 RWF_NOWAIT), a splice for what it does not hold. Measured end to end at 20 MiB/s it cut io_uring's p99.9 by a median 0.83x over 10 paired runs (docs/BENCHMARKS.md, \"Fetch wake-ups on the loop\"); false restores the goroutine. No effect on the portable backend.", func(c *Config) *bool { return &c.FetchWakeOnLoop }),
	oursInt("fetch.copy.max.bytes", "65536", 0, kafkaIntMax, "Fetched partition regions up to this size are copied into the response (within the copy budget of queued.max.request.bytes) instead of spliced: on io_uring a splice hands each chunk to kernel workers twice, which made small answers' send 5 to 10 times slower at p99 than a copy (docs/BENCHMARKS.md, tail investigation). A fetch answered on a ring thread (at once, or woken with fetch.wake.on.loop) copies only what the page cache holds (preadv2 RWF_NOWAIT) and splices the rest; one woken on a goroutine of its own (the portable backend, or fetch.wake.on.loop=false) reads with pread. Larger regions (catch-up) are always spliced. 0 = splice every region (with fetch.zero.copy).", func(c *Config) *int { return &c.FetchCopyMaxBytes }),

	// ---- groups
	intSpec("group.initial.rebalance.delay.ms", "3000", 0, kafkaIntMax, "Wait this long for more members before the first rebalance of an empty group.", func(c *Config) *int { return &c.GroupInitialRebalanceDelayMs }),
	intSpec("group.min.session.timeout.ms", "6000", 0, kafkaIntMax, "Smallest session timeout a member may ask for.", func(c *Config) *int { return &c.GroupMinSessionTimeoutMs }),
	intSpec("group.max.session.timeout.ms", "1800000", 0, kafkaIntMax, "Largest session timeout a member may ask for.", func(c *Config) *int { return &c.GroupMaxSessionTimeoutMs }),
	intSpec("offsets.topic.num.partitions", "50", 1, kafkaIntMax, "Partitions of __consumer_offsets (fixed once created).", func(c *Config) *int32 { return &c.OffsetsTopicNumPartitions }),
	intSpec("offsets.topic.segment.bytes", "104857600", 1, kafkaIntMax, "`segment.bytes` of __consumer_offsets when the broker creates it: small enough for the compacted topic's segments to roll, and so be cleaned, long before the 1 GiB of other topics. At least `log.segment.bytes.min`.", func(c *Config) *int32 { return &c.OffsetsTopicSegmentBytes }),
	intSpec("offsets.topic.replication.factor", "3", 1, 32767, "Replication factor of __consumer_offsets when the broker creates it. In a cluster the topic is not created while fewer brokers are registered (FindCoordinator answers COORDINATOR_NOT_AVAILABLE until enough are), as Kafka does; a single node (no process.roles) holds one replica whatever this says.", func(c *Config) *int16 { return &c.OffsetsTopicReplicationFactor }),
	intSpec("offsets.retention.minutes", "10080", 1, kafkaIntMax, "Keep committed offsets of an empty group this long.", func(c *Config) *int { return &c.OffsetsRetentionMinutes }),

	// ---- transactions
	intSpec("transaction.state.log.num.partitions", "50", 1, kafkaIntMax, "Partitions of __transaction_state (fixed once created): a transactional id's coordinator is the leader of partition abs(hash(id)) % this.", func(c *Config) *int32 { return &c.TransactionStateLogNumPartitions }),
	intSpec("transaction.state.log.segment.bytes", "104857600", 1, kafkaIntMax, "`segment.bytes` of __transaction_state when the broker creates it (compacted). At least `log.segment.bytes.min`.", func(c *Config) *int32 { return &c.TransactionStateLogSegmentBytes }),
	intSpec("transaction.state.log.replication.factor", "3", 1, 32767, "Replication factor of __transaction_state when the broker creates it. In a cluster the topic is not created while fewer brokers are registered (FindCoordinator answers COORDINATOR_NOT_AVAILABLE until enough are), as Kafka does; a single node (no process.roles) holds one replica whatever this says.", func(c *Config) *int16 { return &c.TransactionStateLogReplicationFactor }),
	intSpec("transaction.state.log.min.isr", "2", 1, kafkaIntMax, "`min.insync.replicas` of __transaction_state when the broker creates it: a transaction state record is appended only while its partition has this many in-sync replicas, else the request is answered COORDINATOR_NOT_AVAILABLE (retriable). Not set on a single node.", func(c *Config) *int32 { return &c.TransactionStateLogMinISR }),
	intSpec("transaction.max.timeout.ms", "900000", 1, kafkaIntMax, "Largest `transaction.timeout.ms` a producer may ask for (InitProducerId answers INVALID_TRANSACTION_TIMEOUT above it).", func(c *Config) *int32 { return &c.TransactionMaxTimeoutMs }),
	intSpec("transactional.id.expiration.ms", "604800000", 1, kafkaIntMax, "A transactional id with no transaction in progress and no update for this long is removed (a tombstone in __transaction_state).", func(c *Config) *int32 { return &c.TransactionalIDExpirationMs }),
	oursInt("transaction.version", "2", 0, 2, "The `transaction.version` feature level the broker finalizes and advertises in ApiVersions until UpdateFeatures (`kafka-features.sh upgrade`/`downgrade`) sets one, which then wins and survives restarts (a Kafka cluster takes it from `kafka-storage.sh format --feature`): 2, as a new Kafka 4 cluster, lets clients that know transactions v2 (KIP-890: Produce v12, TxnOffsetCommit v5, EndTxn v5; the epoch bumps on every commit or abort, partitions join a transaction implicitly) use them; 1 or 0 keeps every client on transactions v1 (0 also writes `__transaction_state` values at version 0, readable by Kafka 3). Give every broker of a cluster the same level.", func(c *Config) *int16 { return &c.TransactionVersion }),
	intSpec("add.partitions.to.txn.retry.backoff.ms", "20", 1, kafkaIntMax, "Transactions v2: when the leader of a partition adds it to a transaction for a Produce (v12+) and the coordinator answers CONCURRENT_TRANSACTIONS (the previous transaction's markers are still being written), the add is tried again after this long.", func(c *Config) *int32 { return &c.AddPartitionsToTxnRetryBackoffMs }),
	intSpec("add.partitions.to.txn.retry.backoff.max.ms", "100", 0, kafkaIntMax, "Transactions v2: how long the leader keeps retrying such an add (see `add.partitions.to.txn.retry.backoff.ms`) before it answers the produce NOT_ENOUGH_REPLICAS, which the client retries.", func(c *Config) *int32 { return &c.AddPartitionsToTxnRetryBackoffMaxMs }),
	intSpec("transaction.abort.timed.out.transaction.cleanup.interval.ms", "10000", 1, kafkaIntMax, "How often the transaction coordinator aborts transactions older than their timeout, expires idle transactional ids and retries failed completions.", func(c *Config) *int32 { return &c.TransactionAbortTimedOutTransactionCleanupIntervalMs }),

	// ---- operations (ours)
	oursBool("tuning.strict", "false", "Refuse to start when the host checker reports a fatal finding (otherwise fatal findings are logged).", func(c *Config) *bool { return &c.TuningStrict }),
	{name: "metrics.listener", def: "127.0.0.1:9644", ours: true,
		doc: "host:port of the Prometheus /metrics HTTP endpoint; empty disables it.",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != "" {
				_, port, err := net.SplitHostPort(v)
				if err != nil {
					return fmt.Errorf("not host:port: %v", err)
				}
				if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
					return fmt.Errorf("port %q is not 0..65535", port)
				}
			}
			c.MetricsListener = v
			return nil
		},
		get: func(c *Config) string { return c.MetricsListener }},
	oursBool("metrics.pprof.enable", "false", "Serve /debug/pprof on metrics.listener. Keep it on a loopback listener.", func(c *Config) *bool { return &c.MetricsPprofEnable }),
	oursBool("metrics.topic.bytes.enable", "false", "Export per-topic byte counters (one series per topic and direction; off by default to keep cardinality low).", func(c *Config) *bool { return &c.MetricsTopicBytesEnable }),
}

// ignoredKeys are Kafka broker keys that have no meaning for a single-node
// io_uring broker. They load without a warning (a stock Kafka server.properties
// must load cleanly) and Print lists them as ignored, with the reason.
var ignoredKeys = map[string]string{
	"inter.broker.protocol.version":     "no inter-broker traffic: a single broker",
	"zookeeper.connect":                 "no ZooKeeper",
	"zookeeper.connection.timeout.ms":   "no ZooKeeper",
	"num.network.threads":               "network work runs on ring.count event loops",
	"num.io.threads":                    "request handling runs on the ring.count event loops",
	"background.threads":                "no background thread pool",
	"queued.max.requests":               "bounded per connection by ring.conn.max.inflight.requests and per process by queued.max.request.bytes",
	"socket.send.buffer.bytes":          "kernel autotuning of socket buffers is used",
	"socket.receive.buffer.bytes":       "kernel autotuning of socket buffers is used",
	"num.recovery.threads.per.data.dir": "recovery runs on one goroutine per log dir",
	"min.insync.replicas":               "only the topic config counts; no cluster-wide default",
	"unclean.leader.election.enable":    "only the topic config counts; no cluster-wide default",
	"log.flush.scheduler.interval.ms":   "flush timing follows log.flush.interval.ms directly",
	"log.segment.delete.delay.ms":       "segments are unlinked at once; open readers keep their fd",
}

// ---- spec constructors

type integer interface {
	~int | ~int16 | ~int32 | ~int64
}

func withRank(sp spec, rank int) spec { sp.rank = rank; return sp }

func withType(sp spec, typ Type) spec { sp.typ = typ; return sp }

// withOurs marks sp as a ringbroker key, not a Kafka one.
func withOurs(sp spec) spec { sp.ours = true; return sp }

func noKafkaDefault(sp spec) spec { sp.noKafkaDefault = true; return sp }

// intType is Kafka's type of an integer key held in a T: LONG for int64,
// INT otherwise.
func intType[T integer]() Type {
	if _, ok := any(*new(T)).(int64); ok {
		return TypeLong
	}
	return TypeInt
}

func intSpec[T integer](name, def string, lo, hi int64, doc string, field func(*Config) *T) spec {
	return spec{name: name, def: def, doc: doc, typ: intType[T](),
		set: func(c *Config, v string) error {
			n, err := parseInt(v, lo, hi)
			if err != nil {
				return err
			}
			*field(c) = T(n)
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(int64(*field(c)), 10) }}
}

func oursInt[T integer](name, def string, lo, hi int64, doc string, field func(*Config) *T) spec {
	sp := intSpec(name, def, lo, hi, doc, field)
	sp.ours = true
	return sp
}

func powerOfTwo(name, def string, lo, hi int64, doc string, field func(*Config) *int) spec {
	sp := oursInt(name, def, lo, hi, doc, field)
	inner := sp.set
	sp.set = func(c *Config, v string) error {
		n, err := parseInt(v, lo, hi)
		if err != nil {
			return err
		}
		if n&(n-1) != 0 {
			return fmt.Errorf("%d is not a power of two", n)
		}
		return inner(c, v)
	}
	return sp
}

// intAlias is an alias that stores into the same field with the same unit.
func intAlias[T integer](name, def, canon string, rank int, lo, hi int64, doc string, field func(*Config) *T) spec {
	sp := intSpec(name, def, lo, hi, doc, field)
	sp.canon, sp.rank, sp.get = canon, rank, nil
	return sp
}

// scaledAlias is a coarser-unit alias of an int64 millisecond key (hours,
// minutes). A negative product means "no limit" (-1), as in Kafka's
// KafkaConfig.logRetentionTimeMillis.
func scaledAlias(name, def, canon string, rank int, lo int64, scale int64, doc string) spec {
	return spec{name: name, def: def, doc: doc, canon: canon, rank: rank, typ: TypeInt, scaled: true,
		set: func(c *Config, v string) error {
			n, err := parseInt(v, lo, kafkaIntMax)
			if err != nil {
				return err
			}
			ms := n * scale
			if ms < 0 {
				ms = -1
			}
			switch canon {
			case "log.roll.ms":
				c.LogRollMs = ms
			case "log.retention.ms":
				c.LogRetentionMs = ms
			default:
				panic("config: scaledAlias for unknown key " + canon)
			}
			return nil
		}}
}

// storedInt and storedBool are Kafka broker keys that default
// a topic key ringbroker stores without acting on it: server.properties
// takes them with Kafka's validation (a stock file loads, a bad value is an
// error as in Kafka), DescribeConfigs reports them, and topics inherit them.
func storedInt(name, def string, lo, hi int64, topicKey, why string) spec {
	return storedSpec(name, def, TypeLong, topicKey, why, func(v string) (string, error) {
		n, err := parseInt(v, lo, hi)
		return strconv.FormatInt(n, 10), err
	})
}

func storedBool(name, def, topicKey, why string) spec {
	return storedSpec(name, def, TypeBoolean, topicKey, why, func(v string) (string, error) {
		switch v = strings.TrimSpace(v); {
		case strings.EqualFold(v, "true"):
			return "true", nil
		case strings.EqualFold(v, "false"):
			return "false", nil
		}
		return "", errors.New("must be true or false")
	})
}

func storedSpec(name, def string, typ Type, topicKey, why string, parse func(string) (string, error)) spec {
	return spec{name: name, def: def, typ: typ,
		doc: "Default of topics' `" + topicKey + "`. Taken and reported; no effect (" + why + ").",
		set: func(c *Config, v string) error {
			canonical, err := parse(v)
			if err != nil {
				return err
			}
			if c.stored == nil {
				c.stored = map[string]string{}
			}
			c.stored[name] = canonical
			return nil
		},
		get: func(c *Config) string { return c.stored[name] }}
}

// doubleSpec is a Kafka DOUBLE in [lo, hi] (above lo when loOpen). NaN
// and the infinities are refused (Kafka's range check lets NaN through).
// The value reads back as Java prints a double (DescribeConfigs reports
// what Kafka would).
func doubleSpec(name, def string, lo, hi float64, loOpen bool, doc string, field func(*Config) *float64) spec {
	return spec{name: name, def: def, doc: doc, typ: TypeDouble,
		set: func(c *Config, v string) error {
			f, err := parseDouble(v, lo, hi, loOpen)
			if err != nil {
				return err
			}
			*field(c) = f
			return nil
		},
		get: func(c *Config) string { return javaDouble(*field(c)) }}
}

func boolSpec(name, def, doc string, field func(*Config) *bool) spec {
	return spec{name: name, def: def, doc: doc, typ: TypeBoolean,
		set: func(c *Config, v string) error {
			// Kafka's BOOLEAN accepts exactly true/false, any case.
			switch v = strings.TrimSpace(v); {
			case strings.EqualFold(v, "true"):
				*field(c) = true
			case strings.EqualFold(v, "false"):
				*field(c) = false
			default:
				return errors.New("must be true or false")
			}
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*field(c)) }}
}

func oursBool(name, def, doc string, field func(*Config) *bool) spec {
	sp := boolSpec(name, def, doc, field)
	sp.ours = true
	return sp
}

func enumSpec(name, def string, ours bool, values []string, doc string, field func(*Config) *string) spec {
	return spec{name: name, def: def, doc: doc, ours: ours,
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			for _, ok := range values {
				if v == ok {
					*field(c) = v
					return nil
				}
			}
			return fmt.Errorf("must be one of %s", strings.Join(values, ", "))
		},
		get: func(c *Config) string { return *field(c) }}
}

// ---- value parsers

// parseInt parses a decimal integer (Kafka trims before parsing) in [lo, hi].
func parseInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, errors.New("not an integer")
	}
	if n < lo || n > hi {
		switch {
		case lo == hi:
			return 0, fmt.Errorf("must be %d", lo)
		case hi == math.MaxInt64:
			return 0, fmt.Errorf("must be at least %d", lo)
		default:
			return 0, fmt.Errorf("must be between %d and %d", lo, hi)
		}
	}
	return n, nil
}

// parseDouble parses a Kafka DOUBLE (trimmed, as Kafka does) in [lo, hi],
// or (lo, hi] with loOpen.
func parseDouble(v string, lo, hi float64, loOpen bool) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("not a finite number")
	}
	if f < lo || f > hi || loOpen && f == lo {
		switch {
		case loOpen && hi == math.MaxFloat64:
			return 0, fmt.Errorf("must be above %s", javaDouble(lo))
		case loOpen:
			return 0, fmt.Errorf("must be above %s and at most %s", javaDouble(lo), javaDouble(hi))
		default:
			return 0, fmt.Errorf("must be between %s and %s", javaDouble(lo), javaDouble(hi))
		}
	}
	return f, nil
}

// javaDouble formats f as Java's Double.toString does (Kafka reports a
// DOUBLE so): plain decimal with at least one fraction digit from 10^-3 up
// to 10^7, else d.dddE±n without a plus sign. 0.5 -> "0.5", 15 -> "15.0",
// math.MaxFloat64 -> "1.7976931348623157E308".
func javaDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if a := math.Abs(f); a == 0 || a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'E', -1, 64), "E") // "1.7976931348623157", "+308"
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	sign := ""
	if exp[0] == '-' {
		sign = "-"
	}
	return mant + "E" + sign + strings.TrimLeft(exp[1:], "0")
}

// splitList splits a Kafka LIST value: trimmed, comma-separated, empty = none.
func splitList(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func setDirs(c *Config, v string) error {
	dirs := splitList(v)
	if len(dirs) == 0 {
		return errors.New("at least one directory is required")
	}
	for _, d := range dirs {
		if d == "" {
			return errors.New("empty directory in list")
		}
	}
	c.LogDirs = dirs
	return nil
}

func parseListeners(v string) ([]Listener, error) {
	var ls []Listener
	for _, item := range splitList(v) {
		l, err := ParseListener(item)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// ParseListener parses one "NAME://host:port" (IPv6 host in brackets).
func ParseListener(s string) (Listener, error) {
	name, hostPort, ok := strings.Cut(s, "://")
	if !ok || name == "" {
		return Listener{}, fmt.Errorf("listener %q is not NAME://host:port", s)
	}
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return Listener{}, fmt.Errorf("listener %q: name may hold only letters, digits, '_' and '-'", s)
		}
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return Listener{}, fmt.Errorf("listener %q: %v", s, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return Listener{}, fmt.Errorf("listener %q: port %q is not 0..65535", s, port)
	}
	return Listener{Name: strings.ToUpper(name), Host: host, Port: p}, nil
}

func formatListeners(ls []Listener) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.String()
	}
	return strings.Join(parts, ",")
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// DocPath is where the generated key reference lives, relative to the
// repository root (go run ./config/keydoc -w rewrites it).
const DocPath = "docs/CONFIG.md"

// Markdown writes the key reference (docs/CONFIG.md): the server.properties
// keys (key, type, default, meaning), the accepted-but-ignored Kafka keys,
// then the topic keys with their broker synonyms.
func Markdown(w io.Writer) {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
	code := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return "`" + cell(s) + "`"
	}
	fmt.Fprintln(w, "# Config keys")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "<!-- Generated by `go run ./config/keydoc -w` from the key table (config/keys.go, config/topic_keys.go). Do not edit: TestDocsMatchKeyTable fails when this file differs. -->")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## server.properties")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "`ringbrokerd --print-config` prints the effective value and source of every key. (ours) marks a ringbroker key Kafka does not have.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| key | type | default | meaning |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for i := range specs {
		sp := &specs[i]
		if !sp.broker() {
			continue
		}
		key := "`" + sp.name + "`"
		if sp.ours {
			key += " (ours)"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", key, sp.typ, code(sp.def), cell(sp.doc))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Per-listener keys, Kafka's `listener.name.<listener name in lower case>.` prefix (`--print-config` hides JAAS values):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "- `listener.name.<name>.sasl.enabled.mechanisms`: the listener's own `sasl.enabled.mechanisms`.")
	fmt.Fprintln(w, "- `listener.name.<name>.plain.sasl.jaas.config`: the listener's SASL/PLAIN users, in Kafka's JAAS syntax: `"+PlainLoginModule+" required user_alice=\"alice-secret\" user_bob=\"bob-secret\";`.")
	fmt.Fprintln(w, "- `listener.name.<name>.<mechanism>.sasl.jaas.config` for another mechanism is taken and checked for syntax (SCRAM users come from AlterUserScramCredentials, not from JAAS).")
	fmt.Fprintln(w, "- `listener.name.<name>.ssl.*`: every `ssl.*` key above, for that listener only (its value wins over the unprefixed key); secrets are hidden by `--print-config`.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Kafka keys accepted and ignored (no warning; `--print-config` lists them):")
	fmt.Fprintln(w)
	for _, k := range sortedKeys(ignoredKeys) {
		fmt.Fprintf(w, "- `%s`: %s\n", k, ignoredKeys[k])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Topic keys")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Set per topic by CreateTopics, AlterConfigs and IncrementalAlterConfigs (an unknown key or a bad value is INVALID_CONFIG). A topic without an override takes the broker's value of the first synonym ringbroker takes, else Kafka's default; DescribeConfigs reports the synonyms in this order.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| key | type | Kafka default | broker synonyms | meaning |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	var topics []*spec
	for i := range specs {
		if specs[i].topic() {
			topics = append(topics, &specs[i])
		}
	}
	slices.SortFunc(topics, func(a, b *spec) int { return strings.Compare(a.name, b.name) })
	for _, sp := range topics {
		var syns []string
		for _, k := range sp.synonyms {
			if lookup(k) != nil {
				syns = append(syns, "`"+k+"`")
			} else {
				syns = append(syns, "`"+k+"` (not taken)")
			}
		}
		synCell := strings.Join(syns, ", ")
		if synCell == "" {
			synCell = "(none)"
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s |\n", sp.name, sp.typ, code(sp.def), synCell, cell(sp.doc))
	}
}
