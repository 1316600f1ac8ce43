package broker

// Datadriven scripts (github.com/cockroachdb/datadriven, laid out as etcd
// raft's rafttest) against a real Broker served in-process over loopback, as
// startTestBroker serves it, with requests sent at exactly the version
// written (prodConn). testdata/idempotence/*.txt: idempotent produce
// sequences; testdata/fetch_sessions/*.txt: KIP-227 incremental fetch
// sessions. Every script runs on each netpoll backend and must give the same
// output on both. go test -run 'TestIdempotenceScripts|TestFetchSessionScripts'
// -rewrite regenerates the expected output. This file holds the runner and
// the dispatch; each command's handler is in ddt_<command>_test.go.
//
// Commands:
//
//	start [slots=N] [partitions-max=N]        start the broker (fetch session cache bounds)
//	restart [lose-snapshots]                  clean stop and start on the same data dir; with
//	                                          lose-snapshots the producer snapshots are removed
//	                                          in between (state is rebuilt from the log)
//	create-topic name [partitions=N]
//	init-producer name [v=N]                  InitProducerId; name stands for the producer id
//	produce [producer=name] [epoch=N] [seq=N] [n=N] [topic=T] [p=N]
//	                                          one batch of n records (default: not idempotent);
//	                                          a producer name never initialised is an unknown id
//	fetch [session=0|name] [epoch=N] [add=(t/p[@offset], ...)] [forget=(t/p, ...)] [v=N]
//	                                          one Fetch; a response's new session id gets the
//	                                          next name s1, s2, ...
//	sessions                                  the fetch session cache
//	set-epoch session=name epoch=N            set the epoch a session expects next (to
//	                                          reach the 2^31-1 wrap without 2^31 fetches)
//	advance DUR                               step the fetch session cache's clock

import (
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestIdempotenceScripts(t *testing.T) { runBrokerScripts(t, "testdata/idempotence") }

func TestFetchSessionScripts(t *testing.T) { runBrokerScripts(t, "testdata/fetch_sessions") }

func runBrokerScripts(t *testing.T, dir string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	if len(paths) == 0 {
		t.Fatal("no scripts")
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		for _, p := range paths {
			t.Run(filepath.Base(p), func(t *testing.T) {
				r := &ddBroker{t: t, backend: backend, producers: map[string]int64{}, sessions: map[string]int32{}}
				r.nowNs.Store(time.Unix(1e6, 0).UnixNano())
				datadriven.RunTest(t, p, func(t *testing.T, d *datadriven.TestData) string {
					r.t = t
					return r.handle(d)
				})
			})
		}
	})
}

// ddBroker is the runner's state: the broker, a raw connection to it, and the
// names the script gave producer ids and fetch sessions.
type ddBroker struct {
	t       *testing.T
	backend string
	tb      *testBroker
	conn    *prodConn
	nowNs   atomic.Int64 // the fetch session cache's clock

	producers map[string]int64 // name -> producer id
	unknown   int64            // producer ids handed to never-initialised names
	sessions  map[string]int32 // name -> fetch session id
}

func (r *ddBroker) handle(d *datadriven.TestData) string {
	if r.tb == nil && d.Cmd != "start" {
		d.Fatalf(r.t, "start first")
	}
	switch d.Cmd {
	case "start":
		return r.handleStart(d)
	case "restart":
		return r.handleRestart(d)
	case "create-topic":
		return r.handleCreateTopic(d)
	case "init-producer":
		return r.handleInitProducer(d)
	case "produce":
		return r.handleProduce(d)
	case "fetch":
		return r.handleFetch(d)
	case "sessions":
		return r.handleSessions()
	case "set-epoch":
		return r.handleSetEpoch(d)
	case "advance":
		return r.handleAdvance(d)
	}
	d.Fatalf(r.t, "unknown command %q", d.Cmd)
	return ""
}

// pos returns the i-th positional argument (a key without a value).
func (r *ddBroker) pos(d *datadriven.TestData, i int) string {
	n := 0
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			if n == i {
				return a.Key
			}
			n++
		}
	}
	d.Fatalf(r.t, "%s: missing argument %d", d.Cmd, i+1)
	return ""
}

func (r *ddBroker) intArg(d *datadriven.TestData, k string, def int64) int64 {
	a, ok := d.Arg(k)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(a.SingleVal(r.t), 10, 64)
	if err != nil {
		d.Fatalf(r.t, "%s: bad %s: %v", d.Cmd, k, err)
	}
	return n
}

func (r *ddBroker) strArg(d *datadriven.TestData, k, def string) string {
	a, ok := d.Arg(k)
	if !ok {
		return def
	}
	return a.SingleVal(r.t)
}

// sessionName is the script's name for a fetch session id, naming it on
// first sight.
func (r *ddBroker) sessionName(id int32) string {
	if id == 0 {
		return "0"
	}
	for n, sid := range r.sessions {
		if sid == id {
			return n
		}
	}
	n := "s" + strconv.Itoa(len(r.sessions)+1)
	r.sessions[n] = id
	return n
}

func ddCode(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return err.(*kerr.Error).Message
	}
	return strconv.Itoa(int(code))
}
