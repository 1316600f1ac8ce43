package tuning

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fakeSys answers Sys calls from tables, for fixture tests.
type fakeSys struct {
	statfs     map[string]FSStats // missing path: ENOENT
	statfsErr  map[string]error
	readonly   map[string]error // Writable error per path
	nofile     Rlimit
	memlock    Rlimit
	ifs        []NetInterface
	ethtool    map[string]map[uint32]uint32 // missing cmd: EOPNOTSUPP
	ethtoolErr map[string]map[uint32]error
	uring      IOURingProbe
	ringsErr   error      // SetUpRings' answer
	ringPlans  []RingPlan // what SetUpRings was asked
	synced     bool
	clockErr   error
	cpus       int
	ktlsErr    error // KernelTLS' answer
}

func (f *fakeSys) KernelTLS() error { return f.ktlsErr }

func (f *fakeSys) Statfs(path string) (FSStats, error) {
	if err, ok := f.statfsErr[path]; ok {
		return FSStats{}, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	st, ok := f.statfs[path]
	if !ok {
		return FSStats{}, &fs.PathError{Op: "statfs", Path: path, Err: syscall.ENOENT}
	}
	return st, nil
}

func (f *fakeSys) Writable(path string) error {
	if err, ok := f.readonly[path]; ok {
		return &fs.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}

func (f *fakeSys) Rlimit(r Resource) (Rlimit, error) {
	if r == RlimitMEMLOCK {
		return f.memlock, nil
	}
	return f.nofile, nil
}

func (f *fakeSys) NetInterfaces() ([]NetInterface, error) { return f.ifs, nil }

func (f *fakeSys) Ethtool(ifname string, cmd uint32) (uint32, error) {
	if err, ok := f.ethtoolErr[ifname][cmd]; ok {
		return 0, err
	}
	v, ok := f.ethtool[ifname][cmd]
	if !ok {
		return 0, syscall.EOPNOTSUPP
	}
	return v, nil
}

func (f *fakeSys) ProbeIOURing() IOURingProbe { return f.uring }

func (f *fakeSys) SetUpRings(p RingPlan) error {
	f.ringPlans = append(f.ringPlans, p)
	return f.ringsErr
}

func (f *fakeSys) ClockSynced() (bool, error) { return f.synced, f.clockErr }

func (f *fakeSys) UsableCPUs() (int, error) { return f.cpus, nil }

// allOffloads is an ethtool table with every offload set to v.
func allOffloads(v uint32) map[uint32]uint32 {
	m := map[uint32]uint32{}
	for _, o := range offloads {
		m[o.cmd] = v
	}
	return m
}

// fullProbe is a probe result of a kernel that supports every opcode.
func fullProbe() IOURingProbe {
	sup := make([]bool, 63)
	for i := range sup {
		sup[i] = true
	}
	return IOURingProbe{Features: 0x3ffff, Supported: sup}
}

const gib = 1 << 30

// xfsStats is an XFS filesystem with availGiB free of totalGiB.
func stats(magic int64, availGiB, totalGiB uint64) FSStats {
	return FSStats{Type: magic, BlockBytes: 4096, Blocks: totalGiB * gib / 4096, AvailBlocks: availGiB * gib / 4096}
}

// copyTree copies a fixture tree (with its symlinks) to a temp dir so a
// test can override a few files.
func copyTree(t *testing.T, src string, override map[string]string, remove ...string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range override {
		full := filepath.Join(dst, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range remove {
		if err := os.RemoveAll(filepath.Join(dst, p)); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// findingKey is how tests name a finding: "id" or "id@subject".
func findingKey(f Finding) string {
	if f.Subject == "" {
		return f.ID
	}
	return f.ID + "@" + f.Subject
}

func ips(s ...string) []net.IP {
	var out []net.IP
	for _, a := range s {
		out = append(out, net.ParseIP(a))
	}
	return out
}

func hasPrefixAny(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
