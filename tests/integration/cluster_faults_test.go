//go:build linux && clusterfaults

package integration

// The Jepsen-style fault schedule for replicated partitions (issue 16; make
// cluster-faults, part of make cluster-test): three ringbrokerd nodes, each in a
// network namespace of its own joined by a veth pair to a bridge in the root
// namespace, serve RF 3 topics with min.insync.replicas=2 to idempotent acks=all
// producers and a consumer group, while a seeded schedule breaks one node at a
// time:
//
//	kill-leader      SIGKILL of a partition's leader, restart on its data dir
//	kill-controller  SIGKILL of the active controller, restart on its data dir
//	pause            SIGSTOP of a node for a few seconds, then SIGCONT
//	partition        the node's veth down (isolated from peers and clients)
//	partition-controller  the same for the active controller
//	peer-partition   blackhole routes between the node and its two peers: cut
//	                 off from the cluster, still reached by every client (an
//	                 old leader keeps being sent produce requests)
//	slow-link        tc on both ends of the node's veth: netem delay and loss
//	                 when the kernel has sch_netem, else a tbf rate limit with
//	                 a short queue (queueing delay and tail drops), else skipped
//	full-disk        the node's data dir (a tmpfs of its own, faultsDiskBytes)
//	                 filled by a filler file until writes get ENOSPC; the
//	                 filler removed after the hold (the node is restarted on
//	                 heal only if it exited: ENOSPC takes its only log dir
//	                 offline and it stops, broker/log_dir_failure.go)
//	slow-disk        every fdatasync of the node's partition logs delayed
//	                 (100-500ms) for the hold: the daemon is built with -tags
//	                 faultinject (storage/faultinject.go), whose IO reads the
//	                 delay from a control file; faults-b has flush.messages=1
//	                 so its acks wait for those fdatasyncs
//
// Between two faults the cluster heals (every node back, every partition led,
// every ISR whole), so at most one node is ever broken: RF 3 with
// min.insync.replicas=2 must then lose no acknowledged record. After the
// schedule the test checks that every acknowledged record is read back exactly
// once and in order per partition, that no record appears twice, that every
// replica's segment files are the leader's bytes (compareReplicas), that no
// committed offset of the group went backwards and that every consumer
// resumed; it reports the faults, the records and the time from a leader's
// fault to the first acknowledgement on its partitions of a record produced
// after it.
//
// Needs root (ip netns, ip link, tc, mount). Built only with -tags clusterfaults.
// The namespaces are in cluster_faults_netns_test.go, the producers, the
// consumer group and the failover clock in cluster_faults_load_test.go.
//
// Environment:
//
//	RINGBROKER_FAULTS_SEED=N       replay a schedule (the seed is printed)
//	RINGBROKER_FAULTS_N=N          faults in the schedule (default 16)
//	RINGBROKER_FAULTS_BACKEND=B    uring or portable (default: from the seed)
//	RINGBROKER_FAULTS_KINDS=K,...  only these kinds (default: all)
//	RINGBROKER_FAULTS_LOGDIR=DIR   keep every node incarnation's output there
//	                               (node<id>-<n>.log), failed or not, and
//	                               the producers' kgo logs (producer-<topic>.log;
//	                               RINGBROKER_FAULTS_CLIENT_DEBUG=1: debug level)

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
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

const (
	// faultsDefault is the schedule's length unless RINGBROKER_FAULTS_N says.
	faultsDefault = 16
	// faultsParts is the partition count of each topic.
	faultsParts = 3
	// faultsLoadInterval paces each producer: one record per interval.
	faultsLoadInterval = 4 * time.Millisecond
	// faultsRecordsMax bounds each producer's records.
	faultsRecordsMax = 200000
	// faultsInflightMax bounds each producer's records handed over and not
	// acknowledged yet.
	faultsInflightMax = 1000
	// faultsProgress is how many more records each producer must have
	// acknowledged before the next fault (and after the last heal), bounded
	// by clusterStepTimeout: a fault always hits a cluster under load.
	faultsProgress = 300
	// faultsGroup is the consumer group; faultsConsumers its members.
	faultsGroup     = "faults-group"
	faultsConsumers = 2
	// faultsCommitPoll is how often the committed offsets are read.
	faultsCommitPoll = 300 * time.Millisecond
	// faultsFinishTimeout bounds the producers' last acknowledgements and
	// the consumers catching up after the schedule.
	faultsFinishTimeout = 2 * time.Minute
	// faultsPort and faultsCtlPort are every node's listeners: each node has
	// its namespace's address to itself.
	faultsPort    = 9092
	faultsCtlPort = 9093
)

