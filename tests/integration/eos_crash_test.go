//go:build linux

package integration

// Exactly-once under crashes (issue 18): a consume-transform-produce loop on
// franz-go's GroupTransactSession reads "in-<i>" from a 3-partition input
// topic and writes "out-<i>" to the same partition of an output topic, in
// transactions of a few hundred records that also commit the group's input
// offsets, while the broker is SIGKILLed at seeded points and restarted on
// the same data dir and port. When the group has committed every input
// offset, a read_committed consumer must see every "out-<i>" exactly once
// and nothing else, in input order per partition; a read_uncommitted one
// shows how many aborted records the crashes left, which read_committed
// must not return.
//
// A kill is triggered by progress, not by time: once the loop has committed
// a seeded number of input records, the broker dies right after the client
// has written the next request of a seeded kind (Produce, AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit, EndTxn) to the socket, or read
// the answer to the next TxnOffsetCommit or EndTxn (a committed
// transaction's markers are then being written: the restart must finish
// them), so a crash lands inside each step of a transaction. Whether the
// broker handled a request before it died is up to the scheduler; the seed
// fixes the rest.
// The seed also picks the broker's transaction.version, 1 or 2, so the
// crashes land in transactions v1 (AddPartitionsToTxn, AddOffsetsToTxn) or
// v2 (partitions added by Produce v12 and TxnOffsetCommit v5, the epoch
// bumped by every EndTxn v5).
// About half the kills (seeded) take the client down too: the loop's
// context for the transaction is cancelled, the session closed without
// ending it, and a new one with the same transactional id takes over, so the
// coordinator must abort what the old one left open (its records and its
// pending group offsets) after the restart.
//
// Environment:
//
//	RINGBROKER_EOS_SEED  replay this seed (printed by every run)
//	RINGBROKER_EOS_LONG  3 kills instead of 1 (the default run in make test)
//	RINGBROKER_EOS_CLIENT_LOG  show franz-go's log (the tail) on success too

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

const (
	eosPartitions = 3
	eosRecords    = 3000
	// eosTxnRecords is the most input records one transaction carries.
	eosTxnRecords = 300
	// eosSessionsMax bounds how often the loop may recreate its client after
	// kgo gave up (a fatal transactional error or an End that failed).
	eosSessionsMax = 20
)

// eosKillRequests are the requests a kill can follow (written, or with answer
// its response read), by name for the log.
var eosKillRequests = []eosKillRequest{
	// Not Fetch: kgo fetches the whole input early and then not again until
	// the loop has drained its buffer, so a kill waiting for a Fetch came
	// near the end of the run, after the transactions later kills wait for.
	{0, false, "Produce"}, {24, false, "AddPartitionsToTxn"}, {25, false, "AddOffsetsToTxn"},
	{28, false, "TxnOffsetCommit"}, {26, false, "EndTxn"},
	{28, true, "TxnOffsetCommit's answer"}, {26, true, "EndTxn's answer"},
}

type eosKillRequest struct {
	key    int16
	answer bool
	name   string
}

// eosKill is one scheduled crash: after the loop has committed at least
// afterRecords input records, SIGKILL the broker once the client has written
// a request with key (answer false) or read the response to one (answer true).
type eosKill struct {
	afterRecords int
	key          int16
	answer       bool
	name         string
	// abandon: the client "crashes" with the broker (see the file comment).
	abandon bool
}

func TestEOSUnderCrashes(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RINGBROKER_EOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RINGBROKER_EOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	kills, budget := 1, 90*time.Second
	if os.Getenv("RINGBROKER_EOS_LONG") != "" {
		kills, budget = 3, 3*time.Minute
	}
	txnVersion := eosTxnVersion(seed)
	t.Logf("seed %d (replay with RINGBROKER_EOS_SEED=%d), %d kill(s), transaction.version %d", seed, seed, kills, txnVersion)
	forEachBackend(t, func(t *testing.T, backend string) {
		testEOSUnderCrashes(t, backend, txnVersion, eosSchedule(seed, kills, txnVersion), budget)
	})
}

// eosTxnVersion draws the broker's transaction.version from seed, on a
// stream of its own: 1 keeps franz-go on transactions v1
// (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn v4), 2 lets it use v2
// (Produce v12 and TxnOffsetCommit v5 add the partitions, EndTxn v5 bumps
// the epoch).
func eosTxnVersion(seed uint64) int {
	return 1 + rand.New(rand.NewPCG(seed, 19)).IntN(2)
}

