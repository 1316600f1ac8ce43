//go:build linux

package crash

// The crash loop (issue 8, "Crash consistency"): one log dir lives through
// N successive daemons, each SIGKILLed at a random moment while
//
//   - an idempotent franz-go producer (acks=all) writes sequence-numbered
//     records to every partition of "main" (segment.bytes 256 KiB: rolls
//     many times a second) and of "retention" (segment.bytes 16 KiB,
//     retention.ms 500, log.retention.check.interval.ms 100: segments are
//     deleted all the time),
//   - an admin loop creates and deletes topics "churn-<life>-<n>",
//   - consumer groups consume "main" and commit synchronously after every
//     poll: "crash-group" through all lives, "crash-group-<life>" new in
//     each,
//
// and each next daemon (recovering the dir) is checked against everything
// the clients saw acknowledged in all earlier lives:
//
//   - main: offsets 0..HW-1 all present, each record's value intact (a
//     filler derived from its header), each (life, partition) sequence a
//     gap-free prefix 0,1,2... in offset order (nothing twice, nothing
//     reordered), every acknowledged offset holding the record acked there,
//     HW > every acknowledged offset;
//   - retention: the same from the log start offset on, except that the
//     start may move while we read (retention runs every 100 ms);
//   - churn topics: created-and-acked and never deleted → present with
//     their partition count; deletion acked → absent, and no partition dir
//     left on disk; in doubt → either, but whole;
//   - every group's committed offset of every partition is <= what its
//     consumers had consumed and >= the last commit the broker acknowledged.
//
// The loop runs twice: with the default flush policy (a process kill must
// lose nothing: the page cache survives it) and with flush.messages=1.
// Lives alternate the io.backend (uring, portable). The last daemon is
// stopped with SIGTERM and must exit 0.
//
// Iterations (lives killed per flush policy): -crash.iterations, else
// RINGBROKER_CRASH_ITERATIONS, else 3 (what `make test` runs). The seed is
// printed; -crash.seed (or RINGBROKER_CRASH_SEED) replays the same random
// choices (kill moments, sizes, record counts). Thread scheduling is not
// replayed: a seed reproduces the scenario, not the exact interleaving.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	flagIterations = flag.Int("crash.iterations", 0, "lives killed per flush policy (0: $RINGBROKER_CRASH_ITERATIONS, else 3)")
	flagSeed       = flag.Int64("crash.seed", 0, "seed of the crash loop (0: $RINGBROKER_CRASH_SEED, else the clock)")
)

const (
	mainTopic       = "main"
	mainPartitions  = 4
	retTopic        = "retention"
	retPartitions   = 2
	groupName       = "crash-group"
	churnPartitions = 3
	// Per life and partition, at most this many records are produced, so
	// a life's verification cost stays bounded however fast the machine.
	mainRecordsPerLifeMax = 15000
	retRecordsPerLifeMax  = 4000
	inflightPerPartition  = 256
	verifyTimeout         = 60 * time.Second
	// produceSpan is how long a life's production of its records is spread
	// over: a bit longer than the latest kill (2.3 s after the start).
	produceSpan = 2500 * time.Millisecond
)

func crashIterations() int {
	if *flagIterations > 0 {
		return *flagIterations
	}
	if v, err := strconv.Atoi(os.Getenv("RINGBROKER_CRASH_ITERATIONS")); err == nil && v > 0 {
		return v
	}
	return 3
}

func crashSeed() int64 {
	if *flagSeed != 0 {
		return *flagSeed
	}
	if v, err := strconv.ParseInt(os.Getenv("RINGBROKER_CRASH_SEED"), 10, 64); err == nil && v != 0 {
		return v
	}
	return time.Now().UnixNano()
}

func TestCrash(t *testing.T) {
	seed := crashSeed()
	n := crashIterations()
	t.Logf("crash loop: seed %d, %d lives per flush policy (replay: -crash.seed=%d -crash.iterations=%d)", seed, n, seed, n)
	for i, policy := range []string{"default", "flush1"} {
		t.Run("flush="+policy, func(t *testing.T) {
			crashLoop(t, seed+int64(i), n, policy == "flush1")
		})
	}
}

// recID identifies a produced record: the life that produced it and its
// sequence number within (life, partition).
type recID struct{ life, seq int32 }

