package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Cluster keys (issue 15): the KRaft keys that make a node part of a
// metadata quorum. With process.roles unset the node is a single broker with
// no quorum, exactly as before; the other keys then have no effect.

// Voter is one entry of controller.quorum.voters: id@host:port.
type Voter struct {
	ID   int32
	Host string
	Port int
}

// Addr returns host:port.
func (v Voter) Addr() string { return net.JoinHostPort(v.Host, strconv.Itoa(v.Port)) }

func (v Voter) String() string { return strconv.Itoa(int(v.ID)) + "@" + v.Addr() }

// Roles reports process.roles.
func (c *Config) Roles() (broker, controller bool) {
	return slices.Contains(c.ProcessRoles, "broker"), slices.Contains(c.ProcessRoles, "controller")
}

// Clustered reports whether this node takes part in a metadata quorum
// (process.roles is set).
func (c *Config) Clustered() bool { return len(c.ProcessRoles) > 0 }

// MetadataDir is the directory holding __cluster_metadata-0: metadata.log.dir,
// or the first log dir.
func (c *Config) MetadataDir() string {
	if c.MetadataLogDir != "" {
		return c.MetadataLogDir
	}
	if len(c.LogDirs) == 0 {
		return ""
	}
	return c.LogDirs[0]
}

var clusterSpecs = []spec{
	{name: "process.roles", def: "",
		doc: "`broker,controller` (combined: the default of a cluster), or `broker` (follows the metadata quorum without voting). Empty: a single node with no quorum.",
		set: func(c *Config, v string) error {
			var roles []string
			for _, r := range splitList(v) {
				r = strings.ToLower(r)
				if r != "broker" && r != "controller" {
					return fmt.Errorf("unknown role %q (broker, controller)", r)
				}
				if slices.Contains(roles, r) {
					return fmt.Errorf("role %q appears twice", r)
				}
				roles = append(roles, r)
			}
			slices.Sort(roles)
			c.ProcessRoles = roles
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.ProcessRoles, ",") }},
	{name: "controller.quorum.voters", def: "",
		doc: "The metadata quorum: `id@host:port,...`, each a controller node's id and its CONTROLLER listener.",
		set: func(c *Config, v string) error {
			voters, err := parseVoters(v)
			if err != nil {
				return err
			}
			c.QuorumVoters = voters
			return nil
		},
		get: func(c *Config) string {
			parts := make([]string, len(c.QuorumVoters))
			for i, v := range c.QuorumVoters {
				parts[i] = v.String()
			}
			return strings.Join(parts, ",")
		}},
	{name: "controller.quorum.bootstrap.servers", def: "",
		doc: "A dynamic metadata quorum (KIP-853): `host:port,...` of controllers to reach it through, instead of (never together with) `controller.quorum.voters`. The voters and their endpoints then live in the metadata log and change with AddRaftVoter and RemoveRaftVoter (`kafka-metadata-quorum.sh add-controller` / `remove-controller`). The first start decides the initial voters once (see `controller.quorum.standalone` and `controller.quorum.initial.controllers`); a node started with neither joins as an observer (a raft learner) that can then be added as a voter.",
		set: func(c *Config, v string) error {
			servers := splitList(v)
			for _, s := range servers {
				host, port, err := net.SplitHostPort(s)
				if err != nil {
					return fmt.Errorf("entry %q: %v", s, err)
				}
				if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
					return fmt.Errorf("entry %q: port %q is not 1..65535", s, port)
				}
				if host == "" || isWildcardHost(host) {
					return fmt.Errorf("entry %q: name a host other nodes can reach", s)
				}
			}
			c.QuorumBootstrapServers = servers
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.QuorumBootstrapServers, ",") }},
	withOurs(boolSpec("controller.quorum.standalone", "false", "With `controller.quorum.bootstrap.servers`: this node alone is the initial voter of a new dynamic quorum (Kafka's `kafka-storage.sh format --standalone`). Read only when the metadata log is empty (the first start), where the decision is written into the log; later starts ignore it. Start exactly one node of a new cluster this way.", func(c *Config) *bool { return &c.QuorumStandalone })),
	{name: "controller.quorum.initial.controllers", def: "", ours: true,
		doc: "With `controller.quorum.bootstrap.servers`: the initial voters of a new dynamic quorum, `id@host:port,...` (Kafka's `kafka-storage.sh format --initial-controllers`, without directory ids). Every node listed must be started with the same list; read only when the metadata log is empty (the first start).",
		set: func(c *Config, v string) error {
			voters, err := parseVoters(v)
			if err != nil {
				return err
			}
			c.QuorumInitialControllers = voters
			return nil
		},
		get: func(c *Config) string {
			parts := make([]string, len(c.QuorumInitialControllers))
			for i, v := range c.QuorumInitialControllers {
				parts[i] = v.String()
			}
			return strings.Join(parts, ",")
		}},
	{name: "metadata.log.dir", def: "",
		doc: "Directory of the metadata log (`__cluster_metadata-0`). Default: the first of `log.dirs`.",
		set: func(c *Config, v string) error { c.MetadataLogDir = strings.TrimSpace(v); return nil },
		get: func(c *Config) string { return c.MetadataLogDir }},
	{name: "cluster.id", def: "", ours: true,
		doc: "The cluster id every node of a cluster shares (Kafka's `kafka-storage.sh format -t`). A fresh data dir takes it; a data dir holding another id refuses to start. Empty: a fresh single node makes one up.",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if len(v) > 64 || strings.ContainsAny(v, " \t\r\n=") {
				return errors.New("must be at most 64 characters without spaces or '='")
			}
			c.ClusterID = v
			return nil
		},
		get: func(c *Config) string { return c.ClusterID }},
	{name: "broker.rack", def: "",
		doc: "This broker's rack, advertised in Metadata and DescribeCluster: the controller spreads a partition's replicas across racks, and with `replica.selector.class` set a consumer that names its rack (`client.rack`) is sent to an in-sync replica in it (KIP-392).",
		set: func(c *Config, v string) error { c.BrokerRack = strings.TrimSpace(v); return nil },
		get: func(c *Config) string { return c.BrokerRack }},
	{name: "replica.selector.class", def: "", typ: TypeClass,
		doc: "How a partition's leader picks the replica a consumer fetches from (KIP-392). Empty: always the leader. `" + RackAwareReplicaSelector + "`: a consumer fetch (read_uncommitted) from a client in another rack than the leader is answered with the id of an in-sync replica in the client's rack (`client.rack`), the most caught up one, and this node serves consumer fetches of the partitions it follows, up to its high watermark. Any other class name refuses to start. Set the same value on every node.",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != "" && v != RackAwareReplicaSelector {
				return fmt.Errorf("unknown replica selector class %q: ringbroker has only %s (or empty for leader-only fetches)", v, RackAwareReplicaSelector)
			}
			c.ReplicaSelectorClass = v
			return nil
		},
		get: func(c *Config) string { return c.ReplicaSelectorClass }},
	intSpec("broker.session.timeout.ms", "9000", 1, kafkaIntMax, "A broker that sends no heartbeat for this long is fenced by the controller: its partitions lose their leader until it returns.", func(c *Config) *int32 { return &c.BrokerSessionTimeoutMs }),
	intSpec("broker.heartbeat.interval.ms", "2000", 1, kafkaIntMax, "How often a broker heartbeats to the active controller.", func(c *Config) *int32 { return &c.BrokerHeartbeatIntervalMs }),
	boolSpec("auto.leader.rebalance.enable", "true", "The controller moves leadership back to each partition's preferred replica when a broker leads too few of its preferred partitions.", func(c *Config) *bool { return &c.AutoLeaderRebalanceEnable }),
	withType(intSpec("leader.imbalance.check.interval.seconds", "300", 1, math64Max, "How often the controller checks for leader imbalance.", func(c *Config) *int64 { return &c.LeaderImbalanceCheckIntervalSeconds }), TypeLong),
	intSpec("leader.imbalance.per.broker.percentage", "10", 0, 100, "A broker's share of non-preferred leaders above which the controller rebalances.", func(c *Config) *int32 { return &c.LeaderImbalancePerBrokerPercentage }),
	withType(intSpec("replica.lag.time.max.ms", "30000", 1, math64Max, "A partition's leader removes a follower from the ISR (AlterPartition to the controller) when the follower has not caught up with the leader's log end for this long; a follower whose log end reaches the high watermark is added back.", func(c *Config) *int64 { return &c.ReplicaLagTimeMaxMs }), TypeLong),
	boolSpec("controlled.shutdown.enable", "true", "On SIGTERM a clustered node asks the controller to move its leaderships away before it stops. `false`: it stops at once and the controller fences it when its session expires (`broker.session.timeout.ms`), as Kafka does.", func(c *Config) *bool { return &c.ControlledShutdownEnable }),
	intSpec("num.replica.fetchers", "1", 1, kafkaIntMax, "Replica fetchers per leader a follower runs, each with one connection to that leader and one request in flight; a partition always goes to the same one (Kafka's fetcher id).", func(c *Config) *int32 { return &c.NumReplicaFetchers }),
	intSpec("replica.fetch.max.bytes", "1048576", 0, kafkaIntMax, "Bytes a follower asks for in one fetch, for the whole response and for each partition in it (Kafka bounds the whole response with replica.fetch.response.max.bytes instead; here one key bounds the fetcher's memory). A first record batch larger than this still comes whole (up to message.max.bytes), so the fetcher cannot get stuck.", func(c *Config) *int32 { return &c.ReplicaFetchMaxBytes }),
	intSpec("replica.fetch.wait.max.ms", "500", 0, kafkaIntMax, "How long the leader may hold a follower's fetch when it has less than replica.fetch.min.bytes to send.", func(c *Config) *int32 { return &c.ReplicaFetchWaitMaxMs }),
	intSpec("replica.fetch.min.bytes", "1", 0, kafkaIntMax, "Bytes the leader waits for (up to replica.fetch.wait.max.ms) before answering a follower's fetch.", func(c *Config) *int32 { return &c.ReplicaFetchMinBytes }),
	intSpec("replica.fetch.backoff.ms", "1000", 0, kafkaIntMax, "How long a follower waits before fetching a partition again after an error, or reconnecting to a leader after a failed request.", func(c *Config) *int32 { return &c.ReplicaFetchBackoffMs }),
	intSpec("replica.high.watermark.checkpoint.interval.ms", "5000", 1, math64Max, "How often each log dir's replication-offset-checkpoint (every partition's high watermark) is rewritten in cluster mode; it is also written at a clean shutdown. A restarted node starts each partition from its checkpointed high watermark, so a crash costs at most this much high-watermark progress (consumers of the restarted node wait for its followers to report again), never records above a high watermark it had.", func(c *Config) *int64 { return &c.ReplicaHighWatermarkCheckpointIntervalMs }),
	intSpec("replica.socket.timeout.ms", "30000", 1, kafkaIntMax, "Timeout of a follower's request to a leader (beyond replica.fetch.wait.max.ms for a fetch) and of its connect.", func(c *Config) *int32 { return &c.ReplicaSocketTimeoutMs }),
}

