package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fakeNotifySocket listens like systemd's notify socket and points
// NOTIFY_SOCKET at it. abstract selects an "@name" abstract-namespace address.
func fakeNotifySocket(t *testing.T, abstract bool) *net.UnixConn {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify.sock")
	if abstract {
		name = fmt.Sprintf("@ringbroker-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func readDatagram(t *testing.T, conn *net.UnixConn, timeout time.Duration) (string, bool) {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := conn.Read(buf)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return "", false
		}
		t.Fatal(err)
	}
	return string(buf[:n]), true
}

func TestSdNotify(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			conn := fakeNotifySocket(t, abstract)
			for _, state := range []string{"READY=1", "STATUS=serving 2 listeners\nREADY=1", "STOPPING=1"} {
				if err := sdNotify(state); err != nil {
					t.Fatal(err)
				}
				got, ok := readDatagram(t, conn, 2*time.Second)
				if !ok || got != state {
					t.Fatalf("got %q (%v), want %q", got, ok, state)
				}
			}
		})
	}
}

func TestSdNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Fatalf("no NOTIFY_SOCKET should be a no-op: %v", err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if err := sdNotify("READY=1"); err == nil {
		t.Fatal("missing socket should be an error")
	}
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	if err := sdNotify("READY=1"); err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Fatalf("vsock: %v", err)
	}
}

func TestSdWatchdogInterval(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, true},
		{"30000000", pid, 30 * time.Second, true},
		{"30000000", "1", 0, false}, // inherited from a parent
		{"30000000", "x", 0, false},
		{"0", pid, 0, false},
		{"-5", pid, 0, false},
		{"abc", pid, 0, false},
	}
	for _, tt := range tests {
		t.Setenv("WATCHDOG_USEC", tt.usec)
		t.Setenv("WATCHDOG_PID", tt.pid)
		got, ok := watchdogInterval()
		if got != tt.want || ok != tt.ok {
			t.Errorf("USEC=%q PID=%q: got %v %v, want %v %v", tt.usec, tt.pid, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSdWatchdogKeepalives(t *testing.T) {
	conn := fakeNotifySocket(t, false)
	t.Setenv("WATCHDOG_USEC", "40000") // 40 ms: keep-alive every 20 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	start := time.Now()
	stop := startWatchdog(nil, zap.NewNop())
	for i := 0; i < 3; i++ {
		got, ok := readDatagram(t, conn, 2*time.Second)
		if !ok || got != "WATCHDOG=1" {
			stop()
			t.Fatalf("keep-alive %d: got %q %v", i, got, ok)
		}
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Errorf("3 keep-alives in %v: faster than interval/2", el)
	}
	stop()
	// Drain what was in flight, then expect silence.
	time.Sleep(30 * time.Millisecond)
	for {
		if _, ok := readDatagram(t, conn, 10*time.Millisecond); !ok {
			break
		}
	}
	if got, ok := readDatagram(t, conn, 100*time.Millisecond); ok {
		t.Fatalf("keep-alive after stop: %q", got)
	}
}

func TestSdWatchdogDisabled(t *testing.T) {
	conn := fakeNotifySocket(t, false)
	t.Setenv("WATCHDOG_USEC", "")
	defer startWatchdog(nil, zap.NewNop())()
	if got, ok := readDatagram(t, conn, 100*time.Millisecond); ok {
		t.Fatalf("keep-alive without WatchdogSec: %q", got)
	}
}
