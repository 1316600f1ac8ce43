//go:build linux

package integration

// The three-node cluster harness of the cluster tests (cluster_test.go, issue 15):
// three ringbrokerd processes on 127.0.0.1, 127.0.0.2 and 127.0.0.3, each a broker
// and a voter of the metadata quorum, with a client port and a controller port of
// its own (free on its address when the cluster is made), a data dir kept across
// restarts, and the captured output of every incarnation.
//
// A node is started, SIGKILLed, SIGTERMed and restarted by the test; the harness's
// one cleanup (registered on the test that made the cluster, so the cluster can
// outlive each scenario subtest) SIGTERMs whatever still runs, all nodes at once
// (a node stopping alone after its peers left cannot reach a quorum for its
// controlled shutdown and waits out its grace), demands exit status 0 and, when the
// test failed, prints the tail of every incarnation's output.
//
// Requests meant for one node go straight to it (kgo's seed broker of a client
// seeded with that node alone): franz-go's admin helpers route CreateTopics and
// friends to the controller, which would never exercise the forwarding of a
// non-controller node.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

const (
	// clusterSessionTimeoutMs is broker.session.timeout.ms: how long a killed
	// node stays registered (unfenced) before the controller fences it.
	clusterSessionTimeoutMs = 3000
	// clusterReadyTimeout bounds a cluster (re)forming: election, registration,
	// every partition led. A fail-safe on a loaded machine, not a speed check.
	clusterReadyTimeout = 60 * time.Second
	// clusterPoll is the pause between two checks of a condition.
	clusterPoll = 100 * time.Millisecond
	// clusterRequestTimeout bounds one request to one node.
	clusterRequestTimeout = 10 * time.Second
	// clusterLogTail is how much of each incarnation's output a failure prints.
	clusterLogTail = 48 << 10
)

// clusterNode is one member: its addresses and data dir (fixed for the
// cluster's life) and its current process.
type clusterNode struct {
	id      int32
	host    string
	port    int // PLAINTEXT
	ctlPort int // CONTROLLER
	dir     string
	confDir string

	proc *Broker // the running incarnation; nil when down
	// crashed: the last incarnation was SIGKILLed (an unclean shutdown).
	crashed bool
	past    []*Broker // every incarnation, for the failure output
	// cl is a client seeded with this node alone: its seed broker is the
	// way to send a request to exactly this node.
	cl *kgo.Client
}

func (n *clusterNode) addr() string    { return net.JoinHostPort(n.host, strconv.Itoa(n.port)) }
func (n *clusterNode) ctlAddr() string { return net.JoinHostPort(n.host, strconv.Itoa(n.ctlPort)) }
func (n *clusterNode) up() bool        { return n.proc != nil }

// testCluster is three nodes of one cluster.id under one backend.
type testCluster struct {
	backend   string
	clusterID string
	nodes     []*clusterNode // nodes[i].id == i+1
	voters    string
	// extra are more processes (refused peers of scenario e), stopped by the
	// same cleanup.
	extra []*Broker
	// wrap, when set, is the command a node's ringbrokerd runs under (the
	// fault schedule's `ip netns exec <ns>`, which execs the daemon in place:
	// the PID signalled is the daemon's); moreProps are server.properties keys
	// every node gets on top of props' own.
	wrap      func(n *clusterNode) []string
	moreProps map[string]string
	// nodeProps, when set, gives node n's own keys on top of moreProps
	// (broker.rack, a metrics listener on the node's address).
	nodeProps func(n *clusterNode) map[string]string
	// editProps, when set, edits each node's server.properties last (the
	// dynamic quorum's per-node keys, which may remove keys).
	editProps func(n *clusterNode, props map[string]string)
	// clientTLS, when set (useTLS), is how the test reaches the nodes'
	// client listeners: TLS (the readiness probe and the node clients).
	clientTLS *tls.Config

	// What the scenarios made and every later one checks is still there:
	// topics with their partition counts, the topic configs set, and every
	// acknowledged record per topic in send order.
	topics  map[string]int32
	configs map[string]map[string]string
	ledger  map[string][]sentRecord

	// crashRestarted are the nodes restarted after a SIGKILL since the
	// last waitReady. The partitions such a node was the last in-sync
	// replica of stay offline once it registers again (KIP-966: its
	// unclean shutdown takes it out of the eligible leader replicas, as in
	// Kafka 4.1) until an unclean election, which waitReady then asks for
	// as an operator would (kafka-leader-election.sh --election-type
	// unclean). Until it has registered, its old registration may still
	// lead them (its session not expired yet), so waitReady waits for that.
	crashRestarted []*clusterNode
}

