package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Target kinds.
const (
	kindNull       = "null"
	kindRingbroker = "ringbroker"
	kindPeer       = "peer"
)

// Names of the targets the harness starts itself.
const (
	TargetNull              = "null"
	TargetRingbrokerUring   = "ringbroker-uring"
	TargetRingbrokerPort    = "ringbroker-portable"
	TargetRingbrokerReadCpy = "ringbroker-uring-readsend"
)

// target is one broker under test. Processes the harness started are
// stopped by their PID in stop; peers are only connected to.
type target struct {
	name string
	kind string
	addr string
	// only restricts the target to these scenario ids (nil: all).
	only []string
	// startErr is why the target could not be started; its runs are
	// reported as unsupported with this error.
	startErr error
	cmd      *exec.Cmd
	logPath  string
	exited   chan struct{}
}

func (t *target) runs(scenarioID string) bool {
	if t.only == nil {
		return true
	}
	for _, id := range t.only {
		if id == scenarioID {
			return true
		}
	}
	return false
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the broker binds it; start retries once on that race.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startProcess starts argv (with "{port}" replaced by a free port) and
// waits until it answers ApiVersions on that port.
func startProcess(t *target, argv []string, dir string, extraEnv []string) error {
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		args := make([]string, len(argv))
		for i, a := range argv {
			args[i] = strings.ReplaceAll(a, "{port}", fmt.Sprint(port))
		}
		t.addr = fmt.Sprintf("127.0.0.1:%d", port)
		t.logPath = filepath.Join(dir, t.name+".log")
		logf, err := os.Create(t.logPath)
		if err != nil {
			return err
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = append(os.Environ(), extraEnv...)
		// Own process group: a Ctrl-C on the harness reaches it too,
		// and stop can signal it alone by PID.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return err
		}
		logf.Close()
		t.cmd = cmd
		t.exited = make(chan struct{})
		go func() { cmd.Wait(); close(t.exited) }()
		if lastErr = waitReady(t, 15*time.Second); lastErr == nil {
			return nil
		}
		t.stop()
	}
	return lastErr
}

// waitReady polls the target with ApiVersions until it answers, the
// process exits, or the timeout passes.
func waitReady(t *target, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if t.exited != nil {
			select {
			case <-t.exited:
				return fmt.Errorf("exited during start-up: %s", logTail(t.logPath))
			default:
			}
		}
		if err := apiVersions(t.addr, 2*time.Second); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no ApiVersions answer on %s within %v: %s", t.addr, timeout, logTail(t.logPath))
}

func apiVersions(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(timeout))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName = "ringbench"
	req.ClientSoftwareVersion = "0"
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		return fmt.Errorf("ApiVersions error code %d", resp.ErrorCode)
	}
	return nil
}

// logTail is the last lines of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return "(no output)"
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}

// stop ends a process the harness started: SIGTERM to its PID, SIGKILL
// after 5 s. Peers and failed starts have no process.
func (t *target) stop() {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.exited:
	case <-time.After(5 * time.Second):
		t.cmd.Process.Kill()
		<-t.exited
	}
	t.cmd = nil
}

// buildBinary runs `go build -o out pkg` in the module root.
func buildBinary(ctx context.Context, root, pkg, out string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// moduleRoot finds the directory holding go.mod, walking up from the
// working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
