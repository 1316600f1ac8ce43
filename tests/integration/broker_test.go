//go:build linux

// Package integration holds black-box tests of ringbrokerd: the real daemon binary,
// started as a child process on a loopback port, driven by real Kafka clients (kcat,
// franz-go, kafka-python, KafkaJS) and by raw sockets, on both I/O backends.
//
// The daemon's life cycle runs through internal/daemontest (shared with tests/crash,
// bench/harness and cmd/ringbrokerd): TestMain builds the binary once, startBroker
// starts one daemon per test with its own port, data dir and captured output, and
// its cleanup demands a clean SIGTERM exit (status 0) within stopTimeout, so every
// test also checks graceful shutdown.
//
// Nothing here runs in parallel: the latency and memory assertions in the
// backpressure test only mean something when the two cores are not shared with
// another broker.
//
// Clients come from scripts/install-test-deps.sh; a missing client is a failure,
// never a skip, because `make test` is the place that proves compatibility.
//
// Environment:
//
//	RINGBROKER_IT_BUILDFLAGS  extra `go build` flags for the daemon under test ("-race")
//	RINGBROKER_IT_DAEMON      test this prebuilt binary instead of building one
package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

const (
	// startTimeout bounds how long a daemon may take to accept connections and
	// answer its first ApiVersions request. Both are fail-safes against a hang,
	// not speed requirements: on a loaded machine a start or a drain of 10 s
	// (the daemon's own drain grace) plus the log flush is normal.
	startTimeout = 60 * time.Second
	// stopTimeout bounds how long a daemon may take to drain and exit after SIGTERM.
	stopTimeout = 60 * time.Second
	// logCaptureBytesMax caps the captured daemon output so a log-per-request bug
	// under the backpressure test cannot eat the test process's memory.
	logCaptureBytesMax = 16 << 20
	installHint        = "run scripts/install-test-deps.sh"
)

var (
	// repoRoot is the module root (the directory of go.mod), set by TestMain.
	repoRoot string
	// daemonPath is the ringbrokerd binary TestMain built for this run.
	daemonPath string
)

// backends are the io.backend values every test runs under.
var backends = []string{"uring", "portable"}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := daemontest.ModuleRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: cannot find the module root: %v\n", err)
		return 1
	}
	repoRoot = root
	// RINGBROKER_IT_DAEMON runs the suite against a prebuilt binary instead (a release
	// build, or one built with other flags) and skips the build;
	// RINGBROKER_IT_BUILDFLAGS builds the daemon under test with e.g. "-race" or
	// "-tags invariants" without editing this file.
	path, prebuilt, cleanup, err := daemontest.Binary("RINGBROKER_IT_DAEMON", "RINGBROKER_IT_BUILDFLAGS")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	defer cleanup()
	daemonPath = path
	if prebuilt {
		fmt.Fprintf(os.Stderr, "integration: testing prebuilt daemon %s\n", path)
	}
	return m.Run()
}

// forEachBackend runs fn as one subtest per I/O backend ("uring", "portable").
func forEachBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	t.Helper()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { fn(t, backend) })
	}
}

// requireTool fails the test when an external client is not installed.
func requireTool(t *testing.T, path string) string {
	t.Helper()
	if strings.ContainsRune(path, '/') {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%s not found (%v): %s", path, err, installHint)
		}
		return path
	}
	p, err := exec.LookPath(path)
	if err != nil {
		t.Fatalf("%s not on PATH: %s", path, installHint)
	}
	return p
}

// Broker is one running ringbrokerd child process: a daemontest.Daemon (Addr,
// Port, PID, output, RSS, exit) with the test's view of it.
type Broker struct {
	*daemontest.Daemon
	// Dir is the daemon's log.dirs directory (reused across restarts by passing
	// props["log.dirs"]).
	Dir string
	// Backend is the io.backend value the daemon was started with.
	Backend string

	stopped bool
}

