package broker

// Idempotent producer state, per partition (Kafka's ProducerStateManager;
// its transaction side, the last stable offset and markers, is in
// produce_txn.go).
//
// For every producer id that wrote to a partition we keep its epoch, the
// last sequence accepted and the last producerBatchesKept batches' (first
// sequence, last sequence, base offset). A produced batch from an idempotent
// producer is checked against that state and appended under the partition's
// producer-state lock (partState.mu), so the order in which batches pass the
// check is the order the log assigns offsets (storage.Append assigns in the
// order its calls take the log lock):
//
//   - same epoch, (firstSeq, lastSeq) equal to a cached batch: a retried
//     duplicate. Nothing is written; the answer is NONE with the original
//     base offset (once the original's write completed: a duplicate of a
//     batch still being written waits for it).
//   - same epoch, firstSeq != lastSeq+1: OUT_OF_ORDER_SEQUENCE_NUMBER.
//   - older epoch: INVALID_PRODUCER_EPOCH (what Kafka 2.7+ answers on
//     Produce; PRODUCER_FENCED is for transactional coordinators).
//   - newer epoch: accepted only with firstSeq 0 (else OUT_OF_ORDER).
//   - unknown producer id: accepted only with firstSeq 0, else
//     UNKNOWN_PRODUCER_ID.
//
// Concurrency: partState.mu guards producers, completedEnd and the snapshot
// counters. It is taken on ring threads (the check + Append, no I/O), on the
// log writer goroutine (AppendDone) and on produce workers; it is never held
// across I/O. Lock order: partState.mu before the log's own lock (Append is
// called with it held); the log never calls back with its lock held.
// snapshotMu serialises snapshot file writes (I/O, workers and Close only).
//
// Durability: state is loaded lazily, on a produce worker, the first time an
// idempotent batch reaches the partition: the newest snapshot
// (<partition dir>/<20-digit offset>.snapshot, Kafka's naming) whose offset
// is within the log, then the batch headers of the log after that offset
// (Log.Read regions + pread of 61-byte headers). Snapshots are written on a
// worker every snapshotEveryBytes appended and by Broker.CloseProducerState
// at clean shutdown, so an unclean start rescans at most that much log.
// Deleting a topic drops its partitions' state (forgetProducerState, after
// holdProducerSnapshots kept snapshots out of the dirs being removed): no
// snapshot of it is written afterwards, into a missing dir at shutdown or
// into the dir of a topic re-created under the same name.
//
// Transactional batches pass the same checks, then:
// a non-transactional batch from a producer whose transaction is open is
// INVALID_TXN_STATE; a transactional one from a producer with none begins
// a transaction (produce_txn.go).
//
// Differences from Kafka: producer ids do not expire (Kafka drops them after
// producer.id.expiration.ms); state of producers whose batches were all
// removed by retention or DeleteRecords is kept (Kafka drops it, then
// accepts any sequence); a write that fails after being accepted drops the
// producer's state (the client then sees UNKNOWN_PRODUCER_ID and resets).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/storage"
)

// producerBatchesKept is Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN,
// which is also the client's max.in.flight bound for idempotence.
const producerBatchesKept = 5

// snapshotEveryBytes: a partition's producer state is snapshotted after this
// many bytes were appended since the last snapshot. A variable for tests.
var snapshotEveryBytes int64 = 64 << 20

// snapshotsKept: older snapshot files are deleted beyond this many (one
// spare in case recovery truncates the log below the newest).
const snapshotsKept = 2

// seqBatch is one cached batch of a producer.
type seqBatch struct {
	firstSeq, lastSeq int32
	baseOffset        int64 // -1 while its write is in flight
	appendTime        int64 // LogAppendTime ms, or -1
	waiters           []*partSlot
}

