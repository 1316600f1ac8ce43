//go:build linux

package integration

// Replicated partitions end to end (issue 16): Kafka's ISR replication on the
// three-node cluster of cluster_util_test.go, both backends. Written before the
// feature: on a cluster without a replica fetcher the followers' logs stay
// empty, and these tests fail at the replication checks (not before).
//
//	TestReplicationFollowersCatchUp      RF 3: after an acks=all load, every
//	                                     replica's segment files are byte-identical
//	                                     and the ISR is all three replicas
//	TestReplicationLeaderKillLosesNothing SIGKILL of a partition leader under an
//	                                     idempotent acks=all load: every
//	                                     acknowledged record is read back exactly
//	                                     once, in order; the killed node rejoins
//	                                     the ISR with identical logs
//	TestReplicationMinISR                RF 2 with min.insync.replicas=2 and one
//	                                     replica down: acks=all is refused with
//	                                     NOT_ENOUGH_REPLICAS, acks=1 is taken
//
// Replicas are compared on disk, not through Fetch: a follower appends the
// leader's batches as they are (storage.Log.AppendReplica: no offset,
// leader epoch or timestamp rewritten) and rolls its segments at the same
// batches, so a caught-up replica's <datadir>/<topic>-<p>/*.log files hold
// the leader's bytes. The index files are not compared (preallocated, and
// rebuilt from the log).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// replicationCatchUpTimeout bounds the followers catching up with their
	// leader (logs identical) and the ISR reaching a wanted set: it covers
	// replica.lag.time.max.ms (30 s by default) for a shrink. A fail-safe
	// on a loaded machine, not a speed check.
	replicationCatchUpTimeout = 60 * time.Second
	// replicationProduceTimeout bounds a whole produce load, failover
	// included, until every record is acknowledged.
	replicationProduceTimeout = 2 * time.Minute
	// replicationInflightMax bounds the records handed to the producer and
	// not acknowledged yet: the load keeps going after the leader's kill
	// instead of being all buffered before it.
	replicationInflightMax = 1000
)

// TestReplicationFollowersCatchUp: RF 3, 3 partitions, min.insync.replicas=2;
// 5000 records from an idempotent acks=all producer; then, bounded, every
// replica's segment files are the leader's bytes and the ISR is all three.
func TestReplicationFollowersCatchUp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		const topic = "repl-catchup"
		const parts = 3
		c.createReplicatedTopic(t, topic, parts, 3, nil, map[string]string{"min.insync.replicas": "2"})
		replicas := c.checkReplicaSets(t, topic, parts, 3)

		// In rounds, so each partition's log is many batches (one
		// ProduceSync of everything is about one batch per partition),
		// which the followers fetch over many rounds of their own.
		const total, round = 5000, 250
		recs := spreadRecords(topic, total, parts, 600, false)
		cl := seedClient(t, c.seeds(), kgo.RequiredAcks(kgo.AllISRAcks())) // idempotent: kgo's default
		start := time.Now()
		for i := 0; i < total; i += round {
			produceSync(t, cl, topic, recs[i:min(i+round, total)])
		}
		t.Logf("%d records acknowledged (idempotent, acks=all, %d rounds) in %v", total, total/round, time.Since(start).Round(time.Millisecond))

		took, err := pollUntil(replicationCatchUpTimeout, func() error { return c.compareReplicas(topic, replicas) })
		if err != nil {
			t.Errorf("replicas of %s not byte-identical within %v: %v", topic, replicationCatchUpTimeout, err)
		} else {
			t.Logf("every replica of %s byte-identical %v after the last ack", topic, took.Round(time.Millisecond))
		}
		c.expectISR(t, topic, replicas, nil)
	})
}

