// Package daemontest runs broker processes for black-box tests and
// benchmarks: it builds (or finds) the ringbrokerd binary, picks free
// loopback ports, writes server.properties, starts the process with its
// output captured, waits until it answers ApiVersions, and stops it
// (SIGTERM, demanding exit status 0) or kills it (SIGKILL), always by the
// PID it started. tests/integration, tests/crash, bench/harness and
// cmd/ringbrokerd's tests share it; each keeps only what is its own (its
// environment variables, its failure messages, its cleanup policy).
//
// The package does not import testing: bench/harness is a program, not a
// test. Every function returns an error and leaves failing to the caller.
package daemontest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DaemonPackage is the ringbrokerd main package, relative to the module root.
const DaemonPackage = "./cmd/ringbrokerd"

// OutputBytesMax is the default cap on a daemon's captured output, so a
// log-per-request bug cannot eat the test process's memory.
const OutputBytesMax = 16 << 20

// buildTimeout bounds one go build.
const buildTimeout = 5 * time.Minute

// FreePort returns a loopback TCP port that was free a moment ago and that
// this process has not handed out recently: FreePortOn("127.0.0.1").
func FreePort() (int, error) { return FreePortOn("127.0.0.1") }

// FreePortOn returns a TCP port of host that was free a moment ago and that
// this process has not handed out recently. The daemon binds it right
// after; a collision with another process shows up as a start failure.
//
// The port is picked at random outside the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), and a listener on it is opened and closed
// to check that nothing holds it. A port the kernel hands out by itself
// (bind to port 0) is from the ephemeral range, which every outgoing
// connection draws its local port from too: between the probe and the
// daemon's bind, a client connection of any process on the machine could
// take it, and did (a cluster node of the integration tests failed to
// start with "address already in use"). Outside that range only an
// explicit bind takes a port. Not handing a port out twice matters for a
// test that takes several before its daemon binds any (extra listeners
// next to "{port}"). When the ephemeral range leaves no room, the kernel
// picks (bind to port 0), as before.
func FreePortOn(host string) (int, error) {
	freePorts.mu.Lock()
	defer freePorts.mu.Unlock()
	lo, hi := ephemeralRange()
	for range freePortAttempts {
		port, ok := randomNonEphemeralPort(lo, hi) // port 0 when !ok: the kernel picks
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			if ok {
				continue // held by someone: try another
			}
			return 0, err
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		if freePorts.given[port] {
			continue
		}
		if len(freePorts.order) == freePortsRecent {
			delete(freePorts.given, freePorts.order[0])
			freePorts.order = freePorts.order[1:]
		}
		freePorts.given[port] = true
		freePorts.order = append(freePorts.order, port)
		return port, nil
	}
	return 0, fmt.Errorf("daemontest: no free port on %s not handed out recently after %d tries", host, freePortAttempts)
}

// Ports FreePortOn picks from, less the ephemeral range: above the
// well-known and registered ports most services use by default.
const freePortLow, freePortHigh = 10000, 65535

// ephemeralRange returns the kernel's range of local ports for outgoing
// connections (Linux's default when the file cannot be read).
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l > h {
		return lo, hi
	}
	return l, h
}

// randomNonEphemeralPort picks a port in [freePortLow, freePortHigh] outside
// [lo, hi]; ok is false when there is none.
func randomNonEphemeralPort(lo, hi int) (port int, ok bool) {
	below := max(0, min(lo, freePortHigh+1)-freePortLow) // [freePortLow, lo)
	above := max(0, freePortHigh-max(hi, freePortLow-1)) // (hi, freePortHigh]
	n := below + above
	if n == 0 {
		return 0, false
	}
	k := rand.IntN(n)
	if k < below {
		return freePortLow + k, true
	}
	return max(hi, freePortLow-1) + 1 + (k - below), true
}

// freePorts remembers the last freePortsRecent ports FreePort handed out.
var freePorts = struct {
	mu    sync.Mutex
	given map[int]bool
	order []int
}{given: map[int]bool{}}

const (
	freePortsRecent  = 4096
	freePortAttempts = 1000
)

