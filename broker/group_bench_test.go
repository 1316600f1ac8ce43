package broker

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/netpoll"
)

// startBenchBroker serves a broker on backend for a benchmark (the test
// harness takes a *testing.T), stopped at cleanup.
func startBenchBroker(b *testing.B, backend string) *testBroker {
	dir := b.TempDir()
	reg, err := OpenRegistry(RegistryOptions{LogDirs: []string{dir}})
	if err != nil {
		b.Fatal(err)
	}
	var bp atomic.Pointer[Broker]
	fwd := netpoll.HandlerFunc(func(req netpoll.Request, frame []byte) { bp.Load().ServeFrame(req, frame) })
	srv, err := netpoll.Listen(netpoll.Options{Listeners: []string{"127.0.0.1:0"}, Backend: backend, Loops: 2, Handler: fwd})
	if err != nil {
		b.Fatal(err)
	}
	br, err := New(Options{NodeID: 0, AdvertisedHost: "127.0.0.1", AdvertisedPort: int32(srv.Addrs()[0].(*net.TCPAddr).Port),
		DataDir: dir, Registry: reg, MessageMaxBytes: 1048588, OffsetsTopicNumPartitions: 4})
	if err != nil {
		b.Fatal(err)
	}
	bp.Store(br)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		br.CloseProducerState()
		reg.Close()
	})
	return &testBroker{Addr: srv.Addrs()[0].String(), Broker: br, Reg: reg, Server: srv, dir: dir, backend: backend}
}

// BenchmarkOffsetCommit100Groups: OffsetCommit requests/s with 100 groups
// committing concurrently (one goroutine per group, one partition per
// commit, answered after the __consumer_offsets append), both backends.
//
//	go test ./broker -run '^$' -bench OffsetCommit100Groups -benchtime 20000x
func BenchmarkOffsetCommit100Groups(b *testing.B) {
	for _, backend := range testBackends {
		b.Run(backend, func(b *testing.B) {
			tb := startBenchBroker(b, backend)
			createTopicB(b, tb, "bench", 1)
			const groups = 100
			clients := make([]*kgo.Client, 10)
			for i := range clients {
				cl, err := kgo.NewClient(kgo.SeedBrokers(tb.Addr))
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				clients[i] = cl
			}
			ctx := context.Background()
			var next atomic.Int64
			var failed atomic.Int64
			// Warm up: create __consumer_offsets and the groups.
			for g := 0; g < groups; g++ {
				commitOnce(ctx, clients[g%len(clients)], fmt.Sprintf("bench-%d", g), 0)
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for g := 0; g < groups; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					cl, id := clients[g%len(clients)], fmt.Sprintf("bench-%d", g)
					for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
						if code := commitOnce(ctx, cl, id, n); code != 0 {
							failed.Add(1)
						}
					}
				}(g)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d commits failed", failed.Load())
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
		})
	}
}

func commitOnce(ctx context.Context, cl *kgo.Client, groupID string, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = groupID, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "bench"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// BenchmarkGroupLeaveToStable: time from one of three franz-go consumers
// leaving (Close: LeaveGroup) to the group being Stable again with the
// other two (they learn of the rebalance on their next heartbeat, every
// 100 ms here, rejoin, and the leader syncs).
//
//	go test ./broker -run '^$' -bench LeaveToStable -benchtime 5x
func BenchmarkGroupLeaveToStable(b *testing.B) {
	for _, backend := range testBackends {
		b.Run(backend, func(b *testing.B) {
			tb := startBenchBroker(b, backend)
			createTopicB(b, tb, "leave", 12)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				id := fmt.Sprintf("leave-%d", i)
				var stops []func()
				for j := 0; j < 3; j++ {
					stops = append(stops, startBenchConsumer(b, tb, id, "leave"))
				}
				waitStable(b, tb, id, 3)
				start := time.Now()
				stops[0]()
				waitStable(b, tb, id, 2)
				total += time.Since(start)
				stops[1]()
				stops[2]()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-stable")
		})
	}
}

func waitStable(b *testing.B, tb *testBroker, id string, members int) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c := tb.Broker.groups
		c.mu.Lock()
		g := c.g.Group(id)
		ok := g != nil && g.State == group.Stable && g.NumMembers() == members
		c.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("group %s never Stable with %d members", id, members)
}

func startBenchConsumer(b *testing.B, tb *testBroker, id, topic string) func() {
	cl, err := kgo.NewClient(kgo.SeedBrokers(tb.Addr), kgo.ConsumerGroup(id), kgo.ConsumeTopics(topic),
		kgo.HeartbeatInterval(100*time.Millisecond), kgo.Balancers(kgo.RangeBalancer()))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	return func() { cancel(); <-done; cl.Close() }
}

func createTopicB(b *testing.B, tb *testBroker, name string, partitions int32) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(tb.Addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, name); err != nil {
		b.Fatal(err)
	}
}
