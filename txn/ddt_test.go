package txn

// Datadriven scripts (github.com/cockroachdb/datadriven, as group/): each
// testdata/*.txt file is a script of commands, each followed by "----" and
// the effects it must produce. Run with -rewrite to regenerate the expected
// outputs after an intended change, then review the diff.
//
// The harness plays the broker: it keeps the writes handed out (one per id
// at most) until a "written" command reports them, appends the successful
// ones to a simulated __transaction_state log that "load" replays into a
// fresh Coordinator, and remembers the producer id and epoch each client
// last got, so pid=/epoch= may be left out.
//
// Commands (times are durations since the script's start):
//
//	config [maxtimeout=DUR] [expiration=DUR] [maxids=N] [maxparts=N] [tv=N] [coordepoch=N]
//	       fresh coordinator and log, t=0, producer ids from 0
//	next-pid N [fail=CODE]           the allocator's next id; fail= makes it fail with that code
//	init <id> [timeout=DUR] [pid=N epoch=N]       InitProducerId (timeout default 60s)
//	add <id> parts=t-0,u-1 [verify|v2] [pid=N] [epoch=N]   AddPartitionsToTxn (v2: the implicit add of transactions v2)
//	offsets <id> group=G [pid=N] [epoch=N]        AddOffsetsToTxn
//	end <id> commit|abort [v=2] [pid=N] [epoch=N]  EndTxn
//	written <id> [fail]              WriteDone for the id's outstanding write
//	markers <id>                     MarkersDone
//	advance DUR                      move time forward and Tick
//	state [<id>]                     dump one id, or every id
//	log <id> state=S pid=N epoch=N [parts=..] [start=DUR] [tv=N] [next=N] [prev=N] [keyversion=N]
//	log <id> tombstone               append a crafted value (or a tombstone) to the log
//	load                             fresh coordinator (coordinator epoch + 1) loaded from the log

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

type ddArgs struct {
	pos []string
	kv  map[string]string
}

func (a ddArgs) arg(i int) string {
	if i >= len(a.pos) {
		return ""
	}
	return a.pos[i]
}