// faultKind names one kind of fault.
type faultKind string

const (
	faultKillLeader     faultKind = "kill-leader"
	faultKillController faultKind = "kill-controller"
	faultPause          faultKind = "pause"
	faultPartition      faultKind = "partition"
	faultPartitionCtl   faultKind = "partition-controller"
	faultPeerPartition  faultKind = "peer-partition"
	faultSlowLink       faultKind = "slow-link"
	faultFullDisk       faultKind = "full-disk"
	faultSlowDisk       faultKind = "slow-disk"
)

var faultKinds = []faultKind{faultKillLeader, faultKillController, faultPause, faultPartition, faultPartitionCtl, faultPeerPartition, faultSlowLink,
	faultFullDisk, faultSlowDisk}

// fillerName is full-disk's filler file in the victim's data dir.
const fillerName = "faults-filler"

// slowDiskDelay is slow-disk's fdatasync delay for a hold: 100-500ms, from
// the seed through the hold (no extra draw, so older seeds plan the same).
func slowDiskDelay(hold time.Duration) time.Duration {
	return 100*time.Millisecond + time.Duration(hold.Milliseconds()%400)*time.Millisecond
}

// faultStep is one planned fault, every choice drawn from the seed up front:
// which node (index into the nodes, for the kinds that pick one), which
// partition (index over the topics' partitions, for kill-leader) and how long
// the node stays broken.
type faultStep struct {
	kind      faultKind
	node      int
	partition int
	hold      time.Duration
}

func (s faultStep) String() string {
	return fmt.Sprintf("%s (node #%d, partition #%d, %v)", s.kind, s.node+1, s.partition, s.hold)
}

// planFaults draws n steps of the given kinds: every kind once (shuffled)
// while n allows, then kinds at random. A shorter n plans a prefix of a
// longer one's steps.
func planFaults(rng *rand.Rand, n int, allowed []faultKind) []faultStep {
	kinds := slices.Clone(allowed)
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	var steps []faultStep
	for i := range n {
		k := allowed[rng.IntN(len(allowed))]
		if i < len(kinds) {
			k = kinds[i]
		}
		hold := time.Duration(2000+rng.IntN(4000)) * time.Millisecond
		if k == faultKillLeader || k == faultKillController {
			hold = time.Duration(500+rng.IntN(3000)) * time.Millisecond
		}
		steps = append(steps, faultStep{kind: k, node: rng.IntN(3), partition: rng.IntN(2 * faultsParts), hold: hold})
	}
	return steps
}

// ---- the schedule ------------------------------------------------------------

// faultRun is the state of one schedule: the cluster, the lab, the loads and
// what is broken now (for the healer).
type faultRun struct {
	c      *testCluster
	lab    *netnsLab
	topics []string
	clock  *failoverClock

	mu       sync.Mutex
	paused   map[int]bool // pids SIGSTOPped and not SIGCONTed yet
	linkDown map[string]bool
	undo     map[string][]string // the commands that remove a qdisc or a route, by what they undo
	files    map[string]bool     // fillers and sync-delay control files to remove
	// slowDiskWhy is "" when the daemon has the faultinject hook, else why
	// slow-disk is skipped.
	slowDiskWhy string
}

// healAll undoes whatever fault is still applied (a failed test's cleanup,
// before the nodes are stopped): SIGCONT, links up, qdiscs removed.
func (r *faultRun) healAll(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid := range r.paused {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("cleanup: SIGCONT to pid %d: %v", pid, err)
		}
	}
	for dev := range r.linkDown {
		if err := runCmd("ip", "link", "set", "dev", dev, "up"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	for _, del := range r.undo {
		_ = runCmd(del...)
	}
	for f := range r.files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	}
	clear(r.files)
	clear(r.paused)
	clear(r.linkDown)
	clear(r.undo)
}

// leadersOf maps every node to the partitions it leads ("topic/p"), as the
// running nodes agree.
func (r *faultRun) leadersOf() (map[int32][]string, error) {
	out := map[int32][]string{}
	for _, topic := range r.topics {
		for p := range int32(faultsParts) {
			leader, err := r.c.leaderOf(topic, p)
			if err != nil {
				return nil, err
			}
			out[leader] = append(out[leader], fmt.Sprintf("%s/%d", topic, p))
		}
	}
	return out, nil
}

