package broker

import (
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
// Concurrency: the cache has its own mutex; a session's fields are guarded
// by session.mu, held while a fetch builds its response from it.

// fetchSessionCacheSlots bounds the sessions kept (Kafka's
// max.incremental.fetch.session.cache.slots default).
const fetchSessionCacheSlots = 1000

type sessionKey struct {
	topic     string
	id        [16]byte
	partition int32
}

type sessionPartition struct {
	fetchOffset int64
	maxBytes    int32
	// what the last response said (-2: never sent)
	sentHW       int64
	sentLogStart int64
	sentError    int16
}

type fetchSession struct {
	id    int32
	mu    sync.Mutex
	epoch int32 // the epoch the next request must carry
	// order keeps partitions in insertion order (responses list them so).
	order    []sessionKey
	parts    map[sessionKey]*sessionPartition
	lastUsed atomic.Int64
}

type fetchSessionCache struct {
	mu       sync.Mutex
	sessions map[int32]*fetchSession
	nextID   int32
}

func newFetchSessionCache() *fetchSessionCache {
	return &fetchSessionCache{sessions: map[int32]*fetchSession{}, nextID: int32(time.Now().UnixNano()&0x3fffffff) + 1}
}

func (c *fetchSessionCache) get(id int32) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[id]
}

func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	delete(c.sessions, id)
	c.mu.Unlock()
}

// create makes a new session, evicting the least recently used one when
// the cache is full. It returns nil only if ids are exhausted (never in
// practice).
func (c *fetchSessionCache) create() *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sessions) >= fetchSessionCacheSlots {
		var oldest *fetchSession
		for _, s := range c.sessions {
			if oldest == nil || s.lastUsed.Load() < oldest.lastUsed.Load() {
				oldest = s
			}
		}
		delete(c.sessions, oldest.id)
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
	s := &fetchSession{id: c.nextID, epoch: 1, parts: map[sessionKey]*sessionPartition{}}
	s.lastUsed.Store(time.Now().UnixNano())
	c.sessions[s.id] = s
	return s
}

// upsert adds or updates a partition. REQUIRES: s.mu held.
func (s *fetchSession) upsert(k sessionKey, fetchOffset int64, maxBytes int32) {
	p := s.parts[k]
	if p == nil {
		p = &sessionPartition{sentHW: -2, sentLogStart: -2, sentError: -2}
		s.parts[k] = p
		s.order = append(s.order, k)
	}
	p.fetchOffset, p.maxBytes = fetchOffset, maxBytes
}

// forget removes a partition. REQUIRES: s.mu held.
func (s *fetchSession) forget(k sessionKey) {
	if _, ok := s.parts[k]; !ok {
		return
	}
	delete(s.parts, k)
	for i, o := range s.order {
		if o == k {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}
