//go:build linux

package integration

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// clusterTxnV2RemoteAdd (a step of TestClusterFeatures): transactions v2
// with raw requests on a cluster. Produce v12 batches go to each
// partition's leader; for the partitions whose leader is not the
// transaction coordinator's broker, the leader adds the partition through
// AddPartitionsToTxn v5 to the coordinator's broker. DescribeTransactions
// then lists every partition, EndTxn v5 commits with the epoch bumped, the
// markers reach every leader, and read_committed sees exactly the
// committed records (an aborted second transaction at the new epoch is
// not seen).
func clusterTxnV2RemoteAdd(t *testing.T, c *testCluster) {
	const topic, txnID = "txn-v2-remote", "v2-remote"
	cl, leaders, coordinator := clusterTxnTopic(t, c, topic, txnID)
	pid, epoch := txnV2Init(t, cl, txnID)
	produce := func(epoch int16, part, seq int32, v string) int16 {
		return txnV2ProduceTo(t, c.node(leaders[part]).request, topic, txnID, pid, epoch, part, seq, v)
	}
	for part := int32(0); part < 3; part++ {
		if code := produce(epoch, part, 0, fmt.Sprintf("c-%d", part)); code != 0 {
			t.Fatalf("Produce v12 to %s/%d on node %d: %v", topic, part, leaders[part], kerr.ErrorForCode(code))
		}
	}
	d := txnV2Describe(t, cl, txnID)
	var parts []int32
	for _, tp := range d.Topics {
		parts = append(parts, tp.Partitions...)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	if d.State != "Ongoing" || len(parts) != 3 {
		t.Fatalf("after Produce v12 to three leaders: %s with partitions %v, want Ongoing with all three", d.State, parts)
	}
	end := txnV2End(t, cl, txnID, pid, epoch, true)
	if end.ErrorCode != 0 || end.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn v5 commit: %v epoch %d, want NONE %d", kerr.ErrorForCode(end.ErrorCode), end.ProducerEpoch, epoch+1)
	}
	// A second transaction at the new epoch on a remotely led partition,
	// aborted.
	var abortPart int32
	for p, l := range leaders {
		if l != coordinator {
			abortPart = p
		}
	}
	if code := produce(epoch+1, abortPart, 0, "aborted"); code != 0 {
		t.Fatalf("Produce v12 at the bumped epoch: %v", kerr.ErrorForCode(code))
	}
	if end := txnV2End(t, cl, txnID, pid, epoch+1, false); end.ErrorCode != 0 || end.ProducerEpoch != epoch+2 {
		t.Fatalf("EndTxn v5 abort: %v epoch %d", kerr.ErrorForCode(end.ErrorCode), end.ProducerEpoch)
	}
	waitFor(t, txnID+" complete", clusterStepTimeout, func() error {
		if s := txnV2Describe(t, cl, txnID).State; s != "CompleteAbort" {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
	defer cancel()
	rc := seedClient(t, c.seeds(), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < 3 && ctx.Err() == nil {
		rc.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if seen[v] || v == "aborted" {
				t.Errorf("read_committed returned %q (again, or aborted) from %s/%d", v, r.Topic, r.Partition)
			}
			seen[v] = true
		})
	}
	if len(seen) != 3 {
		t.Fatalf("read_committed read %v, want c-0 c-1 c-2", seen)
	}
}

// clusterTxnTopic creates topic (3 partitions, one replica each) and
// returns a client seeded with every node, each partition's leader and the
// node that coordinates txnID; it fails the test when the coordinator's
// node leads every partition (the caller needs another leader).
func clusterTxnTopic(t *testing.T, c *testCluster, topic, txnID string) (*kgo.Client, map[int32]int32, int32) {
	t.Helper()
	via := c.nonController(t)
	createTopicVia(t, via, topic, 3, nil, clusterStepTimeout)
	c.waitTopicsEverywhere(t, map[string]int32{topic: 3}, clusterStepTimeout)
	leaders := map[int32]int32{}
	waitFor(t, "a leader for every partition of "+topic, clusterStepTimeout, func() error {
		m, err := via.metadata()
		if err != nil {
			return err
		}
		for _, mt := range m.Topics {
			if mt.Topic == nil || *mt.Topic != topic {
				continue
			}
			for _, p := range mt.Partitions {
				if p.Leader < 0 {
					return fmt.Errorf("partition %d has no leader", p.Partition)
				}
				leaders[p.Partition] = p.Leader
			}
		}
		if len(leaders) != 3 {
			return fmt.Errorf("%d partitions with a leader", len(leaders))
		}
		return nil
	})
	cl := seedClient(t, c.seeds())
	var coordinator int32 = -1
	waitFor(t, "the transaction coordinator of "+txnID, clusterStepTimeout, func() error {
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.Version = 4
		r.CoordinatorType, r.CoordinatorKeys = 1, []string{txnID}
		ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
		defer cancel()
		resp, err := via.request(ctx, r)
		if err != nil {
			return err
		}
		fr := resp.(*kmsg.FindCoordinatorResponse)
		if len(fr.Coordinators) != 1 {
			return fmt.Errorf("%d coordinators in the answer", len(fr.Coordinators))
		}
		if err := kerr.ErrorForCode(fr.Coordinators[0].ErrorCode); err != nil {
			return err
		}
		coordinator = fr.Coordinators[0].NodeID
		return nil
	})
	remote := 0
	for _, l := range leaders {
		if l != coordinator {
			remote++
		}
	}
	if remote == 0 {
		t.Fatalf("every partition of %s is led by the coordinator's node %d: the test needs another leader", topic, coordinator)
	}
	t.Logf("coordinator node %d, leaders %v", coordinator, leaders)
	return cl, leaders, coordinator
}

// clusterTxnV1RemoteVerify (a step of TestClusterFeatures): transactions
// v1 with raw requests on a cluster. A Produce v11 transactional batch to
// a partition led by another broker than the transaction coordinator's,
// for a partition the client never added, is refused
// (TRANSACTION_ABORTABLE: the leader asked the coordinator's broker with
// AddPartitionsToTxn verify-only, KIP-890), so it cannot leave a hanging
// transaction there; once AddPartitionsToTxn added it, the same batch is
// taken, EndTxn v4 commits, and read_committed reads exactly that record.
func clusterTxnV1RemoteVerify(t *testing.T, c *testCluster) {
	const topic, txnID = "txn-v1-verify", "v1-verify"
	_, leaders, coordinator := clusterTxnTopic(t, c, topic, txnID)
	var part int32 = -1
	for p, l := range leaders {
		if l != coordinator {
			part = p
		}
	}
	// A client that speaks as Kafka 3.9's (Produce v11, EndTxn v4) and
	// sends AddPartitionsToTxn as clients do (v3): kgo would otherwise
	// raise every request to the broker's highest version.
	versions := kversion.V3_9_0()
	versions.SetMaxKeyVersion(kmsg.AddPartitionsToTxn.Int16(), 3)
	cl := seedClient(t, c.seeds(), kgo.MaxVersions(versions))
	// Produce goes to the partition's leader alone (its seed broker).
	leader := seedClient(t, []string{c.node(leaders[part]).addr()}, kgo.MaxVersions(versions)).SeedBrokers()[0]
	pid, epoch := txnV2Init(t, cl, txnID)
	produce := func(v string) int16 {
		return txnProduceVersion(t, leader.Request, 11, topic, txnID, pid, epoch, part, 0, v)
	}
	if code := produce("refused"); code != kerr.TransactionAbortable.Code {
		t.Fatalf("Produce v11 to %s/%d (node %d) before AddPartitionsToTxn: %v, want TRANSACTION_ABORTABLE",
			topic, part, leaders[part], kerr.ErrorForCode(code))
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = txnID, pid, epoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = topic, []int32{part}
	add.Topics = append(add.Topics, at)
	code := txnV2Retry(t, "AddPartitionsToTxn v3", func() int16 {
		return txnV2Request[*kmsg.AddPartitionsToTxnResponse](t, cl, add).Topics[0].Partitions[0].ErrorCode
	})
	if code != 0 {
		t.Fatalf("AddPartitionsToTxn v3 %s/%d: %v", topic, part, kerr.ErrorForCode(code))
	}
	if code := produce("taken"); code != 0 {
		t.Fatalf("Produce v11 to %s/%d after AddPartitionsToTxn: %v", topic, part, kerr.ErrorForCode(code))
	}
	code = txnV2Retry(t, "EndTxn v4", func() int16 {
		r := kmsg.NewPtrEndTxnRequest()
		r.Version = 4
		r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = txnID, pid, epoch, true
		return txnV2Request[*kmsg.EndTxnResponse](t, cl, r).ErrorCode
	})
	if code != 0 {
		t.Fatalf("EndTxn v4 commit: %v", kerr.ErrorForCode(code))
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
	defer cancel()
	rc := seedClient(t, c.seeds(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []string
	for len(got) == 0 && ctx.Err() == nil {
		rc.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 1 || got[0] != "taken" {
		t.Fatalf("read_committed read %q from %s/%d, want [taken]", got, topic, part)
	}
}
