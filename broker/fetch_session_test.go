package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testSessionCache is a cache with a clock the test steps.
func testSessionCache(slots, partitionsMax int) (*fetchSessionCache, *time.Time) {
	c := newFetchSessionCache(slots, partitionsMax)
	now := time.Unix(1e6, 0)
	c.now = func() time.Time { return now }
	return c, &now
}

// fill upserts n partitions of topic "t" into s, as resolve does after
// create reserved them.
func fill(s *fetchSession, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.upsert(sessionKey{topic: "t", partition: int32(i)}, 0, 1)
	}
}

func touch(c *fetchSessionCache, s *fetchSession) { s.lastUsed.Store(c.now().UnixNano()) }

// Kafka's eviction rules: a full cache takes a stale session's slot, else the
// slot of the smallest session older than the eviction time when the new one
// is larger, else creates nothing.
func TestFetchSessionCacheEviction(t *testing.T) {
	c, now := testSessionCache(2, 1000)
	a := c.create(5)
	fill(a, 5)
	b := c.create(3)
	fill(b, 3)
	if a == nil || b == nil {
		t.Fatal("sessions not created with free slots")
	}
	if s := c.create(100); s != nil {
		t.Fatal("full cache, no stale or old session: a session was created")
	}
	// Both old enough to be evicted by size, both recently used.
	*now = now.Add(fetchSessionEvictAfter + time.Second)
	touch(c, a)
	touch(c, b)
	if s := c.create(3); s != nil {
		t.Fatal("a session no larger than the smallest one evicted it")
	}
	d := c.create(4)
	if d == nil || c.get(b.id) != nil || c.get(a.id) == nil {
		t.Fatalf("a larger session did not take the smallest one's slot (b present %v, a present %v)", c.get(b.id) != nil, c.get(a.id) != nil)
	}
	fill(d, 4)
	// d is new (not evictable by size) and a is larger: nothing to evict.
	if s := c.create(5); s != nil {
		t.Fatal("evicted a session created less than the eviction time ago, or a larger one")
	}
	// a idle past the eviction time: stale, any new session takes its slot.
	*now = now.Add(fetchSessionEvictAfter + time.Second)
	touch(c, d)
	e := c.create(1)
	if e == nil || c.get(a.id) != nil || c.get(d.id) == nil {
		t.Fatal("a stale session's slot was not taken")
	}
	if got, want := c.partitions.Load(), int64(4+1); got != want {
		t.Fatalf("partitions counted %d, want %d", got, want)
	}
	if !a.closed || !b.closed {
		t.Fatal("evicted sessions not closed")
	}
}

// The partition budget covers every session; removing and forgetting give it
// back.
func TestFetchSessionCachePartitionBudget(t *testing.T) {
	c, now := testSessionCache(100, 10)
	a := c.create(6)
	fill(a, 6)
	if s := c.create(6); s != nil {
		t.Fatal("a session past the partition budget was created")
	}
	b := c.create(4)
	if b == nil {
		t.Fatal("a session within the budget was not created")
	}
	fill(b, 4)
	a.mu.Lock()
	if a.reserve(c, 1) {
		t.Fatal("grew past the budget")
	}
	for i := 0; i < 5; i++ {
		a.forget(sessionKey{topic: "t", partition: int32(i)})
	}
	if !a.reserve(c, 5) {
		t.Fatal("forgotten partitions were not given back")
	}
	a.release(5)
	var order []int32
	for _, p := range a.order {
		if !p.removed {
			order = append(order, p.key.partition)
		}
	}
	a.mu.Unlock()
	if len(order) != 1 || order[0] != 5 || len(a.parts) != 1 {
		t.Fatalf("after forgetting 0-4 the session holds %v", order)
	}
	c.remove(b.id)
	if got := c.partitions.Load(); got != 1 {
		t.Fatalf("after removing b: %d partitions counted, want 1", got)
	}
	// A stale session is evicted to make room in the budget too.
	*now = now.Add(fetchSessionEvictAfter + time.Second)
	if s := c.create(10); s == nil || c.get(a.id) != nil {
		t.Fatal("a stale session did not give its partitions to a new one")
	}
}

