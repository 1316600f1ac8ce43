package txn

import (
	"fmt"
	"testing"
	"time"
)

// FuzzEvents feeds random event sequences (InitProducerId with and without
// KIP-360 fields, AddPartitions, its verify-only form and transactions
// v2's implicit add (AddPartitionsV2), AddOffsets,
// EndTxn v1/v2, stale-epoch zombies, write completions and failures,
// marker completions, time steps with Tick, and failovers that reload the
// coordinator from the records written so far) for three transactional
// ids, playing the broker, and checks after every step:
//   - every request is answered exactly once, at once or from a later
//     WriteDone (a failover drops the waiting ones, as the broker then
//     answers NOT_COORDINATOR), and at most one write is outstanding per id;
//   - state and pending agree (checkInvariants);
//   - an id in Prepare* whose Complete* record is not out yet has marker
//     work outstanding;
//   - for a producer id, the epoch never decreases, and a load never goes
//     below an epoch that was written;
//   - a successful InitProducerId or EndTxn answer names the id's current
//     producer (or, for EndTxn, the one it moves to);
//   - hostile requests (a known producer id with a guessed epoch, -1
//     included) break none of the above;
//   - in the end, with every write and marker completed and time run out,
//     nothing is left waiting and every id has expired.
func FuzzEvents(f *testing.F) {
	f.Add([]byte{0, 0, 4, 0, 1, 3, 4, 0, 3, 1, 4, 0, 6, 0, 4, 0})
	f.Add([]byte{0, 1, 4, 1, 1, 1, 4, 1, 0, 1, 4, 1, 6, 1, 4, 1, 7, 200, 8, 0})
	f.Add([]byte{0, 2, 5, 2, 0, 2, 4, 2, 1, 2, 4, 2, 7, 255, 7, 255, 4, 2, 6, 2, 4, 2, 9, 2, 3, 0x22})
	f.Add([]byte{0, 0, 4, 0, 1, 4, 4, 0, 2, 0, 4, 0, 3, 0x10, 4, 0, 8, 0, 6, 0, 4, 0, 0, 0, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 600 {
			data = data[:600]
		}
		r := newFuzzRun(t)
		ids := []string{"a", "b", "c"}
		for i := 0; i+1 < len(data); i += 2 {
			op, arg := data[i]%10, data[i+1]
			id := ids[int(arg)%len(ids)]
			cl := r.clients[id]
			parts := []TopicPartition{{"t", int32(arg>>2) % 3}, {"u", int32(arg>>4) % 2}}[:1+int(arg>>6)%2]
			switch op {
			case 0:
				pid, epoch := int64(-1), int16(-1)
				if arg&0x80 != 0 && cl.pid >= 0 {
					pid, epoch = cl.pid, cl.epoch
				}
				r.request(r.c.InitProducerID(id, int32(1000+int(arg>>3)*500), pid, epoch, r.now))
			case 1:
				if arg&0x60 == 0x20 {
					// Transactions v2's implicit add (a partition leader's).
					r.request(r.c.AddPartitionsV2(id, cl.pid, cl.epoch, parts, r.now))
					break
				}
				r.request(r.c.AddPartitions(id, cl.pid, cl.epoch, parts, arg&0x40 != 0, r.now))
			case 2:
				r.request(r.c.AddOffsets(id, cl.pid, cl.epoch, fmt.Sprintf("g%d", arg>>5), r.now))
			case 3:
				r.request(r.c.EndTxn(id, cl.pid, cl.epoch, arg&0x10 != 0, int16(arg>>5&1)*2, r.now))
			case 4, 5:
				r.writeDone(id, op == 4)
			case 6:
				r.markersDone(id)
			case 7:
				r.advance(time.Duration(arg) * 20 * time.Millisecond)
			case 8:
				r.load()
			default:
				if m := r.c.Transaction(id); m != nil && arg&0x40 != 0 {
					// A hostile client that knows the producer id and
					// guesses an epoch in [-1, 2].
					epoch := int16(arg&3) - 1
					if arg&0x80 != 0 {
						r.request(r.c.AddPartitions(id, m.ProducerID, epoch, parts, arg&0x20 != 0, r.now))
					} else {
						r.request(r.c.EndTxn(id, m.ProducerID, epoch, arg&0x10 != 0, int16(arg>>5&1)*2, r.now))
					}
					break
				}
				// A zombie with the epoch before the current one.
				r.request(r.c.EndTxn(id, cl.pid, cl.epoch-1, arg&0x10 != 0, 0, r.now))
			}
		}
		r.drain()
	})
}

