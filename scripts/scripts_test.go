// Package scripts holds the deployment files (systemd unit, installer, example
// server.properties, host-check wrapper); this test file drives them.
package scripts

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ringbroker/ringbroker/config"
)

// fakeBinary writes an executable shell script standing in for ringbrokerd
// (the installer only copies it; building the real binary would cost seconds).
func fakeBinary(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ringbrokerd")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func runInstall(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"./install.sh"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// treeState records every path under root with its mode, size, mtime and
// content hash: equal states mean nothing was written, re-moded or touched.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		desc := fmt.Sprintf("%v %d %d", info.Mode(), info.Size(), info.ModTime().UnixNano())
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		state[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func TestInstallPrefixLayoutAndIdempotence(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "root")
	bin := fakeBinary(t, "exit 0")
	first := runInstall(t, "--prefix", prefix, "--binary", bin)

	want := map[string]os.FileMode{
		"usr/local/bin/ringbrokerd":              0o755,
		"etc/ringbroker/server.properties":       0o644,
		"etc/systemd/system/ringbrokerd.service": 0o644,
		"var/lib/ringbroker":                     os.ModeDir | 0o750,
		"etc/ringbroker":                         os.ModeDir | 0o755,
	}
	for rel, mode := range want {
		info, err := os.Stat(filepath.Join(prefix, rel))
		if err != nil {
			t.Fatalf("%s missing after install: %v\n%s", rel, err, first)
		}
		if info.Mode() != mode {
			t.Errorf("%s mode %v, want %v", rel, info.Mode(), mode)
		}
	}
	for src, dst := range map[string]string{
		bin:                   "usr/local/bin/ringbrokerd",
		"server.properties":   "etc/ringbroker/server.properties",
		"ringbrokerd.service": "etc/systemd/system/ringbrokerd.service",
	} {
		a, _ := os.ReadFile(src)
		b, _ := os.ReadFile(filepath.Join(prefix, dst))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("%s is not a copy of %s", dst, src)
		}
	}
	for _, line := range []string{"user ringbroker", "systemctl"} {
		if !strings.Contains(first, line) || !strings.Contains(first[strings.Index(first, line):], "skipped (--prefix)") {
			t.Errorf("first run should report %q as skipped:\n%s", line, first)
		}
	}

	before := treeState(t, prefix)
	second := runInstall(t, "--prefix", prefix, "--binary", bin)
	if after := treeState(t, prefix); !reflect.DeepEqual(before, after) {
		t.Errorf("second run changed the tree:\nbefore %v\nafter  %v", before, after)
	}
	for _, line := range strings.Split(strings.TrimSpace(second), "\n") {
		if !strings.Contains(line, "unchanged") && !strings.Contains(line, "skipped") {
			t.Errorf("second run reported a change: %q", line)
		}
	}

	// An operator's config survives; a new binary is installed.
	conf := filepath.Join(prefix, "etc/ringbroker/server.properties")
	if err := os.WriteFile(conf, []byte("node.id=7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	newBin := fakeBinary(t, "exit 1")
	third := runInstall(t, "--prefix", prefix, "--binary", newBin)
	if data, _ := os.ReadFile(conf); string(data) != "node.id=7\n" {
		t.Errorf("existing config overwritten: %q", data)
	}
	if !strings.Contains(third, "existing config kept") || !regexpLine(third, "usr/local/bin/ringbrokerd", "updated") {
		t.Errorf("third run:\n%s", third)
	}
}

// regexpLine reports whether some line of out holds both a and b.
func regexpLine(out, a, b string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, a) && strings.Contains(l, b) {
			return true
		}
	}
	return false
}

func TestInstallRefusesBadBinary(t *testing.T) {
	cmd := exec.Command("bash", "./install.sh", "--prefix", t.TempDir(), "--binary", "/nonexistent/ringbrokerd")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not an executable file") {
		t.Fatalf("err %v out %s", err, out)
	}
	if out, err := exec.Command("bash", "./install.sh", "--bogus").CombinedOutput(); err == nil || !strings.Contains(string(out), "usage") {
		t.Fatalf("err %v out %s", err, out)
	}
}

// TestExampleConfig loads scripts/server.properties with the real parser and
// checks it agrees with the unit's writable paths.
func TestExampleConfig(t *testing.T) {
	c, warnings, err := config.Load("server.properties")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("example config warns: %v", warnings)
	}
	unit, err := os.ReadFile("ringbrokerd.service")
	if err != nil {
		t.Fatal(err)
	}
	writable := unitValues(string(unit), "ReadWritePaths")
	for _, d := range c.LogDirs {
		ok := slices.ContainsFunc(writable, func(w string) bool { return d == w || strings.HasPrefix(d, w+"/") })
		if !ok {
			t.Errorf("log dir %s is not under the unit's ReadWritePaths %v", d, writable)
		}
	}
	if c.MetricsListener != "127.0.0.1:9644" || c.MetricsPprofEnable {
		t.Errorf("metrics: %q pprof=%v", c.MetricsListener, c.MetricsPprofEnable)
	}
}