// partModel is what the clients know about one partition.
type partModel struct {
	acked map[int64]recID // offset -> record acknowledged there
	// maxAcked is the highest acknowledged offset (-1: none).
	maxAcked int64
}

// model is everything acknowledged so far, over all lives.
type model struct {
	mu    sync.Mutex
	parts map[string][]*partModel // topic -> partition
	// churn topics: name -> state
	churn map[string]churnState
	// group offsets per main partition
	groups map[string]*groupModel

	// figures
	ackedTotal, checkedTotal, retentionJumps int64
	retentionDeleted                         int64 // records below the retention topic's log start, last check
	kills                                    int
	commitsAcked                             int64
	commitsInFlight                          int // commits sent and not answered yet
	killsDuringAdmin, killsDuringCommit      int // kills that hit an admin call / a commit in flight
	churnCreated, churnDeleted               int
}

// groupModel is what a consumer group's member saw: per partition of main.
type groupModel struct {
	consumed       [mainPartitions]int64 // highest consumed offset + 1
	committedAcked [mainPartitions]int64 // last acknowledged commit
}

type churnState int

const (
	churnCreateSent churnState = iota
	churnCreated
	churnDeleteSent
	churnDeleted
)

func newModel() *model {
	m := &model{parts: map[string][]*partModel{}, churn: map[string]churnState{}, groups: map[string]*groupModel{}}
	for topic, n := range map[string]int{mainTopic: mainPartitions, retTopic: retPartitions} {
		for i := 0; i < n; i++ {
			m.parts[topic] = append(m.parts[topic], &partModel{acked: map[int64]recID{}, maxAcked: -1})
		}
	}
	return m
}

// value builds a record value: a header naming the record, then a filler
// derived from the header, so corruption anywhere in the value shows.
func value(topic string, partition int32, id recID, size int) []byte {
	head := fmt.Sprintf("%s/%d/%d/%d/", topic, partition, id.life, id.seq)
	b := make([]byte, 0, max(size, len(head)+8))
	b = append(b, head...)
	h := fnv.New64a()
	h.Write(b)
	x := h.Sum64()
	for len(b) < cap(b) {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b = append(b, 'a'+byte(x%26))
	}
	return b
}

// parseValue checks a value read back and returns its id.
func parseValue(topic string, partition int32, v []byte) (recID, error) {
	parts := strings.SplitN(string(v), "/", 5)
	if len(parts) != 5 || parts[0] != topic || parts[1] != strconv.Itoa(int(partition)) {
		return recID{}, fmt.Errorf("foreign or corrupt value %.60q", v)
	}
	life, err1 := strconv.Atoi(parts[2])
	seq, err2 := strconv.Atoi(parts[3])
	if err1 != nil || err2 != nil {
		return recID{}, fmt.Errorf("corrupt header in %.60q", v)
	}
	id := recID{int32(life), int32(seq)}
	if want := value(topic, partition, id, len(v)); string(want) != string(v) {
		return recID{}, fmt.Errorf("corrupt value body for %s/%d %+v", topic, partition, id)
	}
	return id, nil
}

