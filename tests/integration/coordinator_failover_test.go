//go:build linux

package integration

// Coordinators survive the loss of their broker (issue 16): the internal
// topics are created with replication factor 3 (offsets.topic.replication.factor
// and transaction.state.log.replication.factor, the defaults), so when the
// broker leading a group's or a transactional id's partition is SIGKILLed, the
// partition's new leader loads the state from its replica and coordinates.
//
//	TestCoordinatorFailoverGroup  offsets committed (and acknowledged) before
//	                              the coordinator's kill are all there after
//	                              FindCoordinator moved, none went backwards;
//	                              commits go on; a consumer group resumes at
//	                              the committed offsets
//	TestCoordinatorFailoverTxn    a transaction open when its coordinator is
//	                              killed is completed by the new coordinator:
//	                              committed whole when the old producer's
//	                              commit is acknowledged, aborted whole when a
//	                              new producer of the id initializes first; the
//	                              new producer fences the old one and commits
//
// Every wait is bounded and polls a condition.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// coordinatorOf is the node coordinating key (coordinator type: 0 group,
// 1 transactional id) as node n answers FindCoordinator.
func coordinatorOf(n *clusterNode, key string, typ int8) (int32, error) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey, req.CoordinatorType = key, typ
	req.CoordinatorKeys = []string{key}
	resp, err := n.request(context.Background(), req)
	if err != nil {
		return -1, fmt.Errorf("node %d FindCoordinator: %w", n.id, err)
	}
	r := resp.(*kmsg.FindCoordinatorResponse)
	code, id := r.ErrorCode, r.NodeID
	if len(r.Coordinators) > 0 { // v4+: the client negotiates the version
		code, id = r.Coordinators[0].ErrorCode, r.Coordinators[0].NodeID
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return -1, fmt.Errorf("node %d FindCoordinator(%q): %w", n.id, key, err)
	}
	return id, nil
}

// liveCoordinator waits until every live node names the same live node as
// key's coordinator, other than not, and returns it.
func (c *testCluster) liveCoordinator(t *testing.T, key string, typ int8, not int32) *clusterNode {
	t.Helper()
	var id int32
	waitFor(t, fmt.Sprintf("coordinator of %q on a live node other than %d", key, not), clusterStepTimeout, func() error {
		id = -1
		for _, n := range c.live() {
			got, err := coordinatorOf(n, key, typ)
			if err != nil {
				return err
			}
			if id >= 0 && got != id {
				return fmt.Errorf("nodes disagree: %d and %d", id, got)
			}
			id = got
		}
		if id == not {
			return fmt.Errorf("still node %d", not)
		}
		if n := c.node(id); n == nil || !n.up() {
			return fmt.Errorf("node %d is not live", id)
		}
		return nil
	})
	return c.node(id)
}

