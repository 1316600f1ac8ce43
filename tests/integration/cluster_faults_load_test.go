//go:build linux && clusterfaults

package integration

// The load of the fault schedule (cluster_faults_test.go): the failover clock,
// the idempotent acks=all producers, the consumer group and the reader of its
// committed offsets.

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ---- the failover clock ------------------------------------------------------

// failoverWatch times one partition whose leader was broken at since: done
// when a record handed to the producer at or after since is acknowledged there.
type failoverWatch struct {
	kind      faultKind
	step      int
	topic     string
	partition int32
	since     time.Time
	took      time.Duration // 0 while open
}

// failoverClock holds the watches; the producers' callbacks close them.
type failoverClock struct {
	mu      sync.Mutex
	watches []*failoverWatch
}

func (f *failoverClock) open(w *failoverWatch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watches = append(f.watches, w)
}

// acked is called for every acknowledged record: handed is when it was
// handed to the producer, at when its acknowledgement came.
func (f *failoverClock) acked(topic string, p int32, handed, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.watches {
		if w.took == 0 && w.topic == topic && w.partition == p && !handed.Before(w.since) {
			w.took = max(at.Sub(w.since), time.Nanosecond)
		}
	}
}

// samples returns the closed watches' durations whose kind is in kinds (all
// when empty), and the watches still open.
func (f *failoverClock) samples(kinds ...faultKind) (took []time.Duration, open []failoverWatch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.watches {
		if len(kinds) > 0 && !slices.Contains(kinds, w.kind) {
			continue
		}
		if w.took == 0 {
			open = append(open, *w)
		} else {
			took = append(took, w.took)
		}
	}
	return took, open
}

// perFault renders each fault's watches: "fault N (kind): topic/p 1.2s, ...".
func (f *failoverClock) perFault() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	byStep := map[int][]string{}
	kinds := map[int]faultKind{}
	for _, w := range f.watches {
		took := "never"
		if w.took != 0 {
			took = w.took.Round(time.Millisecond).String()
		}
		byStep[w.step] = append(byStep[w.step], fmt.Sprintf("%s/%d %s", w.topic, w.partition, took))
		kinds[w.step] = w.kind
	}
	var out []string
	for _, step := range slices.Sorted(maps.Keys(byStep)) {
		out = append(out, fmt.Sprintf("fault %d (%s) failover: %s", step+1, kinds[step], strings.Join(byStep[step], ", ")))
	}
	return out
}

// faultStats renders p50, p99 and max of ds.
func faultStats(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return "none"
	}
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("p50 %v, p99 %v, max %v (n=%d)", r(percentile(s, 0.50)), r(percentile(s, 0.99)), r(s[len(s)-1]), len(s))
}

// ---- the produce load --------------------------------------------------------

// faultLoad is one idempotent acks=all producer (kgo's unbounded retries) of
// values "k-<seq>" to one topic, seq round robin over its partitions, paced,
// bounded in count (faultsRecordsMax) and in flight (faultsInflightMax), until
// stopped.
type faultLoad struct {
	topic string
	cl    *kgo.Client
	clock *failoverClock

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{} // closed when every handed record's callback ran

	handed, ackCount, failCount atomic.Int64

	mu    sync.Mutex
	acked map[int32][]int // per partition, the acknowledged seqs in ack order
	// ackOf is where and when each acknowledged seq was acknowledged, for
	// the report of a lost one.
	ackOf map[int]ackInfo
	err   error // the first failure
}

func startFaultLoad(t *testing.T, seeds []string, topic string, clock *failoverClock, logDir string) *faultLoad {
	t.Helper()
	l := &faultLoad{topic: topic, clock: clock, stop: make(chan struct{}), done: make(chan struct{}), acked: map[int32][]int{},
		ackOf: map[int]ackInfo{}}
	opts := []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(2 * time.Millisecond)}
	if logDir != "" {
		// The producer's own account of its retries, beside the nodes' logs.
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(fmt.Sprintf("%s/producer-%s.log", logDir, topic))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		level := kgo.LogLevelInfo
		if os.Getenv("RINGBROKER_FAULTS_CLIENT_DEBUG") != "" {
			level = kgo.LogLevelDebug
		}
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(f, level, func() string {
			return time.Now().UTC().Format("2006-01-02T15:04:05.000Z ")
		})))
	}
	l.cl = seedClient(t, seeds, opts...)
	t.Cleanup(l.halt)
	inflight := make(chan struct{}, faultsInflightMax)
	go func() {
		defer close(l.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		tick := time.NewTicker(faultsLoadInterval)
		defer tick.Stop()
		for seq := range faultsRecordsMax {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			select {
			case inflight <- struct{}{}:
			case <-l.stop:
				return
			}
			p := int32(seq % faultsParts)
			handed := time.Now()
			l.handed.Add(1)
			wg.Add(1)
			l.cl.Produce(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: []byte("k-" + strconv.Itoa(seq))},
				func(r *kgo.Record, err error) {
					defer wg.Done()
					defer func() { <-inflight }()
					if err != nil {
						l.failCount.Add(1)
						l.mu.Lock()
						if l.err == nil {
							l.err = fmt.Errorf("record k-%d to %s/%d: %w", seq, topic, p, err)
						}
						l.mu.Unlock()
						return
					}
					l.clock.acked(topic, p, handed, time.Now())
					l.mu.Lock()
					l.acked[p] = append(l.acked[p], seq)
					l.ackOf[seq] = ackInfo{offset: r.Offset, at: time.Now()}
					l.mu.Unlock()
					l.ackCount.Add(1)
				})
		}
	}()
	return l
}

