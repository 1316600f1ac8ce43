package broker

// Simulated power loss (issue 8) through storage.FaultIO, in process.
//
// Each round runs a broker whose every file operation goes through one
// FaultIO (its FS, and through NewIO every log's IO) with flush.messages=1
// (so __consumer_offsets is synced per commit too) while an idempotent
// franz-go producer writes sequence-numbered records to three partitions
// (segment.bytes 16 KiB: rolls) and a committer commits group offsets with
// kadm; one topic's config is altered. At a seeded random moment the
// FaultIO is frozen (every mutating call fails from then on, as when the
// machine stops), the clients and the network stop, and FaultIO.PowerLoss
// undoes every directory entry no directory fsync covered and drops every
// byte not fdatasync'd, fsync'd or msync'd (keeping, at random, a prefix of
// the unsynced tail, sometimes followed by garbage: a torn sector). The
// data dir is copied as it is then and a new broker opens the copy.
// Checked:
//
//   - every acknowledged record is at its offset, intact; offsets are
//     contiguous from 0 to the high watermark (no gap, no corrupt batch);
//     each producer's sequence is a gap-free prefix in order;
//   - the group's committed offsets are >= the last acknowledged commit
//     and <= the largest commit sent;
//   - topics and their configs (created, altered) reopen as acknowledged;
//   - the reopened partitions take writes at their high watermarks.
//
// The power loss covers every file: segments, .index/.timeindex (cut to
// their last msync; writes through the mapping after it are not undone),
// checkpoints, the topic table, partition.metadata, producer snapshots,
// the producer-id block, meta.properties and the directories holding
// them. metadata_fault_test.go and snapshot_fault_test.go cut each of
// those writes at every step.

// Rounds: RINGBROKER_POWERLOSS_SEEDS (default 2), two power losses each.
// The seed of each round is in its name; replay one with
// RINGBROKER_POWERLOSS_SEED=N RINGBROKER_POWERLOSS_SEEDS=1 (the seed fixes
// the freeze moments, record sizes and torn tails, not the scheduling).

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/storage"
)

const (
	plTopic      = "pl"
	plPartitions = 3
	// plNoFlushTopic overrides flush.messages back to "never": its acked
	// records may be lost, so the power loss has something to cut (torn
	// tails, garbage) and recovery must leave a clean prefix.
	plNoFlushTopic      = "plnf"
	plNoFlushPartitions = 2
	plCfgTopic          = "plcfg"
	plGroup             = "pl-group"
)

func TestPowerLossBroker(t *testing.T) {
	seeds := int64(2)
	if v, err := strconv.ParseInt(os.Getenv("RINGBROKER_POWERLOSS_SEEDS"), 10, 64); err == nil && v > 0 {
		seeds = v
	}
	base := time.Now().UnixNano() % 1_000_000
	if v, err := strconv.ParseInt(os.Getenv("RINGBROKER_POWERLOSS_SEED"), 10, 64); err == nil {
		base = v
	}
	for i := int64(0); i < seeds; i++ {
		seed := base + i
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { powerLossBroker(t, seed) })
	}
}

// plPart is one produced partition; durable: acknowledged means synced.
type plPart struct {
	topic   string
	p       int32
	durable bool
}

var plParts = []plPart{{plTopic, 0, true}, {plTopic, 1, true}, {plTopic, 2, true}, {plNoFlushTopic, 0, false}, {plNoFlushTopic, 1, false}}

// plState is what the clients saw acknowledged, over all lives.
type plState struct {
	mu           sync.Mutex
	acked        [5]map[int64]string // by plParts index: offset -> value
	maxAcked     [5]int64
	lostUnsynced int   // acknowledged records of plNoFlushTopic the power losses took
	commitAcked  int64 // last acknowledged commit (same offset on every partition)
	commitSent   int64 // largest commit sent
	cfgAltered   bool
	records      int
}

func powerLossBroker(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	st := &plState{commitAcked: -1, commitSent: -1}
	for p := range st.acked {
		st.acked[p] = map[int64]string{}
		st.maxAcked[p] = -1
	}
	dir := t.TempDir()
	for life := 0; life < 3; life++ {
		fio := storage.NewFaultIO(nil)
		fio.SetScratchDir(t.TempDir())
		tb := &testBroker{t: t, dir: dir, backend: netpoll.BackendPortable, mod: func(o *Options, ro *RegistryOptions) {
			mustSet(t, ro.Config, "log.flush.interval.messages", "1")
			ro.FS, ro.NewIO = fio, fio.NewIO
			o.GroupInitialRebalanceDelay = 0
			o.OffsetsTopicNumPartitions = 2
		}}
		tb.start()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		adm := kadm.NewClient(tb.client())
		if life == 0 {
			createPowerLossTopics(t, ctx, adm)
		} else {
			verifyPowerLoss(t, ctx, tb, adm, st, life)
		}
		if life == 2 || t.Failed() {
			cancel()
			tb.stop()
			return
		}
		runUntilPowerLoss(t, ctx, tb, adm, st, fio, rng, life)
		cancel()
		// The dir as the disk holds it after the power loss, for the next life.
		next := t.TempDir()
		if err := copyTree(dir, next); err != nil {
			t.Fatal(err)
		}
		abandon(tb)
		dir = next
	}
}