// TestReplicationLeaderKillLosesNothing: an idempotent acks=all producer
// (kgo's unbounded retries) sends 20000 records "k-<seq>" to an RF 3 topic;
// once a third is acknowledged, the leader of partition 0 is SIGKILLed and the
// producer fails over on its own. Every acknowledged record must be read back
// through the two live nodes exactly once, in order; the killed node, restarted
// on its data dir, must rejoin the ISR with the leaders' bytes.
func TestReplicationLeaderKillLosesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		const topic = "repl-kill"
		const parts = 3
		const total = 20000
		c.createReplicatedTopic(t, topic, parts, 3, nil, map[string]string{"min.insync.replicas": "2"})
		replicas := c.checkReplicaSets(t, topic, parts, 3)
		c.expectISR(t, topic, replicas, nil)

		cl := seedClient(t, c.seeds(), kgo.RequiredAcks(kgo.AllISRAcks())) // idempotent, retries unbounded: kgo's defaults
		load := startAckedLoad(cl, topic, parts, total, total/3)

		// The kill: once a third is acknowledged (the ack count, not a clock).
		select {
		case <-load.third:
		case <-load.done:
		case <-time.After(replicationProduceTimeout):
			load.abort(t, cl)
			t.Fatalf("%d of %d records acknowledged within %v, the kill waits for %d", load.ackCount.Load(), total, replicationProduceTimeout, total/3)
		}
		var leader int32
		waitFor(t, topic+"/0 led by a node every node agrees on", clusterStepTimeout, func() error {
			var err error
			leader, err = c.leaderOf(topic, 0)
			return err
		})
		victim := c.node(leader)
		ackedAtKill := load.ackCount.Load()
		c.kill(t, victim)
		killed := time.Now()
		load.killedNanos.Store(killed.UnixNano())
		t.Logf("SIGKILL of node %d, leader of %s/0, after %d of %d records were acknowledged", victim.id, topic, ackedAtKill, total)

		select {
		case <-load.done:
		case <-time.After(replicationProduceTimeout):
			load.abort(t, cl)
			t.Errorf("%d of %d records acknowledged within %v of the kill (%d failed); the producer did not fail over to nodes %v",
				load.ackCount.Load(), total, replicationProduceTimeout, load.failCount.Load(), c.seeds())
		}
		if n := load.failCount.Load(); n > 0 {
			t.Errorf("%d of %d records failed (not acknowledged) after the kill; first: %v", n, total, load.firstErr())
		}
		if at := load.firstP0AckNanos.Load(); at != 0 {
			t.Logf("failover: first ack on %s/0 of a record produced after the SIGKILL %v after it (first partition-0 ack of any record after it: %v)",
				topic, time.Duration(at-killed.UnixNano()).Round(time.Millisecond), time.Duration(load.firstP0AnyAckNanos.Load()-killed.UnixNano()).Round(time.Millisecond))
		} else {
			t.Errorf("no record produced after the SIGKILL was acknowledged on %s/0", topic)
		}
		t.Logf("%d records acknowledged, %d failed, with node %d killed", load.ackCount.Load(), load.failCount.Load(), victim.id)

		// Every acknowledged record, exactly once per partition, in order,
		// read through the two live nodes by a fresh consumer.
		acked := load.ackedSnapshot()
		got := consumeToEnd(t, c.seeds(), topic, parts)
		for p := range int32(parts) {
			for i, problem := range checkAckedOnce(acked[p], got[p]) {
				if i == 10 {
					t.Errorf("%s/%d: more problems not shown", topic, p)
					break
				}
				t.Errorf("%s/%d (read through nodes %v): %s", topic, p, c.seeds(), problem)
			}
		}

		// The killed node comes back with its data dir, rejoins the ISR and
		// catches up.
		c.startNode(t, victim)
		c.waitReady(t)
		c.expectISR(t, topic, replicas, victim)
		took, err := pollUntil(replicationCatchUpTimeout, func() error { return c.compareReplicas(topic, replicas) })
		if err != nil {
			t.Errorf("after node %d's restart, replicas of %s not byte-identical within %v: %v", victim.id, topic, replicationCatchUpTimeout, err)
		} else {
			t.Logf("after node %d's restart, every replica of %s byte-identical in %v", victim.id, topic, took.Round(time.Millisecond))
		}
	})
}

