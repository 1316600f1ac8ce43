package group

// A small datadriven runner (etcd raft / pebble style): each
// testdata/*.txt file is a script of commands, each followed by "----" and
// the output it must produce, ended by a blank line. Run with -rewrite to
// regenerate the expected outputs after an intended change, then review
// the diff.
//
// Commands (group defaults to "g"; <client> names a simulated consumer
// whose member id and generation the runner remembers):
//
//	config [delay=DUR] [min=DUR] [max=DUR] [maxmembers=N] [maxgroups=N]   fresh coordinator, t=0
//	join <client> [group=] [member=ID|-] [instance=] [protocols=a,b] [meta=S] [topics=t1+t2] [type=consumer]
//	     [session=DUR] [rebalance=DUR] [v=N]        (v>=4 requires a known member id, KIP-394)
//	sync <client> [gen=N] [assign=c1:x,c2:y] [proto=P]
//	heartbeat <client> [gen=N]
//	leave <client>[,<client>...] [instance=I]
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
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt expected outputs")

type ddCase struct {
	pre      string // comments and blank lines before the command
	cmd      string
	expected string
	line     int
}

func parseScript(t *testing.T, path string) ([]ddCase, string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []ddCase
	var pre strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre.WriteString(l + "\n")
			continue
		}
		c := ddCase{pre: pre.String(), cmd: l, line: line}
		pre.Reset()
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: command not followed by ----", path, line)
		}
		line++
		var exp []string
		for sc.Scan() {
			line++
			if sc.Text() == "" {
				break
			}
			exp = append(exp, sc.Text())
		}
		c.expected = strings.Join(exp, "\n")
		cases = append(cases, c)
	}
	return cases, pre.String()
}

