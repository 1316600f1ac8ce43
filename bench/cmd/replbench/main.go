// Command replbench runs the replication benchmark (make bench-replication,
// issue 16): on a three-node loopback cluster per backend, RF 3 acks=all
// beside RF 1 acks=all (100 B and 16 KiB records), a restarted follower's
// catch-up beside a consumer reading the same data from the leader, and the
// failover time after SIGKILLs of a partition leader. One table, with every
// ratio's two sides, and replication.json.
//
// Environment (flags win):
//
//	BENCH=quick|full|tiny   mode (default quick)
//	BENCH_OUT=DIR           output directory (default bench-results)
//	RINGBROKERD=PATH        prebuilt ringbrokerd (default: go build ./cmd/ringbrokerd)
//	BENCH_BACKENDS=a,b      io.backend values, one cluster each (default uring,portable)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ringbroker/ringbroker/bench/harness"
)

func main() {
	mode := flag.String("mode", harness.EnvOr("BENCH", harness.ModeQuick), "tiny, quick or full")
	out := flag.String("out", harness.EnvOr("BENCH_OUT", "bench-results"), "directory for replication.json")
	bin := flag.String("ringbrokerd", os.Getenv("RINGBROKERD"), "ringbrokerd binary (default: go build ./cmd/ringbrokerd)")
	backends := flag.String("backends", harness.EnvOr("BENCH_BACKENDS", "uring,portable"), "io.backend values, one cluster each")
	var sets setFlags
	flag.Var(&sets, "set", "key=value server.properties override on every node (repeatable)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	_, err := harness.ExecuteReplication(ctx, harness.ReplOptions{
		Mode:        *mode,
		OutDir:      *out,
		Ringbrokerd: *bin,
		Backends:    harness.SplitList(*backends),
		NodeConfig:  sets.m,
		Out:         os.Stdout,
		Log:         os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "replbench:", err)
		os.Exit(1)
	}
	fmt.Printf("\nresults: %s/replication.json\n", *out)
}

// setFlags collects repeated -set key=value flags.
type setFlags struct{ m map[string]string }

func (s *setFlags) String() string { return fmt.Sprint(s.m) }

func (s *setFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("-set %q: want key=value", v)
	}
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[k] = val
	return nil
}
