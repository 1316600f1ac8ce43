//go:build faultinject

package storage

// A test-only slow disk, compiled in only with -tags faultinject (the fault
// schedule builds its ringbrokerd so: tests/integration/cluster_faults_test.go,
// kind slow-disk). When the environment variable FaultInjectSyncDelayEnv names
// a file, every log opened without an explicit IO (all of the daemon's) delays
// each fdatasync by the duration written in that file ("250ms"; missing,
// empty or unparsable: no delay), re-read every faultInjectPoll; each new
// value, once in force, is written to the file's name plus ".applied" so the
// test knows when the disk is slow (or fast again). Production
// binaries are built without the tag and keep NewPortableIO.

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// FaultInjectSyncDelayEnv names the control file of the fdatasync delay.
const FaultInjectSyncDelayEnv = "RINGBROKER_FAULTINJECT_SYNC_DELAY_FILE"

// faultInjectPoll is how often the control file is re-read.
const faultInjectPoll = 50 * time.Millisecond

// faultInjectDelayMax bounds the delay whatever the file says.
const faultInjectDelayMax = 10 * time.Second

func init() {
	path := os.Getenv(FaultInjectSyncDelayEnv)
	if path == "" {
		return
	}
	d := &syncDelay{}
	d.read(path)
	go func() {
		for range time.Tick(faultInjectPoll) {
			d.read(path)
		}
	}()
	newDefaultIO = func() IO { return &slowSyncIO{inner: NewPortableIO(), d: d} }
	fmt.Fprintf(os.Stderr, "faultinject: every fdatasync delayed by the duration in %s\n", path)
}

// syncDelay is the current fdatasync delay.
type syncDelay struct {
	ns   atomic.Int64
	told bool // the current value is in the .applied file (the poller's only)
}

func (d *syncDelay) read(path string) {
	var v time.Duration
	if b, err := os.ReadFile(path); err == nil {
		if p, err := time.ParseDuration(strings.TrimSpace(string(b))); err == nil && p > 0 {
			v = min(p, faultInjectDelayMax)
		}
	}
	if d.ns.Swap(int64(v)) != int64(v) || !d.told {
		// Best effort: the test waits for it, bounded.
		if os.WriteFile(path+".applied", []byte(v.String()), 0o644) == nil {
			d.told = true
		}
	}
}

func (d *syncDelay) sleep() {
	if v := time.Duration(d.ns.Load()); v > 0 {
		time.Sleep(v)
	}
}

// slowSyncIO is a PortableIO whose every fdatasync first waits the delay.
type slowSyncIO struct {
	inner IO
	d     *syncDelay
}

func (s *slowSyncIO) Writev(f *os.File, iov [][]byte, off int64, datasync bool) (int, bool, error) {
	n, _, err := s.inner.Writev(f, iov, off, false)
	if err != nil || !datasync || n < iovLen(iov) {
		return n, false, err
	}
	if err := s.Datasync(f); err != nil {
		return n, false, err
	}
	return n, true, nil
}

func (s *slowSyncIO) Datasync(f *os.File) error {
	s.d.sleep()
	return s.inner.Datasync(f)
}

func (s *slowSyncIO) Close() error { return s.inner.Close() }