func crashLoop(t *testing.T, seed int64, lives int, flushEvery bool) {
	rng := rand.New(rand.NewSource(seed))
	dir := filepath.Join(t.TempDir(), "data")
	props := map[string]string{
		"log.dirs":                         dir,
		"log.retention.check.interval.ms":  "100",
		"group.initial.rebalance.delay.ms": "0",
		"offsets.topic.num.partitions":     "4",
		"auto.create.topics.enable":        "false",
		// 16 KiB segments (below Kafka 4's 1 MiB minimum): many rolls and
		// retention deletions from a few seconds of records.
		"log.segment.bytes.min": "16384",
	}
	if flushEvery {
		props["log.flush.interval.messages"] = "1"
	}
	m := newModel()
	start := time.Now()
	for life := 0; life <= lives; life++ {
		props["io.backend"] = []string{"uring", "portable"}[life%2]
		lifeStart := time.Now()
		d := startDaemon(t, props)
		started := time.Since(lifeStart)
		if life == 0 {
			createTopics(t, d.addr)
		}
		m.verify(t, d, dir, life)
		verified := time.Since(lifeStart) - started
		if t.Failed() {
			t.Fatalf("life %d (seed %d, backend %s): verification failed after the crash of life %d", life, seed, props["io.backend"], life-1)
		}
		if life == lives {
			if err := d.stop(); err != nil {
				t.Fatal(err)
			}
			break
		}
		killAfter := 300*time.Millisecond + time.Duration(rng.Int63n(int64(2*time.Second)))
		m.runLife(t, d, int32(life), rng.Int63(), killAfter)
		t.Logf("life %d (%s): start %v, verify %v, load until kill %v, total %v", life, props["io.backend"],
			started.Round(time.Millisecond), verified.Round(time.Millisecond), killAfter.Round(time.Millisecond), time.Since(lifeStart).Round(time.Millisecond))
	}
	mainSegments, _ := filepath.Glob(filepath.Join(dir, mainTopic+"-*", "*.log"))
	t.Logf("%d lives killed (seed %d, flush.messages=1: %v) in %v: %d records acknowledged, %d record reads verified, "+
		"%d segments of %s at the end, %d acknowledged commits, churn topics %d created / %d deleted, "+
		"kills with an admin call in flight %d, with a commit in flight %d, %d records deleted by retention, %d retention jumps while reading",
		m.kills, seed, flushEvery, time.Since(start).Round(time.Millisecond), m.ackedTotal, m.checkedTotal,
		len(mainSegments), mainTopic, m.commitsAcked, m.churnCreated, m.churnDeleted,
		m.killsDuringAdmin, m.killsDuringCommit, m.retentionDeleted, m.retentionJumps)
}

func createTopics(t *testing.T, addr string) {
	t.Helper()
	adm := newAdmin(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mainCfg := map[string]*string{"segment.bytes": kadm.StringPtr("262144")}
	retCfg := map[string]*string{"segment.bytes": kadm.StringPtr("16384"), "retention.ms": kadm.StringPtr("500")}
	for _, tc := range []struct {
		name string
		n    int32
		cfg  map[string]*string
	}{{mainTopic, mainPartitions, mainCfg}, {retTopic, retPartitions, retCfg}} {
		resp, err := adm.CreateTopic(ctx, tc.n, 1, tc.cfg, tc.name)
		if err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v / %v", tc.name, err, resp.Err)
		}
	}
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DialTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func newAdmin(t *testing.T, addr string) *kadm.Client {
	cl := newClient(t, addr)
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// runLife runs the load against d, SIGKILLs d after killAfter, stops the
// clients and folds what they saw acknowledged into m.
func (m *model) runLife(t *testing.T, d *daemon, life int32, seed int64, killAfter time.Duration) {
	rng := rand.New(rand.NewSource(seed))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup

	// Producers: one goroutine per partition, a bounded window in flight.
	prod := newClient(t, d.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond),
		kgo.MaxBufferedRecords(4*inflightPerPartition*(mainPartitions+retPartitions)))
	for topic, n := range map[string]int{mainTopic: mainPartitions, retTopic: retPartitions} {
		limit := mainRecordsPerLifeMax
		if topic == retTopic {
			limit = retRecordsPerLifeMax
		}
		for p := int32(0); p < int32(n); p++ {
			size := 20 + rng.Intn(300)
			wg.Add(1)
			go func(topic string, p int32, size, limit int) {
				defer wg.Done()
				m.produce(ctx, prod, topic, p, life, size, limit)
			}(topic, p, size, limit)
		}
	}
	// Admin churn.
	adminCl := newClient(t, d.addr, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.churnLoop(ctx, kadm.NewClient(adminCl), life)
	}()
	// Consumer groups: one that lives through every crash (after a restart
	// its member from the last life is remembered until its session times
	// out, so it commits only in lives long enough), and one new per life
	// (commits from its first second on).
	var groupCls []*kgo.Client
	for _, group := range []string{groupName, fmt.Sprintf("%s-%d", groupName, life)} {
		m.mu.Lock()
		gm := m.groups[group]
		if gm == nil {
			gm = &groupModel{}
			m.groups[group] = gm
		}
		m.mu.Unlock()
		cl := newClient(t, d.addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(mainTopic), kgo.DisableAutoCommit(),
			kgo.FetchMaxPartitionBytes(64<<10), kgo.SessionTimeout(6*time.Second), kgo.RetryTimeout(time.Second))
		groupCls = append(groupCls, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.consumeLoop(ctx, cl, gm)
		}()
	}

	time.Sleep(killAfter)
	m.mu.Lock() // held across the kill: no ack can be recorded in between
	if err := d.kill(); err != nil {
		t.Error(err)
	}
	m.kills++
	for _, st := range m.churn {
		if st == churnCreateSent || st == churnDeleteSent {
			m.killsDuringAdmin++
			break
		}
	}
	if m.commitsInFlight > 0 {
		m.killsDuringCommit++
	}
	m.mu.Unlock()
	cancel()
	// Closing a client fails its buffered records and requests: nothing
	// after the kill can be acknowledged.
	done := make(chan struct{})
	go func() {
		// In parallel: each Close retries against the dead broker for a
		// while (the group client tries to leave its group).
		var closing sync.WaitGroup
		for _, cl := range append([]*kgo.Client{prod, adminCl}, groupCls...) {
			closing.Add(1)
			go func() { defer closing.Done(); cl.Close() }()
		}
		closing.Wait()
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("clients did not stop within 30 s of the kill")
	}
}

// produce writes records life/seq 0,1,2... to topic/p until ctx ends or
// limit records were sent.
func (m *model) produce(ctx context.Context, cl *kgo.Client, topic string, p, life int32, size, limit int) {
	window := make(chan struct{}, inflightPerPartition)
	pm := m.parts[topic][p]
	// Paced so that production spans the whole kill window (up to 2.3 s)
	// instead of hitting the limit early and idling when the kill comes.
	began := time.Now()
	perRecord := produceSpan / time.Duration(limit)
	for seq := int32(0); int(seq) < limit; seq++ {
		if seq%64 == 0 {
			if ahead := time.Duration(seq)*perRecord - time.Since(began); ahead > 0 {
				select {
				case <-time.After(ahead):
				case <-ctx.Done():
					return
				}
			}
		}
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			return
		}
		id := recID{life, seq}
		r := &kgo.Record{Topic: topic, Partition: p, Value: value(topic, p, id, size)}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			<-window
			if err != nil {
				return
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			if prev, ok := pm.acked[r.Offset]; ok {
				// Reported at verification: two acks for one offset.
				pm.acked[r.Offset] = recID{-1, -1}
				_ = prev
				return
			}
			pm.acked[r.Offset] = id
			pm.maxAcked = max(pm.maxAcked, r.Offset)
			m.ackedTotal++
		})
	}
}

