package broker

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/internal/clock"
)

// rawMember is a group member speaking the protocol by hand, so a test can
// make it stop heartbeating (a franz-go client always heartbeats or leaves).
type rawMember struct {
	cl       *kgo.Client
	group    string
	memberID string
	gen      int32
}

func consumerMetadata(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

// join runs the KIP-394 dance and waits for the join phase to complete.
func (m *rawMember) join(ctx context.Context, protocol string, session time.Duration, topics ...string) (*kmsg.JoinGroupResponse, error) {
	for i := 0; i < 2; i++ {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.ProtocolType = m.group, m.memberID, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = int32(session.Milliseconds()), 10000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = protocol, consumerMetadata(topics...)
		req.Protocols = append(req.Protocols, p)
		resp, err := req.RequestWith(ctx, m.cl)
		if err != nil {
			return nil, err
		}
		if resp.ErrorCode == kerr.MemberIDRequired.Code {
			m.memberID = resp.MemberID
			continue
		}
		if resp.ErrorCode == 0 {
			m.gen = resp.Generation
		}
		return resp, nil
	}
	return nil, fmt.Errorf("MEMBER_ID_REQUIRED twice")
}

func (m *rawMember) sync(ctx context.Context, assign map[string][]byte) (*kmsg.SyncGroupResponse, error) {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = m.group, m.memberID, m.gen
	for id, a := range assign {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = id, a
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	return req.RequestWith(ctx, m.cl)
}

// TestGroupSessionTimeout: a member that stops heartbeating is removed
// after its session timeout and its partitions go to the other member.
// The coordinator's clock is stepped by hand across the timeout.
func TestGroupSessionTimeout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		clk := clock.NewManual(time.Now())
		tb := startTestBroker(t, backend, func(o *Options, ro *RegistryOptions) {
			groupTestOptions(o, ro)
			o.Clock = clk
		})
		const topic, id = "sess", "g-sess"
		createTopic(t, tb, topic, 12)
		adm := tb.admin()
		seen := &consumed{seen: map[string]int{}}
		startConsumer(t, tb, id, topic, seen, kgo.Balancers(kgo.RangeBalancer()))
		waitStableOwnership(t, tb, adm, id, topic, 12, 1)

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		raw := &rawMember{cl: tb.client(), group: id}
		resp, err := raw.join(ctx, "range", time.Second, topic)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("raw join: %+v %v", resp, err)
		}
		sresp, err := raw.sync(ctx, nil)
		if err != nil || sresp.ErrorCode != 0 {
			t.Fatalf("raw sync: %+v %v", sresp, err)
		}
		var ca kmsg.ConsumerMemberAssignment
		if err := ca.ReadFrom(sresp.MemberAssignment); err != nil || len(ca.Topics) != 1 || len(ca.Topics[0].Partitions) != 6 {
			t.Fatalf("raw member assignment %+v %v", ca, err)
		}
		owners := waitStableOwnership(t, tb, adm, id, topic, 12, 2)
		if len(owners[raw.memberID]) != 6 {
			t.Fatalf("raw member owns %v", owners[raw.memberID])
		}
		// The raw member now goes silent: still a member 900 ms on, gone
		// once its 1 s session timeout has passed.
		clk.Advance(900 * time.Millisecond)
		if st, _, n := groupState(tb, id); st != group.Stable || n != 2 {
			t.Fatalf("silent member removed too early (900ms): %s with %d members", st, n)
		}
		clk.Advance(100 * time.Millisecond)
		owners = waitStableOwnership(t, tb, adm, id, topic, 12, 1)
		if _, ok := owners[raw.memberID]; ok {
			t.Fatalf("silent member still owns partitions: %v", owners)
		}
	})
}