// watchFailover opens a failover watch on every partition victim leads.
func (r *faultRun) watchFailover(kind faultKind, step int, led []string, since time.Time) {
	for _, tp := range led {
		topic, p, _ := strings.Cut(tp, "/")
		pn, _ := strconv.Atoi(p)
		r.clock.open(&failoverWatch{kind: kind, step: step, topic: topic, partition: int32(pn), since: since})
	}
}

// inject applies step i and undoes it after its hold; it returns what it did
// (for the log) and "" with skip set when the kind cannot run here.
func (r *faultRun) inject(t *testing.T, i int, s faultStep) (did string, skipped bool) {
	t.Helper()
	var leaders map[int32][]string
	if _, err := pollUntil(clusterStepTimeout, func() error {
		var err error
		leaders, err = r.leadersOf()
		return err
	}); err != nil {
		t.Fatalf("fault %d: leaders before the fault: %v", i+1, err)
	}
	c := r.c
	victim := c.nodes[s.node]
	switch s.kind {
	case faultKillLeader:
		topic := r.topics[s.partition/faultsParts]
		p := int32(s.partition % faultsParts)
		leader, err := c.leaderOf(topic, p)
		if err != nil {
			t.Fatalf("fault %d: leader of %s/%d: %v", i+1, topic, p, err)
		}
		victim = c.node(leader)
		did = fmt.Sprintf("SIGKILL of node %d (pid %d), leader of %s/%d and of %v, restarted on its data dir after %v",
			victim.id, victim.proc.PID, topic, p, leaders[victim.id], s.hold)
	case faultKillController:
		victim = r.agreedController(t)
		did = fmt.Sprintf("SIGKILL of node %d (pid %d), the active controller, leader of %v, restarted on its data dir after %v",
			victim.id, victim.proc.PID, leaders[victim.id], s.hold)
	case faultPause:
		did = fmt.Sprintf("SIGSTOP of node %d (pid %d), leader of %v, SIGCONT after %v", victim.id, victim.proc.PID, leaders[victim.id], s.hold)
	case faultPartition, faultPartitionCtl:
		if s.kind == faultPartitionCtl {
			victim = r.agreedController(t)
		}
		did = fmt.Sprintf("node %d isolated (%s down), leader of %v, healed after %v", victim.id, r.lab.veth[victim.id-1], leaders[victim.id], s.hold)
		if s.kind == faultPartitionCtl {
			did = "the active controller: " + did
		}
	case faultPeerPartition:
		did = fmt.Sprintf("node %d cut off from its peers (blackhole routes both ways; clients still reach it), leader of %v, healed after %v",
			victim.id, leaders[victim.id], s.hold)
	case faultSlowLink:
		if r.lab.shaper == nil {
			return r.lab.shaperWhy, true
		}
		did = fmt.Sprintf("node %d's link shaped (%s, both directions), leader of %v, for %v", victim.id, strings.Join(r.lab.shaper, " "), leaders[victim.id], s.hold)
	case faultFullDisk:
		did = fmt.Sprintf("node %d's data dir full (ENOSPC), leader of %v, filler removed after %v", victim.id, leaders[victim.id], s.hold)
	case faultSlowDisk:
		if r.slowDiskWhy != "" {
			return r.slowDiskWhy, true
		}
		did = fmt.Sprintf("node %d's fdatasyncs delayed %v each, leader of %v, for %v", victim.id, slowDiskDelay(s.hold), leaders[victim.id], s.hold)
	}
	led := leaders[victim.id]
	ns, veth := r.lab.ns[victim.id-1], r.lab.veth[victim.id-1]
	start := time.Now()
	switch s.kind {
	case faultKillLeader, faultKillController:
		c.kill(t, victim)
		r.watchFailover(s.kind, i, led, start)
		time.Sleep(s.hold)
		c.startNode(t, victim)
	case faultPause:
		pid := victim.proc.PID
		r.mu.Lock()
		r.paused[pid] = true
		r.mu.Unlock()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP to pid %d: %v", pid, err)
		}
		r.watchFailover(s.kind, i, led, start)
		time.Sleep(s.hold)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatalf("SIGCONT to pid %d: %v", pid, err)
		}
		r.mu.Lock()
		delete(r.paused, pid)
		r.mu.Unlock()
	case faultPartition, faultPartitionCtl:
		r.mu.Lock()
		r.linkDown[veth] = true
		r.mu.Unlock()
		if err := runCmd("ip", "link", "set", "dev", veth, "down"); err != nil {
			t.Fatal(err)
		}
		r.watchFailover(s.kind, i, led, start)
		time.Sleep(s.hold)
		if err := runCmd("ip", "link", "set", "dev", veth, "up"); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		delete(r.linkDown, veth)
		r.mu.Unlock()
	case faultPeerPartition:
		// Each side's route to the other: in the victim's namespace to
		// each peer, in each peer's namespace to the victim.
		var routes [][]string
		for _, peer := range c.nodes {
			if peer != victim {
				routes = append(routes,
					[]string{"ip", "-n", ns, "route", "%s", "blackhole", peer.host + "/32"},
					[]string{"ip", "-n", r.lab.ns[peer.id-1], "route", "%s", "blackhole", victim.host + "/32"})
			}
		}
		for _, cmd := range routes {
			r.mu.Lock()
			r.undo[strings.Join(cmd, " ")] = withVerb(cmd, "del")
			r.mu.Unlock()
			if err := runCmd(withVerb(cmd, "add")...); err != nil {
				t.Fatal(err)
			}
		}
		r.watchFailover(s.kind, i, led, start)
		time.Sleep(s.hold)
		for _, cmd := range routes {
			if err := runCmd(withVerb(cmd, "del")...); err != nil {
				t.Fatal(err)
			}
			r.mu.Lock()
			delete(r.undo, strings.Join(cmd, " "))
			r.mu.Unlock()
		}
	case faultSlowLink:
		outer := []string{"tc", "qdisc", "%s", "dev", veth, "root"}
		inner := []string{"ip", "netns", "exec", ns, "tc", "qdisc", "%s", "dev", "eth0", "root"}
		for _, cmd := range [][]string{outer, inner} {
			r.mu.Lock()
			r.undo[strings.Join(cmd, " ")] = withVerb(cmd, "del")
			r.mu.Unlock()
			if err := runCmd(append(withVerb(cmd, "add"), r.lab.shaper...)...); err != nil {
				t.Fatal(err)
			}
		}
		r.watchFailover(s.kind, i, led, start)
		time.Sleep(s.hold)
		for _, cmd := range [][]string{outer, inner} {
			if err := runCmd(withVerb(cmd, "del")...); err != nil {
				t.Fatal(err)
			}
			r.mu.Lock()
			delete(r.undo, strings.Join(cmd, " "))
			r.mu.Unlock()
		}
	case faultFullDisk:
		filler := victim.dir + "/" + fillerName
		r.mu.Lock()
		r.files[filler] = true
		r.mu.Unlock()
		n, err := fillDisk(filler)
		if err != nil {
			t.Fatalf("fault %d: filling %s: %v", i+1, victim.dir, err)
		}
		did += fmt.Sprintf(" (filler %d MiB)", n>>20)
		r.watchFailover(s.kind, i, led, start)
		time.Sleep(s.hold)
		if err := os.Remove(filler); err != nil {
			t.Fatalf("fault %d: %v", i+1, err)
		}
		r.mu.Lock()
		delete(r.files, filler)
		r.mu.Unlock()
		// A node that exited on the full disk is restarted on its data
		// dir, as Kafka needs a restart for a log dir it took offline.
		if p := victim.proc; p != nil && !p.Alive() {
			did += fmt.Sprintf("; node %d had exited (%v), restarted on its data dir", victim.id, p.WaitErr())
			victim.proc, victim.crashed = nil, true
			c.startNode(t, victim)
		}
	case faultSlowDisk:
		ctl := syncDelayFile(victim)
		r.mu.Lock()
		r.files[ctl] = true
		r.files[ctl+".applied"] = true
		r.mu.Unlock()
		delay := slowDiskDelay(s.hold).String()
		if err := os.WriteFile(ctl, []byte(delay), 0o644); err != nil {
			t.Fatal(err)
		}
		// The daemon polls the file: the fault starts when it says so.
		waitFor(t, "node's faultinject hook to apply the fdatasync delay", clusterStepTimeout, func() error { return syncDelayApplied(ctl, delay) })
		start = time.Now()
		r.watchFailover(s.kind, i, led, start)
		time.Sleep(s.hold)
		if err := os.Remove(ctl); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "node's faultinject hook to drop the fdatasync delay", clusterStepTimeout, func() error { return syncDelayApplied(ctl, "0s") })
		r.mu.Lock()
		delete(r.files, ctl)
		r.mu.Unlock()
	}
	return did, false
}

