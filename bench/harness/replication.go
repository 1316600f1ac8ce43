package harness

// The replication benchmark (issue 16, make bench-replication): on a
// three-node loopback cluster per backend (replcluster.go), in one run,
// side by side:
//
//	produce-100B, produce-16KiB  RF 3 acks=all beside RF 1 acks=all, both
//	                             led by node 1 (a manual assignment), same
//	                             cluster, same bounds (bench/perf RunProduce)
//	catchup-16KiB                a follower catching up after a restart beside
//	                             a consumer reading the same N MiB from the
//	                             leader; both are served by the leader's Fetch
//	                             (zero-copy on io_uring: splice)
//	failover                     SIGKILL of the leader of an RF 3,
//	                             min.insync.replicas=2 partition under a paced
//	                             idempotent acks=all producer, K times: time
//	                             from the kill to the first acknowledgement of
//	                             a record produced after it
//
// Figures from a shared machine mean something only as ratios within one
// run; the table gives each pair's ratio, and the JSON keeps every figure.
//
// Concurrency: everything is sequential except the failover's producer (its
// own goroutine and franz-go's) and the node starts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ringbroker/ringbroker/bench/perf"
	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// ReplOptions configures a replication benchmark run.
type ReplOptions struct {
	// Mode is tiny, quick (default) or full.
	Mode string
	// OutDir receives replication.json (default bench-results).
	OutDir string
	// WorkDir holds the nodes' data dirs and output (default: a new temp
	// dir, removed at the end).
	WorkDir string
	// Ringbrokerd is a ringbrokerd binary; empty builds ./cmd/ringbrokerd.
	Ringbrokerd string
	// Backends are the io.backend values, one cluster each, one after the
	// other (default uring and portable).
	Backends []string
	// NodeConfig overrides server.properties keys on every node (to try
	// a setting; the recorded runs use none).
	NodeConfig map[string]string
	// Out receives the table; Log one line per step (nil: none).
	Out io.Writer
	Log io.Writer
}

// replBounds are one mode's bounds.
type replBounds struct {
	produceBound time.Duration
	produce100   int64 // records of 100 B
	produce16k   int64 // records of 16 KiB
	catchUpBytes int64
	catchUpBound time.Duration
	kills        int
	failoverRate float64 // records/s of the paced producer
}

func replBoundsFor(mode string) (replBounds, error) {
	switch mode {
	case ModeTiny:
		return replBounds{produceBound: time.Second, produce100: 20_000, produce16k: 200,
			catchUpBytes: 8 << 20, catchUpBound: 10 * time.Second, kills: 1, failoverRate: 200}, nil
	case ModeQuick, "":
		return replBounds{produceBound: 8 * time.Second, produce100: 3_000_000, produce16k: 50_000,
			catchUpBytes: 256 << 20, catchUpBound: 16 * time.Second, kills: 5, failoverRate: 500}, nil
	case ModeFull:
		return replBounds{produceBound: 30 * time.Second, produce100: 20_000_000, produce16k: 200_000,
			catchUpBytes: 1 << 30, catchUpBound: 60 * time.Second, kills: 20, failoverRate: 500}, nil
	}
	return replBounds{}, fmt.Errorf("unknown mode %q (tiny, quick, full)", mode)
}

