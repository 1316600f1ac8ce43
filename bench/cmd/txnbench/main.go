// Command txnbench is the transactions benchmark (make bench-txn, issue
// 18), one run per backend on one ringbrokerd, franz-go as the client:
//
//   - produce: the same records (default 1,000,000 of 100 B over 3
//     partitions) once by an idempotent producer (acks=all) and once by a
//     transactional one that commits a transaction every 100 ms (produce
//     for 100 ms, flush, EndTxn commit). Records/s over the whole run, p50
//     and p99 of a record's acknowledgement latency (Produce call to its
//     promise), and for the transactional run also p99 of the time until
//     the record is committed (its transaction's EndTxn returned: when a
//     read_committed consumer may see it).
//   - catch-up: a topic written in transactions of 1,000 records, one in
//     four aborted, read from the start to its end by a read_uncommitted
//     and by a read_committed consumer, alternately, three times each (the
//     best of each kept: the first read of a file pays for what the next
//     ones find cached): seconds, and records of the log per second (both
//     read the same log; read_committed delivers the committed three
//     quarters).
//
// Figures are printed as a table with both sides of each ratio and written
// to txn.json; nothing is asserted (the machine is shared: only the ratios
// within one run mean something).
//
// Environment (flags win):
//
//	BENCH_OUT=DIR        output directory (default bench-results)
//	RINGBROKERD=PATH     prebuilt ringbrokerd (default: go build ./cmd/ringbrokerd)
//	BENCH_BACKENDS=a,b   io.backend values (default uring,portable)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ringbroker/ringbroker/bench/harness"
	"github.com/ringbroker/ringbroker/internal/daemontest"
)

const (
	partitions = 3
	// txnDuration is how long the transactional producer keeps a
	// transaction open before committing it.
	txnDuration = 100 * time.Millisecond
	// catchUpTxnRecords is the size of one transaction of the catch-up
	// topic; every catchUpAbortEvery-th one is aborted.
	catchUpTxnRecords = 1000
	catchUpAbortEvery = 4
	// catchUpRounds is how often each consumer reads the catch-up topic.
	catchUpRounds = 3
	// phaseTimeout bounds each phase.
	phaseTimeout = 5 * time.Minute
)

// Result is one backend's figures.
type Result struct {
	Backend string `json:"backend"`
	Records int    `json:"records"`
	Size    int    `json:"record_bytes"`

	IdempotentRecordsPerSec float64 `json:"idempotent_records_per_sec"`
	IdempotentAckP50Ms      float64 `json:"idempotent_ack_p50_ms"`
	IdempotentAckP99Ms      float64 `json:"idempotent_ack_p99_ms"`

	TxnRecordsPerSec float64 `json:"txn_records_per_sec"`
	TxnAckP50Ms      float64 `json:"txn_ack_p50_ms"`
	TxnAckP99Ms      float64 `json:"txn_ack_p99_ms"`
	TxnCommitP99Ms   float64 `json:"txn_commit_p99_ms"`
	Transactions     int     `json:"transactions"`

	CatchUpLogRecords        int     `json:"catchup_log_records"`
	ReadUncommittedSec       float64 `json:"read_uncommitted_sec"`
	ReadUncommittedDelivered int     `json:"read_uncommitted_delivered"`
	ReadCommittedSec         float64 `json:"read_committed_sec"`
	ReadCommittedDelivered   int     `json:"read_committed_delivered"`

	Error string `json:"error,omitempty"`
}