// TestGroupInitialRebalanceDelay: the first join of an Empty group waits
// group.initial.rebalance.delay.ms for more members, then completes, on a
// manual clock: not answered 1 ms before the delay ends, answered at it.
func TestGroupInitialRebalanceDelay(t *testing.T) {
	clk := clock.NewManual(time.Now())
	tb := startTestBroker(t, testBackends[0], func(o *Options, ro *RegistryOptions) {
		groupTestOptions(o, ro)
		o.Clock = clk
		o.GroupInitialRebalanceDelay = 3 * time.Second
	})
	const id = "g-delay"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw := &rawMember{cl: tb.client(), group: id}
	type joined struct {
		resp *kmsg.JoinGroupResponse
		err  error
	}
	done := make(chan joined, 1)
	go func() {
		resp, err := raw.join(ctx, "range", 30*time.Second, "t")
		done <- joined{resp, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _, n := groupState(tb, id); st == group.PreparingRebalance && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			st, _, n := groupState(tb, id)
			t.Fatalf("join never parked in the initial delay: %s with %d members", st, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	clk.Advance(2999 * time.Millisecond)
	if st, _, _ := groupState(tb, id); st != group.PreparingRebalance {
		t.Fatalf("join completed before the initial delay ended: %s", st)
	}
	clk.Advance(time.Millisecond)
	var j joined
	select {
	case j = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("join not answered 10 s after the initial delay ended")
	}
	if j.err != nil || j.resp.ErrorCode != 0 || j.resp.Generation != 1 || j.resp.LeaderID != raw.memberID {
		t.Fatalf("join: %+v %v", j.resp, j.err)
	}
	if st, gen, n := groupState(tb, id); st != group.CompletingRebalance || gen != 1 || n != 1 {
		t.Fatalf("after the delay: %s generation %d with %d members", st, gen, n)
	}
}

// TestGroupStaticMember: a static member restarting within its session
// timeout gets its partitions back with no rebalance (same generation).
func TestGroupStaticMember(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, groupTestOptions)
		const topic, id = "static", "g-static"
		createTopic(t, tb, topic, 12)
		adm := tb.admin()
		seen := &consumed{seen: map[string]int{}}
		bal := kgo.Balancers(kgo.RangeBalancer())
		startConsumer(t, tb, id, topic, seen, bal, kgo.InstanceID("s1"), kgo.SessionTimeout(10*time.Second))
		stop2 := startConsumer(t, tb, id, topic, seen, bal, kgo.InstanceID("s2"), kgo.SessionTimeout(10*time.Second))
		before := waitStableOwnership(t, tb, adm, id, topic, 12, 2)
		_, gen, _ := groupState(tb, id)
		stop2()
		if st, g, n := groupState(tb, id); st != group.Stable || g != gen || n != 2 {
			t.Fatalf("after static member closed: %s gen %d (was %d), %d members", st, g, gen, n)
		}
		produceN(t, tb, topic, 24)
		seen2 := &consumed{seen: map[string]int{}}
		startConsumer(t, tb, id, topic, seen2, bal, kgo.InstanceID("s2"), kgo.SessionTimeout(10*time.Second))
		waitConsumed(t, seen2, 1)
		after := waitStableOwnership(t, tb, adm, id, topic, 12, 2)
		if _, g, _ := groupState(tb, id); g != gen {
			t.Fatalf("static rejoin rebalanced: generation %d -> %d", gen, g)
		}
		if !slices.Equal(sorted(before["s2"]), sorted(after["s2"])) || !slices.Equal(sorted(before["s1"]), sorted(after["s1"])) {
			t.Fatalf("assignment changed: before %v after %v", before, after)
		}
	})
}