// eosSchedule draws kills crash points from seed: progress thresholds
// between 10% and 70% of the input, drawn independently and sorted (two close
// ones kill the restarted broker again at the client's first matching
// request, while it may still be finishing what the last crash left), and the
// request each one follows. The last kill comes with at least 30% of the
// input left, so the request it waits for is still to come.
//
// At transaction.version 2 the client sends no AddPartitionsToTxn or
// AddOffsetsToTxn (past its first transaction), so no kill waits for one.
func eosSchedule(seed uint64, kills, txnVersion int) []eosKill {
	r := rand.New(rand.NewPCG(seed, 18))
	requests := eosKillRequests
	if txnVersion >= 2 {
		requests = slices.DeleteFunc(slices.Clone(requests), func(req eosKillRequest) bool { return req.key == 24 || req.key == 25 })
	}
	var out []eosKill
	for range kills {
		req := requests[r.IntN(len(requests))]
		after := eosRecords/10 + r.IntN(eosRecords*6/10)
		out = append(out, eosKill{afterRecords: after, key: req.key, answer: req.answer, name: req.name, abandon: r.IntN(2) == 0})
	}
	slices.SortStableFunc(out, func(a, b eosKill) int { return a.afterRecords - b.afterRecords })
	return out
}

// eosCrasher kills and restarts the broker when a scheduled crash point is
// reached. The hook runs on the client's connection goroutines; the restart
// runs on its own goroutine so the client, retrying meanwhile, is not
// blocked by it.
type eosCrasher struct {
	t       *testing.T
	backend string
	props   map[string]string
	port    int
	kills   []eosKill

	mu        sync.Mutex
	stopped   bool               // no more kills: the loop is over
	broker    *Broker            // the live broker; nil while one is being restarted
	next      int                // index in kills of the next crash
	committed int                // input records committed so far, as the loop saw it
	txnCancel context.CancelFunc // cancels the loop's current transaction
	errs      []error
	done      sync.WaitGroup
}

// progress tells the crasher how many input records the loop has committed.
func (c *eosCrasher) progress(committed int) {
	c.mu.Lock()
	c.committed = committed
	c.mu.Unlock()
}

// transaction tells the crasher how to cancel the loop's next transaction.
func (c *eosCrasher) transaction(cancel context.CancelFunc) {
	c.mu.Lock()
	c.txnCancel = cancel
	c.mu.Unlock()
}

// waitBeforeTransaction: one node is back before its next request.
func (c *eosCrasher) waitBeforeTransaction(context.Context) {}

// OnBrokerWrite implements kgo.HookBrokerWrite: a request was written.
func (c *eosCrasher) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		c.maybeKill(key, false)
	}
}

// OnBrokerRead implements kgo.HookBrokerRead: a response was read.
func (c *eosCrasher) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		c.maybeKill(key, true)
	}
}

// maybeKill is the crash trigger: the client wrote a request with key (answer
// false) or read its response (answer true).
func (c *eosCrasher) maybeKill(key int16, answer bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.next >= len(c.kills) || c.broker == nil {
		return
	}
	k := c.kills[c.next]
	if c.committed < k.afterRecords || key != k.key || answer != k.answer {
		return
	}
	c.next++
	b := c.broker
	c.broker = nil
	b.stopped = true
	// Killed here, on the goroutine that wrote the request or read the
	// answer, so the broker has had as little time as possible to act on it
	// or to go on after it.
	if err := b.Daemon.Kill(stopTimeout); err != nil {
		c.errs = append(c.errs, fmt.Errorf("SIGKILL: %w", err))
		return
	}
	how := ""
	if k.abandon {
		c.txnCancel()
		how = "; the client is abandoned too"
	}
	c.t.Logf("kill %d: SIGKILL right after the client handled %s, %d input records committed%s", c.next, k.name, c.committed, how)
	c.done.Add(1)
	go c.restart()
}

func (c *eosCrasher) restart() {
	defer c.done.Done()
	start := time.Now()
	b, err := startBrokerOn(c.t, c.backend, c.props, c.port)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("restart: %w", err))
		return
	}
	c.t.Logf("restarted on the same data dir and port in %v", time.Since(start).Round(time.Millisecond))
	c.broker = b
}