// freePortOn returns a TCP port of host that was free a moment ago, outside
// the ephemeral range (daemontest.FreePortOn).
func freePortOn(t *testing.T, host string) int {
	t.Helper()
	port, err := daemontest.FreePortOn(host)
	if err != nil {
		t.Fatalf("free port on %s: %v (the tests need the whole 127.0.0.0/8 on lo)", host, err)
	}
	return port
}

// newTestCluster makes a three-node cluster (not started): addresses, ports,
// data dirs, and the cleanup that stops it.
func newTestCluster(t *testing.T, backend string) *testCluster {
	t.Helper()
	c := &testCluster{backend: backend, clusterID: "it-cluster-" + backend,
		topics: map[string]int32{}, configs: map[string]map[string]string{}, ledger: map[string][]sentRecord{}}
	var voters []string
	for i := 1; i <= 3; i++ {
		host := "127.0.0." + strconv.Itoa(i)
		n := &clusterNode{id: int32(i), host: host, port: freePortOn(t, host), ctlPort: freePortOn(t, host),
			dir: filepath.Join(t.TempDir(), "data"), confDir: t.TempDir()}
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.addr()), kgo.DialTimeout(2*time.Second), kgo.RequestRetries(0),
			kgo.RetryTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n.cl = cl
		c.nodes = append(c.nodes, n)
		voters = append(voters, fmt.Sprintf("%d@%s", n.id, n.ctlAddr()))
	}
	c.voters = strings.Join(voters, ",")
	t.Cleanup(func() { c.cleanup(t) })
	return c
}

func (c *testCluster) cleanup(t *testing.T) {
	for _, n := range c.nodes {
		n.cl.Close()
	}
	var procs []*Broker
	for _, n := range c.nodes {
		if n.proc != nil {
			procs = append(procs, n.proc)
		}
	}
	procs = append(procs, c.extra...)
	for _, err := range stopParallel(procs) {
		t.Errorf("cleanup: %v", err)
	}
	if t.Failed() {
		for _, n := range c.nodes {
			for i, b := range n.past {
				t.Logf("node %d (%s) incarnation %d (pid %d) output (tail):\n%s", n.id, c.backend, i+1, b.PID, daemontest.Tail(b.Logs(), clusterLogTail))
			}
		}
		for _, b := range c.extra {
			t.Logf("extra daemon pid %d output (tail):\n%s", b.PID, daemontest.Tail(b.Logs(), clusterLogTail))
		}
	}
}

// stopParallel SIGTERMs every process still running at once and waits for
// each to exit with status 0.
func stopParallel(procs []*Broker) []error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, b := range procs {
		if b.stopped {
			continue
		}
		b.stopped = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Daemon.Stop(stopTimeout); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("ringbrokerd pid %d (%s): %w", b.PID, b.Addr, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// useTLS makes the test reach the nodes' client listeners over TLS with
// cfg (their only broker listener is SSL or SASL_SSL): the readiness probe
// and each node's client (with more options: SASL). Call it before start.
func (c *testCluster) useTLS(t *testing.T, cfg *tls.Config, more ...kgo.Opt) {
	t.Helper()
	c.clientTLS = cfg
	for _, n := range c.nodes {
		n.cl.Close()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.addr()), kgo.DialTimeout(2 * time.Second), kgo.RequestRetries(0),
			kgo.RetryTimeout(time.Second), kgo.DialTLSConfig(cfg.Clone())}, more...)...)
		if err != nil {
			t.Fatal(err)
		}
		n.cl = cl
	}
}

// probe is the readiness check of a node's client listener.
func (c *testCluster) probe(addr string) error {
	if c.clientTLS != nil {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, c.clientTLS.Clone()) // the timeout covers the handshake
		if err != nil {
			return err
		}
		defer conn.Close()
		return apiVersionsOn(conn, 1, time.Second)
	}
	return probeApiVersions(addr, time.Second)
}

