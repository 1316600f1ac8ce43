//go:build linux

package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// cpuTicks is process pid's user+system CPU time in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	ticks, err := daemontest.CPUTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	return ticks
}

// clockTicksPerSecond is USER_HZ.
const clockTicksPerSecond = daemontest.ClockTicksPerSecond

// startBrokerNoFile starts a broker whose RLIMIT_NOFILE (soft and hard) is
// nofile from exec on, so neither the Go runtime's raise of the soft limit nor
// an io_uring accept armed earlier (it takes the limit when armed) escapes it.
func startBrokerNoFile(t *testing.T, backend string, nofile int) *Broker {
	t.Helper()
	prlimit := requireTool(t, "prlimit")
	wrapper := filepath.Join(t.TempDir(), "ringbrokerd-nofile")
	script := fmt.Sprintf("#!/bin/sh\nexec %s --nofile=%d:%d -- %s \"$@\"\n", prlimit, nofile, nofile, daemonPath)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	real := daemonPath
	daemonPath = wrapper
	defer func() { daemonPath = real }()
	return startBroker(t, backend, nil)
}

// TestAcceptOutOfDescriptors: a broker limited to 64 descriptors gets 100
// connections; those beyond the limit wait in the listen backlog and every
// accept fails with EMFILE. The broker must not spin on it (CPU well under a
// core, at most one log line a second), must keep serving the connections it
// has, and must accept the waiting ones soon after descriptors free up.
// Before the fix the io_uring backend re-armed the failed accept at once:
// 1-1.5 cores and ~150,000 log lines a second.
func TestAcceptOutOfDescriptors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		const nofile, conns = 64, 100
		b := startBrokerNoFile(t, backend, nofile)
		served := dial(t, b.Addr)
		if err := apiVersionsOn(served, 1, rawTimeout); err != nil {
			t.Fatal(err)
		}
		logOffset := b.LogLen()
		var open []*net.TCPConn
		for range conns {
			open = append(open, dial(t, b.Addr))
		}
		waitLog(b, logOffset, "accept failed", 5*time.Second)
		fdsFull := countFDs(t, b.PID)
		const window = 2 * time.Second
		cpu0, t0, log0 := cpuTicks(t, b.PID), time.Now(), b.LogLen()
		// The connection accepted before keeps being served meanwhile.
		for i := 0; time.Since(t0) < window; i++ {
			if err := apiVersionsOn(served, int32(10+i), rawTimeout); err != nil {
				t.Fatalf("served connection while accept fails with EMFILE: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		elapsed := time.Since(t0)
		cores := float64(cpuTicks(t, b.PID)-cpu0) / clockTicksPerSecond / elapsed.Seconds()
		lines := strings.Count(b.LogsSince(log0), "accept failed")
		logBytes := b.LogLen() - log0

		// Free descriptors: every connection but the last closes. Which of
		// them were accepted is not known (each loop has its own
		// SO_REUSEPORT listener and backlog, and the kernel spreads
		// connections over them), so closing only some may free fewer
		// descriptors than the backlogs ahead of the last one need; closed
		// ones still in a backlog are accepted, read as EOF and closed. The
		// last one, which waited in a backlog, must then be served.
		for _, c := range open[:conns-1] {
			c.Close()
		}
		resumeStart := time.Now()
		last := open[conns-1]
		if err := apiVersionsOn(last, 1, 10*time.Second); err != nil {
			t.Fatalf("connection that waited in the backlog, after descriptors freed up: %v", err)
		}
		resumed := time.Since(resumeStart)

		t.Logf("%s EMFILE: %d descriptors held at the limit of %d; over %v the broker used %.2f cores and logged %d \"accept failed\" lines (%d bytes of log); the last waiting connection was served %v after the others closed",
			backend, fdsFull, nofile, elapsed.Round(time.Millisecond), cores, lines, logBytes, resumed.Round(time.Millisecond))
		if cores > 0.3 {
			t.Errorf("broker used %.2f cores while accept failed with EMFILE, want < 0.3 (no hot loop)", cores)
		}
		if maxLines := int(elapsed/time.Second) + 2; lines > maxLines {
			t.Errorf("%d \"accept failed\" lines in %v, want <= %d (one a second)", lines, elapsed.Round(time.Millisecond), maxLines)
		}
		if resumed > 5*time.Second {
			t.Errorf("accepting resumed %v after descriptors freed up, want <= 5 s", resumed)
		}
	})
}
