// Package replica is the follower side of Kafka's in-sync-replica
// protocol: the replica fetchers (Kafka's ReplicaFetcherManager and
// ReplicaFetcherThread). For every partition this node holds a replica of
// but does not lead, a fetcher copies the leader's log: it first finds
// where the local log diverges from the leader's (OffsetForLeaderEpoch,
// KIP-101/279) and truncates there, then sends Fetch requests as a
// replica, appends the batches as they came (storage.Log.AppendReplica:
// same offsets, same bytes) and sets the local high watermark from the
// leader's.
//
// Threads: one goroutine per fetcher, one fetcher per (leader,
// fetcher index) — num.replica.fetchers per leader, a partition always on
// the same index (Kafka's getFetcherId) — each with one connection and one
// request in flight. The manager itself runs on its caller's goroutine
// (the metadata applier): Update changes the fetchers' partitions under
// each fetcher's lock, so when Update returns no fetcher writes to a
// partition it no longer follows.
//
// The leader's side (serving replica fetches, follower log end offsets,
// the ISR and the high watermark) is not here.
package replica

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/ratelog"
	"github.com/ringbroker/ringbroker/metadata"
)

// Config configures a Manager. Zero durations and sizes take Kafka's
// defaults.
type Config struct {
	// NodeID is this node's id.
	NodeID int32
	// ListenerName picks the leader's endpoint (as the broker picks the
	// endpoints it advertises): the endpoint of that name, else the
	// leader's first.
	ListenerName string
	// Dial opens a connection to a leader's listener; nil: plain TCP. An
	// SSL inter-broker listener's is a TLS dialer (auth/tlsstore.Dialer).
	Dial DialFunc
	// Fetchers per leader: num.replica.fetchers (1).
	Fetchers int
	// FetchMaxBytes bounds a fetch response and each partition in it:
	// replica.fetch.max.bytes (1 MiB). A first batch larger than it still
	// comes whole (KIP-74), up to BatchBytesMax.
	FetchMaxBytes int32
	// BatchBytesMax is the largest record batch a leader may hold
	// (message.max.bytes, 1 MiB + 12): a response frame larger than
	// FetchMaxBytes + BatchBytesMax + 64 KiB fails the connection.
	BatchBytesMax int32
	// FetchWaitMax is the leader's long-poll bound: replica.fetch.wait.max.ms (500 ms).
	FetchWaitMax time.Duration
	// FetchMinBytes: replica.fetch.min.bytes (1).
	FetchMinBytes int32
	// Backoff after an error: replica.fetch.backoff.ms (1 s).
	Backoff time.Duration
	// RequestTimeout bounds a request beyond the long poll, and a dial:
	// replica.socket.timeout.ms (30 s).
	RequestTimeout time.Duration
	// Logs returns this node's log of a partition of topic id, nil when
	// there is none (not opened, or a log of another topic by that name).
	Logs func(topic string, id [16]byte, partition int32) Log
	// Truncated, when set, is told after a follower log was truncated
	// (durably) to end: what the node keeps beside the log about its
	// records (the producer state and its snapshots) must drop what lay
	// past end, as Kafka's truncateTo reloads its ProducerStateManager.
	Truncated func(topic string, partition int32, end int64)
	// StartedOver, when set, is told after a follower log was replaced by
	// an empty one at start (storage.Log.TruncateFullyAndStartAt): what
	// the node keeps beside the log about its records must all go, as
	// Kafka's truncateFullyAndStartAt empties its ProducerStateManager.
	// Unset, Truncated is told instead.
	StartedOver func(topic string, partition int32, start int64)
	Logger      *zap.Logger
}

