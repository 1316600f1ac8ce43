//go:build linux

package tuning

import (
	"os"
	"strings"
	"testing"
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