// node returns the member with this id.
func (c *testCluster) node(id int32) *clusterNode {
	if id < 1 || int(id) > len(c.nodes) {
		return nil
	}
	return c.nodes[id-1]
}

// props is the server.properties of node n.
func (c *testCluster) props(n *clusterNode) map[string]string {
	props := map[string]string{
		"process.roles":                    "broker,controller",
		"node.id":                          strconv.Itoa(int(n.id)),
		"cluster.id":                       c.clusterID,
		"controller.quorum.voters":         c.voters,
		"listeners":                        fmt.Sprintf("PLAINTEXT://%s,CONTROLLER://%s", n.addr(), n.ctlAddr()),
		"controller.listener.names":        "CONTROLLER",
		"listener.security.protocol.map":   "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"broker.session.timeout.ms":        strconv.Itoa(clusterSessionTimeoutMs),
		"broker.heartbeat.interval.ms":     "500",
		"metrics.listener":                 "",
		"log.dirs":                         n.dir,
		"io.backend":                       c.backend,
		"num.partitions":                   "3",
		"auto.create.topics.enable":        "false",
		"group.initial.rebalance.delay.ms": gcBrokerProps["group.initial.rebalance.delay.ms"],
	}
	for k, v := range c.moreProps {
		props[k] = v
	}
	if c.nodeProps != nil {
		for k, v := range c.nodeProps(n) {
			props[k] = v
		}
	}
	if c.editProps != nil {
		c.editProps(n, props)
	}
	return props
}