// stop ends the kills, waits for a restart in progress and returns the
// crasher's errors. Deferred too, so no hook or restart outlives the test.
func (c *eosCrasher) stop() error {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.done.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs...)
}

// killed returns how many crashes happened.
func (c *eosCrasher) killed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

func testEOSUnderCrashes(t *testing.T, backend string, txnVersion int, kills []eosKill, budget time.Duration) {
	for i, k := range kills {
		t.Logf("kill %d scheduled after %d committed input records, on the next %s (abandoning the client: %v)", i+1, k.afterRecords, k.name, k.abandon)
	}
	const (
		input  = "eos-in"
		output = "eos-out"
		group  = "eos-group"
		txnID  = "eos-transform"
	)
	props := map[string]string{
		"log.dirs": filepath.Join(t.TempDir(), "data"),
		// An abandoned transaction blocks the group's offsets (RequireStable)
		// until it times out: check for that every second, not every 10 s.
		"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
		"transaction.version": strconv.Itoa(txnVersion),
	}
	b := startBroker(t, backend, props)
	addr := b.Addr
	createTopic(t, addr, input, eosPartitions, nil)
	createTopic(t, addr, output, eosPartitions, nil)
	in := make([]sentRecord, eosRecords)
	for i := range in {
		in[i] = sentRecord{partition: int32(i % eosPartitions), value: []byte("in-" + strconv.Itoa(i))}
	}
	produceSync(t, newClient(t, addr), input, in)
	inEnds := endOffsets(t, addr, input)

	crasher := &eosCrasher{t: t, backend: backend, props: props, port: b.Port, kills: kills, broker: b}
	defer func() { _ = crasher.stop() }()
	// kgo's log of every session, shown when the test fails.
	clientLog := daemontest.NewOutputBuffer(8 << 20)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("RINGBROKER_EOS_CLIENT_LOG") != "" {
			t.Logf("franz-go log:\n%s", daemontest.Tail(clientLog.String(), 256<<10))
		}
	})

	runEOSLoop(t, []string{addr}, input, output, group, txnID, inEnds, kills, budget, crasher, clientLog)
}

