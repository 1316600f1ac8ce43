package broker

// Produce (key 0), versions 3-12 served; ApiVersions advertises 0-12, as
// Kafka 4 does for librdkafka's sake, and versions 0-2 are answered (not
// closed) with UNSUPPORTED_VERSION on every partition.
//
// Behaviour:
//   - Each partition's records must be exactly one v2 record batch; it is
//     validated in place in the request frame (produce_batch.go: framing,
//     magic, CRC32C, record count, max.message.bytes -> MESSAGE_TOO_LARGE,
//     CORRUPT_MESSAGE, INVALID_RECORD), every record parsed (compressed
//     batches decompressed first: on the ring when small, else on the
//     worker; produce_compression.go), timestamps checked against
//     message.timestamp.before/after.max.ms (INVALID_TIMESTAMP), keys
//     required on compacted topics (INVALID_RECORD), and the
//     header's maxTimestamp made the records' own (+CRC), then appended
//     with storage.Log.AppendBatch (the validated view: the header is parsed
//     once), which copies it before returning: nothing keeps a reference to
//     the frame.
//   - acks 0: no response (req.NoReply) unless a partition failed
//     synchronously, in which case the connection is closed, as Kafka does.
//     acks 1 and -1: answered when every partition's append completed (the
//     log callback; with flush.messages=1 the log calls back after
//     fdatasync). In a cluster, acks -1 on a partition whose ISR has
//     other members also waits for the high watermark to pass the append
//     (produce_acks.go), and is refused NOT_ENOUGH_REPLICAS before the
//     append when the ISR is smaller than min.insync.replicas. One response per request; netpoll's ordered queue keeps
//     responses in request order while later requests keep being parsed.
//   - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION (auto-creation
//     belongs to Metadata, as in Kafka 3+). Nothing is written for any
//     partition that fails.
//   - Internal topics (__consumer_offsets, __transaction_state,
//     __share_group_state): INVALID_TOPIC_EXCEPTION, whether or not the
//     topic exists, as Kafka answers a client that is not its admin client.
//   - Idempotent producers: produce_state.go. A retried duplicate is
//     answered NONE with its original base offset.
//   - Topic compression.type other than producer: batches in another codec
//     are recompressed on a produce worker (produce_compression.go), off
//     the ring.
//   - LogAppendTime topics: the log stamps maxTimestamp (+CRC); the
//     response carries the append time (v2+) and log start offset (v5+).
//   - Transactions: transactional batches pass the
//     idempotent checks and the transactional ones (produce_state.go,
//     produce_txn.go); a transactional batch without a producer id is
//     INVALID_RECORD; with Broker.txnVerify set, each transactional batch
//     is verified before its append (KIP-890) and refused with the code it
//     returns (the transaction coordinator sets it). v12 is transactions
//     v2 (KIP-890 part 2): a transactional batch for a partition not yet in
//     its transaction makes the broker add it through the transaction
//     coordinator first (txn_add.go), the batch waiting meanwhile.
//
// Threads: ServeFrame parses, validates and appends on the ring thread
// (no I/O, no waiting). It hands a partition to its produce worker when the
// work would block or is heavy: recompression, inspecting a compressed
// batch past the ring's bounds (over 64 KiB, or inflating past 256 KiB),
// loading producer state from disk, and a full log backlog (storage.ErrBacklog: the worker retries until the
// request's timeout, then REQUEST_TIMED_OUT). Batches of a partition queued
// on the worker keep later batches of that partition behind them.
//
// Differences from Apache Kafka: invalid topic names answer
// INVALID_TOPIC_EXCEPTION (Kafka answers UNKNOWN_TOPIC_OR_PARTITION); no
// client may append to an internal topic (Kafka lets a client whose
// client.id is "__admin_client" do it);
// a compressed payload that does not decompress answers INVALID_RECORD
// (Kafka: UNKNOWN_SERVER_ERROR); record offset deltas out of sequence are
// refused (Kafka rewrites them in a compressed batch); a failed batch has no
// record_errors entries (the whole batch is refused); producer_byte_rate
// counts the request's bytes and throttles the answer (quota.go); an
// acks=0 request is counted when handed to the logs and its throttle mutes
// the connection without an answer. The v10+ CurrentLeader/NodeEndpoints
// tagged fields (KIP-951) come with NOT_LEADER_OR_FOLLOWER in a cluster,
// the endpoints on the listener the request came in on; a single node
// never sends them.
//
// Allocation: the request parser and response encoder are hand-written
// flyweights over a pooled produceCtx (kmsg allocates per topic on decode
// and per partition on encode, through reflect.DeepEqual of tagged fields);
// steady state allocates nothing per record or request.

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/internal/reqtrace"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/quota"
	"github.com/ringbroker/ringbroker/storage"
)

