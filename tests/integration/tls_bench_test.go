//go:build linux && tlsbench

package integration

// An opt-in measurement (build tag tlsbench: go test -tags tlsbench
// ./tests/integration -run TestTLSThroughput; make bench runs it after the
// harness), one run: produce and catch-up throughput over PLAINTEXT, SSL
// and SASL_SSL (SCRAM-SHA-512) on both backends, as ratios against
// PLAINTEXT in the same broker, and a table of the ratios at the end; each
// run's line also gives the broker's CPU seconds per GiB moved
// (/proc/PID/stat), steadier than throughput on a loaded machine. On
// io_uring it runs twice: TLS 1.3 on the loops ("uring") and on a reader
// and a writer goroutine per connection ("uring-gor",
// ring.ssl.loop.enable=false), so one run compares the two designs.
// RINGBROKER_TLSBENCH_RECORDS sets the records per run (300,000; make
// bench's quick mode takes 100,000). The client runs in the test process
// (it competes with the broker for the two cores), so only the ratios of
// one run mean something.

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func TestTLSThroughput(t *testing.T) {
	const valueBytes = 1000
	records := 300_000
	if v := os.Getenv("RINGBROKER_TLSBENCH_RECORDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 || n > 10_000_000 {
			t.Fatalf("RINGBROKER_TLSBENCH_RECORDS=%q: want 1000 to 10000000", v)
		}
		records = n
	}
	var mu sync.Mutex
	var table []string
	defer func() {
		if !t.Failed() {
			t.Logf("TLS vs PLAINTEXT, %d records of %d bytes (ratio of MiB/s to PLAINTEXT's on the same broker):\n%-9s %-9s %8s %9s\n%s",
				records, valueBytes, "backend", "protocol", "produce", "catch-up", strings.Join(table, "\n"))
		}
	}()
	value := make([]byte, valueBytes)
	if _, err := rand.Read(value); err != nil { // incompressible: the bytes cross the wire
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		variants := []bool{false}
		if backend == "uring" {
			variants = []bool{true, false} // TLS 1.3 on the loops, then on goroutines
		}
		for _, onLoops := range variants {
			label := backend
			if backend == "uring" && !onLoops {
				label = "uring-gor"
			}
			t.Run(label, func(t *testing.T) { tlsThroughputRun(t, backend, label, onLoops, records, value, &mu, &table) })
		}
	})
}

// cpuPerGiB is broker CPU seconds per GiB moved (clock ticks over bytes):
// under a loaded machine a steadier figure than throughput.
func cpuPerGiB(ticks int64, bytes int) float64 {
	return float64(ticks) / clockTicksPerSecond / (float64(bytes) / (1 << 30))
}

// tlsThroughputRun measures one broker: PLAINTEXT, SSL and SASL_SSL
// (ring.ssl.loop.enable=onLoops), one row of the table for each TLS run.
func tlsThroughputRun(t *testing.T, backend, label string, onLoops bool, records int, value []byte, mu *sync.Mutex, table *[]string) {
	const valueBytes = 1000
	f := newTLSFixture(t)
	props := f.props(filepath.Join(t.TempDir(), "data"))
	props["ring.ssl.loop.enable"] = strconv.FormatBool(onLoops)
	b := startBroker(t, backend, props)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "bob-secret"}}); err != nil || res["bob"].Err != nil {
		t.Fatalf("AlterUserSCRAMs: %v %+v", err, res)
	}
	if r, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:bob").AllowHosts("*").Topics("bench-").ResourcePatternType(kadm.ACLPatternPrefixed).
		Operations(kadm.OpAll)); err != nil || r[0].Err != nil {
		t.Fatalf("CreateACLs: %v %+v", err, r)
	}
	runs := []struct {
		name string
		opts []kgo.Opt
	}{
		{"warm-up", []kgo.Opt{kgo.SeedBrokers(b.Addr)}}, // not reported
		{"PLAINTEXT", []kgo.Opt{kgo.SeedBrokers(b.Addr)}},
		{"SSL", []kgo.Opt{kgo.SeedBrokers(f.sslAddr), kgo.DialTLSConfig(f.clientTLS(t, nil))}},
		{"SASL_SSL", []kgo.Opt{kgo.SeedBrokers(f.saslSSLAddr), kgo.DialTLSConfig(f.clientTLS(t, nil)), kgo.SASL(scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism())}},
	}
	var base [2]float64
	for i, r := range runs {
		topic := "bench-" + r.name
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(append(r.opts, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		if err != nil {
			t.Fatal(err)
		}
		start, ticks := time.Now(), cpuTicks(t, b.PID)
		errs := make(chan error, 1)
		for n := 0; n < records; n++ {
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			t.Fatalf("%s produce: %v", r.name, err)
		default:
		}
		produce := float64(records*valueBytes) / time.Since(start).Seconds() / (1 << 20)
		produceCPU := cpuPerGiB(cpuTicks(t, b.PID)-ticks, records*valueBytes)
		cl.Close()
		cl, err = kgo.NewClient(append(r.opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxBytes(16<<20))...)
		if err != nil {
			t.Fatal(err)
		}
		start, ticks = time.Now(), cpuTicks(t, b.PID)
		got := 0
		for got < records {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%s catch-up: %d of %d", r.name, got, records)
			}
			got += fs.NumRecords()
		}
		catchup := float64(records*valueBytes) / time.Since(start).Seconds() / (1 << 20)
		catchupCPU := cpuPerGiB(cpuTicks(t, b.PID)-ticks, records*valueBytes)
		cl.Close()
		switch i {
		case 0:
			continue
		case 1:
			base = [2]float64{produce, catchup}
		}
		t.Logf("%s %s: produce %.0f MiB/s (%.2fx PLAINTEXT), broker CPU %.2f s/GiB; catch-up %.0f MiB/s (%.2fx PLAINTEXT), broker CPU %.2f s/GiB",
			label, r.name, produce, produce/base[0], produceCPU, catchup, catchup/base[1], catchupCPU)
		mu.Lock()
		*table = append(*table, fmt.Sprintf("%-9s %-9s %7.2fx %8.2fx", label, r.name, produce/base[0], catchup/base[1]))
		mu.Unlock()
	}
}