// producerEntry is one producer's state in one partition.
type producerEntry struct {
	epoch   int16
	lastSeq int32
	// coordEpoch is the coordinator epoch of the last marker (-1: none).
	coordEpoch int32
	// lastTimestamp: max timestamp of the producer's last batch or marker
	// (DescribeProducers), -1 unknown.
	lastTimestamp int64
	// txn is the producer's current transaction (nil: none), also in
	// partState.ongoing (produce_txn.go).
	txn     *openTxn
	n       int // batches[0:n], oldest first
	batches [producerBatchesKept]seqBatch
}

func (e *producerEntry) push(b seqBatch) {
	if e.n == producerBatchesKept {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = b
	e.n++
	e.lastSeq = b.lastSeq
}

// newEpoch resets e for a new producer epoch, keeping its open
// transaction and coordinator epoch (Kafka keeps currentTxnFirstOffset).
// No sequence yet (-1, Kafka's NO_SEQUENCE): the epoch's first batch
// starts at 0, also after a transactions-v2 marker bumped the epoch.
func (e *producerEntry) newEpoch(epoch int16) {
	txn, ce, ts := e.txn, e.coordEpoch, e.lastTimestamp
	*e = producerEntry{epoch: epoch, lastSeq: -1, txn: txn, coordEpoch: ce, lastTimestamp: ts}
}

// markerReadMax bounds the control batch a load reads whole (a marker is
// about 80 bytes).
const markerReadMax = 4096

func (e *producerEntry) find(first, last int32) *seqBatch {
	for i := 0; i < e.n; i++ {
		if b := &e.batches[i]; b.firstSeq == first && b.lastSeq == last {
			return b
		}
	}
	return nil
}

// inSequence: next follows last, with Kafka's wrap from MaxInt32 to 0.
func inSequence(last, next int32) bool {
	return next == last+1 || (last == math.MaxInt32 && next == 0)
}

// partState is one partition's producer state and produce-path bookkeeping.
type partState struct {
	p      *Partition
	worker *produceWorker
	logger *zap.Logger
	// loaded: producers reflects the log (set once, by a worker). Until then
	// idempotent batches go through the worker, which loads first.
	loaded atomic.Bool
	// queued counts produce jobs of this partition waiting on its worker:
	// while > 0 every batch of the partition queues behind them, so batches
	// of one connection keep their order.
	queued atomic.Int32

	mu           sync.Mutex
	producers    map[int64]*producerEntry
	ongoing      map[*openTxn]struct{}       // transactions without a written marker
	lsoWaiters   map[storage.Waiter]struct{} // parked fetches (produce_txn.go)
	completedEnd int64                       // end offset of the last completed append seen
	sinceSnap    int64                       // bytes completed since the last snapshot
	snapQueued   bool

	snapshotMu sync.Mutex
	// deleting (guarded by snapshotMu): the partition is being deleted; no
	// snapshot may be written into its dir, which is about to go (and may
	// come back for a topic re-created under the same name).
	deleting bool
}

// produceState is the broker's produce capability (Broker.produce, made by
// New): partition producer states, the producer id allocator and the
// produce worker pool (produce_workers.go), which Broker.Close stops.
type produceState struct {
	b       *Broker
	parts   sync.Map // *Partition -> *partState
	pids    pidAllocator
	workers produceWorkers
}

func newProduceState(b *Broker) *produceState {
	s := &produceState{b: b}
	s.pids.path = filepath.Join(b.opts.DataDir, producerIDFile)
	s.workers.init(max(runtime.GOMAXPROCS(0), 2))
	return s
}

// part returns p's state, creating it (no I/O) on first use.
func (s *produceState) part(p *Partition) *partState {
	if v, ok := s.parts.Load(p); ok {
		return v.(*partState)
	}
	ps := &partState{p: p, worker: s.workers.workerFor(p), logger: s.b.log}
	v, loaded := s.parts.LoadOrStore(p, ps)
	if !loaded {
		s.b.installStableOffset(p) // (again, for a partition newer than New)
	}
	return v.(*partState)
}

// appendOutcome is what appendBatch did with a batch.
type appendOutcome uint8

const (
	outAppended appendOutcome = iota // queued in the log; AppendDone will answer the slot
	outAnswered                      // the slot was answered (error or known duplicate)
	outWaiting                       // a duplicate of an in-flight batch: answered when it completes
	outBacklog                       // log backlog full; nothing done, retry later
)

// appendBatch checks batch against the producer state and appends it.
// REQUIRES: ps loaded, or bi not idempotent. Never blocks on I/O.
func (ps *partState) appendBatch(bi *batchInfo, slot *partSlot) appendOutcome {
	rb := bi.batch
	slot.ps, slot.size = ps, int64(len(rb.Bytes()))
	slot.pid = -1
	if !bi.idempotent() {
		return ps.logAppend(rb, slot)
	}
	pid, epoch := rb.ProducerID(), rb.ProducerEpoch()
	first, last := rb.BaseSequence(), rb.LastSequence()
	transactional := rb.Transactional()
	ps.mu.Lock()
	e := ps.producers[pid]
	if e != nil && e.epoch == epoch {
		if dup := e.find(first, last); dup != nil {
			if dup.baseOffset < 0 {
				dup.waiters = append(dup.waiters, slot)
				ps.mu.Unlock()
				return outWaiting
			}
			base, at := dup.baseOffset, dup.appendTime
			ps.mu.Unlock()
			slot.answerAppended(ps.p, storage.AppendResult{BaseOffset: base, LastOffset: base + int64(rb.LastOffsetDelta()),
				LogAppendTime: at, LogStartOffset: ps.p.Log.LogStartOffset()})
			return outAnswered
		}
	}
	var code *kerr.Error
	switch {
	case e == nil:
		if first != 0 {
			code = kerr.UnknownProducerID
		}
	case epoch < e.epoch:
		code = kerr.InvalidProducerEpoch
	case epoch > e.epoch:
		if first != 0 {
			code = kerr.OutOfOrderSequenceNumber
		}
	case !inSequence(e.lastSeq, first):
		code = kerr.OutOfOrderSequenceNumber
	}
	if code == nil && e != nil && e.txn != nil && !transactional {
		code = kerr.InvalidTxnState // Kafka's appendDataBatch
	}
	if code != nil {
		ps.mu.Unlock()
		slot.done(code.Code, -1, -1, -1, "")
		return outAnswered
	}
	slot.pid, slot.epoch, slot.firstSeq, slot.lastSeq = pid, epoch, first, last
	// Read before the append: a lower bound of the offset it gets.
	hwBefore := ps.p.Log.HighWatermark()
	out := ps.logAppend(rb, slot)
	if out == outAppended {
		if e == nil {
			if ps.producers == nil {
				ps.producers = make(map[int64]*producerEntry)
			}
			e = &producerEntry{epoch: epoch, coordEpoch: -1, lastTimestamp: -1}
			ps.producers[pid] = e
		} else if e.epoch != epoch {
			e.newEpoch(epoch)
		}
		e.push(seqBatch{firstSeq: first, lastSeq: last, baseOffset: -1, appendTime: -1})
		e.lastTimestamp = rb.MaxTimestamp()
		if transactional && e.txn == nil {
			slot.txnStart = ps.beginTxn(pid, e, hwBefore)
		}
	}
	ps.mu.Unlock()
	return out
}

// logAppend appends and maps the log's refusals to Kafka codes.
func (ps *partState) logAppend(rb proto.RecordBatch, slot *partSlot) appendOutcome {
	// Every batch reaching here was framed and CRC-checked by validateBatch
	// (or built, with a fresh CRC, by recompress): the log parses nothing
	// again.
	var err error
	if slot.inlineOK {
		// On the ring thread (produceAll): the log may leave the write to
		// us; serveProduce runs it once it holds no locks (RunInline).
		var run bool
		run, err = ps.p.Log.AppendBatchInline(rb, slot)
		if run {
			slot.ctx.inline = append(slot.ctx.inline, ps.p.Log)
		}
	} else {
		err = ps.p.Log.AppendBatch(rb, slot)
	}
	if err == nil {
		return outAppended
	}
	var code *kerr.Error
	switch {
	case errors.Is(err, storage.ErrBacklog):
		return outBacklog
	case errors.Is(err, storage.ErrClosed):
		code = kerr.NotLeaderForPartition // the partition is going away: retriable
	case errors.Is(err, storage.ErrCorruptBatch):
		code = kerr.CorruptMessage
	case errors.Is(err, storage.ErrInvalidBatch):
		code = kerr.InvalidRecord
	default:
		code = kerr.KafkaStorageError
	}
	slot.done(code.Code, -1, -1, -1, "")
	return outAnswered
}

// completed records the outcome of an append made through slot: fills in
// the cached batch's offset, answers duplicates waiting on it and schedules
// a snapshot when enough was appended. Runs on the log writer goroutine
// (append.inline: on serveProduce's thread, after appendBatch released
// ps.mu).
func (ps *partState) completed(slot *partSlot, res *storage.AppendResult) {
	var waiters []*partSlot
	ps.mu.Lock()
	if res.Err == nil {
		ps.completedEnd = res.LastOffset + 1
		ps.sinceSnap += slot.size
	}
	if t := slot.txnStart; t != nil && res.Err == nil {
		t.first, t.exact = res.BaseOffset, true
	}
	if slot.pid >= 0 {
		if e := ps.producers[slot.pid]; e != nil && e.epoch == slot.epoch {
			if b := e.find(slot.firstSeq, slot.lastSeq); b != nil && b.baseOffset < 0 {
				waiters, b.waiters = b.waiters, nil
				b.baseOffset, b.appendTime = res.BaseOffset, res.LogAppendTime
			}
			if res.Err != nil && e.txn == nil {
				// (With a transaction open the entry stays: it holds the
				// LSO, and the client aborts. produce_txn.go)
				delete(ps.producers, slot.pid)
			}
		}
	}
	snap := ps.loaded.Load() && ps.sinceSnap >= snapshotEveryBytes && !ps.snapQueued
	if snap {
		ps.snapQueued = true
	}
	ps.mu.Unlock()
	code := int16(0)
	if res.Err != nil {
		code = kerr.KafkaStorageError.Code
	}
	for _, w := range waiters {
		if code != 0 {
			w.done(code, res.BaseOffset, res.LogAppendTime, res.LogStartOffset, "")
		} else {
			w.answerAppended(ps.p, *res)
		}
	}
	if snap {
		// Refused only once Broker.Close stops the pool, which writes
		// the final snapshot itself.
		ps.worker.enqueue(&produceJob{ps: ps, snapshot: true})
	}
}

// load builds the state from the newest usable snapshot and the log after
// it. Runs on the partition's worker; the lock is held only to install the
// result, never across the reads.
func (ps *partState) load(logger *zap.Logger) error {
	if ps.loaded.Load() {
		return nil
	}
	producers, ongoing, hw, err := readProducers(ps.p.Log, logger)
	if err != nil {
		return err
	}
	ps.mu.Lock()
	ps.producers = producers
	ps.ongoing = ongoing
	if hw > ps.completedEnd {
		ps.completedEnd = hw
	}
	ps.loaded.Store(true)
	ps.mu.Unlock()
	return nil
}

// readProducers reads a partition's producer state from the log alone: the
// newest usable snapshot, then the batches after it up to the log end
// (every completed write, as Kafka rebuilds it: on a replicated leader the
// high watermark may be below it), which it returns too, with the
// transactions still open.
func readProducers(l *storage.Log, logger *zap.Logger) (map[int64]*producerEntry, map[*openTxn]struct{}, int64, error) {
	hw := l.LogEndOffset()
	producers := map[int64]*producerEntry{}
	ongoing := map[*openTxn]struct{}{}
	from := l.LogStartOffset()
	if off, ok := readNewestSnapshot(l.FS(), l.Dir(), hw, producers, ongoing, logger); ok && off > from {
		from = off
	}
	if err := scanProducerBatches(l, from, hw, producers, ongoing); err != nil {
		return nil, nil, 0, err
	}
	return producers, ongoing, hw, nil
}

// scanProducerBatches replays the producer fields of the batch headers in
// [from, hw) into producers, and transactions and markers into ongoing
// (re-deriving the transaction index entries of ABORT markers).
func scanProducerBatches(l *storage.Log, from, hw int64, producers map[int64]*producerEntry, ongoing map[*openTxn]struct{}) error {
	var hdr [proto.RecordBatchHeaderSize]byte
	for off := from; off < hw; {
		r, err := l.ReadReplica(off, 1<<20) // up to the log end
		if err != nil {
			if errors.Is(err, storage.ErrOffsetOutOfRange) {
				return nil // retention moved the start meanwhile: nothing older to see
			}
			return err
		}
		if r.Len == 0 {
			r.Release()
			return nil
		}
		next := off
		for pos, end := r.Pos, r.Pos+r.Len; pos < end; {
			if _, err := r.File.ReadAt(hdr[:], pos); err != nil {
				r.Release()
				return fmt.Errorf("reading batch header at %d: %w", pos, err)
			}
			h, err := proto.ParseRecordBatchHeader(hdr[:])
			if err != nil {
				r.Release()
				return fmt.Errorf("batch header at %d: %w", pos, err)
			}
			length := int64(h.Size())
			base, lod, pid := h.BaseOffset(), h.LastOffsetDelta(), h.ProducerID()
			if pid >= 0 && h.Control() && base+int64(lod) >= off && length <= markerReadMax {
				whole := make([]byte, length)
				if _, err := r.File.ReadAt(whole, pos); err != nil {
					r.Release()
					return fmt.Errorf("reading control batch at %d: %w", pos, err)
				}
				if rb, _, err := proto.ParseRecordBatch(whole); err == nil {
					if err := replayMarker(l, rb, producers, ongoing); err != nil {
						r.Release()
						return err
					}
				}
			}
			if pid >= 0 && !h.Control() && base+int64(lod) >= off {
				epoch, seq := h.ProducerEpoch(), h.BaseSequence()
				at := int64(-1)
				if h.LogAppendTime() {
					at = h.MaxTimestamp()
				}
				e := producers[pid]
				if e == nil {
					e = &producerEntry{epoch: epoch, coordEpoch: -1, lastTimestamp: -1}
					producers[pid] = e
				} else if e.epoch != epoch {
					e.newEpoch(epoch)
				}
				e.push(seqBatch{firstSeq: seq, lastSeq: proto.AddSequence(seq, lod), baseOffset: base, appendTime: at})
				e.lastTimestamp = h.MaxTimestamp()
				replayTxnBatch(e, pid, h.Transactional(), base, ongoing)
			}
			next = base + int64(lod) + 1
			pos += length
		}
		r.Release()
		if next <= off {
			return nil
		}
		off = next
	}
	return nil
}

// Snapshot file format (ours; Kafka's is a different schema), big-endian:
//
//	"RBPSNAP2"  magic ("RBPSNAP1": the same without the v2 fields, still read)
//	int64       end offset: the state covers every batch below it
//	uint32      producer count, then per producer:
//	  int64 producerId, int16 epoch, int32 lastSeq,
//	  v2: int32 coordinatorEpoch (-1 none), int64 currentTxnFirstOffset (-1 none),
//	      int64 lastTimestamp (-1 unknown),
//	  uint8 n, n x (int32 firstSeq, int32 lastSeq, int64 baseOffset, int64 appendTime)
//	uint32      CRC32C of everything above
//
// currentTxnFirstOffset is Kafka's field of the same name: the first offset
// of the producer's transaction open at the end offset, so a restart
// restores the last stable offset without reading the log before it.
const (
	snapshotMagic   = "RBPSNAP2"
	snapshotMagicV1 = "RBPSNAP1"
)

// encodeSnapshot serialises the completed part of the state.
// REQUIRES: ps.mu held.
func (ps *partState) encodeSnapshot() (end int64, data []byte) {
	data = append(data, snapshotMagic...)
	data = binary.BigEndian.AppendUint64(data, uint64(ps.completedEnd))
	countAt := len(data)
	data = binary.BigEndian.AppendUint32(data, 0)
	count := 0
	// Transactions open at completedEnd: begun below it (exact), their
	// marker not completed (still in ongoing, attached or not).
	txnFirst := map[int64]int64{}
	for t := range ps.ongoing {
		if t.exact && t.first < ps.completedEnd {
			if f, ok := txnFirst[t.pid]; !ok || t.first < f {
				txnFirst[t.pid] = t.first
			}
		}
	}
	for pid, e := range ps.producers {
		n := 0
		for n < e.n && e.batches[n].baseOffset >= 0 {
			n++
		}
		first, open := txnFirst[pid]
		if n == 0 && !open && e.coordEpoch < 0 {
			continue
		}
		if !open {
			first = -1
		}
		lastSeq := e.lastSeq
		if n > 0 {
			lastSeq = e.batches[n-1].lastSeq
		}
		count++
		data = binary.BigEndian.AppendUint64(data, uint64(pid))
		data = binary.BigEndian.AppendUint16(data, uint16(e.epoch))
		data = binary.BigEndian.AppendUint32(data, uint32(lastSeq))
		data = binary.BigEndian.AppendUint32(data, uint32(e.coordEpoch))
		data = binary.BigEndian.AppendUint64(data, uint64(first))
		data = binary.BigEndian.AppendUint64(data, uint64(e.lastTimestamp))
		data = append(data, byte(n))
		for _, b := range e.batches[:n] {
			data = binary.BigEndian.AppendUint32(data, uint32(b.firstSeq))
			data = binary.BigEndian.AppendUint32(data, uint32(b.lastSeq))
			data = binary.BigEndian.AppendUint64(data, uint64(b.baseOffset))
			data = binary.BigEndian.AppendUint64(data, uint64(b.appendTime))
		}
	}
	binary.BigEndian.PutUint32(data[countAt:], uint32(count))
	data = binary.BigEndian.AppendUint32(data, crc32.Checksum(data, proto.Castagnoli))
	return ps.completedEnd, data
}

func decodeSnapshot(data []byte, producers map[int64]*producerEntry, ongoing map[*openTxn]struct{}) (int64, error) {
	bad := errors.New("malformed producer state snapshot")
	if len(data) < len(snapshotMagic)+16 {
		return 0, bad
	}
	v2 := string(data[:len(snapshotMagic)]) == snapshotMagic
	if !v2 && string(data[:len(snapshotMagicV1)]) != snapshotMagicV1 {
		return 0, bad
	}
	fixed := 15 // producerId, epoch, lastSeq, n
	if v2 {
		fixed += 20
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, proto.Castagnoli) != binary.BigEndian.Uint32(data[len(data)-4:]) {
		return 0, errors.New("producer state snapshot CRC mismatch")
	}
	p := body[len(snapshotMagic):]
	end := int64(binary.BigEndian.Uint64(p))
	count := binary.BigEndian.Uint32(p[8:])
	p = p[12:]
	for i := uint32(0); i < count; i++ {
		if len(p) < fixed {
			return 0, bad
		}
		pid := int64(binary.BigEndian.Uint64(p))
		e := &producerEntry{epoch: int16(binary.BigEndian.Uint16(p[8:])), lastSeq: int32(binary.BigEndian.Uint32(p[10:])), coordEpoch: -1, lastTimestamp: -1}
		p = p[14:]
		if v2 {
			e.coordEpoch = int32(binary.BigEndian.Uint32(p))
			if first := int64(binary.BigEndian.Uint64(p[4:])); first >= 0 {
				e.txn = &openTxn{pid: pid, first: first, exact: true}
				ongoing[e.txn] = struct{}{}
			} else if first != -1 {
				return 0, bad
			}
			e.lastTimestamp = int64(binary.BigEndian.Uint64(p[12:]))
			p = p[20:]
		}
		n := int(p[0])
		p = p[1:]
		if n > producerBatchesKept || len(p) < n*24 {
			return 0, bad
		}
		for j := 0; j < n; j++ {
			e.push(seqBatch{
				firstSeq:   int32(binary.BigEndian.Uint32(p)),
				lastSeq:    int32(binary.BigEndian.Uint32(p[4:])),
				baseOffset: int64(binary.BigEndian.Uint64(p[8:])),
				appendTime: int64(binary.BigEndian.Uint64(p[16:])),
			})
			p = p[24:]
		}
		producers[pid] = e
	}
	if len(p) != 0 {
		return 0, bad
	}
	return end, nil
}

// snapshotFiles lists dir's snapshot offsets, newest first.
func snapshotFiles(fs storage.FS, dir string) []int64 {
	ents, err := fs.ReadDir(dir)
	if err != nil {
		return nil
	}
	var offs []int64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".snapshot") {
			continue
		}
		if off, err := strconv.ParseInt(strings.TrimSuffix(name, ".snapshot"), 10, 64); err == nil && off >= 0 {
			offs = append(offs, off)
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] > offs[j] })
	return offs
}