const (
	produceMinServed = 3
	produceMax       = 12
)

func init() {
	register(raw(kmsg.Produce, 0, produceMax, (*Broker).serveProduce))
}

// produceTopic is one topic of a request: its name (a copy in ctx.names)
// and its partitions' slots, ctx.slots[first:end].
type produceTopic struct {
	name       string
	first, end int
}

// partSlot is one partition of a request: its input while ServeFrame runs
// and its answer. It is the storage.AppendCallback of its append.
type partSlot struct {
	ctx       *produceCtx
	partition int32
	// inlineOK: this append is made by produceAll on the connection's
	// thread, which may write it itself (append.inline: ctx.inline).
	// Beside partition, in its padding: the slot stays in its size class
	// (TestDecodeAmplification bounds the slots a request may cost).
	inlineOK bool
	records  []byte // aliases the frame: valid only inside ServeFrame

	// answer
	errorCode     int16
	baseOffset    int64
	logAppendTime int64
	logStart      int64
	errorMessage  string
	// leader: with NOT_LEADER_OR_FOLLOWER in a cluster, the partition's
	// current leader and epoch (KIP-951: v10+ tells the client at once).
	leader *currentLeader

	// producer state bookkeeping (appendBatch sets, completed reads)
	ps                *partState
	size              int64
	pid               int64
	epoch             int16
	firstSeq, lastSeq int32
	txnStart          *openTxn // the transaction this batch began (produce_txn.go)
}

// AppendDone implements storage.AppendCallback: on the log writer
// goroutine, or with append.inline on the thread that ran serveProduce
// (storage.Log.RunInline), whose answer then needs no mailbox wake-up.
func (s *partSlot) AppendDone(res storage.AppendResult) {
	if tr := s.ctx.tr; tr != nil { // internal/reqtrace: the log's stamps, then ours
		tr.MarkAt(reqtrace.WriteStart, res.WriteStartNs)
		tr.MarkAt(reqtrace.Written, res.WrittenNs)
		tr.MarkAt(reqtrace.Synced, res.SyncedNs)
		tr.Mark(reqtrace.Callback)
	}
	if s.ps != nil {
		s.ps.completed(s, &res)
	}
	code := int16(0)
	if res.Err != nil {
		code = kerr.KafkaStorageError.Code
		s.ctx.b.log.Warn("produce append failed", zap.String("topic", s.ps.p.Topic.Name), zap.Int32("partition", s.partition), zap.Error(res.Err))
	} else {
		s.ctx.b.topicMetrics(s.ps.p.Topic).Produced(int(s.size))
		s.answerAppended(s.ps.p, res)
		return
	}
	s.done(code, res.BaseOffset, res.LogAppendTime, res.LogStartOffset, "")
}

// answerAppended answers s for records at res in p's log: its own append,
// or the one an idempotent duplicate repeats. acks=all on a replicated
// partition led here waits until the high watermark passes them
// (produce_acks.go), a duplicate too, as Kafka's delayed produce does: a
// retry must not be acknowledged while the first attempt is only in the
// leader's log (a deposed leader truncates it). Anything else is answered
// now.
func (s *partSlot) answerAppended(p *Partition, res storage.AppendResult) {
	b := s.ctx.b
	if s.ctx.acks == -1 && b.opts.Cluster != nil &&
		b.repl.waitAcks(s, p, res, p.Topic.Settings().minInsync, time.Duration(s.ctx.timeout)*time.Millisecond) {
		return // answered once the followers have it
	}
	s.done(0, res.BaseOffset, res.LogAppendTime, res.LogStartOffset, "")
}

