//go:build linux

package integration

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMetricsListenerErrorOnce: a metrics.listener that cannot bind fails
// the start with one error naming the key and address once (it read
// "metrics.listener A: metrics.listener A: listen tcp A: ...").
func TestMetricsListenerErrorOnce(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	out, err := runDaemon(t, "--set", "listeners=PLAINTEXT://127.0.0.1:"+strconv.Itoa(freePort(t)),
		"--set", "log.dirs="+filepath.Join(t.TempDir(), "data"), "--set", "metrics.listener="+addr)
	if err == nil {
		t.Fatalf("ringbrokerd started with metrics.listener %s taken:\n%s", addr, out)
	}
	if n := strings.Count(out, "metrics.listener "+addr); n != 1 {
		t.Errorf("the error names metrics.listener %s %d times, want once:\n%s", addr, n, out)
	}
}

// runDaemon runs ringbrokerd with args to completion (bounded) and returns
// its combined output.
func runDaemon(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(daemonPath, args...)
	cmd.Dir = t.TempDir()
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("ringbrokerd %s still running after %v:\n%s", strings.Join(args, " "), stopTimeout, out)
	}
	return string(out), err
}
