//go:build javatools

package integration

// kafka-reassign-partitions.sh --execute and --verify on the three-node
// cluster while a franz-go producer (idempotent, acks=all, bounded) writes.
// See javatools_test.go for how to run.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// reassignJavaMax bounds the paced load of TestJavaToolsReassignUnderLoad;
// reassignJavaBefore are acknowledged before the move is asked for.
const reassignJavaMax, reassignJavaBefore = 300000, 20000

// startPacedLoad is startAckedLoad paced at perTick records each tick, up
// to max records or maxTime, until stopped (close(l.stop)); third is
// closed at thirdAt acknowledgements.
func startPacedLoad(cl *kgo.Client, topic string, parts int32, max, perTick int, tick, maxTime time.Duration, thirdAt int) *ackedLoad {
	l := &ackedLoad{third: make(chan struct{}), done: make(chan struct{}), stop: make(chan struct{}), acked: map[int32][]int{}}
	var thirdOnce sync.Once
	var wg sync.WaitGroup
	go func() {
		defer close(l.done)
		defer wg.Wait()
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		end := time.After(maxTime)
		for seq := 0; seq < max; seq++ {
			if seq%perTick == 0 {
				select {
				case <-ticker.C:
				case <-l.stop:
					return
				case <-end:
					return
				}
			}
			p := int32(seq) % parts
			wg.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: []byte("k-" + strconv.Itoa(seq))},
				func(r *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						l.failCount.Add(1)
						l.mu.Lock()
						if l.err == nil {
							l.err = fmt.Errorf("record k-%d to %s/%d: %w", seq, topic, p, err)
						}
						l.mu.Unlock()
						return
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

// TestJavaToolsReassignUnderLoad: an RF 2 topic (min.insync.replicas=2)
// made by kafka-topics.sh --replica-assignment on nodes A and B; once a
// third of the load is acknowledged, kafka-reassign-partitions.sh --execute
// moves partition 0's follower and partition 1's leader to C while a paced
// load runs, and --verify
// is run until it reports both complete. Then: replicas and ISR are the
// targets everywhere, every acknowledged record is in the log once and in
// order, and C's segment files are the leader's bytes.
func TestJavaToolsReassignUnderLoad(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		a, b := c.controller(t), c.nonController(t)
		var dest *clusterNode
		for _, n := range c.nodes {
			if n != a && n != b {
				dest = n
			}
		}
		all := strings.Join(c.seeds(), ",")
		const topic = "reassign-java"
		const parts = 2
		out := runJava(t, "kafka-topics.sh", "--bootstrap-server", all, "--create", "--topic", topic,
			"--replica-assignment", fmt.Sprintf("%d:%d,%d:%d", a.id, b.id, b.id, a.id), "--config", "min.insync.replicas=2")
		if !strings.Contains(out, "Created topic "+topic+".") {
			t.Fatalf("kafka-topics.sh --create --replica-assignment: %s", out)
		}
		before := c.checkReplicaSets(t, topic, parts, 2)
		c.expectISR(t, topic, before, nil)
		target := map[int32][]int32{0: {a.id, dest.id}, 1: {dest.id, a.id}}

		plan := filepath.Join(t.TempDir(), "reassign.json")
		js := fmt.Sprintf(`{"version":1,"partitions":[{"topic":%q,"partition":0,"replicas":[%d,%d]},{"topic":%q,"partition":1,"replicas":[%d,%d]}]}`,
			topic, a.id, dest.id, topic, dest.id, a.id)
		if err := os.WriteFile(plan, []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}

		// A paced load (4000 records/s, at most reassignJavaMax records or
		// 3 minutes): the tools' JVM starts take longer than an unpaced
		// load would last.
		cl := seedClient(t, c.seeds(), kgo.RequiredAcks(kgo.AllISRAcks()))
		load := startPacedLoad(cl, topic, parts, reassignJavaMax, 40, 10*time.Millisecond, 3*time.Minute, reassignJavaBefore)
		select {
		case <-load.third:
		case <-load.done:
			t.Fatalf("the load ended before %d records were acknowledged: %d acknowledged, %d failed: %v", reassignJavaBefore, load.ackCount.Load(), load.failCount.Load(), load.firstErr())
		case <-time.After(replicationProduceTimeout):
			load.abort(t, cl)
			t.Fatalf("%d records acknowledged within %v", load.ackCount.Load(), replicationProduceTimeout)
		}
		asked := time.Now()
		atExecute := load.ackCount.Load()
		out = runJava(t, "kafka-reassign-partitions.sh", "--bootstrap-server", all, "--reassignment-json-file", plan, "--execute")
		t.Logf("kafka-reassign-partitions.sh --execute (%d records acknowledged when it started):\n%s", atExecute, out)
		if !strings.Contains(out, "Successfully started partition reassignment") {
			load.abort(t, cl)
			t.Fatalf("kafka-reassign-partitions.sh --execute did not start the reassignment:\n%s", out)
		}
		// --verify until both are complete: each run is a JVM start, so
		// bounded by count and time.
		verified := false
		for i := 0; i < 20 && time.Since(asked) < 3*time.Minute; i++ {
			out = runJava(t, "kafka-reassign-partitions.sh", "--bootstrap-server", all, "--reassignment-json-file", plan, "--verify")
			if strings.Count(out, "is completed") == parts {
				t.Logf("kafka-reassign-partitions.sh --verify #%d, %v after --execute (%d records acknowledged):\n%s",
					i+1, time.Since(asked).Round(time.Millisecond), load.ackCount.Load(), out)
				verified = true
				break
			}
			t.Logf("kafka-reassign-partitions.sh --verify #%d:\n%s", i+1, out)
		}
		if !verified {
			t.Errorf("kafka-reassign-partitions.sh --verify never reported both partitions complete; last:\n%s", out)
		}
		// A little more load on the new replica sets, then stop it.
		more := load.ackCount.Load() + 2000
		waitFor(t, "2000 more records acknowledged after --verify", time.Minute, func() error {
			if n := load.ackCount.Load(); n < more {
				return fmt.Errorf("%d acknowledged", n)
			}
			return nil
		})
		load.stopOnce.Do(func() { close(load.stop) })
		select {
		case <-load.done:
		case <-time.After(replicationProduceTimeout):
			load.abort(t, cl)
			t.Errorf("the load did not end within %v of being stopped", replicationProduceTimeout)
		}
		if n := load.failCount.Load(); n > 0 {
			t.Errorf("%d records failed; first: %v", n, load.firstErr())
		}
		if load.ackCount.Load() <= atExecute {
			t.Errorf("nothing was acknowledged while the reassignment ran (%d before --execute, %d in all)", atExecute, load.ackCount.Load())
		}
		t.Logf("load done %v after --execute: %d acknowledged (%d before --execute), %d failed", time.Since(asked).Round(time.Millisecond),
			load.ackCount.Load(), atExecute, load.failCount.Load())

		took, err := pollUntil(replicationCatchUpTimeout, func() error {
			for _, n := range c.live() {
				ps, err := partitionsOf(n, topic)
				if err != nil {
					return err
				}
				for p, want := range target {
					if got := ps[p].Replicas; !slices.Equal(got, want) {
						return fmt.Errorf("node %d: %s/%d has replicas %v, want %v", n.id, topic, p, got, want)
					}
				}
			}
			return c.checkISR(topic, target)
		})
		if err != nil {
			t.Errorf("replicas and ISR of %s not %v on every node within %v: %v", topic, target, replicationCatchUpTimeout, err)
		} else {
			t.Logf("replicas and ISR %v on every node (%v)", target, took.Round(time.Millisecond))
		}
		out = runJava(t, "kafka-topics.sh", "--bootstrap-server", all, "--describe", "--topic", topic)
		t.Logf("kafka-topics.sh --describe after the move:\n%s", out)

		acked := load.ackedSnapshot()
		got := consumeToEnd(t, c.seeds(), topic, parts)
		for p := range int32(parts) {
			for i, problem := range checkAckedOnce(acked[p], got[p]) {
				if i == 10 {
					t.Errorf("%s/%d: more problems not shown", topic, p)
					break
				}
				t.Errorf("%s/%d: %s", topic, p, problem)
			}
			t.Logf("%s/%d: %d acknowledged, %d read back", topic, p, len(acked[p]), len(got[p]))
		}
		took, err = pollUntil(replicationCatchUpTimeout, func() error { return c.compareReplicas(topic, target) })
		if err != nil {
			t.Errorf("the moved replicas of %s are not byte-identical within %v: %v", topic, replicationCatchUpTimeout, err)
		} else {
			t.Logf("node %d's new replicas of %s byte-identical to their leaders' (%v)", dest.id, topic, took.Round(time.Millisecond))
		}
	})
}
