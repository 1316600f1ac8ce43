package harness

// The three-node loopback cluster of the replication benchmark
// (replication.go): ringbrokerd on 127.0.0.1, .2 and .3, each a broker and a
// voter of the metadata quorum, with a client and a controller port free on
// its address when the cluster is made, a data dir kept across restarts, and
// each incarnation's output in its own file. Every process is started here
// and stopped here by its PID; nothing else is signalled.
//
// The node settings are those of tests/integration's cluster harness
// (broker.session.timeout.ms=3000, heartbeats every 500 ms), so a failover
// measured here is comparable with what those tests log.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

const (
	// replSessionTimeoutMs is broker.session.timeout.ms: how long a killed
	// node stays unfenced, the floor of a failover.
	replSessionTimeoutMs = 3000
	// replStartTimeout bounds one node answering ApiVersions.
	replStartTimeout = 30 * time.Second
	// replReadyTimeout bounds the cluster (re)forming and an ISR reaching a
	// wanted set: a fail-safe on a loaded machine, not a speed check.
	replReadyTimeout = 60 * time.Second
	// replRequestTimeout bounds one request to one node.
	replRequestTimeout = 10 * time.Second
	// replStopTimeout is the SIGTERM grace before a SIGKILL.
	replStopTimeout = 20 * time.Second
	// replPoll is the pause between two checks of a condition.
	replPoll = 50 * time.Millisecond
)

// replNode is one member: addresses and data dir (fixed for the cluster's
// life) and its current process.
type replNode struct {
	id      int32
	host    string
	port    int
	ctlPort int
	dir     string
	workDir string
	starts  int
	proc    *daemontest.Daemon // nil when down
	cl      *kgo.Client        // seeded with this node alone
}

func (n *replNode) addr() string { return net.JoinHostPort(n.host, strconv.Itoa(n.port)) }

// replCluster is three nodes of one cluster.id on one backend.
type replCluster struct {
	bin     string
	backend string
	id      string
	voters  string
	nodes   []*replNode
	// extra are server.properties overrides for every node.
	extra map[string]string
}

func freePortOn(host string) (int, error) {
	port, err := daemontest.FreePortOn(host)
	if err != nil {
		return 0, fmt.Errorf("free port on %s: %w (the benchmark needs 127.0.0.1-3 on lo)", host, err)
	}
	return port, nil
}

// newReplCluster makes (does not start) a cluster under workDir.
func newReplCluster(bin, backend, workDir string, extra map[string]string) (*replCluster, error) {
	c := &replCluster{bin: bin, backend: backend, id: "replbench-" + backend, extra: extra}
	var voters []string
	for i := 1; i <= 3; i++ {
		host := "127.0.0." + strconv.Itoa(i)
		port, err := freePortOn(host)
		if err != nil {
			return nil, err
		}
		ctl, err := freePortOn(host)
		if err != nil {
			return nil, err
		}
		n := &replNode{id: int32(i), host: host, port: port, ctlPort: ctl,
			workDir: filepath.Join(workDir, fmt.Sprintf("%s-node%d", backend, i))}
		n.dir = filepath.Join(n.workDir, "data")
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return nil, err
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.addr()), kgo.DialTimeout(2*time.Second),
			kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
		if err != nil {
			return nil, err
		}
		n.cl = cl
		c.nodes = append(c.nodes, n)
		voters = append(voters, fmt.Sprintf("%d@%s", n.id, net.JoinHostPort(host, strconv.Itoa(ctl))))
	}
	c.voters = strings.Join(voters, ",")
	return c, nil
}

func (c *replCluster) node(id int32) *replNode {
	if id < 1 || int(id) > len(c.nodes) {
		return nil
	}
	return c.nodes[id-1]
}

func (c *replCluster) props(n *replNode) map[string]string {
	p := map[string]string{
		"process.roles":                  "broker,controller",
		"node.id":                        strconv.Itoa(int(n.id)),
		"cluster.id":                     c.id,
		"controller.quorum.voters":       c.voters,
		"listeners":                      fmt.Sprintf("PLAINTEXT://%s,CONTROLLER://%s:%d", n.addr(), n.host, n.ctlPort),
		"controller.listener.names":      "CONTROLLER",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"broker.session.timeout.ms":      strconv.Itoa(replSessionTimeoutMs),
		"broker.heartbeat.interval.ms":   "500",
		"metrics.listener":               "",
		"log.dirs":                       n.dir,
		"io.backend":                     c.backend,
		"auto.create.topics.enable":      "false",
	}
	for k, v := range c.extra {
		p[k] = v
	}
	return p
}

