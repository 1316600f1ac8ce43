//go:build linux

package tuning

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRealHost runs the real checks on this machine. It asserts what the
// project's test machines are known to have: an
// ext4 disk, vm.swappiness 60, virtio eth0 with offloads on, and usable
// io_uring; each assertion is tied to the fact it depends on, so a
// different host fails only where the checker would be wrong.
func TestRealHost(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skip("no /proc/self/mountinfo:", err)
	}
	dir := t.TempDir()
	cwd, _ := os.Getwd()
	r := Run(Options{
		LogDirs:      []string{cwd + "/no-such-log-dir", dir},
		ListenAddrs:  []string{"127.0.0.1:9092", "0.0.0.0:9093"},
		MemlockBytes: 4 << 20,
	})
	for _, f := range r.Findings {
		t.Logf("%-8s %-32s %-18s %s", f.Severity, f.ID, f.Subject, f.Found)
	}
	t.Log(r.Summary())

	fsType := find(r, "fs.type", cwd+"/no-such-log-dir")
	if strings.HasPrefix(fsType.Found, "ext4") && fsType.Severity != Warning {
		t.Errorf("ext4 log dir graded %s, want warning", fsType.Severity)
	}
	if !strings.Contains(fsType.Found, "does not exist yet") {
		t.Errorf("missing log dir not reported as such: %q", fsType.Found)
	}
	if f := find(r, "fs.writable", dir); f.Severity != OK {
		t.Errorf("temp dir not writable: %+v", f)
	}

	if b, err := os.ReadFile("/proc/sys/vm/swappiness"); err == nil && strings.TrimSpace(string(b)) == "60" {
		if f := find(r, "vm.swappiness", ""); f.Severity != Warning || f.Found != "60" {
			t.Errorf("swappiness 60 graded %+v", f)
		}
	}

	if _, err := os.Stat("/sys/class/net/eth0"); err == nil {
		for _, o := range offloads {
			f := find(r, o.id, "eth0")
			if !hasPrefixAny(f.Found, "on", "off") {
				t.Errorf("%s on eth0 not read through SIOCETHTOOL: %+v", o.id, f)
			}
		}
	}
	for _, o := range offloads {
		if f := find(r, o.id, "lo"); !hasPrefixAny(f.Found, "on", "off", "not supported") {
			t.Errorf("%s on lo not read: %+v", o.id, f)
		}
	}

	if b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled"); err == nil && strings.TrimSpace(string(b)) == "0" {
		if r.IOBackend != "uring" {
			t.Errorf("io_uring allowed by sysctl but backend %s: %s", r.IOBackend, r.IOBackendReason)
		}
		if f := find(r, "io_uring.opcodes", ""); f.Severity != OK {
			t.Errorf("opcodes: %+v", f)
		}
	}
	// On the project's machines (ext4, swappiness 60, io_uring allowed) the
	// issue expects check-host to exit 1: warnings, nothing fatal.
	swap, _ := os.ReadFile("/proc/sys/vm/swappiness")
	if strings.HasPrefix(fsType.Found, "ext4") && strings.TrimSpace(string(swap)) == "60" && r.IOBackend == "uring" {
		if r.ExitCode() != 1 {
			t.Errorf("exit code %d on this machine, want 1: %s", r.ExitCode(), r.Summary())
		}
	} else if code := r.ExitCode(); code < 0 || code > 2 {
		t.Errorf("exit code %d", code)
	}
}

// TestRingTrialUnderLoweredMemlock runs the check in a child process (this
// test binary again) under a lowered RLIMIT_MEMLOCK, without CAP_IPC_LOCK
// (which would exempt it from the limit), as a unit without LimitMEMLOCK
// runs the broker: at 64 KiB the broker's rings cannot be set up (one probe
// ring still can), so limits.memlock must be fatal and io_uring.rings a
// warning; under the host's own limit (8 MiB by default) both are ok.
func TestRingTrialUnderLoweredMemlock(t *testing.T) {
	if out := os.Getenv("RINGBROKER_TUNING_CHILD_OUT"); out != "" {
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := Run(Options{Rings: daemonRings}).WriteJSON(f); err != nil {
			t.Fatal(err)
		}
		return
	}
	// The roomy case uses the current hard limit (raising it needs
	// CAP_SYS_RESOURCE), at most 64 MiB; the 8 MiB default holds the rings.
	var hard unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &hard); err != nil {
		t.Fatal(err)
	}
	roomy := min(hard.Max, 64<<20)
	for _, tc := range []struct {
		limit              uint64
		memlock, ringsWant Severity
	}{
		{64 << 10, Fatal, Warning},
		{roomy, OK, OK},
	} {
		// The kernel charges ring memory to the user, not the process, and
		// releases a ring's charge asynchronously after its process exits:
		// the previous child's rings can still count for a moment. Run the
		// child again (bounded) while even the probe ring cannot be set up.
		var r *Report
		for deadline := time.Now().Add(15 * time.Second); ; {
			r = runTrialChild(t, tc.limit)
			if find(r, "io_uring.setup", "").Severity == OK || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		m, rings, setup := find(r, "limits.memlock", ""), find(r, "io_uring.rings", ""), find(r, "io_uring.setup", "")
		t.Logf("memlock %d: %s %s | %s %s | io_uring.setup %s", tc.limit, m.Severity, m.Found, rings.Severity, rings.Found, setup.Severity)
		if setup.Severity != OK {
			t.Fatalf("memlock %d: the probe ring itself failed (%s), so this host cannot show the difference", tc.limit, setup.Found)
		}
		if m.Severity != tc.memlock || rings.Severity != tc.ringsWant {
			t.Errorf("memlock %d: limits.memlock %s, io_uring.rings %s; want %s, %s", tc.limit, m.Severity, rings.Severity, tc.memlock, tc.ringsWant)
		}
	}
}

// runTrialChild runs this test binary under prlimit with RLIMIT_MEMLOCK at
// limit (and without CAP_IPC_LOCK when root) and returns its report.
func runTrialChild(t *testing.T, limit uint64) *Report {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	args := []string{fmt.Sprintf("--memlock=%d:%d", limit, limit)}
	if os.Geteuid() == 0 {
		// Root has CAP_IPC_LOCK: drop it, or the limit is not enforced.
		args = append(args, "setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock")
	}
	args = append(args, os.Args[0], "-test.run=^TestRingTrialUnderLoweredMemlock$", "-test.count=1")
	cmd := exec.Command("prlimit", args...)
	cmd.Env = append(os.Environ(), "RINGBROKER_TUNING_CHILD_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child under memlock %d: %v\n%s", limit, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Findings []Finding `json:"findings"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return &Report{Findings: doc.Findings}
}