// startDaemon starts one ringbrokerd with conf, its client listener at
// host:port, and waits until that answers ApiVersions. The caller stops it.
func startDaemon(t *testing.T, backend, host string, port int, conf map[string]string) *Broker {
	t.Helper()
	d, err := daemontest.Start(daemontest.Options{
		Argv:   []string{daemonPath},
		Port:   port,
		Config: conf, ConfigPath: filepath.Join(t.TempDir(), "server.properties"), ConfigHeader: "written by tests/integration (cluster)",
		Dir:            t.TempDir(),
		OutputBytesMax: logCaptureBytesMax,
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	b := &Broker{Daemon: d, Dir: conf["log.dirs"], Backend: backend}
	if err := b.WaitReady(startTimeout, func(addr string) error { return probeApiVersions(addr, time.Second) }); err != nil {
		_, _ = d.Stop(stopTimeout)
		b.stopped = true
		t.Fatalf("ringbrokerd (%s) not ready on %s within %v: %v\nconfig:\n%s\noutput:\n%s", backend, d.Addr, startTimeout, err, d.Config,
			daemontest.Tail(d.Logs(), clusterLogTail))
	}
	return b
}

// launch starts node n's process (n must be down) without waiting for it.
func (c *testCluster) launch(n *clusterNode) (*daemontest.Daemon, error) {
	if n.proc != nil {
		return nil, fmt.Errorf("node %d already running (pid %d)", n.id, n.proc.PID)
	}
	argv := []string{daemonPath}
	if c.wrap != nil {
		argv = append(c.wrap(n), daemonPath)
	}
	var waitFree []string // a restart: the last incarnation's listeners must be gone
	if len(n.past) > 0 {
		waitFree = []string{n.addr(), n.ctlAddr()}
	}
	d, err := daemontest.Start(daemontest.Options{
		Argv:     argv,
		Port:     n.port,
		WaitFree: waitFree,
		Config:   c.props(n), ConfigPath: filepath.Join(n.confDir, "server.properties"), ConfigHeader: "written by tests/integration (cluster)",
		Dir:            n.confDir,
		OutputBytesMax: logCaptureBytesMax,
	})
	if err != nil {
		return nil, err
	}
	d.Addr = n.addr()
	n.proc = &Broker{Daemon: d, Dir: n.dir, Backend: c.backend}
	n.past = append(n.past, n.proc)
	return d, nil
}

// startNode starts node n (which must be down) and waits until its client port
// answers; it does not wait for it to join (waitReady does).
func (c *testCluster) startNode(t *testing.T, n *clusterNode) {
	t.Helper()
	c.startNodes(t, n)
}

// startNodes starts the given nodes at once (a lone voter cannot elect itself)
// and waits until each answers ApiVersions.
func (c *testCluster) startNodes(t *testing.T, nodes ...*clusterNode) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for _, n := range nodes {
		if n.crashed {
			c.crashRestarted, n.crashed = append(c.crashRestarted, n), false
		}
		d, err := c.launch(n)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.WaitReady(startTimeout, c.probe); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("node %d (%s) not ready on %s within %v: %v", n.id, c.backend, d.Addr, startTimeout, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(strings.Join(errs, "\n"))
	}
}

// start starts every node that is down and waits until the cluster is whole.
func (c *testCluster) start(t *testing.T) {
	t.Helper()
	var down []*clusterNode
	for _, n := range c.nodes {
		if !n.up() {
			down = append(down, n)
		}
	}
	c.startNodes(t, down...)
	c.waitReady(t)
}

// kill SIGKILLs node n.
func (c *testCluster) kill(t *testing.T, n *clusterNode) {
	t.Helper()
	n.proc.Kill(t)
	n.proc = nil
	n.crashed = true
}

// stopAll SIGTERMs every running node at once and demands exit status 0.
func (c *testCluster) stopAll(t *testing.T) {
	t.Helper()
	var procs []*Broker
	for _, n := range c.nodes {
		if n.proc != nil {
			procs = append(procs, n.proc)
			n.proc = nil
		}
	}
	for _, err := range stopParallel(procs) {
		t.Errorf("SIGTERM: %v", err)
	}
}

// live returns the running nodes.
func (c *testCluster) live() []*clusterNode {
	var out []*clusterNode
	for _, n := range c.nodes {
		if n.up() {
			out = append(out, n)
		}
	}
	return out
}

// seeds are the client addresses of the running nodes except those with the
// given ids.
func (c *testCluster) seeds(except ...int32) []string {
	var addrs []string
	for _, n := range c.live() {
		if !slices.Contains(except, n.id) {
			addrs = append(addrs, n.addr())
		}
	}
	return addrs
}

// A seedClient refreshes its metadata and retries at the pace of Kafka's
// Java client (retry.backoff.ms 100, doubling up to retry.backoff.max.ms
// 1000), not kgo's (at most one refresh every 5 s, retries backing off to
// 2.5 s): with kgo's, every failover a test waits out (a leader or
// coordinator SIGKILLed, a partition refused under its min.insync.replicas)
// took seconds longer than the cluster did. opts may override both.
const (
	seedClientMetadataMinAge  = 100 * time.Millisecond
	seedClientRetryBackoff    = 100 * time.Millisecond
	seedClientRetryBackoffMax = time.Second
)

// seedClientBackoff is a seedClient's pause before its tries'th retry.
func seedClientBackoff(tries int) time.Duration {
	d := seedClientRetryBackoff
	for i := 1; i < tries && d < seedClientRetryBackoffMax; i++ {
		d *= 2
	}
	return min(d, seedClientRetryBackoffMax)
}

// seedClient is newClient seeded with every address of seeds, with the
// Java client's retry pace (above).
func seedClient(t *testing.T, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(seedClientMetadataMinAge), kgo.RetryBackoffFn(seedClientBackoff)}
	return newClient(t, seeds[0], append(base, opts...)...)
}

// request sends req to node n alone and returns its answer.
func (n *clusterNode) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	seeds := n.cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, errors.New("client has no seed broker")
	}
	ctx, cancel := context.WithTimeout(ctx, clusterRequestTimeout)
	defer cancel()
	resp, err := seeds[0].Request(ctx, req)
	if err != nil && ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		// The connection was to an earlier incarnation of the node: once more
		// on a new one.
		resp, err = seeds[0].Request(ctx, req)
	}
	return resp, err
}

// metadata is node n's answer to Metadata for every topic.
func (n *clusterNode) metadata() (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	resp, err := n.request(context.Background(), req)
	if err != nil {
		return nil, fmt.Errorf("node %d Metadata: %w", n.id, err)
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// waitFor polls cond until it returns nil or timeout passes, then fails the
// test with cond's last error.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			t.Logf("%s: after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(clusterPoll)
	}
}

// brokerIDs lists the brokers of a Metadata answer, sorted.
func brokerIDs(m *kmsg.MetadataResponse) []int32 {
	var ids []int32
	for _, b := range m.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	return ids
}

