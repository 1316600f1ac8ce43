//go:build linux

package netpoll

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// threadNice reads thread tid's nice value (field 19 of
// /proc/self/task/<tid>/stat); ok is false once the thread has ended.
func threadNice(t *testing.T, tid int) (nice int, ok bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if os.IsNotExist(err) || errors.Is(err, syscall.ESRCH) { // gone, or going while read
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // fields[0] is field 3, state
	n, err := strconv.Atoi(fields[19-3])
	if err != nil {
		t.Fatalf("stat of thread %d: %q: %v", tid, s, err)
	}
	return n, true
}

// TestThreadNice (io_uring only, ring.thread.nice): each loop's thread
// runs at the asked nice value while the loop serves, and ends with the
// loop rather than going back to the runtime's pool with it (so does a
// pinned one). A value
// below the process's needs a privilege the test may not have: then the
// loops keep the process's value and serve just the same.
func TestThreadNice(t *testing.T) {
	own, ok := threadNice(t, os.Getpid())
	if !ok {
		t.Fatal("no stat for the main thread")
	}
	for _, want := range []int{7, -3} {
		s := startServer(t, BackendUring, echo, func(o *Options) { o.ThreadNice = want })
		pipelinedEcho(t, dial(t, s), 200, fmt.Sprintf("nice %d", want))
		us := s.b.(*uringServer)
		var tids []int
		for _, l := range us.loops {
			got, ok := threadNice(t, l.tid)
			if !ok {
				t.Fatalf("nice %d: loop %d's thread %d is gone while serving", want, l.idx, l.tid)
			}
			if got != want && !(want < own && got == own) {
				t.Fatalf("nice %d: loop %d's thread runs at %d (the process at %d)", want, l.idx, got, own)
			}
			tids = append(tids, l.tid)
		}
		ctx, cancel := context.WithTimeout(context.Background(), failSafe)
		err := s.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// A loop that ran on the main thread leaves it wedged: the
		// runtime parks the main thread for good when a goroutine
		// locked to it exits, so it runs nothing else either.
		waitUntil(t, fmt.Sprintf("nice %d: the loops' threads ended", want), failSafe, func() bool {
			for _, tid := range tids {
				if _, ok := threadNice(t, tid); ok && tid != os.Getpid() {
					return false
				}
			}
			return true
		})
	}
}
