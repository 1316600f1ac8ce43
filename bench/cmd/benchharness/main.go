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
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringbroker/ringbroker/bench/harness"
)

func main() {
	mode := flag.String("mode", harness.EnvOr("BENCH", harness.ModeQuick), "tiny, quick or full")
	out := flag.String("out", harness.EnvOr("BENCH_OUT", "bench-results"), "directory for results.json and plots")
	peers := flag.String("peers", os.Getenv("PEERS"), "external brokers: name=host:port,...")
	bin := flag.String("ringbrokerd", os.Getenv("RINGBROKERD"), "ringbrokerd binary (default: go build ./cmd/ringbrokerd; - to skip)")
	backends := flag.String("backends", "uring,portable", "ringbrokerd io.backend values to start")
	only := flag.String("scenarios", os.Getenv("BENCH_SCENARIOS"), "comma-separated scenario ids (default all)")
	noProbe := flag.Bool("no-probe", false, "skip the machine probe")
	flag.Parse()

	ps, err := harness.ParsePeers(*peers)
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
