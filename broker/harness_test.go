package broker

import (
	"context"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/internal/clock"
	"github.com/ringbroker/ringbroker/netpoll"
)

// testBackends are the netpoll backends every network test runs on.
var testBackends = []string{netpoll.BackendUring, netpoll.BackendPortable}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, backend string)) {
	for _, b := range testBackends {
		t.Run(b, func(t *testing.T) { f(t, b) })
	}
}

// testBroker is a broker served over real loopback sockets in-process.
type testBroker struct {
	t       *testing.T
	Addr    string
	Addrs   []string // every listener, in Options.Security.Listeners order
	Broker  *Broker
	Reg     *Registry
	Server  *netpoll.Server
	dir     string
	backend string
	mod     func(*Options, *RegistryOptions)
	// onNew, if set, adjusts each new Broker before it serves its first
	// request (the datadriven runner steps the fetch session clock): what
	// it writes happens before every handler's read of it.
	onNew func(*Broker)
	// clients are the franz-go clients made by client since the last
	// (re)start: restart closes them, as they are seeded with the old
	// port, and a Fetch one of them has parked would otherwise hold the
	// drain until its max wait (franz-go's default is 5 s).
	clients []*kgo.Client
}

// startTestBroker serves a broker with a fresh data dir on backend. mod may
// adjust the options (nil for defaults). The broker is stopped at cleanup.
func startTestBroker(t *testing.T, backend string, mod func(*Options, *RegistryOptions)) *testBroker {
	t.Helper()
	tb := &testBroker{t: t, dir: t.TempDir(), backend: backend, mod: mod}
	tb.start()
	t.Cleanup(tb.stop)
	return tb
}

func (tb *testBroker) start() {
	t := tb.t
	t.Helper()
	logger := zaptest.NewLogger(t)
	// Tests may create topics with tiny segments (many segments from few
	// records); TestSegmentBytesFloor checks the default floor. The config
	// sets num.partitions as the broker Options below do, so DescribeConfigs
	// reports it as a server.properties setting.
	cfg := config.Default()
	mustSet(t, cfg, "log.segment.bytes.min", "14")
	mustSet(t, cfg, "num.partitions", "1")
	for _, kv := range harnessSettings {
		k, v, _ := strings.Cut(kv, "=")
		mustSet(t, cfg, k, v)
	}
	ropts := RegistryOptions{LogDirs: []string{tb.dir}, Logger: logger, Config: cfg}
	opts := Options{NodeID: 0, AdvertisedHost: "127.0.0.1", DataDir: tb.dir, Logger: logger,
		AutoCreateTopics: true, NumPartitions: 1, MessageMaxBytes: 1048588, FetchZeroCopy: true,
		FetchWakeOnLoop: cfg.FetchWakeOnLoop}
	if tb.mod != nil {
		tb.mod(&opts, &ropts)
	}
	reg, err := OpenRegistry(ropts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Registry = reg
	// The advertised port is only known after binding: bind first with a
	// handler that forwards to the broker once it exists.
	// An atomic pointer, not a plain variable: on io_uring the loop thread
	// learns of the connection through ring memory, which gives the race
	// detector no happens-before edge from New's writes.
	var bp atomic.Pointer[Broker]
	fwd := netpoll.HandlerFunc(func(req netpoll.Request, frame []byte) { bp.Load().ServeFrame(req, frame) })
	listeners := []string{"127.0.0.1:0"}
	if opts.Security != nil {
		for len(listeners) < len(opts.Security.Listeners) {
			listeners = append(listeners, "127.0.0.1:0")
		}
	}
	srv, err := netpoll.Listen(netpoll.Options{Listeners: listeners, Backend: tb.backend, Loops: 2, Handler: fwd,
		Sessions: sessionsFwd{&bp}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	opts.AdvertisedPort = int32(srv.Addrs()[0].(*net.TCPAddr).Port)
	if opts.Security != nil {
		for i := range opts.Security.Listeners {
			l := &opts.Security.Listeners[i]
			l.AdvertisedHost, l.AdvertisedPort = "127.0.0.1", int32(srv.Addrs()[i].(*net.TCPAddr).Port)
		}
	}
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if tb.onNew != nil {
		tb.onNew(b)
	}
	bp.Store(b)
	tb.Broker, tb.Reg, tb.Server = b, reg, srv
	tb.Addr = srv.Addrs()[0].String()
	tb.Addrs = tb.Addrs[:0]
	for _, a := range srv.Addrs() {
		tb.Addrs = append(tb.Addrs, a.String())
	}
}

// sessionsFwd opens sessions with the broker once it exists (as fwd
// forwards frames).
type sessionsFwd struct{ bp *atomic.Pointer[Broker] }

func (f sessionsFwd) OpenSession(listener int, remote net.Addr) netpoll.Session {
	if b := f.bp.Load(); b != nil {
		if s := b.OpenSession(listener, remote); s != nil {
			return s
		}
	}
	return nil
}

func (tb *testBroker) stop() {
	if tb.Server == nil {
		return
	}
	// A manual clock stands still: requests parked on it (a Fetch long
	// poll, a delayed JoinGroup) would hold the drain forever. The clients
	// are closed by now (their cleanups ran first): run the timers out.
	if m, ok := tb.Broker.opts.Clock.(*clock.Manual); ok {
		m.Advance(time.Hour)
	}
	// The drain answers what is in flight; a Fetch parked on the wall
	// clock answers at its max wait (franz-go's default is 5 s), so the
	// bound is well above that, for a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tb.Server.Shutdown(ctx); err != nil {
		tb.t.Errorf("shutdown: %v", err)
	}
	if err := tb.Broker.Close(); err != nil {
		tb.t.Errorf("producer state: %v", err)
	}
	if err := tb.Reg.Close(); err != nil {
		tb.t.Errorf("registry close: %v", err)
	}
	tb.Server = nil
}

// restart stops the broker and starts it again on the same data dir (a new
// port).
func (tb *testBroker) restart() {
	for _, c := range tb.clients {
		c.Close()
	}
	tb.clients = nil
	tb.stop()
	tb.start()
}

// client returns a franz-go client for the broker, closed at cleanup.
func (tb *testBroker) client(opts ...kgo.Opt) *kgo.Client {
	tb.t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tb.Addr)}, opts...)...)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(c.Close)
	tb.clients = append(tb.clients, c)
	return c
}

// admin returns a kadm client for the broker.
func (tb *testBroker) admin() *kadm.Client { return kadm.NewClient(tb.client()) }

// mustSet sets a config key as --set would, failing the test on a bad value.
// harnessSettings are server settings ("key=value") every test broker
// starts with: RINGBROKER_TEST_SET (comma-separated) runs the package with
// them (e.g. RINGBROKER_TEST_SET=append.inline=true), withSettings adds
// some for one test.
var harnessSettings = splitSettings(os.Getenv("RINGBROKER_TEST_SET"))

func splitSettings(s string) []string {
	var out []string
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			out = append(out, kv)
		}
	}
	return out
}

// withSettings adds server settings for the rest of t (the package's
// tests do not run in parallel).
func withSettings(t *testing.T, kv ...string) {
	old := harnessSettings
	harnessSettings = append(append([]string(nil), old...), kv...)
	t.Cleanup(func() { harnessSettings = old })
}

func mustSet(t testing.TB, cfg *config.Config, key, value string) {
	t.Helper()
	if err := cfg.Set(key, value); err != nil {
		t.Fatal(err)
	}
}