func (c *Config) defaults() {
	if c.Fetchers <= 0 {
		c.Fetchers = 1
	}
	if c.FetchMaxBytes <= 0 {
		c.FetchMaxBytes = 1 << 20
	}
	if c.BatchBytesMax <= 0 {
		c.BatchBytesMax = 1<<20 + 12
	}
	if c.FetchWaitMax <= 0 {
		c.FetchWaitMax = 500 * time.Millisecond
	}
	if c.FetchMinBytes <= 0 {
		c.FetchMinBytes = 1
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// frameHeadroomBytes covers a fetch response's framing around its record
// bytes (topics, partitions, aborted transactions).
const frameHeadroomBytes = 64 << 10

// frameBytesMax bounds one response frame.
func (c *Config) frameBytesMax() int32 {
	return int32(min(int64(c.FetchMaxBytes)+int64(c.BatchBytesMax)+frameHeadroomBytes, 1<<31-1))
}

// fetcherKey names a fetcher: its leader and its index among that
// leader's fetchers.
type fetcherKey struct {
	leader int32
	index  int
}

// Manager runs the fetchers for the partitions this node follows.
type Manager struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc

	// mu serializes Update and Close and guards fetchers and closed. Lock
	// order: Manager.mu, then fetcher.mu.
	mu       sync.Mutex
	fetchers map[fetcherKey]*fetcher
	closed   bool
	// all holds every fetcher started, until Close waited for it.
	all []*fetcher

	endpointLog ratelog.Every
}

// New returns a Manager with no fetcher; Update starts them.
func New(cfg Config) *Manager {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, ctx: ctx, cancel: cancel, fetchers: map[fetcherKey]*fetcher{}}
}

// relevant reports whether deltas may change what this node follows.
func relevant(deltas []metadata.Delta) bool {
	for _, d := range deltas {
		if len(d.AddedTopics)+len(d.RemovedTopics)+len(d.AddedPartitions)+len(d.ChangedPartitions)+len(d.ChangedBrokers) > 0 {
			return true
		}
	}
	return false
}

// Update makes the fetchers follow image im: every partition with a
// replica here, a live leader elsewhere and a local log is fetched from
// its leader; the others are no longer. full (the first image after a
// start) or a delta touching topics, partitions or brokers makes it look;
// other images are skipped. Fetchers left with no partition stop; a
// leader whose endpoint changed gets new fetchers. It reports whether it
// looked at the image (Config.Logs was asked for every partition followed
// from now on).
//
// Call it from one goroutine, in image order, after the broker applied
// the image (so the partitions whose logs it just opened are fetched, and
// a partition becoming a follower no longer takes produces when its
// fetcher starts truncating it: Kafka's makeFollower before addFetcher).
// Call Retire with the same image before the broker applies it.
func (m *Manager) Update(im *metadata.Image, deltas []metadata.Delta, full bool) bool {
	return m.update(im, deltas, full, false)
}

// Retire is Update that only stops: a partition im no longer has this
// node follow (now led here, moved away, its topic deleted), or follow
// with another leader epoch, leader or log, is dropped from its fetcher;
// nothing starts. When it returns, no fetcher writes to those partitions:
// call it before the broker applies im, so a partition becomes leader (or
// its log is deleted) only once its fetcher let go (Kafka removes
// fetchers before makeLeader).
func (m *Manager) Retire(im *metadata.Image, deltas []metadata.Delta, full bool) bool {
	return m.update(im, deltas, full, true)
}

func (m *Manager) update(im *metadata.Image, deltas []metadata.Delta, full, retireOnly bool) bool {
	if !full && !relevant(deltas) {
		return false
	}
	want := map[fetcherKey]map[topicPartition]assignment{}
	addrs := map[fetcherKey]string{}
	for _, t := range im.Topics() {
		for idx, p := range t.Partitions {
			if p.Leader < 0 || p.Leader == m.cfg.NodeID || !slices.Contains(p.Replicas, m.cfg.NodeID) {
				continue
			}
			l := m.cfg.Logs(t.Name, t.ID, idx)
			if l == nil {
				continue
			}
			addr, ok := m.endpoint(im, p.Leader)
			if !ok {
				if n, ok := m.endpointLog.Event(10 * time.Second); ok {
					m.cfg.Logger.Warn("replica fetcher: the leader has no endpoint in the metadata; not fetching",
						zap.String("topic", t.Name), zap.Int32("partition", idx), zap.Int32("leader", p.Leader), zap.Int64("events_since_last_line", n))
				}
				continue
			}
			key := fetcherKey{leader: p.Leader, index: fetcherIndex(t.Name, idx, m.cfg.Fetchers)}
			if want[key] == nil {
				want[key] = map[topicPartition]assignment{}
			}
			want[key][topicPartition{t.Name, idx}] = assignment{topicID: t.ID, leaderEpoch: p.LeaderEpoch, log: l}
			addrs[key] = addr
		}
	}
	brokerEpoch := int64(-1)
	if b, ok := im.Broker(m.cfg.NodeID); ok {
		brokerEpoch = b.Epoch
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return true
	}
	for key, f := range m.fetchers {
		if addr, ok := addrs[key]; !ok || addr != f.addr {
			f.set(nil, brokerEpoch)
			f.cancel()
			delete(m.fetchers, key)
		}
	}
	if retireOnly {
		for key, f := range m.fetchers {
			if f.retain(want[key]) == 0 {
				f.cancel()
				delete(m.fetchers, key)
			}
		}
		m.reap()
		return true
	}
	for key, parts := range want {
		f := m.fetchers[key]
		if f == nil {
			f = newFetcher(m.ctx, &m.cfg, key, addrs[key])
			m.fetchers[key] = f
			m.all = append(m.all, f)
			go f.run()
		}
		f.set(parts, brokerEpoch)
	}
	m.reap()
	return true
}