// churnLoop creates and deletes topics until ctx ends.
func (m *model) churnLoop(ctx context.Context, adm *kadm.Client, life int32) {
	for n := 0; ctx.Err() == nil && n < 500; n++ {
		name := fmt.Sprintf("churn-%d-%d", life, n)
		m.setChurn(name, churnCreateSent)
		resp, err := adm.CreateTopic(ctx, churnPartitions, 1, map[string]*string{"segment.bytes": kadm.StringPtr("16384")}, name)
		if err != nil || resp.Err != nil {
			return // the broker died; the topic's state is in doubt
		}
		m.setChurn(name, churnCreated)
		if n%3 == 2 {
			continue // some stay, to be found after the restart
		}
		m.setChurn(name, churnDeleteSent)
		dr, err := adm.DeleteTopic(ctx, name)
		if err != nil || dr.Err != nil {
			return
		}
		m.setChurn(name, churnDeleted)
	}
}

func (m *model) setChurn(name string, s churnState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.churn[name] = s
	switch s {
	case churnCreated:
		m.churnCreated++
	case churnDeleted:
		m.churnDeleted++
	}
}

// consumeLoop consumes main in cl's group and commits after every poll.
func (m *model) consumeLoop(ctx context.Context, cl *kgo.Client, gm *groupModel) {
	for ctx.Err() == nil {
		fs := cl.PollRecords(ctx, 2000)
		if ctx.Err() != nil {
			return
		}
		offsets := map[int32]int64{}
		fs.EachRecord(func(r *kgo.Record) {
			offsets[r.Partition] = max(offsets[r.Partition], r.Offset+1)
		})
		if len(offsets) == 0 {
			continue
		}
		m.mu.Lock()
		commit := map[string]map[int32]kgo.EpochOffset{mainTopic: {}}
		for p, o := range offsets {
			gm.consumed[p] = max(gm.consumed[p], o)
			commit[mainTopic][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
		}
		m.commitsInFlight++
		m.mu.Unlock()
		cl.CommitOffsetsSync(ctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.commitsInFlight--
			if err != nil {
				return
			}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if rp.ErrorCode == 0 && rt.Topic == mainTopic {
						gm.committedAcked[rp.Partition] = max(gm.committedAcked[rp.Partition], offsets[rp.Partition])
						m.commitsAcked++
					}
				}
			}
		})
	}
}

