//go:build linux

package integration

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterFeatures, on a three-node cluster through nodes that are not
// the controller:
//   - consumer groups with every real client: the coordinator is the
//     leader of the group's __consumer_offsets partition, commits land and
//     read back through any node;
//   - KIP-951: Produce and Fetch to a node that does not lead the partition
//     answer NOT_LEADER_OR_FOLLOWER with the current leader and its
//     endpoint; DescribeQuorum through a follower names the leader and
//     every voter;
//   - a rolling restart (SIGTERM, controlled shutdown, start, one node at a
//     time) under an idempotent producer: every acknowledged record is read
//     back;
//   - a broker-only node (process.roles=broker) joins, gets partitions and
//     serves them;
//   - transactions whose partitions are led by other brokers than their
//     coordinator's complete: markers reach every leader;
//   - transactions v2 with raw requests: a leader adds its partition to the
//     transaction through the coordinator's broker (AddPartitionsToTxn v5);
//   - transactions v1: a leader verifies a transactional produce through
//     the coordinator's broker (AddPartitionsToTxn v5 verify-only).
func TestClusterFeatures(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)

		t.Run("groups", func(t *testing.T) {
			via := c.nonController(t)
			for _, kind := range gcClientKinds {
				topic, group := "grp-"+kind, "g-"+kind
				createTopicVia(t, via, topic, 3, nil, clusterStepTimeout)
				c.waitTopicsEverywhere(t, map[string]int32{topic: 3}, clusterStepTimeout)
				sent := spreadRecords(topic, 60, 3, 200, false)
				offsets := gcProduce(t, via.addr(), topic, sent)
				gcConsumeAlone(t, kind, via.proc, topic, group, sent, offsets, nil)
				end := map[int32]int64{}
				for i, r := range sent {
					end[r.partition] = max(end[r.partition], offsets[i]+1)
				}
				// Read back through another node: FindCoordinator there
				// names the same coordinator.
				other := c.controller(t)
				gcCheckCommitted(t, gcAdmin(t, other.addr()), group, topic, end)
			}
		})

		t.Run("kip951-and-describe-quorum", func(t *testing.T) {
			via := c.nonController(t)
			topic := "kip951"
			createTopicVia(t, via, topic, 3, nil, clusterStepTimeout)
			owners := partitionOwners(t, via, topic)
			var part, leader int32 = -1, -1
			for p, reps := range owners {
				if reps[0] != via.id {
					part, leader = p, reps[0]
				}
			}
			if part < 0 {
				t.Fatalf("every partition of %s is on node %d: %v", topic, via.id, owners)
			}
			ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
			defer cancel()
			pr := kmsg.NewPtrProduceRequest()
			pr.Version, pr.Acks, pr.TimeoutMillis = 11, 1, 5000
			pt := kmsg.NewProduceRequestTopic()
			pt.Topic = topic
			pp := kmsg.NewProduceRequestTopicPartition()
			pp.Partition = part
			pt.Partitions = append(pt.Partitions, pp)
			pr.Topics = append(pr.Topics, pt)
			resp, err := via.request(ctx, pr)
			if err != nil {
				t.Fatal(err)
			}
			presp := resp.(*kmsg.ProduceResponse)
			got := presp.Topics[0].Partitions[0]
			leaderNode := c.node(leader)
			if got.ErrorCode != kerr.NotLeaderForPartition.Code || got.CurrentLeader.LeaderID != leader ||
				len(presp.Brokers) != 1 || presp.Brokers[0].NodeID != leader || presp.Brokers[0].Host != leaderNode.host || int(presp.Brokers[0].Port) != leaderNode.port {
				t.Errorf("Produce v11 to node %d for %s/%d (led by %d): error %s, current leader %+v, endpoints %+v",
					via.id, topic, part, leader, codeName(got.ErrorCode), got.CurrentLeader, presp.Brokers)
			}
			md, err := via.metadata()
			if err != nil {
				t.Fatal(err)
			}
			var id [16]byte
			for _, tp := range md.Topics {
				if tp.Topic != nil && *tp.Topic == topic {
					id = tp.TopicID
				}
			}
			fr := kmsg.NewPtrFetchRequest()
			fr.Version, fr.MaxWaitMillis, fr.MaxBytes = 16, 10, 1<<20
			ft := kmsg.NewFetchRequestTopic()
			ft.TopicID = id
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.PartitionMaxBytes = part, 1<<20
			ft.Partitions = append(ft.Partitions, fp)
			fr.Topics = append(fr.Topics, ft)
			resp, err = via.request(ctx, fr)
			if err != nil {
				t.Fatal(err)
			}
			fresp := resp.(*kmsg.FetchResponse)
			fgot := fresp.Topics[0].Partitions[0]
			if fgot.ErrorCode != kerr.NotLeaderForPartition.Code || fgot.CurrentLeader.LeaderID != leader ||
				len(fresp.Brokers) != 1 || fresp.Brokers[0].NodeID != leader {
				t.Errorf("Fetch v16 to node %d for %s/%d (led by %d): error %s, current leader %+v, endpoints %+v",
					via.id, topic, part, leader, codeName(fgot.ErrorCode), fgot.CurrentLeader, fresp.Brokers)
			}

			dq := kmsg.NewPtrDescribeQuorumRequest()
			dt := kmsg.NewDescribeQuorumRequestTopic()
			dt.Topic = "__cluster_metadata"
			dt.Partitions = append(dt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
			dq.Topics = append(dq.Topics, dt)
			resp, err = via.request(ctx, dq)
			if err != nil {
				t.Fatal(err)
			}
			q := resp.(*kmsg.DescribeQuorumResponse)
			ctl := c.controller(t)
			if q.ErrorCode != 0 || len(q.Topics) != 1 || len(q.Topics[0].Partitions) != 1 {
				t.Fatalf("DescribeQuorum: %+v", q)
			}
			qp := q.Topics[0].Partitions[0]
			var voters []int32
			for _, v := range qp.CurrentVoters {
				voters = append(voters, v.ReplicaID)
				if v.LogEndOffset <= 0 || v.LogEndOffset > qp.HighWatermark+100 {
					t.Errorf("voter %d log end offset %d (high watermark %d)", v.ReplicaID, v.LogEndOffset, qp.HighWatermark)
				}
			}
			slices.Sort(voters)
			if qp.ErrorCode != 0 || qp.LeaderID != ctl.id || qp.HighWatermark <= 0 || !slices.Equal(voters, []int32{1, 2, 3}) || len(q.Nodes) != 3 {
				t.Errorf("DescribeQuorum through node %d: leader %d (controller %d), hw %d, voters %v, nodes %d",
					via.id, qp.LeaderID, ctl.id, qp.HighWatermark, voters, len(q.Nodes))
			}
			checkQuorumTimes(t, ctx, via, qp)
		})

		t.Run("transactions-across-leaders", func(t *testing.T) {
			clusterTransactionsAcrossLeaders(t, c)
		})
		t.Run("transactions-v2-remote-add", func(t *testing.T) {
			clusterTxnV2RemoteAdd(t, c) // txn_v2_cluster_test.go
		})
		t.Run("transactions-v1-remote-verify", func(t *testing.T) {
			clusterTxnV1RemoteVerify(t, c) // txn_v2_cluster_test.go
		})

		t.Run("rolling-restart-under-load", func(t *testing.T) {
			topic := "rolling"
			createTopicVia(t, c.nonController(t), topic, 6, nil, clusterStepTimeout)
			c.waitTopicsEverywhere(t, map[string]int32{topic: 6}, clusterStepTimeout)
			cl := seedClient(t, c.seeds(), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
				kgo.RecordDeliveryTimeout(2*clusterReadyTimeout), kgo.RetryTimeout(2*clusterReadyTimeout))
			var mu sync.Mutex
			acked := map[string]bool{}
			var failed atomic.Int64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { // bounded: at most 100000 records, until stop
				defer close(done)
				var wg sync.WaitGroup
				for i := 0; i < 100000; i++ {
					select {
					case <-stop:
						wg.Wait()
						return
					default:
					}
					v := "r-" + strconv.Itoa(i)
					wg.Add(1)
					cl.Produce(context.Background(), &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
						defer wg.Done()
						if err != nil {
							failed.Add(1)
							return
						}
						mu.Lock()
						acked[v] = true
						mu.Unlock()
					})
					if i%50 == 49 {
						time.Sleep(5 * time.Millisecond) // paced, not a flood
					}
				}
				wg.Wait()
			}()
			for _, n := range c.nodes {
				if _, err := n.proc.Daemon.Stop(stopTimeout); err != nil {
					t.Fatalf("SIGTERM of node %d: %v", n.id, err)
				}
				n.proc = nil
				c.startNode(t, n)
				c.waitReady(t)
				t.Logf("node %d restarted (controlled shutdown, start, whole again)", n.id)
			}
			close(stop)
			<-done
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n == 0 {
				t.Fatal("no record acknowledged during the rolling restart")
			}
			// Every acknowledged record is there.
			seen := map[string]bool{}
			rd := seedClient(t, c.seeds(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			ctx, cancel := context.WithTimeout(context.Background(), 2*clusterReadyTimeout)
			defer cancel()
			for missing := n; missing > 0; {
				fs := rd.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("%d of %d acknowledged records not read back", missing, n)
				}
				fs.EachRecord(func(r *kgo.Record) {
					v := string(r.Value)
					if acked[v] && !seen[v] {
						seen[v] = true
						missing--
					}
				})
			}
			t.Logf("rolling restart of 3 nodes under load: %d records acknowledged, all read back; %d failed (not acknowledged, retried out)", n, failed.Load())
		})

		t.Run("broker-only-node", func(t *testing.T) {
			host := "127.0.0.4"
			port := freePortOn(t, host)
			props := c.props(&clusterNode{id: 4, host: host, port: port, dir: t.TempDir()})
			props["process.roles"] = "broker"
			props["listeners"] = fmt.Sprintf("PLAINTEXT://%s:%d", host, port)
			delete(props, "controller.listener.names")
			b := startDaemon(t, backend, host, port, props)
			c.extra = append(c.extra, b)
			via := c.nonController(t)
			waitFor(t, "the broker-only node registered and unfenced", clusterReadyTimeout, func() error {
				m, err := via.metadata()
				if err != nil {
					return err
				}
				if ids := brokerIDs(m); !slices.Contains(ids, 4) {
					return fmt.Errorf("brokers %v", ids)
				}
				return nil
			})
			topic := "with-broker-4"
			createTopicVia(t, via, topic, 8, nil, clusterStepTimeout)
			owners := partitionOwners(t, via, topic)
			var on4 []int32
			for p, reps := range owners {
				if reps[0] == 4 {
					on4 = append(on4, p)
				}
			}
			if len(on4) != 2 {
				t.Fatalf("partitions on the broker-only node: %v of %v, want 2 of 8", on4, owners)
			}
			recs := spreadRecords(topic, 80, 8, 300, false)
			cl := newClient(t, b.Addr)
			produceSync(t, cl, topic, recs)
			got := consumeFranz(t, via.addr(), topic, fromStart(8), len(recs))
			verifyRecords(t, "through the broker-only node", recs, got, nil)
		})
	})
}

