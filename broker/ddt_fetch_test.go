package broker

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// parseTP parses "topic/partition[@offset]".
func (r *ddBroker) parseTP(d *datadriven.TestData, s string) (topic string, part int32, offset int64) {
	s, off, hasOff := strings.Cut(s, "@")
	topic, p, ok := strings.Cut(s, "/")
	if !ok {
		d.Fatalf(r.t, "%q: want topic/partition", s)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		d.Fatalf(r.t, "%q: %v", s, err)
	}
	if hasOff {
		if offset, err = strconv.ParseInt(off, 10, 64); err != nil {
			d.Fatalf(r.t, "%q: %v", s, err)
		}
	}
	return topic, int32(n), offset
}

// topicID is the registry's id of name, or an id no topic has.
func (r *ddBroker) topicID(name string) [16]byte {
	if tp := r.tb.Reg.Topic(name); tp != nil {
		return tp.ID
	}
	return [16]byte{0xee, byte(len(name))}
}

// fetch [session=0|name] [epoch=N] [add=(t/p[@offset], ...)]
// [forget=(t/p, ...)] [v=N]: one Fetch (default v12, max wait 0). session
// and epoch default to 0 and 0 (a full fetch creating a session); a session
// name the script never saw stands for an id no session has. Prints the
// top-level error, the session the response names, then each partition in
// the response: its error, high watermark, log start offset and the offsets
// of the records it carries.
func (r *ddBroker) handleFetch(d *datadriven.TestData) string {
	req := kmsg.NewPtrFetchRequest()
	req.Version = int16(r.intArg(d, "v", 12))
	req.MaxWaitMillis, req.MaxBytes = 0, 1<<20
	req.SessionEpoch = int32(r.intArg(d, "epoch", 0))
	if name := r.strArg(d, "session", "0"); name != "0" {
		id, ok := r.sessions[name]
		if !ok {
			id = 0x7fff_fff0
		}
		req.SessionID = id
	}
	topics := map[string]int{}
	topicAt := func(name string) int {
		i, ok := topics[name]
		if !ok {
			i = len(req.Topics)
			topics[name] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = name, r.topicID(name)
			req.Topics = append(req.Topics, rt)
		}
		return i
	}
	if a, ok := d.Arg("add"); ok {
		for _, v := range a.Vals {
			topic, part, offset := r.parseTP(d, v)
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, offset, 1<<20
			rp.LogStartOffset, rp.CurrentLeaderEpoch = -1, -1
			i := topicAt(topic)
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		}
	}
	if a, ok := d.Arg("forget"); ok {
		forgotten := map[string]int{}
		for _, v := range a.Vals {
			topic, part, _ := r.parseTP(d, v)
			i, ok := forgotten[topic]
			if !ok {
				i = len(req.ForgottenTopics)
				forgotten[topic] = i
				ft := kmsg.NewFetchRequestForgottenTopic()
				ft.Topic, ft.TopicID = topic, r.topicID(topic)
				req.ForgottenTopics = append(req.ForgottenTopics, ft)
			}
			req.ForgottenTopics[i].Partitions = append(req.ForgottenTopics[i].Partitions, part)
		}
	}
	resp := kmsg.NewPtrFetchResponse()
	if err := r.conn.roundTrip(req, resp); err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s session=%s\n", ddCode(resp.ErrorCode), r.sessionName(resp.SessionID))
	for _, rt := range resp.Topics {
		name := rt.Topic
		if req.Version >= 13 {
			name = r.topicName(rt.TopicID)
		}
		for _, p := range rt.Partitions {
			fmt.Fprintf(&b, "  %s/%d", name, p.Partition)
			if p.ErrorCode != 0 {
				fmt.Fprintf(&b, " %s\n", ddCode(p.ErrorCode))
				continue
			}
			fmt.Fprintf(&b, " hw=%d log-start=%d records=%s\n", p.HighWatermark, p.LogStartOffset, recordRange(p.RecordBatches))
		}
	}
	return b.String()
}

// topicName is the registry's name for id, or "?".
func (r *ddBroker) topicName(id [16]byte) string {
	if tp := r.tb.Reg.TopicByID(id); tp != nil {
		return tp.Name
	}
	return "?"
}

// recordRange is "first-last" of the offsets the batches hold, or "none".
func recordRange(batches []byte) string {
	first, last := int64(-1), int64(-1)
	for len(batches) >= 61 {
		base := int64(binary.BigEndian.Uint64(batches))
		n := int(binary.BigEndian.Uint32(batches[8:])) + 12
		if n > len(batches) {
			break // a partial batch at the end, as Kafka allows
		}
		if first < 0 {
			first = base
		}
		last = base + int64(int32(binary.BigEndian.Uint32(batches[23:])))
		batches = batches[n:]
	}
	if first < 0 {
		return "none"
	}
	return fmt.Sprintf("%d-%d", first, last)
}

// sessions: every session in the cache (by script name), its next epoch and
// partitions in response order, then the partitions counted.
func (r *ddBroker) handleSessions() string {
	c := r.tb.Broker.fetchSessions
	c.mu.Lock()
	var ss []*fetchSession
	for _, s := range c.sessions {
		ss = append(ss, s)
	}
	c.mu.Unlock()
	var lines []string
	for _, s := range ss {
		s.mu.Lock()
		var parts []string
		for _, p := range s.order {
			if !p.removed {
				name := p.key.topic // v12 and older name topics, v13+ give ids
				if name == "" {
					name = r.topicName(p.key.id)
				}
				parts = append(parts, fmt.Sprintf("%s/%d", name, p.key.partition))
			}
		}
		lines = append(lines, fmt.Sprintf("%s epoch=%d partitions=[%s]", r.sessionName(s.id), s.epoch, strings.Join(parts, " ")))
		s.mu.Unlock()
	}
	sort.Strings(lines)
	lines = append(lines, fmt.Sprintf("partitions counted: %d", c.partitions.Load()))
	return strings.Join(lines, "\n")
}

// set-epoch session=name epoch=N: set the epoch the session expects next.
func (r *ddBroker) handleSetEpoch(d *datadriven.TestData) string {
	name := r.strArg(d, "session", "")
	s := r.tb.Broker.fetchSessions.get(r.sessions[name])
	if s == nil {
		return "no session " + name
	}
	s.mu.Lock()
	s.epoch = int32(r.intArg(d, "epoch", 1))
	s.mu.Unlock()
	return "ok"
}
