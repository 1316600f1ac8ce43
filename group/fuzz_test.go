package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// FuzzEvents feeds random event sequences (joins, syncs, heartbeats,
// leaves, commits, time steps, static rejoins, deletes) for a few members
// of two groups to the state machine and checks its invariants after every
// step:
//   - every join and sync request is answered exactly once, eventually
//     (after the final long advance nothing may still be waiting);
//   - members never exceed MaxMembers; the leader is a member of a
//     non-empty group; a Stable or CompletingRebalance group has members;
//   - the static map and the member table agree;
//   - a successful join reply names the group's current generation.
func FuzzEvents(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 1, 2, 0, 9, 3, 1, 4, 0})
	f.Add([]byte{0, 0, 8, 0, 0, 1, 0, 1, 9, 9, 9, 5, 1, 2, 1, 6, 2})
	f.Add([]byte{7, 0, 7, 1, 7, 0, 1, 0, 9, 10, 11, 12, 13, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 512 {
			data = data[:512]
		}
		now := time.Unix(1000, 0)
		c := New(Config{InitialRebalanceDelay: 500 * time.Millisecond, MinSessionTimeout: time.Second,
			MaxSessionTimeout: 30 * time.Second, MaxMembers: 4, MaxGroups: 3})
		type cl struct {
			member string
			gen    int32
		}
		const nClients = 5
		var clients [nClients]cl
		outstanding := 0
		groups := []string{"a", "b"}
		for i := 0; i+1 < len(data); i += 2 {
			op, arg := data[i]%14, data[i+1]
			ci := int(arg) % nClients
			g := groups[int(arg>>4)%len(groups)]
			cur := &clients[ci]
			inst := ""
			if ci < 2 {
				inst = fmt.Sprintf("i%d", ci)
			}
			switch op {
			case 0, 7, 8:
				member := cur.member
				if op == 8 {
					member = ""
				}
				outstanding++
				c.Join(now, JoinRequest{Group: g, MemberID: member, InstanceID: inst, ClientID: "c", ProtocolType: "consumer",
					Protocols: []Protocol{{Name: []string{"range", "rr"}[arg&1], Metadata: []byte{arg}}}, SessionTimeout: 2 * time.Second,
					RebalanceTimeout: 3 * time.Second, RequireKnownMemberID: op != 7},
					func(r JoinResult) {
						outstanding--
						if r.Err == 0 || r.Err == kerr.MemberIDRequired.Code {
							cur.member = r.MemberID
						}
						if r.Err == 0 {
							cur.gen = r.Generation
							if gg := c.Group(g); gg == nil || gg.Generation != r.Generation {
								t.Fatalf("join answered with generation %d, group has %v", r.Generation, gg)
							}
						}
					})
			case 1:
				outstanding++
				as := map[string][]byte{}
				for _, o := range clients {
					as[o.member] = []byte{arg}
				}
				c.Sync(now, SyncRequest{Group: g, MemberID: cur.member, InstanceID: inst, Generation: cur.gen, Assignments: as},
					func(SyncResult) { outstanding-- })
			case 2:
				c.Heartbeat(now, g, cur.member, inst, cur.gen)
			case 3:
				c.Leave(now, g, []LeaveMember{{MemberID: cur.member, InstanceID: inst}})
			case 4:
				if c.CheckCommit(now, g, cur.member, inst, cur.gen) == 0 {
					c.ApplyOffset(now, g, TopicPartition{"t", int32(arg % 3)}, Offset{Offset: int64(arg)})
				}
			case 5:
				c.DeleteGroup(g)
			case 6:
				c.ExpireOffsets(now, time.Second, func(string, int32) bool { return arg&1 == 0 })
			default:
				now = now.Add(time.Duration(arg) * 20 * time.Millisecond)
				c.Tick(now)
			}
			checkInvariants(t, c)
		}
		for i := 0; i < 10; i++ {
			now = now.Add(10 * time.Second)
			c.Tick(now)
			checkInvariants(t, c)
		}
		if outstanding != 0 {
			t.Fatalf("%d join/sync requests never answered", outstanding)
		}
	})
}

func checkInvariants(t *testing.T, c *Coordinator) {
	t.Helper()
	if c.NumGroups() > c.cfg.MaxGroups {
		t.Fatalf("%d groups > max %d", c.NumGroups(), c.cfg.MaxGroups)
	}
	for _, g := range c.Groups() {
		if len(g.members)+len(g.pending) > c.cfg.MaxMembers {
			t.Fatalf("group %s: %d members + %d pending > max", g.ID, len(g.members), len(g.pending))
		}
		if len(g.order) != len(g.members) {
			t.Fatalf("group %s: order %d != members %d", g.ID, len(g.order), len(g.members))
		}
		if (g.State == Stable || g.State == CompletingRebalance) && (len(g.members) == 0 || g.members[g.Leader] == nil) {
			t.Fatalf("group %s %s without members or leader", g.ID, g.State)
		}
		for inst, id := range g.static {
			if m := g.members[id]; m == nil || m.InstanceID != inst {
				t.Fatalf("group %s: static %s -> %s not a member", g.ID, inst, id)
			}
		}
		if g.State == Empty && len(g.members) > 0 {
			t.Fatalf("group %s Empty with members", g.ID)
		}
	}
}