// syncDelayApplied is nil once the daemon's faultinject hook reports delay
// in force (ctl's ".applied" file).
func syncDelayApplied(ctl, delay string) error {
	b, err := os.ReadFile(ctl + ".applied")
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(b)); got != delay {
		return fmt.Errorf("delay in force %s, want %s", got, delay)
	}
	return nil
}

// fillDisk writes zeroes to a new file at path until the filesystem is full
// (ENOSPC), at most faultsDiskBytes; it returns the bytes written.
func fillDisk(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for n <= faultsDiskBytes {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, fmt.Errorf("wrote %d bytes without ENOSPC: not the node's own filesystem?", n)
}

// withVerb is cmd with its "%s" replaced by verb (add, del).
func withVerb(cmd []string, verb string) []string {
	out := slices.Clone(cmd)
	out[slices.Index(out, "%s")] = verb
	return out
}

// nodeRegisteredLine is what a daemon logs once the controller took its
// registration (cluster/lifecycle.go).
const nodeRegisteredLine = "registered with the controller"

// agreedController is the active controller the running nodes agree on,
// waited for (bounded): a registration or an election may still be settling.
func (r *faultRun) agreedController(t *testing.T) *clusterNode {
	t.Helper()
	var id int32
	waitFor(t, "an agreed active controller", clusterStepTimeout, func() error {
		var err error
		id, err = r.c.checkWhole(false)
		return err
	})
	return r.c.node(id)
}

// healed waits until the cluster is whole again (every node registered,
// every partition led) and every partition's ISR holds all its replicas.
func (r *faultRun) healed(t *testing.T, replicas map[string]map[int32][]int32) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	// A node restarted within the session timeout is still listed under its
	// old registration: whole means every running incarnation registered.
	whole := func() error {
		for _, n := range r.c.live() {
			if !strings.Contains(n.proc.Logs(), nodeRegisteredLine) {
				return fmt.Errorf("node %d (pid %d) has not registered with the controller yet", n.id, n.proc.PID)
			}
		}
		_, err := r.c.checkWhole(true)
		return err
	}
	if _, err := pollUntil(clusterReadyTimeout, whole); err != nil {
		return time.Since(start), fmt.Errorf("cluster not whole within %v: %w", clusterReadyTimeout, err)
	}
	_, err := pollUntil(replicationCatchUpTimeout, func() error {
		for _, topic := range r.topics {
			if err := r.c.checkISR(topic, replicas[topic]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return time.Since(start), fmt.Errorf("ISRs not whole within %v: %w", replicationCatchUpTimeout, err)
	}
	return time.Since(start), nil
}

// ---- the test ----------------------------------------------------------------

func TestClusterFaults(t *testing.T) {
	seed := time.Now().UnixNano()
	if v := os.Getenv("RINGBROKER_FAULTS_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("RINGBROKER_FAULTS_SEED=%q: %v", v, err)
		}
	}
	faults := faultsDefault
	if v := os.Getenv("RINGBROKER_FAULTS_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			t.Fatalf("RINGBROKER_FAULTS_N=%q: want 1 to 1000", v)
		}
		faults = n
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x16))
	backend := backends[rng.IntN(len(backends))]
	if v := os.Getenv("RINGBROKER_FAULTS_BACKEND"); v != "" {
		if !slices.Contains(backends, v) {
			t.Fatalf("RINGBROKER_FAULTS_BACKEND=%q: want one of %v", v, backends)
		}
		backend = v
	}
	allowed := faultKinds
	if v := os.Getenv("RINGBROKER_FAULTS_KINDS"); v != "" {
		allowed = nil
		for _, k := range strings.Split(v, ",") {
			if !slices.Contains(faultKinds, faultKind(k)) {
				t.Fatalf("RINGBROKER_FAULTS_KINDS=%q: %q is none of %v", v, k, faultKinds)
			}
			allowed = append(allowed, faultKind(k))
		}
	}
	steps := planFaults(rng, faults, allowed)
	kindsEnv := ""
	if len(allowed) != len(faultKinds) {
		var names []string
		for _, k := range allowed {
			names = append(names, string(k))
		}
		kindsEnv = " RINGBROKER_FAULTS_KINDS=" + strings.Join(names, ",")
	}
	t.Logf("seed %d (replay: RINGBROKER_FAULTS_SEED=%d RINGBROKER_FAULTS_N=%d RINGBROKER_FAULTS_BACKEND=%s%s), backend %s",
		seed, seed, faults, backend, kindsEnv, backend)
	for i, s := range steps {
		t.Logf("planned fault %d: %v", i+1, s)
	}

	slowDiskWhy := ""
	if slices.Contains(allowed, faultSlowDisk) {
		slowDiskWhy = useFaultInjectDaemon(t)
	}
	lab := newNetnsLab(t)
	var c *testCluster
	if dir := os.Getenv("RINGBROKER_FAULTS_LOGDIR"); dir != "" {
		// Registered before the cluster's cleanup, so it runs after the
		// nodes stopped and their output is whole.
		t.Cleanup(func() { keepNodeLogs(t, c, dir) })
	}
	c = newNetnsCluster(t, backend, lab, map[string]string{
		// A follower that stops fetching leaves the ISR within a fault's
		// hold, so the schedule exercises shrinking and expanding it.
		"replica.lag.time.max.ms": "5000",
	})
	r := &faultRun{c: c, lab: lab, topics: []string{"faults-a", "faults-b"}, clock: &failoverClock{},
		paused: map[int]bool{}, linkDown: map[string]bool{}, undo: map[string][]string{}, files: map[string]bool{}, slowDiskWhy: slowDiskWhy}
	t.Cleanup(func() { r.healAll(t) }) // runs before the cluster's cleanup stops the nodes
	c.start(t)
	if slowDiskWhy == "" {
		for _, n := range c.nodes {
			if !strings.Contains(n.proc.Logs(), "faultinject: every fdatasync delayed") {
				t.Fatalf("node %d does not run the faultinject hook (storage/faultinject.go): slow-disk would be a no-op", n.id)
			}
		}
	}
	replicas := map[string]map[int32][]int32{}
	for i, topic := range r.topics {
		conf := map[string]string{"min.insync.replicas": "2"}
		if i == 1 {
			// Acknowledged only after fdatasync, so slow-disk slows
			// this topic's acks; the other leaves flushing to the OS.
			conf["flush.messages"] = "1"
		}
		c.createReplicatedTopic(t, topic, faultsParts, 3, nil, conf)
		replicas[topic] = c.checkReplicaSets(t, topic, faultsParts, 3)
		c.expectISR(t, topic, replicas[topic], nil)
	}

	seeds := c.seeds()
	var loads []*faultLoad
	for _, topic := range r.topics {
		loads = append(loads, startFaultLoad(t, seeds, topic, r.clock, os.Getenv("RINGBROKER_FAULTS_LOGDIR")))
	}
	var consumers []*groupConsumer
	for i := range faultsConsumers {
		consumers = append(consumers, startGroupConsumer(t, i+1, seeds, r.topics))
	}
	commits := startCommitWatch(t, seeds)
	ackCounts := func() string {
		var parts []string
		for _, l := range loads {
			parts = append(parts, fmt.Sprintf("%s %d acked/%d failed", l.topic, l.ackCount.Load(), l.failCount.Load()))
		}
		return strings.Join(parts, ", ")
	}

	injected := map[faultKind]int{}
	var skipped []string
	var lastHeal time.Time
	scheduleStart := time.Now()
	for i, s := range steps {
		if err := waitProgress(loads, r.clock, faultsProgress); err != nil {
			t.Errorf("before fault %d: the load made no progress within %v: %v", i+1, clusterStepTimeout, err)
			break
		}
		faultAt := time.Now()
		did, skip := r.inject(t, i, s)
		if skip {
			skipped = append(skipped, fmt.Sprintf("fault %d (%s): %s", i+1, s.kind, did))
			t.Logf("fault %d: %s skipped: %s", i+1, s.kind, did)
			continue
		}
		injected[s.kind]++
		took, err := r.healed(t, replicas)
		lastHeal = time.Now()
		t.Logf("fault %d at +%v (%s UTC): %s; healed (whole, every ISR full) %v after; load: %s",
			i+1, time.Since(scheduleStart).Round(time.Millisecond), faultAt.UTC().Format("15:04:05.000"), did, took.Round(time.Millisecond), ackCounts())
		if err != nil {
			t.Errorf("after fault %d (%s): %v", i+1, did, err)
			break
		}
	}
	if lastHeal.IsZero() {
		lastHeal = time.Now()
	}
	// Some load after the last heal, so every consumer has records to
	// resume with and the last failover watches close.
	if err := waitProgress(loads, r.clock, faultsProgress); err != nil {
		t.Errorf("after the schedule: %v", err)
	}
	for _, l := range loads {
		l.finish(t)
	}
	t.Logf("load stopped: %s", ackCounts())

	// The group catches up: every partition's committed offset reaches its
	// high watermark, and every member got records after the last heal.
	adm := kadm.NewClient(seedClient(t, c.seeds()))
	caughtUp, err := pollUntil(faultsFinishTimeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, r.topics...)
		if err != nil {
			return err
		}
		commits.read()
		commits.mu.Lock()
		defer commits.mu.Unlock()
		var behind []string
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				behind = append(behind, fmt.Sprintf("%s/%d: %v", o.Topic, o.Partition, o.Err))
			} else if got := commits.latest[o.Topic][o.Partition]; got != o.Offset {
				behind = append(behind, fmt.Sprintf("%s/%d committed %d of %d", o.Topic, o.Partition, got, o.Offset))
			}
		})
		for _, g := range consumers {
			if g.lastNano.Load() < lastHeal.UnixNano() {
				behind = append(behind, fmt.Sprintf("consumer %d got no record after the last heal (%d records in all)", g.id, g.consumed.Load()))
			}
		}
		if len(behind) > 0 {
			slices.Sort(behind)
			return errors.New(strings.Join(behind, "; "))
		}
		return nil
	})
	if err != nil {
		t.Errorf("consumer group %s not caught up within %v of the load's end: %v", faultsGroup, faultsFinishTimeout, err)
	} else {
		t.Logf("consumer group %s caught up (committed = high watermark everywhere) %v after the load's end", faultsGroup, caughtUp.Round(time.Millisecond))
	}
	for _, g := range consumers {
		g.halt()
	}
	for _, g := range consumers {
		select {
		case <-g.done:
		case <-time.After(clusterRequestTimeout):
			t.Errorf("consumer %d did not stop within %v", g.id, clusterRequestTimeout)
		}
		t.Logf("consumer %d: %d records (at least once), %d fetch errors (retried)", g.id, g.consumed.Load(), g.fetchErr.Load())
	}
	commits.halt()
	commits.mu.Lock()
	backwards := slices.Clone(commits.backwards)
	t.Logf("committed offsets read %d times (%d reads failed during faults)", commits.reads, commits.readErrs)
	commits.mu.Unlock()
	for i, b := range backwards {
		if i == 10 {
			t.Errorf("%d committed offsets went backwards in all", len(backwards))
			break
		}
		t.Errorf("committed offset went backwards: %s", b)
	}

	// Every acknowledged record, exactly once, in order, per partition.
	var ackedAll, verified, lost, failed int64
	for _, l := range loads {
		acked, firstErr := l.snapshot()
		if n := l.failCount.Load(); n > 0 {
			failed += n
			t.Logf("%s: %d records failed (not acknowledged: allowed, each at most once); first: %v", l.topic, n, firstErr)
		}
		got := consumeToEnd(t, c.seeds(), l.topic, faultsParts)
		for p := range int32(faultsParts) {
			ackedAll += int64(len(acked[p]))
			problems := checkAckedOnce(acked[p], got[p])
			missing := missingAcked(acked[p], got[p])
			lost += int64(len(missing))
			verified += int64(len(acked[p]) - len(missing))
			for i, problem := range problems {
				if i == 10 {
					t.Errorf("%s/%d: more problems not shown", l.topic, p)
					break
				}
				t.Errorf("%s/%d (read through nodes %v): %s", l.topic, p, c.seeds(), problem)
			}
			if len(missing) > 0 {
				t.Errorf("%s/%d: lost acknowledged records %s", l.topic, p, seqRanges(missing, 20))
				for i, seq := range missing {
					if i == 20 {
						break
					}
					a := l.ackOfSeq(seq)
					t.Errorf("%s/%d: lost k-%d, acknowledged at offset %d at %s UTC", l.topic, p, seq, a.offset, a.at.UTC().Format("15:04:05.000"))
				}
			}
		}
	}
	// Every replica holds its leader's bytes.
	for _, topic := range r.topics {
		took, err := pollUntil(replicationCatchUpTimeout, func() error { return c.compareReplicas(topic, replicas[topic]) })
		if err != nil {
			t.Errorf("replicas of %s not byte-identical within %v: %v", topic, replicationCatchUpTimeout, err)
		} else {
			t.Logf("every replica of %s byte-identical (%v)", topic, took.Round(time.Millisecond))
		}
	}

	// The report.
	var kinds []string
	total := 0
	for _, k := range faultKinds {
		if injected[k] > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, injected[k]))
			total += injected[k]
		}
	}
	t.Logf("REPORT seed %d, backend %s: %d faults injected (%s) in %v; %d skipped %v",
		seed, backend, total, strings.Join(kinds, ", "), time.Since(scheduleStart).Round(time.Second), len(skipped), skipped)
	t.Logf("REPORT records: %d acknowledged, %d verified (read back once, in order), %d lost, %d failed (never acknowledged)",
		ackedAll, verified, lost, failed)
	kills, _ := r.clock.samples(faultKillLeader, faultKillController)
	t.Logf("REPORT failover after a leader's SIGKILL (kill to the first ack on its partitions of a record produced after it): %s", faultStats(kills))
	for _, k := range []faultKind{faultPause, faultPartition, faultPartitionCtl, faultPeerPartition, faultSlowLink, faultFullDisk, faultSlowDisk} {
		took, _ := r.clock.samples(k)
		t.Logf("REPORT after a leader's %s (fault to the first ack on its partitions of a record produced after it): %s", k, faultStats(took))
	}
	for _, line := range r.clock.perFault() {
		t.Logf("REPORT %s", line)
	}
	all, open := r.clock.samples()
	t.Logf("REPORT failover, every fault of a leader: %s", faultStats(all))
	for _, w := range open {
		t.Errorf("fault %d (%s): no record produced after it was ever acknowledged on %s/%d", w.step+1, w.kind, w.topic, w.partition)
	}
	if lost > 0 {
		t.Errorf("%d acknowledged records lost", lost)
	}
}