// commitRetrying commits offsets for group, retrying retriable errors (the
// coordinator moving) until clusterStepTimeout.
func commitRetrying(adm *kadm.Client, group string, offsets kadm.Offsets) error {
	deadline := time.Now().Add(clusterStepTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
		resp, err := adm.CommitOffsets(ctx, group, offsets)
		cancel()
		if err == nil {
			err = resp.Error()
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(clusterPoll)
	}
}

func TestCoordinatorFailoverGroup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		const topic, group = "cf-group-in", "cf-group"
		const parts = 3
		const perPartition = 100
		c.createReplicatedTopic(t, topic, parts, 3, nil, nil)

		cl := seedClient(t, c.seeds())
		var recs []*kgo.Record
		for p := range int32(parts) {
			for i := range perPartition {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			cancel()
			t.Fatalf("producing %d records: %v", len(recs), err)
		}
		cancel()

		// Commits acknowledged before the kill: each is on the ISR of the
		// group's __consumer_offsets partition.
		commit := func(adm *kadm.Client, round int) {
			t.Helper()
			var o kadm.Offsets
			for p := range int32(parts) {
				o.Add(kadm.Offset{Topic: topic, Partition: p, At: int64(round), LeaderEpoch: -1})
			}
			if err := commitRetrying(adm, group, o); err != nil {
				t.Fatalf("commit of round %d: %v", round, err)
			}
		}
		adm := kadm.NewClient(cl)
		const before, after = 40, 80
		for r := 1; r <= before; r++ {
			commit(adm, r)
		}
		victim := c.liveCoordinator(t, group, 0, -1)
		c.kill(t, victim)
		t.Logf("SIGKILL of node %d, the coordinator of %q, after %d acknowledged commits", victim.id, group, before)

		next := c.liveCoordinator(t, group, 0, victim.id)
		t.Logf("coordinator of %q moved to node %d", group, next.id)

		live := seedClient(t, c.seeds())
		ladm := kadm.NewClient(live)
		// Every acknowledged commit is there: the first answer that is not
		// an error must have them all (a coordinator serves only once
		// loaded), and none may be below what was acknowledged.
		waitFor(t, "committed offsets fetched from the new coordinator", clusterStepTimeout, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
			defer cancel()
			got, err := ladm.FetchOffsets(ctx, group)
			if err == nil {
				err = got.Error()
			}
			if err != nil {
				return err
			}
			for p := range int32(parts) {
				o, ok := got.Lookup(topic, p)
				if !ok || o.At < before {
					t.Fatalf("after the failover %s/%d's committed offset is %v (found %v), below the acknowledged %d", topic, p, o.At, ok, before)
				}
			}
			return nil
		})

		// Commits go on with the new coordinator.
		for r := before + 1; r <= after; r++ {
			commit(ladm, r)
		}

		// A consumer of the group resumes at the committed offsets.
		cons := seedClient(t, c.seeds(), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		first := map[int32]int64{}
		deadline := time.Now().Add(clusterStepTimeout)
		for len(first) < parts {
			if time.Now().After(deadline) {
				t.Fatalf("the group's consumer got the first record of %d of %d partitions within %v", len(first), parts, clusterStepTimeout)
			}
			ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
			fs := cons.PollFetches(ctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				if _, ok := first[r.Partition]; !ok {
					first[r.Partition] = r.Offset
				}
			})
		}
		for p, off := range first {
			if off != after {
				t.Errorf("the group's consumer resumed %s/%d at offset %d, want the committed %d", topic, p, off, after)
			}
		}
		cons.Close()
	})
}

func TestCoordinatorFailoverTxn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		// One cluster for both scenarios (each with a topic and a
		// transactional id of its own): the second starts once the node
		// the first killed is back and the cluster whole again, which
		// costs make test less than a second cluster's start and stop.
		c := newTestCluster(t, backend)
		c.start(t)
		// The old producer commits B after the kill (kgo retries until the
		// new coordinator answers), or never: the new producer's
		// InitProducerId then makes the new coordinator abort it.
		t.Run("old-producer-commits", func(t *testing.T) { coordinatorFailoverTxn(t, c, "cf-commits", true) })
		c.start(t)
		t.Run("new-producer-aborts", func(t *testing.T) { coordinatorFailoverTxn(t, c, "cf-aborts", false) })
	})
}

