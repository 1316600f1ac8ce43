//go:build linux && clusterfaults

package integration

// The network namespaces of the fault schedule (cluster_faults_test.go): three
// namespaces on a bridge in the root namespace, the qdisc a shaped link uses,
// and the three-node cluster run in them.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ---- the namespaces ---------------------------------------------------------

// netnsLab is three network namespaces rbt-<pid>-1..3, each with a veth pair
// (rbtv<pid>n<i> in the root namespace, eth0 inside) on the bridge rbtbr<pid> in
// the root namespace, which holds <subnet>.254/24 and so routes the test's
// clients to the nodes at <subnet>.1-3.
type netnsLab struct {
	pid    int
	subnet string
	bridge string
	ns     []string
	veth   []string // the root namespace's end of each node's veth pair
	// shaper is the tc qdisc of slow-link ("" when neither netem nor tbf
	// is available: the kind is skipped, shaperWhy says why).
	shaper    []string
	shaperWhy string
}

// runCmd runs a command to its end and returns its output in the error.
func runCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeStaleLabs removes the namespaces and links an earlier run left when it
// was killed before its cleanup ran: names with the pid of a process that no
// longer exists.
func removeStaleLabs(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		parts := strings.Split(f[0], "-")
		if len(parts) != 3 || parts[0] != "rbt" {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + parts[1]); err == nil {
			continue
		}
		t.Logf("removing namespace %s and links of an earlier run (pid %d is gone)", f[0], pid)
		_ = runCmd("ip", "link", "del", fmt.Sprintf("rbtv%dn%s", pid, parts[2]))
		_ = runCmd("ip", "link", "del", fmt.Sprintf("rbtbr%d", pid))
		_ = runCmd("ip", "netns", "del", f[0])
	}
}

