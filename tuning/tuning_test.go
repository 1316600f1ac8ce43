package tuning

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.golden from the current output")

// scenario is one fixture host: a tree under testdata (or a modified copy
// of one), a fake Sys and the options the broker would pass.
type scenario struct {
	name string
	opts func(t *testing.T) Options
	// want lists the severity of findings by "id" or "id@subject"; with
	// exact set, the run must produce exactly these findings.
	want  map[string]Severity
	exact bool
	// check runs extra assertions on the report.
	check func(t *testing.T, r *Report)
}

func tunedSys() *fakeSys {
	return &fakeSys{
		statfs:  map[string]FSStats{"/data/kafka": stats(fsMagicXFS, 500, 1000)},
		nofile:  Rlimit{Cur: 1 << 20, Max: 1 << 20},
		memlock: Rlimit{Cur: 64 << 20, Max: 64 << 20},
		ifs: []NetInterface{
			{Name: "lo", Up: true, Loopback: true, Addrs: ips("127.0.0.1", "::1")},
			{Name: "eth0", Up: true, Addrs: ips("192.0.2.5", "2001:db8::5")},
			{Name: "eth1", Up: false, Addrs: ips("198.51.100.7")},
		},
		ethtool: map[string]map[uint32]uint32{"lo": allOffloads(1), "eth0": allOffloads(1)},
		uring:   fullProbe(),
		synced:  true,
		cpus:    4,
	}
}

func tunedOpts(root string, sys *fakeSys) Options {
	return Options{
		Root:         root,
		LogDirs:      []string{"/data/kafka"},
		ListenAddrs:  []string{"0.0.0.0:9092", "127.0.0.1:9093"},
		RingCount:    4,
		MemlockBytes: 32 << 20,
		Sys:          sys,
	}
}

// tunedVariant is the tuned host with some files overridden or removed
// and the fake Sys adjusted.
func tunedVariant(override map[string]string, remove []string, adjust func(*fakeSys, *Options)) func(t *testing.T) Options {
	return func(t *testing.T) Options {
		root := copyTree(t, "testdata/tuned", override, remove...)
		sys := tunedSys()
		opts := tunedOpts(root, sys)
		if adjust != nil {
			adjust(sys, &opts)
		}
		return opts
	}
}

var allTunedOK = map[string]Severity{
	"fs.type@/data/kafka": OK, "fs.free@/data/kafka": OK, "fs.writable@/data/kafka": OK,
	"fs.mount_options@/data/kafka": OK, "disk.scheduler@nvme0n1": OK,
	"vm.swappiness": OK, "vm.dirty_background_ratio": OK, "vm.dirty_ratio": OK, "vm.max_map_count": OK,
	"vm.transparent_hugepages": OK, "vm.transparent_hugepages_defrag": OK, "mem.per_cpu": OK,
	"limits.nofile": OK, "fs.nr_open": OK, "limits.memlock": OK,
	"io_uring.disabled": OK, "io_uring.kernel": OK, "io_uring.setup": OK, "io_uring.opcodes": OK, "io_uring.backend": OK,
	"nic.tso@eth0": OK, "nic.gso@eth0": OK, "nic.gro@eth0": OK, "nic.sg@eth0": OK, "nic.tx_csum@eth0": OK,
	"nic.tso@lo": OK, "nic.gso@lo": OK, "nic.gro@lo": OK, "nic.sg@lo": OK, "nic.tx_csum@lo": OK,
	"net.core.somaxconn": OK, "net.ipv4.tcp_max_syn_backlog": OK, "net.core.rmem_max": OK, "net.core.wmem_max": OK,
	"cpu.ring_count": OK, "cpu.clocksource": OK, "cpu.governor": OK, "clock.sync": OK, "net.ktls": OK,
}

// daemonRings is the ring plan of ringbrokerd's defaults on 4 CPUs.
var daemonRings = RingPlan{Count: 4, Entries: 512, RecvBuffers: 256, RecvBufferBytes: 64 << 10}