// FreeAddr is FreePort as "127.0.0.1:PORT".
func FreeAddr() (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// ModuleRoot is the directory holding go.mod, found by walking up from the
// working directory (a test runs in its package's directory).
func ModuleRoot() (string, error) {
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

// Build runs `go build -o out flags... pkg` in the module root.
func Build(ctx context.Context, pkg, out string, flags ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, bytes.TrimSpace(output))
	}
	return nil
}

// Binary is the ringbrokerd a test package runs against, for its TestMain:
// the prebuilt binary the environment variable prebuiltEnv names, or else
// DaemonPackage built into a new temporary directory with the extra go
// build flags in the environment variable buildFlagsEnv ("-race", "-tags
// invariants"). cleanup removes what was built; prebuilt says which.
func Binary(prebuiltEnv, buildFlagsEnv string) (path string, prebuilt bool, cleanup func(), err error) {
	if p := os.Getenv(prebuiltEnv); p != "" {
		return p, true, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "ringbrokerd-test-")
	if err != nil {
		return "", false, nil, err
	}
	path = filepath.Join(dir, "ringbrokerd")
	if err := Build(context.Background(), DaemonPackage, path, strings.Fields(os.Getenv(buildFlagsEnv))...); err != nil {
		os.RemoveAll(dir)
		return "", false, nil, err
	}
	return path, false, func() { os.RemoveAll(dir) }, nil
}

// ConfigText renders server.properties: header as a comment line, then
// key=value in key order.
func ConfigText(header string, conf map[string]string) string {
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var text strings.Builder
	if header != "" {
		fmt.Fprintf(&text, "# %s\n", header)
	}
	for _, k := range keys {
		fmt.Fprintf(&text, "%s=%s\n", k, conf[k])
	}
	return text.String()
}

// Options says how to start one process.
type Options struct {
	// Argv is the command: the binary, then its arguments. "{port}" in an
	// argument is replaced by the port.
	Argv []string
	// Port is the port the process is told to listen on ("{port}"); 0
	// picks a free one.
	Port int
	// Config, when not nil, is written to ConfigPath as server.properties
	// (ConfigHeader as its first comment line, "{port}" replaced in the
	// values) and "--config ConfigPath" is added to Argv.
	Config       map[string]string
	ConfigPath   string
	ConfigHeader string
	// WaitFree are addresses ("host:port") a previous incarnation of the
	// process listened on: Start waits, bounded by WaitFreeTimeout, until
	// each can be bound again (WaitBindable) before it starts the process.
	WaitFree []string
	// Dir is the process's working directory ("": the caller's).
	Dir string
	// Env is added to the caller's environment.
	Env []string
	// LogFile, when set, receives the process's stdout and stderr;
	// otherwise they are kept in memory, up to OutputBytesMax bytes
	// (0: the package's OutputBytesMax).
	LogFile        string
	OutputBytesMax int
	// OwnProcessGroup starts the process in a process group of its own
	// (a Ctrl-C on a harness program reaches it anyway; signals are
	// still sent to its PID alone).
	OwnProcessGroup bool
}

// Daemon is one started process.
type Daemon struct {
	// Addr is "127.0.0.1:Port".
	Addr string
	Port int
	// PID is the process id; every signal goes to it alone.
	PID int
	// Config is the server.properties text written ("" when none).
	Config string

	cmd     *exec.Cmd
	output  *OutputBuffer // nil with a LogFile
	logFile string
	exited  chan struct{} // closed when cmd.Wait returned
	waitErr error         // cmd.Wait's result, written before exited is closed
}

// WaitFreeTimeout bounds Start's wait for Options.WaitFree.
const WaitFreeTimeout = 10 * time.Second