func main() {
	records := flag.Int("records", 1000000, "records per produce run and in the catch-up topic")
	size := flag.Int("size", 100, "record value bytes")
	out := flag.String("out", harness.EnvOr("BENCH_OUT", "bench-results"), "directory for txn.json")
	bin := flag.String("ringbrokerd", os.Getenv("RINGBROKERD"), "ringbrokerd binary (default: go build ./cmd/ringbrokerd)")
	backends := flag.String("backends", harness.EnvOr("BENCH_BACKENDS", "uring,portable"), "io.backend values, one broker each")
	flag.Parse()
	if *records < catchUpTxnRecords || *size < 1 {
		fmt.Fprintf(os.Stderr, "txnbench: -records at least %d, -size at least 1\n", catchUpTxnRecords)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *out, harness.SplitList(*backends), *records, *size); err != nil {
		fmt.Fprintln(os.Stderr, "txnbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, outDir string, backends []string, records, size int) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "txnbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if bin == "" {
		bin = filepath.Join(work, "ringbrokerd")
		fmt.Fprintln(os.Stderr, "building ringbrokerd")
		if err := daemontest.Build(ctx, daemontest.DaemonPackage, bin); err != nil {
			return err
		}
	}
	var results []Result
	for _, backend := range backends {
		fmt.Fprintf(os.Stderr, "backend %s\n", backend)
		r := Result{Backend: backend, Records: records, Size: size}
		if err := runBackend(ctx, bin, filepath.Join(work, backend), &r); err != nil {
			r.Error = err.Error()
			fmt.Fprintf(os.Stderr, "backend %s: %v\n", backend, err)
		}
		results = append(results, r)
	}
	printTable(results)
	data, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(outDir, "txn.json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nresults: %s\n", path)
	for _, r := range results {
		if r.Error != "" {
			return errors.New("a backend failed (see above)")
		}
	}
	return nil
}

func runBackend(ctx context.Context, bin, dir string, r *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d, err := daemontest.Start(daemontest.Options{
		Argv: []string{bin},
		Config: map[string]string{
			"listeners":        "PLAINTEXT://127.0.0.1:{port}",
			"log.dirs":         filepath.Join(dir, "data"),
			"io.backend":       r.Backend,
			"metrics.listener": "",
		},
		ConfigPath: filepath.Join(dir, "server.properties"), ConfigHeader: "written by txnbench",
		Dir:             dir,
		LogFile:         filepath.Join(dir, "ringbrokerd.log"),
		OwnProcessGroup: true,
	})
	if err != nil {
		return err
	}
	defer func() {
		if _, err := d.Stop(time.Minute); err != nil {
			fmt.Fprintf(os.Stderr, "stop ringbrokerd: %v\n", err)
		}
	}()
	if err := d.WaitReady(time.Minute, nil); err != nil {
		return err
	}
	addr := d.Addr
	value := make([]byte, r.Size)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	for _, topic := range []string{"idempotent", "transactional", "catchup"} {
		if err := createTopic(ctx, addr, topic); err != nil {
			return err
		}
	}

	rate, ack, _, _, err := produce(ctx, addr, "idempotent", "", r.Records, value)
	if err != nil {
		return fmt.Errorf("idempotent produce: %w", err)
	}
	r.IdempotentRecordsPerSec, r.IdempotentAckP50Ms, r.IdempotentAckP99Ms = rate, percentileMs(ack, 50), percentileMs(ack, 99)
	fmt.Fprintf(os.Stderr, "  idempotent: %.0f records/s, ack p99 %.1f ms\n", rate, r.IdempotentAckP99Ms)

	rate, ack, commit, txns, err := produce(ctx, addr, "transactional", "txnbench-"+r.Backend, r.Records, value)
	if err != nil {
		return fmt.Errorf("transactional produce: %w", err)
	}
	r.TxnRecordsPerSec, r.TxnAckP50Ms, r.TxnAckP99Ms, r.TxnCommitP99Ms, r.Transactions = rate, percentileMs(ack, 50), percentileMs(ack, 99), percentileMs(commit, 99), txns
	fmt.Fprintf(os.Stderr, "  transactional: %.0f records/s, ack p99 %.1f ms, commit p99 %.1f ms, %d transactions\n", rate, r.TxnAckP99Ms, r.TxnCommitP99Ms, txns)

	committed, err := writeCatchUp(ctx, addr, "catchup", "txnbench-catchup-"+r.Backend, r.Records, value)
	if err != nil {
		return fmt.Errorf("catch-up topic: %w", err)
	}
	r.CatchUpLogRecords = r.Records
	for range catchUpRounds {
		sec, n, err := catchUp(ctx, addr, "catchup", kgo.ReadUncommitted(), r.Records)
		if err != nil {
			return fmt.Errorf("read_uncommitted catch-up: %w", err)
		}
		if r.ReadUncommittedSec == 0 || sec < r.ReadUncommittedSec {
			r.ReadUncommittedSec = sec
		}
		r.ReadUncommittedDelivered = n
		sec, n, err = catchUp(ctx, addr, "catchup", kgo.ReadCommitted(), committed)
		if err != nil {
			return fmt.Errorf("read_committed catch-up: %w", err)
		}
		if r.ReadCommittedSec == 0 || sec < r.ReadCommittedSec {
			r.ReadCommittedSec = sec
		}
		r.ReadCommittedDelivered = n
	}
	if r.ReadUncommittedDelivered != r.Records || r.ReadCommittedDelivered != committed {
		return fmt.Errorf("catch-up delivered %d read_uncommitted (want %d) and %d read_committed (want %d)",
			r.ReadUncommittedDelivered, r.Records, r.ReadCommittedDelivered, committed)
	}
	fmt.Fprintf(os.Stderr, "  catch-up: read_uncommitted %.2f s, read_committed %.2f s\n", r.ReadUncommittedSec, r.ReadCommittedSec)
	return nil
}

func newClient(addr string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryTimeout(30 * time.Second),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, opts...)...)
}

