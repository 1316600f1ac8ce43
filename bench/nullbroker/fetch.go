package nullbroker

// Fetch and ListOffsets: the null broker's consumer side, the client-bound
// ceiling for catch-up reads.
//
// Nothing produced is stored, but a consumer must still receive every
// offset the producers were given, with records of the size they sent, or
// the ceiling would be measured on less data than a real broker serves. So
// each partition keeps one template: the largest uncompressed,
// non-transactional record batch produced to it so far (copied once per
// growth in record count, so at most a handful of copies per partition).
// Fetch lays the partition out as consecutive copies of that template,
// batch i holding offsets [i*k, (i+1)*k) for a template of k records, the
// last one cut to the high watermark:
//
//	offsets  0 ........ k-1 | k ....... 2k-1 | ... | j*k ... hw-1
//	batch    template        template               template cut to hw-j*k records
//
// A full copy only needs its baseOffset patched (the batch CRC covers the
// bytes from the attributes on, not the base offset); a cut batch keeps the
// template's first records and gets a new length, lastOffsetDelta, record
// count and CRC. A fetch from offset o starts with the batch holding o, as
// Kafka does; the client skips the records before o.
//
// Differences from Kafka, deliberate for a benchmark ceiling: records come
// from the template, not from what was produced at that offset (the bytes
// and record sizes match, the contents do not), so end-to-end latency
// cannot be measured here; timestamps are not kept (a ListOffsets timestamp
// lookup answers the log start, 0); MinBytes is treated as 1; fetch
// sessions are not kept (SessionID 0: every fetch is a full fetch); a
// partition whose batches were all compressed or transactional has no
// template and answers UNSUPPORTED_COMPRESSION_TYPE rather than guessing.

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka error codes of the fetch side.
const (
	errOffsetOutOfRange          = 1
	errUnsupportedCompressionTyp = 76
)