// TestReplicationMinISR: RF 2 on nodes A and B (a manual assignment),
// min.insync.replicas=2; with B SIGKILLed and the ISR shrunk to [A], acks=all
// is refused with NOT_ENOUGH_REPLICAS (nothing appended) and acks=1 is taken.
func TestReplicationMinISR(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		// Two of three nodes down would also cost the metadata quorum its
		// majority: RF 2 on nodes A and B instead, and B is killed. B is
		// not the controller, so no election slows the ISR change.
		b := c.nonController(t)
		var a *clusterNode
		for _, n := range c.nodes {
			if n != b {
				a = n
				break
			}
		}
		const topic = "repl-minisr"
		c.createReplicatedTopic(t, topic, 1, 0, [][]int32{{a.id, b.id}}, map[string]string{"min.insync.replicas": "2"})
		replicas := c.checkReplicaSets(t, topic, 1, 2)
		if !slices.Equal(replicas[0], []int32{a.id, b.id}) {
			t.Fatalf("%s/0 has replicas %v, want the assignment [%d %d]", topic, replicas[0], a.id, b.id)
		}
		waitFor(t, fmt.Sprintf("%s/0 led by node %d", topic, a.id), clusterStepTimeout, func() error {
			leader, err := c.leaderOf(topic, 0)
			if err == nil && leader != a.id {
				err = fmt.Errorf("led by node %d", leader)
			}
			return err
		})
		c.expectISR(t, topic, replicas, nil)

		// Both replicas in the ISR: acks=all is taken.
		allAcks := seedClient(t, c.seeds(), kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordRetries(2), kgo.RecordDeliveryTimeout(30*time.Second))
		first := produceOne(allAcks, topic, "before-kill")
		if first.err != nil {
			t.Fatalf("acks=all produce to %s/0 with ISR [%d %d]: %v", topic, a.id, b.id, first.err)
		}

		c.kill(t, b)
		t.Logf("SIGKILL of node %d", b.id)
		shrunk := map[int32][]int32{0: {a.id}}
		took, err := pollUntil(replicationCatchUpTimeout, func() error { return c.checkISR(topic, shrunk) })
		if err != nil {
			t.Fatalf("ISR of %s/0 not shrunk to [%d] within %v of node %d's SIGKILL: %v", topic, a.id, replicationCatchUpTimeout, b.id, err)
		}
		t.Logf("ISR of %s/0 shrunk to [%d] %v after the kill", topic, a.id, took.Round(time.Millisecond))

		// One replica in the ISR, min.insync.replicas=2: acks=all is refused
		// before the append (NOT_ENOUGH_REPLICAS, not ..._AFTER_APPEND) ...
		refused := produceOne(allAcks, topic, "acks-all-under-min-isr")
		if !errors.Is(refused.err, kerr.NotEnoughReplicas) {
			t.Errorf("acks=all produce to %s/0 with ISR [%d], min.insync.replicas=2: error %v (offset %d), want NOT_ENOUGH_REPLICAS",
				topic, a.id, refused.err, refused.offset)
		}
		// ... and acks=1 is taken, at the offset after the first record:
		// the refused one took none.
		oneAck := seedClient(t, c.seeds(), kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()),
			kgo.RecordDeliveryTimeout(30*time.Second))
		taken := produceOne(oneAck, topic, "acks-1-under-min-isr")
		switch {
		case taken.err != nil:
			t.Errorf("acks=1 produce to %s/0 with ISR [%d]: %v, want it taken", topic, a.id, taken.err)
		case refused.err != nil && taken.offset != first.offset+1:
			t.Errorf("acks=1 record at offset %d, want %d (right after the acks=all record before the kill: the refused one must not be appended)",
				taken.offset, first.offset+1)
		}
	})
}

