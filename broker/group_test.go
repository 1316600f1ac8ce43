package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ringbroker/ringbroker/group"
)

// groupTestOptions: a small __consumer_offsets keeps test brokers fast.
func groupTestOptions(o *Options, _ *RegistryOptions) {
	o.OffsetsTopicNumPartitions = 4
}

func createTopic(t *testing.T, tb *testBroker, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tb.admin().CreateTopic(ctx, partitions, 1, nil, name); err != nil {
		t.Fatal(err)
	}
}

func produceN(t *testing.T, tb *testBroker, topic string, n int) {
	t.Helper()
	cl := tb.client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Value: []byte(fmt.Sprint(i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// groupState returns the coordinator's view of a group (state, generation,
// members) under its lock.
func groupState(tb *testBroker, id string) (group.State, int32, int) {
	c := tb.Broker.groups
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.g.Group(id)
	if g == nil {
		return group.Dead, -1, 0
	}
	return g.State, g.Generation, g.NumMembers()
}

// waitStableOwnership waits until the group is Stable with members members
// whose assignments cover every partition of topic exactly once, and
// returns each member's partitions keyed by instance id (static members)
// or member id.
func waitStableOwnership(t *testing.T, tb *testBroker, adm *kadm.Client, id, topic string, partitions, members int) map[string][]int32 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		dg, err := adm.DescribeGroups(ctx, id)
		cancel()
		if err == nil {
			g := dg[id]
			owners := map[int32]int{}
			byMember := map[string][]int32{}
			for _, m := range g.Members {
				if ca, ok := m.Assigned.AsConsumer(); ok {
					for _, tp := range ca.Topics {
						if tp.Topic == topic {
							for _, p := range tp.Partitions {
								owners[p]++
								key := m.MemberID
								if m.InstanceID != nil {
									key = *m.InstanceID
								}
								byMember[key] = append(byMember[key], p)
							}
						}
					}
				}
			}
			ok := g.State == "Stable" && len(g.Members) == members && len(owners) == partitions
			for _, n := range owners {
				ok = ok && n == 1
			}
			last = fmt.Sprintf("state=%s members=%d owners=%v", g.State, len(g.Members), owners)
			if ok {
				return byMember
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("group %s never stable with %d members owning %d partitions once each: %s", id, members, partitions, last)
	return nil
}

type consumed struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *consumed) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// startConsumer runs a group consumer polling into into until the test ends
// or stop is called (which closes the client: commit + LeaveGroup).
func startConsumer(t *testing.T, tb *testBroker, id, topic string, into *consumed, opts ...kgo.Opt) (stop func()) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tb.Addr), kgo.ConsumerGroup(id), kgo.ConsumeTopics(topic),
		kgo.HeartbeatInterval(100 * time.Millisecond), kgo.SessionTimeout(3 * time.Second),
		kgo.AutoCommitInterval(100 * time.Millisecond), kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				into.mu.Lock()
				into.seen[fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)]++
				into.mu.Unlock()
			})
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			cl.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitConsumed(t *testing.T, c *consumed, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.count() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := c.count(); got < n {
		t.Fatalf("consumed %d distinct records, want %d", got, n)
	}
}

// waitConsumedToEnd waits until c holds the last record of every partition
// of topic.
func waitConsumedToEnd(t *testing.T, tb *testBroker, c *consumed, topic string, partitions int32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for p := int32(0); p < partitions; p++ {
		last := tb.Reg.Partition(topic, p).Log.HighWatermark() - 1
		key := fmt.Sprintf("%s/%d/%d", topic, p, last)
		for {
			c.mu.Lock()
			_, ok := c.seen[key]
			c.mu.Unlock()
			if ok || last < 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition %d: record %d never consumed", p, last)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestGroupConsumers: three franz-go group consumers on a 12-partition
// topic, members coming and going, eager (range) and cooperative-sticky;
// commits read back and listed with kadm; a restart keeps offsets and
// groups and a consumer resumes from its commit.
func TestGroupConsumers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, groupTestOptions)
		const topic, parts = "events", 12
		createTopic(t, tb, topic, parts)
		adm := tb.admin()
		balancers := map[string]kgo.GroupBalancer{"range": kgo.RangeBalancer(), "cooperative-sticky": kgo.CooperativeStickyBalancer()}
		total := 0
		for _, name := range []string{"range", "cooperative-sticky"} {
			id := "g-" + name
			bal := kgo.Balancers(balancers[name])
			seen := &consumed{seen: map[string]int{}}
			produceN(t, tb, topic, 240)
			total += 240
			stop1 := startConsumer(t, tb, id, topic, seen, bal)
			waitStableOwnership(t, tb, adm, id, topic, parts, 1)
			stop2 := startConsumer(t, tb, id, topic, seen, bal)
			waitStableOwnership(t, tb, adm, id, topic, parts, 2)
			stop3 := startConsumer(t, tb, id, topic, seen, bal)
			waitStableOwnership(t, tb, adm, id, topic, parts, 3)
			produceN(t, tb, topic, 240)
			total += 240
			stop2()
			waitStableOwnership(t, tb, adm, id, topic, parts, 2)
			produceN(t, tb, topic, 120)
			total += 120
			waitConsumed(t, seen, total)
			stop1()
			stop3()
			if st, _, n := groupState(tb, id); st != group.Empty || n != 0 {
				t.Fatalf("after every consumer left: %s with %d members", st, n)
			}
			// Closing commits: every partition's commit is its end offset.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			offs, err := adm.FetchOffsets(ctx, id)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			sum := int64(0)
			offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
			if sum != int64(total) {
				t.Fatalf("%s: committed offsets sum to %d, want %d", id, sum, total)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		before, err := adm.FetchOffsets(ctx, "g-range")
		if err != nil {
			t.Fatal(err)
		}
		listed, err := adm.ListGroups(ctx)
		if err != nil || len(listed.Groups()) != 2 {
			t.Fatalf("ListGroups: %v %v", listed.Groups(), err)
		}

		tb.restart()
		adm = tb.admin()
		listed, err = adm.ListGroups(ctx)
		if err != nil || len(listed.Groups()) != 2 || listed["g-range"].State != "Empty" || listed["g-range"].ProtocolType != "consumer" {
			t.Fatalf("ListGroups after restart: %+v %v", listed, err)
		}
		after, err := adm.FetchOffsets(ctx, "g-range")
		if err != nil {
			t.Fatal(err)
		}
		before.Each(func(o kadm.OffsetResponse) {
			a, ok := after.Lookup(o.Topic, o.Partition)
			if !ok || a.At != o.At {
				t.Errorf("after restart %s-%d: %+v, before %d", o.Topic, o.Partition, a, o.At)
			}
		})
		// A consumer resumes from its commit: it sees only the new records.
		// g-range committed before the cooperative round produced more.
		committed := int64(0)
		after.Each(func(o kadm.OffsetResponse) { committed += o.At })
		want := total - int(committed) + 24
		produceN(t, tb, topic, 24)
		seen := &consumed{seen: map[string]int{}}
		startConsumer(t, tb, "g-range", topic, seen)
		waitConsumed(t, seen, want)
		// A consumer reads each partition in order: once it holds every
		// partition's last record, it read all it ever will.
		waitConsumedToEnd(t, tb, seen, topic, parts)
		if n := seen.count(); n != want {
			t.Fatalf("resumed consumer read %d records, want the %d after its commits", n, want)
		}
	})
}
