package harness

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHogsStartAndStop: the busy loops run as separate processes and are
// gone (killed by PID and reaped) after stop.
func TestHogsStartAndStop(t *testing.T) {
	h, err := startHogs(2)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, c := range h.procs {
		pids = append(pids, c.Process.Pid)
	}
	if len(pids) != 2 {
		h.stop()
		t.Fatalf("%d hogs started, want 2", len(pids))
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err != nil {
			h.stop()
			t.Fatalf("hog %d not running: %v", pid, err)
		}
	}
	h.stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("hog %d still there after stop: %v", pid, err)
		}
	}
}

// TestTinyTraceRepeat runs two scenarios twice in tiny mode with
// ringbrokerd's request trace on: every ringbrokerd Produce run carries a
// trace of its own requests, ratios pair runs of the same repeat, and the
// goal table names every goal.
func TestTinyTraceRepeat(t *testing.T) {
	if os.Getenv("RINGBROKERD") == "-" {
		t.Skip("RINGBROKERD=- leaves ringbrokerd out")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var table, log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Execute(ctx, Options{
		Mode:        ModeTiny,
		OutDir:      t.TempDir(),
		Ringbrokerd: os.Getenv("RINGBROKERD"),
		NullBroker:  []string{"env", "RINGBENCH_CHILD=nullbroker", self, "-test.run=^$", "{port}"},
		Scenarios:   []string{"p100-1p", "e2e-20mb"},
		SkipProbe:   true,
		Repeat:      2,
		Trace:       true,
		Out:         &table,
		Log:         &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("\n%s", table.String())
	traced := 0
	for _, r := range res.Runs {
		if !strings.HasPrefix(r.Target, "ringbroker-") || !r.OK() {
			continue
		}
		if r.Trace == nil || r.Trace.Produce.Requests == 0 {
			t.Errorf("%s on %s (repeat %d): no traced requests\n%s", r.Scenario, r.Target, r.Repeat, log.String())
			continue
		}
		traced++
		if r.Trace.Produce.Total.MaxUs <= 0 || len(r.Trace.Produce.Slowest) == 0 {
			t.Errorf("%s on %s: trace without totals or slow timelines: %+v", r.Scenario, r.Target, r.Trace.Produce.Total)
		}
		if r.Scenario == "e2e-20mb" && r.Trace.Fetch.Requests == 0 {
			t.Errorf("e2e-20mb on %s: no Fetch traced", r.Target)
		}
	}
	if traced < 4 {
		t.Errorf("%d traced ringbrokerd runs, want at least 4 (2 scenarios x 2 repeats on io_uring alone)\n%s", traced, log.String())
	}
	ids := map[string]bool{}
	for _, g := range res.Goals {
		ids[g.ID] = true
	}
	for _, id := range []string{"1a", "1b", "1c", "1d", "2a", "2b", "3a", "3b", "4", "5"} {
		if !ids[id] {
			t.Errorf("goal %s missing from %+v", id, res.Goals)
		}
	}
	if !strings.Contains(table.String(), "issue 20 goals") || !strings.Contains(table.String(), "request trace") {
		t.Errorf("table lacks the goal table or the trace section:\n%s", table.String())
	}
}

func TestParseVariants(t *testing.T) {
	v, err := ParseVariants("uring-1ring=uring:ring.count=1; pin=uring:ring.cpu.affinity=true,ring.count=2;")
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 2 || v[0].Name != "uring-1ring" || v[0].Backend != "uring" || len(v[0].Sets) != 1 || v[0].Sets[0] != "ring.count=1" ||
		v[1].Name != "pin" || len(v[1].Sets) != 2 {
		t.Fatalf("parsed %+v", v)
	}
	for _, bad := range []string{"x", "x=tcp:a=b", "x=uring:novalue", "=uring:a=b"} {
		if _, err := ParseVariants(bad); err == nil {
			t.Errorf("ParseVariants(%q) accepted", bad)
		}
	}
}
