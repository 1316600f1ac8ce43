package broker

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Incremental fetch sessions (KIP-227). A session remembers the partitions a
// consumer fetches and what it last told the consumer about each, so that
// later requests name only what changed and responses carry only partitions
// with records or changed metadata.
//
// Request (session_id, epoch):
//
//	(0, -1)   sessionless full fetch
//	(0, 0)    full fetch that creates a session (when the cache has room)
//	(id, -1)  close session id; sessionless full fetch
//	(id, 0)   close session id and create a new one (full fetch)
//	(id, n>0) incremental fetch in session id; n must be the expected epoch
//
// Bounds (every resource per process): at most slots sessions
// (max.incremental.fetch.session.cache.slots, Kafka's key and default) and
// at most partitionsMax partitions over all of them. Only partitions that
// exist are kept: one the registry does not know is answered with
// UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID in that response and not
// remembered (a partition whose topic is deleted leaves its session the same
// way), so naming millions of nonexistent partitions costs the request, not
// the cache. Kafka keeps them (as unresolved partitions); a client only
// fetches partitions Metadata gave it, so nothing it relies on changes.
//
// Eviction follows Kafka's FetchSessionCache: a new session may take the slot
// of the least recently used session when that one has been idle longer than
// fetchSessionEvictAfter, or else of the smallest session (fewest partitions)
// created longer than fetchSessionEvictAfter ago when the new one has more
// partitions. Otherwise no session is created and the fetch is answered
// sessionless (session id 0), as Kafka does. A session that would grow past
// the partition budget is closed: the fetch is answered
// FETCH_SESSION_ID_NOT_FOUND and the client falls back to full fetches.
// Sessions are not tied to connections (a consumer may resume its session
// on a new connection, as with Kafka); an abandoned one is reclaimed by these
// rules.
//
// Concurrency: the cache has its own mutex; a session's fields are guarded
// by session.mu, held while a fetch builds its response from it. Lock order:
// cache.mu before session.mu (eviction takes both); the partition count is
// atomic so a fetch holding session.mu never needs cache.mu.

// fetchSessionCacheSlots is the default of
// max.incremental.fetch.session.cache.slots.
const fetchSessionCacheSlots = 1000

// fetchSessionPartitionsMax is the default of
// fetch.session.cache.max.partitions: about 200 bytes each, 20 MiB in all.
const fetchSessionPartitionsMax = 100000

// fetchSessionEvictAfter is Kafka's min.incremental.fetch.session.eviction.ms
// default: how long a session is safe from eviction after its creation, and
// how long it may be idle before any new session may take its slot.
const fetchSessionEvictAfter = 120 * time.Second

type sessionKey struct {
	topic     string
	id        [16]byte
	partition int32
}

type sessionPartition struct {
	key         sessionKey
	removed     bool // forgotten; still in fetchSession.order until compacted
	fetchOffset int64
	maxBytes    int32
	// what the last response said (-2: never sent)
	sentHW       int64
	sentLogStart int64
	sentLSO      int64 // last stable offset sent (Kafka includes a partition whose LSO moved)
	sentError    int16
}

type fetchSession struct {
	id      int32
	created time.Time
	mu      sync.Mutex
	epoch   int32 // the epoch the next request must carry
	// order keeps partitions in insertion order (responses list them so);
	// forgotten ones stay as tombstones until they are half of it.
	order    []*sessionPartition
	tombs    int
	parts    map[sessionKey]*sessionPartition
	lastUsed atomic.Int64
	size     atomic.Int64  // len(parts), readable without mu
	closed   bool          // evicted or removed: its partitions are no longer counted
	budget   *atomic.Int64 // the cache's partition count
}

type fetchSessionCache struct {
	mu            sync.Mutex
	sessions      map[int32]*fetchSession
	nextID        int32
	slots         int
	partitionsMax int64
	evictAfter    time.Duration
	// partitions counts the partitions of every open session.
	partitions atomic.Int64
	now        func() time.Time // tests step it
}

func newFetchSessionCache(slots, partitionsMax int) *fetchSessionCache {
	switch {
	case slots == 0:
		slots = fetchSessionCacheSlots
	case slots < 0:
		slots = 0
	}
	switch {
	case partitionsMax == 0:
		partitionsMax = fetchSessionPartitionsMax
	case partitionsMax < 0:
		partitionsMax = 0
	}
	return &fetchSessionCache{
		sessions: map[int32]*fetchSession{}, nextID: int32(time.Now().UnixNano()&0x3fffffff) + 1,
		slots: slots, partitionsMax: int64(partitionsMax), evictAfter: fetchSessionEvictAfter, now: time.Now,
	}
}

func (c *fetchSessionCache) get(id int32) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[id]
}

func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[id]; s != nil {
		c.dropLocked(s)
	}
}

// dropLocked removes s and gives its partitions back. REQUIRES: c.mu held,
// s.mu not held.
func (c *fetchSessionCache) dropLocked(s *fetchSession) {
	delete(c.sessions, s.id)
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		c.partitions.Add(-s.size.Load())
	}
	s.mu.Unlock()
}