func stockOpts(t *testing.T) Options {
	sys := &fakeSys{
		statfs:  map[string]FSStats{"/var/lib/kafka": stats(fsMagicExt4, 5, 40)},
		nofile:  Rlimit{Cur: 1024, Max: 8192},
		memlock: Rlimit{Cur: 8 << 20, Max: 8 << 20},
		ifs: []NetInterface{
			{Name: "lo", Up: true, Loopback: true, Addrs: ips("127.0.0.1")},
			{Name: "eth0", Up: true, Addrs: ips("192.0.2.10")},
		},
		ethtool: map[string]map[uint32]uint32{"eth0": {ethtoolGTSO: 1, ethtoolGGSO: 1, ethtoolGGRO: 0, ethtoolGSG: 1, ethtoolGTXCSUM: 1}},
		uring:   IOURingProbe{SetupErr: syscall.EPERM, FlagsErr: syscall.EPERM, ProbeErr: syscall.EPERM},
		synced:  false,
		cpus:    4,
		ktlsErr: fmt.Errorf("setsockopt TCP_ULP tls: %w", syscall.ENOENT), // a kernel without CONFIG_TLS
	}
	return Options{
		Root:         "testdata/stock",
		LogDirs:      []string{"/var/lib/kafka"},
		ListenAddrs:  []string{"192.0.2.10:9092"},
		RingCount:    8,
		SegmentFiles: 10000,
		Sys:          sys,
	}
}

func brokenOpts(t *testing.T) Options {
	sys := &fakeSys{
		statfs: map[string]FSStats{
			"/var/lib/ringbroker": {Type: fsMagicTmpfs, BlockBytes: 4096, Blocks: gib / 4096, AvailBlocks: (512 << 20) / 4096},
			"/mnt/hdd/kafka":      stats(fsMagicXFS, 8, 100),
			"/opt/kafka":          stats(fsMagicOverlay, 50, 100),
		},
		statfsErr: map[string]error{"/mnt/sync/kafka": syscall.EIO},
		readonly:  map[string]error{"/var/lib/ringbroker": syscall.EACCES},
		nofile:    Rlimit{Cur: 1024, Max: 1024},
		memlock:   Rlimit{Cur: 64 << 10, Max: 64 << 10},
		ifs: []NetInterface{
			{Name: "lo", Up: true, Loopback: true, Addrs: ips("127.0.0.1", "::1")},
			{Name: "eth0", Up: false, Addrs: ips("192.0.2.5")},
		},
		ethtool:    map[string]map[uint32]uint32{"lo": {ethtoolGTSO: 0, ethtoolGGSO: 1, ethtoolGTXCSUM: 1}},
		ethtoolErr: map[string]map[uint32]error{"lo": {ethtoolGSG: syscall.ENODEV}},
		uring:      IOURingProbe{SetupErr: syscall.EPERM, FlagsErr: syscall.EPERM, ProbeErr: syscall.EPERM},
		clockErr:   syscall.EPERM,
		cpus:       2,
	}
	return Options{
		Root:         "testdata/broken",
		LogDirs:      []string{"/var/lib/ringbroker/data", "/mnt/hdd/kafka", "/mnt/sync/kafka", "/opt/kafka"},
		ListenAddrs:  []string{"[::1]:9092", "0.0.0.0:9093", "kafka.example:9092", "203.0.113.9:9092", "bad"},
		RingCount:    2,
		MemlockBytes: 32 << 20,
		Sys:          sys,
	}
}

