//go:build linux

// Package integration holds black-box tests of ringbrokerd: the real daemon binary,
// started as a child process on a loopback port, driven by real Kafka clients (kcat,
// franz-go, kafka-python, KafkaJS) and by raw sockets, on both I/O backends.
//
// The harness in this file owns the daemon's life cycle: TestMain builds the binary
// once, startBroker starts one daemon per test with its own port, data dir and
// captured output, and its cleanup demands a clean SIGTERM exit (status 0) within
// 10 s, so every test also checks graceful shutdown.
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
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		fmt.Fprintf(os.Stderr, "integration: cannot find the module root (go env GOMOD: %q, %v)\n", out, err)
		return 1
	}
	repoRoot = filepath.Dir(strings.TrimSpace(string(out)))

	// RINGBROKER_IT_DAEMON runs the suite against a prebuilt binary instead (a release
	// build, or one built with other flags) and skips the build.
	if prebuilt := os.Getenv("RINGBROKER_IT_DAEMON"); prebuilt != "" {
		daemonPath = prebuilt
		fmt.Fprintf(os.Stderr, "integration: testing prebuilt daemon %s\n", prebuilt)
		return m.Run()
	}

	binDir, err := os.MkdirTemp("", "ringbrokerd-it-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	daemonPath = filepath.Join(binDir, "ringbrokerd")

	// RINGBROKER_IT_BUILDFLAGS lets a developer build the daemon under test with
	// e.g. "-race" or "-tags invariants" without editing this file.
	args := []string{"build", "-o", daemonPath}
	args = append(args, strings.Fields(os.Getenv("RINGBROKER_IT_BUILDFLAGS"))...)
	args = append(args, "./cmd/ringbrokerd")
	build := exec.Command("go", args...)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go %s failed: %v\n%s\n", strings.Join(args, " "), err, out)
		return 1
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

// Broker is one running ringbrokerd child process.
type Broker struct {
	// Addr is the PLAINTEXT listener, "127.0.0.1:PORT".
	Addr string
	// Port is Addr's port.
	Port int
	// PID is the daemon's process id.
	PID int
	// Dir is the daemon's log.dirs directory (reused across restarts by passing
	// props["log.dirs"]).
	Dir string
	// Backend is the io.backend value the daemon was started with.
	Backend string

	cmd    *exec.Cmd
	output *capBuffer
	exited chan struct{} // closed when cmd.Wait returns
	// waitErr is cmd.Wait's result; written before exited is closed.
	waitErr error
	stopped bool
}

// startBroker starts ringbrokerd on a free loopback port with a fresh data dir (unless
// props sets log.dirs) and the given extra server.properties keys, waits until it
// answers ApiVersions, and registers a cleanup that stops it with SIGTERM and asserts
// exit status 0.
func startBroker(t *testing.T, backend string, props map[string]string) *Broker {
	t.Helper()
	port := freePort(t)
	dir := props["log.dirs"]
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "data")
	}
	b := &Broker{
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port:    port,
		Dir:     dir,
		Backend: backend,
		output:  &capBuffer{max: logCaptureBytesMax},
		exited:  make(chan struct{}),
	}

	conf := map[string]string{
		"listeners":  "PLAINTEXT://" + b.Addr,
		"log.dirs":   dir,
		"io.backend": backend,
		// Tests run brokers side by side: no fixed metrics port (a test
		// that scrapes /metrics sets metrics.listener to a free port).
		"metrics.listener": "",
	}
	for k, v := range props {
		conf[k] = v
	}
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var text strings.Builder
	text.WriteString("# written by tests/integration\n")
	for _, k := range keys {
		fmt.Fprintf(&text, "%s=%s\n", k, conf[k])
	}
	confPath := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(confPath, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	b.cmd = exec.Command(daemonPath, "--config", confPath)
	b.cmd.Stdout = b.output
	b.cmd.Stderr = b.output
	b.cmd.Dir = t.TempDir()
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", daemonPath, err)
	}
	b.PID = b.cmd.Process.Pid
	go func() {
		b.waitErr = b.cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		b.Stop(t)
		if t.Failed() {
			t.Logf("ringbrokerd (%s, pid %d, %s) output:\n%s", backend, b.PID, b.Addr, b.Logs())
		}
	})

	if err := b.waitReady(startTimeout); err != nil {
		t.Fatalf("ringbrokerd (%s) not ready on %s within %v: %v\nconfig:\n%s", backend, b.Addr, startTimeout, err, text.String())
	}
	return b
}

// waitReady polls until the listener accepts and an ApiVersions round trip works, or
// the daemon exits, or the timeout passes.
func (b *Broker) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-b.exited:
			return fmt.Errorf("daemon exited early: %v", b.waitErr)
		default:
		}
		lastErr = probeApiVersions(b.Addr, time.Second)
		if lastErr == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("last attempt: %v", lastErr)
}

// Stop sends SIGTERM and asserts the daemon exits with status 0 within stopTimeout;
// SIGKILL (by PID) only if it does not. Safe to call more than once.
func (b *Broker) Stop(t *testing.T) {
	t.Helper()
	if b.stopped {
		return
	}
	b.stopped = true
	select {
	case <-b.exited:
		t.Errorf("ringbrokerd (%s) had already exited before SIGTERM: %v", b.Backend, b.waitErr)
		return
	default:
	}
	if err := syscall.Kill(b.PID, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM to pid %d: %v", b.PID, err)
	}
	select {
	case <-b.exited:
		if b.waitErr != nil {
			t.Errorf("ringbrokerd (%s) exit after SIGTERM: %v (want status 0)", b.Backend, b.waitErr)
		}
	case <-time.After(stopTimeout):
		t.Errorf("ringbrokerd (%s, pid %d) still running %v after SIGTERM; sending SIGKILL", b.Backend, b.PID, stopTimeout)
		_ = syscall.Kill(b.PID, syscall.SIGKILL)
		<-b.exited
	}
}

// Logs returns everything the daemon wrote to stdout and stderr so far.
func (b *Broker) Logs() string { return b.output.String() }

// LogLen returns the number of output bytes captured so far, for LogsSince.
func (b *Broker) LogLen() int { return b.output.Len() }

// LogsSince returns the output written after LogLen returned offset.
func (b *Broker) LogsSince(offset int) string {
	s := b.output.String()
	if offset > len(s) {
		return ""
	}
	return s[offset:]
}

// RSS returns the daemon's resident set size in bytes (VmRSS in /proc/PID/status).
func (b *Broker) RSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.PID))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest) // "12345 kB"
			if len(fields) != 2 || fields[1] != "kB" {
				return 0, fmt.Errorf("unexpected VmRSS line %q", line)
			}
			kib, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kib << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// Alive reports whether the daemon process is still running.
func (b *Broker) Alive() bool {
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// freePort returns a loopback TCP port that was free a moment ago. The daemon binds
// it right after; a collision shows up as a start failure with the daemon's log.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// capBuffer is a goroutine-safe output sink that keeps at most max bytes and then
// records only how much it dropped.
type capBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped int64
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.buf.Len()
	if room < len(p) {
		if room > 0 {
			c.buf.Write(p[:room])
		}
		c.dropped += int64(len(p) - max(room, 0))
		return len(p), nil
	}
	c.buf.Write(p)
	return len(p), nil
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped > 0 {
		return c.buf.String() + fmt.Sprintf("\n[... %d more bytes of output dropped]\n", c.dropped)
	}
	return c.buf.String()
}

func (c *capBuffer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Len()
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