// ---- topic creation and metadata -------------------------------------------

// createReplicatedTopic creates topic through a node that is not the
// controller (forwarded) and waits until every node lists it: with parts
// partitions of rf replicas placed by the controller, or, when assignment is
// set, one partition per entry on exactly those replicas.
func (c *testCluster) createReplicatedTopic(t *testing.T, topic string, parts int32, rf int16, assignment [][]int32, configs map[string]string) {
	t.Helper()
	via := c.nonController(t)
	if assignment != nil {
		parts = int32(len(assignment))
	}
	what := fmt.Sprintf("CreateTopics %s (%d partitions, replication factor %d) via node %d", topic, parts, rf, via.id)
	if assignment != nil {
		what = fmt.Sprintf("CreateTopics %s (replicas %v) via node %d", topic, assignment, via.id)
	}
	waitFor(t, what, clusterStepTimeout, func() error {
		return tryCreateReplicatedTopic(via, topic, parts, rf, assignment, configs)
	})
	c.waitTopicsEverywhere(t, map[string]int32{topic: parts}, clusterStepTimeout)
}

// tryCreateReplicatedTopic is one CreateTopics attempt through n (see
// tryCreateTopic, which creates replication factor 1 only).
func tryCreateReplicatedTopic(n *clusterNode, topic string, parts int32, rf int16, assignment [][]int32, configs map[string]string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(clusterRequestTimeout / time.Millisecond)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, parts, rf
	if assignment != nil {
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
		for p, reps := range assignment {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(p), reps
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
	}
	for _, k := range sortedKeys(configs) {
		v := configs[k]
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, &v
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := n.request(context.Background(), req)
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
		return fmt.Errorf("CreateTopics %s via node %d: %v %s", topic, n.id, err, msg)
	}
	return nil
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// partitionsOf is node n's view of topic's partitions.
func partitionsOf(n *clusterNode, topic string) (map[int32]kmsg.MetadataResponseTopicPartition, error) {
	m, err := n.metadata()
	if err != nil {
		return nil, err
	}
	v, ok := topicsOf(m)[topic]
	if !ok {
		return nil, fmt.Errorf("node %d does not list %s", n.id, topic)
	}
	return v.partitions, nil
}

// checkReplicaSets checks that every node lists each of topic's parts
// partitions with rf distinct replicas, the same on every node, and returns
// them (in the controller's order: the first is the preferred leader).
func (c *testCluster) checkReplicaSets(t *testing.T, topic string, parts int32, rf int) map[int32][]int32 {
	t.Helper()
	var out map[int32][]int32
	for _, n := range c.live() {
		ps, err := partitionsOf(n, topic)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int32][]int32{}
		for p, d := range ps {
			got[p] = d.Replicas
			distinct := slices.Clone(d.Replicas)
			slices.Sort(distinct)
			if len(slices.Compact(distinct)) != rf || len(d.Replicas) != rf {
				t.Fatalf("node %d: %s/%d has replicas %v, want %d distinct", n.id, topic, p, d.Replicas, rf)
			}
		}
		if int32(len(got)) != parts {
			t.Fatalf("node %d lists %d partitions of %s, want %d", n.id, len(got), topic, parts)
		}
		for p := range out {
			if !slices.Equal(out[p], got[p]) {
				t.Fatalf("nodes disagree on the replicas of %s/%d: %v and node %d's %v", topic, p, out[p], n.id, got[p])
			}
		}
		out = got
	}
	t.Logf("%s replicas: %v", topic, out)
	return out
}

// leaderOf is the leader of topic/p that every running node names, when
// they agree on a running node.
func (c *testCluster) leaderOf(topic string, p int32) (int32, error) {
	leader := int32(-2)
	for _, n := range c.live() {
		ps, err := partitionsOf(n, topic)
		if err != nil {
			return -1, err
		}
		d, ok := ps[p]
		switch {
		case !ok:
			return -1, fmt.Errorf("node %d does not list %s/%d", n.id, topic, p)
		case d.ErrorCode != 0 || d.Leader < 0:
			return -1, fmt.Errorf("node %d: %s/%d leader %d, error %s", n.id, topic, p, d.Leader, codeName(d.ErrorCode))
		case c.node(d.Leader) == nil || !c.node(d.Leader).up():
			return -1, fmt.Errorf("node %d names node %d, which is down, leader of %s/%d", n.id, d.Leader, topic, p)
		case leader != -2 && d.Leader != leader:
			return -1, fmt.Errorf("nodes name leaders %d and %d of %s/%d", leader, d.Leader, topic, p)
		}
		leader = d.Leader
	}
	return leader, nil
}

// checkISR says whether every running node lists, for each partition of
// want, exactly that ISR (in any order) and a leader in it.
func (c *testCluster) checkISR(topic string, want map[int32][]int32) error {
	for _, n := range c.live() {
		ps, err := partitionsOf(n, topic)
		if err != nil {
			return err
		}
		for _, p := range slices.Sorted(maps.Keys(want)) {
			d, ok := ps[p]
			if !ok {
				return fmt.Errorf("node %d does not list %s/%d", n.id, topic, p)
			}
			isr, wantISR := slices.Clone(d.ISR), slices.Clone(want[p])
			slices.Sort(isr)
			slices.Sort(wantISR)
			if !slices.Equal(isr, wantISR) {
				return fmt.Errorf("node %d: %s/%d has ISR %v (replicas %v, leader %d, offline %v), want %v",
					n.id, topic, p, d.ISR, d.Replicas, d.Leader, d.OfflineReplicas, wantISR)
			}
			if !slices.Contains(isr, d.Leader) {
				return fmt.Errorf("node %d: %s/%d leader %d is not in its ISR %v", n.id, topic, p, d.Leader, d.ISR)
			}
		}
	}
	return nil
}

// expectISR waits (bounded) until every partition's ISR is all its replicas
// on every running node, and fails the test (not fatally: what follows
// reports more) when it is not. rejoined, when set, is the node whose return
// to the ISR the wait is about.
func (c *testCluster) expectISR(t *testing.T, topic string, replicas map[int32][]int32, rejoined *clusterNode) {
	t.Helper()
	what := "ISR of " + topic + " = every replica"
	if rejoined != nil {
		what = fmt.Sprintf("node %d back in the ISR of every partition of %s", rejoined.id, topic)
	}
	took, err := pollUntil(replicationCatchUpTimeout, func() error { return c.checkISR(topic, replicas) })
	if err != nil {
		t.Errorf("%s: not within %v: %v", what, replicationCatchUpTimeout, err)
		return
	}
	t.Logf("%s: after %v", what, took.Round(time.Millisecond))
}

// pollUntil polls cond every clusterPoll until it returns nil (and returns
// how long that took) or timeout passes (and returns cond's last error).
// waitFor is the fatal form; this one lets a test go on and report more.
func pollUntil(timeout time.Duration, cond func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), err
		}
		time.Sleep(clusterPoll)
	}
}