const math64Max = 1<<63 - 1

// parseVoters parses controller.quorum.voters.
func parseVoters(v string) ([]Voter, error) {
	var out []Voter
	for _, item := range splitList(v) {
		id, addr, ok := strings.Cut(item, "@")
		if !ok {
			return nil, fmt.Errorf("entry %q is not id@host:port", item)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("entry %q: id %q is not a node id", item, id)
		}
		host, port, err := net.SplitHostPort(strings.TrimSpace(addr))
		if err != nil {
			return nil, fmt.Errorf("entry %q: %v", item, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("entry %q: port %q is not 1..65535", item, port)
		}
		if host == "" || isWildcardHost(host) {
			return nil, fmt.Errorf("entry %q: name a host other nodes can reach", item)
		}
		for _, o := range out {
			if o.ID == int32(n) {
				return nil, fmt.Errorf("node id %d appears twice", n)
			}
		}
		out = append(out, Voter{ID: int32(n), Host: host, Port: p})
	}
	return out, nil
}

// validateCluster checks the cluster keys together.
func (c *Config) validateCluster() error {
	if !c.Clustered() {
		if c.DefaultReplicationFactor > 1 {
			return fmt.Errorf("default.replication.factor=%d: a single node holds one replica; more need a cluster (process.roles)", c.DefaultReplicationFactor)
		}
		return nil
	}
	isBroker, isController := c.Roles()
	if !isBroker {
		return errors.New("process.roles=controller: controller-only nodes are not supported; use broker,controller")
	}
	if len(c.QuorumBootstrapServers) > 0 {
		return c.validateDynamicQuorum(isController)
	}
	if c.QuorumStandalone || len(c.QuorumInitialControllers) > 0 {
		return errors.New("controller.quorum.standalone and controller.quorum.initial.controllers need controller.quorum.bootstrap.servers (a dynamic quorum)")
	}
	if len(c.QuorumVoters) == 0 {
		return errors.New("process.roles is set but neither controller.quorum.voters nor controller.quorum.bootstrap.servers is")
	}
	inVoters := slices.ContainsFunc(c.QuorumVoters, func(v Voter) bool { return v.ID == c.NodeID })
	if isController && !inVoters {
		return fmt.Errorf("node.id=%d is a controller but not in controller.quorum.voters", c.NodeID)
	}
	if !isController && inVoters {
		return fmt.Errorf("node.id=%d is in controller.quorum.voters but process.roles lacks controller", c.NodeID)
	}
	if isController && len(c.ControllerListeners()) == 0 {
		return errors.New("process.roles includes controller but no listener is named in controller.listener.names")
	}
	return nil
}

// DynamicQuorum reports whether the metadata quorum is a dynamic one
// (controller.quorum.bootstrap.servers, KIP-853).
func (c *Config) DynamicQuorum() bool { return len(c.QuorumBootstrapServers) > 0 }

// validateDynamicQuorum checks the keys of a dynamic quorum.
func (c *Config) validateDynamicQuorum(isController bool) error {
	switch {
	case len(c.QuorumVoters) > 0:
		return errors.New("controller.quorum.voters and controller.quorum.bootstrap.servers are both set: a quorum is either static (voters) or dynamic (bootstrap servers)")
	case !isController:
		return errors.New("controller.quorum.bootstrap.servers on a broker-only node is not supported yet: broker-only nodes need controller.quorum.voters")
	case len(c.ControllerListeners()) == 0:
		return errors.New("process.roles includes controller but no listener is named in controller.listener.names")
	case c.QuorumStandalone && len(c.QuorumInitialControllers) > 0:
		return errors.New("controller.quorum.standalone and controller.quorum.initial.controllers are exclusive (as format's --standalone and --initial-controllers)")
	case len(c.QuorumInitialControllers) > 0 &&
		!slices.ContainsFunc(c.QuorumInitialControllers, func(v Voter) bool { return v.ID == c.NodeID }):
		return fmt.Errorf("node.id=%d is not in controller.quorum.initial.controllers: list it, or set neither key to join as an observer", c.NodeID)
	}
	return nil
}

// ControllerListeners are the listeners named in controller.listener.names.
func (c *Config) ControllerListeners() []Listener {
	var out []Listener
	for _, l := range c.listenersRaw {
		if slices.Contains(c.ControllerListenerNames, l.Name) {
			out = append(out, l)
		}
	}
	return out
}

// RackAwareReplicaSelector is the one replica.selector.class ringbroker
// has: Kafka's class name, so a Kafka server.properties works unchanged.
const RackAwareReplicaSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
