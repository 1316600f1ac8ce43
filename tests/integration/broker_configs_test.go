package integration

import (
	"context"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// Every broker config DescribeConfigs reports is a key the daemon accepts:
// ringbrokerd --set key=value takes each reported key with its reported
// value. (The broker defaults of stored-only topic keys, log.cleaner.* and
// log.preallocate among them, were once reported and refused; both lists
// now come from the config package's one key table.) append.pending.max.bytes was once reported
// and refused by --set ("unknown key"). A value set in server.properties is
// the value reported.
func TestBrokerConfigsReportedAreSettable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		const pending = "2097152"
		b := startBroker(t, backend, map[string]string{"append.pending.max.bytes": pending})
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		rcs, err := newAdmin(t, b.Addr).DescribeBrokerConfigs(ctx, 0)
		if err != nil {
			t.Fatalf("DescribeConfigs (broker): %v", err)
		}
		if len(rcs) != 1 || rcs[0].Err != nil {
			t.Fatalf("DescribeConfigs (broker): %d resources, err %v", len(rcs), rcs)
		}
		reported := map[string]string{}
		for _, c := range rcs[0].Configs {
			if c.Value != nil {
				reported[c.Key] = *c.Value
			}
		}
		if got := reported["append.pending.max.bytes"]; got != pending {
			t.Errorf("DescribeConfigs append.pending.max.bytes = %q, want %q (set in server.properties)", got, pending)
		}

		keys := make([]string, 0, len(reported))
		for k := range reported {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		args := []string{"--print-config"}
		for _, k := range keys {
			args = append(args, "--set", k+"="+reported[k])
		}
		out, err := exec.CommandContext(ctx, daemonPath, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ringbrokerd %s: %v (a key DescribeConfigs reports is refused by --set)\n%s", strings.Join(args, " "), err, out)
		}
		if want := "append.pending.max.bytes=" + pending; !strings.Contains(string(out), want) {
			t.Errorf("--print-config after --set %s does not show it:\n%s", want, out)
		}
		if len(keys) < 10 {
			t.Errorf("DescribeConfigs reported only %d broker configs: %v", len(keys), keys)
		}
	})
}