func (a ddArgs) has(s string) bool {
	for _, p := range a.pos {
		if p == s {
			return true
		}
	}
	return false
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

type client struct {
	pid   int64
	epoch int16
}

type harness struct {
	cfg      Config
	c        *Coordinator
	start    time.Time
	now      time.Time
	nextPID  int64
	pidFail  int16
	log      []Record
	inflight map[string]Write
	clients  map[string]*client
	out      *strings.Builder
}

func newHarness() *harness {
	h := &harness{}
	h.reset(Config{CoordinatorEpoch: 1})
	return h
}

func (h *harness) reset(cfg Config) {
	h.start = time.Unix(1000, 0)
	h.now = h.start
	h.nextPID, h.pidFail, h.log = 0, 0, nil
	h.inflight, h.clients = map[string]Write{}, map[string]*client{}
	h.cfg = cfg
	h.newCoordinator()
}

func (h *harness) newCoordinator() {
	cfg := h.cfg
	cfg.NewProducerID = func() (int64, error) {
		if h.pidFail != 0 {
			return 0, kerr.ErrorForCode(h.pidFail)
		}
		id := h.nextPID
		h.nextPID++
		return id, nil
	}
	cfg.OffsetsPartition = func(g string) int32 { return int32(len(g)) }
	h.c = New(cfg)
	h.inflight = map[string]Write{}
}

func (h *harness) handle(t *testing.T, d *datadriven.TestData) string {
	var out strings.Builder
	h.out = &out
	a := parseArgs(d)
	id := a.arg(0)
	if id == `""` {
		id = ""
	}
	switch d.Cmd {
	case "config":
		h.reset(Config{MaxTimeout: dur(t, a.kv["maxtimeout"], 0), IDExpiration: dur(t, a.kv["expiration"], 0),
			MaxTransactionalIDs: num(t, a.kv["maxids"], 0), MaxPartitionsPerTxn: num(t, a.kv["maxparts"], 0),
			TransactionVersionLevel: int16(num(t, a.kv["tv"], 0)), CoordinatorEpoch: int32(num(t, a.kv["coordepoch"], 1))})
	case "next-pid":
		h.nextPID = int64(num(t, id, 0))
		h.pidFail = int16(num(t, a.kv["fail"], 0))
	case "init":
		pid, epoch := int64(-1), int16(-1)
		if _, ok := a.kv["pid"]; ok {
			pid, epoch = int64(num(t, a.kv["pid"], 0)), int16(num(t, a.kv["epoch"], 0))
		}
		h.effects(t, h.c.InitProducerID(id, int32(dur(t, a.kv["timeout"], time.Minute).Milliseconds()), pid, epoch, h.now))
	case "add":
		pid, epoch := h.producer(t, id, a)
		if a.has("v2") {
			h.effects(t, h.c.AddPartitionsV2(id, pid, epoch, parsePartitions(t, a.kv["parts"]), h.now))
			break
		}
		h.effects(t, h.c.AddPartitions(id, pid, epoch, parsePartitions(t, a.kv["parts"]), a.has("verify"), h.now))
	case "offsets":
		pid, epoch := h.producer(t, id, a)
		h.effects(t, h.c.AddOffsets(id, pid, epoch, a.kv["group"], h.now))
	case "end":
		pid, epoch := h.producer(t, id, a)
		h.effects(t, h.c.EndTxn(id, pid, epoch, a.has("commit"), int16(num(t, a.kv["v"], 0)), h.now))
	case "written":
		w, ok := h.inflight[id]
		if !ok {
			fmt.Fprintf(h.out, "(no write outstanding for %s)\n", id)
		}
		delete(h.inflight, id)
		if ok && !a.has("fail") {
			h.log = append(h.log, Record{Key: w.Key, Value: w.Value})
		}
		h.effects(t, h.c.WriteDone(id, !a.has("fail"), h.now))
	case "markers":
		h.effects(t, h.c.MarkersDone(id))
	case "advance":
		h.now = h.now.Add(dur(t, id, 0))
		h.effects(t, h.c.Tick(h.now))
	case "state":
		ids := h.c.IDs()
		if id != "" {
			ids = []string{id}
		}
		for _, id := range ids {
			h.dump(id)
		}
	case "log":
		h.handleLog(t, id, a)
	case "load":
		h.cfg.CoordinatorEpoch++
		h.newCoordinator()
		e, err := h.c.Load(h.log, h.now)
		if err != nil {
			fmt.Fprintf(h.out, "error: %v\n", err)
		}
		h.effects(t, e)
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	return out.String()
}

// producer returns pid=/epoch= or what the client last got.
func (h *harness) producer(t *testing.T, id string, a ddArgs) (int64, int16) {
	cl := h.clients[id]
	if cl == nil {
		cl = &client{-1, -1}
	}
	return int64(num(t, a.kv["pid"], int(cl.pid))), int16(num(t, a.kv["epoch"], int(cl.epoch)))
}

// effects prints e and plays the broker's part: writes become outstanding,
// answers with a producer id update the client.
func (h *harness) effects(t *testing.T, e Effects) {
	for _, a := range e.Answers {
		fmt.Fprintf(h.out, "answer %s %s: %s", a.API, a.TxnID, codeName(a.Err))
		if a.API == APIInitProducerID || a.API == APIEndTxn {
			fmt.Fprintf(h.out, " pid=%d epoch=%d", a.ProducerID, a.ProducerEpoch)
			// As the Java client: an EndTxn answer without a producer id
			// (transactions v1) leaves the producer as it is.
			if a.Err == 0 && a.ProducerID != -1 {
				h.clients[a.TxnID] = &client{a.ProducerID, a.ProducerEpoch}
			}
		}
		for _, r := range a.Partitions {
			fmt.Fprintf(h.out, " %v=%s", r.TopicPartition, codeName(r.Err))
		}
		fmt.Fprintln(h.out)
	}
	for _, w := range e.Writes {
		if _, dup := h.inflight[w.TxnID]; dup {
			t.Fatalf("second write outstanding for %s", w.TxnID)
		}
		h.inflight[w.TxnID] = w
		fmt.Fprintf(h.out, "write %s\n", h.describe(t, w.Key, w.Value))
	}
	for _, m := range e.Markers {
		what := "abort"
		if m.Commit {
			what = "commit"
		}
		fmt.Fprintf(h.out, "markers %s: %s pid=%d epoch=%d coordinator-epoch=%d %v\n", m.TxnID, what, m.ProducerID,
			m.ProducerEpoch, m.CoordinatorEpoch, m.Partitions)
	}
}

func (h *harness) rel(ms int64) string {
	if ms == -1 {
		return "-1"
	}
	return (time.Duration(ms-h.start.UnixMilli()) * time.Millisecond).String()
}

func (h *harness) describe(t *testing.T, key, value []byte) string {
	id, err := DecodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if value == nil {
		return id + ": tombstone"
	}
	v, err := DecodeValue(value)
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("%s: v%d %v pid=%d epoch=%d timeout=%dms start=%s update=%s parts=%v", id, int16(value[1]), v.State,
		v.ProducerID, v.ProducerEpoch, v.TimeoutMs, h.rel(v.StartTimestamp), h.rel(v.LastUpdateTimestamp), v.Partitions)
	if value[1] == 1 {
		s += fmt.Sprintf(" prev=%d next=%d tv=%d", v.PreviousProducerID, v.NextProducerID, v.ClientTransactionVersion)
	}
	return s
}

func (h *harness) dump(id string) {
	m := h.c.Transaction(id)
	if m == nil {
		fmt.Fprintf(h.out, "%s: unknown\n", id)
		return
	}
	fmt.Fprintf(h.out, "%s: %v pid=%d epoch=%d last-epoch=%d prev=%d next=%d timeout=%dms start=%s update=%s tv=%d parts=%v",
		id, m.State, m.ProducerID, m.ProducerEpoch, m.LastProducerEpoch, m.PreviousProducerID, m.NextProducerID, m.TimeoutMs,
		h.rel(m.StartTimestamp), h.rel(m.LastUpdateTimestamp), m.ClientTransactionVersion, m.Partitions())
	if p := m.pending; p != nil {
		how := "unwritten"
		switch {
		case p.retry:
			how = "retry"
		case p.issued:
			how = "written"
		}
		fmt.Fprintf(h.out, " pending=%v(%s)", p.to.State, how)
	}
	if m.hasFailedEpochFence {
		fmt.Fprint(h.out, " failed-fence")
	}
	fmt.Fprintln(h.out)
}

func (h *harness) handleLog(t *testing.T, id string, a ddArgs) {
	key := EncodeKey(id)
	key[1] = byte(num(t, a.kv["keyversion"], 0))
	if a.has("tombstone") {
		h.log = append(h.log, Record{Key: key})
		return
	}
	var st State = -1
	for s := Empty; s <= PrepareEpochFence; s++ {
		if s.String() == a.kv["state"] {
			st = s
		}
	}
	if st < 0 {
		t.Fatalf("bad state %q", a.kv["state"])
	}
	start := int64(-1)
	if s, ok := a.kv["start"]; ok {
		start = h.start.Add(dur(t, s, 0)).UnixMilli()
	}
	v := LogValue{ProducerID: int64(num(t, a.kv["pid"], 0)), PreviousProducerID: int64(num(t, a.kv["prev"], -1)),
		NextProducerID: int64(num(t, a.kv["next"], -1)), ProducerEpoch: int16(num(t, a.kv["epoch"], 0)), TimeoutMs: 60000,
		State: st, Partitions: parsePartitions(t, a.kv["parts"]), StartTimestamp: start, LastUpdateTimestamp: h.now.UnixMilli(),
		ClientTransactionVersion: int16(num(t, a.kv["tv"], 0))}
	h.log = append(h.log, Record{Key: key, Value: EncodeValue(&v, 1)})
}

func parsePartitions(t *testing.T, s string) []TopicPartition {
	var out []TopicPartition
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		i := strings.LastIndexByte(f, '-')
		if i < 0 {
			t.Fatalf("bad partition %q", f)
		}
		out = append(out, TopicPartition{f[:i], int32(num(t, f[i+1:], 0))})
	}
	return out
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
