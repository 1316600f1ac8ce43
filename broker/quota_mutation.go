package broker

// controller_mutation_rate (KIP-599) on CreateTopics, DeleteTopics and
// CreatePartitions: the partitions a request asks to create or delete
// count toward the client's rate when the request arrives (validate_only
// requests count nothing). In the strict versions (CreateTopics v6+,
// DeleteTopics v5+, CreatePartitions v3+), a client already over its
// quota is refused: every topic THROTTLING_QUOTA_EXCEEDED, the answer
// carries the throttle in throttle_time_ms and the connection is muted
// for it. Older versions are counted but never refused, as Kafka's
// permissive mode.
//
// Differences from Apache Kafka: the rate is quota.Rate (Kafka uses a
// token bucket of quota x samples x window for this quota), the
// partitions asked for count rather than those actually created or
// deleted, the check is per request rather than before each topic, and an
// accepted request's answer carries no throttle (the next request pays).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/quota"
)

// mutationStrictFrom is the first version of each mutating API whose
// requests are refused over the quota.
var mutationStrictFrom = map[kmsg.Key]int16{kmsg.CreateTopics: 6, kmsg.DeleteTopics: 5, kmsg.CreatePartitions: 3}

// controllerMutation applies controller_mutation_rate to r, a CreateTopics,
// DeleteTopics or CreatePartitions, before it is served, on the ring
// thread. It reports whether it answered r (refused).
func (b *Broker) controllerMutation(req netpoll.Request, h *proto.RequestHeader, r kmsg.Request) bool {
	qc := b.quotaClientOf(req, h, quota.ControllerMutation)
	if !qc.on {
		return false
	}
	if from, ok := mutationStrictFrom[kmsg.Key(r.Key())]; ok && h.APIVersion >= from {
		if ms := b.quotas.mgr.Check(quota.ControllerMutation, qc.user, qc.clientID, b.clock.Now().UnixMilli()); ms > 0 {
			resp := busyResponse(r, kerr.ThrottlingQuotaExceeded.Code, kerr.ThrottlingQuotaExceeded.Description)
			throttle := int32(min(ms, 1<<31-1))
			if tr, ok := resp.(kmsg.SetThrottleResponse); ok {
				tr.SetThrottle(throttle)
			}
			buf := netpoll.GetBuffer()
			buf.B = proto.AppendResponseHeader(buf.B, h)
			buf.B = resp.AppendTo(buf.B)
			req.ReplyThrottled(buf, time.Duration(throttle)*time.Millisecond)
			return true
		}
	}
	if n := b.mutations(r); n > 0 {
		b.recordQuota(qc, quota.ControllerMutation, float64(n))
	}
	return false
}

// mutations is the number of partitions r asks to create or delete (0
// for validate_only).
func (b *Broker) mutations(r kmsg.Request) int {
	n := 0
	switch r := r.(type) {
	case *kmsg.CreateTopicsRequest:
		if r.ValidateOnly {
			return 0
		}
		for _, t := range r.Topics {
			switch {
			case t.NumPartitions > 0:
				n += int(t.NumPartitions)
			case len(t.ReplicaAssignment) > 0:
				n += len(t.ReplicaAssignment)
			default:
				n += int(max(b.opts.NumPartitions, 1))
			}
		}
	case *kmsg.DeleteTopicsRequest:
		names := r.TopicNames
		for _, t := range r.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			} else {
				n++ // by id: counted as one partition
			}
		}
		for _, name := range names {
			n += max(b.partitionCount(name), 1)
		}
	case *kmsg.CreatePartitionsRequest:
		if r.ValidateOnly {
			return 0
		}
		for _, t := range r.Topics {
			n += max(int(t.Count)-b.partitionCount(t.Topic), 0)
		}
	}
	return n
}

// partitionCount is the number of partitions of topic name (0: unknown).
func (b *Broker) partitionCount(name string) int {
	if im := b.image(); im != nil {
		if t, ok := im.TopicByName(name); ok {
			return len(t.Partitions)
		}
		return 0
	}
	if b.reg == nil {
		return 0
	}
	t := b.reg.Topic(name)
	if t == nil {
		return 0
	}
	t.regMu.RLock()
	defer t.regMu.RUnlock()
	return len(t.Partitions)
}
