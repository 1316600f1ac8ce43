package replica

import (
	"context"
	"strconv"

	"go.uber.org/zap"
)

// StateOf is the fetch state of topic-partition: "truncating", "fetching",
// "stopped", or "" when no fetcher has it.
func (m *Manager) StateOf(topic string, partition int32) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.fetchers {
		f.mu.Lock()
		p := f.parts[topicPartition{topic, partition}]
		var st fetchState
		if p != nil {
			st = p.state
		}
		f.mu.Unlock()
		if p == nil {
			continue
		}
		switch st {
		case stateTruncating:
			return "truncating"
		case stateFetching:
			return "fetching"
		case stateStopped:
			return "stopped"
		}
		return "state " + strconv.Itoa(int(st))
	}
	return ""
}

// TruncationPoint exports truncationPoint for table tests.
var TruncationPoint = truncationPoint

// WholeBatches exports wholeBatches.
var WholeBatches = wholeBatches

// FetcherIndex exports fetcherIndex.
var FetcherIndex = fetcherIndex

// Diverged runs a fetcher's handling of a Fetch answer carrying
// diverging_epoch (epoch, endOffset) for follower log l, outside any
// connection, and returns the partition's state afterwards.
func Diverged(l Log, epoch int32, endOffset int64) string {
	f := newFetcher(context.Background(), &Config{Logger: zap.NewNop()}, fetcherKey{}, "")
	tp := topicPartition{"t", 0}
	p := &partition{assignment: assignment{log: l}, state: stateFetching}
	f.parts[tp] = p
	f.mu.Lock()
	f.diverged(sent{tp: tp, p: p, fetchOffset: l.LogEndOffset()}, epoch, endOffset)
	f.mu.Unlock()
	switch p.state {
	case stateTruncating:
		return "truncating"
	case stateFetching:
		return "fetching"
	}
	return "stopped"
}