func TestDataDriven(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cases, tail := parseScript(t, f)
			h := newHarness()
			var out strings.Builder
			for _, c := range cases {
				got := strings.TrimRight(h.run(t, c.cmd), "\n")
				if *rewrite {
					out.WriteString(c.pre + c.cmd + "\n----\n")
					if got != "" {
						out.WriteString(got + "\n")
					}
					out.WriteString("\n")
					continue
				}
				if got != c.expected {
					t.Errorf("%s:%d: %s\n--- got:\n%s\n--- want:\n%s", f, c.line, c.cmd, got, c.expected)
				}
			}
			if *rewrite {
				s := strings.TrimRight(out.String()+tail, "\n") + "\n"
				if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
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

func parseArgs(t *testing.T, fields []string) (pos []string, kv map[string]string) {
	kv = map[string]string{}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	return pos, kv
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

func (h *harness) run(t *testing.T, line string) string {
	var out strings.Builder
	h.out = &out
	fields := strings.Fields(line)
	pos, kv := parseArgs(t, fields[1:])
	group, ok := kv["group"]
	if !ok {
		group = "g"
	}
	arg0 := ""
	if len(pos) > 0 {
		arg0 = pos[0]
	}
	switch fields[0] {
	case "config":
		h.cfg = Config{InitialRebalanceDelay: dur(t, kv["delay"], 0), MinSessionTimeout: dur(t, kv["min"], time.Second),
			MaxSessionTimeout: dur(t, kv["max"], time.Minute), MaxMembers: num(t, kv["maxmembers"], 0),
			MaxGroups: num(t, kv["maxgroups"], 0)}
		h.clients = map[string]*ddClient{}
		h.records = nil
		h.newSince = 0
		h.reset()
	case "join":
		name := arg0
		cl := h.client(name)
		member := cl.member
		if m, ok := kv["member"]; ok {
			member = m
			if m == "-" {
				member = ""
			}
		}
		var protos []Protocol
		ps := kv["protocols"]
		if ps == "" {
			ps = "range"
		}
		for _, p := range strings.Split(ps, ",") {
			md := []byte(kv["meta"] + ":" + p)
			if ts := kv["topics"]; ts != "" {
				cm := kmsg.ConsumerMemberMetadata{Topics: strings.Split(ts, "+")}
				md = cm.AppendTo(nil)
			}
			protos = append(protos, Protocol{Name: p, Metadata: md})
		}
		typ := kv["type"]
		if typ == "" {
			typ = "consumer"
		}
		req := JoinRequest{Group: group, MemberID: member, InstanceID: kv["instance"], ClientID: name, ClientHost: "/127.0.0.1",
			ProtocolType: typ, Protocols: protos, SessionTimeout: dur(t, kv["session"], 10*time.Second),
			RebalanceTimeout: dur(t, kv["rebalance"], 10*time.Second), RequireKnownMemberID: num(t, kv["v"], 5) >= 4}
		h.c.Join(h.now, req, func(r JoinResult) {
			if r.Err == 0 || r.Err == kerr.MemberIDRequired.Code {
				cl.member = r.MemberID
			}
			if r.Err != 0 {
				fmt.Fprintf(h.out, "%s: join %s member=%s\n", name, codeName(r.Err), r.MemberID)
				return
			}
			cl.gen = r.Generation
			fmt.Fprintf(h.out, "%s: join ok gen=%d member=%s leader=%s proto=%s", name, r.Generation, r.MemberID, h.name(r.Leader), r.Protocol)
			if r.SkipAssignment {
				fmt.Fprintf(h.out, " skip-assignment")
			}
			if len(r.Members) > 0 {
				var ms []string
				for _, m := range r.Members {
					md := string(m.Metadata)
					var cm kmsg.ConsumerMemberMetadata
					if cm.ReadFrom(m.Metadata) == nil && len(cm.Topics) > 0 {
						md = strings.Join(cm.Topics, "+")
					}
					ms = append(ms, h.name(m.MemberID)+"="+md)
				}
				fmt.Fprintf(h.out, " members=[%s]", strings.Join(ms, " "))
			}
			fmt.Fprintln(h.out)
		})
	case "sync":
		name := arg0
		cl := h.client(name)
		gen := int32(num(t, kv["gen"], int(cl.gen)))
		assign := map[string][]byte{}
		if a := kv["assign"]; a != "" {
			for _, pair := range strings.Split(a, ",") {
				c, v, _ := strings.Cut(pair, ":")
				assign[h.client(c).member] = []byte(v)
			}
		}
		h.c.Sync(h.now, SyncRequest{Group: group, MemberID: cl.member, InstanceID: kv["instance"], Generation: gen,
			Protocol: kv["proto"], Assignments: assign}, func(r SyncResult) {
			if r.Err != 0 {
				fmt.Fprintf(h.out, "%s: sync %s\n", name, codeName(r.Err))
				return
			}
			fmt.Fprintf(h.out, "%s: sync ok assignment=%q\n", name, r.Assignment)
		})
	case "heartbeat":
		cl := h.client(arg0)
		code := h.c.Heartbeat(h.now, group, cl.member, kv["instance"], int32(num(t, kv["gen"], int(cl.gen))))
		fmt.Fprintf(&out, "%s: heartbeat %s\n", arg0, codeName(code))
	case "leave":
		var lms []LeaveMember
		names := strings.Split(arg0, ",")
		for _, n := range names {
			lm := LeaveMember{MemberID: h.client(n).member, InstanceID: kv["instance"]}
			if kv["instance"] != "" && kv["by"] == "instance" {
				lm.MemberID = ""
			}
			lms = append(lms, lm)
		}
		codes := h.c.Leave(h.now, group, lms)
		for i, n := range names {
			fmt.Fprintf(&out, "%s: leave %s\n", n, codeName(codes[i]))
		}
	case "commit":
		cl := h.client(arg0)
		code := h.c.CheckCommit(h.now, group, cl.member, kv["instance"], int32(num(t, kv["gen"], int(cl.gen))))
		fmt.Fprintf(&out, "%s: commit %s\n", arg0, codeName(code))
	case "simple-commit":
		fmt.Fprintf(&out, "simple-commit %s\n", codeName(h.c.CheckCommit(h.now, group, "", "", -1)))
	case "apply":
		h.c.ApplyOffset(h.now, group, TopicPartition{kv["topic"], int32(num(t, kv["p"], 0))},
			Offset{Offset: int64(num(t, kv["offset"], 0)), LeaderEpoch: -1, CommitTimestamp: h.now.UnixMilli()})
		// The broker persists committed offsets itself; record it here
		// too so "restart" sees it.
		tp := TopicPartition{kv["topic"], int32(num(t, kv["p"], 0))}
		o, _ := h.c.FetchOffset(group, tp)
		h.records = append(h.records, persisted{group, OffsetKey(group, tp), OffsetValue(o)})
	case "delete":
		fmt.Fprintf(&out, "delete %s\n", codeName(h.c.DeleteGroup(group)))
	case "delete-offsets":
		top, codes := h.c.DeleteOffsets(group, []TopicPartition{{kv["topic"], int32(num(t, kv["p"], 0))}})
		fmt.Fprintf(&out, "delete-offsets %s", codeName(top))
		for _, c := range codes {
			fmt.Fprintf(&out, " %s", codeName(c))
		}
		fmt.Fprintln(&out)
	case "expire":
		var exists func(string, int32) bool
		if e, ok := kv["exists"]; ok {
			set := map[string]bool{}
			for _, s := range strings.Split(e, ",") {
				set[s] = true
			}
			exists = func(topic string, _ int32) bool { return set[topic] }
		}
		n := h.c.ExpireOffsets(h.now, dur(t, kv["retention"], 0), exists)
		fmt.Fprintf(&out, "expired %d offsets\n", n)
	case "advance":
		h.now = h.now.Add(dur(t, arg0, 0))
		h.c.Tick(h.now)
	case "state":
		h.dumpGroup(&out, h.c.Group(group))
	case "groups":
		for _, g := range h.c.Groups() {
			fmt.Fprintf(&out, "%s %s %s\n", g.ID, g.State, g.ProtocolType)
		}
	case "persisted":
		for _, r := range h.records[h.newSince:] {
			fmt.Fprintln(&out, describeRecord(r.key, r.value))
		}
		h.newSince = len(h.records)
	case "restart":
		h.reset()
		for _, r := range h.records {
			if err := h.c.Load(h.now, r.key, r.value); err != nil {
				t.Fatal(err)
			}
		}
		h.c.FinishLoad(h.now)
		h.newSince = len(h.records)
	default:
		t.Fatalf("unknown command %q", fields[0])
	}
	return out.String()
}

func (h *harness) dumpGroup(out *strings.Builder, g *Group) {
	if g == nil {
		fmt.Fprintln(out, "no group")
		return
	}
	fmt.Fprintf(out, "%s: %s gen=%d type=%s proto=%s leader=%s\n", g.ID, g.State, g.Generation, g.ProtocolType, g.Protocol, h.name(g.Leader))
	for _, m := range g.Members() {
		fmt.Fprintf(out, "  member %s id=%s", h.name(m.ID), m.ID)
		if m.InstanceID != "" {
			fmt.Fprintf(out, " instance=%s", m.InstanceID)
		}
		fmt.Fprintf(out, " session=%s assignment=%q\n", m.SessionTimeout, m.Assignment)
	}
	if len(g.pending) > 0 {
		var ids []string
		for id := range g.pending {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Fprintf(out, "  pending %s\n", strings.Join(ids, " "))
	}
	for _, o := range g.Offsets() {
		fmt.Fprintf(out, "  offset %s-%d=%d\n", o.Topic, o.Partition, o.Offset.Offset)
	}
}

func describeRecord(key, value []byte) string {
	switch int16(key[0])<<8 | int16(key[1]) {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		k.ReadFrom(key)
		if value == nil {
			return fmt.Sprintf("offset %s %s-%d tombstone", k.Group, k.Topic, k.Partition)
		}
		var v kmsg.OffsetCommitValue
		v.ReadFrom(value)
		return fmt.Sprintf("offset %s %s-%d=%d", k.Group, k.Topic, k.Partition, v.Offset)
	default:
		var k kmsg.GroupMetadataKey
		k.ReadFrom(key)
		if value == nil {
			return fmt.Sprintf("group %s tombstone", k.Group)
		}
		var v kmsg.GroupMetadataValue
		v.ReadFrom(value)
		var ms []string
		for _, m := range v.Members {
			ms = append(ms, fmt.Sprintf("%s:%q", m.MemberID, m.Assignment))
		}
		return fmt.Sprintf("group %s type=%s gen=%d proto=%s leader=%s members=[%s]", k.Group, v.ProtocolType, v.Generation,
			deref(v.Protocol), deref(v.Leader), strings.Join(ms, " "))
	}
}