// newNetnsLab makes the namespaces, the bridge and the veth pairs, and
// registers their removal (also when the test fails).
func newNetnsLab(t *testing.T) *netnsLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the fault schedule needs root (ip netns, ip link, tc, mount)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the fault schedule needs ip (iproute2)")
	}
	removeStaleLabs(t)
	removeStaleDisks(t)
	pid := os.Getpid()
	l := &netnsLab{pid: pid, subnet: fmt.Sprintf("10.213.%d", pid%250+1), bridge: fmt.Sprintf("rbtbr%d", pid)}
	if out, err := exec.Command("ip", "-4", "addr").Output(); err == nil && strings.Contains(string(out), " "+l.subnet+".") {
		t.Fatalf("subnet %s.0/24 is in use on this machine", l.subnet)
	}
	t.Cleanup(func() { l.remove(t) })
	must := func(args ...string) {
		t.Helper()
		if err := runCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	must("ip", "link", "add", l.bridge, "type", "bridge")
	must("ip", "addr", "add", l.subnet+".254/24", "dev", l.bridge)
	must("ip", "link", "set", l.bridge, "up")
	for i := 1; i <= 3; i++ {
		ns, veth := fmt.Sprintf("rbt-%d-%d", pid, i), fmt.Sprintf("rbtv%dn%d", pid, i)
		must("ip", "netns", "add", ns)
		l.ns = append(l.ns, ns)
		must("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		l.veth = append(l.veth, veth)
		must("ip", "link", "set", veth, "master", l.bridge, "up")
		must("ip", "-n", ns, "addr", "add", fmt.Sprintf("%s.%d/24", l.subnet, i), "dev", "eth0")
		must("ip", "-n", ns, "link", "set", "eth0", "up")
		must("ip", "-n", ns, "link", "set", "lo", "up")
	}
	l.pickShaper(t)
	t.Logf("namespaces %v on bridge %s (%s.0/24); slow-link: %s", l.ns, l.bridge, l.subnet, l.shaperWhy)
	return l
}

// pickShaper finds the qdisc slow-link uses: netem (delay and loss) when the
// kernel has it, else tbf (a rate limit whose short queue adds delay and drops
// the excess), tried on the first veth and removed again.
func (l *netnsLab) pickShaper(t *testing.T) {
	if _, err := exec.LookPath("tc"); err != nil {
		l.shaperWhy = "skipped: tc is not installed (iproute2)"
		return
	}
	var why []string
	for _, q := range [][]string{
		{"netem", "delay", "150ms", "50ms", "loss", "10%"},
		{"tbf", "rate", "128kbit", "burst", "8kb", "latency", "100ms"},
	} {
		err := runCmd(append([]string{"tc", "qdisc", "add", "dev", l.veth[0], "root"}, q...)...)
		if err == nil {
			_ = runCmd("tc", "qdisc", "del", "dev", l.veth[0], "root")
			l.shaper = q
			l.shaperWhy = "tc qdisc " + strings.Join(q, " ")
			if len(why) > 0 {
				l.shaperWhy += " (" + strings.Join(why, "; ") + ")"
			}
			return
		}
		why = append(why, fmt.Sprintf("%s unavailable: %v", q[0], err))
	}
	l.shaperWhy = "skipped: " + strings.Join(why, "; ")
}

// remove deletes what newNetnsLab made; deleting one end of a veth pair
// deletes both.
func (l *netnsLab) remove(t *testing.T) {
	for _, v := range l.veth {
		if err := runCmd("ip", "link", "del", v); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if err := runCmd("ip", "link", "del", l.bridge); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		t.Errorf("cleanup: %v", err)
	}
	for _, ns := range l.ns {
		if err := runCmd("ip", "netns", "del", ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// newNetnsCluster is newTestCluster with node i+1 in namespace lab.ns[i] at
// <subnet>.<i+1>, its daemon run under `ip netns exec`.
func newNetnsCluster(t *testing.T, backend string, lab *netnsLab, moreProps map[string]string) *testCluster {
	t.Helper()
	c := &testCluster{backend: backend, clusterID: "it-faults-" + backend,
		topics: map[string]int32{}, configs: map[string]map[string]string{}, ledger: map[string][]sentRecord{},
		moreProps: moreProps,
		wrap: func(n *clusterNode) []string {
			// The control file of slow-disk's fdatasync delay, read by a
			// daemon built with -tags faultinject (storage/faultinject.go).
			return []string{"ip", "netns", "exec", lab.ns[n.id-1], "env", syncDelayEnv + "=" + syncDelayFile(n)}
		}}
	var voters []string
	for i := 1; i <= 3; i++ {
		n := &clusterNode{id: int32(i), host: fmt.Sprintf("%s.%d", lab.subnet, i), port: faultsPort, ctlPort: faultsCtlPort,
			dir: t.TempDir() + "/data", confDir: t.TempDir()}
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.addr()), kgo.DialTimeout(2*time.Second), kgo.RequestRetries(0),
			kgo.RetryTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n.cl = cl
		c.nodes = append(c.nodes, n)
		voters = append(voters, fmt.Sprintf("%d@%s", n.id, n.ctlAddr()))
	}
	c.voters = strings.Join(voters, ",")
	// Each node's data dir is a filesystem of its own (full-disk fills
	// it), unmounted after the nodes stopped: registered before the
	// cluster's cleanup, which stops them, so it runs after it.
	for _, n := range c.nodes {
		mountNodeDisk(t, lab.pid, n)
	}
	t.Cleanup(func() { c.cleanup(t) })
	return c
}

// syncDelayEnv is storage.FaultInjectSyncDelayEnv (only compiled with -tags
// faultinject).
const syncDelayEnv = "RINGBROKER_FAULTINJECT_SYNC_DELAY_FILE"

// syncDelayFile is node n's slow-disk control file.
func syncDelayFile(n *clusterNode) string { return filepath.Join(n.confDir, "sync-delay") }

// faultsDiskBytes is the size of each node's data filesystem: far above what
// a schedule writes, and the bound of what full-disk's filler takes in RAM.
const faultsDiskBytes = 256 << 20

// diskSource is the source name of node id's tmpfs: removeStaleLabs finds a
// killed run's mounts by it.
func diskSource(pid int, id int32) string { return fmt.Sprintf("rbtdisk-%d-%d", pid, id) }

// mountNodeDisk mounts a tmpfs of faultsDiskBytes on n.dir and registers its
// unmount (also when the test fails).
func mountNodeDisk(t *testing.T, pid int, n *clusterNode) {
	t.Helper()
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runCmd("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", faultsDiskBytes), diskSource(pid, n.id), n.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := runCmd("umount", n.dir); err != nil {
			// A daemon still holding it (reported by the cluster's
			// cleanup): detach it anyway, it goes when the last user does.
			t.Errorf("cleanup: %v", err)
			_ = runCmd("umount", "-l", n.dir)
		}
	})
}

// removeStaleDisks unmounts the node filesystems of an earlier run killed
// before its cleanup ran (its pid is gone).
func removeStaleDisks(t *testing.T) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "tmpfs" || !strings.HasPrefix(f[0], "rbtdisk-") {
			continue
		}
		parts := strings.Split(f[0], "-")
		if len(parts) != 3 {
			continue
		}
		if _, err := os.Stat("/proc/" + parts[1]); err == nil {
			continue
		}
		t.Logf("unmounting %s of an earlier run (pid %s is gone) from %s", f[0], parts[1], f[1])
		_ = runCmd("umount", "-l", f[1])
	}
}
