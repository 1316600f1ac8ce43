package tuning

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// statfs f_type magics (linux/magic.h). Defined here rather than taken
// from x/sys/unix so fixture tests build on every OS.
const (
	fsMagicXFS     = 0x58465342
	fsMagicExt4    = 0xef53 // ext2, ext3 and ext4 share it; mountinfo names which
	fsMagicBtrfs   = 0x9123683e
	fsMagicZFS     = 0x2fc12fc1
	fsMagicTmpfs   = 0x01021994
	fsMagicRamfs   = 0x858458f6
	fsMagicOverlay = 0x794c7630
	fsMagicNFS     = 0x6969
	fsMagicCIFS    = 0xff534d42
	fsMagicSMB2    = 0xfe534d42
	fsMagicFUSE    = 0x65735546
	fsMagicCeph    = 0x00c36400
)

// fsClass is how we grade a filesystem for a Kafka log.
type fsClass struct {
	name     string
	severity Severity
	why      string
}

func classifyFS(magic int64) fsClass {
	const cow = "copy-on-write filesystems rewrite metadata on every append and fragment append-only segment files, so fdatasync latency is higher and less predictable than on XFS"
	const remote = "Strongly discouraged: a network or FUSE filesystem adds a round trip to every write and fsync, and its locking and close-to-open semantics do not give the durability Kafka's acks promise; use a local disk"
	switch magic {
	case fsMagicXFS:
		return fsClass{"xfs", OK, "XFS extends many appending files concurrently and keeps fdatasync latency flat as partitions grow; it is what Kafka and Redpanda deployments are tuned on"}
	case fsMagicExt4:
		return fsClass{"ext4", Warning, "ext4 works, but its journal serialises the metadata update behind every append batch (file size, block allocation), so fdatasync latency with many partitions is higher and spikier than on XFS; put the log dir on XFS when you next provision the disk"}
	case fsMagicBtrfs:
		return fsClass{"btrfs", Warning, cow}
	case fsMagicZFS:
		return fsClass{"zfs", Warning, cow}
	case fsMagicTmpfs:
		return fsClass{"tmpfs", Warning, "Strongly discouraged: tmpfs lives in RAM: every log, including data the broker acknowledged, is lost on reboot, and it takes memory from the page cache that serves consumers"}
	case fsMagicRamfs:
		return fsClass{"ramfs", Warning, "Strongly discouraged: ramfs lives in RAM with no size limit: every log is lost on reboot and a full log dir exhausts the host's memory"}
	case fsMagicOverlay:
		return fsClass{"overlay", Warning, "Strongly discouraged: overlayfs (a container's writable layer) copies a file up on its first write and its fsync depends on the layer below; mount a host volume at the log dir"}
	case fsMagicNFS:
		return fsClass{"nfs", Warning, remote}
	case fsMagicCIFS, fsMagicSMB2:
		return fsClass{"cifs", Warning, remote}
	case fsMagicFUSE:
		return fsClass{"fuse", Warning, remote}
	case fsMagicCeph:
		return fsClass{"ceph", Warning, remote}
	}
	return fsClass{fmt.Sprintf("unknown (0x%x)", magic), Warning, "this filesystem is not one we have measured; XFS on a local disk is the tested configuration"}
}

// Free space limits: below freeFatalBytes one default 1 GiB segment cannot
// roll; below the warning limits appends start failing soon after a burst.
const (
	freeFatalBytes  = 1 << 30
	freeWarnBytes   = 10 << 30
	freeWarnPercent = 10
)

// checkFilesystems grades every log dir: filesystem type, free space,
// writability, mount options and the block device's I/O scheduler.
func (e *env) checkFilesystems() {
	if len(e.opts.LogDirs) == 0 {
		e.add(Finding{ID: "fs.type", Severity: OK, Found: "no log dirs configured",
			Recommended: "log dirs on XFS", Why: "nothing to check; pass the broker's log.dirs to check their filesystems"})
		return
	}
	mounts, mountsErr := e.mounts()
	for _, dir := range e.opts.LogDirs {
		e.checkLogDir(filepath.Clean(dir), mounts, mountsErr)
	}
}