// ---- comparing replicas on disk --------------------------------------------

// compareReplicas says whether, for every partition of replicas, the
// segment files (<datadir>/<topic>-<p>/*.log) of every replica are
// byte-identical to those of the partition's leader (its first replica
// when the nodes do not agree on a running leader): the same file names,
// the same bytes. The first difference is named: node, partition, file,
// byte position and the record offsets of the batches it falls in.
func (c *testCluster) compareReplicas(topic string, replicas map[int32][]int32) error {
	for _, p := range slices.Sorted(maps.Keys(replicas)) {
		ref, role := replicas[p][0], "first replica"
		if leader, err := c.leaderOf(topic, p); err == nil && slices.Contains(replicas[p], leader) {
			ref, role = leader, "leader"
		}
		if err := c.compareReplicaSegments(topic, p, ref, role, replicas[p]); err != nil {
			return err
		}
	}
	return nil
}

// compareReplicaSegments compares topic/p's segment files on the nodes
// reps against those of node refID (the role it has, for the messages).
func (c *testCluster) compareReplicaSegments(topic string, p int32, refID int32, role string, reps []int32) error {
	ref := c.node(refID)
	refFiles, err := segmentFiles(ref.dir, topic, p)
	if err != nil {
		return fmt.Errorf("node %d (%s): %w", ref.id, role, err)
	}
	for _, id := range reps {
		if id == refID {
			continue
		}
		n := c.node(id)
		files, err := segmentFiles(n.dir, topic, p)
		if err != nil {
			return fmt.Errorf("node %d: %w", n.id, err)
		}
		if !slices.Equal(files, refFiles) {
			return fmt.Errorf("%s/%d: node %d holds segments %v, node %d (%s) %v", topic, p, n.id, files, ref.id, role, refFiles)
		}
		for _, name := range refFiles {
			want, err := os.ReadFile(filepath.Join(partitionDir(ref.dir, topic, p), name))
			if err != nil {
				return fmt.Errorf("node %d (%s): %w", ref.id, role, err)
			}
			got, err := os.ReadFile(filepath.Join(partitionDir(n.dir, topic, p), name))
			if err != nil {
				return fmt.Errorf("node %d: %w", n.id, err)
			}
			if bytes.Equal(got, want) {
				continue
			}
			at := 0
			for at < min(len(got), len(want)) && got[at] == want[at] {
				at++
			}
			return fmt.Errorf("%s/%d segment %s: node %d has %d bytes (%s), node %d (%s) %d bytes (%s); "+
				"first difference at byte %d (node %d: %s; node %d: %s)",
				topic, p, name, n.id, len(got), describeSegment(got), ref.id, role, len(want), describeSegment(want),
				at, ref.id, batchAt(want, at), n.id, batchAt(got, at))
		}
	}
	return nil
}