func snapshotPath(dir string, off int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d.snapshot", off))
}

// readNewestSnapshot loads the newest readable snapshot at or below hw
// (a snapshot past the log end means recovery truncated the log under it).
func readNewestSnapshot(fs storage.FS, dir string, hw int64, producers map[int64]*producerEntry, ongoing map[*openTxn]struct{}, logger *zap.Logger) (int64, bool) {
	for _, off := range snapshotFiles(fs, dir) {
		if off > hw {
			continue
		}
		data, err := fs.ReadFile(snapshotPath(dir, off))
		if err == nil {
			var end int64
			if end, err = decodeSnapshot(data, producers, ongoing); err == nil && end == off {
				return off, true
			}
		}
		clear(producers)
		clear(ongoing)
		logger.Warn("ignoring producer state snapshot", zap.String("dir", dir), zap.Int64("offset", off), zap.Error(err))
	}
	return 0, false
}

// writeSnapshot snapshots the loaded state into the partition dir and drops
// older snapshot files. Blocking I/O: workers and shutdown only.
func (ps *partState) writeSnapshot() error {
	if !ps.loaded.Load() || ps.p.Log.DirOffline() {
		return nil // (an offline dir is left as it is: log_dir_failure.go)
	}
	ps.snapshotMu.Lock()
	defer ps.snapshotMu.Unlock()
	if ps.deleting {
		return nil
	}
	ps.mu.Lock()
	end, data := ps.encodeSnapshot()
	ps.sinceSnap = 0
	ps.snapQueued = false
	ps.mu.Unlock()
	dir, fs := ps.p.Log.Dir(), ps.p.Log.FS()
	// The transaction index entries of markers below end must be on disk
	// before the snapshot: a load re-derives only those after it.
	if err := ps.p.Log.SyncTxnIndexes(); err != nil {
		return fmt.Errorf("producer state snapshot %s: %w", dir, err)
	}
	if err := storage.WriteFileAtomic(fs, snapshotPath(dir, end), data); err != nil {
		return fmt.Errorf("producer state snapshot %s: %w", dir, err)
	}
	for i, off := range snapshotFiles(fs, dir) {
		if i >= snapshotsKept {
			fs.Remove(snapshotPath(dir, off))
		}
	}
	return nil
}

