//go:build linux

package integration

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStartupLogLine: the daemon says at startup which backend it runs and where it
// listens (the ring count is in the same line by design; its wording is not pinned).
func TestStartupLogLine(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{"ring.count": "2"})
		// The port accepts a moment before the line is written: wait for
		// it (bounded) rather than read the output once.
		var logs, line string
		for deadline := time.Now().Add(10 * time.Second); line == "" && time.Now().Before(deadline); {
			logs = b.Logs()
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, strconv.Itoa(b.Port)) && strings.Contains(l, backend) {
					line = l
					break
				}
			}
			if line == "" {
				time.Sleep(10 * time.Millisecond)
			}
		}
		t.Logf("startup output:\n%s", logs)
		if line == "" {
			t.Errorf("no startup line naming backend %q and listener %s", backend, b.Addr)
		}
		// io.backend=uring is an explicit choice: serving through the portable backend
		// instead would make every "uring" subtest in this package test the wrong code.
		if backend == "uring" && strings.Contains(logs, "portable") {
			t.Errorf("io.backend=uring, but the daemon mentions the portable backend at startup")
		}
	})
}

// TestIdleConnectionClosed: connections.max.idle.ms closes a silent connection, not
// an active one. The idle time is 2 s against a request every 100 ms: a busy
// connection stays far inside it even when a loaded machine delays the client.
func TestIdleConnectionClosed(t *testing.T) {
	const idle = 2 * time.Second
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{
			"connections.max.idle.ms": strconv.Itoa(int(idle / time.Millisecond)),
		})
		quiet := dial(t, b.Addr)
		busy := dial(t, b.Addr)
		if err := apiVersionsOn(quiet, 1, rawTimeout); err != nil {
			t.Fatal(err)
		}
		lastActive := time.Now()

		// busy talks every 100 ms for 2 idle periods (by then quiet is
		// past its idle time twice over) and must stay open.
		for i := 0; time.Since(lastActive) < 2*idle; i++ {
			if err := apiVersionsOn(busy, int32(i), rawTimeout); err != nil {
				t.Fatalf("active connection round trip %d at %v: %v", i, time.Since(lastActive).Round(time.Millisecond), err)
			}
			time.Sleep(100 * time.Millisecond)
		}

		if err := expectClosed(quiet, 30*time.Second); err != nil { // a fail-safe
			t.Errorf("idle connection (connections.max.idle.ms=%d): %v", idle/time.Millisecond, err)
		} else {
			t.Logf("idle connection closed %v after its last request", time.Since(lastActive).Round(time.Millisecond))
		}
	})
}

// TestIdleConnectionNotClosedEarly: a connection idle for less than
// connections.max.idle.ms stays open.
func TestIdleConnectionNotClosedEarly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, map[string]string{"connections.max.idle.ms": "30000"})
		conn := dial(t, b.Addr)
		if err := apiVersionsOn(conn, 1, rawTimeout); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := apiVersionsOn(conn, 2, rawTimeout); err != nil {
			t.Errorf("connection idle 1 s of a 30 s allowance: %v", err)
		}
	})
}

// TestStopWithOpenConnections: SIGTERM with clients still connected drains, closes
// them and exits 0 within the stop timeout.
func TestStopWithOpenConnections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		var conns []net.Conn
		for i := range 10 {
			c := dial(t, b.Addr)
			if err := apiVersionsOn(c, int32(i), rawTimeout); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		start := time.Now()
		b.Stop(t)
		t.Logf("stopped with %d open connections in %v", len(conns), time.Since(start).Round(time.Millisecond))
		for i, c := range conns {
			if err := expectClosed(c, time.Second); err != nil {
				t.Errorf("connection %d after the broker exited: %v", i, err)
			}
		}
	})
}

// TestStopRightAfterReady: a SIGTERM that arrives as soon as the broker serves (a
// service manager stopping a unit that just started) must still drain and exit 0,
// so the signal handler has to be in place before the listeners accept.
func TestStopRightAfterReady(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		for i := range 3 {
			b := startBroker(t, backend, nil)
			b.Stop(t)
			if t.Failed() {
				t.Fatalf("attempt %d: SIGTERM right after the first ApiVersions answer did not give a clean exit", i)
			}
		}
	})
}
