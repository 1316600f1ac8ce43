//go:build linux && clusterlong

package integration

// Exactly-once under crashes in a cluster (issue 18; opt-in: make
// cluster-long, build tag clusterlong): TestEOSUnderCrashes's
// consume-transform-produce loop (franz-go GroupTransactSession, "in-<i>"
// to "out-<i>" on the same partition, the group's input offsets committed
// in each transaction) on a three-node cluster whose topics all have
// replication factor 3 and min.insync.replicas 2 (__transaction_state and
// __consumer_offsets by the broker's defaults). Seeded kills SIGKILL the
// node the client has just sent a request to, so which node dies follows
// from the request:
//
//   - EndTxn (written, or its answer read: the markers are then being
//     written to the leaders), and at transaction.version 1
//     AddPartitionsToTxn and AddOffsetsToTxn: the transaction
//     coordinator's broker (the leader of the id's __transaction_state
//     partition); another replica takes the partition over and must load
//     and finish what the dead one left;
//   - Produce: the leader of an output partition, with the transaction's
//     records on it, not yet committed;
//   - TxnOffsetCommit (written, or answered): the group coordinator's
//     broker, holding the pending transactional offsets.
//
// The first kill of a schedule is always one of the coordinator's and the
// second a Produce one; the others are drawn from all of them. A killed
// node is restarted at once on the same data dir and ports, and the next
// kill waits until it has registered again and every partition is back to
// three in-sync replicas (a second node down would leave fewer than
// min.insync.replicas). The loop does not start a transaction past the next
// kill's threshold while a node is still coming back, so every kill lands
// in a transaction. About half the kills (seeded) take the client down too,
// as in TestEOSUnderCrashes.
//
// At the end the group's committed offsets must be the input's end offsets
// and a read_committed consumer must see every "out-<i>" exactly once, in
// input order per partition, and no aborted record (eosVerify).
//
// Environment:
//
//	RINGBROKER_CLUSTER_EOS_SEED   replay this seed (printed by every run)
//	RINGBROKER_CLUSTER_EOS_KILLS  kills per backend (default 3)
//	RINGBROKER_CLUSTER_EOS_CLIENT_LOG  show franz-go's log (the tail) on success too

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// clusterEOSKillsCoordinator are the requests whose destination is the
// transaction coordinator's broker (24 and 25 only at transaction.version 1:
// a v2 client sends neither); clusterEOSKillsLeader the one whose
// destination is a partition leader of the output topic; clusterEOSKillsGroup
// those sent to the group coordinator's broker.
var (
	clusterEOSKillsCoordinator = []eosKillRequest{{26, false, "EndTxn"}, {26, true, "EndTxn's answer"},
		{24, false, "AddPartitionsToTxn"}, {25, false, "AddOffsetsToTxn"}}
	clusterEOSKillsLeader = []eosKillRequest{{0, false, "Produce"}}
	clusterEOSKillsGroup  = []eosKillRequest{{28, false, "TxnOffsetCommit"}, {28, true, "TxnOffsetCommit's answer"}}
)

func TestClusterEOSUnderCrashes(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RINGBROKER_CLUSTER_EOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RINGBROKER_CLUSTER_EOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	kills := 3
	if s := os.Getenv("RINGBROKER_CLUSTER_EOS_KILLS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 2 || v > 8 {
			t.Fatalf("RINGBROKER_CLUSTER_EOS_KILLS=%q: want 2 to 8", s)
		}
		kills = v
	}
	txnVersion := eosTxnVersion(seed)
	t.Logf("seed %d (replay with RINGBROKER_CLUSTER_EOS_SEED=%d), %d kills, transaction.version %d", seed, seed, kills, txnVersion)
	forEachBackend(t, func(t *testing.T, backend string) {
		testClusterEOSUnderCrashes(t, backend, txnVersion, clusterEOSSchedule(seed, kills, txnVersion))
	})
}