// segmentFiles lists the *.log files of topic/p under dataDir, sorted.
func segmentFiles(dataDir, topic string, p int32) ([]string, error) {
	entries, err := os.ReadDir(partitionDir(dataDir, topic, p))
	if err != nil {
		return nil, fmt.Errorf("segment files of %s/%d: %w", topic, p, err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// Record batch header fields the comparison reads (Kafka's v2 batch):
//
//	0       8           12                    16      17     21          23               27
//	+-------+-----------+---------------------+-------+------+-----------+----------------+--
//	| base  | batch     | partition leader    | magic | crc  | attributes| last offset    |
//	| offset| length    | epoch               |       |      |           | delta          |
//	+-------+-----------+---------------------+-------+------+-----------+----------------+--
//
// batch length counts the bytes after its own field.
const (
	batchLengthAt     = 8
	batchEpochAt      = 12
	batchLastDeltaAt  = 23
	batchHeaderPrefix = 27
)

// describeSegment summarizes a segment file's contents: its whole batches,
// the offset after the last, and any torn tail.
func describeSegment(b []byte) string {
	batches, next, pos := 0, int64(0), 0
	for pos+batchHeaderPrefix <= len(b) {
		end := pos + 12 + int(int32(binary.BigEndian.Uint32(b[pos+batchLengthAt:])))
		if end <= pos+12 || end > len(b) {
			break
		}
		next = int64(binary.BigEndian.Uint64(b[pos:])) + int64(int32(binary.BigEndian.Uint32(b[pos+batchLastDeltaAt:]))) + 1
		batches++
		pos = end
	}
	s := fmt.Sprintf("%d batches, next offset %d", batches, next)
	if pos < len(b) {
		s += fmt.Sprintf(", %d bytes after the last whole batch", len(b)-pos)
	}
	return s
}

// batchAt names the batch of segment b that byte at falls in: its base
// offset, leader epoch and where in the batch the byte is.
func batchAt(b []byte, at int) string {
	pos := 0
	for pos+batchHeaderPrefix <= len(b) {
		end := pos + 12 + int(int32(binary.BigEndian.Uint32(b[pos+batchLengthAt:])))
		if end <= pos+12 || end > len(b) {
			break
		}
		if at < end {
			base := int64(binary.BigEndian.Uint64(b[pos:]))
			last := base + int64(int32(binary.BigEndian.Uint32(b[pos+batchLastDeltaAt:])))
			return fmt.Sprintf("batch of offsets %d-%d (leader epoch %d, at byte %d, byte %d of the batch)",
				base, last, int32(binary.BigEndian.Uint32(b[pos+batchEpochAt:])), pos, at-pos)
		}
		pos = end
	}
	if at >= len(b) {
		return "end of file"
	}
	return fmt.Sprintf("bytes after the last whole batch (which ends at byte %d)", pos)
}

// ---- the produce load of the leader kill ------------------------------------

// ackedLoad is a bounded produce load (values "k-<seq>", seq round robin over
// the partitions) with at most replicationInflightMax records unacknowledged,
// and what came back.
type ackedLoad struct {
	third chan struct{} // closed when the kill threshold is acknowledged
	done  chan struct{} // closed when every record's callback ran

	ackCount, failCount atomic.Int64
	// killedNanos is when the leader was killed (UnixNano; 0 before);
	// firstP0AckNanos is the first ack on partition 0 of a record handed to
	// the producer after that, firstP0AnyAckNanos of any record.
	killedNanos, firstP0AckNanos, firstP0AnyAckNanos atomic.Int64
	stop                                             chan struct{}
	stopOnce                                         sync.Once

	mu    sync.Mutex
	acked map[int32][]int // per partition, the acknowledged seqs in ack order
	err   error           // the first failure
}

// startAckedLoad produces total records to topic through cl in a goroutine
// and closes third once thirdAt are acknowledged.
func startAckedLoad(cl *kgo.Client, topic string, parts int32, total, thirdAt int) *ackedLoad {
	l := &ackedLoad{third: make(chan struct{}), done: make(chan struct{}), stop: make(chan struct{}), acked: map[int32][]int{}}
	var thirdOnce sync.Once
	inflight := make(chan struct{}, replicationInflightMax)
	var wg sync.WaitGroup
	go func() {
		defer close(l.done)
		defer wg.Wait()
		for seq := range total {
			select {
			case inflight <- struct{}{}:
			case <-l.stop:
				return
			}
			p := int32(seq) % parts
			afterKill := l.killedNanos.Load() != 0
			wg.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: []byte("k-" + strconv.Itoa(seq))},
				func(r *kgo.Record, err error) {
					defer wg.Done()
					defer func() { <-inflight }()
					if err != nil {
						l.failCount.Add(1)
						l.mu.Lock()
						if l.err == nil {
							l.err = fmt.Errorf("record k-%d to %s/%d: %w", seq, topic, p, err)
						}
						l.mu.Unlock()
						return
					}
					if p == 0 && l.killedNanos.Load() != 0 {
						now := time.Now().UnixNano()
						l.firstP0AnyAckNanos.CompareAndSwap(0, now)
						if afterKill {
							l.firstP0AckNanos.CompareAndSwap(0, now)
						}
					}
					l.mu.Lock()
					l.acked[p] = append(l.acked[p], seq)
					l.mu.Unlock()
					if l.ackCount.Add(1) >= int64(thirdAt) {
						thirdOnce.Do(func() { close(l.third) })
					}
				})
		}
	}()
	return l
}

// abort stops handing records to the producer, closes it (failing what it
// still buffers) and waits, bounded, for the load goroutine.
func (l *ackedLoad) abort(t *testing.T, cl *kgo.Client) {
	t.Helper()
	l.stopOnce.Do(func() { close(l.stop) })
	cl.Close()
	select {
	case <-l.done:
	case <-time.After(clusterRequestTimeout):
		t.Errorf("the produce load did not end within %v of closing its client", clusterRequestTimeout)
	}
}

func (l *ackedLoad) firstErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *ackedLoad) ackedSnapshot() map[int32][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32][]int{}
	for p, seqs := range l.acked {
		out[p] = slices.Clone(seqs)
	}
	return out
}

