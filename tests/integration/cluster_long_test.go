//go:build linux && clusterlong

package integration

// The opt-in cluster failover run (make cluster-test): the active controller of a
// three-node cluster is SIGKILLed again and again under a bounded produce load,
// and the test prints how long each failover took and how long a CreateTopics
// takes, without asserting on either (the machine is shared and noisy); it
// asserts correctness only: every acknowledged record is read back at the
// offset it was acknowledged at. Built only with -tags clusterlong, so
// `make test` never compiles it in.
//
// Environment:
//
//	RINGBROKER_CLUSTER_KILLS=N    controller kills per backend (default 20)

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// longLoadInterval paces the produce load: one record per interval,
	// round robin over the partitions (about 200 records/s).
	longLoadInterval = 5 * time.Millisecond
	// longLoadRecordsMax bounds the load per backend.
	longLoadRecordsMax = 40000
	// longFailoverPoll is the pause between two checks while a failover is
	// timed: finer than clusterPoll, so the figure means something.
	longFailoverPoll = 10 * time.Millisecond
	// longCreates is the number of CreateTopics timed per path.
	longCreates = 100
)

func TestClusterLongFailover(t *testing.T) {
	kills := 20
	if v := os.Getenv("RINGBROKER_CLUSTER_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			t.Fatalf("RINGBROKER_CLUSTER_KILLS=%q: want 1 to 1000", v)
		}
		kills = n
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		c := newTestCluster(t, backend)
		c.start(t)
		const topic = "failover-load"
		const parts = 6
		createTopicVia(t, c.controller(t), topic, parts, nil, clusterStepTimeout)
		c.waitTopicsEverywhere(t, map[string]int32{topic: parts}, clusterStepTimeout)

		// CreateTopics round trips: straight to the controller (propose, commit,
		// apply on the controller), and through another node (plus forwarding).
		ctl, nc := c.controller(t), c.nonController(t)
		timeCreates := func(via *clusterNode, prefix string) []time.Duration {
			var rtts []time.Duration
			for i := range longCreates {
				took, err := tryCreateTopic(via, fmt.Sprintf("%s-%d", prefix, i), 1, nil)
				if err != nil {
					t.Fatalf("CreateTopics %d via node %d: %v", i, via.id, err)
				}
				rtts = append(rtts, took)
			}
			return rtts
		}
		direct := timeCreates(ctl, "rtt-controller")
		forwarded := timeCreates(nc, "rtt-forwarded")
		t.Logf("%s: CreateTopics round trip, %d creates straight to the controller: %s", backend, len(direct), durationStats(direct))
		t.Logf("%s: CreateTopics round trip, %d creates through a non-controller (forwarded): %s", backend, len(forwarded), durationStats(forwarded))

		load := startLoad(t, c.seeds(), topic, parts)

		var failovers []time.Duration
		for i := range kills {
			old := c.controller(t)
			killed := time.Now()
			c.kill(t, old)
			deadline := killed.Add(clusterStepTimeout)
			var newID int32
			for {
				id, err := c.agreedController(old.id)
				if err == nil {
					if _, err = tryCreateTopic(c.node(id), fmt.Sprintf("failover-%d", i), 1, nil); err == nil {
						newID = id
						break
					}
				}
				if time.Now().After(deadline) {
					t.Logf("%s: failovers before this one: %s; load: %d acknowledged, %d failed (first: %v)",
						backend, durationStats(failovers), load.acked.Load(), load.failed.Load(), load.firstError())
					t.Fatalf("kill %d of node %d: no new controller taking CreateTopics within %v: %v; %s",
						i+1, old.id, clusterStepTimeout, err, c.inactiveLeader())
				}
				time.Sleep(longFailoverPoll)
			}
			took := time.Since(killed)
			failovers = append(failovers, took)
			t.Logf("kill %d: controller node %d -> node %d in %v (records so far: %d acknowledged, %d failed)",
				i+1, old.id, newID, took.Round(time.Millisecond), load.acked.Load(), load.failed.Load())
			c.startNode(t, old)
			c.waitReady(t)
		}

		sent, acked, failed := load.stop(t)
		got := consumeAll(t, c.seeds(), topic, parts, load.highest())
		lost := 0
		for _, a := range acked {
			if v, ok := got[a.partition][a.offset]; !ok || string(v) != string(a.value) {
				lost++
				if lost <= 10 {
					t.Errorf("acknowledged record %s/%d@%d (%q) not read back (got %q, present %v)", topic, a.partition, a.offset, head(a.value, 40), head(v, 40), ok)
				}
			}
		}
		if lost > 0 {
			t.Errorf("%d of %d acknowledged records lost", lost, len(acked))
		}

		t.Logf("%s: %d controller SIGKILLs; failover (kill -> another ControllerID agreed and a CreateTopics through it succeeded): %s",
			backend, len(failovers), durationStats(failovers))
		t.Logf("%s: load: %d records sent, %d acknowledged (all read back: %v), %d failed (not acknowledged: allowed)", backend, sent, len(acked), lost == 0, failed)
	})
}

