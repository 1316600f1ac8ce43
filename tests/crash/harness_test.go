//go:build linux

// Package crash holds black-box crash-consistency and disk-full tests of
// ringbrokerd (issue 8): the real daemon binary, killed with SIGKILL at
// random moments under real franz-go clients, restarted on the same log
// dirs, and checked record by record.
//
// This file is the harness, over internal/daemontest (shared with
// tests/integration, bench/harness and cmd/ringbrokerd): TestMain builds
// the daemon once; a daemon is a child process on a free loopback port with
// its own server.properties; kill is SIGKILL by PID, stop is SIGTERM and
// demands exit status 0.
//
// Environment and flags (see crash_test.go for the crash loop's):
//
//	RINGBROKER_CRASH_DAEMON      test this prebuilt binary instead of building one
//	RINGBROKER_CRASH_BUILDFLAGS  extra `go build` flags for the daemon ("-race")
package crash

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/daemontest"
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
	path, _, cleanup, err := daemontest.Binary("RINGBROKER_CRASH_DAEMON", "RINGBROKER_CRASH_BUILDFLAGS")
	if err != nil {
		fmt.Fprintf(os.Stderr, "crash: %v\n", err)
		return 1
	}
	defer cleanup()
	daemonPath = path
	return m.Run()
}

// daemon is one run of ringbrokerd. A test restarts the same log dirs by
// starting a new daemon with the same props.
type daemon struct {
	*daemontest.Daemon
	addr string
	done bool // killed or stopped
}

// startDaemon starts ringbrokerd with props (log.dirs must be set) on a
// free port, waits until it answers ApiVersions, and registers a cleanup
// that SIGKILLs it if the test left it running (a failed test must not
// leak a daemon). t is used for cleanup and fatal start errors only.
func startDaemon(t *testing.T, props map[string]string) *daemon {
	t.Helper()
	conf := map[string]string{
		"listeners":        "PLAINTEXT://127.0.0.1:{port}",
		"io.backend":       "auto",
		"metrics.listener": "",
	}
	for k, v := range props {
		conf[k] = v
	}
	dd, err := daemontest.Start(daemontest.Options{
		Argv:   []string{daemonPath},
		Config: conf, ConfigPath: filepath.Join(t.TempDir(), "server.properties"), ConfigHeader: "written by tests/crash",
		Dir:            t.TempDir(),
		OutputBytesMax: outputBytesMax,
	})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{Daemon: dd, addr: dd.Addr}
	t.Cleanup(func() {
		if !d.done {
			_ = d.kill()
		}
		if t.Failed() {
			out := d.Logs()
			if crash := daemontest.CrashReport(out); crash != "" {
				t.Logf("ringbrokerd pid %d (%s) died:\n%s", d.PID, d.addr, crash)
			} else {
				t.Logf("ringbrokerd pid %d (%s) output (last 8 KiB):\n%s", d.PID, d.addr, daemontest.Tail(out, 8<<10))
			}
		}
	})
	if err := d.WaitReady(startTimeout, nil); err != nil {
		t.Fatalf("ringbrokerd not ready on %s within %v: %v\nconfig:\n%s\noutput:\n%s", d.addr, startTimeout, err, dd.Config, daemontest.Tail(d.Logs(), 8<<10))
	}
	return d
}

// alive reports whether the process is still running.
func (d *daemon) alive() bool { return d.Alive() }

// kill SIGKILLs the daemon (by PID) and waits for it to be reaped.
func (d *daemon) kill() error {
	d.done = true
	if err := d.Kill(stopTimeout); err != nil {
		return fmt.Errorf("ringbrokerd: %w", err)
	}
	return nil
}

// stop sends SIGTERM and requires exit status 0 within stopTimeout.
func (d *daemon) stop() error {
	d.done = true
	if _, err := d.Stop(stopTimeout); err != nil {
		return fmt.Errorf("ringbrokerd: %w", err)
	}
	return nil
}