// checkWhole says whether the running nodes agree the cluster is whole: each
// lists exactly the running nodes at their addresses, names the same running
// node as controller, and every partition it lists has a leader (when
// allLed). It returns that controller.
func (c *testCluster) checkWhole(allLed bool) (int32, error) {
	var want []int32
	for _, n := range c.live() {
		want = append(want, n.id)
	}
	controller := int32(-2)
	for _, n := range c.live() {
		m, err := n.metadata()
		if err != nil {
			return -1, err
		}
		if got := brokerIDs(m); !slices.Equal(got, want) {
			return -1, fmt.Errorf("node %d lists brokers %v, want %v", n.id, got, want)
		}
		for _, b := range m.Brokers {
			if peer := c.node(b.NodeID); peer == nil || b.Host != peer.host || int(b.Port) != peer.port {
				return -1, fmt.Errorf("node %d lists broker %d at %s:%d", n.id, b.NodeID, b.Host, b.Port)
			}
		}
		if !slices.Contains(want, m.ControllerID) {
			return -1, fmt.Errorf("node %d names controller %d, not a running node (%v)", n.id, m.ControllerID, want)
		}
		if controller != -2 && m.ControllerID != controller {
			return -1, fmt.Errorf("nodes disagree on the controller: %d and %d", controller, m.ControllerID)
		}
		controller = m.ControllerID
		if m.ClusterID == nil || *m.ClusterID != c.clusterID {
			return -1, fmt.Errorf("node %d reports cluster id %v, want %q", n.id, m.ClusterID, c.clusterID)
		}
		if allLed {
			for _, tp := range m.Topics {
				for _, p := range tp.Partitions {
					if p.ErrorCode != 0 || p.Leader < 0 {
						return -1, fmt.Errorf("node %d: %s/%d has leader %d, error %s", n.id, *tp.Topic, p.Partition, p.Leader, codeName(p.ErrorCode))
					}
				}
			}
		}
	}
	return controller, nil
}

// waitReady waits until the running nodes agree the cluster is whole and
// every partition is led; it returns the controller.
func (c *testCluster) waitReady(t *testing.T) int32 {
	t.Helper()
	var controller int32
	waitFor(t, fmt.Sprintf("cluster (%d nodes) whole", len(c.live())), clusterReadyTimeout, func() error {
		var err error
		controller, err = c.checkWhole(true)
		for _, n := range c.crashRestarted {
			if err == nil && n.up() && !strings.Contains(n.proc.Logs(), "registered with the controller") {
				err = fmt.Errorf("node %d, restarted after a SIGKILL, has not registered yet", n.id)
			}
		}
		if err != nil && len(c.crashRestarted) > 0 {
			if _, whole := c.checkWhole(false); whole == nil {
				c.electUnclean()
			}
		}
		if err != nil {
			if stuck := c.inactiveLeader(); stuck != "" {
				return fmt.Errorf("%w; %s", err, stuck)
			}
		}
		return err
	})
	c.crashRestarted = nil
	return controller
}

// electUnclean asks (through the first running node, which forwards it to
// the controller) for an unclean election of every partition without an
// active leader; the answer's per-partition errors are left to the caller's
// next look at the metadata.
func (c *testCluster) electUnclean() {
	live := c.live()
	if len(live) == 0 {
		return
	}
	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType, req.TimeoutMillis = 2, 1, 5000 // Topics nil: every partition
	_, _ = live[0].request(context.Background(), req)
}

// inactiveLeader names a running node whose last quorum leadership never made
// it the active controller (its log says it became leader and applied the
// entries of earlier terms, then no "active controller" line follows), or "".
//
// That was a bug this harness found: the activation raced the quorum's
// status and returned without activating, so every broker registration was
// answered NOT_CONTROLLER until the leadership moved (fixed: leadership
// events are now handled in the quorum loop's order, cluster/controller.go
// leadershipEvents). The check stays, to name the cause if it comes back.
func (c *testCluster) inactiveLeader() string {
	for _, n := range c.live() {
		logs := n.proc.Logs()
		ready := strings.LastIndex(logs, "leader applied every entry of previous terms")
		if ready < 0 {
			continue
		}
		if active := strings.LastIndex(logs, "active controller"); active < ready {
			if lost := strings.LastIndex(logs, "raft leader changed"); lost > ready {
				continue
			}
			return fmt.Sprintf("BUG: node %d leads the metadata quorum but never became the active controller "+
				"(cluster/controller.go activateAsync reads Status().LeaderReady before quorum/node_loop.go publishes it)", n.id)
		}
	}
	return ""
}