// halt stops handing records over (those handed keep their retries).
func (l *faultLoad) halt() { l.stopOnce.Do(func() { close(l.stop) }) }

// finish halts the load and waits, bounded, for every handed record's
// outcome; past the bound it closes the client, failing what is left.
func (l *faultLoad) finish(t *testing.T) {
	t.Helper()
	l.halt()
	select {
	case <-l.done:
		return
	case <-time.After(faultsFinishTimeout):
	}
	t.Errorf("%s: %d of %d handed records without an outcome %v after the load stopped; closing the producer",
		l.topic, l.handed.Load()-l.ackCount.Load()-l.failCount.Load(), l.handed.Load(), faultsFinishTimeout)
	l.cl.Close()
	select {
	case <-l.done:
	case <-time.After(clusterRequestTimeout):
		t.Errorf("%s: the load did not end within %v of closing its client", l.topic, clusterRequestTimeout)
	}
}

// ackInfo is the offset an acknowledgement gave a record and when it came.
type ackInfo struct {
	offset int64
	at     time.Time
}

// ackOfSeq is where and when seq was acknowledged.
func (l *faultLoad) ackOfSeq(seq int) ackInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ackOf[seq]
}

func (l *faultLoad) snapshot() (map[int32][]int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32][]int{}
	for p, seqs := range l.acked {
		out[p] = slices.Clone(seqs)
	}
	return out, l.err
}

// waitProgress waits until every load acknowledged n more records than it had
// when called and every failover watch of clock closed (so the next fault's
// figures are its own), bounded by clusterStepTimeout; it returns an error
// naming the loads or partitions that did not.
func waitProgress(loads []*faultLoad, clock *failoverClock, n int64) error {
	from := make([]int64, len(loads))
	for i, l := range loads {
		from[i] = l.ackCount.Load()
	}
	_, err := pollUntil(clusterStepTimeout, func() error {
		for i, l := range loads {
			if got := l.ackCount.Load() - from[i]; got < n {
				return fmt.Errorf("%s: %d of %d more records acknowledged (%d failed so far)", l.topic, got, n, l.failCount.Load())
			}
		}
		if _, open := clock.samples(); len(open) > 0 {
			w := open[0]
			return fmt.Errorf("%s/%d: no record produced after fault %d (%s) acknowledged yet (%d partitions waiting)",
				w.topic, w.partition, w.step+1, w.kind, len(open))
		}
		return nil
	})
	return err
}

// ---- the consumer group ------------------------------------------------------

// groupConsumer is one member of faultsGroup, committing with kgo's
// autocommit (every second, and on revoke) until stopped.
type groupConsumer struct {
	id       int
	cl       *kgo.Client
	consumed atomic.Int64
	lastNano atomic.Int64 // when it last got a record (UnixNano)
	fetchErr atomic.Int64
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func startGroupConsumer(t *testing.T, id int, seeds []string, topics []string) *groupConsumer {
	t.Helper()
	g := &groupConsumer{id: id, stop: make(chan struct{}), done: make(chan struct{})}
	g.cl = seedClient(t, seeds, kgo.ConsumerGroup(faultsGroup), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitInterval(time.Second))
	t.Cleanup(g.halt)
	go func() {
		defer close(g.done)
		for {
			select {
			case <-g.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			fs := g.cl.PollFetches(ctx)
			cancel()
			fs.EachError(func(string, int32, error) { g.fetchErr.Add(1) })
			n := int64(fs.NumRecords())
			if n > 0 {
				g.consumed.Add(n)
				g.lastNano.Store(time.Now().UnixNano())
			}
		}
	}()
	return g
}

func (g *groupConsumer) halt() { g.stopOnce.Do(func() { close(g.stop) }) }

// commitWatch reads the group's committed offsets every faultsCommitPoll and
// notes every partition whose offset went below one seen before.
type commitWatch struct {
	adm  *kadm.Client
	stop chan struct{}
	done chan struct{}
	// halt stops the reads and waits for the reader.
	halt func()

	mu        sync.Mutex
	highest   map[string]map[int32]int64
	latest    map[string]map[int32]int64
	backwards []string
	reads     int
	readErrs  int
}

func startCommitWatch(t *testing.T, seeds []string) *commitWatch {
	t.Helper()
	w := &commitWatch{adm: kadm.NewClient(seedClient(t, seeds)), stop: make(chan struct{}), done: make(chan struct{}),
		highest: map[string]map[int32]int64{}, latest: map[string]map[int32]int64{}}
	var once sync.Once
	w.halt = func() { once.Do(func() { close(w.stop) }); <-w.done }
	t.Cleanup(w.halt)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(faultsCommitPoll)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			w.read()
		}
	}()
	return w
}

// read is one OffsetFetch of the group; a failed one (a coordinator moving)
// is counted and skipped.
func (w *commitWatch) read() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := w.adm.FetchOffsets(ctx, faultsGroup)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads++
	if err != nil {
		w.readErrs++
		return
	}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil || o.At < 0 {
			return
		}
		if w.highest[o.Topic] == nil {
			w.highest[o.Topic], w.latest[o.Topic] = map[int32]int64{}, map[int32]int64{}
		}
		if high, ok := w.highest[o.Topic][o.Partition]; ok && o.At < high {
			w.backwards = append(w.backwards, fmt.Sprintf("%s/%d committed offset %d after %d (at %s)",
				o.Topic, o.Partition, o.At, high, time.Now().UTC().Format("15:04:05.000")))
		}
		w.highest[o.Topic][o.Partition] = max(w.highest[o.Topic][o.Partition], o.At)
		w.latest[o.Topic][o.Partition] = o.At
	})
}
