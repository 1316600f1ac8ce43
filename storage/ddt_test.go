package storage

// Datadriven scripts (github.com/cockroachdb/datadriven, laid out as etcd
// raft's rafttest): testdata/recovery/*.txt damage a log's files and reopen
// it; testdata/log/*.txt append, roll and enforce retention. Each command is
// followed by "----" and the output it must produce ("ok" when it prints
// nothing). go test -run 'TestRecoveryScripts|TestLogScripts' -rewrite
// regenerates the expected output. This file holds the runner and the
// dispatch; each command's handler is in ddt_<command>_test.go.
//
// Commands (seg=N picks a segment by index, negative from the end; default
// the last):
//
//	config [segment-bytes=N] [segment-ms=N] [flush-messages=N] [index-interval=N]
//	       [retention-ms=N] [retention-bytes=N]      settings for the next open
//	set-config [same keys]                            Log.SetConfig on the open log
//	open [clean] [recovery-point=N] [log-start=N]    recovery log lines, then the state
//	close | crash                                     clean close / drop without flushing
//	append [n=N] [records=N] [size=N] [ts=MS]         n batches; ts: first batch's timestamp
//	advance DUR                                       move the log's clock forward
//	retention                                         EnforceRetention at the clock's time
//	delete-records offset=N                           DeleteRecords (-1: the high watermark)
//	segments                                          files in the log directory with sizes
//	truncate cut=N [seg=] | corrupt at=N [seg=] | garbage n=N [seg=] | zeros n=N [seg=]
//	remove-index [seg=] | scribble-index [seg=]       damage a file
//	read [offset=N] [max=N] | list-offsets [ts=N] | verify
//	set-epoch N | epochs | end-offset epoch=N [leader=N] | epoch-file
//	truncate-to offset=N                              (ddt_epoch_test.go)
//	set-hw N | follow-writes | read-replica [offset=N] [max=N]
//	                                                  replicated high watermark (ddt_hw_test.go)

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

func TestRecoveryScripts(t *testing.T) { runScripts(t, "testdata/recovery/*.txt") }

func TestLogScripts(t *testing.T) { runScripts(t, "testdata/log/*.txt") }

// TestLeaderEpochScripts: the leader-epoch cache and TruncateTo
// (ddt_epoch_test.go).
func TestLeaderEpochScripts(t *testing.T) { runScripts(t, "testdata/leader_epoch*.txt") }

// TestHighWatermarkScripts: replicated mode, the high watermark apart from
// the log end (ddt_hw_test.go).
func TestHighWatermarkScripts(t *testing.T) { runScripts(t, "testdata/hw*.txt") }

func runScripts(t *testing.T, pattern string) {
	paths, _ := filepath.Glob(pattern)
	if len(paths) == 0 {
		t.Fatal("no scripts")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			r := &ddRunner{t: t, dir: t.TempDir(), cfg: testConfig(), clock: newFakeClock()}
			defer r.closeLog()
			datadriven.RunTest(t, p, func(t *testing.T, d *datadriven.TestData) string {
				r.t = t
				out := strings.TrimRight(r.handle(d), "\n")
				if out == "" {
					out = "ok"
				}
				return out
			})
		})
	}
}

type ddRunner struct {
	t        *testing.T
	dir      string
	cfg      Config
	clock    *fakeClock
	l        *Log
	seq      int64
	logs     strings.Builder
	rp       int64 // recovery point the last close left
	logStart int64 // log start offset the last close left
}

// handle runs one command and returns its output.
func (r *ddRunner) handle(d *datadriven.TestData) string {
	switch d.Cmd {
	case "config":
		r.handleConfig(d)
		return ""
	case "set-config":
		return r.handleSetConfig(d)
	case "open":
		return r.handleOpen(d)
	case "close":
		return r.handleClose()
	case "crash":
		r.closeLog()
		return ""
	case "append":
		return r.handleAppend(d)
	case "advance":
		return r.handleAdvance(d)
	case "retention":
		return r.handleRetention()
	case "delete-records":
		return r.handleDeleteRecords(d)
	case "segments":
		return r.segments()
	case "truncate":
		return r.handleTruncate(d)
	case "corrupt":
		return r.handleCorrupt(d)
	case "garbage":
		return r.handleGarbage(d)
	case "zeros":
		return r.handleZeros(d)
	case "remove-index":
		return r.handleRemoveIndex(d)
	case "scribble-index":
		return r.handleScribbleIndex(d)
	case "read":
		return r.handleRead(d)
	case "list-offsets":
		return r.handleListOffsets(d)
	case "verify":
		return r.handleVerify()
	case "set-epoch":
		return r.handleSetEpoch(d)
	case "epochs":
		return r.handleEpochs()
	case "end-offset":
		return r.handleEndOffset(d)
	case "epoch-file":
		return r.handleEpochFile(d)
	case "truncate-to":
		return r.handleTruncateTo(d)
	case "set-hw":
		return r.handleSetHW(d)
	case "follow-writes":
		r.l.FollowWrites()
		return r.state()
	case "read-replica":
		return r.handleReadReplica(d)
	}
	d.Fatalf(r.t, "unknown command %q", d.Cmd)
	return ""
}

func (r *ddRunner) closeLog() {
	if r.l != nil {
		r.l.crashClose()
		r.l = nil
	}
}

// arg returns the value of k, and whether it was given (a key without a value
// counts as given, with value "").
func arg(d *datadriven.TestData, k string) (string, bool) {
	a, ok := d.Arg(k)
	if !ok {
		return "", false
	}
	return strings.Join(a.Vals, ","), true
}

func (r *ddRunner) intArg(d *datadriven.TestData, k string, def int64) int64 {
	v, ok := arg(d, k)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		d.Fatalf(r.t, "%s: bad %s=%q", d.Cmd, k, v)
	}
	return n
}

func (r *ddRunner) segFile(d *datadriven.TestData, ext string) string {
	logs, _ := filepath.Glob(filepath.Join(r.dir, "*.log"))
	sort.Strings(logs)
	i := int(r.intArg(d, "seg", int64(len(logs)-1)))
	if i < 0 {
		i += len(logs)
	}
	return strings.TrimSuffix(logs[i], ".log") + ext
}

func (r *ddRunner) state() string {
	l := r.l
	st := fmt.Sprintf("hw=%d log-start=%d recovery-point=%d segments=%d", l.HighWatermark(), l.LogStartOffset(), l.RecoveryPoint(), l.NumSegments())
	if l.Replicated() {
		st += fmt.Sprintf(" log-end=%d replicated", l.LogEndOffset())
	}
	return st
}

func (r *ddRunner) segments() string {
	ents, _ := os.ReadDir(r.dir)
	var b strings.Builder
	for _, e := range ents {
		fi, _ := e.Info()
		fmt.Fprintf(&b, "%s %d\n", e.Name(), fi.Size())
	}
	return b.String()
}