// groupOffsets returns group's committed offsets in topic (empty on error: the
// caller waits on it, bounded).
func groupOffsets(ctx context.Context, addr, group, topic string) map[int32]int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(5*time.Second), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		return nil
	}
	defer cl.Close()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(fctx, group)
	if err != nil || resp.Error() != nil {
		return nil
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

// stableGroupOffsets returns group's committed offsets of topic's partitions
// 0..partitions-1 (-1: none) once no transactional offset commit is pending
// for them: it asks OffsetFetch with RequireStable (KIP-447) for those
// partitions by name until no partition answers UNSTABLE_OFFSET_COMMIT or
// another error, bounded by e2eTimeout. By name, because a fetch of all the
// group's topics (kadm FetchOffsets) lists committed offsets only, as Kafka's
// does: a partition whose first commit is still pending is just absent
// there, not unstable.
func stableGroupOffsets(t *testing.T, addr, group, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	cl := newClient(t, addr)
	deadline := time.Now().Add(e2eTimeout)
	for {
		out, err := fetchStableOffsets(cl, group, topic, partitions)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: no stable committed offsets of %s within %v: %v", group, topic, e2eTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fetchStableOffsets is one RequireStable OffsetFetch of stableGroupOffsets.
// The request carries both shapes (v8+ groups, and the single group before);
// kmsg encodes the one of the version the client picks.
func fetchStableOffsets(cl *kgo.Client, group, topic string, partitions int32) (map[int32]int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.RequireStable = true
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	gt := kmsg.NewOffsetFetchRequestGroupTopic()
	gt.Topic = topic
	for p := range partitions {
		rt.Partitions = append(rt.Partitions, p)
		gt.Partitions = append(gt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	rg.Topics = append(rg.Topics, gt)
	req.Groups = append(req.Groups, rg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	check := func(p int32, offset int64, code int16) error {
		if err := kerr.ErrorForCode(code); err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		out[p] = offset
		return nil
	}
	if resp.Version >= 8 {
		if len(resp.Groups) != 1 {
			return nil, fmt.Errorf("OffsetFetch v%d answered %d groups", resp.Version, len(resp.Groups))
		}
		g := resp.Groups[0]
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return nil, err
		}
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				if err := check(p.Partition, p.Offset, p.ErrorCode); err != nil {
					return nil, err
				}
			}
		}
	} else {
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return nil, err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := check(p.Partition, p.Offset, p.ErrorCode); err != nil {
					return nil, err
				}
			}
		}
	}
	if int32(len(out)) != partitions {
		return nil, fmt.Errorf("OffsetFetch v%d answered %d of %d partitions", resp.Version, len(out), partitions)
	}
	return out, nil
}

func mapsEqual(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// waitTxnComplete waits, bounded, until DescribeTransactions shows txnID with
// no transaction in progress (Empty, CompleteCommit or CompleteAbort).
func waitTxnComplete(t *testing.T, addr, txnID string) {
	t.Helper()
	adm := newAdmin(t, addr)
	deadline := time.Now().Add(e2eTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		described, err := adm.DescribeTransactions(ctx, txnID)
		cancel()
		var state string
		if err == nil {
			d, ok := described[txnID]
			switch {
			case !ok:
				err = fmt.Errorf("not in the answer")
			case d.Err != nil:
				err = d.Err
			default:
				state = d.State
			}
		}
		switch state {
		case "Empty", "CompleteCommit", "CompleteAbort":
			t.Logf("transactional id %s: %s", txnID, state)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("transactional id %s: state %q (error %v) after %v, want no transaction in progress", txnID, state, err, e2eTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStable waits, bounded, until every partition's last stable offset is its
// high watermark in ends: no transaction is left open in topic.
func waitStable(t *testing.T, addr, topic string, ends map[int32]int64) {
	t.Helper()
	adm := newAdmin(t, addr)
	deadline := time.Now().Add(e2eTimeout)
	var last map[int32]int64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		lo, err := adm.ListCommittedOffsets(ctx, topic)
		cancel()
		if err == nil {
			last = map[int32]int64{}
			lo.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					last[o.Partition] = o.Offset
				}
			})
			if mapsEqual(last, ends) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last stable offsets %v (error %v), high watermarks %v after %v: a transaction stays open", topic, last, err, ends, e2eTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eosConsume reads topic from its start with the given isolation level and
// returns what it read. The caller waited until the last stable offset is the
// high watermark, so everything is fetchable at once: the read ends after a
// second in which fetches (200 ms long polls) returned nothing new.
func eosConsume(t *testing.T, addr, topic string, level kgo.IsolationLevel) []gotRecord {
	t.Helper()
	cl := newClient(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: fromStart(eosPartitions)}),
		kgo.FetchIsolationLevel(level),
		kgo.FetchMaxBytes(64<<20),
	)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var got []gotRecord
	quietUntil := time.Now().Add(time.Second)
	for time.Now().Before(quietUntil) {
		pctx, pcancel := context.WithDeadline(ctx, quietUntil)
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			t.Fatalf("consume %s: no end within %v", topic, e2eTimeout)
		}
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				t.Errorf("fetch %s/%d: %v", tp, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, gotRecord{partition: r.Partition, offset: r.Offset, value: r.Value})
			quietUntil = time.Now().Add(time.Second)
		})
	}
	return got
}

