// Command benchharness runs the side-by-side benchmark (make bench,
// scripts/bench.sh): ringbrokerd on each backend, the null broker and any
// PEERS, the issue 7 scenarios, one table, results.json and PNG plots.
//
// Environment (flags win):
//
//	BENCH=quick|full|tiny   mode (default quick, under 3 minutes)
//	PEERS=name=host:port,…  external brokers to measure beside ours
//	BENCH_OUT=DIR           output directory (default bench-results)
//	RINGBROKERD=PATH        prebuilt ringbrokerd ("-": leave it out)
//	BENCH_SCENARIOS=a,b     scenario ids to run (default all)
//	BENCH_REPEAT=N          run every scenario N times, targets interleaved (default 1)
//	HOGS=N                  N CPU busy loops beside the measured runs (default 0)
//	BENCH_TRACE=1           ringbrokerd's per-request trace, collected per run
//	BENCH_VARIANTS=name=uring:key=value,...;...  extra ringbrokerd targets with their own settings
//	KAFKA_JAVA_BIN=DIR      Apache Kafka 3.9's bin dir: run kafka-producer-perf-test.sh at
//	                        50,000 records/s against ringbrokerd and an in-memory kfake peer
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/ringbroker/ringbroker/bench/harness"
)

func main() {
	harness.RunHogIfChild() // a HOGS busy loop is this binary re-executed
	mode := flag.String("mode", harness.EnvOr("BENCH", harness.ModeQuick), "tiny, quick or full")
	out := flag.String("out", harness.EnvOr("BENCH_OUT", "bench-results"), "directory for results.json and plots")
	peers := flag.String("peers", os.Getenv("PEERS"), "external brokers: name=host:port,...")
	bin := flag.String("ringbrokerd", os.Getenv("RINGBROKERD"), "ringbrokerd binary (default: go build ./cmd/ringbrokerd; - to skip)")
	backends := flag.String("backends", "uring,portable", "ringbrokerd io.backend values to start")
	only := flag.String("scenarios", os.Getenv("BENCH_SCENARIOS"), "comma-separated scenario ids (default all)")
	noProbe := flag.Bool("no-probe", false, "skip the machine probe")
	repeat := flag.Int("repeat", envInt("BENCH_REPEAT", 1), "runs of every scenario, targets interleaved")
	hogs := flag.Int("hogs", envInt("HOGS", 0), "CPU busy loops beside the measured runs")
	trace := flag.Bool("trace", os.Getenv("BENCH_TRACE") == "1", "collect ringbrokerd's per-request trace per run")
	javaBin := flag.String("java-bin", os.Getenv("KAFKA_JAVA_BIN"), "Apache Kafka bin directory for the java-50k scenario (empty: not run)")
	flag.Parse()

	ps, err := harness.ParsePeers(*peers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchharness:", err)
		os.Exit(2)
	}
	variants, err := harness.ParseVariants(os.Getenv("BENCH_VARIANTS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchharness:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	_, err = harness.Execute(ctx, harness.Options{
		Mode:        *mode,
		OutDir:      *out,
		Ringbrokerd: *bin,
		Backends:    harness.SplitList(*backends),
		Peers:       ps,
		Scenarios:   harness.SplitList(*only),
		SkipProbe:   *noProbe,
		Repeat:      *repeat,
		Hogs:        *hogs,
		Trace:       *trace,
		JavaBin:     *javaBin,
		Variants:    variants,
		Out:         os.Stdout,
		Progress:    harness.ProgressWriter(os.Stderr),
		Log:         os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchharness:", err)
		os.Exit(1)
	}
	fmt.Printf("\nresults: %s/results.json\n", *out)
}

// envInt is the integer in environment variable key, def when unset; a
// value that is not a number stops the command.
func envInt(key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		fmt.Fprintf(os.Stderr, "benchharness: %s=%q: want a number >= 0\n", key, v)
		os.Exit(2)
	}
	return n
}