// done records the partition's answer and counts the request down. The slot
// must not be touched afterwards: the request may be answered and recycled.
func (s *partSlot) done(code int16, base, appendTime, logStart int64, msg string) {
	s.errorCode, s.baseOffset, s.logAppendTime, s.logStart, s.errorMessage = code, base, appendTime, logStart, msg
	if code != 0 {
		s.ctx.failed.Store(true)
	}
	s.ctx.countDown()
}

// produceCtx is one Produce request in flight. Pooled: its slices keep
// their capacity across requests.
type produceCtx struct {
	b       *Broker
	req     netpoll.Request
	hdr     proto.RequestHeader // ClientID cleared: the frame is gone after ServeFrame
	acks    int16
	timeout int32
	// pending counts unanswered slots plus one held by ServeFrame until it
	// has gone through every partition.
	pending atomic.Int32
	failed  atomic.Bool
	topics  []produceTopic
	slots   []partSlot
	names   []byte
	// txnID aliases the frame while ServeFrame runs (transactional id, ""
	// when null).
	txnID string
	// quota is who the request's bytes count for (producer_byte_rate;
	// quota.go), requestBytes its size; throttleMs the answer's
	// throttle_time_ms.
	quota        quotaClient
	requestQuota quotaClient // request_percentage
	requestBytes int
	throttleMs   int32
	// tr is the request's trace (internal/reqtrace), nil when untraced.
	tr *reqtrace.Req
	// inline holds the logs whose writer role produceAll's appends took
	// (append.inline, storage.Log.AppendBatchInline): serveProduce writes
	// them with RunInline after produceAll, when no lock is held.
	inline []*storage.Log
}

var produceCtxPool = sync.Pool{New: func() any { return new(produceCtx) }}

func (c *produceCtx) countDown() {
	if c.pending.Add(-1) != 0 {
		return
	}
	c.throttleMs = max(c.b.recordQuota(c.quota, quota.Produce, float64(c.requestBytes)), c.b.requestThrottle(c.requestQuota))
	if c.acks != 0 {
		buf := netpoll.GetBuffer()
		buf.B = proto.AppendResponseHeader(buf.B, &c.hdr)
		buf.B = c.appendResponse(buf.B)
		replyQuota(c.req, buf, c.throttleMs)
	}
	c.b, c.tr = nil, nil
	c.quota, c.requestQuota = quotaClient{}, quotaClient{}
	c.req = netpoll.Request{}
	for i := range c.slots {
		c.slots[i] = partSlot{}
	}
	produceCtxPool.Put(c)
}

func (b *Broker) serveProduce(req netpoll.Request, hdr proto.RequestHeader, body []byte) {
	c := produceCtxPool.Get().(*produceCtx)
	c.b, c.req, c.hdr = b, req, hdr
	c.quota, c.requestBytes = b.quotaClientOf(req, &hdr, quota.Produce), int(hdr.BodyOffset)+len(body)
	c.requestQuota = b.quotaClientOf(req, &hdr, quota.Request)
	c.hdr.ClientID = nil
	c.failed.Store(false)
	ok := c.parse(body)
	c.tr = req.Trace()
	c.tr.Mark(reqtrace.Parsed)
	if !ok {
		c.b, c.tr = nil, nil
		for i := range c.slots {
			c.slots[i] = partSlot{}
		}
		produceCtxPool.Put(c)
		b.badRequest(req, &hdr, errMalformedProduce)
		return
	}
	c.pending.Store(int32(len(c.slots)) + 1)
	switch {
	case hdr.APIVersion < produceMinServed:
		c.failAll(kerr.UnsupportedVersion)
	case c.acks != 0 && c.acks != 1 && c.acks != -1:
		c.failAll(kerr.InvalidRequiredAcks)
	case c.txnID != "" && !b.authorize(req, acl.OpWrite, acl.ResourceTransactionalID, c.txnID): // authz.go
		c.failAll(kerr.TransactionalIDAuthorizationFailed)
	default:
		c.produceAll()
		// Appends whose write this thread took (append.inline): written
		// here, their callbacks answering on this thread, before the
		// countDown below may finish the request.
		for i, l := range c.inline {
			l.RunInline()
			c.inline[i] = nil
		}
		c.inline = c.inline[:0]
	}
	c.txnID = ""
	// Every records slice aliases the frame: drop them before returning.
	for i := range c.slots {
		c.slots[i].records = nil
	}
	if c.acks == 0 {
		if c.failed.Load() {
			req.Close("produce with acks=0 failed (Kafka closes the connection so the client notices)")
		} else {
			// Counted now (quota.go): there is no answer to wait for.
			ms := max(b.recordQuota(c.quota, quota.Produce, float64(c.requestBytes)), b.requestThrottle(c.requestQuota))
			c.quota, c.requestQuota = quotaClient{}, quotaClient{}
			req.NoReplyThrottled(time.Duration(ms) * time.Millisecond)
		}
	}
	c.countDown()
}