type fuzzRun struct {
	t        *testing.T
	cfg      Config
	c        *Coordinator
	now      time.Time
	nextPID  int64
	log      []Record
	inflight map[string]Write
	markers  map[string]bool
	clients  map[string]*client
	waiting  int // requests not yet answered
	// epochs is the highest epoch seen per (id, producer id); written the
	// highest written to the log.
	epochs, written map[string]int16
}

func newFuzzRun(t *testing.T) *fuzzRun {
	r := &fuzzRun{t: t, now: time.Unix(1000, 0), inflight: map[string]Write{}, markers: map[string]bool{},
		clients: map[string]*client{"a": {-1, -1}, "b": {-1, -1}, "c": {-1, -1}},
		epochs:  map[string]int16{}, written: map[string]int16{}}
	r.cfg = Config{MaxTimeout: 10 * time.Second, IDExpiration: time.Minute, MaxTransactionalIDs: 2, MaxPartitionsPerTxn: 4,
		CoordinatorEpoch: 1, TransactionVersionLevel: 2,
		NewProducerID: func() (int64, error) { r.nextPID++; return r.nextPID, nil }}
	r.c = New(r.cfg)
	return r
}

func epochKey(id string, pid int64) string { return fmt.Sprintf("%s/%d", id, pid) }

// request takes the effects of a request: an immediate answer or none (it
// waits for a WriteDone).
func (r *fuzzRun) request(e Effects) {
	r.waiting++
	r.effects(e)
}

func (r *fuzzRun) effects(e Effects) {
	t := r.t
	for _, a := range e.Answers {
		r.waiting--
		if r.waiting < 0 {
			t.Fatalf("answer %+v to no request", a)
		}
		if a.Err != 0 || (a.API != APIInitProducerID && a.API != APIEndTxn) || a.ProducerID == -1 {
			continue
		}
		m := r.c.Transaction(a.TxnID)
		if m == nil {
			t.Fatalf("answer %+v for an unknown id", a)
		}
		cur := m.ProducerID == a.ProducerID && m.ProducerEpoch == a.ProducerEpoch
		next := a.API == APIEndTxn && m.pending != nil && m.pending.to.ProducerID == a.ProducerID &&
			m.pending.to.ProducerEpoch == a.ProducerEpoch
		if !cur && !next {
			t.Fatalf("answer %+v does not name the producer of %+v", a, m)
		}
		r.clients[a.TxnID] = &client{a.ProducerID, a.ProducerEpoch}
	}
	for _, w := range e.Writes {
		if _, dup := r.inflight[w.TxnID]; dup {
			t.Fatalf("a second write outstanding for %s", w.TxnID)
		}
		r.inflight[w.TxnID] = w
	}
	for _, m := range e.Markers {
		if len(m.Partitions) == 0 || m.CoordinatorEpoch != r.cfg.CoordinatorEpoch {
			t.Fatalf("marker work %+v", m)
		}
		r.markers[m.TxnID] = true
	}
	r.check()
}

func (r *fuzzRun) writeDone(id string, ok bool) {
	w, found := r.inflight[id]
	delete(r.inflight, id)
	if found && ok {
		r.log = append(r.log, Record{Key: w.Key, Value: w.Value})
		if w.Value != nil {
			v, err := DecodeValue(w.Value)
			if err != nil {
				r.t.Fatal(err)
			}
			k := epochKey(id, v.ProducerID)
			if e, seen := r.written[k]; !seen || v.ProducerEpoch > e {
				r.written[k] = v.ProducerEpoch
			}
		}
	}
	r.effects(r.c.WriteDone(id, ok, r.now))
}

func (r *fuzzRun) markersDone(id string) {
	delete(r.markers, id)
	r.effects(r.c.MarkersDone(id))
}

func (r *fuzzRun) advance(d time.Duration) {
	r.now = r.now.Add(d)
	r.effects(r.c.Tick(r.now))
}