var scenarios = []scenario{
	{
		name:  "tuned",
		opts:  func(t *testing.T) Options { return tunedOpts("testdata/tuned", tunedSys()) },
		want:  allTunedOK,
		exact: true,
		check: func(t *testing.T, r *Report) {
			if r.ExitCode() != 0 || r.IOBackend != "uring" {
				t.Errorf("exit %d backend %s, want 0 uring", r.ExitCode(), r.IOBackend)
			}
			// The six segment files in testdata/tuned/data/kafka are counted.
			if f := find(r, "limits.nofile", ""); !strings.Contains(f.Recommended, "6 log files") {
				t.Errorf("limits.nofile recommended %q, want the 6 counted log files", f.Recommended)
			}
			if f := find(r, "nic.tso", "eth0"); !strings.Contains(f.Found, "0.0.0.0:9092") {
				t.Errorf("eth0 should carry the wildcard listener: %q", f.Found)
			}
			if f := find(r, "fs.type", "/data/kafka"); f.Found != "xfs" {
				t.Errorf("fs.type found %q", f.Found)
			}
		},
	},
	{
		name: "stock",
		opts: stockOpts,
		want: map[string]Severity{
			"fs.type@/var/lib/kafka": Warning, "fs.free@/var/lib/kafka": Warning, "fs.writable@/var/lib/kafka": OK,
			"fs.mount_options@/var/lib/kafka": Warning, "disk.scheduler@sda": Warning,
			"vm.swappiness": Warning, "vm.dirty_background_ratio": Warning, "vm.dirty_ratio": Warning, "vm.max_map_count": Warning,
			"vm.transparent_hugepages": Warning, "vm.transparent_hugepages_defrag": Warning, "mem.per_cpu": Warning,
			"limits.nofile": Warning, "fs.nr_open": Warning, "limits.memlock": OK,
			"io_uring.disabled": Warning, "io_uring.kernel": Warning, "io_uring.setup": Warning, "io_uring.opcodes": Warning, "io_uring.backend": Warning,
			"nic.tso@eth0": OK, "nic.gso@eth0": OK, "nic.gro@eth0": Warning, "nic.sg@eth0": OK, "nic.tx_csum@eth0": OK,
			"net.core.somaxconn": Warning, "net.ipv4.tcp_max_syn_backlog": Warning, "net.core.rmem_max": Warning, "net.core.wmem_max": Warning,
			"cpu.ring_count": Warning, "cpu.clocksource": Warning, "cpu.governor": Warning, "clock.sync": Warning, "net.ktls": OK,
		},
		exact: true,
		check: func(t *testing.T, r *Report) {
			if r.ExitCode() != 1 || r.IOBackend != "portable" {
				t.Errorf("exit %d backend %s, want 1 portable", r.ExitCode(), r.IOBackend)
			}
			if f := find(r, "vm.swappiness", ""); f.Fix != "sysctl -w vm.swappiness=1 && echo 'vm.swappiness = 1' > /etc/sysctl.d/60-ringbroker-vm.swappiness.conf" {
				t.Errorf("swappiness fix %q", f.Fix)
			}
			if f := find(r, "nic.gro", "eth0"); f.Fix != "ethtool -K eth0 gro on" {
				t.Errorf("gro fix %q", f.Fix)
			}
			if f := find(r, "io_uring.backend", ""); !strings.Contains(f.Found, "kernel.io_uring_disabled=2") {
				t.Errorf("backend reason %q should name the sysctl", f.Found)
			}
		},
	},
	{
		name: "broken",
		opts: brokenOpts,
		want: map[string]Severity{
			"fs.type@/var/lib/ringbroker/data": Warning, "fs.free@/var/lib/ringbroker/data": Fatal,
			"fs.writable@/var/lib/ringbroker/data": Fatal, "fs.mount_options@/var/lib/ringbroker/data": Warning,
			"fs.type@/mnt/hdd/kafka": OK, "fs.free@/mnt/hdd/kafka": Warning, "fs.writable@/mnt/hdd/kafka": OK,
			"fs.mount_options@/mnt/hdd/kafka": OK, "disk.scheduler@sdb": Warning,
			"fs.type@/mnt/sync/kafka": Warning, "fs.writable@/mnt/sync/kafka": OK, "fs.mount_options@/mnt/sync/kafka": Warning,
			"fs.type@/opt/kafka": Warning, "fs.free@/opt/kafka": OK, "fs.writable@/opt/kafka": OK, "fs.mount_options@/opt/kafka": Warning,
			"vm.swappiness": OK, "vm.dirty_background_ratio": Warning, "vm.dirty_ratio": Warning, "vm.max_map_count": Warning,
			"vm.transparent_hugepages": OK, "mem.per_cpu": Warning,
			"limits.nofile": Fatal, "fs.nr_open": OK, "limits.memlock": Fatal,
			"io_uring.disabled": OK, "io_uring.kernel": Warning, "io_uring.setup": Warning, "io_uring.opcodes": Warning, "io_uring.backend": Warning,
			"nic.listeners@0.0.0.0:9093": Warning, "nic.listeners@kafka.example:9092": Warning,
			"nic.listeners@203.0.113.9:9092": Warning, "nic.listeners@bad": Warning,
			"nic.tso@lo": Warning, "nic.gso@lo": OK, "nic.gro@lo": Warning, "nic.sg@lo": Warning, "nic.tx_csum@lo": OK,
			"net.core.somaxconn": OK, "net.ipv4.tcp_max_syn_backlog": OK, "net.core.rmem_max": OK, "net.core.wmem_max": OK,
			"cpu.ring_count": OK, "cpu.clocksource": Warning, "cpu.governor": OK, "clock.sync": Warning, "net.ktls": OK,
		},
		exact: true,
		check: func(t *testing.T, r *Report) {
			if r.ExitCode() != 2 || !r.HasFatal() {
				t.Errorf("exit %d, want 2", r.ExitCode())
			}
			if f := find(r, "fs.type", "/var/lib/ringbroker/data"); !strings.HasPrefix(f.Why, "Strongly discouraged") || !strings.Contains(f.Found, "does not exist yet") {
				t.Errorf("tmpfs finding %+v", f)
			}
			if f := find(r, "io_uring.setup", ""); !strings.Contains(f.Found, "seccomp") {
				t.Errorf("setup EPERM under Seccomp: 2 should blame seccomp: %q", f.Found)
			}
			if f := find(r, "fs.mount_options", "/mnt/sync/kafka"); !strings.Contains(f.Fix, "async") {
				t.Errorf("sync mount fix %q", f.Fix)
			}
			if f := find(r, "nic.gro", "lo"); !strings.Contains(f.Found, "not supported") {
				t.Errorf("unsupported offload found %q", f.Found)
			}
			if f := find(r, "limits.memlock", ""); !strings.Contains(f.Fix, "LimitMEMLOCK=33554432") {
				t.Errorf("memlock fix %q", f.Fix)
			}
		},
	},
	{
		name: "dirty-bytes",
		opts: tunedVariant(map[string]string{
			"proc/sys/vm/dirty_background_ratio": "0", "proc/sys/vm/dirty_background_bytes": "67108864",
			"proc/sys/vm/dirty_ratio": "0", "proc/sys/vm/dirty_bytes": "268435456",
		}, nil, nil),
		want: map[string]Severity{"vm.dirty_background_ratio": OK, "vm.dirty_ratio": OK},
		check: func(t *testing.T, r *Report) {
			if f := find(r, "vm.dirty_ratio", ""); !strings.Contains(f.Found, "256 MiB") {
				t.Errorf("dirty_ratio found %q", f.Found)
			}
		},
	},
	{
		name: "dirty-inverted",
		opts: tunedVariant(map[string]string{"proc/sys/vm/dirty_background_ratio": "50", "proc/sys/vm/dirty_ratio": "40"}, nil, nil),
		want: map[string]Severity{"vm.dirty_background_ratio": Warning, "vm.dirty_ratio": Warning},
		check: func(t *testing.T, r *Report) {
			if f := find(r, "vm.dirty_ratio", ""); !strings.Contains(f.Found, "not above") {
				t.Errorf("dirty_ratio found %q", f.Found)
			}
		},
	},
	{
		name: "dirty-ratio-zero",
		opts: tunedVariant(map[string]string{"proc/sys/vm/dirty_ratio": "0"}, nil, nil),
		want: map[string]Severity{"vm.dirty_ratio": Warning},
	},
	{
		name: "uring-group-allowed",
		opts: tunedVariant(map[string]string{"proc/sys/kernel/io_uring_disabled": "1"}, nil, nil),
		want: map[string]Severity{"io_uring.disabled": OK, "io_uring.backend": OK},
	},
	{
		name: "uring-group-denied",
		opts: tunedVariant(map[string]string{"proc/sys/kernel/io_uring_disabled": "1"}, nil, func(s *fakeSys, _ *Options) {
			s.uring = IOURingProbe{SetupErr: syscall.EPERM, FlagsErr: syscall.EPERM, ProbeErr: syscall.EPERM}
		}),
		want: map[string]Severity{"io_uring.disabled": Warning, "io_uring.setup": Warning, "io_uring.backend": Warning},
	},
	{
		name: "uring-old-kernel",
		opts: tunedVariant(map[string]string{"proc/sys/kernel/osrelease": "5.15.0-91-generic"}, []string{"proc/sys/kernel/io_uring_disabled"}, func(s *fakeSys, _ *Options) {
			sup := make([]bool, 30) // through IORING_OP_RECV: no SPLICE, no MSG_RING
			for i := range sup {
				sup[i] = true
			}
			s.uring = IOURingProbe{FlagsErr: syscall.EINVAL, Features: 0x1fff, Supported: sup}
		}),
		want: map[string]Severity{"io_uring.disabled": OK, "io_uring.kernel": Warning, "io_uring.setup": Warning,
			"io_uring.opcodes": Warning, "io_uring.backend": Warning},
		check: func(t *testing.T, r *Report) {
			f := find(r, "io_uring.opcodes", "")
			if !strings.Contains(f.Found, "SPLICE") || !strings.Contains(f.Found, "MSG_RING") || strings.Contains(f.Found, "RECV (") {
				t.Errorf("opcodes found %q", f.Found)
			}
			if f := find(r, "io_uring.setup", ""); !strings.Contains(f.Found, "DEFER_TASKRUN 6.1") {
				t.Errorf("setup found %q", f.Found)
			}
		},
	},
	{
		name: "uring-probe-fails",
		opts: tunedVariant(nil, nil, func(s *fakeSys, _ *Options) {
			s.uring = IOURingProbe{ProbeErr: syscall.EINVAL}
		}),
		want: map[string]Severity{"io_uring.setup": OK, "io_uring.opcodes": Warning, "io_uring.backend": Warning},
	},
	{
		name: "kvm-clock-only",
		opts: tunedVariant(map[string]string{
			"sys/devices/system/clocksource/clocksource0/current_clocksource":   "kvm-clock",
			"sys/devices/system/clocksource/clocksource0/available_clocksource": "kvm-clock acpi_pm",
		}, nil, nil),
		want: map[string]Severity{"cpu.clocksource": OK},
	},
	{
		name: "memlock-cap-ipc-lock",
		opts: tunedVariant(map[string]string{"proc/self/status": "Name:\tringbrokerd\nCapEff:\t0000000000004000\nSeccomp:\t0"}, nil,
			func(s *fakeSys, _ *Options) { s.memlock = Rlimit{Cur: 64 << 10, Max: 64 << 10} }),
		want: map[string]Severity{"limits.memlock": OK},
		check: func(t *testing.T, r *Report) {
			if f := find(r, "limits.memlock", ""); !strings.Contains(f.Found, "CAP_IPC_LOCK") {
				t.Errorf("memlock found %q", f.Found)
			}
		},
	},
	{
		name: "memlock-unset-and-unlimited-nofile",
		opts: tunedVariant(nil, nil, func(s *fakeSys, o *Options) {
			o.MemlockBytes = 0
			s.nofile = Rlimit{Cur: Unlimited, Max: Unlimited}
		}),
		want: map[string]Severity{"limits.memlock": OK, "limits.nofile": OK},
	},
	{
		// The daemon's default rings fit under the limit: both findings
		// say they were tried.
		name: "rings-fit-under-memlock",
		opts: tunedVariant(nil, nil, func(s *fakeSys, o *Options) {
			o.MemlockBytes = 0
			o.Rings = daemonRings
		}),
		want: map[string]Severity{"limits.memlock": OK, "io_uring.rings": OK, "io_uring.backend": OK},
		check: func(t *testing.T, r *Report) {
			if f := find(r, "limits.memlock", ""); !strings.Contains(f.Found, "(tried)") {
				t.Errorf("memlock found %q", f.Found)
			}
		},
	},
	{
		// RLIMIT_MEMLOCK below what the rings need: the probe's one small
		// ring succeeds but the broker's rings would not (before: memlock
		// and io_uring reported OK, then io.backend=uring failed at
		// io_uring_setup).
		name: "rings-over-memlock",
		opts: tunedVariant(nil, nil, func(s *fakeSys, o *Options) {
			o.MemlockBytes = 0
			o.Rings = daemonRings
			s.memlock = Rlimit{Cur: 64 << 10, Max: 64 << 10}
			s.ringsErr = fmt.Errorf("ring 1 of 4: io_uring_setup(512 entries): %w", syscall.ENOMEM)
		}),
		want: map[string]Severity{"limits.memlock": Fatal, "io_uring.setup": OK, "io_uring.rings": Warning, "io_uring.backend": Warning},
		check: func(t *testing.T, r *Report) {
			if f := find(r, "limits.memlock", ""); !strings.Contains(f.Fix, "LimitMEMLOCK=8388608") {
				t.Errorf("memlock fix %q", f.Fix)
			}
			if r.IOBackend != "portable" {
				t.Errorf("io backend %q, want portable", r.IOBackend)
			}
		},
	},
	{
		// A ring failure that is not the limit is io_uring's finding only.
		name: "rings-fail-otherwise",
		opts: tunedVariant(nil, nil, func(s *fakeSys, o *Options) {
			o.MemlockBytes = 0
			o.Rings = daemonRings
			s.ringsErr = fmt.Errorf("ring 1 of 4: io_uring_register(PBUF_RING, 256 buffers): %w", syscall.EINVAL)
		}),
		want: map[string]Severity{"limits.memlock": OK, "io_uring.rings": Warning, "io_uring.backend": Warning},
	},
	{
		name: "rotational-disk",
		opts: tunedVariant(map[string]string{
			"sys/devices/pci0000:00/nvme/nvme0n1/queue/rotational": "1",
			"sys/devices/pci0000:00/nvme/nvme0n1/queue/scheduler":  "none [mq-deadline] kyber",
		}, nil, nil),
		want: map[string]Severity{"disk.scheduler@nvme0n1": OK},
	},
	{
		name: "no-mountinfo",
		opts: tunedVariant(nil, []string{"proc/self/mountinfo"}, nil),
		want: map[string]Severity{"fs.mount_options@/data/kafka": Warning},
	},
	{
		name: "log-dir-not-created-yet",
		opts: tunedVariant(nil, nil, func(s *fakeSys, o *Options) {
			s.statfs = map[string]FSStats{"/data": stats(fsMagicXFS, 500, 1000)}
			o.LogDirs = []string{"/data/kafka/new/sub"}
		}),
		want: map[string]Severity{"fs.type@/data/kafka/new/sub": OK, "fs.writable@/data/kafka/new/sub": OK, "disk.scheduler@nvme0n1": OK},
		check: func(t *testing.T, r *Report) {
			if f := find(r, "fs.type", "/data/kafka/new/sub"); !strings.Contains(f.Found, "on /data:") {
				t.Errorf("found %q", f.Found)
			}
		},
	},
	{
		name: "mixed-governors-few-rings",
		opts: tunedVariant(map[string]string{"sys/devices/system/cpu/cpu3/cpufreq/scaling_governor": "schedutil"}, nil,
			func(_ *fakeSys, o *Options) { o.RingCount = 2 }),
		want: map[string]Severity{"cpu.governor": Warning, "cpu.ring_count": OK},
	},
	{
		name: "nothing-configured",
		opts: tunedVariant(nil, nil, func(_ *fakeSys, o *Options) {
			o.LogDirs, o.ListenAddrs, o.RingCount = nil, nil, 0
		}),
		want: map[string]Severity{"fs.type": OK, "nic.listeners": OK, "cpu.ring_count": OK},
	},
	{
		name: "offloads-off",
		opts: tunedVariant(nil, nil, func(s *fakeSys, _ *Options) { s.ethtool["eth0"] = allOffloads(0) }),
		want: map[string]Severity{"nic.tso@eth0": Warning, "nic.gso@eth0": Warning, "nic.gro@eth0": Warning,
			"nic.sg@eth0": Warning, "nic.tx_csum@eth0": Warning, "nic.tso@lo": OK},
		check: func(t *testing.T, r *Report) {
			if f := find(r, "nic.tx_csum", "eth0"); f.Fix != "ethtool -K eth0 tx-checksumming on" {
				t.Errorf("tx csum fix %q", f.Fix)
			}
		},
	},
	{
		name: "hostname-localhost-and-ipv6",
		opts: tunedVariant(nil, nil, func(_ *fakeSys, o *Options) {
			o.ListenAddrs = []string{"localhost:9092", "[2001:db8::5]:9093"}
		}),
		want: map[string]Severity{"nic.tso@lo": OK, "nic.tso@eth0": OK},
	},
}