func sorted(s []int32) []int32 {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestGroupBadInput: fencing codes, empty group ids, and a bounded
// 9,000-member join storm.
func TestGroupBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, groupTestOptions)
		createTopic(t, tb, "bad", 1)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cl := tb.client()
		m := &rawMember{cl: cl, group: "g-bad"}
		if resp, err := m.join(ctx, "range", time.Minute, "bad"); err != nil || resp.ErrorCode != 0 || resp.Generation != 1 {
			t.Fatalf("join: %+v %v", resp, err)
		}
		if resp, err := m.sync(ctx, map[string][]byte{m.memberID: {0}}); err != nil || resp.ErrorCode != 0 {
			t.Fatalf("sync: %+v %v", resp, err)
		}
		commit := func(groupID, member string, gen int32) int16 {
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Group, req.MemberID, req.Generation = groupID, member, gen
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = "bad"
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Offset = 7
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].Partitions[0].ErrorCode
		}
		heartbeat := func(groupID, member string, gen int32) int16 {
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group, req.MemberID, req.Generation = groupID, member, gen
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.ErrorCode
		}
		for _, tc := range []struct {
			name string
			got  int16
			want *kerr.Error
		}{
			{"commit stale generation", commit("g-bad", m.memberID, 0), kerr.IllegalGeneration},
			{"commit unknown member", commit("g-bad", "nobody", 1), kerr.UnknownMemberID},
			{"commit empty group id", commit("", m.memberID, 1), kerr.InvalidGroupID},
			{"commit non-member to a live group", commit("g-bad", "", -1), kerr.UnknownMemberID},
			{"heartbeat stale generation", heartbeat("g-bad", m.memberID, 0), kerr.IllegalGeneration},
			{"heartbeat unknown member", heartbeat("g-bad", "nobody", 1), kerr.UnknownMemberID},
			{"heartbeat empty group id", heartbeat("", m.memberID, 1), kerr.InvalidGroupID},
		} {
			if tc.got != tc.want.Code {
				t.Errorf("%s: got %v, want %v", tc.name, kerr.ErrorForCode(tc.got), tc.want)
			}
		}
		if code := commit("g-bad", m.memberID, 1); code != 0 {
			t.Fatalf("valid commit: %v", kerr.ErrorForCode(code))
		}
		empty := &rawMember{cl: cl, group: ""}
		if resp, err := empty.join(ctx, "range", 5*time.Second, "bad"); err != nil || resp.ErrorCode != kerr.InvalidGroupID.Code {
			t.Fatalf("empty group join: %+v %v", resp, err)
		}

		// Join storm: 9,000 first joins; GroupMaxSize (1000) are handed a
		// member id, the rest are refused, memory stays bounded.
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		const storm, workers = 9000, 30
		var mu sync.Mutex
		codes := map[int16]int{}
		var wg sync.WaitGroup
		stormClients := []*kgo.Client{tb.client(), tb.client(), tb.client()}
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < storm/workers; i++ {
					req := kmsg.NewPtrJoinGroupRequest()
					req.Group, req.ProtocolType, req.SessionTimeoutMillis = "storm", "consumer", 30000
					p := kmsg.NewJoinGroupRequestProtocol()
					p.Name, p.Metadata = "range", consumerMetadata("bad")
					req.Protocols = append(req.Protocols, p)
					resp, err := req.RequestWith(ctx, stormClients[w%len(stormClients)])
					mu.Lock()
					if err != nil {
						codes[-999]++
					} else {
						codes[resp.ErrorCode]++
					}
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		if codes[kerr.MemberIDRequired.Code] != group.DefaultMaxMembers || codes[kerr.GroupMaxSizeReached.Code] != storm-group.DefaultMaxMembers {
			t.Fatalf("join storm codes %v", codes)
		}
		growth := int64(ms1.HeapInuse) - int64(ms0.HeapInuse)
		t.Logf("join storm: %v; heap in use grew %d KiB", codes, growth/1024)
		if growth > 64<<20 {
			t.Fatalf("join storm grew the heap by %d MiB", growth>>20)
		}
		// The broker still serves everyone else.
		if code := heartbeat("g-bad", m.memberID, 1); code != 0 {
			t.Fatalf("heartbeat after the storm: %v", kerr.ErrorForCode(code))
		}
	})
}
