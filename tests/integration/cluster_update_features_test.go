//go:build linux

package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startBrokerOnlyNode starts node 4 on 127.0.0.4 with process.roles=broker
// (an observer of the metadata quorum), stopped by the cluster's cleanup,
// and waits until it is registered. It returns the daemon and a client
// seeded with it alone.
func startBrokerOnlyNode(t *testing.T, c *testCluster, backend string) (*Broker, *kgo.Client) {
	t.Helper()
	host := "127.0.0.4"
	port := freePortOn(t, host)
	props := c.props(&clusterNode{id: 4, host: host, port: port, dir: t.TempDir()})
	props["process.roles"] = "broker"
	props["listeners"] = fmt.Sprintf("PLAINTEXT://%s:%d", host, port)
	delete(props, "controller.listener.names")
	b := startDaemon(t, backend, host, port, props)
	c.extra = append(c.extra, b)
	waitFor(t, "the broker-only node registered", clusterReadyTimeout, func() error {
		m, err := c.nodes[0].metadata()
		if err != nil {
			return err
		}
		if ids := brokerIDs(m); !slices.Contains(ids, 4) {
			return fmt.Errorf("brokers %v", ids)
		}
		return nil
	})
	return b, newClient(t, b.Addr, kgo.RequestRetries(0))
}