// verify checks the restarted daemon against m (see the file comment).
func (m *model) verify(t *testing.T, d *daemon, dir string, life int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	adm := newAdmin(t, d.addr)
	starts, err := adm.ListStartOffsets(ctx, mainTopic, retTopic)
	if err != nil {
		t.Fatalf("ListStartOffsets: %v", err)
	}
	ends, err := adm.ListEndOffsets(ctx, mainTopic, retTopic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	for _, topic := range []string{mainTopic, retTopic} {
		for p, pm := range m.parts[topic] {
			so, _ := starts.Lookup(topic, int32(p))
			eo, _ := ends.Lookup(topic, int32(p))
			if so.Err != nil || eo.Err != nil {
				t.Fatalf("%s/%d: list offsets: %v / %v", topic, p, so.Err, eo.Err)
			}
			if eo.Offset <= pm.maxAcked {
				t.Errorf("%s/%d: high watermark %d after restart, but offset %d was acknowledged", topic, p, eo.Offset, pm.maxAcked)
			}
			if topic == retTopic {
				if p == 0 {
					m.retentionDeleted = 0
				}
				m.retentionDeleted += so.Offset
			}
			if topic == mainTopic && so.Offset != 0 {
				t.Errorf("%s/%d: log start offset %d, want 0 (no retention on %s)", topic, p, so.Offset, topic)
			}
			m.verifyPartition(t, ctx, d.addr, topic, int32(p), so.Offset, eo.Offset)
		}
	}
	m.verifyChurn(t, ctx, adm, dir)
	m.verifyGroups(t, ctx, adm)
}

// verifyPartition reads topic/p from start to end and checks it.
func (m *model) verifyPartition(t *testing.T, ctx context.Context, addr, topic string, p int32, start, end int64) {
	t.Helper()
	pm := m.parts[topic][p]
	for off, id := range pm.acked {
		if id.life < 0 {
			t.Errorf("%s/%d: offset %d was acknowledged twice", topic, p, off)
		}
	}
	if start >= end {
		return
	}
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(start)}}),
		kgo.FetchMaxBytes(32<<20), kgo.FetchMaxPartitionBytes(16<<20), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	next := start
	lastSeq := map[int32]int32{} // life -> last sequence seen
	for next < end {
		pollCtx, cancelPoll := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancelPoll()
		if ctx.Err() != nil {
			t.Fatalf("%s/%d: reading offsets %d..%d: stuck at %d: %v", topic, p, start, end, next, ctx.Err())
		}
		if fs.NumRecords() == 0 && topic == retTopic {
			// Retention may have deleted everything up to the end while we
			// read: the client then resets to the new start and sees nothing.
			if so, err := newAdmin(t, addr).ListStartOffsets(ctx, topic); err == nil {
				if o, ok := so.Lookup(topic, p); ok && o.Err == nil && o.Offset > next {
					m.retentionJumps++
					next = o.Offset
					continue
				}
			}
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) {
				continue // this poll's own timeout: poll again until ctx ends
			}
			t.Fatalf("%s/%d: fetch error at offset ~%d: %v", topic, p, next, fe.Err)
		}
		var failed bool
		fs.EachRecord(func(r *kgo.Record) {
			if failed || r.Offset >= end {
				return
			}
			if r.Offset != next {
				if topic == retTopic && r.Offset > next {
					// Retention moved the log start while we read.
					m.retentionJumps++
					clear(lastSeq)
				} else {
					t.Errorf("%s/%d: record at offset %d, want %d (gap or duplicate offset)", topic, p, r.Offset, next)
					failed = true
					return
				}
			}
			fresh := len(lastSeq) == 0 // first record read, or first after a retention jump
			next = r.Offset + 1
			m.checkedTotal++
			id, err := parseValue(topic, p, r.Value)
			if err != nil {
				t.Errorf("%s/%d offset %d: %v", topic, p, r.Offset, err)
				failed = true
				return
			}
			if want, ok := pm.acked[r.Offset]; ok && want != id {
				t.Errorf("%s/%d offset %d: holds %+v, but %+v was acknowledged there", topic, p, r.Offset, id, want)
				failed = true
				return
			}
			last, seen := lastSeq[id.life]
			switch {
			case seen && id.seq != last+1:
				t.Errorf("%s/%d offset %d: life %d seq %d follows seq %d (duplicate, reorder or hole)", topic, p, r.Offset, id.life, id.seq, last)
				failed = true
			case !seen && id.seq != 0 && !(topic == retTopic && fresh):
				// Only retention may cut a life's sequence at its start.
				t.Errorf("%s/%d offset %d: life %d starts at seq %d, want 0", topic, p, r.Offset, id.life, id.seq)
				failed = true
			}
			lastSeq[id.life] = id.seq
		})
		if failed {
			return
		}
	}
}

