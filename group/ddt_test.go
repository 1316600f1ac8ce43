package group

// Datadriven scripts (github.com/cockroachdb/datadriven, laid out as etcd
// raft's rafttest): each testdata/*.txt file is a script of commands, each
// followed by "----" and the output it must produce. Run with -rewrite to
// regenerate the expected outputs after an intended change, then review the
// diff. This file holds the harness and the dispatch; each command's handler
// is in ddt_<command>_test.go.
//
// Commands (group defaults to "g"; <client> names a simulated consumer
// whose member id and generation the runner remembers):
//
//	config [delay=DUR] [min=DUR] [max=DUR] [maxmembers=N] [maxgroups=N]   fresh coordinator, t=0
//	join <client> [group=] [member=ID|-] [instance=] [protocols=a,b] [meta=S] [topics=t1+t2] [type=consumer]
//	     [session=DUR] [rebalance=DUR] [v=N]        (v>=4 requires a known member id, KIP-394)
//	sync <client> [gen=N] [assign=c1:x,c2:y] [proto=P]
//	heartbeat <client> [gen=N]
//	leave <client>[,<client>...] [instance=I] [by=instance]
//	commit <client> [gen=N]          OffsetCommit validation (member commit)
//	simple-commit [group=]           gen -1, no member
//	apply topic=T p=N offset=N [group=]
//	delete [group=]                  DeleteGroups
//	delete-offsets topic=T p=N [group=]
//	expire [retention=DUR] [exists=topicA,topicB]
//	advance DUR                      move time forward and run Tick
//	state [group=]                   dump one group
//	groups                           list groups
//	persisted                        records written through Persist since the last call
//	restart                          reload a fresh coordinator from every persisted record

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestDataDriven(t *testing.T) {
	// testdata/*.txt only: testdata/fuzz is the fuzzer's corpus.
	paths, _ := filepath.Glob("testdata/*.txt")
	if len(paths) == 0 {
		t.Fatal("no testdata")
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			h := newHarness()
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				return h.handle(t, d)
			})
		})
	}
}

// ddArgs are a command's arguments: positional ones (no "=") in order, and
// key=value ones by key.
type ddArgs struct {
	pos []string
	kv  map[string]string
}

func (a ddArgs) arg0() string {
	if len(a.pos) == 0 {
		return ""
	}
	return a.pos[0]
}

// group is the group= argument, "g" when absent.
func (a ddArgs) group() string {
	if g, ok := a.kv["group"]; ok {
		return g
	}
	return "g"
}

func parseArgs(d *datadriven.TestData) ddArgs {
	a := ddArgs{kv: map[string]string{}}
	for _, arg := range d.CmdArgs {
		if len(arg.Vals) == 0 {
			a.pos = append(a.pos, arg.Key)
			continue
		}
		a.kv[arg.Key] = strings.Join(arg.Vals, ",")
	}
	return a
}

// handle runs one command and returns its output.
func (h *harness) handle(t *testing.T, d *datadriven.TestData) string {
	var out strings.Builder
	h.out = &out
	a := parseArgs(d)
	switch d.Cmd {
	case "config":
		h.handleConfig(t, a)
	case "join":
		h.handleJoin(t, a)
	case "sync":
		h.handleSync(t, a)
	case "heartbeat":
		h.handleHeartbeat(t, a)
	case "leave":
		h.handleLeave(a)
	case "commit":
		h.handleCommit(t, a)
	case "simple-commit":
		h.handleSimpleCommit(a)
	case "apply":
		h.handleApply(t, a)
	case "delete":
		h.handleDelete(a)
	case "delete-offsets":
		h.handleDeleteOffsets(t, a)
	case "expire":
		h.handleExpire(t, a)
	case "advance":
		h.handleAdvance(t, a)
	case "state":
		h.dumpGroup(h.c.Group(a.group()))
	case "groups":
		h.handleGroups()
	case "persisted":
		h.handlePersisted()
	case "restart":
		h.handleRestart(t)
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	return out.String()
}

type ddClient struct {
	member string
	gen    int32
}

type persisted struct {
	group      string
	key, value []byte
}

type harness struct {
	c        *Coordinator
	cfg      Config
	now      time.Time
	clients  map[string]*ddClient
	out      *strings.Builder
	records  []persisted
	newSince int
}

func newHarness() *harness {
	h := &harness{now: time.Unix(1000, 0), clients: map[string]*ddClient{}}
	h.cfg = Config{MinSessionTimeout: time.Second, MaxSessionTimeout: time.Minute}
	h.reset()
	return h
}

func (h *harness) reset() {
	cfg := h.cfg
	cfg.Persist = func(g string, k, v []byte) { h.records = append(h.records, persisted{g, k, v}) }
	cfg.SessionExpired = func(g, member string, lastSeen time.Time, session time.Duration) {
		fmt.Fprintf(h.out, "%s: session expired in %s (last seen %v ago, session %v)\n", h.name(member), g, h.now.Sub(lastSeen), session)
	}
	h.c = New(cfg)
}

func (h *harness) client(name string) *ddClient {
	c := h.clients[name]
	if c == nil {
		c = &ddClient{gen: -1}
		h.clients[name] = c
	}
	return c
}

// name maps a member id back to its client name for readable output.
func (h *harness) name(member string) string {
	if member == "" {
		return "-"
	}
	for n, c := range h.clients {
		if c.member == member {
			return n
		}
	}
	return member
}

func codeName(code int16) string {
	if code == 0 {
		return "ok"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return err.(*kerr.Error).Message
	}
	return strconv.Itoa(int(code))
}

func dur(t *testing.T, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("bad duration %q", s)
	}
	return d
}

func num(t *testing.T, s string, def int) int {
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return n
}