// load is a failover: a new coordinator epoch loads what was written;
// requests waiting on the old coordinator are answered NOT_COORDINATOR by
// the broker, its writes and markers are abandoned.
func (r *fuzzRun) load() {
	r.cfg.CoordinatorEpoch++
	r.c = New(r.cfg)
	r.waiting, r.inflight, r.markers = 0, map[string]Write{}, map[string]bool{}
	e, err := r.c.Load(r.log, r.now)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, id := range r.c.IDs() {
		m := r.c.Transaction(id)
		if w, ok := r.written[epochKey(id, m.ProducerID)]; ok && m.ProducerEpoch < w {
			r.t.Fatalf("%s loaded at epoch %d below the written %d", id, m.ProducerEpoch, w)
		}
	}
	r.epochs = map[string]int16{}
	r.effects(e)
}

// drain completes every write and marker and lets time run out.
func (r *fuzzRun) drain() {
	for round := 0; round < 20; round++ {
		for _, id := range []string{"a", "b", "c"} {
			if r.markers[id] {
				r.markersDone(id)
			}
			if _, ok := r.inflight[id]; ok {
				r.writeDone(id, true)
			}
		}
		r.advance(time.Minute)
	}
	if r.waiting != 0 || len(r.inflight) != 0 || len(r.markers) != 0 || r.c.NumIDs() != 0 {
		r.t.Fatalf("after draining: %d requests waiting, writes %v, markers %v, ids %v", r.waiting, r.inflight, r.markers, r.c.IDs())
	}
}

func (r *fuzzRun) check() {
	t := r.t
	t.Helper()
	checkInvariants(t, r.c)
	for _, id := range r.c.IDs() {
		m := r.c.Transaction(id)
		if m.State.isPrepare() && !m.pending.issued && !m.pending.retry && !r.markers[id] {
			t.Fatalf("%s in %v without marker work outstanding", id, m.State)
		}
		if p := m.pending; p != nil && p.issued {
			if _, ok := r.inflight[id]; !ok {
				t.Fatalf("%s: pending %v issued but no write outstanding", id, p.to.State)
			}
		}
		k := epochKey(id, m.ProducerID)
		if e, seen := r.epochs[k]; seen && m.ProducerEpoch < e {
			t.Fatalf("%s: epoch went from %d to %d", k, e, m.ProducerEpoch)
		}
		r.epochs[k] = m.ProducerEpoch
	}
}

// checkInvariants checks what must hold of every id between calls.
func checkInvariants(t *testing.T, c *Coordinator) {
	t.Helper()
	if c.NumIDs() > c.cfg.MaxTransactionalIDs {
		t.Fatalf("%d ids > max %d", c.NumIDs(), c.cfg.MaxTransactionalIDs)
	}
	for id, m := range c.ids {
		if m.TransactionalID != id {
			t.Fatalf("id %s holds %s", id, m.TransactionalID)
		}
		if m.State == Dead || m.State == PrepareEpochFence || !m.State.valid() {
			t.Fatalf("%s rests in %v", id, m.State)
		}
		if (m.State == Empty || m.State.isComplete()) && len(m.partitions) != 0 {
			t.Fatalf("%s: %v with partitions %v", id, m.State, m.Partitions())
		}
		if len(m.partitions) > c.cfg.MaxPartitionsPerTxn {
			t.Fatalf("%s: %d partitions", id, len(m.partitions))
		}
		p := m.pending
		if m.State.isPrepare() {
			want := CompleteCommit
			if m.State == PrepareAbort {
				want = CompleteAbort
			}
			if p == nil || p.kind != pendingComplete || p.to.State != want {
				t.Fatalf("%s: %v without its completion pending (%+v)", id, m.State, p)
			}
		}
		if p == nil {
			continue
		}
		if p.kind == pendingComplete && !m.State.isPrepare() {
			t.Fatalf("%s: completion pending in %v", id, m.State)
		}
		if p.to.State == PrepareEpochFence || !validTransition(m.State, p.to.State) {
			t.Fatalf("%s: pending %v -> %v", id, m.State, p.to.State)
		}
		if p.retry && p.issued {
			t.Fatalf("%s: pending both issued and waiting to retry", id)
		}
		if !p.issued && !p.retry && p.kind != pendingComplete {
			t.Fatalf("%s: pending %v never handed out", id, p.to.State)
		}
	}
}
