package harness

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringbroker/ringbroker/internal/daemontest"
)

// Target kinds.
const (
	kindNull       = "null"
	kindRingbroker = "ringbroker"
	kindPeer       = "peer"
	// kindPeerKfake is franz-go's in-memory kfake, started by the
	// harness for the Java perf scenario only.
	kindPeerKfake = "kfake"
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
	proc     *daemontest.Daemon // nil: not started by the harness
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

// startProcess starts argv (with "{port}" replaced by a free port, its
// output in dir/NAME.log) and waits until it answers ApiVersions on that
// port. Another process may take the port before the broker binds it: a
// failed start is tried once more on a new port.
func startProcess(t *target, argv []string, dir string, extraEnv []string) error {
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		// Own process group: a Ctrl-C on the harness reaches it too,
		// and stop can signal it alone by PID.
		d, err := daemontest.Start(daemontest.Options{Argv: argv, Dir: dir, Env: extraEnv,
			LogFile: filepath.Join(dir, t.name+".log"), OwnProcessGroup: true})
		if err != nil {
			return err
		}
		t.proc, t.addr = d, d.Addr
		err = d.WaitReady(15*time.Second, nil)
		if err == nil {
			return nil
		}
		lastErr = fmt.Errorf("%v: %s", err, logTail(d.Logs()))
		t.stop()
	}
	return lastErr
}

// logTail is the last lines of a process's output, for error messages.
func logTail(out string) string {
	out = strings.TrimSpace(out)
	if out == "" {
		return "(no output)"
	}
	lines := strings.Split(out, "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

// stop ends a process the harness started: SIGTERM to its PID, SIGKILL
// after 5 s. Peers and failed starts have no process.
func (t *target) stop() {
	if t.proc == nil {
		return
	}
	_, _ = t.proc.Stop(5 * time.Second) // a benchmark target's exit status is not measured
	t.proc = nil
}