// startBroker starts ringbrokerd on a free loopback port with a fresh data dir (unless
// props sets log.dirs) and the given extra server.properties keys, waits until it
// answers ApiVersions, and registers a cleanup that stops it with SIGTERM and asserts
// exit status 0.
func startBroker(t *testing.T, backend string, props map[string]string) *Broker {
	t.Helper()
	b, err := startBrokerOn(t, backend, props, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startBrokerOn is startBroker on the given port (0: a free one) that returns its
// failure instead of ending the test, so a goroutine other than the test's may
// call it: a restart on the same address while clients keep running
// (eos_crash_test.go). The cleanup is registered as soon as the process started.
func startBrokerOn(t *testing.T, backend string, props map[string]string, port int) (*Broker, error) {
	t.Helper()
	dir := props["log.dirs"]
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "data")
	}
	conf := map[string]string{
		"listeners":  "PLAINTEXT://127.0.0.1:{port}",
		"log.dirs":   dir,
		"io.backend": backend,
		// Tests run brokers side by side: no fixed metrics port (a test
		// that scrapes /metrics sets metrics.listener to a free port).
		"metrics.listener": "",
		// An empty group's first rebalance after 300 ms, not Kafka's 3 s
		// (gcBrokerProps): every test whose client joins a group (the
		// transactional clients' read_committed consumers, Sarama's and
		// KafkaJS's group consumers) waited out the 3 s once per group.
		"group.initial.rebalance.delay.ms": gcBrokerProps["group.initial.rebalance.delay.ms"],
	}
	// RINGBROKER_IT_SET=key=value,... runs the suite with extra settings
	// (e.g. append.inline=true); a test's own props win.
	for _, kv := range strings.Split(os.Getenv("RINGBROKER_IT_SET"), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			conf[k] = v
		}
	}
	for k, v := range props {
		conf[k] = v
	}
	var waitFree []string // a restart on a known port: the old listener must be gone
	if port != 0 {
		waitFree = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	}
	d, err := daemontest.Start(daemontest.Options{
		Argv:     []string{daemonPath},
		Port:     port,
		WaitFree: waitFree,
		Config:   conf, ConfigPath: filepath.Join(t.TempDir(), "server.properties"), ConfigHeader: "written by tests/integration",
		Dir:            t.TempDir(),
		OutputBytesMax: logCaptureBytesMax,
	})
	if err != nil {
		return nil, err
	}
	b := &Broker{Daemon: d, Dir: dir, Backend: backend}
	t.Cleanup(func() {
		b.Stop(t)
		if t.Failed() {
			t.Logf("ringbrokerd (%s, pid %d, %s) output:\n%s", backend, b.PID, b.Addr, b.Logs())
		}
	})

	if err := b.WaitReady(startTimeout, func(addr string) error { return probeApiVersions(addr, time.Second) }); err != nil {
		return nil, fmt.Errorf("ringbrokerd (%s) not ready on %s within %v: %v\nconfig:\n%s", backend, b.Addr, startTimeout, err, d.Config)
	}
	return b, nil
}

// Stop sends SIGTERM and asserts the daemon exits with status 0 within stopTimeout;
// SIGKILL (by PID) only if it does not. Safe to call more than once.
func (b *Broker) Stop(t *testing.T) {
	t.Helper()
	if b.stopped {
		return
	}
	b.stopped = true
	if _, err := b.Daemon.Stop(stopTimeout); err != nil {
		t.Errorf("ringbrokerd (%s): %v", b.Backend, err)
	}
}

// Kill SIGKILLs the daemon (by PID) and waits until it is reaped: no shutdown path
// runs, as in a crash. The cleanup then has nothing left to stop.
func (b *Broker) Kill(t *testing.T) {
	t.Helper()
	b.stopped = true
	if err := b.Daemon.Kill(stopTimeout); err != nil {
		t.Fatalf("ringbrokerd (%s) did not die from SIGKILL: %v", b.Backend, err)
	}
}

// freePort returns a loopback TCP port that was free a moment ago. The daemon binds
// it right after; a collision shows up as a start failure with the daemon's log.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := daemontest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// runClient runs an external client with a deadline and returns its stdout; on
// failure the error carries stderr.
func runClient(t *testing.T, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v in %v", filepath.Base(name), strings.Join(args, " "), errOrOK(err), time.Since(start).Round(time.Millisecond))
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %v: %w", timeout, err)
		}
		return stdout.String(), fmt.Errorf("%w\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