// unitValues returns the whitespace-separated values of every key= line.
func unitValues(unit, key string) []string {
	var vals []string
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+"="); ok {
			vals = append(vals, strings.Fields(v)...)
		}
	}
	return vals
}

func unitLine(t *testing.T, unit, key string) string {
	t.Helper()
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	t.Fatalf("unit has no %s= line", key)
	return ""
}

func TestUnitContents(t *testing.T) {
	data, err := os.ReadFile("ringbrokerd.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for key, want := range map[string]string{
		"Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30", "User": "ringbroker",
		"ExecStart":   "/usr/local/bin/ringbrokerd --config /etc/ringbroker/server.properties",
		"LimitNOFILE": "1048576", "LimitMEMLOCK": "infinity", "Restart": "on-failure",
		"ProtectSystem": "strict", "ReadWritePaths": "/var/lib/ringbroker", "NoNewPrivileges": "yes",
		"ProtectHome": "yes", "PrivateTmp": "yes", "TimeoutStopSec": "60",
		"WantedBy": "multi-user.target",
	} {
		if got := unitLine(t, unit, key); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	for _, l := range strings.Split(unit, "\n") {
		if strings.HasPrefix(l, "SystemCallFilter=") || strings.HasPrefix(l, "ProcSubset=") {
			t.Errorf("%q would break io_uring or check-host", l)
		}
	}
	if fams := unitValues(unit, "RestrictAddressFamilies"); !slices.Contains(fams, "AF_UNIX") || !slices.Contains(fams, "AF_INET6") {
		t.Errorf("RestrictAddressFamilies %v lacks AF_UNIX (sd_notify) or AF_INET6", fams)
	}
}

// TestUnitCheckHostGate runs the unit's ExecStartPre command, as systemd
// would after unescaping $$, against fake ringbrokerd binaries: check-host
// exit 0 and 1 must let the start proceed, 2 (and a missing binary) stop it.
func TestUnitCheckHostGate(t *testing.T) {
	data, err := os.ReadFile("ringbrokerd.service")
	if err != nil {
		t.Fatal(err)
	}
	pre := unitLine(t, string(data), "ExecStartPre")
	const shPrefix = "/bin/sh -c '"
	if !strings.HasPrefix(pre, shPrefix) || !strings.HasSuffix(pre, "'") {
		t.Fatalf("ExecStartPre is not /bin/sh -c '...': %s", pre)
	}
	script := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(pre, shPrefix), "'"), "$$", "$")
	if !strings.Contains(script, "/usr/local/bin/ringbrokerd check-host --config /etc/ringbroker/server.properties") {
		t.Fatalf("ExecStartPre does not run check-host: %s", script)
	}
	for _, tc := range []struct{ checkExit, wantExit int }{{0, 0}, {1, 0}, {2, 2}, {127, 127}} {
		fake := fakeBinary(t, fmt.Sprintf("echo report; exit %d", tc.checkExit))
		s := strings.ReplaceAll(script, "/usr/local/bin/ringbrokerd", fake)
		out, err := exec.Command("/bin/sh", "-c", s).CombinedOutput()
		got := 0
		if ee, ok := err.(*exec.ExitError); ok {
			got = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got != tc.wantExit {
			t.Errorf("check-host exit %d: gate exit %d, want %d (%s)", tc.checkExit, got, tc.wantExit, out)
		}
		if tc.wantExit != 0 && !strings.Contains(string(out), "not starting") {
			t.Errorf("check-host exit %d: no explanation in %q", tc.checkExit, out)
		}
	}
}

