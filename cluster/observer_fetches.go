package cluster

import (
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Observers in DescribeQuorum. Kafka's observers are the replicas that
// fetch the metadata log from the leader without voting: its broker-only
// nodes, and nodes being added as voters. Ours are the raft learners of a
// dynamic quorum (which raft replicates to) and the broker-only nodes,
// which pull the log with metadataFetch (observer.go): a voter notes each
// such fetch it serves here, and the leader lists the observers that
// fetched from it within observerSessionMs, as Kafka's leader expires an
// observer that stopped fetching.
//
// An observer's line, as Kafka's ReplicaState: LogEndOffset is the index
// it asked for (it has applied every entry before it, as a voter's is one
// past its match), LastFetchTimestamp the time of its last fetch here,
// LastCaughtUpTimestamp the last time it was caught up (a fetch that asked
// for at least the leader's end then, or for at least the leader's end at
// its previous fetch, which then counts with that fetch's time). The
// directory id is the one its last fetch carried (metadataFetch v1: the
// directory.id of its meta.properties; zero from a v0 fetch or a node
// without one).

// observerSessionMs is how long an observer that stopped fetching is
// still listed (Kafka's observer session timeout, 5 minutes).
const observerSessionMs = 5 * 60 * 1000

// observerFetchesMax bounds the observers noted; a fetch from one more is
// not noted until another expires.
const observerFetchesMax = 10000

// observerFetch is what a voter knows of one observer's fetches.
type observerFetch struct {
	directoryID    [16]byte
	logEnd         int64 // the index it last asked for
	lastFetchMs    int64
	lastCaughtUpMs int64 // -1: never
	// leaderEndAtLastFetch is this voter's end (applied index + 1) when
	// the observer last fetched.
	leaderEndAtLastFetch int64
}

// observerFetches are the observers' fetches a voter served, by raft id.
type observerFetches struct {
	mu   sync.Mutex
	byID map[uint64]*observerFetch
}

// fetched notes that observer asked for the entries from index from while
// this voter's end was leaderEnd (Kafka's ReplicaState.updateFollowerState).
func (o *observerFetches) fetched(observer uint64, directoryID [16]byte, from, leaderEnd uint64, nowMs int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.byID[observer]
	if f == nil {
		o.expire(nowMs)
		if len(o.byID) >= observerFetchesMax {
			return
		}
		if o.byID == nil {
			o.byID = map[uint64]*observerFetch{}
		}
		f = &observerFetch{lastCaughtUpMs: -1}
		o.byID[observer] = f
	}
	switch {
	case int64(from) >= int64(leaderEnd):
		f.lastCaughtUpMs = max(f.lastCaughtUpMs, nowMs)
	case f.leaderEndAtLastFetch > 0 && int64(from) >= f.leaderEndAtLastFetch:
		f.lastCaughtUpMs = max(f.lastCaughtUpMs, f.lastFetchMs)
	}
	f.directoryID = directoryID
	f.logEnd, f.lastFetchMs, f.leaderEndAtLastFetch = int64(from), nowMs, int64(leaderEnd)
}

// expire forgets observers that have not fetched for observerSessionMs.
// REQUIRES: o.mu held.
func (o *observerFetches) expire(nowMs int64) {
	for id, f := range o.byID {
		if nowMs-f.lastFetchMs > observerSessionMs {
			delete(o.byID, id)
		}
	}
}

// states returns DescribeQuorum's lines of the observers that fetched
// within observerSessionMs, by id, leaving out the ids in skip (voters,
// learners listed already).
func (o *observerFetches) states(nowMs int64, skip func(id uint64) bool) []kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.expire(nowMs)
	ids := make([]uint64, 0, len(o.byID))
	for id := range o.byID {
		if !skip(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]kmsg.DescribeQuorumResponseTopicPartitionReplicaState, 0, len(ids))
	for _, id := range ids {
		f := o.byID[id]
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		rs.ReplicaID, rs.ReplicaDirectoryID = nodeID(id), f.directoryID
		rs.LogEndOffset, rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = f.logEnd, f.lastFetchMs, f.lastCaughtUpMs
		out = append(out, rs)
	}
	return out
}