// startNodes starts the given nodes at once (a lone voter cannot elect
// itself) and waits until each answers ApiVersions.
func (c *replCluster) startNodes(nodes ...*replNode) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		if n.proc != nil {
			return fmt.Errorf("node %d already running (pid %d)", n.id, n.proc.PID)
		}
		n.starts++
		var waitFree []string // a restart: the last process's listeners must be gone
		if n.starts > 1 {
			waitFree = []string{n.addr(), net.JoinHostPort(n.host, strconv.Itoa(n.ctlPort))}
		}
		d, err := daemontest.Start(daemontest.Options{
			Argv: []string{c.bin}, Port: n.port, WaitFree: waitFree,
			Config: c.props(n), ConfigPath: filepath.Join(n.workDir, "server.properties"),
			ConfigHeader: "written by the replication benchmark",
			Dir:          n.workDir, LogFile: filepath.Join(n.workDir, fmt.Sprintf("output-%d.log", n.starts)),
			OwnProcessGroup: true,
		})
		if err != nil {
			return err
		}
		d.Addr = n.addr()
		n.proc = d
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.WaitReady(replStartTimeout, nil); err != nil {
				errs[i] = fmt.Errorf("node %d (%s, pid %d): %v: %s", n.id, c.backend, d.PID, err, logTail(d.Logs()))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopNode SIGTERMs node n by its PID and waits for it.
func (c *replCluster) stopNode(n *replNode) error {
	if n.proc == nil {
		return nil
	}
	_, err := n.proc.Stop(replStopTimeout)
	n.proc = nil
	return err
}

// killNode SIGKILLs node n by its PID.
func (c *replCluster) killNode(n *replNode) error {
	if n.proc == nil {
		return fmt.Errorf("node %d is not running", n.id)
	}
	err := n.proc.Kill(10 * time.Second)
	n.proc = nil
	return err
}

// stopAll SIGTERMs every running node at once (a node stopping alone after
// its peers left waits out its controlled-shutdown grace) and closes the
// clients.
func (c *replCluster) stopAll() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n.proc == nil {
			continue
		}
		d := n.proc
		n.proc = nil
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = d.Stop(replStopTimeout) // the exit status is not what is measured here
		}()
	}
	wg.Wait()
	for _, n := range c.nodes {
		n.cl.Close()
	}
}

func (c *replCluster) live() []*replNode {
	var out []*replNode
	for _, n := range c.nodes {
		if n.proc != nil {
			out = append(out, n)
		}
	}
	return out
}

func (c *replCluster) seeds() []string {
	var out []string
	for _, n := range c.live() {
		out = append(out, n.addr())
	}
	return out
}

// request sends req to node n alone.
func (n *replNode) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	seeds := n.cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, errors.New("client has no seed broker")
	}
	ctx, cancel := context.WithTimeout(ctx, replRequestTimeout)
	defer cancel()
	return seeds[0].Request(ctx, req)
}

func (n *replNode) metadata(ctx context.Context) (*kmsg.MetadataResponse, error) {
	resp, err := n.request(ctx, kmsg.NewPtrMetadataRequest())
	if err != nil {
		return nil, fmt.Errorf("node %d Metadata: %w", n.id, err)
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// whole reports whether every running node lists exactly the running nodes
// and names the same running controller; it returns that controller.
func (c *replCluster) whole(ctx context.Context) (int32, error) {
	var want []int32
	for _, n := range c.live() {
		want = append(want, n.id)
	}
	controller := int32(-2)
	for _, n := range c.live() {
		m, err := n.metadata(ctx)
		if err != nil {
			return -1, err
		}
		var got []int32
		for _, b := range m.Brokers {
			got = append(got, b.NodeID)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return -1, fmt.Errorf("node %d lists brokers %v, want %v", n.id, got, want)
		}
		if !slices.Contains(want, m.ControllerID) || (controller != -2 && m.ControllerID != controller) {
			return -1, fmt.Errorf("node %d names controller %d", n.id, m.ControllerID)
		}
		controller = m.ControllerID
	}
	return controller, nil
}

// pollUntil calls cond every replPoll until it returns nil, ctx ends or
// timeout passes; it returns how long that took and cond's last error.
func pollUntil(ctx context.Context, timeout time.Duration, cond func() error) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := cond()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("not within %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(replPoll):
		}
	}
}