func (c *produceCtx) failAll(code *kerr.Error) {
	for i := range c.slots {
		c.slots[i].done(code.Code, -1, -1, -1, "")
	}
}

// produceAll validates and appends every partition.
func (c *produceCtx) produceAll() {
	b := c.b
	var st *produceState
	var nowMs int64 // read once, when the first batch needs it
	for ti := range c.topics {
		t := &c.topics[ti]
		var topic *Topic
		if b.reg != nil {
			topic = b.reg.Topic(t.name)
		}
		internal := isInternalTopic(t.name)
		writable := b.authorize(c.req, acl.OpWrite, acl.ResourceTopic, t.name) // authz.go: WRITE, before existence, as KafkaApis
		for i := t.first; i < t.end; i++ {
			s := &c.slots[i]
			if !writable {
				s.done(kerr.TopicAuthorizationFailed.Code, -1, -1, -1, "")
				continue
			}
			if internal {
				// Only the coordinator writes here: one client record the
				// group loader cannot parse used to stop the next start.
				s.done(kerr.InvalidTopicException.Code, -1, -1, -1, "")
				continue
			}
			if topic == nil && (b.opts.Cluster == nil || !b.clusterTopicExists(t.name)) {
				// (In a cluster a topic this broker has not synced yet is
				// NOT_LEADER_OR_FOLLOWER, from servedPartition below.)
				code := kerr.UnknownTopicOrPartition
				if ValidateTopicName(t.name) != nil {
					code = kerr.InvalidTopicException
				}
				s.done(code.Code, -1, -1, -1, "")
				continue
			}
			p, code := b.servedPartition(t.name, s.partition)
			if p == nil {
				if code == kerr.NotLeaderForPartition.Code && c.hdr.APIVersion >= 10 {
					s.leader = b.currentLeader(t.name, s.partition)
				}
				s.done(code, -1, -1, -1, "")
				continue
			}
			set := p.Topic.Settings()
			if c.acks == -1 && b.opts.Cluster != nil {
				// Kafka's appendRecordsToLeader: too few in-sync replicas
				// for acks=all is refused before the append.
				if b.repl.inSync(p) < set.minInsync {
					s.done(kerr.NotEnoughReplicas.Code, -1, -1, -1, "")
					continue
				}
			}
			bi, berr := validateBatch(s.records, set.maxMessageBytes, c.hdr.APIVersion)
			if berr != nil {
				c.fail(s, berr)
				continue
			}
			// Uncompressed records were walked by validateBatch; a compressed
			// batch is decompressed and walked here when small, else on the
			// worker (produce_compression.go: ringInspectMaxBytes). A batch
			// the topic recompresses is decompressed on the worker anyway:
			// it is walked there, once.
			codec, recompress := codecByName(set.compression)
			recompress = recompress && codec != bi.codec()
			inspect := bi.codec() != codecNone
			if inspect && !recompress && len(s.records) <= ringInspectMaxBytes {
				handOff, berr := walkCompressed(&bi, ringDecompressMaxBytes)
				if berr != nil {
					c.fail(s, berr)
					continue
				}
				inspect = handOff
			}
			if !inspect {
				if nowMs == 0 {
					nowMs = c.b.clock.Now().UnixMilli()
				}
				if berr := admitRecords(&bi, set.rules, nowMs); berr != nil {
					c.fail(s, berr)
					continue
				}
			}
			if st == nil {
				st = b.produce
			}
			if bi.batch.Transactional() {
				if bi.batch.ProducerID() < 0 {
					c.fail(s, &batchError{kerr.InvalidRecord, "transactional batch without a producer id"})
					continue
				}
				if c.hdr.APIVersion >= 12 && c.txnID != "" {
					// Transactions v2: the partition joins the transaction
					// here if it is not in it yet (txn_add.go).
					if c.addToTxnV2(st.part(p), s, &bi, t.name, inspect, set.rules, recompress, codec, set.maxMessageBytes) {
						continue
					}
				} else if v := b.txnVerify; v != nil {
					code, remote := v(c.txnID, bi.batch.ProducerID(), bi.batch.ProducerEpoch(), t.name, s.partition)
					if remote {
						// Another broker coordinates the id: it verifies
						// the partition (txn_add.go).
						if c.verifyTxnRemote(st.part(p), s, &bi, t.name, inspect, set.rules, recompress, codec, set.maxMessageBytes) {
							continue
						}
					} else if code != 0 {
						s.done(code, -1, -1, -1, "")
						continue
					}
				}
			}
			ps := st.part(p)
			if inspect || recompress || ps.queued.Load() > 0 || (bi.idempotent() && !ps.loaded.Load()) {
				c.toWorker(ps, s, &bi, inspect, set.rules, recompress, codec, set.maxMessageBytes)
				c.tr.Mark(reqtrace.AppendQueued)
				continue
			}
			// Inline (append.inline) only for a request of one partition:
			// one of several would be written after the others on this
			// thread, where their writer goroutines write them in
			// parallel (p100-8p lost 14-35% of its rate), and its answer
			// waits for every partition anyway.
			s.inlineOK = len(c.slots) == 1
			out := ps.appendBatch(&bi, s)
			s.inlineOK = false
			if out == outBacklog {
				c.toWorker(ps, s, &bi, false, set.rules, false, 0, set.maxMessageBytes)
			}
			c.tr.Mark(reqtrace.AppendQueued)
		}
	}
}