// clusterEOSSchedule draws the kills from seed: progress thresholds between
// 10% and 70% of the input, sorted; the first kill one of the transaction
// coordinator's requests, the second a Produce, the rest any of them.
func clusterEOSSchedule(seed uint64, kills, txnVersion int) []eosKill {
	r := rand.New(rand.NewPCG(seed, 28))
	coordinator := clusterEOSKillsCoordinator
	if txnVersion >= 2 {
		coordinator = coordinator[:2]
	}
	all := slices.Concat(coordinator, clusterEOSKillsLeader, clusterEOSKillsGroup)
	var thresholds []int
	for range kills {
		thresholds = append(thresholds, eosRecords/10+r.IntN(eosRecords*6/10))
	}
	slices.Sort(thresholds)
	var out []eosKill
	for i, after := range thresholds {
		from := all
		switch i {
		case 0:
			from = coordinator
		case 1:
			from = clusterEOSKillsLeader
		}
		req := from[r.IntN(len(from))]
		out = append(out, eosKill{afterRecords: after, key: req.key, answer: req.answer, name: req.name, abandon: r.IntN(2) == 0})
	}
	return out
}

// clusterEOSCrasher kills the node a request was sent to when a scheduled
// crash point is reached, and restarts it. During the loop it alone starts
// and stops the cluster's nodes (the hooks run on kgo's connection
// goroutines, the restart on its own).
type clusterEOSCrasher struct {
	t     *testing.T
	c     *testCluster
	kills []eosKill

	mu         sync.Mutex
	stopped    bool // no more kills: the loop is over
	recovering bool // a killed node is not back yet: no kill now
	committed  int
	next       int
	txnCancel  context.CancelFunc
	errs       []error
	done       sync.WaitGroup
	// recovered is closed and replaced when a recovery ends.
	recovered chan struct{}
}

func (c *clusterEOSCrasher) progress(committed int) {
	c.mu.Lock()
	c.committed = committed
	c.mu.Unlock()
}

func (c *clusterEOSCrasher) transaction(cancel context.CancelFunc) {
	c.mu.Lock()
	c.txnCancel = cancel
	c.mu.Unlock()
}

// waitBeforeTransaction blocks (bounded by ctx) while a node is coming
// back and the next kill's threshold is reached: that kill is then armed
// as soon as the cluster is whole, before the next transaction starts.
func (c *clusterEOSCrasher) waitBeforeTransaction(ctx context.Context) {
	for {
		c.mu.Lock()
		wait := c.recovering && !c.stopped && c.next < len(c.kills) && c.committed >= c.kills[c.next].afterRecords
		ch := c.recovered
		c.mu.Unlock()
		if !wait {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (c *clusterEOSCrasher) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		c.maybeKill(meta.NodeID, key, false)
	}
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (c *clusterEOSCrasher) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		c.maybeKill(meta.NodeID, key, true)
	}
}

func (c *clusterEOSCrasher) maybeKill(nodeID int32, key int16, answer bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.recovering || c.next >= len(c.kills) {
		return
	}
	k := c.kills[c.next]
	if c.committed < k.afterRecords || key != k.key || answer != k.answer {
		return
	}
	n := c.c.node(nodeID)
	if n == nil || !n.up() {
		return
	}
	c.next++
	c.recovering = true
	b := n.proc
	n.proc, n.crashed = nil, true
	b.stopped = true
	if err := b.Daemon.Kill(stopTimeout); err != nil {
		c.errs = append(c.errs, fmt.Errorf("SIGKILL node %d: %w", nodeID, err))
		return
	}
	how := ""
	if k.abandon {
		c.txnCancel()
		how = "; the client is abandoned too"
	}
	c.t.Logf("kill %d: SIGKILL node %d right after the client handled %s there, %d input records committed%s",
		c.next, nodeID, k.name, c.committed, how)
	c.done.Add(1)
	go c.restart(n)
}

// restart starts n again and waits until it has registered and every
// partition has three in-sync replicas.
func (c *clusterEOSCrasher) restart(n *clusterNode) {
	defer c.done.Done()
	start := time.Now()
	err := c.bringBack(n)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.errs = append(c.errs, err)
	} else {
		c.t.Logf("node %d restarted, registered and back in every ISR in %v", n.id, time.Since(start).Round(time.Millisecond))
	}
	c.recovering = false
	close(c.recovered)
	c.recovered = make(chan struct{})
}

func (c *clusterEOSCrasher) bringBack(n *clusterNode) error {
	c.mu.Lock()
	n.crashed = false
	d, err := c.c.launch(n)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("restart node %d: %w", n.id, err)
	}
	if err := d.WaitReady(startTimeout, func(addr string) error { return probeApiVersions(addr, time.Second) }); err != nil {
		return fmt.Errorf("node %d not ready within %v: %w", n.id, startTimeout, err)
	}
	deadline := time.Now().Add(clusterReadyTimeout)
	for {
		err := clusterEOSWhole(c.c, n, d)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d restarted but not whole within %v: %w", n.id, clusterReadyTimeout, err)
		}
		time.Sleep(clusterPoll)
	}
}