// canProduce is every severity each check can produce; the scenarios
// above must cover all of them, and no check may produce anything else.
var canProduce = map[string][]Severity{
	"fs.type": {OK, Warning}, "fs.free": {OK, Warning, Fatal}, "fs.writable": {OK, Fatal},
	"fs.mount_options": {OK, Warning}, "disk.scheduler": {OK, Warning},
	"vm.swappiness": {OK, Warning}, "vm.dirty_background_ratio": {OK, Warning}, "vm.dirty_ratio": {OK, Warning},
	"vm.max_map_count": {OK, Warning}, "vm.transparent_hugepages": {OK, Warning}, "vm.transparent_hugepages_defrag": {OK, Warning},
	"mem.per_cpu":   {OK, Warning},
	"limits.nofile": {OK, Warning, Fatal}, "fs.nr_open": {OK, Warning}, "limits.memlock": {OK, Fatal},
	"io_uring.disabled": {OK, Warning}, "io_uring.kernel": {OK, Warning}, "io_uring.setup": {OK, Warning},
	"io_uring.opcodes": {OK, Warning}, "io_uring.rings": {OK, Warning}, "io_uring.backend": {OK, Warning},
	"nic.listeners": {OK, Warning}, "nic.tso": {OK, Warning}, "nic.gso": {OK, Warning}, "nic.gro": {OK, Warning},
	"nic.sg": {OK, Warning}, "nic.tx_csum": {OK, Warning},
	"net.core.somaxconn": {OK, Warning}, "net.ipv4.tcp_max_syn_backlog": {OK, Warning},
	"net.core.rmem_max": {OK, Warning}, "net.core.wmem_max": {OK, Warning},
	"cpu.ring_count": {OK, Warning}, "cpu.clocksource": {OK, Warning}, "cpu.governor": {OK, Warning}, "clock.sync": {OK, Warning},
	"net.ktls": {OK},
}