// consumeToEnd reads every partition of topic from its log start to its
// high watermark (as the seeds answer ListOffsets) with a fresh group-less
// consumer, bounded by e2eTimeout; records are returned per partition in
// offset order.
func consumeToEnd(t *testing.T, seeds []string, topic string, parts int32) map[int32][]gotRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	ends, err := kadm.NewClient(seedClient(t, seeds)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets %s via %v: %v", topic, seeds, err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("ListEndOffsets %s/%d via %v: %v", topic, o.Partition, seeds, o.Err)
		}
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	t.Logf("%s high watermarks via %v: %v", topic, seeds, left)
	rd := seedClient(t, seeds, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: fromStart(parts)}), kgo.FetchMaxBytes(64<<20))
	got := map[int32][]gotRecord{}
	fetchErrors := 0
	for len(left) > 0 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s via %v: partitions %v (partition: high watermark) not read to the end within %v", topic, seeds, left, e2eTimeout)
		}
		fs.EachError(func(tp string, p int32, err error) {
			if fetchErrors++; fetchErrors <= 5 {
				t.Logf("fetch %s/%d: %v (retried)", tp, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], gotRecord{partition: r.Partition, offset: r.Offset, value: r.Value})
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	return got
}

// checkAckedOnce lists what is wrong with one partition's records got,
// given the seqs acknowledged there (in ack order, which is seq order): a
// value that is not "k-<seq>", a record twice, records out of seq order,
// an acknowledged record missing. Records produced but never acknowledged
// may be there, once.
func checkAckedOnce(acked []int, got []gotRecord) []string {
	var problems []string
	seen := map[int]int64{} // seq -> offset
	last, lastOffset := -1, int64(-1)
	for _, r := range got {
		seq, err := strconv.Atoi(strings.TrimPrefix(string(r.value), "k-"))
		if err != nil || !strings.HasPrefix(string(r.value), "k-") {
			problems = append(problems, fmt.Sprintf("offset %d: value %q is no record of this test", r.offset, head(r.value, 40)))
			continue
		}
		if at, dup := seen[seq]; dup {
			problems = append(problems, fmt.Sprintf("k-%d twice: at offsets %d and %d", seq, at, r.offset))
			continue
		}
		seen[seq] = r.offset
		if seq < last {
			problems = append(problems, fmt.Sprintf("out of order: k-%d at offset %d after k-%d at offset %d", seq, r.offset, last, lastOffset))
		}
		last, lastOffset = seq, r.offset
	}
	var missing []int
	for _, seq := range acked {
		if _, ok := seen[seq]; !ok {
			missing = append(missing, seq)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d acknowledged records missing (%d records read), the first k-%d, the last k-%d",
			len(missing), len(acked), len(got), missing[0], missing[len(missing)-1]))
	}
	return problems
}

// produced is the outcome of one record's produce.
type produced struct {
	offset int64
	err    error
}

// produceOne produces one record with value v to topic/0 and waits for its
// outcome, bounded by clusterStepTimeout.
func produceOne(cl *kgo.Client, topic, v string) produced {
	ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
	defer cancel()
	r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}).First()
	if err != nil {
		return produced{offset: -1, err: err}
	}
	return produced{offset: r.Offset}
}