// durationStats renders p50, p99 and max of ds.
func durationStats(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return "none"
	}
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return fmt.Sprintf("p50 %v, p99 %v, max %v (n=%d)", r(percentile(s, 0.50)), r(percentile(s, 0.99)), r(s[len(s)-1]), len(s))
}

// ackedRecord is a record the cluster acknowledged, where it said it put it.
type ackedRecord struct {
	partition int32
	offset    int64
	value     []byte
}

// produceLoad is a paced, bounded produce load with franz-go.
type produceLoad struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	sent   atomic.Int64
	acked  atomic.Int64
	failed atomic.Int64

	mu       sync.Mutex
	records  []ackedRecord
	firstErr error
}

// startLoad produces to topic's partitions until stopped or
// longLoadRecordsMax records were sent. Records that fail (their partition's
// leader was killed and did not return within the delivery timeout) are
// counted, not acknowledged.
func startLoad(t *testing.T, seeds []string, topic string, parts int32) *produceLoad {
	t.Helper()
	cl := seedClient(t, seeds,
		kgo.RecordDeliveryTimeout(20*time.Second),
		kgo.MaxBufferedRecords(2000),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	ctx, cancel := context.WithCancel(context.Background())
	l := &produceLoad{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(longLoadInterval)
		defer tick.Stop()
		for i := 0; i < longLoadRecordsMax; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			r := &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: recordValue(topic, i, 100, false)}
			l.sent.Add(1)
			// TryProduce never blocks: a full buffer fails the record at once.
			cl.TryProduce(context.Background(), r, func(r *kgo.Record, err error) {
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstErr == nil {
						l.firstErr = err
					}
					l.mu.Unlock()
					return
				}
				l.acked.Add(1)
				l.mu.Lock()
				l.records = append(l.records, ackedRecord{r.Partition, r.Offset, r.Value})
				l.mu.Unlock()
			})
		}
	}()
	return l
}

// stop ends the load, waits for every outstanding record's outcome (bounded
// by the delivery timeout) and returns what was sent, acknowledged and failed.
func (l *produceLoad) stop(t *testing.T) (int64, []ackedRecord, int64) {
	t.Helper()
	l.cancel()
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.cl.Flush(ctx); err != nil {
		t.Errorf("flush the load: %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.firstErr != nil {
		t.Logf("first failed record: %v", l.firstErr)
	}
	return l.sent.Load(), slices.Clone(l.records), l.failed.Load()
}

// firstError is the error of the first record that failed, or nil.
func (l *produceLoad) firstError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstErr
}

// highest is each partition's highest acknowledged offset plus one.
func (l *produceLoad) highest() map[int32]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32]int64{}
	for _, r := range l.records {
		out[r.partition] = max(out[r.partition], r.offset+1)
	}
	return out
}

// consumeAll reads topic's partitions from the start until each reached
// until[p] (or e2eTimeout passes) and returns the values by partition and
// offset.
func consumeAll(t *testing.T, seeds []string, topic string, parts int32, until map[int32]int64) map[int32]map[int64][]byte {
	t.Helper()
	cl := seedClient(t, seeds, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: fromStart(parts)}), kgo.FetchMaxBytes(64<<20))
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	got := map[int32]map[int64][]byte{}
	next := map[int32]int64{}
	done := func() bool {
		for p, end := range until {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Errorf("consume %s: positions %v, want %v within %v", topic, next, until, e2eTimeout)
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			if got[r.Partition] == nil {
				got[r.Partition] = map[int64][]byte{}
			}
			got[r.Partition][r.Offset] = r.Value
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
		})
	}
	return got
}