func createPowerLossTopics(t *testing.T, ctx context.Context, adm *kadm.Client) {
	t.Helper()
	if r, err := adm.CreateTopic(ctx, plPartitions, 1, map[string]*string{
		"segment.bytes": kadm.StringPtr("16384"), "retention.ms": kadm.StringPtr("987654321")}, plTopic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v / %v", plTopic, err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, plNoFlushPartitions, 1, map[string]*string{
		"segment.bytes": kadm.StringPtr("16384"), "flush.messages": kadm.StringPtr("9223372036854775807")}, plNoFlushTopic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v / %v", plNoFlushTopic, err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, plCfgTopic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v / %v", plCfgTopic, err, r.Err)
	}
}

// runUntilPowerLoss produces and commits until a seeded moment, then
// freezes fio, stops the clients and the network, and drops what was not
// synced.
func runUntilPowerLoss(t *testing.T, ctx context.Context, tb *testBroker, adm *kadm.Client, st *plState, fio *storage.FaultIO, rng *rand.Rand, life int) {
	freezeAfter := time.Duration(50+rng.Intn(500)) * time.Millisecond
	lossSeed := rng.Int63()
	commitRng := rand.New(rand.NewSource(rng.Int63()))
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	prod := tb.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	for i, part := range plParts {
		p := part.p
		size := 10 + rng.Intn(600)
		wg.Add(1)
		go func() {
			defer wg.Done()
			window := make(chan struct{}, 64)
			for seq := 0; seq < 20000; seq++ {
				select {
				case window <- struct{}{}:
				case <-loadCtx.Done():
					return
				}
				v := fmt.Sprintf("%d/%d/%d/%s", life, p, seq, strings.Repeat("v", size))
				prod.Produce(loadCtx, &kgo.Record{Topic: part.topic, Partition: p, Value: []byte(v)}, func(r *kgo.Record, err error) {
					<-window
					if err != nil {
						return
					}
					st.mu.Lock()
					st.acked[i][r.Offset] = v
					st.maxAcked[i] = max(st.maxAcked[i], r.Offset)
					st.records++
					st.mu.Unlock()
				})
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for loadCtx.Err() == nil {
			st.mu.Lock()
			off := st.commitSent + 1 + int64(commitRng.Intn(5))
			st.commitSent = off
			st.mu.Unlock()
			os := kadm.Offsets{}
			for p := int32(0); p < plPartitions; p++ {
				os.Add(kadm.Offset{Topic: plTopic, Partition: p, At: off, LeaderEpoch: -1})
			}
			resps, err := adm.CommitOffsets(loadCtx, plGroup, os)
			if err != nil || resps.Error() != nil {
				continue
			}
			st.mu.Lock()
			st.commitAcked = max(st.commitAcked, off)
			st.mu.Unlock()
		}
	}()
	if life == 0 {
		// A config change, acknowledged before the power loss.
		if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("424242")}}, plCfgTopic); err == nil {
			st.mu.Lock()
			st.cfgAltered = true
			st.mu.Unlock()
		}
	}
	time.Sleep(freezeAfter)

	// The machine stops: from here on nothing reaches the disk.
	fio.Inject(storage.Fault{Op: storage.OpMutating, Err: syscall.EIO})
	stopLoad()
	prod.Close()
	wg.Wait()
	// Requests stuck behind the frozen disk keep a drain from finishing:
	// give it a second, then stop regardless (its error says just that).
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	tb.Server.Shutdown(sctx)
	before := segmentBytes(tb.dir)
	if err := fio.PowerLoss(rand.New(rand.NewSource(lossSeed))); err != nil {
		t.Fatalf("power loss: %v", err)
	}
	t.Logf("life %d: power loss after %v cut %d of %d segment bytes", life, freezeAfter, before-segmentBytes(tb.dir), before)
}

// abandon releases the frozen broker's resources; whatever it writes to
// its (old) dir now no longer matters.
func abandon(tb *testBroker) {
	tb.Broker.CloseProducerState()
	tb.Reg.Close()
	tb.Server = nil
}

