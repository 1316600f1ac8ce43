package broker

import (
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
)

// Produce workers: a fixed pool of goroutines, owned by the broker's
// produceState, doing the produce work that must not run on a ring thread
// (recompression, loading producer state, retrying an append while the
// log's backlog is full, writing snapshots). A partition always maps to the
// same worker and each worker runs its jobs in FIFO order, so batches of
// one partition keep their arrival order. Queues are unbounded slices:
// netpoll bounds the requests (and bytes) in flight per connection and per
// loop, which bounds the jobs.
//
// Lifecycle: the goroutines start with the first partition that needs a
// worker (a broker that never produces starts none) and stop in
// Broker.Close (produceWorkers.close): each worker finishes the jobs
// already queued, then exits; close waits for all of them. A job offered
// after close is refused (enqueue returns false): a batch is answered
// NOT_LEADER_OR_FOLLOWER (the broker is going away; the client retries
// elsewhere or after the restart), a snapshot is skipped (Close writes
// the final one).

// produceJob is one unit of worker work: a batch to append (bi's view is
// over a private copy of the frame bytes) or, with snapshot set, a producer
// state snapshot.
type produceJob struct {
	ps              *partState
	slot            *partSlot
	bi              batchInfo
	inspect         bool        // compressed: decompress, walk, check timestamps (inspectBatch)
	rules           recordRules // with inspect
	recompress      bool
	codec           int8
	maxMessageBytes int32
	deadline        time.Time
	logger          *zap.Logger
	now             func() time.Time // the broker's clock: record timestamps are checked against it
	snapshot        bool
	// loadThen, set alone: load the state, then call it (ensureLoaded).
	loadThen func(error)
	// marker, set alone: a transaction marker to append (produce_txn.go).
	marker *markerJob
}

// produceWorkers is the pool. Concurrency: mu guards started and closed;
// each worker's queue has its own lock.
type produceWorkers struct {
	workers []*produceWorker
	wg      sync.WaitGroup
	// running counts worker goroutines alive (tests check close stops them).
	running atomic.Int32

	mu      sync.Mutex
	started bool
	closed  bool
}

type produceWorker struct {
	mu      sync.Mutex
	jobs    []*produceJob
	closing bool // guarded by mu: no new jobs; exit once jobs is empty
	wake    chan struct{}
}

// init makes n workers (no goroutine yet).
func (p *produceWorkers) init(n int) {
	p.workers = make([]*produceWorker, n)
	for i := range p.workers {
		p.workers[i] = &produceWorker{wake: make(chan struct{}, 1)}
	}
}

// workerFor returns the worker of partition p (by topic name and index, so
// the mapping is stable), starting the pool on first use.
func (p *produceWorkers) workerFor(part *Partition) *produceWorker {
	p.mu.Lock()
	if !p.started && !p.closed {
		p.started = true
		for _, w := range p.workers {
			p.wg.Add(1)
			p.running.Add(1)
			go func() {
				defer p.wg.Done()
				defer p.running.Add(-1)
				w.run()
			}()
		}
	}
	p.mu.Unlock()
	h := fnv.New32a()
	h.Write([]byte(part.Topic.Name))
	return p.workers[(h.Sum32()+uint32(part.Index))%uint32(len(p.workers))]
}

// close stops every worker after its queued jobs and waits for them.
// Idempotent.
func (p *produceWorkers) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for _, w := range p.workers {
		w.mu.Lock()
		w.closing = true
		w.mu.Unlock()
		w.signal()
	}
	p.wg.Wait()
}

// enqueue queues j; false (j not queued) once the pool is closing.
func (w *produceWorker) enqueue(j *produceJob) bool {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return false
	}
	w.jobs = append(w.jobs, j)
	w.mu.Unlock()
	w.signal()
	return true
}

func (w *produceWorker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *produceWorker) run() {
	for range w.wake {
		for {
			w.mu.Lock()
			if len(w.jobs) == 0 {
				w.jobs = w.jobs[:0]
				closing := w.closing
				w.mu.Unlock()
				if closing {
					return
				}
				break
			}
			j := w.jobs[0]
			w.jobs[0] = nil
			w.jobs = w.jobs[1:]
			w.mu.Unlock()
			if j.snapshot {
				if err := j.ps.writeSnapshot(); err != nil {
					j.ps.logger.Warn("producer state snapshot failed", zap.Error(err))
				}
				continue
			}
			if j.loadThen != nil {
				err := j.ps.load(j.logger)
				j.ps.queued.Add(-1)
				j.loadThen(err)
				continue
			}
			if j.marker != nil {
				j.runMarker()
				continue
			}
			j.run()
		}
	}
}

// run appends the job's batch: load state, inspect and recompress, then
// check+append, retrying a full backlog until the deadline.
func (j *produceJob) run() {
	ps := j.ps
	defer ps.queued.Add(-1)
	if err := ps.load(j.logger); err != nil {
		j.logger.Warn("loading producer state", zap.String("dir", ps.p.Log.Dir()), zap.Error(err))
		j.slot.done(kerr.KafkaStorageError.Code, -1, -1, -1, "")
		return
	}
	if j.inspect || j.recompress {
		var rules *recordRules
		if j.inspect {
			rules = &j.rules
		}
		nb, berr := inspectBatch(&j.bi, rules, j.now().UnixMilli(), j.recompress, j.codec)
		if berr == nil && nb.Size() > int(j.maxMessageBytes) {
			berr = &batchError{kerr.MessageTooLarge, "recompressed record batch is larger than max.message.bytes"}
		}
		if berr != nil {
			j.slot.done(berr.err.Code, -1, -1, -1, berr.msg)
			return
		}
		j.bi.batch = nb
	}
	backoff := time.Millisecond
	for ps.appendBatch(&j.bi, j.slot) == outBacklog {
		if time.Now().After(j.deadline) {
			j.slot.done(kerr.RequestTimedOut.Code, -1, -1, -1, "")
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 20*time.Millisecond)
	}
}
