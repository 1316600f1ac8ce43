//go:build linux

// Package crash holds black-box crash-consistency and disk-full tests of
// ringbrokerd (issue 8): the real daemon binary, killed with SIGKILL at
// random moments under real franz-go clients, restarted on the same log
// dirs, and checked record by record.
//
// This file is the harness: TestMain builds the daemon once; a daemon is a
// child process on a free loopback port with its own server.properties;
// kill is SIGKILL by PID, stop is SIGTERM and demands exit status 0.
// It is deliberately separate from tests/integration's harness (test files
// cannot be imported across packages) and smaller: only what these tests
// need.
//
// Environment and flags (see crash_test.go for the crash loop's):
//
//	RINGBROKER_CRASH_DAEMON      test this prebuilt binary instead of building one
//	RINGBROKER_CRASH_BUILDFLAGS  extra `go build` flags for the daemon ("-race")
package crash

import (
	"bytes"
	"context"
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

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// startTimeout bounds start-up, recovery of a crashed log dir included.
	startTimeout = 30 * time.Second
	// stopTimeout bounds a SIGTERM drain.
	stopTimeout = 15 * time.Second
	// outputBytesMax caps captured daemon output.
	outputBytesMax = 8 << 20
)

// daemonPath is the ringbrokerd binary under test, set by TestMain.
var daemonPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if p := os.Getenv("RINGBROKER_CRASH_DAEMON"); p != "" {
		daemonPath = p
		return m.Run()
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		fmt.Fprintf(os.Stderr, "crash: cannot find the module root (go env GOMOD: %q, %v)\n", out, err)
		return 1
	}
	binDir, err := os.MkdirTemp("", "ringbrokerd-crash-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "crash: %v\n", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	daemonPath = filepath.Join(binDir, "ringbrokerd")
	args := append([]string{"build", "-o", daemonPath}, strings.Fields(os.Getenv("RINGBROKER_CRASH_BUILDFLAGS"))...)
	args = append(args, "./cmd/ringbrokerd")
	build := exec.Command("go", args...)
	build.Dir = filepath.Dir(mod)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "crash: go %s: %v\n%s\n", strings.Join(args, " "), err, out)
		return 1
	}
	return m.Run()
}

// daemon is one run of ringbrokerd. A test restarts the same log dirs by
// starting a new daemon with the same props.
type daemon struct {
	addr   string
	pid    int
	cmd    *exec.Cmd
	output *capBuffer
	exited chan struct{}
	// waitErr is cmd.Wait's result, written before exited is closed.
	waitErr error
	done    bool // killed or stopped
}

// startDaemon starts ringbrokerd with props (log.dirs must be set) on a
// free port, waits until it answers ApiVersions, and registers a cleanup
// that SIGKILLs it if the test left it running (a failed test must not
// leak a daemon). t is used for cleanup and fatal start errors only.
func startDaemon(t *testing.T, props map[string]string) *daemon {
	t.Helper()
	port := freePort(t)
	d := &daemon{
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		output: &capBuffer{max: outputBytesMax},
		exited: make(chan struct{}),
	}
	conf := map[string]string{
		"listeners":        "PLAINTEXT://" + d.addr,
		"io.backend":       "auto",
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
	text.WriteString("# written by tests/crash\n")
	for _, k := range keys {
		fmt.Fprintf(&text, "%s=%s\n", k, conf[k])
	}
	confPath := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(confPath, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(daemonPath, "--config", confPath)
	d.cmd.Stdout, d.cmd.Stderr = d.output, d.output
	d.cmd.Dir = t.TempDir()
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", daemonPath, err)
	}
	d.pid = d.cmd.Process.Pid
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		if !d.done {
			_ = d.kill()
		}
		if t.Failed() {
			out := d.output.String()
			if crash := crashReport(out); crash != "" {
				t.Logf("ringbrokerd pid %d (%s) died:\n%s", d.pid, d.addr, crash)
			} else {
				t.Logf("ringbrokerd pid %d (%s) output (last 8 KiB):\n%s", d.pid, d.addr, tail(out, 8<<10))
			}
		}
	})
	if err := d.waitReady(startTimeout); err != nil {
		t.Fatalf("ringbrokerd not ready on %s within %v: %v\nconfig:\n%s\noutput:\n%s", d.addr, startTimeout, err, text.String(), tail(d.output.String(), 8<<10))
	}
	return d
}

// crashReport returns the start of a Go runtime crash report in out (the
// reason and the crashing goroutine), or "".
func crashReport(out string) string {
	for _, marker := range []string{"panic: ", "fatal error: ", "unexpected fault", "unexpected signal", "SIGBUS", "SIGSEGV"} {
		if i := strings.Index(out, marker); i >= 0 {
			return out[max(i-512, 0):min(i+4096, len(out))]
		}
	}
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return "[...]" + s[len(s)-n:]
	}
	return s
}

// waitReady polls ApiVersions until it answers, the daemon exits, or the
// timeout passes.
func (d *daemon) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if !d.alive() {
			return fmt.Errorf("daemon exited early: %v", d.waitErr)
		}
		if last = probe(d.addr); last == nil {
			return nil
		}
		time.Sleep(30 * time.Millisecond)
	}
	return last
}

// probe does one ApiVersions round trip through franz-go.
func probe(addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = cl.Request(ctx, kmsg.NewPtrApiVersionsRequest())
	return err
}

// alive reports whether the process is still running.
func (d *daemon) alive() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// kill SIGKILLs the daemon (by PID) and waits for it to be reaped.
func (d *daemon) kill() error {
	d.done = true
	if !d.alive() {
		return fmt.Errorf("ringbrokerd pid %d had already exited: %v", d.pid, d.waitErr)
	}
	if err := syscall.Kill(d.pid, syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-d.exited:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("ringbrokerd pid %d survived SIGKILL for %v", d.pid, stopTimeout)
	}
}

// stop sends SIGTERM and requires exit status 0 within stopTimeout.
func (d *daemon) stop() error {
	d.done = true
	if !d.alive() {
		return fmt.Errorf("ringbrokerd pid %d had already exited: %v", d.pid, d.waitErr)
	}
	if err := syscall.Kill(d.pid, syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-d.exited:
		if d.waitErr != nil {
			return fmt.Errorf("ringbrokerd exit after SIGTERM: %v (want status 0)", d.waitErr)
		}
		return nil
	case <-time.After(stopTimeout):
		_ = syscall.Kill(d.pid, syscall.SIGKILL)
		<-d.exited
		return fmt.Errorf("ringbrokerd pid %d still running %v after SIGTERM (killed)", d.pid, stopTimeout)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// capBuffer is a goroutine-safe sink keeping at most max bytes.
type capBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped int64
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room < len(p) {
		c.buf.Write(p[:max(room, 0)])
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
		return c.buf.String() + fmt.Sprintf("\n[%d more bytes dropped]\n", c.dropped)
	}
	return c.buf.String()
}