// coordinatorFailoverTxn runs one scenario on c (whole) with topic
// name+"-in" and transactional id name, and leaves the killed coordinator
// down.
func coordinatorFailoverTxn(t *testing.T, c *testCluster, name string, commitB bool) {
	{
		topic, txnID := name+"-in", name
		const parts = 3
		const perTxn = 10 // records per partition per transaction
		c.createReplicatedTopic(t, topic, parts, 3, nil, map[string]string{"min.insync.replicas": "2"})

		produceTxn := func(cl *kgo.Client, prefix string, end bool) error {
			ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
			defer cancel()
			if err := cl.BeginTransaction(); err != nil {
				return fmt.Errorf("begin %s: %w", prefix, err)
			}
			var recs []*kgo.Record
			for p := range int32(parts) {
				for i := range perTxn {
					recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%s-%d-%d", prefix, p, i)})
				}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				return fmt.Errorf("produce %s: %w", prefix, err)
			}
			if !end {
				return nil
			}
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				return fmt.Errorf("commit %s: %w", prefix, err)
			}
			return nil
		}

		p1 := seedClient(t, c.seeds(), kgo.TransactionalID(txnID), kgo.TransactionTimeout(60*time.Second))
		if err := produceTxn(p1, "A", true); err != nil {
			t.Fatal(err)
		}
		if err := produceTxn(p1, "B", false); err != nil {
			t.Fatal(err)
		}
		victim := c.liveCoordinator(t, txnID, 1, -1)
		c.kill(t, victim)
		t.Logf("SIGKILL of node %d, the coordinator of %q, with transaction B open", victim.id, txnID)

		// The old producer tries to commit B: the outcome may be either.
		errB := errors.New("not attempted")
		if commitB {
			ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
			errB = p1.EndTransaction(ctx, kgo.TryCommit)
			cancel()
			t.Logf("the old producer's commit of B after the kill: %v", errB)
		}

		next := c.liveCoordinator(t, txnID, 1, victim.id)
		t.Logf("coordinator of %q moved to node %d", txnID, next.id)

		// A new producer of the id: InitProducerId bumps the epoch (fencing
		// p1) once the new coordinator completed B, then commits C.
		p2 := seedClient(t, c.seeds(), kgo.TransactionalID(txnID), kgo.TransactionTimeout(60*time.Second))
		if err := produceTxn(p2, "C", true); err != nil {
			t.Fatalf("the new producer after the failover: %v", err)
		}

		// The old producer is fenced. When its commit of B failed, kgo still
		// holds B open: ending it (with the old epoch) comes first.
		if errB != nil {
			ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
			err := p1.EndTransaction(ctx, kgo.TryAbort)
			cancel()
			t.Logf("the old producer's abort of B after the new one's InitProducerId: %v", err)
		}
		if err := produceTxn(p1, "D", true); err == nil {
			t.Errorf("the old producer committed a transaction after a new producer of %q initialized", txnID)
		} else {
			t.Logf("the old producer after the new one's InitProducerId: %v", err)
		}

		// read_committed: A and C whole, B whole or not at all (whole when
		// its commit was acknowledged), no D.
		cons := seedClient(t, c.seeds(), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		counts := map[string]int{}
		deadline := time.Now().Add(clusterStepTimeout)
		for counts["C"] < parts*perTxn {
			if time.Now().After(deadline) {
				t.Fatalf("read_committed saw %v within %v; want %d C records (a transaction left open holds the last stable offset)", counts, clusterStepTimeout, parts*perTxn)
			}
			ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
			fs := cons.PollFetches(ctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				prefix, _, _ := strings.Cut(string(r.Value), "-")
				counts[prefix]++
			})
			if errs := fs.Errors(); len(errs) > 0 && !errors.Is(errs[0].Err, context.DeadlineExceeded) {
				t.Logf("fetch: %v", errs[0].Err)
			}
		}
		cons.Close()
		if counts["A"] != parts*perTxn {
			t.Errorf("read_committed: %d records of the committed transaction A, want %d", counts["A"], parts*perTxn)
		}
		if b := counts["B"]; b != 0 && b != parts*perTxn {
			t.Errorf("read_committed: %d records of transaction B, want all %d or none", b, parts*perTxn)
		} else if errB == nil && b == 0 {
			t.Errorf("read_committed: transaction B's commit was acknowledged but none of its records are visible")
		}
		if counts["D"] != 0 {
			t.Errorf("read_committed: %d records of the fenced producer's transaction D", counts["D"])
		}
		if !commitB && counts["B"] != 0 {
			t.Errorf("read_committed: %d records of transaction B, which nobody committed", counts["B"])
		}
		t.Logf("read_committed after the failover: %v", counts)
	}
}