// reserve takes n partitions from the budget.
func (c *fetchSessionCache) reserve(n int64) bool {
	for {
		have := c.partitions.Load()
		if have+n > c.partitionsMax {
			return false
		}
		if c.partitions.CompareAndSwap(have, have+n) {
			return true
		}
	}
}

// create makes a new session for a full fetch naming size existing
// partitions, evicting by Kafka's rules when the cache is full, and takes
// size partitions from the budget for it. It returns nil when there is no
// room: the fetch is then served sessionless.
func (c *fetchSessionCache) create(size int) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.sessions) >= c.slots && !c.evictLocked(now, int64(size)) {
		return nil
	}
	for !c.reserve(int64(size)) {
		if !c.evictStaleLocked(now) {
			return nil
		}
	}
	for {
		c.nextID++
		if c.nextID <= 0 {
			c.nextID = 1
		}
		if _, taken := c.sessions[c.nextID]; !taken {
			break
		}
	}
	s := &fetchSession{id: c.nextID, created: now, epoch: 1, parts: make(map[sessionKey]*sessionPartition, size), budget: &c.partitions}
	s.size.Store(int64(size)) // reserved above; upserts fill it
	s.lastUsed.Store(now.UnixNano())
	c.sessions[s.id] = s
	return s
}

// evictStaleLocked drops the least recently used session if it has been idle
// longer than evictAfter. REQUIRES: c.mu held.
func (c *fetchSessionCache) evictStaleLocked(now time.Time) bool {
	var lru *fetchSession
	for _, s := range c.sessions {
		if lru == nil || s.lastUsed.Load() < lru.lastUsed.Load() {
			lru = s
		}
	}
	if lru == nil || now.UnixNano()-lru.lastUsed.Load() <= int64(c.evictAfter) {
		return false
	}
	c.dropLocked(lru)
	return true
}

// evictLocked frees a slot for a new session of size partitions: a stale
// session, else the smallest one old enough to be evicted, if the new one is
// larger. REQUIRES: c.mu held.
func (c *fetchSessionCache) evictLocked(now time.Time, size int64) bool {
	if c.evictStaleLocked(now) {
		return true
	}
	var smallest *fetchSession
	for _, s := range c.sessions {
		if now.Sub(s.created) <= c.evictAfter {
			continue
		}
		if smallest == nil || s.size.Load() < smallest.size.Load() ||
			s.size.Load() == smallest.size.Load() && s.id < smallest.id {
			smallest = s
		}
	}
	if smallest == nil || size <= smallest.size.Load() {
		return false
	}
	c.dropLocked(smallest)
	return true
}

// nextSessionEpoch is the epoch a session expects after epoch: after
// 2^31-1 comes 1, never a negative epoch, in step with clients (Kafka's
// FetchMetadata.nextEpoch, which the Java client and franz-go both follow).
// A plain increment overflowed to -2^31, and the client's next fetch, at
// epoch 1, was refused INVALID_FETCH_SESSION_EPOCH.
func nextSessionEpoch(epoch int32) int32 {
	if epoch == math.MaxInt32 {
		return 1
	}
	return epoch + 1
}

// upsert adds or updates a partition; added partitions must have been
// reserved (fetchSessionCache.create or reserve). It reports whether k is
// new. REQUIRES: s.mu held.
func (s *fetchSession) upsert(k sessionKey, fetchOffset int64, maxBytes int32) bool {
	p := s.parts[k]
	added := p == nil
	if added {
		p = &sessionPartition{key: k, sentHW: -2, sentLogStart: -2, sentError: -2, sentLSO: -2}
		s.parts[k] = p
		s.order = append(s.order, p)
	}
	p.fetchOffset, p.maxBytes = fetchOffset, maxBytes
	return added
}

// forget removes a partition and gives it back to the budget. REQUIRES: s.mu
// held.
func (s *fetchSession) forget(k sessionKey) {
	p, ok := s.parts[k]
	if !ok {
		return
	}
	delete(s.parts, k)
	p.removed = true
	s.tombs++
	s.release(1)
	if s.tombs > len(s.order)/2 {
		live := s.order[:0]
		for _, o := range s.order {
			if !o.removed {
				live = append(live, o)
			}
		}
		clear(s.order[len(live):])
		s.order, s.tombs = live, 0
	}
}

// reserve takes n partitions from the cache's budget for s; false when the
// budget has no room. REQUIRES: s.mu held.
func (s *fetchSession) reserve(c *fetchSessionCache, n int64) bool {
	if s.closed {
		return true // evicted while in use: nothing is counted for it any more
	}
	if !c.reserve(n) {
		return false
	}
	s.size.Add(n)
	return true
}

// release gives n reserved or held partitions back. REQUIRES: s.mu held.
func (s *fetchSession) release(n int64) {
	if n == 0 || s.closed {
		return
	}
	s.size.Add(-n)
	s.budget.Add(-n)
}
