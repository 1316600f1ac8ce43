package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// TestCheckHostJSON runs `ringbrokerd check-host --json` in-process: the
// exit status is the report's worst severity, and on a host like this one
// (ext4, swappiness 60) those findings are warnings and io_uring is usable.
func TestCheckHostJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"check-host", "--json", "--config", writeProps(t, "log.dirs="+t.TempDir())}, &out, &errOut)
	var rep struct {
		Findings []struct {
			ID, Severity, Found string
		} `json:"findings"`
		IOBackend string `json:"io_backend"`
		ExitCode  int    `json:"exit_code"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("check-host --json output is not JSON: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if code != rep.ExitCode {
		t.Fatalf("exit status %d, report says %d", code, rep.ExitCode)
	}
	sev := map[string]string{}
	for _, f := range rep.Findings {
		if _, seen := sev[f.ID]; !seen || f.Severity != "ok" {
			sev[f.ID] = f.Severity
		}
	}
	if b, err := os.ReadFile("/proc/sys/vm/swappiness"); err == nil {
		if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n > 1 && sev["vm.swappiness"] != "warning" {
			t.Errorf("swappiness %d: finding %q, want warning", n, sev["vm.swappiness"])
		}
	}
	for _, id := range []string{"fs.type", "io_uring.backend", "limits.nofile"} {
		if _, ok := sev[id]; !ok {
			t.Errorf("no %s finding", id)
		}
	}
	if code == 0 && len(rep.Findings) > 0 && sev["vm.swappiness"] == "warning" {
		t.Error("a warning but exit status 0")
	}
	t.Logf("check-host: exit %d, io backend %s, %d findings", code, rep.IOBackend, len(rep.Findings))
}

// TestDaemonNotifyMetricsAndStop starts the daemon in-process with a fake
// NOTIFY_SOCKET: READY=1 arrives once the listener accepts, WATCHDOG=1
// keep-alives follow, /metrics shows request and byte counters after
// traffic, and SIGTERM sends STOPPING=1 and returns 0.
func TestDaemonNotifyMetricsAndStop(t *testing.T) {
	for _, backend := range []string{"uring", "portable"} {
		t.Run(backend, func(t *testing.T) {
			notify := fakeNotifySocket(t, false)
			t.Setenv("WATCHDOG_USEC", "200000")
			t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
			metricsAddr := freeAddr(t)
			logs := daemontest.NewOutputBuffer(daemontest.OutputBytesMax)
			done := make(chan int, 1)
			go func() {
				done <- run([]string{
					"--set", "listeners=PLAINTEXT://127.0.0.1:0",
					"--set", "log.dirs=" + t.TempDir(),
					"--set", "io.backend=" + backend,
					"--set", "metrics.listener=" + metricsAddr,
				}, io.Discard, logs)
			}()
			msg, ok := readDatagram(t, notify, 10*time.Second)
			if !ok || !strings.Contains(msg, "READY=1") {
				t.Fatalf("no READY=1 (got %q)\n%s", msg, logs.String())
			}
			// STATUS carries the bound address; it must accept now.
			addr := strings.TrimSpace(msg[strings.Index(msg, "serving ")+len("serving "):])
			if c, err := net.Dial("tcp", addr); err != nil {
				t.Fatalf("READY=1 sent but %s does not accept: %v", addr, err)
			} else {
				c.Close()
			}
			if msg, ok := readDatagram(t, notify, 2*time.Second); !ok || msg != "WATCHDOG=1" {
				t.Fatalf("no WATCHDOG=1 keep-alive (got %q)", msg)
			}

			cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kadm.NewClient(cl).BrokerMetadata(context.Background()); err != nil {
				t.Fatal(err)
			}
			cl.Close()
			body := scrape(t, metricsAddr)
			for _, want := range []string{"ringbroker_requests_total", "ringbroker_network_received_bytes_total", "ringbroker_network_sent_bytes_total"} {
				if !hasNonZero(body, want) {
					t.Errorf("/metrics: %s missing or zero", want)
				}
			}

			syscall.Kill(os.Getpid(), syscall.SIGTERM)
			for {
				msg, ok := readDatagram(t, notify, 10*time.Second)
				if !ok {
					t.Fatal("no STOPPING=1")
				}
				if strings.Contains(msg, "STOPPING=1") {
					break
				}
			}
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("exit status %d\n%s", code, logs.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatal("daemon did not stop")
			}
		})
	}
}

func writeProps(t *testing.T, lines ...string) string {
	t.Helper()
	p := t.TempDir() + "/server.properties"
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := daemontest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// hasNonZero reports whether a sample of metric family name has a value > 0.
func hasNonZero(body, name string) bool {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil && v > 0 {
			return true
		}
	}
	return false
}