// reap forgets fetchers that have exited. REQUIRES: m.mu held.
func (m *Manager) reap() {
	m.all = slices.DeleteFunc(m.all, func(f *fetcher) bool {
		select {
		case <-f.done:
			return true
		default:
			return false
		}
	})
}

// endpoint is broker id's address on the configured listener.
func (m *Manager) endpoint(im *metadata.Image, id int32) (string, bool) {
	b, ok := im.Broker(id)
	if !ok || len(b.Endpoints) == 0 {
		return "", false
	}
	e := b.Endpoints[0]
	for _, c := range b.Endpoints {
		if c.Name == m.cfg.ListenerName {
			e = c
			break
		}
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))), true
}

// Fetching returns the partitions the fetchers follow now, by leader: for
// tests and introspection.
func (m *Manager) Fetching() map[int32][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int32][]string{}
	for key, f := range m.fetchers {
		f.mu.Lock()
		for tp := range f.parts {
			out[key.leader] = append(out[key.leader], tp.Topic+"-"+strconv.Itoa(int(tp.Partition)))
		}
		f.mu.Unlock()
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// Lags calls yield with the lag of every followed partition that has had
// a fetch answer since it was assigned: the leader's high watermark then
// minus the follower's log end after applying it, at least 0 (Kafka's
// FetcherLagMetrics; metrics.ReplicaLags). Safe from any goroutine; yield
// runs under the manager's and a fetcher's lock and must not call back.
func (m *Manager) Lags(yield func(topic string, partition int32, lag int64)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.fetchers {
		f.mu.Lock()
		for tp, p := range f.parts {
			if p.lag >= 0 {
				yield(tp.Topic, tp.Partition, p.lag)
			}
		}
		f.mu.Unlock()
	}
}

// Fetchers is how many fetchers run now.
func (m *Manager) Fetchers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reap()
	return len(m.all)
}

// Close stops every fetcher and waits for them, at most timeout. It
// reports whether all of them stopped. Update does nothing afterwards.
func (m *Manager) Close(timeout time.Duration) bool {
	m.mu.Lock()
	m.closed = true
	for _, f := range m.fetchers {
		f.set(nil, -1)
	}
	m.fetchers = map[fetcherKey]*fetcher{}
	all := m.all
	m.all = nil
	m.mu.Unlock()
	m.cancel()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, f := range all {
		select {
		case <-f.done:
		case <-deadline.C:
			m.cfg.Logger.Warn("replica fetchers did not stop in time", zap.Duration("timeout", timeout))
			return false
		}
	}
	return true
}

// fetcherIndex is the fetcher a partition goes to among n per leader:
// Kafka's getFetcherId, abs(31 * topic.hashCode + partition) % n, so a
// partition keeps its fetcher (and Kafka's tools see the same spread).
func fetcherIndex(topic string, partition int32, n int) int {
	var h int32
	for _, r := range topic {
		if r >= 0x10000 { // Java hashes UTF-16 code units
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	v := 31*h + partition
	if v < 0 {
		v = -v
		if v < 0 { // Kafka's Utils.abs maps MinValue to 0
			v = 0
		}
	}
	return int(v) % n
}
