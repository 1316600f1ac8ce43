package nullbroker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Listen(Options{Addr: "127.0.0.1:0", DefaultPartitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestProduceCountsOffsets produces with franz-go in each acks mode and checks
// that every record got a distinct offset and the broker counted them all.
func TestProduceCountsOffsets(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	admin, err := kgo.NewClient(kgo.SeedBrokers(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	created, err := kadm.NewClient(admin).CreateTopic(ctx, 2, 1, nil, "two")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %v", err, created.Err)
	}
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, 2, 1, nil, "two"); err == nil {
		t.Fatal("second create of the same topic succeeded")
	}

	cases := []struct {
		name  string
		topic string
		opts  []kgo.Opt
		want  int // partitions
	}{
		{"acks=all idempotent", "two", nil, 2},
		{"acks=1", "auto", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, 3},
	}
	const records = 5000
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Addr()), kgo.DefaultProduceTopic(tc.topic),
				kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			var mu sync.Mutex
			seen := map[[2]int64]bool{}
			var wg sync.WaitGroup
			for i := 0; i < records; i++ {
				wg.Add(1)
				cl.Produce(ctx, &kgo.Record{Value: make([]byte, 100)}, func(r *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					k := [2]int64{int64(r.Partition), r.Offset}
					if seen[k] {
						t.Errorf("offset %v assigned twice", k)
					}
					seen[k] = true
					mu.Unlock()
				})
			}
			wg.Wait()
			offs := s.Offsets(tc.topic)
			if len(offs) != tc.want {
				t.Fatalf("partitions = %d, want %d", len(offs), tc.want)
			}
			var sum int64
			for _, o := range offs {
				sum += o
			}
			if sum != records {
				t.Fatalf("broker counted %d records, want %d", sum, records)
			}
		})
	}

	t.Run("acks=0", func(t *testing.T) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr()), kgo.DefaultProduceTopic("zero"),
			kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := 0; i < 100; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			var sum int64
			for _, o := range s.Offsets("zero") {
				sum += o
			}
			if sum == 100 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("acks=0: broker counted %d, want 100", sum)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestVersions checks the request-header paths kgo does not exercise by
// default: an ApiVersions version above ours and an old Metadata version.
func TestVersions(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr()), kgo.MaxVersions(kversionsMetadataV1()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	name := "old"
	rt.Topic = &name
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version != 1 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 3 {
		t.Fatalf("metadata v1: %+v", resp)
	}

	if got := countRecords(nil); got != 0 {
		t.Fatalf("countRecords(nil) = %d", got)
	}
	if _, err := skipHeader([]byte{0, 5, 'a'}, false); err == nil {
		t.Fatal("short client id accepted")
	}
}
