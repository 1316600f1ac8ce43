package replica

import "strconv"

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