// verifyChurn checks the churn topics against what their admin calls saw
// acknowledged, then deletes them all so the next life starts small.
func (m *model) verifyChurn(t *testing.T, ctx context.Context, adm *kadm.Client, dir string) {
	t.Helper()
	if len(m.churn) == 0 {
		return
	}
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	var live []string
	for name, st := range m.churn {
		td, exists := md.Topics[name]
		exists = exists && td.Err == nil
		if exists {
			live = append(live, name)
			if len(td.Partitions) != churnPartitions {
				t.Errorf("topic %s: %d partitions after restart, want %d", name, len(td.Partitions), churnPartitions)
			}
		}
		switch {
		case st == churnCreated && !exists:
			t.Errorf("topic %s: creation acknowledged, no deletion sent, missing after restart", name)
		case st == churnDeleted && exists:
			t.Errorf("topic %s: deletion acknowledged, present after restart", name)
		}
	}
	// No partition dir may outlive its topic.
	dirs, _ := filepath.Glob(filepath.Join(dir, "churn-*"))
	for _, pd := range dirs {
		base := filepath.Base(pd)
		topic := base[:strings.LastIndexByte(base, '-')]
		if td, ok := md.Topics[topic]; !ok || td.Err != nil {
			t.Errorf("partition dir %s left on disk for a topic that does not exist", base)
		}
	}
	sort.Strings(live)
	if len(live) > 0 {
		resps, err := adm.DeleteTopics(ctx, live...)
		if err != nil {
			t.Fatalf("DeleteTopics: %v", err)
		}
		for _, r := range resps.Sorted() {
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				t.Errorf("delete %s: %v", r.Topic, r.Err)
			}
		}
	}
	clear(m.churn)
}

// verifyGroups checks the committed offsets of every group used so far.
func (m *model) verifyGroups(t *testing.T, ctx context.Context, adm *kadm.Client) {
	t.Helper()
	for name, gm := range m.groups {
		m.verifyGroup(t, ctx, adm, name, gm)
	}
}

func (m *model) verifyGroup(t *testing.T, ctx context.Context, adm *kadm.Client, groupName string, gm *groupModel) {
	t.Helper()
	resps, err := adm.FetchOffsets(ctx, groupName)
	if err != nil {
		if errors.Is(err, kerr.GroupIDNotFound) {
			return
		}
		t.Fatalf("OffsetFetch %s: %v", groupName, err)
	}
	for p := int32(0); p < mainPartitions; p++ {
		committed := int64(-1)
		if r, ok := resps.Lookup(mainTopic, p); ok {
			if r.Err != nil {
				t.Errorf("committed offset of %s/%d: %v", mainTopic, p, r.Err)
				continue
			}
			committed = r.At
		}
		if committed > gm.consumed[p] {
			t.Errorf("group %s, %s/%d: committed %d after restart, but only %d were consumed", groupName, mainTopic, p, committed, gm.consumed[p])
		}
		if gm.committedAcked[p] > 0 && committed < gm.committedAcked[p] {
			t.Errorf("group %s, %s/%d: committed %d after restart, but a commit of %d was acknowledged", groupName, mainTopic, p, committed, gm.committedAcked[p])
		}
	}
}
