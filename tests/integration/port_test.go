//go:build linux

package integration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// startFailing runs a second ringbrokerd with listener addr and its own data
// dir, and returns its output once it has exited. A daemon still running
// after the bound is killed (by PID) and the test fails: it started on a port
// that another process holds.
func startFailing(t *testing.T, backend, addr string) string {
	t.Helper()
	dir := t.TempDir()
	conf := "listeners=PLAINTEXT://" + addr + "\nlog.dirs=" + filepath.Join(dir, "data") +
		"\nio.backend=" + backend + "\nmetrics.listener=\n"
	confPath := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := daemontest.Start(daemontest.Options{Argv: []string{daemonPath, "--config", confPath}, Dir: dir, OutputBytesMax: logCaptureBytesMax})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Exited():
		if d.WaitErr() == nil {
			t.Errorf("second daemon (%s) on %s exited with status 0, want a failure", backend, addr)
		}
	case <-time.After(2 * startTimeout):
		_ = d.Kill(stopTimeout)
		t.Errorf("second daemon (%s) still running %v after start on %s, a port another process holds; output:\n%s",
			backend, 2*startTimeout, addr, d.Logs())
	}
	out := d.Logs()
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "already in use") {
			t.Logf("second daemon (%s) on %s: %s", backend, addr, line)
		}
	}
	return out
}

// TestListenerPortHeld: a broker must refuse to start on a port another
// process listens on — a plain listener, or another ringbrokerd of either
// backend — with an error naming the port. Before the fix an io_uring broker
// joined a running io_uring broker's SO_REUSEPORT group and the kernel split
// the connections between the two.
func TestListenerPortHeld(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		// A plain listener from another process (this test process).
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out := startFailing(t, backend, ln.Addr().String())
		ln.Close()
		if !strings.Contains(out, "already in use") || !strings.Contains(out, ln.Addr().String()) {
			t.Errorf("%s daemon on a port a plain listener holds: output does not say the port %s is in use:\n%s", backend, ln.Addr(), out)
		}

		// A running broker of each backend.
		for _, first := range backends {
			b := startBroker(t, first, nil)
			out := startFailing(t, backend, b.Addr)
			if !strings.Contains(out, "already in use") || !strings.Contains(out, b.Addr) {
				t.Errorf("%s daemon on the port of a running %s broker: output does not say %s is in use:\n%s", backend, first, b.Addr, out)
			}
			// The first broker still serves every connection.
			for i := range 20 {
				if err := probeApiVersions(b.Addr, rawTimeout); err != nil {
					t.Fatalf("%s broker, connection %d after a second daemon tried its port: %v", first, i, err)
				}
			}
			b.Stop(t)
		}
	})
}
