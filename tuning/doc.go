// Package tuning grades a Linux host for running ringbrokerd: the checks the
// broker runs at startup and `ringbrokerd check-host` prints.
//
// Run(Options) returns a Report of Findings. Each finding has a stable ID, a
// Severity (ok, warning, fatal), what was found, what we recommend and why,
// and a one-line shell command that fixes it. ExitCode is 0 when all is ok,
// 1 with warnings, 2 with a fatal finding (tuning.strict=true refuses to
// start on those).
//
// # Where facts come from
//
// Files under /proc and /sys are read through Options.Root, so tests point
// it at a fixture tree in testdata/. Facts that only a syscall gives (statfs,
// access, getrlimit, the SIOCETHTOOL ioctl, io_uring_setup and
// IORING_REGISTER_PROBE, adjtimex, sched_getaffinity, the interface list)
// go through the Sys interface; tests supply a fake. The real Sys uses raw
// golang.org/x/sys/unix calls and never runs external tools (no ethtool,
// no sysctl binary). tuning does not import ring/: it must explain why
// io_uring is unusable on hosts where ring/ cannot start.
//
// # Checks
//
//	fs.type, fs.free, fs.writable,    per log dir: statfs type (XFS ok, ext4/btrfs/zfs
//	fs.mount_options, disk.scheduler  warning, tmpfs/overlay/NFS/CIFS/FUSE strongly
//	                                  discouraged), free space, write access, noatime and
//	                                  sync from mountinfo, the disk's I/O scheduler
//	vm.swappiness, vm.dirty_*,        memory management; THP recommendation is madvise
//	vm.max_map_count,                 (not Redpanda's "always": the Go heap gains nothing
//	vm.transparent_hugepages[_defrag], from khugepaged and pays for compaction)
//	mem.per_cpu
//	limits.nofile, fs.nr_open,        descriptors vs connections + log files + reserve;
//	limits.memlock                    the broker's rings (Options.Rings) set up under the
//	                                  current limit, or pinned memory vs MemlockBytes
//	io_uring.disabled, .kernel,       whether the uring backend can run, and if not
//	.setup, .opcodes, .rings,         why; .rings sets up the broker's rings at once
//	.backend                          (the kernel charges them to RLIMIT_MEMLOCK: one
//	                                  probe ring fitting proves nothing); Report.IOBackend
//	                                  is the verdict
//	nic.listeners, nic.tso/gso/gro/   offloads of every interface carrying a listener
//	sg/tx_csum
//	net.core.somaxconn, net.ipv4.     accept and SYN backlogs, socket buffer ceilings
//	tcp_max_syn_backlog, net.core.
//	rmem_max/wmem_max
//	cpu.ring_count, cpu.clocksource,  rings vs usable CPUs, fast clock reads, frequency
//	cpu.governor, clock.sync          scaling, NTP synchronisation
//
// Compared with Redpanda's `rpk redpanda tune` / `rpk redpanda check`, we
// cover its swappiness, transparent_hugepages, clocksource, cpu (governor),
// disk_scheduler, net backlog, data-dir filesystem/free-space/writable,
// memory-per-CPU, NTP and kernel-version checks. We leave out: aio_events
// (io_uring does not use fs.aio-max-nr), ballast_file (a Redpanda
// disk-full reserve), coredump, fstrim and disk_write_cache (GCP-only),
// disk_nomerges (our appends reach the disk through writeback in large
// bios, so merging costs little), and IRQ affinity / RPS / RFS / XPS
// (deliberately out of scope for now: they need a per-ring CPU plan first).
//
// # Concurrency
//
// Run keeps all state in a per-call value and may be called from several
// goroutines at once; it calls its Sys from one goroutine at a time. A
// Report is immutable once returned.
package tuning
