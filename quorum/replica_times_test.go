package quorum

import (
	"fmt"
	"testing"
	"time"
)

// virtualMs is the simulation's clock as NodeConfig.Now sees it: 10 ms a
// step from an arbitrary epoch.
func virtualMs(c *cluster) int64 { return 1_000_000 + int64(c.now)*10 }

// TestLeaderStampsReplicaTimes: the leader stamps each follower's answers
// (Status.Replicas, DescribeQuorum's last fetch and last caught-up times):
// both move while a follower answers and keeps up, both stop when it is
// down, the caught-up time moves again once it caught up after a restart,
// and a new leader starts with none (Kafka's LeaderState is per epoch).
func TestLeaderStampsReplicaTimes(t *testing.T) {
	var c *cluster
	c = newCluster(t, 11, 3, func(cfg *NodeConfig) {
		cfg.Now = func() time.Time { return time.UnixMilli(virtualMs(c)) }
	})
	leader := c.waitLeader()
	c.proposeAndWait(leader, "a")
	c.waitConverged()
	times := func(id uint64) ReplicaTimes {
		t.Helper()
		st := c.members[leader].node.Status()
		r, ok := st.Replicas[id]
		if !ok {
			c.fatalf("leader %d has no times for %d: %+v", leader, id, st.Replicas)
		}
		return r
	}
	up, down := leader%3+1, (leader+1)%3+1
	for _, id := range []uint64{up, down} {
		r := times(id)
		if r.LastFetchMs <= 1_000_000 || r.LastCaughtUpMs <= 1_000_000 || r.LastCaughtUpMs > r.LastFetchMs || r.LastFetchMs > virtualMs(c) {
			c.fatalf("member %d: %+v (now %d)", id, r, virtualMs(c))
		}
	}
	if _, ok := c.members[leader].node.Status().Replicas[leader]; ok {
		c.fatalf("the leader stamps itself")
	}
	for _, id := range []uint64{up, down} {
		if st := c.members[id].node.Status(); st.Replicas != nil {
			c.fatalf("follower %d shows replica times %+v", id, st.Replicas)
		}
	}

	// Heartbeats alone move both times of a follower that keeps up.
	before := times(up)
	for range 5 {
		c.step()
	}
	after := times(up)
	if after.LastFetchMs <= before.LastFetchMs || after.LastCaughtUpMs <= before.LastCaughtUpMs {
		c.fatalf("idle follower %d: %+v then %+v", up, before, after)
	}

	// A follower that is down: its times stand still while the other's go on.
	c.crash(down)
	c.step()
	stopped := times(down)
	for i := range 20 {
		c.proposeAndWait(leader, fmt.Sprintf("b%d", i))
	}
	if r := times(down); r != stopped {
		c.fatalf("member %d is down, its times moved: %+v then %+v", down, stopped, r)
	}
	if r := times(up); r.LastFetchMs <= after.LastFetchMs || r.LastCaughtUpMs <= after.LastCaughtUpMs {
		c.fatalf("live follower %d: %+v then %+v", up, after, r)
	}

	// Back and caught up: its caught-up time passes the crash.
	c.restart(down)
	c.waitConverged()
	for range 3 {
		c.step()
	}
	if r := times(down); r.LastFetchMs <= stopped.LastFetchMs || r.LastCaughtUpMs <= stopped.LastFetchMs {
		c.fatalf("member %d restarted and caught up: %+v (before the crash %+v)", down, r, stopped)
	}

	// A new leader starts with no times: the old leader never answers it.
	old := leader
	c.crash(old)
	if !c.stepUntil(unitStepsMax, func() bool {
		l := c.leader()
		return l != 0 && l != old && c.members[l].node.Status().LeaderReady
	}) {
		c.fatalf("no new leader: %s", c.describe())
	}
	leader = c.leader()
	for range 5 {
		c.step()
	}
	st := c.members[leader].node.Status()
	if _, ok := st.Replicas[old]; ok {
		c.fatalf("new leader %d has times for the crashed old leader %d: %+v", leader, old, st.Replicas)
	}
	other := 6 - leader - old
	if r, ok := st.Replicas[other]; !ok || r.LastFetchMs < 0 {
		c.fatalf("new leader %d has no times for %d: %+v", leader, other, st.Replicas)
	}
}