// clusterTransactionsAcrossLeaders: a transactional producer writes to
// partitions led by all three nodes, commits one transaction and aborts
// another; a read_committed consumer sees exactly the committed records,
// which needs every leader's marker (the coordinator sends WriteTxnMarkers
// to the others). Then a consume-transform-produce session commits its
// group offsets inside transactions: the offsets, held by the group
// coordinator on whichever node leads the group's __consumer_offsets
// partition, become visible once that node has the marker.
func clusterTransactionsAcrossLeaders(t *testing.T, c *testCluster) {
	via := c.nonController(t)
	in, out := "txn-in", "txn-out"
	for _, topic := range []string{in, out} {
		createTopicVia(t, via, topic, 3, nil, clusterStepTimeout)
	}
	c.waitTopicsEverywhere(t, map[string]int32{in: 3, out: 3}, clusterStepTimeout)
	leaders := map[int32]bool{}
	for _, reps := range partitionOwners(t, via, in) {
		leaders[reps[0]] = true
	}
	if len(leaders) < 2 {
		t.Fatalf("%s: every partition on one node (%v): the test needs several leaders", in, leaders)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterStepTimeout)
	defer cancel()

	p := seedClient(t, c.seeds(), kgo.TransactionalID("tx-cluster"), kgo.DefaultProduceTopic(in),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(20*time.Second))
	write := func(prefix string, commit bool) {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for part := int32(0); part < 3; part++ {
			for i := 0; i < 5; i++ {
				r := &kgo.Record{Partition: part, Value: []byte(fmt.Sprintf("%s-%d-%d", prefix, part, i))}
				if err := produceBounded(ctx, p, r); err != nil {
					t.Fatalf("transactional produce to %s/%d: %v", in, part, err)
				}
			}
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction (commit %v): %v", commit, err)
		}
	}
	write("committed", true)
	write("aborted", false)
	write("committed2", true)
	p.Close()

	// read_committed: 30 committed records, none aborted. The last
	// stable offset of a partition passes the transactions only once its
	// leader wrote their markers.
	rc := seedClient(t, c.seeds(), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < 30 && ctx.Err() == nil {
		fs := rc.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if seen[v] || strings.HasPrefix(v, "aborted") {
				t.Errorf("read_committed returned %q (again, or aborted) from %s/%d", v, r.Topic, r.Partition)
			}
			seen[v] = true
		})
	}
	rc.Close()
	if len(seen) != 30 {
		t.Fatalf("read_committed read %d of 30 committed records across leaders %v", len(seen), leaders)
	}

	// Consume-transform-produce with the group's offsets in the
	// transactions.
	const group = "txn-cluster-group"
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("tx-ctp"),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic(out), kgo.TransactionTimeout(20*time.Second), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordDeliveryTimeout(clusterStepTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	moved := 0
	next := map[int32]int64{} // per input partition: last record moved + 1
	for moved < 30 && ctx.Err() == nil {
		fs := sess.PollFetches(ctx)
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Value: append([]byte("out-"), r.Value...)}, nil)
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
			moved++
		})
		if committed, err := sess.End(ctx, kgo.TryCommit); err != nil || !committed {
			t.Fatalf("transact session end: committed %v, %v", committed, err)
		}
	}
	if moved != 30 {
		t.Fatalf("moved %d of 30 records", moved)
	}
	adm := gcAdmin(t, c.controller(t).addr())
	waitFor(t, "the group's transactional offsets committed", clusterStepTimeout, func() error {
		got, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return err
		}
		for part := int32(0); part < 3; part++ {
			o, ok := got.Lookup(in, part)
			if !ok || o.At != next[part] {
				return fmt.Errorf("%s/%d committed %+v, want %d", in, part, o, next[part])
			}
		}
		return nil
	})
}