// Over the wire: a session remembers only partitions that exist; naming
// nonexistent ones answers them with an error each time and keeps nothing;
// a session growing past the budget is closed with FETCH_SESSION_ID_NOT_FOUND.
func TestFetchSessionKeepsOnlyExistingPartitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) { o.FetchSessionPartitionsMax = 3 })
		if _, err := tb.Reg.CreateTopic("s", 3, nil, false); err != nil {
			t.Fatal(err)
		}
		cl := tb.client()
		// The client picks the version (13+: topics by id), so a request names
		// both, and an unknown topic gets an id of its own.
		fetch := func(sessionID, epoch int32, topicName string, parts []int32) *kmsg.FetchResponse {
			t.Helper()
			req := kmsg.NewPtrFetchRequest()
			req.Version = 12
			req.MaxWaitMillis = 0
			req.SessionID, req.SessionEpoch = sessionID, epoch
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = topicName, [16]byte{0xee, byte(len(topicName))}
			if tp := tb.Reg.Topic(topicName); tp != nil {
				rt.TopicID = tp.ID
			}
			for _, p := range parts {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.PartitionMaxBytes = p, 1<<20
				rt.Partitions = append(rt.Partitions, rp)
			}
			if len(parts) > 0 {
				req.Topics = append(req.Topics, rt)
			}
			resp, err := req.RequestWith(context.Background(), cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		// codes are the partitions' error codes of a response naming one topic.
		codes := func(r *kmsg.FetchResponse) map[int32]int16 {
			out := map[int32]int16{}
			for _, rt := range r.Topics {
				for _, p := range rt.Partitions {
					out[p.Partition] = p.ErrorCode
				}
			}
			return out
		}
		unknown := func(code int16) bool {
			return code == kerr.UnknownTopicOrPartition.Code || code == kerr.UnknownTopicID.Code
		}
		// Partitions 0 and 1 exist, 7 and 1000 do not.
		r := fetch(0, 0, "s", []int32{0, 1, 7, 1000})
		got := codes(r)
		if r.SessionID == 0 || len(got) != 4 || got[0] != 0 || got[1] != 0 || !unknown(got[7]) || !unknown(got[1000]) {
			t.Fatalf("full fetch: session %d, codes %v", r.SessionID, got)
		}
		sid := r.SessionID
		s := tb.Broker.fetchSessions.get(sid)
		s.mu.Lock()
		kept := len(s.parts)
		s.mu.Unlock()
		if kept != 2 || tb.Broker.fetchSessions.partitions.Load() != 2 {
			t.Fatalf("session keeps %d partitions (%d counted), want the 2 that exist", kept, tb.Broker.fetchSessions.partitions.Load())
		}
		// A nonexistent topic named incrementally: answered, not kept.
		r = fetch(sid, 1, "nope", []int32{0, 1, 2})
		if got := codes(r); r.ErrorCode != 0 || len(got) != 3 || !unknown(got[2]) {
			t.Fatalf("incremental unknown topic: error %d, codes %v", r.ErrorCode, got)
		}
		if n := tb.Broker.fetchSessions.partitions.Load(); n != 2 {
			t.Fatalf("%d partitions counted after naming unknown ones, want 2", n)
		}
		// Partition 2 fits the budget of 3; a second topic's partition would not.
		if r = fetch(sid, 2, "s", []int32{2}); r.ErrorCode != 0 {
			t.Fatalf("adding partition 2: error %d", r.ErrorCode)
		}
		if _, err := tb.Reg.CreateTopic("t", 1, nil, false); err != nil {
			t.Fatal(err)
		}
		if r = fetch(sid, 3, "t", []int32{0}); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
			t.Fatalf("growing past the budget: error %d, want FETCH_SESSION_ID_NOT_FOUND", r.ErrorCode)
		}
		if tb.Broker.fetchSessions.get(sid) != nil || tb.Broker.fetchSessions.partitions.Load() != 0 {
			t.Fatal("the session over budget was not closed and its partitions given back")
		}
		// Over budget from the start: served without a session.
		if _, err := tb.Reg.CreateTopic("big", 4, nil, false); err != nil {
			t.Fatal(err)
		}
		if r = fetch(0, 0, "big", []int32{0, 1, 2, 3}); r.ErrorCode != 0 || r.SessionID != 0 || len(codes(r)) != 4 {
			t.Fatalf("full fetch over budget: error %d, session %d, %v", r.ErrorCode, r.SessionID, codes(r))
		}
	})
}