// fail answers a slot whose batch failed validation (the message from
// Produce v8, which carries error_message).
func (c *produceCtx) fail(s *partSlot, berr *batchError) {
	msg := ""
	if c.hdr.APIVersion >= 8 {
		msg = berr.msg
	}
	s.done(berr.err.Code, -1, -1, -1, msg)
}

// toWorker copies the slot's batch and queues it on the partition's worker.
func (c *produceCtx) toWorker(ps *partState, s *partSlot, bi *batchInfo, inspect bool, rules recordRules, recompress bool, codec int8, maxMessageBytes int32) {
	enqueueProduceJob(c.newJob(ps, s, bi, inspect, rules, recompress, codec, maxMessageBytes))
}

// newJob is the worker job of the slot's batch, over a copy of its bytes.
func (c *produceCtx) newJob(ps *partState, s *partSlot, bi *batchInfo, inspect bool, rules recordRules, recompress bool, codec int8, maxMessageBytes int32) *produceJob {
	job := &produceJob{
		ps: ps, slot: s, bi: *bi,
		inspect: inspect, rules: rules, recompress: recompress, codec: codec, maxMessageBytes: maxMessageBytes,
		deadline: time.Now().Add(time.Duration(max(c.timeout, 1000)) * time.Millisecond),
		logger:   c.b.log,
		now:      c.b.clock.Now,
	}
	job.bi.batch = bi.batch.Clone() // bi's view is over the frame
	return job
}

// enqueueProduceJob queues job on its partition's worker.
func enqueueProduceJob(job *produceJob) {
	ps := job.ps
	ps.queued.Add(1)
	// Refused once Broker.Close stopped the workers.
	if !ps.worker.enqueue(job) {
		ps.queued.Add(-1)
		job.slot.done(kerr.NotLeaderForPartition.Code, -1, -1, -1, "")
	}
}