func find(r *Report, id, subject string) Finding {
	for _, f := range r.Findings {
		if f.ID == id && f.Subject == subject {
			return f
		}
	}
	return Finding{}
}

// fixExempt are non-ok findings with no command that fixes them.
func fixExempt(f Finding) bool {
	switch f.ID {
	case "mem.per_cpu", "nic.listeners", "io_uring.backend", "cpu.clocksource":
		return true
	case "io_uring.rings":
		return !strings.Contains(f.Found, "RLIMIT_MEMLOCK")
	case "io_uring.setup", "io_uring.opcodes":
		return !strings.Contains(f.Found, "missing") && !strings.Contains(f.Found, "SINGLE_ISSUER")
	}
	return hasPrefixAny(f.Found, "unknown", "not supported") || strings.Contains(f.Found, "cannot parse")
}

func TestScenarios(t *testing.T) {
	seen := map[string]map[Severity]bool{}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := Run(sc.opts(t))
			got := map[string]Severity{}
			for _, f := range r.Findings {
				key := findingKey(f)
				if _, dup := got[key]; dup {
					t.Errorf("duplicate finding %s", key)
				}
				got[key] = f.Severity
				if seen[f.ID] == nil {
					seen[f.ID] = map[Severity]bool{}
				}
				seen[f.ID][f.Severity] = true
				if f.Found == "" || f.Recommended == "" || f.Why == "" {
					t.Errorf("%s: empty Found/Recommended/Why: %+v", key, f)
				}
				if f.Severity != OK && f.Fix == "" && !fixExempt(f) {
					t.Errorf("%s: %s without a fix: %+v", key, f.Severity, f)
				}
				if strings.Contains(f.Fix, "\n") {
					t.Errorf("%s: fix is not one line: %q", key, f.Fix)
				}
			}
			for key, want := range sc.want {
				g, ok := got[key]
				switch {
				case !ok:
					t.Errorf("missing finding %s (want %s)", key, want)
				case g != want:
					t.Errorf("%s = %s, want %s: %+v", key, g, want, findKey(r, key))
				}
			}
			if sc.exact {
				for key, g := range got {
					if _, ok := sc.want[key]; !ok {
						t.Errorf("unexpected finding %s = %s: %+v", key, g, findKey(r, key))
					}
				}
			}
			if sc.check != nil {
				sc.check(t, r)
			}
		})
	}
	for id, sevs := range canProduce {
		for _, s := range sevs {
			if !seen[id][s] {
				t.Errorf("no scenario produces %s = %s", id, s)
			}
		}
	}
	for id, sevs := range seen {
		for s := range sevs {
			if !containsSeverity(canProduce[id], s) {
				t.Errorf("%s produced %s, which canProduce does not list", id, s)
			}
		}
	}
}