// nodeFeatures is one node's finalized features and epoch, from its
// ApiVersions answer (what kafka-features.sh describe reads).
func nodeFeatures(cl *kgo.Client) (map[string]int16, int64, error) {
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, 0, errors.New("no seed broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterRequestTimeout)
	defer cancel()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3 // the first with features (kgo sends it as set)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "ringbroker-tests", "1"
	resp, err := seeds[0].Request(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	r := resp.(*kmsg.ApiVersionsResponse)
	out := map[string]int16{}
	for _, f := range r.FinalizedFeatures {
		out[f.Name] = f.MaxVersionLevel
	}
	return out, r.FinalizedFeaturesEpoch, nil
}

// TestClusterUpdateFeatures, on three voters and a broker-only node:
//   - UpdateFeatures sent to a node that is not the controller is
//     forwarded: a safe downgrade of transaction.version is written through
//     the quorum and every node, the broker-only one too, then answers
//     ApiVersions with the new level and a higher FinalizedFeaturesEpoch;
//   - kadm's UpdateFeatures (v2) upgrades it back, refuses a level out of
//     range and a downgrade asked as an upgrade (INVALID_UPDATE_VERSION),
//     and validate_only changes nothing;
//   - a restarted voter answers the level the metadata log holds;
//   - DescribeQuorum lists the broker-only node as an observer with its
//     directory id (its meta.properties') and its fetch and caught-up
//     times, and only the voters as voters.
func TestClusterUpdateFeatures(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		// The cluster harness's checks know the voters only: its
		// controller is found before node 4 joins.
		via := c.nonController(t)
		_, cl4 := startBrokerOnlyNode(t, c, backend)
		clients := map[int32]*kgo.Client{4: cl4}
		for _, n := range c.nodes {
			clients[n.id] = n.cl
		}
		epochs := map[int32]int64{}
		waitLevel := func(what string, level int16) {
			t.Helper()
			waitFor(t, what, clusterStepTimeout, func() error {
				for id, cl := range clients {
					fs, epoch, err := nodeFeatures(cl)
					if err != nil {
						return fmt.Errorf("node %d: %w", id, err)
					}
					got, ok := fs["transaction.version"]
					if level == 0 && ok || level > 0 && got != level || epoch <= epochs[id] {
						return fmt.Errorf("node %d: features %v epoch %d (was %d)", id, fs, epoch, epochs[id])
					}
				}
				for id, cl := range clients {
					_, epochs[id], _ = nodeFeatures(cl)
				}
				return nil
			})
		}
		for id, cl := range clients {
			fs, epoch, err := nodeFeatures(cl)
			if err != nil || fs["transaction.version"] != 2 {
				t.Fatalf("node %d before any update: %v %d %v", id, fs, epoch, err)
			}
			epochs[id] = epoch
		}

		// Forwarded by a node that is not the controller.
		req := kmsg.NewPtrUpdateFeaturesRequest()
		u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		u.Feature, u.MaxVersionLevel, u.UpgradeType = "transaction.version", 1, 2
		req.FeatureUpdates = append(req.FeatureUpdates, u)
		resp, err := via.request(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if r := resp.(*kmsg.UpdateFeaturesResponse); r.ErrorCode != 0 || r.Version <= 1 && (len(r.Results) != 1 || r.Results[0].ErrorCode != 0) {
			t.Fatalf("safe downgrade through node %d: %+v", via.id, r)
		}
		waitLevel("transaction.version 1 on every node", 1)

		ctx, cancel := context.WithTimeout(context.Background(), clusterStepTimeout)
		defer cancel()
		adm := kadm.NewClient(seedClient(t, c.seeds()))
		for _, bad := range []kadm.FeatureUpdate{
			{Feature: "transaction.version", MaxVersionLevel: 3, UpgradeType: 1},
			{Feature: "transaction.version", MaxVersionLevel: 0, UpgradeType: 1},
		} {
			res, err := adm.UpdateFeatures(ctx, false, bad)
			if err != nil || !errors.Is(res.Error(), kerr.InvalidUpdateVersion) {
				t.Fatalf("%+v: %v %+v", bad, err, res)
			}
		}
		if res, err := adm.UpdateFeatures(ctx, true, kadm.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 2, UpgradeType: 1}); err != nil || res.Error() != nil {
			t.Fatalf("validate only: %v %+v", err, res)
		}
		for id, cl := range clients {
			if fs, epoch, err := nodeFeatures(cl); err != nil || fs["transaction.version"] != 1 || epoch != epochs[id] {
				t.Fatalf("node %d after refused and validate-only updates: %v %d %v", id, fs, epoch, err)
			}
		}
		if res, err := adm.UpdateFeatures(ctx, false, kadm.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 2, UpgradeType: 1}); err != nil || res.Error() != nil {
			t.Fatalf("upgrade: %v %+v", err, res)
		}
		waitLevel("transaction.version 2 on every node", 2)
		if res, err := adm.UpdateFeatures(ctx, false, kadm.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 0, UpgradeType: 3}); err != nil || res.Error() != nil {
			t.Fatalf("unsafe downgrade to 0: %v %+v", err, res)
		}
		waitLevel("transaction.version 0 (not listed) on every node", 0)

		// A restarted voter reads the level back from the metadata log.
		n := via
		if _, err := n.proc.Daemon.Stop(stopTimeout); err != nil {
			t.Fatalf("SIGTERM of node %d: %v", n.id, err)
		}
		n.proc = nil
		c.startNode(t, n)
		waitFor(t, fmt.Sprintf("restarted node %d at level 0", n.id), clusterStepTimeout, func() error {
			fs, epoch, err := nodeFeatures(n.cl)
			if err != nil || len(fs) != 0 || epoch <= 0 {
				return fmt.Errorf("%v %d %v", fs, epoch, err)
			}
			return nil
		})

		// DescribeQuorum through each voter (forwarded to the leader):
		// voters 1-3, observer 4 (the broker-only node), caught up.
		for _, n := range c.nodes {
			waitFor(t, fmt.Sprintf("DescribeQuorum via node %d: observer 4", n.id), clusterStepTimeout, func() error {
				dq := kmsg.NewPtrDescribeQuorumRequest()
				dq.Version = 2
				dt := kmsg.NewDescribeQuorumRequestTopic()
				dt.Topic = "__cluster_metadata"
				dt.Partitions = append(dt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
				dq.Topics = append(dq.Topics, dt)
				resp, err := n.request(context.Background(), dq)
				if err != nil {
					return err
				}
				q := resp.(*kmsg.DescribeQuorumResponse)
				if q.ErrorCode != 0 || len(q.Topics) != 1 || len(q.Topics[0].Partitions) != 1 {
					return fmt.Errorf("DescribeQuorum: %+v", q)
				}
				p := q.Topics[0].Partitions[0]
				var voters []int32
				for _, v := range p.CurrentVoters {
					voters = append(voters, v.ReplicaID)
				}
				slices.Sort(voters)
				if !slices.Equal(voters, []int32{1, 2, 3}) || len(p.Observers) != 1 || p.Observers[0].ReplicaID != 4 {
					return fmt.Errorf("voters %v observers %+v", voters, p.Observers)
				}
				o := p.Observers[0]
				if o.ReplicaDirectoryID == [16]byte{} {
					return fmt.Errorf("observer 4 without its directory id: %+v", o)
				}
				if o.LastFetchTimestamp <= 0 || o.LastCaughtUpTimestamp <= 0 || o.LastCaughtUpTimestamp > o.LastFetchTimestamp ||
					o.LogEndOffset <= 1 || o.LogEndOffset > p.HighWatermark+10 {
					return fmt.Errorf("observer line %+v (high watermark %d)", o, p.HighWatermark)
				}
				return nil
			})
		}
	})
}