// clusterEOSWhole says whether restarted has registered again and every
// running node lists every partition with a leader and all three replicas
// in sync.
func clusterEOSWhole(c *testCluster, restarted *clusterNode, d *daemontest.Daemon) error {
	if !strings.Contains(d.Logs(), "registered with the controller") {
		return fmt.Errorf("node %d has not registered yet", restarted.id)
	}
	for _, n := range c.nodes {
		m, err := n.metadata()
		if err != nil {
			return err
		}
		for _, tp := range m.Topics {
			for _, p := range tp.Partitions {
				if p.Leader < 0 || len(p.ISR) != len(c.nodes) {
					return fmt.Errorf("node %d: %s/%d led by %d, ISR %v", n.id, *tp.Topic, p.Partition, p.Leader, p.ISR)
				}
			}
		}
	}
	return nil
}

// stop ends the kills, waits for a restart in progress and returns the
// crasher's errors.
func (c *clusterEOSCrasher) stop() error {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.done.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs...)
}

func (c *clusterEOSCrasher) killed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// createReplicatedTopic creates topic on every node with replication factor
// 3 and min.insync.replicas 2, through n (forwarded to the controller).
func createReplicatedTopic(t *testing.T, c *testCluster, n *clusterNode, topic string, partitions int32) {
	t.Helper()
	waitFor(t, "create "+topic, clusterStepTimeout, func() error {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = int32(clusterRequestTimeout / time.Millisecond)
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 3
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		v := "2"
		cfg.Name, cfg.Value = "min.insync.replicas", &v
		rt.Configs = append(rt.Configs, cfg)
		req.Topics = append(req.Topics, rt)
		resp, err := n.request(context.Background(), req)
		if err != nil {
			return err
		}
		code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
		if code != 0 && code != 36 { // TOPIC_ALREADY_EXISTS: an earlier attempt's answer was lost
			return fmt.Errorf("CreateTopics %s: %s", topic, codeName(code))
		}
		return nil
	})
	c.waitTopicsEverywhere(t, map[string]int32{topic: partitions}, clusterStepTimeout)
}

func testClusterEOSUnderCrashes(t *testing.T, backend string, txnVersion int, kills []eosKill) {
	for i, k := range kills {
		t.Logf("kill %d scheduled after %d committed input records, on the next %s (abandoning the client: %v)", i+1, k.afterRecords, k.name, k.abandon)
	}
	const (
		input  = "ceos-in"
		output = "ceos-out"
		group  = "ceos-group"
		txnID  = "ceos-transform"
		budget = 5 * time.Minute
	)
	c := newTestCluster(t, backend)
	c.moreProps = map[string]string{
		"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
		"transaction.version":                      strconv.Itoa(txnVersion),
		"transaction.state.log.replication.factor": "3",
		"transaction.state.log.min.isr":            "2",
		"offsets.topic.replication.factor":         "3",
		// Fewer internal partitions: every one of them must be back in
		// sync before the next kill.
		"transaction.state.log.num.partitions": "3",
		"offsets.topic.num.partitions":         "3",
	}
	c.start(t)
	via := c.nonController(t)
	createReplicatedTopic(t, c, via, input, eosPartitions)
	createReplicatedTopic(t, c, via, output, eosPartitions)
	seeds := c.seeds()
	addr := seeds[0]
	in := make([]sentRecord, eosRecords)
	for i := range in {
		in[i] = sentRecord{partition: int32(i % eosPartitions), value: []byte("in-" + strconv.Itoa(i))}
	}
	produceSync(t, seedClient(t, seeds), input, in)
	inEnds := endOffsets(t, addr, input)

	clientLog := daemontest.NewOutputBuffer(8 << 20)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("RINGBROKER_CLUSTER_EOS_CLIENT_LOG") != "" {
			t.Logf("franz-go log:\n%s", daemontest.Tail(clientLog.String(), 256<<10))
		}
	})
	crasher := &clusterEOSCrasher{t: t, c: c, kills: kills, recovered: make(chan struct{})}
	defer func() { _ = crasher.stop() }()

	runEOSLoop(t, seeds, input, output, group, txnID, inEnds, kills, budget, crasher, clientLog)
}