// TestSystemdAnalyzeVerify runs `systemd-analyze verify` on the unit. verify
// fails when ExecStart's binary does not exist, and this machine has no
// /usr/local/bin/ringbrokerd, so the test installs into a prefix and verifies
// a copy of the unit whose /usr/local/bin/ringbrokerd is rewritten to the
// installed binary in that prefix; nothing else in the unit is changed.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package: systemd; scripts/install-test-deps.sh installs it)")
	}
	prefix := filepath.Join(t.TempDir(), "root")
	runInstall(t, "--prefix", prefix, "--binary", fakeBinary(t, "exit 0"))
	installed, err := os.ReadFile(filepath.Join(prefix, "etc/systemd/system/ringbrokerd.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(installed), "/usr/local/bin/ringbrokerd", filepath.Join(prefix, "usr/local/bin/ringbrokerd"))
	dir := t.TempDir()
	path := filepath.Join(dir, "ringbrokerd.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// And the unmodified unit fails only for the missing binary, nothing else.
	out, _ = exec.Command(analyze, "verify", "./ringbrokerd.service").CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.Contains(l, "/usr/local/bin/ringbrokerd is not executable") {
			t.Errorf("unexpected verify finding on the shipped unit: %s", l)
		}
	}
}

// TestInstallAsRootInMountNamespace runs the real (no --prefix) install path:
// useradd, chown, /usr/local/bin, /etc, twice, inside a private mount
// namespace where /etc is a bind-mounted copy and /usr/local/bin and /var/lib
// are tmpfs, so the host is never touched. Needs root and unshare(1).
func TestInstallAsRootInMountNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare(1) not installed")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd not installed")
	}
	hostHadUser := exec.Command("getent", "passwd", "ringbroker").Run() == nil
	etcCopy := filepath.Join(t.TempDir(), "etc")
	if out, err := exec.Command("cp", "-a", "/etc/.", etcCopy+"/").CombinedOutput(); err != nil {
		t.Fatalf("copy /etc: %v %s", err, out)
	}
	bin := fakeBinary(t, "exit 0")
	// Every mount must succeed before install.sh runs (set -e), and the
	// namespace's mounts are private, so nothing leaks to the host.
	script := fmt.Sprintf(`set -e
mount --make-rprivate /
mount --bind %q /etc
mount -t tmpfs tmpfs /usr/local/bin
mount -t tmpfs tmpfs /var/lib
./install.sh --binary %q
echo ---
./install.sh --binary %q
echo ---
getent passwd ringbroker
stat -c '%%U:%%G %%a' /var/lib/ringbroker
`, etcCopy, bin, bin)
	out, err := exec.Command(unshare, "--mount", "--propagation", "private", "bash", "-c", script).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Operation not permitted") || strings.Contains(string(out), "unshare failed") {
			t.Skipf("no mount namespaces here: %s", out)
		}
		t.Fatalf("%v\n%s", err, out)
	}
	parts := strings.Split(string(out), "---\n")
	if len(parts) != 3 {
		t.Fatalf("output:\n%s", out)
	}
	if !hostHadUser && !regexpLine(parts[0], "user ringbroker", "created") || !regexpLine(parts[0], "/usr/local/bin/ringbrokerd", "created") {
		t.Errorf("first run:\n%s", parts[0])
	}
	for _, line := range strings.Split(strings.TrimSpace(parts[1]), "\n") {
		if !strings.Contains(line, "unchanged") && !strings.Contains(line, "skipped") && !strings.HasPrefix(line, "start it with") {
			t.Errorf("second run reported a change: %q", line)
		}
	}
	if !strings.Contains(parts[2], "ringbroker:x:") || !strings.Contains(parts[2], "ringbroker:ringbroker 750") {
		t.Errorf("user/data dir: %s", parts[2])
	}
	if data, _ := os.ReadFile("/etc/passwd"); !hostHadUser && strings.Contains(string(data), "\nringbroker:") {
		t.Error("host /etc/passwd was modified")
	}
}

// TestInstallClusterNode: with --node-id, --voters and --cluster-id the
// installer writes a cluster node's config that the real parser accepts as
// such; a node missing from the voters or a partial set of flags is refused
// before anything is written.
func TestInstallClusterNode(t *testing.T) {
	prefix := t.TempDir()
	voters := "1@10.0.0.1:9093,2@10.0.0.2:9093,3@10.0.0.3:9093"
	cmd := exec.Command("bash", "./install.sh", "--prefix", prefix, "--binary", fakeBinary(t, "exit 0"),
		"--node-id", "2", "--voters", voters, "--cluster-id", "prod-1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	c, warnings, err := config.Load(filepath.Join(prefix, "etc/ringbroker/server.properties"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("cluster config warns: %v", warnings)
	}
	isBroker, isController := c.Roles()
	if !isBroker || !isController || c.NodeID != 2 || c.ClusterID != "prod-1" || len(c.QuorumVoters) != 3 {
		t.Errorf("roles %v/%v node %d cluster %q voters %v", isBroker, isController, c.NodeID, c.ClusterID, c.QuorumVoters)
	}
	if cl := c.ControllerListeners(); len(cl) != 1 || cl[0].Addr() != "10.0.0.2:9093" {
		t.Errorf("controller listener %v", cl)
	}
	if len(c.Listeners) != 1 || c.Listeners[0].Addr() != "10.0.0.2:9092" {
		t.Errorf("client listeners %v", c.Listeners)
	}
	for _, args := range [][]string{
		{"--node-id", "5", "--voters", voters, "--cluster-id", "x"},
		{"--node-id", "1", "--voters", voters},
		{"--node-id", "1", "--voters", "1@nohostport", "--cluster-id", "x"},
	} {
		empty := t.TempDir()
		out, err := exec.Command("bash", append([]string{"./install.sh", "--prefix", empty, "--binary", fakeBinary(t, "exit 0")}, args...)...).CombinedOutput()
		if err == nil {
			t.Errorf("%v accepted:\n%s", args, out)
		}
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Errorf("%v: a refused install wrote %d entries", args, len(ents))
		}
	}
}
