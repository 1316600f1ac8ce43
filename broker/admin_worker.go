package broker

// The admin worker: topic admin requests that touch disk (creating and
// deleting logs, fsyncing the topic table, changing open logs' configs)
// must not run on a ring thread, so their handlers decode the request (with
// copying ReadFrom: the frame is recycled when ServeFrame returns), queue a
// job here and return; the job does the work and answers via req.Reply.
//
// Concurrency: one goroutine runs jobs in FIFO order, so admin operations
// are serialised (the registry serialises them anyway). The goroutine is
// started on demand by submit and exits when the queue is empty, so a
// Broker needs no Close and idle brokers hold no goroutine. adminWorker.mu
// guards queue and running only; it is never held while a job runs.
//
// The queue is bounded (adminQueueMax): when it is full the handler answers
// at once with a retriable error, as a Kafka controller with a full queue
// would time the request out: REQUEST_TIMED_OUT on every entry, the one
// busy answer submitAdmin derives from any admin request (admin_busy.go),
// or LEADER_NOT_AVAILABLE for Metadata auto-creation (03_metadata.go).

import (
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
)

// adminQueueMax bounds queued admin jobs (requests, not topics).
const adminQueueMax = 256

// adminWorker is the Broker's off-loop queue for admin jobs. The zero value
// is ready to use.
type adminWorker struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

// submit queues job and reports whether it was accepted.
func (w *adminWorker) submit(job func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) >= adminQueueMax {
		return false
	}
	w.queue = append(w.queue, job)
	if !w.running {
		w.running = true
		go w.run()
	}
	return true
}

func (w *adminWorker) run() {
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.running = false
			w.queue = nil
			w.mu.Unlock()
			return
		}
		job := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[1:]
		w.mu.Unlock()
		job()
	}
}

// kafkaError maps an error to a Kafka error code and message: the code of
// the *kerr.Error it wraps (registry errors do), else UNKNOWN_SERVER_ERROR.
// A nil error maps to (0, nil).
func kafkaError(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	msg := err.Error()
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code, &msg
	}
	return kerr.UnknownServerError.Code, &msg
}

// errMsg returns a pointer to a formatted message, for ErrorMessage fields.
func errMsg(s string) *string { return &s }

// topicView is a consistent snapshot of a topic's mutable fields: the
// registry replaces Partitions and Configs under its lock, so they must be
// read under it (the slices and maps themselves are never mutated).
type topicView struct {
	t          *Topic
	partitions []*Partition
	configs    map[string]string
}

// viewTopic snapshots t. r must be non-nil.
func viewTopic(r *Registry, t *Topic) topicView {
	r.mu.RLock()
	v := topicView{t: t, partitions: t.Partitions, configs: t.Configs}
	r.mu.RUnlock()
	return v
}

// lookupTopics resolves names (and, where the name is empty, ids) to
// snapshots under one read lock. Missing topics are zero views (t == nil).
func lookupTopics(r *Registry, names []string, ids [][16]byte) []topicView {
	out := make([]topicView, len(names))
	if r == nil {
		return out
	}
	r.mu.RLock()
	for i, n := range names {
		var t *Topic
		if n != "" {
			t = r.topics[n]
		} else if ids != nil {
			t = r.byID[ids[i]]
		}
		if t != nil {
			out[i] = topicView{t: t, partitions: t.Partitions, configs: t.Configs}
		}
	}
	r.mu.RUnlock()
	return out
}

// allTopicViews snapshots every topic, sorted by name.
func allTopicViews(r *Registry) []topicView {
	if r == nil {
		return nil
	}
	ts := r.Topics()
	out := make([]topicView, 0, len(ts))
	r.mu.RLock()
	for _, t := range ts {
		if r.topics[t.Name] == t { // skip one deleted since Topics returned
			out = append(out, topicView{t: t, partitions: t.Partitions, configs: t.Configs})
		}
	}
	r.mu.RUnlock()
	return out
}

// errNoRegistry answers admin requests on a broker built without a
// registry (protocol-only tests).
var errNoRegistry = errors.New("broker has no topic registry")