// Record batch v2 fields used by the fetch side (offsets from the batch
// start; see the produce side's table in nullbroker.go).
const (
	magicAt        = 16
	crcAt          = 17
	attributesAt   = 21
	recordsCountAt = 57
	// attributes: bits 0-2 compression, bit 4 transactional, bit 5 control.
	attrCompression   = 0x07
	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// template is a partition's prebuilt batch. Immutable once published.
type template struct {
	batch   []byte // the whole batch, baseOffset 0
	records int64  // k: records in the batch (lastOffsetDelta+1)
	// recordEnds[i] is the batch offset just past record i, to cut the
	// batch after any record count.
	recordEnds []int
}

// maybeTemplate offers the batches of one produced partition as the
// partition's template: the first uncompressed, non-transactional batch
// with more records than the current template is copied. Called on every
// Produce, so the common case (no growth) reads two header fields only.
func (t *topic) maybeTemplate(partition int32, records []byte) {
	cur := t.templates[partition].Load()
	for len(records) >= batchHeaderBytes {
		length := int(int32(binary.BigEndian.Uint32(records[batchLengthAt:])))
		if length <= 0 || batchLogOverhead+length > len(records) {
			return
		}
		batch := records[:batchLogOverhead+length]
		records = records[batchLogOverhead+length:]
		k := int64(int32(binary.BigEndian.Uint32(batch[lastOffsetDeltaAt:]))) + 1
		if cur != nil && k <= cur.records {
			continue
		}
		attrs := binary.BigEndian.Uint16(batch[attributesAt:])
		if batch[magicAt] != 2 || attrs&(attrCompression|attrTransactional|attrControl) != 0 {
			continue
		}
		tpl := newTemplate(batch, k)
		if tpl == nil {
			continue
		}
		// Another connection may have published a larger one meanwhile:
		// keep whichever has more records.
		for {
			old := t.templates[partition].Load()
			if old != nil && old.records >= tpl.records {
				return
			}
			if t.templates[partition].CompareAndSwap(old, tpl) {
				break
			}
		}
		cur = tpl
	}
}

// newTemplate copies batch and indexes its records; nil when the records
// do not match the header (k records, offset deltas 0..k-1 in order, as
// every producer writes them), which a cut batch would need.
func newTemplate(batch []byte, k int64) *template {
	if k <= 0 || int64(int32(binary.BigEndian.Uint32(batch[recordsCountAt:]))) != k {
		return nil
	}
	tpl := &template{batch: append([]byte(nil), batch...), records: k, recordEnds: make([]int, 0, k)}
	binary.BigEndian.PutUint64(tpl.batch, 0)
	at := batchHeaderBytes
	for i := int64(0); i < k; i++ {
		length, w := binary.Varint(tpl.batch[at:])
		if w <= 0 || length < 0 || at+w+int(length) > len(tpl.batch) {
			return nil
		}
		// A record: attributes int8, then timestampDelta and offsetDelta
		// as varints.
		body := tpl.batch[at+w : at+w+int(length)]
		if len(body) < 1 {
			return nil
		}
		_, tw := binary.Varint(body[1:])
		if tw <= 0 {
			return nil
		}
		delta, dw := binary.Varint(body[1+tw:])
		if dw <= 0 || delta != i {
			return nil
		}
		at += w + int(length)
		tpl.recordEnds = append(tpl.recordEnds, at)
	}
	if at != len(tpl.batch) {
		return nil
	}
	return tpl
}

// appendBatch appends the template's batch starting at baseOffset with n
// records (1 <= n <= records): a copy with the base offset patched, or a
// cut one with its header fields and CRC rewritten.
func (tpl *template) appendBatch(dst []byte, baseOffset, n int64) []byte {
	start := len(dst)
	if n == tpl.records {
		dst = append(dst, tpl.batch...)
		binary.BigEndian.PutUint64(dst[start:], uint64(baseOffset))
		return dst
	}
	end := tpl.recordEnds[n-1]
	dst = append(dst, tpl.batch[:end]...)
	b := dst[start:]
	binary.BigEndian.PutUint64(b, uint64(baseOffset))
	binary.BigEndian.PutUint32(b[batchLengthAt:], uint32(end-batchLogOverhead))
	binary.BigEndian.PutUint32(b[lastOffsetDeltaAt:], uint32(n-1))
	binary.BigEndian.PutUint32(b[recordsCountAt:], uint32(n))
	binary.BigEndian.PutUint32(b[crcAt:], crc32.Checksum(b[attributesAt:], castagnoli))
	return dst
}

// fetchWaitMax bounds a long poll whatever MaxWaitMillis asks, so a
// closing server never waits long for a connection's goroutine.
const fetchWaitMax = 10 * time.Second

// fetch answers a Fetch. The record bytes go into the connection's reused
// buffer c.batches, which the response aliases until it is encoded.
func (c *conn) fetch(req *kmsg.FetchRequest) *kmsg.FetchResponse {
	s := c.s
	// Long poll: wait (bounded) until some partition asked for has data
	// past its fetch offset, polling the offsets every millisecond; a
	// benchmark consumer rarely waits, so polling is simpler than wiring
	// a wake-up into Produce.
	if wait := min(time.Duration(req.MaxWaitMillis)*time.Millisecond, fetchWaitMax); wait > 0 {
		deadline := time.Now().Add(wait)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
	poll:
		for !s.fetchable(req) && time.Now().Before(deadline) {
			select {
			case <-tick.C:
			case <-s.done: // Close does not wait out a long poll
				break poll
			}
		}
	}

	r := kmsg.NewPtrFetchResponse()
	r.Version = req.Version
	budget := int64(req.MaxBytes)
	if budget <= 0 {
		budget = maxFrameBytes / 2
	}
	out := c.batches[:0]
	type span struct{ topic, partition, from, to int }
	var spans []span
	for i := range req.Topics {
		rt := &req.Topics[i]
		t, _ := s.getTopic(rt.Topic, false, 0)
		ot := kmsg.FetchResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			op := kmsg.NewFetchResponseTopicPartition()
			op.Partition = rp.Partition
			if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.partitions) {
				op.ErrorCode = errUnknownTopicOrPartition
				op.HighWatermark, op.LastStableOffset, op.LogStartOffset = -1, -1, -1
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			hw := t.partitions[rp.Partition].Load()
			op.HighWatermark, op.LastStableOffset, op.LogStartOffset = hw, hw, 0
			o := rp.FetchOffset
			switch {
			case o < 0 || o > hw:
				op.ErrorCode = errOffsetOutOfRange
			case o == hw:
			default:
				tpl := t.templates[rp.Partition].Load()
				if tpl == nil {
					op.ErrorCode = errUnsupportedCompressionTyp
					break
				}
				from := len(out)
				limit := min(int64(rp.PartitionMaxBytes), budget)
				base := o / tpl.records * tpl.records
				for base < hw {
					n := min(tpl.records, hw-base)
					size := int64(len(tpl.batch))
					if n < tpl.records {
						size = int64(tpl.recordEnds[n-1])
					}
					// At least one batch per response, even a large one
					// (KIP-74), so a consumer always progresses.
					if int64(len(out)-from)+size > limit && len(out) > 0 {
						break
					}
					out = tpl.appendBatch(out, base, n)
					base += n
				}
				budget -= int64(len(out) - from)
				spans = append(spans, span{len(r.Topics), len(ot.Partitions), from, len(out)})
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		r.Topics = append(r.Topics, ot)
	}
	// Point the partitions at their bytes only now: out may have moved
	// while it grew.
	for _, sp := range spans {
		r.Topics[sp.topic].Partitions[sp.partition].RecordBatches = out[sp.from:sp.to]
	}
	c.batches = out
	return r
}

// fetchable reports whether any partition req asks for has records at or
// past its fetch offset (or an offset a fetch would answer with an error).
func (s *Server) fetchable(req *kmsg.FetchRequest) bool {
	for i := range req.Topics {
		rt := &req.Topics[i]
		t, _ := s.getTopic(rt.Topic, false, 0)
		if t == nil {
			return true
		}
		for _, rp := range rt.Partitions {
			if rp.Partition < 0 || int(rp.Partition) >= len(t.partitions) {
				return true
			}
			if t.partitions[rp.Partition].Load() != rp.FetchOffset {
				return true
			}
		}
	}
	return false
}

// listOffsets answers the earliest (-2) with 0 and anything else with the
// high watermark when it is latest (-1), or 0 for a timestamp lookup (no
// timestamps are kept).
func (s *Server) listOffsets(req *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	r := kmsg.NewPtrListOffsetsResponse()
	r.Version = req.Version
	for _, rt := range req.Topics {
		t, _ := s.getTopic(rt.Topic, false, 0)
		ot := kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.partitions) {
				op.ErrorCode = errUnknownTopicOrPartition
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			op.Timestamp, op.Offset = -1, 0
			if rp.Timestamp == -1 {
				op.Offset = t.partitions[rp.Partition].Load()
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		r.Topics = append(r.Topics, ot)
	}
	return r
}