// WaitBindable waits until each of addrs can be bound by a plain TCP
// listener with SO_REUSEADDR, as ringbrokerd binds its own (opened and
// closed at once), or bound passes. A process killed with SIGKILL keeps its
// listening sockets for a few milliseconds after it has been reaped: the
// io_uring requests still armed on them (a multishot accept) hold them until
// the ring's asynchronous teardown ends, 4 to 9 ms here, and a restart that
// binds in that window fails with EADDRINUSE.
func WaitBindable(addrs []string, bound time.Duration) error {
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(false)
	deadline := time.Now().Add(bound)
	for _, a := range addrs {
		for {
			ln, err := lc.Listen(context.Background(), "tcp", a)
			if err == nil {
				ln.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("daemontest: %s still in use %v after the previous process: %w", a, bound, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

// Start starts the process. It does not wait for it to be ready (the
// caller registers its cleanup first, then calls WaitReady).
func Start(o Options) (*Daemon, error) {
	if len(o.Argv) == 0 {
		return nil, errors.New("daemontest: empty Argv")
	}
	if len(o.WaitFree) > 0 {
		if err := WaitBindable(o.WaitFree, WaitFreeTimeout); err != nil {
			return nil, err
		}
	}
	port := o.Port
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	ps := strconv.Itoa(port)
	d := &Daemon{Addr: net.JoinHostPort("127.0.0.1", ps), Port: port, exited: make(chan struct{})}
	args := make([]string, len(o.Argv))
	for i, a := range o.Argv {
		args[i] = strings.ReplaceAll(a, "{port}", ps)
	}
	if o.Config != nil {
		if o.ConfigPath == "" {
			return nil, errors.New("daemontest: Config without ConfigPath")
		}
		conf := make(map[string]string, len(o.Config))
		for k, v := range o.Config {
			conf[k] = strings.ReplaceAll(v, "{port}", ps)
		}
		d.Config = ConfigText(o.ConfigHeader, conf)
		if err := os.WriteFile(o.ConfigPath, []byte(d.Config), 0o644); err != nil {
			return nil, err
		}
		args = append(args, "--config", o.ConfigPath)
	}
	d.cmd = exec.Command(args[0], args[1:]...)
	d.cmd.Dir = o.Dir
	if len(o.Env) > 0 {
		d.cmd.Env = append(os.Environ(), o.Env...)
	}
	if o.OwnProcessGroup {
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	var logf *os.File
	if o.LogFile != "" {
		var err error
		if logf, err = os.Create(o.LogFile); err != nil {
			return nil, err
		}
		defer logf.Close() // the child holds its own descriptor
		d.logFile = o.LogFile
		d.cmd.Stdout, d.cmd.Stderr = logf, logf
	} else {
		d.output = NewOutputBuffer(orDefault(o.OutputBytesMax, OutputBytesMax))
		d.cmd.Stdout, d.cmd.Stderr = d.output, d.output
	}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	d.PID = d.cmd.Process.Pid
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// readyPoll is how often WaitReady probes.
const readyPoll = 30 * time.Millisecond

// WaitReady probes the process until probe succeeds (nil: ProbeApiVersions
// with a one-second bound), the process exits, or timeout passes.
func (d *Daemon) WaitReady(timeout time.Duration, probe func(addr string) error) error {
	if probe == nil {
		probe = func(addr string) error { return ProbeApiVersions(addr, time.Second) }
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if !d.Alive() {
			return fmt.Errorf("daemon exited early: %v", d.waitErr)
		}
		if last = probe(d.Addr); last == nil {
			return nil
		}
		select {
		case <-d.exited:
		case <-time.After(readyPoll):
		}
	}
	return fmt.Errorf("no ApiVersions answer on %s within %v; last attempt: %v", d.Addr, timeout, last)
}

// ProbeApiVersions does one ApiVersions round trip through franz-go and
// checks its error code.
func ProbeApiVersions(addr string, timeout time.Duration) error {
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
	req.ClientSoftwareName, req.ClientSoftwareVersion = "daemontest", "0"
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		return fmt.Errorf("ApiVersions error code %d", resp.ErrorCode)
	}
	return nil
}

// Exited is closed once the process has exited and been reaped.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// WaitErr is the process's exit (cmd.Wait's error); valid once Exited is
// closed.
func (d *Daemon) WaitErr() error {
	select {
	case <-d.exited:
		return d.waitErr
	default:
		return nil
	}
}

// Alive reports whether the process is still running.
func (d *Daemon) Alive() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// ErrAlreadyExited: Stop or Kill found the process gone before signalling.
var ErrAlreadyExited = errors.New("had already exited")

// Stop sends SIGTERM and waits up to timeout for the process to exit with
// status 0; one still running then is SIGKILLed. It returns how long the
// exit took and an error when the process was already gone
// (ErrAlreadyExited), had to be killed, or exited with another status.
func (d *Daemon) Stop(timeout time.Duration) (time.Duration, error) {
	if !d.Alive() {
		return 0, fmt.Errorf("pid %d %w before SIGTERM: %v", d.PID, ErrAlreadyExited, d.waitErr)
	}
	start := time.Now()
	if err := syscall.Kill(d.PID, syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("SIGTERM to pid %d: %w", d.PID, err)
	}
	select {
	case <-d.exited:
		took := time.Since(start)
		if d.waitErr != nil {
			return took, fmt.Errorf("exit after SIGTERM: %v (want status 0)", d.waitErr)
		}
		return took, nil
	case <-time.After(timeout):
		_ = syscall.Kill(d.PID, syscall.SIGKILL)
		<-d.exited
		return time.Since(start), fmt.Errorf("pid %d still running %v after SIGTERM; sent SIGKILL", d.PID, timeout)
	}
}

// Kill sends SIGKILL and waits up to timeout for the process to be reaped.
func (d *Daemon) Kill(timeout time.Duration) error {
	if !d.Alive() {
		return fmt.Errorf("pid %d %w: %v", d.PID, ErrAlreadyExited, d.waitErr)
	}
	if err := syscall.Kill(d.PID, syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-d.exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("pid %d survived SIGKILL for %v", d.PID, timeout)
	}
}

// Logs is everything the process wrote to stdout and stderr so far.
func (d *Daemon) Logs() string {
	if d.output != nil {
		return d.output.String()
	}
	b, err := os.ReadFile(d.logFile)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", d.logFile, err)
	}
	return string(b)
}

// LogLen is the number of output bytes captured so far, for LogsSince.
func (d *Daemon) LogLen() int {
	if d.output != nil {
		return d.output.Len()
	}
	return len(d.Logs())
}

// LogsSince is the output written after LogLen returned offset.
func (d *Daemon) LogsSince(offset int) string {
	s := d.Logs()
	if offset > len(s) {
		return ""
	}
	return s[offset:]
}

// ClockTicksPerSecond is USER_HZ, the unit of /proc/PID/stat's CPU times:
// 100 on every Linux this runs on.
const ClockTicksPerSecond = 100

// CPUTicks is the user plus system CPU time process pid has used, in
// clock ticks (/proc/PID/stat fields 14 and 15).
func CPUTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count fields after ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 > len(data) {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(data[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return utime + stime, nil
}

// CPUTime is the CPU time (user plus system) the process has used.
func (d *Daemon) CPUTime() (time.Duration, error) {
	ticks, err := CPUTicks(d.PID)
	return time.Duration(ticks) * time.Second / ClockTicksPerSecond, err
}

// RSS is the process's resident set size in bytes (VmRSS in
// /proc/PID/status).
func (d *Daemon) RSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.PID))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest) // "12345 kB"
			if len(fields) != 2 || fields[1] != "kB" {
				return 0, fmt.Errorf("unexpected VmRSS line %q", line)
			}
			kib, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kib << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// CrashReport is the start of a Go runtime crash report in out (the
// reason and the crashing goroutine), or "".
func CrashReport(out string) string {
	for _, marker := range []string{"panic: ", "fatal error: ", "unexpected fault", "unexpected signal", "SIGBUS", "SIGSEGV"} {
		if i := strings.Index(out, marker); i >= 0 {
			return out[max(i-512, 0):min(i+4096, len(out))]
		}
	}
	return ""
}

// Tail is the last n bytes of s, marked when cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "[...]" + s[len(s)-n:]
	}
	return s
}

// OutputBuffer is a goroutine-safe output sink that keeps at most max
// bytes and then only counts what it dropped.
type OutputBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped int64
}

// NewOutputBuffer returns an OutputBuffer keeping at most max bytes.
func NewOutputBuffer(max int) *OutputBuffer { return &OutputBuffer{max: max} }

// Write keeps what fits and counts the rest; it never fails.
func (c *OutputBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room < len(p) {
		c.buf.Write(p[:max(room, 0)])
		c.dropped += int64(len(p) - max(room, 0))
		return len(p), nil
	}
	c.buf.Write(p)
	return len(p), nil
}

// String is what was kept, and a line saying how much was dropped.
func (c *OutputBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped > 0 {
		return c.buf.String() + fmt.Sprintf("\n[... %d more bytes of output dropped]\n", c.dropped)
	}
	return c.buf.String()
}

// Len is the number of bytes kept.
func (c *OutputBuffer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Len()
}