// holdProducerSnapshots stops (hold) or resumes snapshot writes of parts'
// producer state around the deletion of their topic. Holding waits for a
// snapshot being written to finish, so none lands in a dir being removed.
// After the deletion, forgetProducerState drops the state; if it failed,
// call holdProducerSnapshots(parts, false).
func (b *Broker) holdProducerSnapshots(parts []*Partition, hold bool) {
	s := b.produce
	for _, p := range parts {
		if v, ok := s.parts.Load(p); ok {
			ps := v.(*partState)
			ps.setDeleting(hold)
			if !hold {
				ps.mu.Lock()
				ps.snapQueued = false // a request skipped while held is asked again
				ps.mu.Unlock()
			}
		}
	}
}

// forgetProducerState drops the producer state of parts, whose topic was
// deleted: shutdown would otherwise try to snapshot it into dirs that are
// gone, or into those of a topic re-created under the same name. State
// objects still referenced by requests in flight keep deleting set, so
// they write no snapshot either.
func (b *Broker) forgetProducerState(parts []*Partition) {
	s := b.produce
	for _, p := range parts {
		if v, ok := s.parts.LoadAndDelete(p); ok {
			v.(*partState).setDeleting(true)
		}
	}
}

// setDeleting sets deleting, waiting for a snapshot being written.
func (ps *partState) setDeleting(deleting bool) {
	ps.snapshotMu.Lock()
	ps.deleting = deleting
	ps.snapshotMu.Unlock()
}

