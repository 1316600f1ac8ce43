package broker

// Compaction figures the issue asks for (issue 17), as benchmarks run once
// by make bench-compaction; never by make test, and skipped by make
// bench-micro (they write hundreds of MB and take tens of seconds):
//
//	RINGBROKER_BENCH_COMPACTION=1 go test ./broker -run '^$' -bench 'OffsetsLoadCompaction|ProduceLatencyCleaner' -benchtime 1x -timeout 30m
//
// Their figures are the reported metrics; ns/op is not one (the timer is
// stopped throughout: each phase times itself).

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/internal/codec"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

const compactionBenchEnv = "RINGBROKER_BENCH_COMPACTION"

func skipUnlessCompactionBench(b *testing.B) {
	if os.Getenv(compactionBenchEnv) == "" {
		b.Skipf("set %s=1 (make bench-compaction)", compactionBenchEnv)
	}
}

// The __consumer_offsets of BenchmarkOffsetsLoadCompaction: offsetsBenchRecords
// commit records from offsetsBenchGroups groups, each group consuming
// offsetsBenchTopicsPerGroup topics of offsetsBenchTopicPartitions
// partitions and committing all of them in every OffsetCommit (one batch
// of 8 records, as 08_offset_commit.go writes it), the groups taking
// turns. The topic is created by the coordinator (50 partitions,
// cleanup.policy=compact) with offsets.topic.segment.bytes at 1 MiB (the
// log.segment.bytes.min floor): at Kafka's 100 MiB default these ~1.3 MB
// partitions would never roll, so the 1 MiB roll stands in for the
// segment.ms rolls of a broker that ran for days.
const (
	offsetsBenchRecords         = 1_000_000
	offsetsBenchGroups          = 100
	offsetsBenchTopics          = 5
	offsetsBenchTopicPartitions = 4
	offsetsBenchTopicsPerGroup  = 2
	offsetsBenchSegmentBytes    = 1 << 20
)

// offsetsLoad is one start of a broker on the benchmark's data dir.
type offsetsLoad struct {
	open, load time.Duration // OpenRegistry (logs opened), New (the coordinator's load)
	logBytes   int64         // segment (.log) bytes of the __consumer_offsets partitions (Log.Size)
	diskBytes  int64         // blocks allocated to the files of their dirs, as du counts (index files are preallocated sparse)
	segments   int
	groups     int
}

// BenchmarkOffsetsLoadCompaction: startup with a __consumer_offsets that
// saw a million commit records to a hundred groups, before and after
// compaction. The log is written through storage (the registry's logs,
// Log.Append of the batches the coordinator writes); each start is
// OpenRegistry + New on the data dir (New replays __consumer_offsets:
// coordinator.load), timed apart, and checks every group's last
// committed offsets were loaded. Then the registry's cleaner cleans each
// partition (CleanLog) and the broker starts again ("after"); the active
// segment is never cleaned, so a last step rolls it as an idle partition
// rolls after segment.ms (EnforceRetention a week on), cleans again and
// starts once more ("idle"). Page cache warm throughout (the data was
// just written). b.N starts are timed at each stage.
func BenchmarkOffsetsLoadCompaction(b *testing.B) {
	skipUnlessCompactionBench(b)
	b.StopTimer()
	dir := b.TempDir()
	cfg := config.Default()
	want := writeOffsetsBench(b, dir, cfg)

	stage := func(name string) offsetsLoad {
		var sum offsetsLoad
		var open, load time.Duration
		for range b.N {
			reg, br, ld := startOffsetsBench(b, dir, cfg, want)
			closeOffsetsBench(b, reg, br)
			open, load = open+ld.open, load+ld.load
			sum = ld
		}
		sum.open, sum.load = open/time.Duration(b.N), load/time.Duration(b.N)
		b.ReportMetric(float64(sum.open.Microseconds())/1e3, "open-ms-"+name)
		b.ReportMetric(float64(sum.load.Microseconds())/1e3, "load-ms-"+name)
		b.ReportMetric(float64(sum.logBytes), "log-bytes-"+name)
		b.ReportMetric(float64(sum.diskBytes), "du-bytes-"+name)
		b.ReportMetric(float64(sum.segments), "segments-"+name)
		return sum
	}
	clean := func(idleRoll bool) {
		reg, br, _ := startOffsetsBench(b, dir, cfg, want)
		defer closeOffsetsBench(b, reg, br)
		if reg.Cleaner() == nil {
			b.Fatal("the registry has no cleaner (log.cleaner.enable)")
		}
		var read, written int64
		start := time.Now()
		for _, p := range reg.Topic(offsetsTopic).Partitions {
			if idleRoll {
				rollIdleBench(b, p.Log)
			}
			st, err := reg.Cleaner().CleanLog(p.Log)
			if err != nil {
				b.Fatalf("cleaning %s: %v", p.Log.Dir(), err)
			}
			read += st.BytesRead
			written += st.BytesWritten
		}
		if !idleRoll {
			took := time.Since(start)
			b.ReportMetric(float64(took.Microseconds())/1e3, "clean-ms")
			b.ReportMetric(float64(read)/took.Seconds()/1e6, "clean-read-MB/s")
			b.ReportMetric(float64(written), "clean-bytes-written")
		}
	}

	stage("before")
	clean(false)
	stage("after")
	clean(true)
	stage("idle")
}

