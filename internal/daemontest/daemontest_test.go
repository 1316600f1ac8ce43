package daemontest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary be the child process: DAEMONTEST_CHILD=serve
// listens on the port given as its last argument, prints its config file
// and exits 0 on SIGTERM; DAEMONTEST_CHILD=fail exits 3 at once.
func TestMain(m *testing.M) {
	switch os.Getenv("DAEMONTEST_CHILD") {
	case "serve":
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		args := os.Args
		if len(args) >= 3 && args[len(args)-2] == "--config" {
			b, _ := os.ReadFile(args[len(args)-1])
			fmt.Printf("config:\n%s", b)
			args = args[:len(args)-2]
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+args[len(args)-1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("serving")
		<-sig
		l.Close()
		os.Exit(0)
	case "fail":
		fmt.Fprintln(os.Stderr, "refusing to start")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func dialProbe(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func child(t *testing.T, mode string, o Options) *Daemon {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o.Argv = []string{self, "-test.run=^$", "{port}"}
	o.Env = append(o.Env, "DAEMONTEST_CHILD="+mode)
	d, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.Alive() {
			_ = d.Kill(10 * time.Second)
		}
	})
	return d
}

func TestStartReadyStop(t *testing.T) {
	dir := t.TempDir()
	d := child(t, "serve", Options{Config: map[string]string{"listeners": "PLAINTEXT://127.0.0.1:{port}", "b": "2"},
		ConfigPath: filepath.Join(dir, "server.properties"), ConfigHeader: "written by daemontest", Dir: dir})
	if err := d.WaitReady(30*time.Second, dialProbe); err != nil {
		t.Fatalf("%v\n%s", err, d.Logs())
	}
	want := fmt.Sprintf("# written by daemontest\nb=2\nlisteners=PLAINTEXT://127.0.0.1:%d\n", d.Port)
	if d.Config != want {
		t.Fatalf("config %q, want %q", d.Config, want)
	}
	if rss, err := d.RSS(); err != nil || rss <= 0 {
		t.Fatalf("RSS %d %v", rss, err)
	}
	took, err := d.Stop(30 * time.Second)
	if err != nil {
		t.Fatalf("stop after %v: %v\n%s", took, err, d.Logs())
	}
	if logs := d.Logs(); !strings.Contains(logs, want) || !strings.Contains(logs, "serving") {
		t.Fatalf("output %q", logs)
	}
	if _, err := d.Stop(time.Second); !errors.Is(err, ErrAlreadyExited) {
		t.Fatalf("second Stop: %v, want ErrAlreadyExited", err)
	}
}

func TestExitedEarlyAndKill(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "child.log")
	d := child(t, "fail", Options{LogFile: logFile})
	err := d.WaitReady(30*time.Second, dialProbe)
	if err == nil || !strings.Contains(err.Error(), "exited early") {
		t.Fatalf("WaitReady: %v", err)
	}
	if !strings.Contains(d.Logs(), "refusing to start") || d.WaitErr() == nil {
		t.Fatalf("logs %q, exit %v", d.Logs(), d.WaitErr())
	}

	k := child(t, "serve", Options{})
	if err := k.WaitReady(30*time.Second, dialProbe); err != nil {
		t.Fatal(err)
	}
	if err := k.Kill(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if k.Alive() || k.WaitErr() == nil {
		t.Fatalf("after SIGKILL: alive %v, exit %v", k.Alive(), k.WaitErr())
	}
}

func TestOutputBufferCap(t *testing.T) {
	b := NewOutputBuffer(4)
	b.Write([]byte("abc"))
	b.Write([]byte("def"))
	if b.Len() != 4 || !strings.HasPrefix(b.String(), "abcd") || !strings.Contains(b.String(), "2 more bytes") {
		t.Fatalf("%d %q", b.Len(), b.String())
	}
}

func TestModuleRootAndFreeAddr(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	addr, err := FreeAddr()
	if err != nil || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr %q %v", addr, err)
	}
}

// WaitBindable waits while a listener holds the address, up to its bound,
// and returns as soon as the address is free; Start with WaitFree waits the
// same way before it starts the process.
func TestWaitBindable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := WaitBindable([]string{addr}, 50*time.Millisecond); err == nil {
		t.Fatal("WaitBindable returned nil while a listener held the address")
	}
	go func() {
		time.Sleep(20 * time.Millisecond) // the holder goes away while Start polls
		ln.Close()
	}()
	d, err := Start(Options{Argv: []string{"true"}, WaitFree: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	<-d.Exited()
	if err := WaitBindable([]string{addr}, time.Second); err != nil {
		t.Fatal(err)
	}
}

// FreePortOn hands out ports outside the kernel's ephemeral range, which
// outgoing connections take their local ports from, each once, on the host
// asked for; and randomNonEphemeralPort covers both sides of the range and
// every range's edge.
func TestFreePortOutsideEphemeralRange(t *testing.T) {
	lo, hi := ephemeralRange()
	seen := map[int]bool{}
	for range 200 {
		port, err := FreePortOn("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if port >= lo && port <= hi {
			t.Fatalf("port %d inside the ephemeral range %d-%d", port, lo, hi)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", port, err)
		}
		l.Close()
	}
	if port, err := FreePortOn("127.0.0.2"); err != nil || port < freePortLow {
		t.Fatalf("FreePortOn(127.0.0.2) = %d, %v", port, err)
	}

	for _, tc := range []struct {
		lo, hi    int
		ok        bool
		bothSides bool // ports below and above the range both come up
	}{
		{32768, 60999, true, true}, {1024, 5000, true, false}, {61000, 65535, true, false},
		{10000, 65535, false, false}, {1024, 65535, false, false}, {10001, 65534, true, true},
	} {
		sides := map[bool]bool{}
		for range 2000 {
			port, ok := randomNonEphemeralPort(tc.lo, tc.hi)
			if ok != tc.ok {
				t.Fatalf("range %d-%d: ok %v, want %v", tc.lo, tc.hi, ok, tc.ok)
			}
			if !ok {
				break
			}
			if port < freePortLow || port > freePortHigh || (port >= tc.lo && port <= tc.hi) {
				t.Fatalf("range %d-%d: port %d", tc.lo, tc.hi, port)
			}
			sides[port > tc.hi] = true
		}
		if tc.bothSides && (!sides[false] || !sides[true]) {
			t.Fatalf("range %d-%d: ports on one side only %v", tc.lo, tc.hi, sides)
		}
	}
}