func containsSeverity(list []Severity, s Severity) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func findKey(r *Report, key string) Finding {
	for _, f := range r.Findings {
		if findingKey(f) == key {
			return f
		}
	}
	return Finding{}
}

// TestGolden pins the table and JSON output for the stock host; run
// `go test ./tuning -run Golden -rewrite` after an intended change.
func TestGolden(t *testing.T) {
	r := Run(stockOpts(t))
	var table, js bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"stock.table.golden": table.Bytes(), "stock.json.golden": js.Bytes()} {
		path := filepath.Join("testdata", name)
		if *rewrite {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -rewrite to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the current output; rerun with -rewrite if intended.\ngot:\n%s", name, got)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := Run(brokenOpts(t))
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Summary   string    `json:"summary"`
		ExitCode  int       `json:"exit_code"`
		Fatal     int       `json:"fatal"`
		IOBackend string    `json:"io_backend"`
		Findings  []Finding `json:"findings"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	_, _, fatal := r.Counts()
	if doc.ExitCode != 2 || doc.Fatal != fatal || doc.Summary != r.Summary() || doc.IOBackend != "portable" {
		t.Errorf("doc header %+v", doc)
	}
	if len(doc.Findings) != len(r.Findings) {
		t.Fatalf("%d findings in JSON, %d in report", len(doc.Findings), len(r.Findings))
	}
	for i := range doc.Findings {
		if doc.Findings[i] != r.Findings[i] {
			t.Errorf("finding %d: %+v != %+v", i, doc.Findings[i], r.Findings[i])
		}
	}
	if !strings.Contains(buf.String(), `"severity": "fatal"`) {
		t.Error("severity should be written by name")
	}
	var s Severity
	if err := s.UnmarshalText([]byte("loud")); err == nil {
		t.Error("unknown severity accepted")
	}
}

func TestLog(t *testing.T) {
	for _, tc := range []struct {
		opts  func(*testing.T) Options
		level zapcore.Level
	}{
		{func(t *testing.T) Options { return tunedOpts("testdata/tuned", tunedSys()) }, zapcore.InfoLevel},
		{stockOpts, zapcore.WarnLevel},
		{brokenOpts, zapcore.ErrorLevel},
	} {
		r := Run(tc.opts(t))
		core, logs := observer.New(zapcore.DebugLevel)
		r.Log(zap.New(core))
		entries := logs.All()
		ok, warn, fatal := r.Counts()
		// One summary line, plus one per fatal finding: warnings are
		// left to check-host (six lines of host advice at every start
		// read as broken).
		if len(entries) != 1+fatal {
			t.Fatalf("%d log lines, want 1 summary + %d fatal findings (ok %d, warnings %d)", len(entries), fatal, ok, warn)
		}
		if entries[0].Level != tc.level || !strings.HasPrefix(entries[0].Message, r.Summary()) {
			t.Errorf("summary line %v %q, want %v %q", entries[0].Level, entries[0].Message, tc.level, r.Summary())
		}
		if warn+fatal > 0 && !strings.Contains(entries[0].Message, "ringbrokerd check-host") {
			t.Errorf("summary line %q does not point at ringbrokerd check-host", entries[0].Message)
		}
		if ids, _ := entries[0].ContextMap()["checks"].([]any); len(ids) == 0 && warn+fatal > 0 {
			t.Errorf("summary line lacks the check ids: %v", entries[0].ContextMap())
		}
		for _, e := range entries[1:] {
			m := e.ContextMap()
			if m["check"] == "" || m["found"] == "" || m["why"] == "" {
				t.Errorf("finding line lacks fields: %v", m)
			}
			if (e.Level == zapcore.ErrorLevel) != strings.Contains(e.Message, "fatal") {
				t.Errorf("level %v for %q", e.Level, e.Message)
			}
		}
	}
}

func TestSummary(t *testing.T) {
	r := &Report{IOBackend: "uring", Findings: []Finding{
		{ID: "a", Severity: OK}, {ID: "b", Severity: Warning}, {ID: "c", Severity: Warning, Subject: "x"}, {ID: "c", Severity: Warning, Subject: "y"},
	}}
	want := "host check: 1 ok, 3 warnings, 0 fatal; io backend uring; warning: b, c"
	if got := r.Summary(); got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if r.ExitCode() != 1 || r.HasFatal() {
		t.Error("exit code")
	}
	if (&Report{}).ExitCode() != 0 {
		t.Error("empty report should exit 0")
	}
}

func TestParsers(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "0-3": 4, "0-3,6,8-9": 7, "": 0} {
		if got, err := countCPUList(in); err != nil || got != want {
			t.Errorf("countCPUList(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := countCPUList("3-1"); err == nil {
		t.Error("bad range accepted")
	}
	for in, want := range map[string][2]int{"6.18.44-fc-v769": {6, 18}, "5.4.0": {5, 4}, "6.1-rc3": {6, 1}} {
		ma, mi, err := parseKernelVersion(in)
		if err != nil || ma != want[0] || mi != want[1] {
			t.Errorf("parseKernelVersion(%q) = %d.%d %v", in, ma, mi, err)
		}
	}
	if got := unescapeMount(`/mnt/my\040disk`); got != "/mnt/my disk" {
		t.Errorf("unescapeMount = %q", got)
	}
	if _, err := parseMountinfo("garbage line"); err == nil {
		t.Error("malformed mountinfo accepted")
	}
	if got := activeChoice("always defer [defer+madvise] madvise never"); got != "defer+madvise" {
		t.Errorf("activeChoice = %q", got)
	}
	for _, b := range []uint64{512, 4 << 10, 4 << 20, 3 << 29, 8 << 30, Unlimited} {
		if bytesText(b) == "" {
			t.Errorf("bytesText(%d) empty", b)
		}
	}
}