// writeOffsetsBench creates the committed topics and __consumer_offsets in
// dir and writes the commits; it returns each group's last committed
// offsets.
func writeOffsetsBench(b *testing.B, dir string, cfg *config.Config) map[string][]group.CommittedOffset {
	reg, err := OpenRegistry(RegistryOptions{LogDirs: []string{dir}, Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	for i := range offsetsBenchTopics {
		if _, err := reg.CreateTopic(fmt.Sprintf("topic-%d", i), offsetsBenchTopicPartitions, nil, false); err != nil {
			b.Fatal(err)
		}
	}
	// Created as the coordinator creates it on first use.
	br, err := New(Options{NodeID: 0, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092, DataDir: dir, Registry: reg,
		MessageMaxBytes: 1048588, OffsetsTopicSegmentBytes: offsetsBenchSegmentBytes})
	if err != nil {
		b.Fatal(err)
	}
	t, err := br.groups.persist.create()
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Close(); err != nil {
		b.Fatal(err)
	}
	tps := make([][]group.TopicPartition, offsetsBenchGroups)
	for g := range tps {
		for k := range offsetsBenchTopicsPerGroup {
			for p := range offsetsBenchTopicPartitions {
				tps[g] = append(tps[g], group.TopicPartition{Topic: fmt.Sprintf("topic-%d", (g+k)%offsetsBenchTopics), Partition: int32(p)})
			}
		}
	}
	perCommit := offsetsBenchTopicsPerGroup * offsetsBenchTopicPartitions
	want := map[string][]group.CommittedOffset{}
	app := newBenchAppender(b)
	start := time.Now().UnixMilli()
	for c := range offsetsBenchRecords / perCommit {
		g := c % offsetsBenchGroups
		id := fmt.Sprintf("group-%03d", g)
		ts := start + int64(c/offsetsBenchGroups)
		recs := make([][2][]byte, 0, perCommit)
		offs := make([]group.CommittedOffset, 0, perCommit)
		for i, tp := range tps[g] {
			o := group.Offset{Offset: int64(c/offsetsBenchGroups)*100 + int64(i), LeaderEpoch: 0, CommitTimestamp: ts}
			recs = append(recs, [2][]byte{group.OffsetKey(id, tp), group.OffsetValue(o)})
			offs = append(offs, group.CommittedOffset{TopicPartition: tp, Offset: o})
		}
		slices.SortFunc(offs, func(x, y group.CommittedOffset) int { // as Group.Offsets sorts
			if c := strings.Compare(x.Topic, y.Topic); c != 0 {
				return c
			}
			return int(x.Partition - y.Partition)
		})
		want[id] = offs
		app.append(t.Partitions[group.PartitionFor(id, defaultOffsetsTopicPartitions)].Log, appendRecordBatch(nil, ts, recs))
	}
	app.wait()
	if err := reg.Close(); err != nil {
		b.Fatal(err)
	}
	return want
}

// startOffsetsBench opens the registry and the broker on dir, timing each,
// and checks the loaded offsets against want.
func startOffsetsBench(b *testing.B, dir string, cfg *config.Config, want map[string][]group.CommittedOffset) (*Registry, *Broker, offsetsLoad) {
	var ld offsetsLoad
	t0 := time.Now()
	reg, err := OpenRegistry(RegistryOptions{LogDirs: []string{dir}, Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	br, err := New(Options{NodeID: 0, AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092, DataDir: dir, Registry: reg, MessageMaxBytes: 1048588})
	if err != nil {
		b.Fatal(err)
	}
	ld.open, ld.load = t1.Sub(t0), time.Since(t1)
	br.groups.lock()
	ld.groups = br.groups.g.NumGroups()
	for id, offs := range want {
		g := br.groups.g.Group(id)
		if g == nil || !slices.Equal(g.Offsets(), offs) {
			br.groups.unlock()
			b.Fatalf("group %s: loaded offsets differ from the last committed", id)
		}
	}
	br.groups.unlock()
	if ld.groups != len(want) {
		b.Fatalf("%d groups loaded, want %d", ld.groups, len(want))
	}
	for _, p := range reg.Topic(offsetsTopic).Partitions {
		ld.segments += p.Log.NumSegments()
		ld.logBytes += p.Log.Size()
		entries, err := os.ReadDir(p.Log.Dir())
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			fi, err := os.Stat(filepath.Join(p.Log.Dir(), e.Name()))
			if err != nil {
				b.Fatal(err)
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() {
				ld.diskBytes += st.Blocks * 512
			}
		}
	}
	return reg, br, ld
}

func closeOffsetsBench(b *testing.B, reg *Registry, br *Broker) {
	if err := br.Close(); err != nil {
		b.Fatal(err)
	}
	if err := reg.Close(); err != nil {
		b.Fatal(err)
	}
}

// rollIdleBench rolls l's active segment the way the maintenance job does
// for a compacted partition idle for longer than segment.ms: the retention
// check a week on asks the writer to roll (compact-only: retention deletes
// nothing). Waits, bounded, for the roll.
func rollIdleBench(b *testing.B, l *storage.Log) {
	if l.Size() == 0 {
		return
	}
	n := l.NumSegments()
	if _, err := l.EnforceRetention(time.Now().Add(8 * 24 * time.Hour)); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for l.NumSegments() == n {
		if time.Now().After(deadline) {
			b.Fatalf("%s: the idle active segment did not roll", l.Dir())
		}
		time.Sleep(time.Millisecond)
	}
}

// benchAppender appends batches to logs with a bounded number in flight
// and collects the first error.
type benchAppender struct {
	b    *testing.B
	sem  chan struct{}
	mu   sync.Mutex
	err  error
	done storage.AppendFunc
}

const benchAppendInflightMax = 256

func newBenchAppender(b *testing.B) *benchAppender {
	a := &benchAppender{b: b, sem: make(chan struct{}, benchAppendInflightMax)}
	a.done = func(r storage.AppendResult) {
		if r.Err != nil {
			a.mu.Lock()
			a.err = r.Err
			a.mu.Unlock()
		}
		<-a.sem
	}
	return a
}

func (a *benchAppender) append(l *storage.Log, batch []byte) {
	a.sem <- struct{}{}
	if err := l.Append(batch, a.done); err != nil {
		a.b.Fatal(err)
	}
}

func (a *benchAppender) wait() {
	for range benchAppendInflightMax {
		a.sem <- struct{}{}
	}
	for range benchAppendInflightMax {
		<-a.sem
	}
	if a.err != nil {
		a.b.Fatal(a.err)
	}
}

// The compacted topic of BenchmarkProduceLatencyCleaner: cleanBenchPartitions
// partitions, each holding the storage cleaner benchmark's workload (10,000
// keys written 10 times, 1 KiB values, 10 records a batch, codecs cycling
// none/gzip/snappy/lz4/zstd), in 16 MiB segments.
const (
	cleanBenchPartitions     = 8
	cleanBenchKeys           = 10_000
	cleanBenchOverwrites     = 10
	cleanBenchValueBytes     = 1 << 10
	cleanBenchBatchRecords   = 10
	cleanBenchSegmentBytes   = "16777216"
	latencyBenchPartitions   = 8
	latencyBenchProducers    = 4
	latencyBenchValueBytes   = 1 << 10
	latencyBenchOffPhase     = 5 * time.Second
	latencyBenchOnPhaseMax   = 5 * time.Minute
	latencyBenchSamplesLimit = 1 << 22 // bound on the latencies kept per phase
	// The "throttled" phase cleans a second compacted topic of
	// throttledBenchPartitions partitions (same workload) with
	// log.cleaner.io.max.bytes.per.second at throttledBenchBytesPerSecond.
	throttledBenchPartitions     = 2
	throttledBenchBytesPerSecond = 10 << 20
)

// BenchmarkProduceLatencyCleaner: produce latency on the partitions of a
// non-compacted topic with and without the log cleaner compacting another,
// large, topic at the same time, in one run. A broker on io_uring over
// loopback; latencyBenchProducers goroutines of one franz-go client each
// produce one 1 KiB record at a time (ProduceSync, acks=all, no linger) to
// the topic's partitions in turn. Phases: "off" (latencyBenchOffPhase, no
// cleaning), "on" (the registry's cleaner cleans every partition of the
// compacted topic one after the other, one thread as Kafka's default,
// unthrottled; the phase lasts as long as the cleaning), "throttled" (a
// cleaner made from the same broker config but with
// log.cleaner.io.max.bytes.per.second=10 MiB/s cleans a second compacted
// topic of throttledBenchPartitions partitions), "off2" (off again, to
// show the drift of a shared machine). Reports p50/p99/p99.9/max per phase
// and the cleaners' rates during "on" and "throttled".
func BenchmarkProduceLatencyCleaner(b *testing.B) {
	skipUnlessCompactionBench(b)
	b.StopTimer()
	dir := b.TempDir()
	cfg := config.Default()
	reg, err := OpenRegistry(RegistryOptions{LogDirs: []string{dir}, Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	compacted, err := reg.CreateTopic("compacted", cleanBenchPartitions,
		map[string]string{"cleanup.policy": "compact", "segment.bytes": cleanBenchSegmentBytes}, false)
	if err != nil {
		b.Fatal(err)
	}
	throttled, err := reg.CreateTopic("compacted-throttled", throttledBenchPartitions,
		map[string]string{"cleanup.policy": "compact", "segment.bytes": cleanBenchSegmentBytes}, false)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := reg.CreateTopic("events", latencyBenchPartitions, nil, false); err != nil {
		b.Fatal(err)
	}
	batches := cleanBenchBatches(1)
	app := newBenchAppender(b)
	var logBytes, throttledBytes int64
	for _, p := range append(slices.Clone(compacted.Partitions), throttled.Partitions...) {
		for _, batch := range batches {
			app.append(p.Log, batch)
		}
	}
	app.wait()
	for _, p := range compacted.Partitions {
		logBytes += p.Log.Size()
	}
	for _, p := range throttled.Partitions {
		throttledBytes += p.Log.Size()
	}
	b.ReportMetric(float64(logBytes), "compacted-bytes")
	b.ReportMetric(float64(throttledBytes), "throttled-compacted-bytes")
	throttledCfg := cfg
	throttledCfg.LogCleanerIOMaxBytesPerSecond = throttledBenchBytesPerSecond
	throttledCleaner := storage.NewCleaner(throttledCfg.CleanerConfig(), nil)
	defer throttledCleaner.Close()

	var bp atomic.Pointer[Broker]
	fwd := netpoll.HandlerFunc(func(req netpoll.Request, frame []byte) { bp.Load().ServeFrame(req, frame) })
	srv, err := netpoll.Listen(netpoll.Options{Listeners: []string{"127.0.0.1:0"}, Backend: netpoll.BackendUring, Handler: fwd})
	if err != nil {
		b.Fatal(err)
	}
	br, err := New(Options{NodeID: 0, AdvertisedHost: "127.0.0.1", AdvertisedPort: int32(srv.Addrs()[0].(*net.TCPAddr).Port),
		DataDir: dir, Registry: reg, MessageMaxBytes: 1048588})
	if err != nil {
		b.Fatal(err)
	}
	bp.Store(br)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		br.Close()
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addrs()[0].String()), kgo.DefaultProduceTopic("events"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()

	// produce runs the producers until stop is closed (or the phase's
	// bound) and returns the latencies and the phase's length.
	produce := func(stop <-chan struct{}, bound time.Duration) ([]time.Duration, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), bound+30*time.Second)
		defer cancel()
		var mu sync.Mutex
		var all []time.Duration
		var wg sync.WaitGroup
		var failed atomic.Value
		start := time.Now()
		end := start.Add(bound)
		for w := range latencyBenchProducers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				value := make([]byte, latencyBenchValueBytes)
				mine := make([]time.Duration, 0, 1<<14)
			loop:
				for i := 0; time.Now().Before(end) && len(mine) < latencyBenchSamplesLimit/latencyBenchProducers; i++ {
					select {
					case <-stop:
						break loop
					default:
					}
					r := &kgo.Record{Value: value, Partition: int32((w + i*latencyBenchProducers) % latencyBenchPartitions)}
					t0 := time.Now()
					if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
						failed.Store(err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if err, ok := failed.Load().(error); ok {
			b.Fatalf("produce: %v", err)
		}
		return all, time.Since(start)
	}
	report := func(name string, lat []time.Duration, took time.Duration) {
		if len(lat) == 0 {
			b.Fatalf("phase %s: no produce completed", name)
		}
		slices.Sort(lat)
		q := func(f float64) float64 {
			return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))].Microseconds()) / 1e3
		}
		b.ReportMetric(q(0.50), name+"-p50-ms")
		b.ReportMetric(q(0.99), name+"-p99-ms")
		b.ReportMetric(q(0.999), name+"-p99.9-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1e3, name+"-max-ms")
		b.ReportMetric(float64(len(lat))/took.Seconds(), name+"-produces/s")
	}

	produce(nil, time.Second) // warm: connections, metadata, producer id
	for range b.N {
		lat, took := produce(nil, latencyBenchOffPhase)
		report("off", lat, took)

		// cleanPhase runs produce while cl cleans parts one after the
		// other, and reports the phase as name.
		cleanPhase := func(name string, cl *storage.Cleaner, parts []*Partition) {
			stop := make(chan struct{})
			var read, written int64
			var cleanErr error
			var cleaning time.Duration
			go func() {
				defer close(stop)
				start := time.Now()
				for _, p := range parts {
					st, err := cl.CleanLog(p.Log)
					if err != nil {
						cleanErr = err
						return
					}
					read += st.BytesRead
					written += st.BytesWritten
				}
				cleaning = time.Since(start)
			}()
			lat, took := produce(stop, latencyBenchOnPhaseMax)
			<-stop
			if cleanErr != nil {
				b.Fatal(cleanErr)
			}
			report(name, lat, took)
			prefix := "clean"
			if name != "on" {
				prefix = name + "-clean"
			}
			b.ReportMetric(cleaning.Seconds(), prefix+"-s")
			b.ReportMetric(float64(read)/cleaning.Seconds()/1e6, prefix+"-read-MB/s")
			b.ReportMetric(float64(written)/cleaning.Seconds()/1e6, prefix+"-written-MB/s")
		}
		cleanPhase("on", reg.Cleaner(), compacted.Partitions)
		cleanPhase("throttled", throttledCleaner, throttled.Partitions)

		lat, took = produce(nil, latencyBenchOffPhase)
		report("off2", lat, took)
	}
}

// cleanBenchBatches returns one partition's batches of the compacted
// topic, in append order.
func cleanBenchBatches(seed int64) [][]byte {
	rng := rand.New(rand.NewSource(seed))
	order := make([]int, 0, cleanBenchKeys*cleanBenchOverwrites)
	for range cleanBenchOverwrites {
		order = append(order, rng.Perm(cleanBenchKeys)...)
	}
	codecs := []int8{codec.None, codec.Gzip, codec.Snappy, codec.LZ4, codec.Zstd}
	var batches [][]byte
	ts := time.Now().UnixMilli()
	for i := 0; i < len(order); i += cleanBenchBatchRecords {
		end := min(i+cleanBenchBatchRecords, len(order))
		var raw []byte
		for j, k := range order[i:end] {
			value := make([]byte, cleanBenchValueBytes)
			rng.Read(value[:cleanBenchValueBytes/2])
			for v := cleanBenchValueBytes / 2; v < len(value); v++ {
				value[v] = byte(v % 7)
			}
			raw = proto.AppendRecord(raw, &kmsg.Record{OffsetDelta: int32(j), Key: fmt.Appendf(nil, "key-%06d", k), Value: value})
		}
		cd := codecs[(i/cleanBenchBatchRecords)%len(codecs)]
		body, err := codec.Compress(cd, raw, nil)
		if err != nil {
			panic(err)
		}
		batches = append(batches, proto.AppendRecordBatch(nil, &kmsg.RecordBatch{
			PartitionLeaderEpoch: -1, Attributes: int16(cd), LastOffsetDelta: int32(end - i - 1), FirstTimestamp: ts, MaxTimestamp: ts,
			ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(end - i), Records: body,
		}))
	}
	return batches
}