// CloseProducerState writes a producer state snapshot of every partition
// whose state is loaded and forgets the partitions' state (a later produce
// loads it again). Broker.Close calls it at clean shutdown, after the
// server stopped serving and before the registry closes, so the next start
// needs no log scan.
func (b *Broker) CloseProducerState() error {
	s := b.produce
	var errs []error
	s.parts.Range(func(k, v any) bool {
		s.parts.Delete(k)
		if err := v.(*partState).writeSnapshot(); err != nil {
			errs = append(errs, err)
		}
		return true
	})
	return errors.Join(errs...)
}

// ReplicaTruncated is the replica fetcher's word that the follower log of
// topic/partition was truncated (durably) to end. The producer state is
// dropped (it is read from the log again when this node leads the
// partition) and so are the snapshots past end, which describe records
// that are gone: a later load must not start from one (Kafka's
// truncateAndReload deletes them too). A snapshot that cannot be removed
// is logged; a load still skips snapshots past the log end.
func (b *Broker) ReplicaTruncated(topic string, partition int32, end int64) {
	b.dropReplicaProducerState(topic, partition, end, "removing a producer state snapshot past a truncated log's end")
}

// dropReplicaProducerState forgets the producer state of a follower
// partition and removes its snapshots past end (all of them with end -1),
// then syncs the dir once; a snapshot that cannot be removed is logged
// with warn. It reports whether the partition was found.
func (b *Broker) dropReplicaProducerState(topic string, partition int32, end int64, warn string) bool {
	if b.reg == nil {
		return false
	}
	p := b.reg.Partition(topic, partition)
	if p == nil || p.Log == nil {
		return false
	}
	b.forgetProducerState([]*Partition{p})
	fs, dir := p.Log.FS(), p.Log.Dir()
	removed := false
	for _, off := range snapshotFiles(fs, dir) {
		if off <= end {
			break // newest first
		}
		if err := fs.Remove(snapshotPath(dir, off)); err != nil {
			b.log.Warn(warn, zap.String("dir", dir), zap.Int64("offset", off), zap.Error(err))
			continue
		}
		removed = true
	}
	if removed {
		if err := fs.SyncDir(dir); err != nil {
			b.log.Warn("syncing a log dir after removing producer state snapshots", zap.String("dir", dir), zap.Error(err))
		}
	}
	return true
}