// ReplRun is one side of one comparison on one backend.
type ReplRun struct {
	Backend  string `json:"backend"`
	Scenario string `json:"scenario"`
	Side     string `json:"side"`
	// Status is "ok" or "error: ...".
	Status        string  `json:"status"`
	Records       int64   `json:"records"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"` // MiB/s of record values
	HasLatency    bool    `json:"has_latency"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	// Ratio is records/s divided by those of the scenario's other side
	// (RF 3 / RF 1, follower / consumer); 0 on the reference side.
	Ratio float64 `json:"ratio,omitempty"`
	Note  string  `json:"note,omitempty"`

	Produce  *perf.ProduceResult `json:"produce,omitempty"`
	Consume  *perf.ConsumeResult `json:"consume,omitempty"`
	CatchUp  *CatchUp            `json:"catch_up,omitempty"`
	Failover []FailoverKill      `json:"failover,omitempty"`
}

// OK reports whether the run produced figures.
func (r ReplRun) OK() bool { return r.Status == "ok" }

// CatchUp is what the follower side of catchup-16KiB measured.
type CatchUp struct {
	LeaderLogBytes int64 `json:"leader_log_bytes"`
	// StartToFirstByteMs is from the follower's exec to the first byte
	// seen in its partition dir (startup, registration, fetcher start);
	// CopyMs from that first byte to its log equal to the leader's (the
	// rate is over CopyMs); ISRRejoinMs from the exec to every node
	// reporting it in the ISR again.
	StartToFirstByteMs float64 `json:"start_to_first_byte_ms"`
	CopyMs             float64 `json:"copy_ms"`
	ISRRejoinMs        float64 `json:"isr_rejoin_ms"`
	LogMBPerSec        float64 `json:"log_mb_per_sec"`
}

// FailoverKill is one SIGKILL of a partition leader.
type FailoverKill struct {
	Victim        int32 `json:"victim"`
	WasController bool  `json:"victim_was_active_controller"`
	NewLeader     int32 `json:"new_leader"`
	// FailoverMs is from the SIGKILL to the first acknowledgement of a
	// record handed to the producer after it; FirstAckMs to the first
	// acknowledgement of any record (one buffered before the kill too).
	FailoverMs float64 `json:"failover_ms"`
	FirstAckMs float64 `json:"first_ack_ms"`
	// RejoinMs is from the victim's restart to the ISR holding all three.
	RejoinMs float64 `json:"rejoin_ms"`
}

// ReplResults is everything one run measured (replication.json).
type ReplResults struct {
	Mode     string            `json:"mode"`
	Started  time.Time         `json:"started"`
	Seconds  float64           `json:"seconds"`
	Machine  Machine           `json:"machine"`
	Settings map[string]string `json:"settings"`
	Runs     []ReplRun         `json:"runs"`
}

// replSettings are the fixed choices every run makes, printed and recorded.
var replSettings = map[string]string{
	"cluster":         "3 nodes (broker+controller) on 127.0.0.1-3, broker.session.timeout.ms=3000, heartbeat 500 ms, replica.* defaults (replica.fetch.max.bytes 1 MiB)",
	"produce":         "1 partition led by node 1 (assignment [1,2,3] vs [1]), acks=all, idempotent, linger.ms=5, batch.size=16384, unlimited rate, bootstrap all nodes",
	"catchup":         "16 KiB records, acks=1, batch.size=1 MiB, linger 5 ms, into [1,2,3] with node 3 SIGTERMed; consumer: node 1, no group, fetch-size 4 MiB, before node 3 restarts",
	"failover":        "1 partition, RF 3, min.insync.replicas=2, idempotent acks=all, linger 0, 100 B, paced; franz-go MetadataMinAge 100 ms (default 5 s); victim restarted and back in the ISR before the next kill",
	"failover-metric": "SIGKILL to first ack of a record handed to the producer after the kill",
}

// ExecuteReplication runs the replication benchmark. The results are also
// written to OutDir/replication.json; an error means the benchmark itself
// could not run (a failed measurement is a run's status).
func ExecuteReplication(ctx context.Context, opts ReplOptions) (*ReplResults, error) {
	started := time.Now()
	if opts.Mode == "" {
		opts.Mode = ModeQuick
	}
	b, err := replBoundsFor(opts.Mode)
	if err != nil {
		return nil, err
	}
	cleanup, err := prepareRun(&opts.OutDir, &opts.WorkDir, &opts.Backends, "ringbench-repl-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	logf := logfTo(opts.Log)
	bin := opts.Ringbrokerd
	if bin == "" {
		bin = filepath.Join(opts.WorkDir, "ringbrokerd")
		if _, err := daemontest.ModuleRoot(); err != nil {
			return nil, err
		}
		logf("building ringbrokerd")
		if err := daemontest.Build(ctx, daemontest.DaemonPackage, bin); err != nil {
			return nil, err
		}
	}

	res := &ReplResults{Mode: opts.Mode, Started: started, Machine: describeMachine(opts.WorkDir), Settings: maps.Clone(replSettings)}
	for k, v := range opts.NodeConfig {
		res.Settings["node config "+k] = v
	}
	for _, backend := range opts.Backends {
		if ctx.Err() != nil {
			break
		}
		res.Runs = append(res.Runs, runReplBackend(ctx, bin, backend, opts.WorkDir, opts.NodeConfig, b, logf)...)
	}
	res.Seconds = time.Since(started).Seconds()
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(opts.OutDir, "replication.json"), append(out, '\n'), 0o644); err != nil {
		return res, err
	}
	if opts.Out != nil {
		PrintReplTable(opts.Out, res)
	}
	return res, ctx.Err()
}

// runReplBackend starts one cluster, runs every scenario on it and stops it.
func runReplBackend(ctx context.Context, bin, backend, workDir string, nodeConfig map[string]string, b replBounds, logf func(string, ...any)) []ReplRun {
	fail := func(scenario string, err error) []ReplRun {
		return []ReplRun{{Backend: backend, Scenario: scenario, Side: "-", Status: "error: " + oneLine(err)}}
	}
	c, err := newReplCluster(bin, backend, workDir, nodeConfig)
	if err != nil {
		return fail("cluster", err)
	}
	defer c.stopAll()
	logf("%s: starting 3 nodes", backend)
	if err := c.startNodes(c.nodes...); err != nil {
		return fail("cluster", err)
	}
	if took, err := pollUntil(ctx, replReadyTimeout, func() error { _, err := c.whole(ctx); return err }); err != nil {
		return fail("cluster", err)
	} else {
		logf("%s: cluster whole after %v", backend, took.Round(time.Millisecond))
	}

	var runs []ReplRun
	for _, size := range []int{100, 16 << 10} {
		records := b.produce100
		if size > 100 {
			records = b.produce16k
		}
		scenario := "produce-100B"
		if size > 100 {
			scenario = "produce-16KiB"
		}
		var pair []ReplRun
		for _, rf := range []int{3, 1} {
			r := runReplProduce(ctx, c, scenario, rf, size, records, b.produceBound)
			logf("%s %s %s: %s", backend, scenario, r.Side, replSummary(r))
			pair = append(pair, r)
		}
		setRatio(&pair[0], pair[1])
		runs = append(runs, pair...)
	}
	runs = append(runs, runCatchUp(ctx, c, b, logf)...)
	fo := runFailover(ctx, c, b, logf)
	logf("%s failover: %s", backend, replSummary(fo))
	runs = append(runs, fo)
	return runs
}

func setRatio(r *ReplRun, ref ReplRun) {
	if r.OK() && ref.OK() && ref.RecordsPerSec > 0 {
		r.Ratio = r.RecordsPerSec / ref.RecordsPerSec
	}
}

func oneLine(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(msg) > 400 {
		msg = msg[:400] + "..."
	}
	return msg
}

// runReplProduce is one produce side: a new one-partition topic led by
// node 1 with replication factor rf, acks=all.
func runReplProduce(ctx context.Context, c *replCluster, scenario string, rf, size int, records int64, bound time.Duration) ReplRun {
	r := ReplRun{Backend: c.backend, Scenario: scenario, Side: fmt.Sprintf("RF%d acks=all", rf)}
	ctx, cancel := context.WithTimeout(ctx, 2*bound+90*time.Second)
	defer cancel()
	topic := fmt.Sprintf("repl-%s-rf%d-%d", strings.ToLower(scenario), rf, time.Now().UnixNano())
	replicas := []int32{1, 2, 3}[:rf]
	if err := c.createTopic(ctx, topic, replicas, nil); err != nil {
		r.Status = "error: " + oneLine(err)
		return r
	}
	if rf > 1 {
		// Measure from a full ISR: a follower still starting would make
		// acks=all wait for its first fetch.
		if _, err := c.waitISR(ctx, topic, replicas); err != nil {
			r.Status = "error: " + oneLine(err)
			return r
		}
	}
	// One acks=all record first, so that the measurement starts with the
	// followers' fetchers running (a follower that fetched before the
	// leader had the partition backs off replica.fetch.backoff.ms); how
	// long that first record took is kept as a note.
	warm, err := warmUp(ctx, c, topic)
	if err != nil {
		r.Status = "error: warm-up: " + oneLine(err)
		return r
	}
	r.Note = fmt.Sprintf("first acks=all record after creation acknowledged in %.0f ms", float64(warm)/float64(time.Millisecond))
	settings, err := perf.ParseProducerProps(map[string]string{
		"bootstrap.servers": strings.Join(c.seeds(), ","), "acks": "all",
	})
	if err != nil {
		r.Status = "error: " + oneLine(err)
		return r
	}
	pr, err := perf.RunProduce(ctx, perf.ProduceConfig{Topic: topic, NumRecords: records, RecordSize: size,
		Throughput: -1, Producer: settings, MaxDuration: bound})
	r.Produce = &pr
	if err != nil {
		r.Status = "error: " + oneLine(err)
		return r
	}
	r.Status = "ok"
	r.Records, r.Seconds = pr.Records, pr.Seconds
	r.RecordsPerSec, r.MBPerSec = pr.RecordsPerSec, pr.MBPerSec
	r.HasLatency, r.P50Ms, r.P99Ms, r.MaxMs = true, pr.P50Ms, pr.P99Ms, pr.MaxLatencyMs
	if pr.Failed > 0 {
		r.Note += fmt.Sprintf("; %d sends failed: %s", pr.Failed, pr.FirstError)
	}
	return r
}

// warmUp produces one acks=all record to topic and returns how long its
// acknowledgement took (bounded by replReadyTimeout).
func warmUp(ctx context.Context, c *replCluster, topic string) (time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, replReadyTimeout)
	defer cancel()
	start := time.Now()
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("warm-up")}).FirstErr()
	return time.Since(start), err
}

// runCatchUp preloads N MiB into [1,2,3] with node 3 stopped, reads it back
// from the leader with a consumer, then restarts node 3 and times its
// follower copying the same log.
func runCatchUp(ctx context.Context, c *replCluster, b replBounds, logf func(string, ...any)) []ReplRun {
	const size = 16 << 10
	const scenario = "catchup-16KiB"
	follower := ReplRun{Backend: c.backend, Scenario: scenario, Side: "follower (node 3)"}
	consumer := ReplRun{Backend: c.backend, Scenario: scenario, Side: "consumer (node 1)"}
	fail := func(err error) []ReplRun {
		follower.Status = "error: " + oneLine(err)
		consumer.Status = follower.Status
		return []ReplRun{follower, consumer}
	}
	ctx, cancel := context.WithTimeout(ctx, 6*b.catchUpBound+3*replReadyTimeout)
	defer cancel()
	topic := fmt.Sprintf("repl-catchup-%d", time.Now().UnixNano())
	replicas := []int32{1, 2, 3}
	if err := c.createTopic(ctx, topic, replicas, map[string]string{"min.insync.replicas": "1"}); err != nil {
		return fail(err)
	}
	if _, err := c.waitISR(ctx, topic, replicas); err != nil {
		return fail(err)
	}
	leader, lagging := c.node(1), c.node(3)
	if l, err := c.leaderOf(ctx, topic); err != nil || l != leader.id {
		return fail(fmt.Errorf("%s/0 led by %d, want node 1 (preferred leader): %v", topic, l, err))
	}
	if err := c.stopNode(lagging); err != nil {
		return fail(fmt.Errorf("SIGTERM node 3: %w", err))
	}
	settings, err := perf.ParseProducerProps(map[string]string{
		"bootstrap.servers": leader.addr(), "acks": "1", "batch.size": "1048576", "linger.ms": "5",
	})
	if err != nil {
		return fail(err)
	}
	pr, err := perf.RunProduce(ctx, perf.ProduceConfig{Topic: topic, NumRecords: b.catchUpBytes / size, RecordSize: size,
		Throughput: -1, Producer: settings, MaxDuration: 4 * b.catchUpBound})
	if err != nil {
		return fail(fmt.Errorf("preload: %w", err))
	}
	if pr.Failed > 0 {
		return fail(fmt.Errorf("preload: %d sends failed: %s", pr.Failed, pr.FirstError))
	}
	want, err := leader.logBytes(topic)
	if err != nil {
		return fail(err)
	}
	// Node 2 copies while the preload runs; wait for it so that neither
	// measurement shares the leader with its fetches.
	if _, err := pollUntil(ctx, replReadyTimeout, func() error {
		got, err := c.node(2).logBytes(topic)
		if err == nil && got != want {
			err = fmt.Errorf("node 2 holds %d of the leader's %d log bytes of %s/0", got, want, topic)
		}
		return err
	}); err != nil {
		return fail(err)
	}
	logf("%s catchup: preloaded %d records (%d log bytes) with node 3 down", c.backend, pr.Records, want)

	cr, err := perf.RunConsume(ctx, perf.ConsumeConfig{Bootstrap: []string{leader.addr()}, Topic: topic, Messages: pr.Records,
		FetchSize: 4 << 20, Timeout: 10 * time.Second, MaxDuration: b.catchUpBound})
	consumer.Consume = &cr
	if err != nil {
		consumer.Status = "error: " + oneLine(err)
	} else {
		consumer.Status = "ok"
		consumer.Records, consumer.Seconds = cr.Records, cr.Seconds
		consumer.RecordsPerSec, consumer.MBPerSec = cr.RecordsPerSec, cr.MBPerSec
		if cr.Records < pr.Records {
			consumer.Note = fmt.Sprintf("read %d of %d records within the bounds", cr.Records, pr.Records)
		}
	}
	logf("%s catchup consumer: %s", c.backend, replSummary(consumer))

	// The follower: from its exec, poll its partition dir (every
	// millisecond: the copy takes a fraction of a second) and, less
	// often, the ISR.
	base, err := lagging.logBytes(topic)
	if err != nil {
		return fail(err)
	}
	cu := &CatchUp{LeaderLogBytes: want}
	follower.CatchUp = cu
	execAt := time.Now()
	if err := c.startNodes(lagging); err != nil {
		follower.Status = "error: " + oneLine(err)
		return []ReplRun{follower, consumer}
	}
	deadline := execAt.Add(replReadyTimeout + b.catchUpBound)
	var firstByte, caughtUp time.Time
	var got int64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		got, err = lagging.logBytes(topic)
		if err != nil {
			break
		}
		now := time.Now()
		if firstByte.IsZero() && got > base {
			firstByte = now
		}
		if got >= want {
			caughtUp = now
			break
		}
		time.Sleep(time.Millisecond)
	}
	if caughtUp.IsZero() {
		follower.Status = fmt.Sprintf("error: BROKEN? node 3 holds %d of the leader's %d log bytes of %s/0 %v after its restart (%v)",
			got, want, topic, time.Since(execAt).Round(time.Millisecond), err)
		return []ReplRun{follower, consumer}
	}
	if firstByte.IsZero() || firstByte.Equal(caughtUp) {
		// Seen in one poll: the copy took less than the poll interval.
		firstByte = caughtUp.Add(-time.Millisecond)
	}
	cu.StartToFirstByteMs = float64(firstByte.Sub(execAt)) / float64(time.Millisecond)
	cu.CopyMs = float64(caughtUp.Sub(firstByte)) / float64(time.Millisecond)
	copySec := caughtUp.Sub(firstByte).Seconds()
	cu.LogMBPerSec = float64(want-base) / copySec / (1 << 20)
	follower.Status = "ok"
	follower.Records, follower.Seconds = pr.Records, copySec
	follower.RecordsPerSec = float64(pr.Records) / copySec
	follower.MBPerSec = float64(pr.Records) * size / copySec / (1 << 20)
	follower.Note = fmt.Sprintf("exec to first byte %.0f ms, copy %.0f ms (%.2f MiB/s of log bytes)", cu.StartToFirstByteMs, cu.CopyMs, cu.LogMBPerSec)
	if took, err := c.waitISR(ctx, topic, replicas); err != nil {
		follower.Note += "; ISR rejoin: " + oneLine(err)
	} else {
		cu.ISRRejoinMs = float64(time.Since(execAt)) / float64(time.Millisecond)
		follower.Note += fmt.Sprintf("; back in the ISR %.0f ms after exec (polled every %v, took %v to see)", cu.ISRRejoinMs, replPoll, took.Round(time.Millisecond))
	}
	logf("%s catchup follower: %s; %s", c.backend, replSummary(follower), follower.Note)
	setRatio(&follower, consumer)
	return []ReplRun{follower, consumer}
}

// ackLog records the acknowledgement time of every record of the paced
// producer together with the time it was handed to the producer.
type ackLog struct {
	mu   sync.Mutex
	acks []ackTimes
	errs int
	last error
}

type ackTimes struct{ sent, acked time.Time }

// firstAfter returns the first acknowledgement after t of any record and of
// a record sent after t (zero: none yet).
func (l *ackLog) firstAfter(t time.Time) (anyRecord, sentAfter time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.acks {
		if a.acked.After(t) && (anyRecord.IsZero() || a.acked.Before(anyRecord)) {
			anyRecord = a.acked
		}
		if a.sent.After(t) && (sentAfter.IsZero() || a.acked.Before(sentAfter)) {
			sentAfter = a.acked
		}
	}
	return anyRecord, sentAfter
}

// runFailover SIGKILLs the leader of an RF 3, min.insync.replicas=2
// partition K times under a paced idempotent acks=all producer.
func runFailover(ctx context.Context, c *replCluster, b replBounds, logf func(string, ...any)) ReplRun {
	r := ReplRun{Backend: c.backend, Scenario: "failover", Side: fmt.Sprintf("SIGKILL leader ×%d", b.kills)}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.kills)*(2*replReadyTimeout)+replReadyTimeout)
	defer cancel()
	topic := fmt.Sprintf("repl-failover-%d", time.Now().UnixNano())
	replicas := []int32{1, 2, 3}
	if err := c.createTopic(ctx, topic, replicas, map[string]string{"min.insync.replicas": "2"}); err != nil {
		r.Status = "error: " + oneLine(err)
		return r
	}
	if _, err := c.waitISR(ctx, topic, replicas); err != nil {
		r.Status = "error: " + oneLine(err)
		return r
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RecordDeliveryTimeout(2*replReadyTimeout))
	if err != nil {
		r.Status = "error: " + oneLine(err)
		return r
	}
	defer cl.Close()

	// The paced producer: one record every 1/rate, at most inflightMax
	// unacknowledged (it waits while the partition has no leader).
	const inflightMax = 1000
	var acks ackLog
	sem := make(chan struct{}, inflightMax)
	stop := make(chan struct{})
	done := make(chan struct{})
	value := []byte(strings.Repeat("x", 100))
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Duration(float64(time.Second) / b.failoverRate))
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			case <-stop:
				return
			}
			sent := time.Now()
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				now := time.Now()
				<-sem
				acks.mu.Lock()
				defer acks.mu.Unlock()
				if err != nil {
					acks.errs++
					acks.last = err
					return
				}
				acks.acks = append(acks.acks, ackTimes{sent: sent, acked: now})
			})
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()

	var kills []FailoverKill
	var failure error
	for i := 0; i < b.kills && failure == nil; i++ {
		// Producing on a full ISR before each kill.
		startAck := time.Now()
		if _, err := pollUntil(ctx, replReadyTimeout, func() error {
			if _, after := acks.firstAfter(startAck); after.IsZero() {
				return errors.New("no record acknowledged yet")
			}
			return nil
		}); err != nil {
			failure = fmt.Errorf("kill %d: producer not acknowledged before the kill: %w", i+1, err)
			break
		}
		leader, err := c.leaderOf(ctx, topic)
		if err != nil {
			failure = err
			break
		}
		controller, _ := c.whole(ctx)
		victim := c.node(leader)
		k := FailoverKill{Victim: leader, WasController: controller == leader}
		killedAt := time.Now()
		if err := c.killNode(victim); err != nil {
			failure = fmt.Errorf("SIGKILL node %d: %w", leader, err)
			break
		}
		if _, err := pollUntil(ctx, replReadyTimeout, func() error {
			if _, after := acks.firstAfter(killedAt); after.IsZero() {
				return fmt.Errorf("no record produced after the SIGKILL of node %d acknowledged", leader)
			}
			return nil
		}); err != nil {
			acks.mu.Lock()
			failure = fmt.Errorf("BROKEN? kill %d: %w (%d sends failed, last: %v)", i+1, err, acks.errs, acks.last)
			acks.mu.Unlock()
			break
		}
		anyAck, after := acks.firstAfter(killedAt)
		k.FailoverMs = float64(after.Sub(killedAt)) / float64(time.Millisecond)
		k.FirstAckMs = float64(anyAck.Sub(killedAt)) / float64(time.Millisecond)
		k.NewLeader, _ = c.leaderOf(ctx, topic)

		restartAt := time.Now()
		if err := c.startNodes(victim); err != nil {
			failure = err
			break
		}
		if _, err := c.waitISR(ctx, topic, replicas); err != nil {
			failure = fmt.Errorf("kill %d: node %d back: %w", i+1, leader, err)
			break
		}
		k.RejoinMs = float64(time.Since(restartAt)) / float64(time.Millisecond)
		logf("%s failover %d/%d: node %d (controller: %v) killed, first ack of a record sent after it %.0f ms (of any record %.0f ms), new leader %d; back in the ISR %.0f ms after restart",
			c.backend, i+1, b.kills, k.Victim, k.WasController, k.FailoverMs, k.FirstAckMs, k.NewLeader, k.RejoinMs)
		kills = append(kills, k)
	}
	r.Failover = kills
	acks.mu.Lock()
	if acks.errs > 0 {
		r.Note = fmt.Sprintf("%d sends failed, last: %v", acks.errs, acks.last)
	}
	acks.mu.Unlock()
	if len(kills) == 0 {
		if failure == nil {
			failure = errors.New("no kill measured")
		}
		r.Status = "error: " + oneLine(failure)
		return r
	}
	if failure != nil {
		r.Note = strings.TrimPrefix(r.Note+"; ", "; ") + fmt.Sprintf("stopped after %d kills: %s", len(kills), oneLine(failure))
	}
	var ms []float64
	for _, k := range kills {
		ms = append(ms, k.FailoverMs)
	}
	slices.Sort(ms)
	r.Status = "ok"
	r.Records = int64(len(kills))
	r.HasLatency = true
	r.P50Ms, r.P99Ms, r.MaxMs = nearestRank(ms, 50), nearestRank(ms, 99), ms[len(ms)-1]
	r.Side = fmt.Sprintf("SIGKILL leader ×%d", len(kills))
	return r
}

// nearestRank is the p-th percentile of sorted by the nearest-rank method
// (with 5 samples, p99 is the largest).
func nearestRank(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func replSummary(r ReplRun) string {
	if !r.OK() {
		return r.Status
	}
	if r.Scenario == "failover" {
		return fmt.Sprintf("%d kills, failover p50 %.0f ms, p99 %.0f ms, max %.0f ms", r.Records, r.P50Ms, r.P99Ms, r.MaxMs)
	}
	s := fmt.Sprintf("%d records in %.2f s, %.0f records/s, %.2f MB/s", r.Records, r.Seconds, r.RecordsPerSec, r.MBPerSec)
	if r.HasLatency {
		s += fmt.Sprintf(", p50 %.2f ms, p99 %.2f ms", r.P50Ms, r.P99Ms)
	}
	return s
}

// PrintReplTable writes the replication table, the ratios with both sides
// spelled out, and the notes.
func PrintReplTable(w io.Writer, res *ReplResults) {
	fmt.Fprintf(w, "ringbench replication, mode %s, %.0f s — %s, %d CPUs, kernel %s, %s, data on %s, commit %s\n\n",
		res.Mode, res.Seconds, res.Machine.CPU, res.Machine.CPUs, res.Machine.Kernel, res.Machine.Go,
		res.Machine.DataFS, res.Machine.Commit)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\tscenario\tside\trecords/s\tMB/s\tp50 ms\tp99 ms\tratio\t")
	for _, r := range res.Runs {
		if !r.OK() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t\n", r.Backend, r.Scenario, r.Side)
			continue
		}
		rate, mb := strconv.FormatFloat(r.RecordsPerSec, 'f', 0, 64), strconv.FormatFloat(r.MBPerSec, 'f', 2, 64)
		if r.Scenario == "failover" {
			rate, mb = "-", "-"
		}
		lat := "-\t-"
		if r.HasLatency {
			lat = fmt.Sprintf("%.2f\t%.2f", r.P50Ms, r.P99Ms)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Backend, r.Scenario, r.Side, rate, mb, lat, ratio(r.Ratio))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nratios (records/s, both sides):")
	for i, r := range res.Runs {
		if r.Ratio == 0 || i+1 >= len(res.Runs) {
			continue
		}
		ref := res.Runs[i+1]
		fmt.Fprintf(w, "  %s %s: %s %.0f vs %s %.0f records/s = %.2f×", r.Backend, r.Scenario, r.Side, r.RecordsPerSec,
			ref.Side, ref.RecordsPerSec, r.Ratio)
		if r.HasLatency && ref.HasLatency {
			fmt.Fprintf(w, "; p50 %.2f vs %.2f ms, p99 %.2f vs %.2f ms", r.P50Ms, ref.P50Ms, r.P99Ms, ref.P99Ms)
		} else {
			fmt.Fprintf(w, "; %.2f vs %.2f MiB/s", r.MBPerSec, ref.MBPerSec)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\nfailovers (SIGKILL → first ack of a record sent after it; ms):")
	for _, r := range res.Runs {
		if r.Scenario != "failover" || !r.OK() {
			continue
		}
		var parts []string
		for _, k := range r.Failover {
			ctl := ""
			if k.WasController {
				ctl = ", was controller"
			}
			parts = append(parts, fmt.Sprintf("%.0f (node %d%s)", k.FailoverMs, k.Victim, ctl))
		}
		fmt.Fprintf(w, "  %s: p50 %.0f, p99 %.0f, max %.0f over %d: %s\n", r.Backend, r.P50Ms, r.P99Ms, r.MaxMs, len(r.Failover), strings.Join(parts, ", "))
	}
	var notes []string
	for _, r := range res.Runs {
		if !r.OK() {
			notes = append(notes, fmt.Sprintf("  %s %s %s: %s", r.Backend, r.Scenario, r.Side, r.Status))
		} else if r.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s %s %s: %s", r.Backend, r.Scenario, r.Side, r.Note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	fmt.Fprintln(w, "\nsettings:")
	keys := make([]string, 0, len(res.Settings))
	for k := range res.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, res.Settings[k])
	}
}