// parse reads the request body into c.topics and c.slots (all versions
// 0-11 share this layout, transactional_id from v3, flexible from v9).
// Topic names are copied into c.names; records alias body.
func (c *produceCtx) parse(body []byte) (ok bool) {
	v := c.hdr.APIVersion
	r := proto.NewReader(body, v >= 9)
	if v >= 3 {
		if id, null := r.NullableString(); !null {
			c.txnID = unsafe.String(unsafe.SliceData(id), len(id))
		}
	}
	c.acks = r.Int16()
	c.timeout = r.Int32()
	// A topic is at least a name length and a partitions count (6 bytes; 3
	// when flexible: two compact lengths and a tag count); a partition at
	// least its index and a records length (8; 6 flexible).
	minTopic, minPart := 6, 8
	if r.Flexible {
		minTopic, minPart = 3, 6
	}
	nt := r.ArrayLen(minTopic)
	c.topics = c.topics[:0]
	c.slots = c.slots[:0]
	// Names are copied after parsing, once c.names has its final size, so
	// the strings pointing into it stay valid.
	var spansBuf [8][]byte
	spans := spansBuf[:0]
	total := 0
	for i := 0; i < nt && r.Ok(); i++ {
		name := r.String()
		spans = append(spans, name)
		total += len(name)
		t := produceTopic{first: len(c.slots)}
		np := r.ArrayLen(minPart)
		for j := 0; j < np && r.Ok(); j++ {
			part := r.Int32()
			// A length past the end of the body (a lying or truncated
			// request) fails the parse rather than slicing past it.
			rec := r.NullableBytes()
			r.SkipTags()
			c.slots = append(c.slots, partSlot{ctx: c, partition: part, records: rec})
		}
		t.end = len(c.slots)
		r.SkipTags()
		c.topics = append(c.topics, t)
	}
	r.SkipTags()
	if !r.Complete() {
		return false
	}
	if cap(c.names) < total {
		c.names = make([]byte, 0, total*2)
	}
	c.names = c.names[:0]
	for i, name := range spans {
		start := len(c.names)
		c.names = append(c.names, name...)
		if len(name) > 0 {
			c.topics[i].name = unsafe.String(&c.names[start], len(name))
		} else {
			c.topics[i].name = ""
		}
	}
	return true
}

// appendResponse encodes the Produce response body for c.hdr.APIVersion.
func (c *produceCtx) appendResponse(dst []byte) []byte {
	v := c.hdr.APIVersion
	w := proto.Writer{B: dst, Flexible: v >= 9}
	var leaders []int32 // KIP-951: the brokers named in current_leader tags
	w.ArrayLen(len(c.topics))
	for ti := range c.topics {
		t := &c.topics[ti]
		w.String(t.name)
		w.ArrayLen(t.end - t.first)
		for i := t.first; i < t.end; i++ {
			s := &c.slots[i]
			w.Int32(s.partition)
			w.Int16(s.errorCode)
			w.Int64(s.baseOffset)
			if v >= 2 {
				w.Int64(s.logAppendTime)
			}
			if v >= 5 {
				w.Int64(s.logStart)
			}
			if v >= 8 {
				w.ArrayLen(0) // record_errors: we reject whole batches
				w.NullableString(s.errorMessage)
			}
			if s.leader != nil && v >= 10 {
				s.leader.appendTag(&w, 0) // KIP-951 current_leader
				leaders = append(leaders, s.leader.id)
			} else {
				w.Tags()
			}
		}
		w.Tags()
	}
	if v >= 1 {
		w.Int32(c.throttleMs) // throttle_time_ms (quota.go)
	}
	if len(leaders) > 0 {
		c.b.appendNodeEndpoints(&w, c.req, leaders) // KIP-951 node_endpoints, tag 0
	} else {
		w.Tags()
	}
	return w.B
}

var errMalformedProduce = errors.New("malformed Produce request body")