func verifyPowerLoss(t *testing.T, ctx context.Context, tb *testBroker, adm *kadm.Client, st *plState, life int) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	// Topics and configs.
	rcs, err := adm.DescribeTopicConfigs(ctx, plTopic, plCfgTopic)
	if err != nil {
		t.Fatalf("life %d: DescribeConfigs: %v", life, err)
	}
	want := map[string]map[string]string{plTopic: {"segment.bytes": "16384", "retention.ms": "987654321"}}
	if st.cfgAltered {
		want[plCfgTopic] = map[string]string{"max.message.bytes": "424242"}
	}
	for topic, kv := range want {
		rc, err := rcs.On(topic, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("life %d: configs of %s: %v / %v", life, topic, err, rc.Err)
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		for k, v := range kv {
			if got[k] != v {
				t.Errorf("life %d: %s %s = %q after power loss, want %q", life, topic, k, got[k], v)
			}
		}
	}
	// Records.
	ends, err := adm.ListEndOffsets(ctx, plTopic, plNoFlushTopic)
	if err != nil {
		t.Fatalf("life %d: ListEndOffsets: %v", life, err)
	}
	for i, part := range plParts {
		eo, _ := ends.Lookup(part.topic, part.p)
		if eo.Err != nil {
			t.Fatalf("life %d: %s/%d end offset: %v", life, part.topic, part.p, eo.Err)
		}
		if part.durable && eo.Offset <= st.maxAcked[i] {
			t.Fatalf("life %d: %s/%d high watermark %d after power loss; offset %d was acknowledged (flush.messages=1)", life, part.topic, part.p, eo.Offset, st.maxAcked[i])
		}
		verifyPowerLossPartition(t, ctx, tb, st, i, eo.Offset)
	}
	// Group offsets.
	resps, err := adm.FetchOffsets(ctx, plGroup)
	if err != nil {
		t.Fatalf("life %d: OffsetFetch: %v", life, err)
	}
	for p := int32(0); p < plPartitions; p++ {
		r, ok := resps.Lookup(plTopic, p)
		committed := int64(-1)
		if ok && r.Err == nil {
			committed = r.At
		}
		if committed < st.commitAcked || committed > st.commitSent {
			t.Errorf("life %d: %s/%d committed %d after power loss; want within [last acked %d, largest sent %d]", life, plTopic, p, committed, st.commitAcked, st.commitSent)
		}
		// Later lives count from what survived.
		st.commitSent = max(st.commitSent, committed)
	}
	st.commitAcked = -1
	t.Logf("life %d: %d acknowledged records (of which %d unsynced ones lost, allowed) and commits up to %d checked after power loss", life, st.records, st.lostUnsynced, st.commitSent)
}

// verifyPowerLossPartition reads offsets 0..end-1 of partition p.
func verifyPowerLossPartition(t *testing.T, ctx context.Context, tb *testBroker, st *plState, i int, end int64) {
	t.Helper()
	plTopic, p := plParts[i].topic, plParts[i].p // shadows: messages name the partition read
	cl := tb.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{plTopic: {p: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxWait(50*time.Millisecond), kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	defer cl.Close()
	next := int64(0)
	lastSeq := map[string]int{}
	for next < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s/%d: read stuck at %d of %d", plTopic, p, next, end)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("%s/%d: fetch at %d: %v", plTopic, p, next, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end {
				return
			}
			if r.Offset != next {
				t.Fatalf("%s/%d: record at offset %d, want %d", plTopic, p, r.Offset, next)
			}
			next++
			v := string(r.Value)
			if want, ok := st.acked[i][r.Offset]; ok && want != v {
				t.Fatalf("%s/%d offset %d: %.30q, but %.30q was acknowledged there", plTopic, p, r.Offset, v, want)
			}
			f := strings.SplitN(v, "/", 4)
			if len(f) != 4 || f[1] != strconv.Itoa(int(p)) || strings.Trim(f[3], "v") != "" {
				t.Fatalf("%s/%d offset %d: corrupt value %.40q", plTopic, p, r.Offset, v)
			}
			seq, _ := strconv.Atoi(f[2])
			if last, seen := lastSeq[f[0]]; (seen && seq != last+1) || (!seen && seq != 0) {
				t.Fatalf("%s/%d offset %d: life %s seq %d after %d (seen %v)", plTopic, p, r.Offset, f[0], seq, last, seen)
			}
			lastSeq[f[0]] = seq
		})
	}
	// What did not survive was never acknowledged; forget it so the next
	// life's records may take those offsets.
	for off := range st.acked[i] {
		if off >= end {
			st.lostUnsynced++
			delete(st.acked[i], off)
			st.maxAcked[i] = min(st.maxAcked[i], end-1)
		}
	}
}

// copyTree copies the regular files and directories under src into dst.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// segmentBytes sums the sizes of the .log files under dir.
func segmentBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.HasSuffix(path, ".log") {
			n += fi.Size()
		}
		return nil
	})
	return n
}