// createTopic creates a one-partition topic with this replica assignment
// (the first replica is the preferred leader) through any running node,
// retrying while the controller moves, and waits until every running node
// sees it led.
func (c *replCluster) createTopic(ctx context.Context, topic string, replicas []int32, configs map[string]string) error {
	_, err := pollUntil(ctx, replReadyTimeout, func() error {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = int32(replRequestTimeout / time.Millisecond)
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = 0, replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		for k, v := range configs {
			cfg := kmsg.NewCreateTopicsRequestTopicConfig()
			cfg.Name, cfg.Value = k, &v
			rt.Configs = append(rt.Configs, cfg)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := c.live()[0].request(ctx, req)
		if err != nil {
			return err
		}
		r := resp.(*kmsg.CreateTopicsResponse)
		if len(r.Topics) != 1 {
			return fmt.Errorf("CreateTopics answered %d topics", len(r.Topics))
		}
		if err := kerr.ErrorForCode(r.Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			msg := ""
			if r.Topics[0].ErrorMessage != nil {
				msg = *r.Topics[0].ErrorMessage
			}
			return fmt.Errorf("CreateTopics %s: %v %s", topic, err, msg)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = pollUntil(ctx, replReadyTimeout, func() error {
		_, err := c.leaderOf(ctx, topic)
		return err
	})
	return err
}

// partitionState is partition 0 of topic as every running node sees it: its
// leader (all must agree, and it must be running) and its ISR.
func (c *replCluster) partitionState(ctx context.Context, topic string) (leader int32, isr []int32, err error) {
	leader = -2
	for _, n := range c.live() {
		m, err := n.metadata(ctx)
		if err != nil {
			return -1, nil, err
		}
		var found bool
		for _, t := range m.Topics {
			if t.Topic == nil || *t.Topic != topic {
				continue
			}
			for _, p := range t.Partitions {
				if p.Partition != 0 {
					continue
				}
				found = true
				if p.ErrorCode != 0 || p.Leader < 0 {
					return -1, nil, fmt.Errorf("node %d: %s/0 leader %d, error %v", n.id, topic, p.Leader, kerr.ErrorForCode(p.ErrorCode))
				}
				if leader != -2 && p.Leader != leader {
					return -1, nil, fmt.Errorf("nodes disagree on the leader of %s/0: %d and %d", topic, leader, p.Leader)
				}
				leader = p.Leader
				isr = slices.Sorted(slices.Values(p.ISR))
			}
		}
		if !found {
			return -1, nil, fmt.Errorf("node %d does not list %s/0", n.id, topic)
		}
	}
	if l := c.node(leader); l == nil || l.proc == nil {
		return -1, nil, fmt.Errorf("%s/0 led by node %d, which is not running", topic, leader)
	}
	return leader, isr, nil
}

func (c *replCluster) leaderOf(ctx context.Context, topic string) (int32, error) {
	l, _, err := c.partitionState(ctx, topic)
	return l, err
}

// waitISR waits until every running node reports the ISR of topic/0 as want.
func (c *replCluster) waitISR(ctx context.Context, topic string, want []int32) (time.Duration, error) {
	want = slices.Sorted(slices.Values(want))
	return pollUntil(ctx, replReadyTimeout, func() error {
		_, isr, err := c.partitionState(ctx, topic)
		if err != nil {
			return err
		}
		if !slices.Equal(isr, want) {
			return fmt.Errorf("ISR of %s/0 is %v, want %v", topic, isr, want)
		}
		return nil
	})
}

// logBytes is the sum of the sizes of partition 0's *.log segment files in
// node n's data dir. Segment files are not preallocated (only the indexes
// are), and a follower appends the leader's batches unchanged, so a
// caught-up follower holds exactly the leader's bytes.
func (n *replNode) logBytes(topic string) (int64, error) {
	dir := filepath.Join(n.dir, topic+"-0")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	var sum int64
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // rolled or removed between the listing and the stat
			}
			return 0, err
		}
		sum += info.Size()
	}
	return sum, nil
}