// eosVerify checks the output topic: read_committed holds every "out-<i>"
// exactly once, in partition i%3, in increasing i per partition, and nothing
// else; every record it returned is one read_uncommitted returned at the same
// offset; the records only read_uncommitted returned are the aborted ones.
func eosVerify(t *testing.T, committed, uncommitted []gotRecord) {
	t.Helper()
	problems := 0
	report := func(format string, args ...any) {
		problems++
		if problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	seen := make([]int, eosRecords)
	lastIndex := map[int32]int{}
	for _, r := range committed {
		s, ok := strings.CutPrefix(string(r.value), "out-")
		i, err := strconv.Atoi(s)
		if !ok || err != nil || i < 0 || i >= eosRecords {
			report("read_committed %d/%d: unexpected value %q", r.partition, r.offset, r.value)
			continue
		}
		seen[i]++
		if seen[i] == 2 {
			report("read_committed: out-%d twice (again at %d/%d)", i, r.partition, r.offset)
		}
		if want := int32(i % eosPartitions); r.partition != want {
			report("read_committed: out-%d in partition %d, want %d", i, r.partition, want)
		}
		if last, ok := lastIndex[r.partition]; ok && i <= last {
			report("read_committed partition %d: out-%d at offset %d after out-%d", r.partition, i, r.offset, last)
		}
		lastIndex[r.partition] = i
	}
	missing := 0
	for i, n := range seen {
		if n == 0 {
			missing++
			if missing <= 10 {
				report("read_committed: out-%d missing", i)
			}
		}
	}
	type at struct {
		partition int32
		offset    int64
	}
	all := make(map[at]string, len(uncommitted))
	for _, r := range uncommitted {
		all[at{r.partition, r.offset}] = string(r.value)
	}
	for _, r := range committed {
		if v, ok := all[at{r.partition, r.offset}]; !ok || v != string(r.value) {
			report("read_committed %d/%d %q: read_uncommitted has %q there", r.partition, r.offset, r.value, v)
		}
	}
	abortedRecords := len(uncommitted) - len(committed)
	var abortedSample []string
	inCommitted := make(map[at]bool, len(committed))
	for _, r := range committed {
		inCommitted[at{r.partition, r.offset}] = true
	}
	for _, r := range uncommitted {
		if inCommitted[at{r.partition, r.offset}] {
			continue
		}
		// An aborted record is a transformed input record all the same.
		if s, ok := strings.CutPrefix(string(r.value), "out-"); !ok {
			report("read_uncommitted %d/%d: unexpected value %q", r.partition, r.offset, r.value)
		} else if i, err := strconv.Atoi(s); err != nil || i < 0 || i >= eosRecords || int32(i%eosPartitions) != r.partition {
			report("read_uncommitted %d/%d: unexpected value %q", r.partition, r.offset, r.value)
		}
		if len(abortedSample) < 5 {
			abortedSample = append(abortedSample, fmt.Sprintf("%d/%d %s", r.partition, r.offset, r.value))
		}
	}
	slices.Sort(abortedSample)
	t.Logf("output: %d records read_committed (%d missing), %d read_uncommitted: %d aborted records (e.g. %v)",
		len(committed), missing, len(uncommitted), abortedRecords, abortedSample)
	if problems > 20 {
		t.Errorf("%d more problems not shown", problems-20)
	}
}

// eosLoopCrasher is what the consume-transform-produce loop asks of the
// test's crasher: the client hooks that kill a broker on a request, and
// the loop's progress (eosCrasher on one node, clusterEOSCrasher on three).
type eosLoopCrasher interface {
	kgo.HookBrokerWrite
	kgo.HookBrokerRead
	waitBeforeTransaction(ctx context.Context)
	transaction(cancel context.CancelFunc)
	progress(committed int)
	stop() error
	killed() int
}

// runEOSLoop runs the consume-transform-produce loop of the exactly-once
// crash tests until the group has committed every input record (bounded by
// budget), recreating the session whenever a kill leaves it unusable, and
// then checks the group's offsets and the output topic (eosVerify). The
// input topic holds "in-<i>" records with end offsets inEnds.
func runEOSLoop(t *testing.T, seeds []string, input, output, group, txnID string, inEnds map[int32]int64, kills []eosKill, budget time.Duration, crasher eosLoopCrasher, clientLog *daemontest.OutputBuffer) {
	addr := seeds[0]
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(budget))
	defer cancel()
	committed, sessions, aborted := 0, 0, 0
	newSession := func() *kgo.GroupTransactSession {
		sessions++
		s, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(seeds...),
			kgo.DialTimeout(5*time.Second),
			kgo.RetryTimeout(startTimeout),
			kgo.WithHooks(crasher),
			kgo.WithLogger(kgo.BasicLogger(clientLog, kgo.LogLevelInfo, func() string {
				return time.Now().Format("15:04:05.000 ")
			})),
			kgo.TransactionalID(txnID),
			// The new session of an abandoning kill fetches the group's
			// offsets before its first InitProducerId (which would abort
			// the old transaction at once), so the old one holds it up
			// until this timeout aborts it.
			kgo.TransactionTimeout(10*time.Second),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(input),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.FetchMaxWait(200*time.Millisecond),
			// A recreated session's member replaces the last one quickly.
			kgo.SessionTimeout(6*time.Second),
			kgo.HeartbeatInterval(500*time.Millisecond),
			kgo.RebalanceTimeout(10*time.Second),
		)
		if err != nil {
			t.Fatalf("session %d: %v", sessions, err)
		}
		return s
	}
	inputDone := func() bool {
		got := groupOffsets(ctx, addr, group, input)
		for p, end := range inEnds {
			if got[p] != end {
				return false
			}
		}
		return true
	}

	sess := newSession()
	defer func() {
		if sess != nil {
			sess.Close()
		}
	}()
	for {
		if ctx.Err() != nil {
			t.Fatalf("after %v: %d of %d input records committed, %d sessions, %d kills", budget, committed, eosRecords, sessions, crasher.killed())
		}
		failed := func(what string, err error) {
			t.Logf("session %d: %s: %v; recreating the client", sessions, what, err)
			sess.Close()
			sess = nil
			if sessions >= eosSessionsMax {
				t.Fatalf("%d sessions used, %d of %d input records committed", sessions, committed, eosRecords)
			}
			sess = newSession()
		}
		// A cluster's crasher holds the next transaction while a killed
		// node comes back (a single node's returns at once).
		crasher.waitBeforeTransaction(ctx)
		// txnCtx is the client's life for one poll and transaction: an
		// abandoning kill cancels it.
		txnCtx, txnCancel := context.WithCancel(ctx)
		crasher.transaction(txnCancel)
		pollCtx, pollCancel := context.WithTimeout(txnCtx, 2*time.Second)
		fs := sess.PollRecords(pollCtx, eosTxnRecords)
		pollCancel()
		if txnCtx.Err() != nil && ctx.Err() == nil {
			failed("abandoned while polling", txnCtx.Err())
			continue
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				t.Logf("poll %s/%d: %v", topic, p, err)
			}
		})
		if fs.NumRecords() == 0 {
			txnCancel()
			if inputDone() {
				break
			}
			continue
		}
		if err := sess.Begin(); err != nil {
			txnCancel()
			failed("Begin", err)
			continue
		}
		var produceErrs atomic.Int64
		var firstErr atomic.Value
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			i, ok := strings.CutPrefix(string(r.Value), "in-")
			if !ok {
				t.Errorf("input %d/%d holds %q", r.Partition, r.Offset, r.Value)
			}
			out := &kgo.Record{Topic: output, Partition: r.Partition, Value: []byte("out-" + i)}
			sess.Produce(txnCtx, out, func(_ *kgo.Record, err error) {
				if err != nil && produceErrs.Add(1) == 1 {
					firstErr.Store(err)
				}
			})
		})
		ok, err := sess.End(txnCtx, kgo.TryCommit)
		txnCancel()
		if produceErrs.Load() > 0 {
			t.Logf("session %d: %d produce errors in the transaction, first %v (committed %v)", sessions, produceErrs.Load(), firstErr.Load(), ok)
		}
		if err != nil {
			failed("End", err)
			continue
		}
		if !ok {
			aborted++
			continue
		}
		committed += n
		crasher.progress(committed)
	}
	sess.Close()
	sess = nil
	if err := crasher.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("loop done in %v: %d sessions, %d kills, %d transactions ended by an abort", time.Since(start).Round(time.Millisecond), sessions, crasher.killed(), aborted)
	if crasher.killed() != len(kills) {
		t.Errorf("%d of %d scheduled kills happened", crasher.killed(), len(kills))
	}

	// The group's committed offsets are the input's end offsets (checked in the
	// loop; once more here from a fresh client, after the last restart).
	if got := stableGroupOffsets(t, addr, group, input, eosPartitions); !mapsEqual(got, inEnds) {
		t.Errorf("group %s committed %v, input end offsets %v", group, got, inEnds)
	}

	// No transaction may stay open: the coordinator completed the last one,
	// and read_committed reads up to the high watermark.
	waitTxnComplete(t, addr, txnID)
	outEnds := endOffsets(t, addr, output)
	waitStable(t, addr, output, outEnds)

	committedRecs := eosConsume(t, addr, output, kgo.ReadCommitted())
	uncommitted := eosConsume(t, addr, output, kgo.ReadUncommitted())
	eosVerify(t, committedRecs, uncommitted)
}
