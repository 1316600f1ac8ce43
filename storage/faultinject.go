//go:build faultinject

package storage

// A test-only slow or failing disk, compiled in only with -tags faultinject
// (the fault schedule builds its ringbrokerd so: tests/integration/
// cluster_faults_test.go, kind slow-disk; and the log dir failure tests,
// tests/integration/logdir_failure_test.go).
//
// Slow: when the environment variable FaultInjectSyncDelayEnv names
// a file, every log opened without an explicit IO (all of the daemon's) delays
// each fdatasync by the duration written in that file ("250ms"; missing,
// empty or unparsable: no delay), re-read every faultInjectPoll; each new
// value, once in force, is written to the file's name plus ".applied" so the
// test knows when the disk is slow (or fast again).
//
// Failing: when FaultInjectWriteErrorEnv names a file, every data write
// and fdatasync of those logs fails with the errno the file names
// ("ENOSPC" or "EIO"; missing, empty or anything else: no error), as
// storage.FaultIO's SetWriteError does, re-read every faultInjectPoll and
// acknowledged in the file's name plus ".applied" likewise. It is the same
// os.PathError over the same errno a real disk gives, so the log dir
// failure path (logdir_failure.go) takes it as it would a real one.
//
// Production binaries are built without the tag and keep NewPortableIO.

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// FaultInjectSyncDelayEnv names the control file of the fdatasync delay.
const FaultInjectSyncDelayEnv = "RINGBROKER_FAULTINJECT_SYNC_DELAY_FILE"

// faultInjectPoll is how often the control file is re-read.
const faultInjectPoll = 50 * time.Millisecond

// faultInjectDelayMax bounds the delay whatever the file says.
const faultInjectDelayMax = 10 * time.Second

// FaultInjectWriteErrorEnv names the control file of the injected write
// and fdatasync error.
const FaultInjectWriteErrorEnv = "RINGBROKER_FAULTINJECT_WRITE_ERROR_FILE"

func init() {
	delayPath, errPath := os.Getenv(FaultInjectSyncDelayEnv), os.Getenv(FaultInjectWriteErrorEnv)
	if delayPath == "" && errPath == "" {
		return
	}
	d, w := &syncDelay{}, &writeError{}
	if delayPath != "" {
		d.read(delayPath)
		fmt.Fprintf(os.Stderr, "faultinject: every fdatasync delayed by the duration in %s\n", delayPath)
	}
	if errPath != "" {
		w.read(errPath)
		fmt.Fprintf(os.Stderr, "faultinject: every write and fdatasync of partition logs fails with the errno named in %s\n", errPath)
	}
	go func() {
		for range time.Tick(faultInjectPoll) {
			if delayPath != "" {
				d.read(delayPath)
			}
			if errPath != "" {
				w.read(errPath)
			}
		}
	}()
	newDefaultIO = func() IO { return &slowSyncIO{inner: NewPortableIO(), d: d, w: w} }
}

// writeError is the current injected errno (0: none).
type writeError struct {
	errno atomic.Uintptr
	told  bool // the current value is in the .applied file (the poller's only)
}

func (w *writeError) read(path string) {
	var v syscall.Errno
	name := ""
	if b, err := os.ReadFile(path); err == nil {
		switch strings.ToUpper(strings.TrimSpace(string(b))) {
		case "ENOSPC":
			v, name = syscall.ENOSPC, "ENOSPC"
		case "EIO":
			v, name = syscall.EIO, "EIO"
		}
	}
	if w.errno.Swap(uintptr(v)) != uintptr(v) || !w.told {
		if os.WriteFile(path+".applied", []byte(name), 0o644) == nil {
			w.told = true
		}
	}
}

// err is the injected error for op on f, or nil.
func (w *writeError) err(op string, f *os.File) error {
	if v := syscall.Errno(w.errno.Load()); v != 0 {
		return &os.PathError{Op: op, Path: f.Name(), Err: v}
	}
	return nil
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

// slowSyncIO is a PortableIO whose every fdatasync first waits the delay,
// and whose writes and fdatasyncs fail with the injected error while one
// is set.
type slowSyncIO struct {
	inner IO
	d     *syncDelay
	w     *writeError
}

func (s *slowSyncIO) Writev(f *os.File, iov [][]byte, off int64, datasync bool) (int, bool, error) {
	if err := s.w.err("pwritev", f); err != nil {
		return 0, false, err
	}
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
	if err := s.w.err("fdatasync", f); err != nil {
		return err
	}
	return s.inner.Datasync(f)
}

func (s *slowSyncIO) Close() error { return s.inner.Close() }
