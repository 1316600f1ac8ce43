package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/bench/nullbroker"
	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// TestMain lets the test binary double as the null broker process the
// harness starts (RINGBENCH_CHILD=nullbroker), so the test needs no build.
func TestMain(m *testing.M) {
	RunHogIfChild() // TestHogsStartAndStop's busy loops
	if os.Getenv("RINGBENCH_CHILD") == "nullbroker" {
		s, err := nullbroker.Listen(nullbroker.Options{Addr: "127.0.0.1:" + os.Args[len(os.Args)-1]})
		if err != nil {
			os.Exit(1)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		s.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestTinyMode runs the whole harness in tiny mode: the null broker must
// measure every produce scenario; ringbrokerd (built from this tree unless
// RINGBROKERD points at a binary, or "-" to leave it out) must either
// measure or report "unsupported (error: ...)" — never crash the harness.
func TestTinyMode(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A peer exercises the PEERS path: an in-process null broker the
	// harness only connects to and must not stop.
	peer, err := nullbroker.Listen(nullbroker.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	out := t.TempDir()
	var table, log bytes.Buffer
	// A fail-safe against a hang: the tiny scenarios are bounded in records
	// and seconds themselves; 50 s ran out under two CPU hogs.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Execute(ctx, Options{
		Mode:        ModeTiny,
		OutDir:      out,
		Ringbrokerd: os.Getenv("RINGBROKERD"),
		NullBroker:  []string{"env", "RINGBENCH_CHILD=nullbroker", self, "-test.run=^$", "{port}"},
		Peers:       []Peer{{Name: "peer", Addr: peer.Addr()}, {Name: "gone", Addr: "127.0.0.1:1"}},
		Scenarios:   []string{"p100-1p", "p100-8p", "automq-64k", "catchup", "e2e-20mb", "txn-100ms", "catchup-txn-rc", "catchup-txn-ru"},
		Out:         &table,
		Log:         &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("\n%s", table.String())

	byKey := map[string]Run{}
	for _, r := range res.Runs {
		byKey[r.Scenario+"/"+r.Target] = r
		if !r.OK() && !strings.HasPrefix(r.Status, "unsupported (error: ") {
			t.Errorf("%s on %s: status %q", r.Scenario, r.Target, r.Status)
		}
	}
	for _, sc := range []string{"p100-1p", "p100-8p", "automq-64k"} {
		r := byKey[sc+"/"+TargetNull]
		if !r.OK() || r.RecordsPerSec <= 0 || r.P50Ms <= 0 || r.RatioNull != 1 {
			t.Errorf("null broker %s: %+v", sc, r)
		}
	}
	if r := byKey["p100-1p/peer"]; !r.OK() || r.RatioNull <= 0 {
		t.Errorf("peer: %+v", r)
	}
	if r := byKey["p100-1p/gone"]; !strings.Contains(r.Status, "unreachable") {
		t.Errorf("unreachable peer: %+v", r)
	}
	if err := daemontest.ProbeApiVersions(peer.Addr(), time.Second); err != nil {
		t.Errorf("harness stopped a peer it did not start: %v", err)
	}
	// The null broker serves catch-up from memory: the consumer reads every
	// preloaded record at its size (runOne fails a run that read other
	// bytes), so goal 5 has its ceiling.
	if r := byKey["catchup/"+TargetNull]; !r.OK() || r.Consume == nil || r.Consume.Records*16<<10 != r.Consume.Bytes || r.Note != "" || r.RatioNull != 1 {
		t.Errorf("null broker catch-up: %+v", r)
	}
	if r := byKey["e2e-20mb/"+TargetNull]; r.OK() {
		t.Errorf("null broker cannot measure e2e, got %+v", r)
	}
	if os.Getenv("RINGBROKERD") != "-" {
		for _, g := range res.Goals {
			if g.ID == "5" && (g.Status == "n/a" || len(g.Values) != 1) {
				t.Errorf("goal 5 not measured: %+v", g)
			}
		}
	}
	// Transactions (issue 18): the transactional produce and both
	// isolation levels' catch-up run on ringbrokerd and read everything.
	if os.Getenv("RINGBROKERD") != "-" {
		for _, sc := range []string{"txn-100ms", "catchup-txn-rc", "catchup-txn-ru"} {
			if r := byKey[sc+"/"+TargetRingbrokerUring]; !r.OK() || r.RecordsPerSec <= 0 || r.Note != "" {
				t.Errorf("%s on ringbrokerd: %+v", sc, r)
			}
		}
	}
	if r := byKey["p100-1p/"+TargetRingbrokerUring]; r.OK() && r.RatioUring != 1 {
		t.Errorf("uring ratio to itself = %v", r.RatioUring)
	}

	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b, &back); err != nil || len(back.Runs) != len(res.Runs) {
		t.Fatalf("results.json: %v (%d runs)", err, len(back.Runs))
	}
	if res.Probe == nil || res.Probe.LoopbackGBps <= 0 {
		t.Errorf("probe: %+v", res.Probe)
	}
	if len(res.Plots) == 0 {
		t.Error("no plots written")
	}
	for _, p := range res.Plots {
		if st, err := os.Stat(filepath.Join(out, p)); err != nil || st.Size() == 0 {
			t.Errorf("plot %s: %v", p, err)
		}
	}
	for _, want := range []string{"records/s", "×uring", "×null", "machine probe", "p100-1p"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

func TestParsePeers(t *testing.T) {
	ps, err := ParsePeers("kafka=127.0.0.1:9092, redpanda=127.0.0.1:19092")
	if err != nil || len(ps) != 2 || ps[1].Name != "redpanda" || ps[1].Addr != "127.0.0.1:19092" {
		t.Fatalf("%v %v", ps, err)
	}
	if _, err := ParsePeers("nope"); err == nil {
		t.Fatal("bad entry accepted")
	}
}

func TestScenarioModes(t *testing.T) {
	for _, m := range []string{ModeTiny, ModeQuick, ModeFull} {
		scs, err := scenarios(m)
		if err != nil || len(scs) != 9 {
			t.Fatalf("%s: %v", m, err)
		}
		for _, sc := range scs {
			if sc.seconds <= 0 || (sc.kind != kindE2E && sc.records <= 0) {
				t.Errorf("%s/%s unbounded: %+v", m, sc.id, sc)
			}
		}
	}
	if _, err := scenarios("huge"); err == nil {
		t.Fatal("unknown mode accepted")
	}
}