// useFaultInjectDaemon builds ringbrokerd with -tags faultinject (and the
// suite's RINGBROKER_IT_BUILDFLAGS) into a temporary directory and makes it
// the daemon of this test; it returns why slow-disk is skipped instead when
// the suite runs a prebuilt daemon or the build fails.
func useFaultInjectDaemon(t *testing.T) (why string) {
	t.Helper()
	if p := os.Getenv("RINGBROKER_IT_DAEMON"); p != "" {
		return "skipped: RINGBROKER_IT_DAEMON runs a prebuilt daemon (slow-disk needs one built with -tags faultinject)"
	}
	flags := strings.Fields(os.Getenv("RINGBROKER_IT_BUILDFLAGS"))
	tagged := false
	for i, f := range flags {
		switch {
		case f == "-tags" && i+1 < len(flags):
			flags[i+1] += ",faultinject"
			tagged = true
		case strings.HasPrefix(f, "-tags="):
			flags[i] += ",faultinject"
			tagged = true
		}
	}
	if !tagged {
		flags = append(flags, "-tags", "faultinject")
	}
	out := t.TempDir() + "/ringbrokerd-faultinject"
	if err := daemontest.Build(context.Background(), daemontest.DaemonPackage, out, flags...); err != nil {
		return fmt.Sprintf("skipped: building the faultinject daemon: %v", err)
	}
	real := daemonPath
	daemonPath = out
	t.Cleanup(func() { daemonPath = real })
	t.Logf("daemon built with %v for slow-disk: %s", flags, out)
	return ""
}