// controller is the active controller the running nodes agree on.
func (c *testCluster) controller(t *testing.T) *clusterNode {
	t.Helper()
	id, err := c.checkWhole(false)
	if err != nil {
		t.Fatalf("no agreed controller: %v", err)
	}
	return c.node(id)
}

// nonController returns a running node that is not the controller.
func (c *testCluster) nonController(t *testing.T) *clusterNode {
	t.Helper()
	ctl := c.controller(t)
	for _, n := range c.live() {
		if n != ctl {
			return n
		}
	}
	t.Fatal("no running node besides the controller")
	return nil
}

// createTopicVia sends CreateTopics for one topic to node n alone (forwarded
// to the controller unless n is it) and retries while the controller is
// moving (NOT_CONTROLLER, a request error), up to timeout. It returns the
// round trip of the successful attempt.
func createTopicVia(t *testing.T, n *clusterNode, topic string, partitions int32, configs map[string]string, timeout time.Duration) time.Duration {
	t.Helper()
	var took time.Duration
	waitFor(t, fmt.Sprintf("CreateTopics %s via node %d", topic, n.id), timeout, func() error {
		var err error
		took, err = tryCreateTopic(n, topic, partitions, configs)
		return err
	})
	return took
}

// tryCreateTopic is one CreateTopics attempt through n; TOPIC_ALREADY_EXISTS
// after an attempt whose answer was lost counts as success (the caller then
// checks the topic itself).
func tryCreateTopic(n *clusterNode, topic string, partitions int32, configs map[string]string) (time.Duration, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(clusterRequestTimeout / time.Millisecond)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := configs[k]
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, &v
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	resp, err := n.request(context.Background(), req)
	took := time.Since(start)
	if err != nil {
		return took, err
	}
	r := resp.(*kmsg.CreateTopicsResponse)
	if len(r.Topics) != 1 {
		return took, fmt.Errorf("CreateTopics answered %d topics", len(r.Topics))
	}
	if code := r.Topics[0].ErrorCode; code != 0 {
		err := kerr.ErrorForCode(code)
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return took, nil
		}
		msg := ""
		if r.Topics[0].ErrorMessage != nil {
			msg = *r.Topics[0].ErrorMessage
		}
		return took, fmt.Errorf("CreateTopics %s via node %d: %v %s", topic, n.id, err, msg)
	}
	return took, nil
}

// topicView is one node's view of one topic: each partition's leader, replicas,
// offline replicas and error code.
type topicView struct {
	id         [16]byte
	partitions map[int32]kmsg.MetadataResponseTopicPartition
}

// topicsOf indexes a Metadata answer by topic name.
func topicsOf(m *kmsg.MetadataResponse) map[string]topicView {
	out := map[string]topicView{}
	for _, tp := range m.Topics {
		if tp.Topic == nil || tp.ErrorCode != 0 {
			continue
		}
		v := topicView{id: tp.TopicID, partitions: map[int32]kmsg.MetadataResponseTopicPartition{}}
		for _, p := range tp.Partitions {
			v.partitions[p.Partition] = p
		}
		out[*tp.Topic] = v
	}
	return out
}

// waitTopicsEverywhere waits until every running node lists each topic of want
// with its partition count (and the same topic id on every node).
func (c *testCluster) waitTopicsEverywhere(t *testing.T, want map[string]int32, timeout time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d topics visible on every node", len(want)), timeout, func() error {
		ids := map[string][16]byte{}
		for _, n := range c.live() {
			m, err := n.metadata()
			if err != nil {
				return err
			}
			got := topicsOf(m)
			for name, parts := range want {
				v, ok := got[name]
				if !ok {
					return fmt.Errorf("node %d does not list %s", n.id, name)
				}
				if int32(len(v.partitions)) != parts {
					return fmt.Errorf("node %d lists %s with %d partitions, want %d", n.id, name, len(v.partitions), parts)
				}
				if id, ok := ids[name]; ok && id != v.id {
					return fmt.Errorf("nodes disagree on the id of %s", name)
				}
				ids[name] = v.id
			}
		}
		return nil
	})
}

