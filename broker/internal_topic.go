package broker

// internalTopic is an internal topic a coordinator persists its state to
// (__consumer_offsets for groups, __transaction_state for transactions),
// created on first use and off the ring thread.
//
// Work for the topic (an append) runs at once when the topic exists and
// nothing is queued; otherwise it queues, bounded by internalTopicPendingMax,
// and one goroutine creates the topic and drains the queue in order.
// Callers queue under their state machine's lock, so records reach the log
// in the order the state machine produced them. When the registry closes
// while the topic is being created, the queue is dropped: the broker is
// shutting down and the work has nowhere to go.
//
// Every creation goes through create: a topic of another partition count
// would leave keys mapped to partitions that do not exist.

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
)

// internalTopicPendingMax bounds the work queued while the topic is
// created.
const internalTopicPendingMax = 10000

type internalTopic struct {
	b    *Broker
	name string
	log  *zap.Logger
	// spec is the partition count, the replication factor (a cluster's;
	// -1 for the controller's default) and the configs the topic is
	// created with (read at creation: a coordinator may learn its
	// partition count from an existing topic at load).
	spec func() (partitions int32, replicationFactor int16, configs map[string]string)

	topic atomic.Pointer[Topic]
	// qmu guards pending and creating: the work waiting for the topic to
	// be created, and whether the creating goroutine runs.
	qmu      sync.Mutex
	pending  []func(t *Topic, now bool)
	creating bool
}

// with runs f(t, true) now when the topic exists and nothing is queued,
// else queues f(t, false) for the creating goroutine (FIFO). False when
// the queue is full (f dropped). REQUIRES: the caller's state machine lock
// held, so the queue's order is the state machine's.
func (it *internalTopic) with(f func(t *Topic, now bool)) bool {
	it.qmu.Lock()
	if t := it.topic.Load(); t != nil && len(it.pending) == 0 && !it.creating {
		it.qmu.Unlock()
		f(t, true)
		return true
	}
	if len(it.pending) >= internalTopicPendingMax {
		it.qmu.Unlock()
		return false
	}
	it.pending = append(it.pending, f)
	if !it.creating {
		it.creating = true
		go it.createAndDrain()
	}
	it.qmu.Unlock()
	return true
}

// createAndDrain creates the topic (if needed), retrying every second,
// and runs the queued work in order. Its own goroutine: creation opens
// logs and fsyncs.
func (it *internalTopic) createAndDrain() {
	t := it.topic.Load()
	for t == nil {
		var err error
		if it.b.reg == nil {
			err = errNoRegistry
		} else if t = it.b.reg.Topic(it.name); t == nil {
			t, err = it.create()
		}
		if errors.Is(err, errRegistryClosed) {
			it.qmu.Lock()
			it.creating, it.pending = false, nil
			it.qmu.Unlock()
			return
		}
		if err != nil || t == nil {
			it.log.Error("cannot create "+it.name+"; retrying", zap.Error(err))
			time.Sleep(time.Second)
			t = nil
			continue
		}
		it.topic.Store(t)
	}
	for {
		it.qmu.Lock()
		if len(it.pending) == 0 {
			it.creating = false
			it.pending = nil
			it.qmu.Unlock()
			return
		}
		f := it.pending[0]
		it.pending[0] = nil
		it.pending = it.pending[1:]
		it.qmu.Unlock()
		f(t, false)
	}
}

// create creates the topic with its spec, or returns the existing one. In
// a cluster the controller creates it; the registry has it once this
// broker applied the records (OnMetadata), which the next attempt of
// createAndDrain's loop finds.
func (it *internalTopic) create() (*Topic, error) {
	partitions, rf, configs := it.spec()
	if it.b.opts.Cluster != nil {
		codes := it.b.forwardCreate([]string{it.name}, partitions, rf, configs)
		if code := codes[it.name]; code != 0 && code != kerr.TopicAlreadyExists.Code {
			return nil, kerr.ErrorForCode(code)
		}
		return it.b.reg.Topic(it.name), nil
	}
	t, err := it.b.reg.CreateTopic(it.name, partitions, configs, false)
	if errors.Is(err, kerr.TopicAlreadyExists) {
		t, err = it.b.reg.Topic(it.name), nil
	}
	return t, err
}