// keepNodeLogs writes every incarnation's output of every node of c to dir.
func keepNodeLogs(t *testing.T, c *testCluster, dir string) {
	if c == nil {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("RINGBROKER_FAULTS_LOGDIR: %v", err)
		return
	}
	for _, n := range c.nodes {
		for i, b := range n.past {
			path := fmt.Sprintf("%s/node%d-%d.log", dir, n.id, i+1)
			if err := os.WriteFile(path, []byte(b.Logs()), 0o644); err != nil {
				t.Errorf("RINGBROKER_FAULTS_LOGDIR: %v", err)
				return
			}
		}
	}
	t.Logf("node output kept in %s", dir)
}

// missingAcked lists the acknowledged seqs not among got's values.
func missingAcked(acked []int, got []gotRecord) []int {
	seen := map[string]bool{}
	for _, r := range got {
		seen[string(r.value)] = true
	}
	var missing []int
	for _, seq := range acked {
		if !seen["k-"+strconv.Itoa(seq)] {
			missing = append(missing, seq)
		}
	}
	return missing
}

// seqRanges renders sorted seqs as ranges "a-b", at most n of them.
func seqRanges(seqs []int, n int) string {
	s := slices.Clone(seqs)
	slices.Sort(s)
	var out []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] <= s[j]+faultsParts {
			j++
		}
		if len(out) == n {
			out = append(out, "...")
			break
		}
		if i == j {
			out = append(out, "k-"+strconv.Itoa(s[i]))
		} else {
			out = append(out, fmt.Sprintf("k-%d..k-%d (%d records)", s[i], s[j], j-i+1))
		}
		i = j + 1
	}
	return fmt.Sprintf("%d records: %s", len(seqs), strings.Join(out, ", "))
}