// describeTopicConfig asks node n alone for topic's config and returns the
// value of each key in keys (absent keys missing).
func describeTopicConfig(n *clusterNode, topic string, keys ...string) (map[string]string, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, keys
	req.Resources = append(req.Resources, r)
	resp, err := n.request(context.Background(), req)
	if err != nil {
		return nil, err
	}
	dr := resp.(*kmsg.DescribeConfigsResponse)
	if len(dr.Resources) != 1 {
		return nil, fmt.Errorf("DescribeConfigs answered %d resources", len(dr.Resources))
	}
	if code := dr.Resources[0].ErrorCode; code != 0 {
		return nil, fmt.Errorf("DescribeConfigs %s via node %d: %s", topic, n.id, codeName(code))
	}
	out := map[string]string{}
	for _, cfg := range dr.Resources[0].Configs {
		if cfg.Value != nil {
			out[cfg.Name] = *cfg.Value
		}
	}
	return out, nil
}

// waitConfigsEverywhere waits until every running node describes topic's
// configs as want.
func (c *testCluster) waitConfigsEverywhere(t *testing.T, topic string, want map[string]string, timeout time.Duration) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	waitFor(t, fmt.Sprintf("configs of %s the same on every node", topic), timeout, func() error {
		for _, n := range c.live() {
			got, err := describeTopicConfig(n, topic, keys...)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if got[k] != want[k] {
					return fmt.Errorf("node %d describes %s %s=%q, want %q", n.id, topic, k, got[k], want[k])
				}
			}
		}
		return nil
	})
}

// alterTopicConfigVia sets topic configs with IncrementalAlterConfigs sent to
// node n alone (forwarded to the controller).
func alterTopicConfigVia(n *clusterNode, topic string, set map[string]string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	for k, v := range set {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value, cfg.Op = k, &v, kmsg.IncrementalAlterConfigOpSet
		r.Configs = append(r.Configs, cfg)
	}
	req.Resources = append(req.Resources, r)
	resp, err := n.request(context.Background(), req)
	if err != nil {
		return err
	}
	ir := resp.(*kmsg.IncrementalAlterConfigsResponse)
	if len(ir.Resources) != 1 {
		return fmt.Errorf("IncrementalAlterConfigs answered %d resources", len(ir.Resources))
	}
	if code := ir.Resources[0].ErrorCode; code != 0 {
		return fmt.Errorf("IncrementalAlterConfigs %s via node %d: %s", topic, n.id, codeName(code))
	}
	return nil
}

// deleteTopicVia sends DeleteTopics for topic (by name) to node n alone.
func deleteTopicVia(n *clusterNode, topic string) error {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = int32(clusterRequestTimeout / time.Millisecond)
	req.TopicNames = []string{topic}
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = &topic
	req.Topics = append(req.Topics, rt)
	resp, err := n.request(context.Background(), req)
	if err != nil {
		return err
	}
	dr := resp.(*kmsg.DeleteTopicsResponse)
	if len(dr.Topics) != 1 {
		return fmt.Errorf("DeleteTopics answered %d topics", len(dr.Topics))
	}
	if code := dr.Topics[0].ErrorCode; code != 0 {
		return fmt.Errorf("DeleteTopics %s via node %d: %s", topic, n.id, codeName(code))
	}
	return nil
}

// partitionOwners maps each partition of topic to its replicas (the first is
// the leader under replication factor 1), as node n sees them.
func partitionOwners(t *testing.T, n *clusterNode, topic string) map[int32][]int32 {
	t.Helper()
	m, err := n.metadata()
	if err != nil {
		t.Fatal(err)
	}
	v, ok := topicsOf(m)[topic]
	if !ok {
		t.Fatalf("node %d does not list %s", n.id, topic)
	}
	out := map[int32][]int32{}
	for p, d := range v.partitions {
		out[p] = d.Replicas
	}
	return out
}

// partitionDirs lists the entries of dir that belong to topic's partitions
// (topic-N, and the renamed forms a deletion may leave on the way).
func partitionDirs(t *testing.T, dir, topic string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read data dir: %v", err)
	}
	var out []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), topic+"-")
		if !ok {
			continue
		}
		digits := rest
		if i := strings.IndexAny(rest, ".-"); i >= 0 {
			digits = rest[:i]
		}
		if _, err := strconv.Atoi(digits); err == nil {
			out = append(out, e.Name())
		}
	}
	return out
}
