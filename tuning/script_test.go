package tuning

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckHostScript runs scripts/check-host.sh against a stand-in
// ringbrokerd: the arguments reach `check-host` and the exit status (0, 1,
// 2) comes back unchanged; a missing binary is 127.
func TestCheckHostScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script, _ := filepath.Abs("../scripts/check-host.sh")
	if _, err := os.Stat(script); err != nil {
		t.Skip("no scripts/check-host.sh")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "ringbrokerd")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"args: $*\"\nexit \"$FAKE_EXIT\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(bash, append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		var exitErr *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &exitErr):
			return string(out), exitErr.ExitCode()
		}
		t.Fatal(err)
		return "", -1
	}
	for _, code := range []string{"0", "1", "2"} {
		out, got := run([]string{"RINGBROKERD=" + fake, "FAKE_EXIT=" + code}, "--json", "--config", "/etc/ringbroker/server.properties")
		if strings.TrimSpace(out) != "args: check-host --json --config /etc/ringbroker/server.properties" {
			t.Errorf("stand-in got %q", out)
		}
		if want := int(code[0] - '0'); got != want {
			t.Errorf("exit %d, want %d", got, want)
		}
	}
	if _, got := run([]string{"RINGBROKERD=" + filepath.Join(dir, "missing")}); got != 127 {
		t.Errorf("missing binary: exit %d, want 127", got)
	}
}