func (e *env) checkLogDir(dir string, mounts []mountEntry, mountsErr error) {
	// A log dir that does not exist yet will be created inside its nearest
	// existing ancestor, on that ancestor's filesystem.
	at := dir
	st, err := e.sys.Statfs(at)
	for err != nil && errors.Is(err, fs.ErrNotExist) && at != "/" && at != "." {
		at = filepath.Dir(at)
		st, err = e.sys.Statfs(at)
	}
	note := ""
	if at != dir {
		note = fmt.Sprintf(" (on %s: the log dir does not exist yet)", at)
	}
	mount, haveMount := e.mountFor(at, mounts)

	if err != nil {
		e.add(unreadable("fs.type", dir, err, "statfs failed, so neither the filesystem nor its free space can be checked"))
	} else {
		c := classifyFS(st.Type)
		name := c.name
		if haveMount && st.Type == fsMagicExt4 {
			name = mount.fsType // ext2/ext3/ext4 share a magic
		}
		f := Finding{ID: "fs.type", Subject: dir, Severity: c.severity, Found: name + note,
			Recommended: "xfs on a local disk", Why: c.why}
		if c.severity != OK {
			f.Fix = fmt.Sprintf("mkfs.xfs /dev/NEWDISK && mkdir -p %s && mount -o noatime /dev/NEWDISK %s  # on a new, empty disk; then add it to /etc/fstab", dir, dir)
		}
		e.add(f)
		e.checkFree(dir, st, mount, haveMount)
	}

	if werr := e.sys.Writable(at); werr != nil {
		e.add(Finding{ID: "fs.writable", Subject: dir, Severity: Fatal, Found: "not writable: " + werr.Error() + note,
			Recommended: "writable by the broker's user",
			Why:         "the broker creates partition directories and appends segments here; it cannot start without write access",
			Fix:         fmt.Sprintf("mkdir -p %s && chown -R ringbroker:ringbroker %s", dir, dir)})
	} else {
		e.add(Finding{ID: "fs.writable", Subject: dir, Severity: OK, Found: "writable" + note,
			Recommended: "writable by the broker's user", Why: "the broker creates partition directories and appends segments here"})
	}

	if mountsErr != nil {
		e.add(unreadable("fs.mount_options", dir, mountsErr, "without /proc/self/mountinfo the mount options (noatime) cannot be checked"))
		return
	}
	if !haveMount {
		e.add(unreadable("fs.mount_options", dir, fmt.Errorf("no mount covers %s", at), "without its mount the options (noatime) cannot be checked"))
		return
	}
	e.checkMountOptions(dir, mount)
	e.checkScheduler(dir, mount)
}

func (e *env) checkFree(dir string, st FSStats, mount mountEntry, haveMount bool) {
	unit := uint64(max(st.BlockBytes, 1))
	avail, total := st.AvailBlocks*unit, st.Blocks*unit
	pct := 100.0
	if total > 0 {
		pct = float64(avail) * 100 / float64(total)
	}
	f := Finding{ID: "fs.free", Subject: dir, Severity: OK,
		Found:       fmt.Sprintf("%s free of %s (%.0f%%)", bytesText(avail), bytesText(total), pct),
		Recommended: fmt.Sprintf(">= %s and >= %d%% free", bytesText(freeWarnBytes), freeWarnPercent),
		Why:         "a full disk fails every append: producers get KAFKA_STORAGE_ERROR until retention frees space, and a nearly full filesystem fragments new segments"}
	switch {
	case avail < freeFatalBytes:
		f.Severity = Fatal
		f.Why = "less than one default segment (1 GiB) of space is left: the next segment roll fails and producers get KAFKA_STORAGE_ERROR"
	case avail < freeWarnBytes || pct < freeWarnPercent:
		f.Severity = Warning
	}
	if f.Severity != OK {
		f.Fix = "lower log.retention.bytes / log.retention.hours in /etc/ringbroker/server.properties, or grow the filesystem"
		if haveMount {
			switch mount.fsType {
			case "xfs":
				f.Fix = "xfs_growfs " + mount.mountPoint + "  # after growing the underlying device"
			case "ext4", "ext3", "ext2":
				f.Fix = "resize2fs " + mount.source + "  # after growing the underlying device"
			}
		}
	}
	e.add(f)
}

func (e *env) checkMountOptions(dir string, m mountEntry) {
	opts := map[string]bool{}
	for _, o := range strings.Split(m.options, ",") {
		opts[o] = true
	}
	for _, o := range strings.Split(m.superOptions, ",") {
		if o == "sync" || o == "dirsync" {
			opts[o] = true
		}
	}
	f := Finding{ID: "fs.mount_options", Subject: dir, Found: m.options + " (mount " + m.mountPoint + ")",
		Recommended: "noatime"}
	remount := fmt.Sprintf("mount -o remount,noatime %s && sed -i -E 's|^(\\S+\\s+%s\\s+\\S+\\s+)(\\S+)|\\1\\2,noatime|' /etc/fstab", m.mountPoint, m.mountPoint)
	switch {
	case opts["sync"] || opts["dirsync"]:
		f.Severity = Warning
		f.Recommended = "async (the default), noatime"
		f.Why = "a sync mount makes every write synchronous: the broker's own batching and flush policy decide when to fdatasync, so sync only multiplies disk writes"
		f.Fix = fmt.Sprintf("mount -o remount,async,noatime %s", m.mountPoint)
	case opts["noatime"]:
		f.Severity = OK
		f.Why = "reads do not write access times back to disk"
	default:
		f.Severity = Warning
		f.Why = "without noatime, a fetch that reads a segment written since its last read updates the file's access time (relatime still does this for a log being appended to), adding a metadata write to the read path"
		f.Fix = remount
	}
	e.add(f)
}