func createTopic(ctx context.Context, addr, topic string) error {
	cl, err := newClient(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(cctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	return err
}

// produce sends records records round robin over the partitions, idempotent
// (txnID "") or in transactions of txnDuration, and returns records/s over
// the whole run, each record's ack latency, each record's commit latency
// (transactional only) and the number of transactions.
func produce(ctx context.Context, addr, topic, txnID string, records int, value []byte) (rate float64, ack, commit []time.Duration, txns int, err error) {
	opts := []kgo.Opt{kgo.MaxBufferedRecords(10000)}
	if txnID != "" {
		opts = append(opts, kgo.TransactionalID(txnID), kgo.TransactionTimeout(time.Minute))
	}
	cl, err := newClient(addr, opts...)
	if err != nil {
		return 0, nil, nil, 0, err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, phaseTimeout)
	defer cancel()
	ack = make([]time.Duration, records)
	sent := make([]time.Time, records)
	var mu sync.Mutex
	var firstErr error
	send := func(i int) {
		sent[i] = time.Now()
		rec := &kgo.Record{Topic: topic, Partition: int32(i % partitions), Value: value}
		cl.Produce(pctx, rec, func(_ *kgo.Record, err error) {
			ack[i] = time.Since(sent[i])
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	if txnID == "" {
		for i := range records {
			send(i)
		}
		if err := cl.Flush(pctx); err != nil {
			return 0, nil, nil, 0, err
		}
	} else {
		commit = make([]time.Duration, records)
		for i := 0; i < records; {
			if err := cl.BeginTransaction(); err != nil {
				return 0, nil, nil, txns, err
			}
			from := i
			txnStart := time.Now()
			for ; i < records && time.Since(txnStart) < txnDuration; i++ {
				send(i)
			}
			if err := cl.Flush(pctx); err != nil {
				return 0, nil, nil, txns, err
			}
			if err := cl.EndTransaction(pctx, kgo.TryCommit); err != nil {
				return 0, nil, nil, txns, fmt.Errorf("commit: %w", err)
			}
			now := time.Now()
			for j := from; j < i; j++ {
				commit[j] = now.Sub(sent[j])
			}
			txns++
		}
	}
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, nil, nil, txns, firstErr
	}
	return float64(records) / elapsed.Seconds(), ack, commit, txns, nil
}

// writeCatchUp writes records records in transactions of catchUpTxnRecords,
// every catchUpAbortEvery-th aborted, and returns how many were committed.
func writeCatchUp(ctx context.Context, addr, topic, txnID string, records int, value []byte) (int, error) {
	cl, err := newClient(addr, kgo.TransactionalID(txnID), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, phaseTimeout)
	defer cancel()
	committed := 0
	for i, txn := 0, 0; i < records; txn++ {
		if err := cl.BeginTransaction(); err != nil {
			return 0, err
		}
		n := min(catchUpTxnRecords, records-i)
		var mu sync.Mutex
		var firstErr error
		for j := range n {
			rec := &kgo.Record{Topic: topic, Partition: int32((i + j) % partitions), Value: value}
			cl.Produce(pctx, rec, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
				}
			})
		}
		if err := cl.Flush(pctx); err != nil {
			return 0, err
		}
		if firstErr != nil {
			return 0, firstErr
		}
		abort := txn%catchUpAbortEvery == catchUpAbortEvery-1
		if err := cl.EndTransaction(pctx, kgo.TransactionEndTry(!abort)); err != nil {
			return 0, err
		}
		if !abort {
			committed += n
		}
		i += n
	}
	return committed, nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// catchUp reads topic from the start at level until want records arrived
// (every record the level may deliver: the log's end) and returns the
// seconds it took and the records delivered.
func catchUp(ctx context.Context, addr, topic string, level kgo.IsolationLevel, want int) (float64, int, error) {
	from := map[int32]kgo.Offset{}
	for p := range int32(partitions) {
		from[p] = kgo.NewOffset().AtStart()
	}
	cl, err := newClient(addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(level), kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, phaseTimeout)
	defer cancel()
	start := time.Now()
	n := 0
	for n < want {
		fs := cl.PollFetches(pctx)
		if pctx.Err() != nil {
			return 0, n, fmt.Errorf("%d of %d records after %v", n, want, phaseTimeout)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = cmpOr(ferr, err) })
		if ferr != nil {
			return 0, n, ferr
		}
		n += fs.NumRecords()
	}
	return time.Since(start).Seconds(), n, nil
}

func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

func printTable(results []Result) {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return strconv.FormatFloat(a/b, 'f', 2, 64)
	}
	fmt.Println()
	for _, r := range results {
		if r.Error != "" {
			fmt.Printf("%s: failed: %s\n", r.Backend, r.Error)
			continue
		}
		fmt.Printf("backend %s: %d records of %d B, %d partitions\n", r.Backend, r.Records, r.Size, partitions)
		fmt.Printf("  %-44s %12s %12s %8s\n", "", "transactional", "idempotent", "ratio")
		fmt.Printf("  %-44s %12s %12s %8s\n", "produce records/s", f(r.TxnRecordsPerSec), f(r.IdempotentRecordsPerSec), ratio(r.TxnRecordsPerSec, r.IdempotentRecordsPerSec))
		fmt.Printf("  %-44s %12s %12s %8s\n", "ack latency p50 ms", f(r.TxnAckP50Ms), f(r.IdempotentAckP50Ms), ratio(r.TxnAckP50Ms, r.IdempotentAckP50Ms))
		fmt.Printf("  %-44s %12s %12s %8s\n", "ack latency p99 ms", f(r.TxnAckP99Ms), f(r.IdempotentAckP99Ms), ratio(r.TxnAckP99Ms, r.IdempotentAckP99Ms))
		fmt.Printf("  %-44s %12s %12s %8s\n", "visible (commit / ack) p99 ms", f(r.TxnCommitP99Ms), f(r.IdempotentAckP99Ms), ratio(r.TxnCommitP99Ms, r.IdempotentAckP99Ms))
		fmt.Printf("  (%d transactions of %v)\n", r.Transactions, txnDuration)
		fmt.Printf("  %-44s %12s %12s %8s\n", "", "committed", "uncommitted", "ratio")
		fmt.Printf("  %-44s %12s %12s %8s\n", "catch-up seconds", strconv.FormatFloat(r.ReadCommittedSec, 'f', 3, 64),
			strconv.FormatFloat(r.ReadUncommittedSec, 'f', 3, 64), ratio(r.ReadCommittedSec, r.ReadUncommittedSec))
		fmt.Printf("  %-44s %12s %12s %8s\n", "catch-up log records/s", f(float64(r.CatchUpLogRecords)/r.ReadCommittedSec),
			f(float64(r.CatchUpLogRecords)/r.ReadUncommittedSec), ratio(r.ReadUncommittedSec, r.ReadCommittedSec))
		fmt.Printf("  %-44s %12d %12d\n", "records delivered", r.ReadCommittedDelivered, r.ReadUncommittedDelivered)
	}
}
