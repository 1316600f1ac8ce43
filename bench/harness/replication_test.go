package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReplicationTinyMode runs the replication benchmark in tiny mode on
// the io_uring backend (a three-node cluster, every scenario with the
// smallest bounds, one failover), so that make bench-replication cannot
// rot: every run must measure, the table must spell out both sides of
// each ratio, and replication.json must hold what was printed. ringbrokerd
// is built from this tree unless RINGBROKERD points at a binary.
func TestReplicationTinyMode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	bin := os.Getenv("RINGBROKERD")
	if bin == "-" {
		t.Skip("RINGBROKERD=- leaves ringbrokerd out")
	}
	out := t.TempDir()
	var table, log bytes.Buffer
	// A fail-safe against a hang; the scenarios bound themselves (about
	// 15 s on an idle 2-CPU machine).
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := ExecuteReplication(ctx, ReplOptions{
		Mode: ModeTiny, OutDir: out, WorkDir: t.TempDir(), Ringbrokerd: bin,
		Backends: []string{"uring"}, Out: &table, Log: &log,
	})
	t.Logf("log:\n%s\ntable:\n%s", log.String(), table.String())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"produce-100B", "produce-100B", "produce-16KiB", "produce-16KiB", "catchup-16KiB", "catchup-16KiB", "failover"}
	if len(res.Runs) != len(want) {
		t.Fatalf("%d runs, want %d (%v)", len(res.Runs), len(want), want)
	}
	for i, r := range res.Runs {
		if r.Scenario != want[i] {
			t.Errorf("run %d is %s, want %s", i, r.Scenario, want[i])
		}
		if !r.OK() {
			t.Errorf("%s %s: %s", r.Scenario, r.Side, r.Status)
		}
	}
	if t.Failed() {
		return
	}
	for _, i := range []int{0, 2, 4} {
		if res.Runs[i].Ratio <= 0 || res.Runs[i].RecordsPerSec <= 0 || res.Runs[i+1].RecordsPerSec <= 0 {
			t.Errorf("%s: ratio %v of %v and %v records/s", res.Runs[i].Scenario, res.Runs[i].Ratio, res.Runs[i].RecordsPerSec, res.Runs[i+1].RecordsPerSec)
		}
	}
	if fo := res.Runs[6]; len(fo.Failover) != 1 || fo.P50Ms <= 0 {
		t.Errorf("failover: %d kills, p50 %v ms", len(fo.Failover), fo.P50Ms)
	}
	for _, s := range []string{"RF3 acks=all", "vs RF1 acks=all", "follower (node 3)", "vs consumer (node 1)", "failovers"} {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %q", s)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "replication.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back ReplResults
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != len(res.Runs) || back.Runs[0].RecordsPerSec != res.Runs[0].RecordsPerSec {
		t.Errorf("replication.json does not hold the printed runs")
	}
}