// produceBounded produces r and waits for its answer until ctx ends; then
// it fails the client's buffered records (ProduceSync's ctx bounds only
// the buffering, and a transactional record can be retried for ever while
// its partition cannot join the transaction), so the test fails instead
// of hanging.
func produceBounded(ctx context.Context, cl *kgo.Client, r *kgo.Record) error {
	done := make(chan error, 1)
	cl.Produce(ctx, r, func(_ *kgo.Record, err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cl.AbortBufferedRecords(actx)
		return fmt.Errorf("not acknowledged: %w", ctx.Err())
	}
}

// checkQuorumTimes: DescribeQuorum's last fetch and last caught-up times
// are recent (this machine's clock: the daemons run here), a member caught
// up no later than it fetched, the leader's own at the time of the answer;
// and on a quiet cluster every follower's times move (heartbeat answers).
func checkQuorumTimes(t *testing.T, ctx context.Context, via *clusterNode, first kmsg.DescribeQuorumResponseTopicPartition) {
	t.Helper()
	now := time.Now().UnixMilli()
	for _, v := range first.CurrentVoters {
		if v.LastFetchTimestamp < now-10_000 || v.LastFetchTimestamp > now+1000 ||
			v.LastCaughtUpTimestamp < now-10_000 || v.LastCaughtUpTimestamp > v.LastFetchTimestamp {
			t.Errorf("voter %d: last fetch %d, last caught up %d (now %d)", v.ReplicaID, v.LastFetchTimestamp, v.LastCaughtUpTimestamp, now)
		}
	}
	describe := func() (kmsg.DescribeQuorumResponseTopicPartition, error) {
		dq := kmsg.NewPtrDescribeQuorumRequest()
		dt := kmsg.NewDescribeQuorumRequestTopic()
		dt.Topic = "__cluster_metadata"
		dt.Partitions = append(dt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
		dq.Topics = append(dq.Topics, dt)
		resp, err := via.request(ctx, dq)
		if err != nil {
			return kmsg.DescribeQuorumResponseTopicPartition{}, err
		}
		q := resp.(*kmsg.DescribeQuorumResponse)
		if len(q.Topics) != 1 || len(q.Topics[0].Partitions) != 1 || q.Topics[0].Partitions[0].ErrorCode != 0 {
			return kmsg.DescribeQuorumResponseTopicPartition{}, fmt.Errorf("DescribeQuorum: %+v", q)
		}
		return q.Topics[0].Partitions[0], nil
	}
	was := map[int32]kmsg.DescribeQuorumResponseTopicPartitionReplicaState{}
	for _, v := range first.CurrentVoters {
		was[v.ReplicaID] = v
	}
	waitFor(t, "every voter's quorum times to move", clusterStepTimeout, func() error {
		p, err := describe()
		if err != nil {
			return err
		}
		if p.LeaderID != first.LeaderID {
			return fmt.Errorf("leader moved from %d to %d", first.LeaderID, p.LeaderID)
		}
		for _, v := range p.CurrentVoters {
			old := was[v.ReplicaID]
			if v.LastFetchTimestamp <= old.LastFetchTimestamp || v.LastCaughtUpTimestamp <= old.LastCaughtUpTimestamp {
				return fmt.Errorf("voter %d: %d/%d then %d/%d", v.ReplicaID, old.LastFetchTimestamp, old.LastCaughtUpTimestamp,
					v.LastFetchTimestamp, v.LastCaughtUpTimestamp)
			}
		}
		return nil
	})
}