// checkScheduler grades the I/O scheduler of the block device under a log
// dir (Redpanda's disk_scheduler tuner). Filesystems without a block
// device (tmpfs, NFS, btrfs' anonymous device) have nothing to check.
func (e *env) checkScheduler(dir string, m mountEntry) {
	if m.major == 0 {
		return
	}
	dev := fmt.Sprintf("/sys/dev/block/%d:%d", m.major, m.minor)
	if _, err := os.Stat(e.path(dev)); err != nil {
		return // no sysfs entry for the device: nothing we can grade
	}
	queue := dev
	if _, err := e.read(dev + "/partition"); err == nil {
		queue = dev + "/.." // a partition's queue belongs to its disk; the kernel resolves ".." after the symlink
	}
	name := devName(e, queue, m.source)
	raw, err := e.readRaw(queue + "/queue/scheduler")
	if err != nil {
		e.add(unreadable("disk.scheduler", name, err, "the I/O scheduler of the log dir's disk cannot be read"))
		return
	}
	active := activeChoice(raw)
	rotational, _ := e.readRaw(queue + "/queue/rotational")
	f := Finding{ID: "disk.scheduler", Subject: name, Found: active + " (log dir " + dir + ")"}
	persist := fmt.Sprintf("echo 'ACTION==\"add|change\", KERNEL==\"%s\", ATTR{queue/scheduler}=\"%%s\"' > /etc/udev/rules.d/60-ringbroker-%s.rules", name, name)
	if strings.TrimSpace(rotational) == "1" {
		f.Recommended = "mq-deadline"
		f.Why = "on a spinning disk mq-deadline keeps consumer reads of old segments from starving behind writeback"
		f.Severity = OK
		if active == "none" || active == "noop" {
			f.Severity = Warning
			f.Fix = fmt.Sprintf("echo mq-deadline > /sys/block/%s/queue/scheduler && "+persist, name, "mq-deadline")
		}
	} else {
		f.Recommended = "none"
		f.Why = "an SSD or NVMe device reorders requests itself; a kernel scheduler only adds CPU per request and latency to fdatasync (Redpanda's disk_scheduler tuner sets the same)"
		f.Severity = OK
		if active != "none" && active != "noop" {
			f.Severity = Warning
			f.Fix = fmt.Sprintf("echo none > /sys/block/%s/queue/scheduler && "+persist, name, "none")
		}
	}
	e.add(f)
}

// readRaw reads a file under Root without cleaning the path, so ".."
// after a sysfs symlink is resolved by the kernel, not lexically.
func (e *env) readRaw(p string) (string, error) {
	root := strings.TrimSuffix(e.root, "/")
	return readTrimmed(root + p)
}

// devName is the kernel name of a block device (DEVNAME in uevent).
func devName(e *env, sysDir, fallback string) string {
	if u, err := e.readRaw(sysDir + "/uevent"); err == nil {
		for _, line := range strings.Split(u, "\n") {
			if v, ok := strings.CutPrefix(line, "DEVNAME="); ok {
				return v
			}
		}
	}
	return strings.TrimPrefix(fallback, "/dev/")
}

// activeChoice returns the bracketed entry of a sysfs choice list such as
// "none [mq-deadline] kyber" (or the whole value if nothing is bracketed).
func activeChoice(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '['); i >= 0 {
		if j := strings.IndexByte(s[i:], ']'); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return s
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	major, minor int
	mountPoint   string
	options      string // per-mount options (noatime lives here)
	fsType       string
	source       string
	superOptions string
}

func (e *env) mounts() ([]mountEntry, error) {
	s, err := e.read("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountinfo(s)
}

// parseMountinfo parses proc(5) mountinfo lines:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
func parseMountinfo(s string) ([]mountEntry, error) {
	var out []mountEntry
	for n, line := range strings.Split(s, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+3 {
			return nil, fmt.Errorf("mountinfo line %d: malformed: %q", n+1, line)
		}
		majMin := strings.SplitN(fields[2], ":", 2)
		if len(majMin) != 2 {
			return nil, fmt.Errorf("mountinfo line %d: bad device %q", n+1, fields[2])
		}
		major, err1 := strconv.Atoi(majMin[0])
		minor, err2 := strconv.Atoi(majMin[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("mountinfo line %d: bad device %q", n+1, fields[2])
		}
		m := mountEntry{major: major, minor: minor, mountPoint: unescapeMount(fields[4]),
			options: fields[5], fsType: fields[sep+1], source: unescapeMount(fields[sep+2])}
		if len(fields) > sep+3 {
			m.superOptions = fields[sep+3]
		}
		out = append(out, m)
	}
	return out, nil
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountFor finds the mount holding path: the longest mount point that is
// path or an ancestor of it, the later line winning a tie (a mount over a
// mount hides the one below). Symlinks in path are resolved through Root.
func (e *env) mountFor(path string, mounts []mountEntry) (mountEntry, bool) {
	if resolved, err := filepath.EvalSymlinks(e.path(path)); err == nil {
		if rel, err := filepath.Rel(e.root, resolved); err == nil && !strings.HasPrefix(rel, "..") {
			path = filepath.Join("/", rel)
		}
	}
	best, bestLen := mountEntry{}, -1
	for _, m := range mounts {
		mp := m.mountPoint
		if !(path == mp || mp == "/" || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) {
			continue
		}
		if len(mp) >= bestLen {
			best, bestLen = m, len(mp)
		}
	}
	return best, bestLen >= 0
}
