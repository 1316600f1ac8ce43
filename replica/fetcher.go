package replica

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/ratelog"
	"github.com/ringbroker/ringbroker/storage"
)

// Request versions the fetcher sends, at most (and at least: a leader
// that serves less is not fetched from).
const (
	fetchVersionMin  = 4  // record batches v2, log start offset (v5) optional
	fetchVersionMax  = 16 // 17 adds replica directory ids (KRaft JBOD)
	epochVersionMin  = 2  // current_leader_epoch
	epochVersionMax  = 4
	offsetVersionMin = 1 // replica_id and a single offset per partition
	offsetVersionMax = 7
)

// topicPartition names a partition.
type topicPartition struct {
	Topic     string
	Partition int32
}

// assignment is what the manager wants fetched for one partition.
type assignment struct {
	topicID     [16]byte
	leaderEpoch int32
	log         Log
}

// fetchState is a partition's place in a fetcher.
type fetchState uint8

const (
	// stateTruncating: find the divergence point with the leader
	// (OffsetForLeaderEpoch) and truncate to it before fetching.
	stateTruncating fetchState = iota
	stateFetching
	// stateStopped: not fetched until the manager gives the partition a
	// new leader epoch or a new log (fenced by the leader, a log that
	// failed, or an out-of-range case the fetcher may not repair).
	stateStopped
)

// partition is one partition a fetcher follows. A new *partition replaces
// it whenever the assignment changes, so a response is applied only to
// the partition object it was requested for (pointer identity).
type partition struct {
	assignment
	state   fetchState
	retryAt time.Time // not fetched before (backoff); zero: now
	// epochChecked: an OFFSET_OUT_OF_RANGE past the leader's log end sent
	// the partition through OffsetForLeaderEpoch once; a second one, with
	// no fetch served between, truncates to the leader's log end
	// (outOfRange).
	epochChecked bool
	// lag is the leader's high watermark at the last answer minus the log
	// end after it, at least 0 (Kafka's FetcherLagMetrics); -1 until the
	// first answer. For Manager.Lags.
	lag int64
}

// fetcher fetches every partition of one leader assigned to it, over one
// connection, one request in flight (Kafka's ReplicaFetcherThread).
//
// Concurrency: the fetcher goroutine (run) owns conn. mu guards parts and
// brokerEpoch; the manager changes them under mu (set), and the fetcher
// goroutine holds mu while it builds a request and while it applies a
// response (appends, truncations, high watermark), never across network
// I/O. So once set returns, no write to a removed partition's log follows
// (Kafka's partitionMapLock).
type fetcher struct {
	cfg    *Config
	key    fetcherKey
	addr   string
	logger *zap.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // capacity 1: set changed the partitions

	mu          sync.Mutex
	parts       map[topicPartition]*partition
	brokerEpoch int64

	conn *conn // fetcher goroutine only

	connLog, partLog ratelog.Every
}

func newFetcher(parent context.Context, cfg *Config, key fetcherKey, addr string) *fetcher {
	ctx, cancel := context.WithCancel(parent)
	return &fetcher{
		cfg: cfg, key: key, addr: addr, ctx: ctx, cancel: cancel,
		logger: cfg.Logger.With(zap.Int32("leader", key.leader), zap.Int("fetcher", key.index), zap.String("addr", addr)),
		done:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
		parts:  map[topicPartition]*partition{},
	}
}

// set makes want the fetcher's partitions: gone ones are dropped, new ones
// and those whose leader epoch, topic id or log changed start over by
// truncating; the others keep their state. It returns how many partitions
// the fetcher has.
func (f *fetcher) set(want map[topicPartition]assignment, brokerEpoch int64) int {
	f.mu.Lock()
	for tp := range f.parts {
		if _, ok := want[tp]; !ok {
			delete(f.parts, tp)
		}
	}
	for tp, a := range want {
		if p := f.parts[tp]; p == nil || p.assignment != a {
			f.parts[tp] = &partition{assignment: a, state: stateTruncating, lag: -1}
		}
	}
	f.brokerEpoch = brokerEpoch
	n := len(f.parts)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return n
}

// retain drops the partitions that want does not hold with the same
// assignment, and adds none. It returns how many partitions the fetcher
// has left.
func (f *fetcher) retain(want map[topicPartition]assignment) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for tp, p := range f.parts {
		if a, ok := want[tp]; !ok || a != p.assignment {
			delete(f.parts, tp)
		}
	}
	return len(f.parts)
}

// run is the fetcher goroutine.
func (f *fetcher) run() {
	defer close(f.done)
	defer f.dropConn()
	for f.ctx.Err() == nil {
		if f.conn == nil {
			if !f.connect() {
				continue
			}
		}
		if err := f.truncateRound(); err != nil {
			f.connFailed(err)
			continue
		}
		if err := f.fetchRound(); err != nil {
			f.connFailed(err)
			continue
		}
		if wait, until := f.nextDue(time.Now()); wait {
			f.sleepUntil(until)
		}
	}
}

// nextDue reports whether no partition is due at now, and then until when
// to wait: the earliest backoff's end, or zero (until a change) when every
// partition is stopped.
func (f *fetcher) nextDue(now time.Time) (wait bool, until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.parts {
		if p.state == stateStopped {
			continue
		}
		if !p.retryAt.After(now) {
			return false, time.Time{}
		}
		if until.IsZero() || p.retryAt.Before(until) {
			until = p.retryAt
		}
	}
	return true, until
}

// connect dials the leader; on failure it backs off. Reports success.
func (f *fetcher) connect() bool {
	if f.idle() {
		f.sleepUntil(time.Time{})
		return false
	}
	c, err := dial(f.ctx, f.cfg.Dial, f.addr, clientID(f.cfg.NodeID, f.key.index), f.cfg.frameBytesMax(), f.cfg.RequestTimeout)
	if err != nil {
		f.connFailed(err)
		return false
	}
	f.conn = c
	return true
}

// idle reports whether the fetcher has nothing it could fetch now or later
// without a change from the manager.
func (f *fetcher) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.parts {
		if p.state != stateStopped {
			return false
		}
	}
	return true
}

func (f *fetcher) dropConn() {
	if f.conn != nil {
		f.conn.close()
		f.conn = nil
	}
}

// connFailed closes the connection after a failed request and backs off
// (replica.fetch.backoff.ms).
func (f *fetcher) connFailed(err error) {
	f.dropConn()
	if f.ctx.Err() != nil {
		return
	}
	if n, ok := f.connLog.Event(10 * time.Second); ok {
		f.logger.Warn("replica fetcher: request to the leader failed; retrying after backoff",
			zap.Int64("failures_since_last_line", n), zap.Duration("backoff", f.cfg.Backoff), zap.Error(err))
	}
	f.sleepUntil(time.Now().Add(f.cfg.Backoff))
}

// sleepUntil waits until t (zero: until woken), a change from the manager,
// or the fetcher's end.
func (f *fetcher) sleepUntil(t time.Time) {
	var timer <-chan time.Time
	if !t.IsZero() {
		tm := time.NewTimer(time.Until(t))
		defer tm.Stop()
		timer = tm.C
	}
	select {
	case <-f.ctx.Done():
	case <-f.wake:
	case <-timer:
	}
}

// sent is one partition of a request, as it was when the request was built.
type sent struct {
	tp          topicPartition
	p           *partition
	fetchOffset int64
}

// collect returns, sorted, the partitions in state st due at now.
//
// REQUIRES: f.mu held.
func (f *fetcher) collect(st fetchState, now time.Time) []sent {
	var out []sent
	for tp, p := range f.parts {
		if p.state != st || p.retryAt.After(now) {
			continue
		}
		out = append(out, sent{tp: tp, p: p, fetchOffset: p.log.LogEndOffset()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].tp.Topic != out[j].tp.Topic {
			return out[i].tp.Topic < out[j].tp.Topic
		}
		return out[i].tp.Partition < out[j].tp.Partition
	})
	return out
}

// current reports whether s's partition is still the one the request was
// built for. REQUIRES: f.mu held.
func (f *fetcher) current(s sent) bool { return f.parts[s.tp] == s.p }

// backoff delays p by replica.fetch.backoff.ms. REQUIRES: f.mu held.
func (f *fetcher) backoff(p *partition) { p.retryAt = time.Now().Add(f.cfg.Backoff) }

// partitionError handles an error code the leader answered for p (Fetch or
// OffsetForLeaderEpoch), other than OFFSET_OUT_OF_RANGE: FENCED_LEADER_EPOCH
// stops the partition until a newer image (Kafka marks it failed until the
// next LeaderAndIsr); the others (NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH:
// the leader has not applied our image yet, UNKNOWN_TOPIC_OR_PARTITION, ...)
// back off and retry. REQUIRES: f.mu held.
func (f *fetcher) partitionError(s sent, code int16, api string) {
	err := kerr.ErrorForCode(code)
	if code == kerr.FencedLeaderEpoch.Code {
		s.p.state = stateStopped
	} else {
		f.backoff(s.p)
	}
	if n, ok := f.partLog.Event(10 * time.Second); ok {
		f.logger.Info("replica fetcher: the leader answered an error for a partition",
			zap.String("api", api), zap.String("topic", s.tp.Topic), zap.Int32("partition", s.tp.Partition),
			zap.Int32("leader_epoch", s.p.leaderEpoch), zap.Int64("errors_since_last_line", n), zap.Error(err))
	}
}

// retryLater backs s off after a failure worth retrying and logs it,
// rate-limited. REQUIRES: f.mu held.
func (f *fetcher) retryLater(s sent, msg string, err error) {
	f.backoff(s.p)
	if n, ok := f.partLog.Event(10 * time.Second); ok {
		f.logger.Warn("replica fetcher: "+msg+"; fetching again after the backoff",
			zap.String("topic", s.tp.Topic), zap.Int32("partition", s.tp.Partition),
			zap.Int64("errors_since_last_line", n), zap.Error(err))
	}
}

// logFailure stops p after a local failure (its log failed or closed) and
// logs it, rate-limited. REQUIRES: f.mu held.
func (f *fetcher) logFailure(s sent, msg string, err error) {
	s.p.state = stateStopped
	if n, ok := f.partLog.Event(10 * time.Second); ok {
		f.logger.Error("replica fetcher: "+msg+"; the partition is not fetched until its leadership changes",
			zap.String("topic", s.tp.Topic), zap.Int32("partition", s.tp.Partition),
			zap.Int64("errors_since_last_line", n), zap.Error(err))
	}
}

// truncateRound sends one OffsetForLeaderEpoch for every partition in
// stateTruncating and truncates each to the divergence point it proves
// (truncationPoint). A partition whose log has no epoch at all has nothing
// to compare and goes straight to fetching. Returns a connection error.
func (f *fetcher) truncateRound() error {
	f.mu.Lock()
	parts := f.collect(stateTruncating, time.Now())
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	var asked []sent
	for _, s := range parts {
		epoch, ok := s.p.log.LatestEpoch()
		if !ok {
			s.p.state = stateFetching
			continue
		}
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != s.tp.Topic {
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = s.tp.Topic
			req.Topics = append(req.Topics, t)
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition = s.tp.Partition
		rp.CurrentLeaderEpoch = s.p.leaderEpoch
		rp.LeaderEpoch = epoch
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, rp)
		asked = append(asked, s)
	}
	f.mu.Unlock()
	if len(asked) == 0 {
		return nil
	}
	v, ok := f.conn.version(req, epochVersionMin, epochVersionMax)
	if !ok {
		return errors.New("the leader does not serve OffsetForLeaderEpoch v2+")
	}
	req.Version = v
	req.ReplicaID = f.cfg.NodeID
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	if err := f.conn.roundTrip(f.ctx, req, resp, f.cfg.RequestTimeout); err != nil {
		return err
	}
	answers := map[topicPartition]kmsg.OffsetForLeaderEpochResponseTopicPartition{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			answers[topicPartition{t.Topic, p.Partition}] = p
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range asked {
		if !f.current(s) {
			continue
		}
		a, ok := answers[s.tp]
		switch {
		case !ok:
			f.backoff(s.p)
		case a.ErrorCode != 0:
			f.partitionError(s, a.ErrorCode, "OffsetForLeaderEpoch")
		default:
			f.truncate(s, a.LeaderEpoch, a.EndOffset)
		}
	}
	return nil
}

// truncate applies the leader's answer (leaderEpoch, leaderEnd) to s: cut
// at the proven divergence point, then fetch (or ask again, see
// truncationPoint). REQUIRES: f.mu held.
func (f *fetcher) truncate(s sent, leaderEpoch int32, leaderEnd int64) {
	l := s.p.log
	end := l.LogEndOffset()
	offset, done := truncationPoint(leaderEpoch, leaderEnd, end, l.EndOffsetForEpoch)
	if offset < end {
		f.logger.Info("replica fetcher: truncating the follower log to its divergence point with the leader",
			zap.String("topic", s.tp.Topic), zap.Int32("partition", s.tp.Partition),
			zap.Int64("log_end_offset", end), zap.Int64("truncate_to", offset),
			zap.Int32("leader_answered_epoch", leaderEpoch), zap.Int64("leader_epoch_end_offset", leaderEnd), zap.Bool("done", done))
		if err := l.TruncateTo(offset); err != nil {
			f.logFailure(s, "truncating the follower log failed", err)
			return
		}
		f.truncated(s, l)
	}
	if done {
		s.p.state = stateFetching
	}
}

// diverged applies a Fetch answer's diverging_epoch (epoch, endOffset):
// the leader's end of the largest epoch it has at or below the one we
// sent, as Kafka's truncateOnFetchResponse does: the same proof as an
// OffsetForLeaderEpoch answer (truncationPoint), so the cut is at the
// proven divergence point, and when it is not final (the leader named an
// epoch we do not have) the partition asks OffsetForLeaderEpoch next.
// REQUIRES: f.mu held.
func (f *fetcher) diverged(s sent, epoch int32, endOffset int64) {
	f.logger.Info("replica fetcher: the leader answered that the follower log diverges (diverging_epoch)",
		zap.String("topic", s.tp.Topic), zap.Int32("partition", s.tp.Partition),
		zap.Int64("fetch_offset", s.fetchOffset), zap.Int32("diverging_epoch", epoch), zap.Int64("diverging_epoch_end_offset", endOffset))
	s.p.state = stateTruncating
	f.truncate(s, epoch, endOffset)
}

// truncated tells Config.Truncated that s's log was cut to its log end.
func (f *fetcher) truncated(s sent, l Log) {
	if f.cfg.Truncated != nil {
		f.cfg.Truncated(s.tp.Topic, s.tp.Partition, l.LogEndOffset())
	}
}

// fetchRound sends one Fetch for every partition due in stateFetching and
// applies the answer. It returns a connection error.
func (f *fetcher) fetchRound() error {
	f.mu.Lock()
	parts := f.collect(stateFetching, time.Now())
	brokerEpoch := f.brokerEpoch
	req := kmsg.NewPtrFetchRequest()
	for _, s := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != s.tp.Topic {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = s.tp.Topic, s.p.topicID
			req.Topics = append(req.Topics, t)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = s.tp.Partition
		rp.CurrentLeaderEpoch = s.p.leaderEpoch
		rp.FetchOffset = s.fetchOffset
		// The log's latest epoch (v12+, KIP-595 truncation on fetch): a
		// leader whose log diverges from ours answers diverging_epoch
		// instead of records (applyFetch). -1 for a log without epochs.
		// The first truncation of a partition still goes through
		// OffsetForLeaderEpoch (truncateRound).
		rp.LastFetchedEpoch = -1
		if epoch, ok := s.p.log.LatestEpoch(); ok {
			rp.LastFetchedEpoch = epoch
		}
		rp.LogStartOffset = s.p.log.LogStartOffset()
		rp.PartitionMaxBytes = f.cfg.FetchMaxBytes
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, rp)
	}
	f.mu.Unlock()
	if len(parts) == 0 {
		return nil
	}
	v, ok := f.conn.version(req, fetchVersionMin, fetchVersionMax)
	if !ok {
		return errors.New("the leader does not serve Fetch v4+")
	}
	req.Version = v
	req.ReplicaID = f.cfg.NodeID // v0-14
	req.ReplicaState.ID = f.cfg.NodeID
	req.ReplicaState.Epoch = brokerEpoch // v15+
	req.MaxWaitMillis = int32(f.cfg.FetchWaitMax / time.Millisecond)
	req.MinBytes = f.cfg.FetchMinBytes
	req.MaxBytes = f.cfg.FetchMaxBytes
	req.IsolationLevel = 0
	req.SessionID, req.SessionEpoch = 0, -1 // a full fetch each time, no session kept on the leader
	resp := kmsg.NewPtrFetchResponse()
	if err := f.conn.roundTrip(f.ctx, req, resp, f.cfg.FetchWaitMax+f.cfg.RequestTimeout); err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		f.mu.Lock()
		for _, s := range parts {
			if f.current(s) {
				f.partitionError(s, resp.ErrorCode, "Fetch")
			}
		}
		f.mu.Unlock()
		return nil
	}
	answers := make(map[topicPartition]*kmsg.FetchResponseTopicPartition, len(parts))
	byID := map[[16]byte]string{}
	for _, s := range parts {
		byID[s.p.topicID] = s.tp.Topic
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		name := t.Topic
		if v >= 13 {
			name = byID[t.TopicID]
		}
		for j := range t.Partitions {
			answers[topicPartition{name, t.Partitions[j].Partition}] = &t.Partitions[j]
		}
	}
	for _, s := range f.applyFetch(parts, answers) {
		f.outOfRange(s)
	}
	return nil
}

// appendWait is one AppendReplica in flight.
type appendWait struct {
	s    sent
	a    *kmsg.FetchResponseTopicPartition
	done chan error
}

// applyFetch appends what the leader sent, waits for the writes, then
// moves each partition's high watermark and log start. It returns the
// partitions answered OFFSET_OUT_OF_RANGE, for outOfRange.
func (f *fetcher) applyFetch(parts []sent, answers map[topicPartition]*kmsg.FetchResponseTopicPartition) (outOfRange []sent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var waits []appendWait
	for _, s := range parts {
		if !f.current(s) || s.p.state != stateFetching {
			continue
		}
		a := answers[s.tp]
		switch {
		case a == nil:
			f.backoff(s.p)
			continue
		case a.ErrorCode == kerr.OffsetOutOfRange.Code:
			outOfRange = append(outOfRange, s)
			continue
		case a.ErrorCode != 0:
			f.partitionError(s, a.ErrorCode, "Fetch")
			continue
		case a.DivergingEpoch.Epoch >= 0 && a.DivergingEpoch.EndOffset >= 0:
			f.diverged(s, a.DivergingEpoch.Epoch, a.DivergingEpoch.EndOffset)
			continue
		}
		batches := wholeBatches(a.RecordBatches)
		if len(batches) == 0 {
			if len(a.RecordBatches) > 0 {
				// Bytes but not one whole batch: a leader that does not
				// return an oversized first batch whole (KIP-74), or a
				// corrupt length. Fetching again at once would spin.
				f.retryLater(s, "the leader's answer holds no whole record batch", fmt.Errorf("%d bytes", len(a.RecordBatches)))
				continue
			}
			f.followLeader(s, a)
			continue
		}
		if !f.startAtStraddlingBatch(s, batches) {
			continue
		}
		w := appendWait{s: s, a: a, done: make(chan error, 1)}
		err := s.p.log.AppendReplica(batches, storage.AppendFunc(func(r storage.AppendResult) { w.done <- r.Err }))
		if err != nil {
			w.done <- err
		}
		waits = append(waits, w)
	}
	for _, w := range waits {
		var err error
		select {
		case err = <-w.done:
		case <-f.ctx.Done():
			return nil // the writer's callback still lands in the buffered channel
		}
		switch {
		case errors.Is(err, storage.ErrReplicaOffset):
			// The log end moved under us (it should not: only this
			// fetcher writes a follower log): fetch again from it.
			f.retryLater(w.s, "the leader's batches did not start at the follower's log end", err)
		case errors.Is(err, storage.ErrCorruptBatch), errors.Is(err, storage.ErrInvalidBatch):
			// Kafka retries a partition whose fetched records are
			// corrupt (CorruptRecordException) after the backoff.
			f.retryLater(w.s, "the leader sent an invalid record batch", err)
		case errors.Is(err, storage.ErrBacklog):
			f.retryLater(w.s, "the follower log's append backlog is full", err)
		case errors.Is(err, storage.ErrLogFailed), errors.Is(err, storage.ErrClosed), errors.Is(err, storage.ErrLogDirOffline):
			// (An offline log dir's partitions stop fetching, as Kafka
			// removes their fetchers: broker/log_dir_failure.go.)
			f.logFailure(w.s, "appending the leader's batches failed", err)
		case err != nil:
			// A write, fdatasync or epoch-file error the log undid (a
			// full disk: it cut the torn bytes off and kept its end),
			// so fetching again from its end after the backoff is safe
			// and catches up once the disk has room, as the leader's
			// own appends do (KAFKA_STORAGE_ERROR, retried). Stopping
			// the partition here left the follower out of the ISR for
			// good. A log that could not undo it answers ErrLogFailed.
			f.retryLater(w.s, "appending the leader's batches failed", err)
		default:
			f.followLeader(w.s, w.a)
		}
	}
	return outOfRange
}

// startAtStraddlingBatch handles a first batch that starts below an empty
// follower log's end and ends at or after it, as Kafka's Partition does on
// UnexpectedAppendOffsetException: the leader's log start fell inside that
// batch (DeleteRecords), the follower started over at it (outOfRange) and
// the leader returns the whole batch holding it. The log, which holds no
// record, starts over at the batch's base offset
// (storage.Log.TruncateFullyAndStartAt allows that on an empty log) and
// takes the batch; followLeader then moves its log start back up to the
// leader's. It returns false when s is done for this round (the start over
// failed: the partition stops, as other local failures do). Any other
// batch is left to AppendReplica, which refuses one not at the log end.
// REQUIRES: f.mu held.
func (f *fetcher) startAtStraddlingBatch(s sent, batches []byte) bool {
	l := s.p.log
	end := l.LogEndOffset()
	base, last, ok := firstBatchOffsets(batches)
	if !ok || l.LogStartOffset() != end || base >= end || last < end {
		return true
	}
	f.logger.Info("replica fetcher: the first batch starts below the empty follower log's start (the leader's log start is inside it): the log starts at the batch's base offset, as Kafka does",
		zap.String("topic", s.tp.Topic), zap.Int32("partition", s.tp.Partition),
		zap.Int64("log_start_offset", end), zap.Int64("batch_base_offset", base), zap.Int64("batch_last_offset", last))
	if err := l.TruncateFullyAndStartAt(base); err != nil {
		f.logFailure(s, "starting the empty follower log at the leader's first batch failed", err)
		return false
	}
	if f.cfg.StartedOver != nil {
		f.cfg.StartedOver(s.tp.Topic, s.tp.Partition, base)
	} else {
		f.truncated(s, l)
	}
	return true
}

// followLeader sets s's high watermark from the leader's, bounded by the
// local log end, and moves its log start up to the leader's (the leader's
// DeleteRecords or retention), never past the high watermark.
// REQUIRES: f.mu held.
func (f *fetcher) followLeader(s sent, a *kmsg.FetchResponseTopicPartition) {
	l := s.p.log
	s.p.epochChecked = false
	s.p.lag = max(0, a.HighWatermark-l.LogEndOffset())
	l.SetHighWatermark(min(a.HighWatermark, l.LogEndOffset()))
	if a.LogStartOffset > l.LogStartOffset() {
		if to := min(a.LogStartOffset, l.HighWatermark()); to > l.LogStartOffset() {
			if _, err := l.DeleteRecords(to); err != nil {
				if n, ok := f.partLog.Event(10 * time.Second); ok {
					f.logger.Warn("replica fetcher: following the leader's log start offset failed",
						zap.String("topic", s.tp.Topic), zap.Int32("partition", s.tp.Partition),
						zap.Int64("leader_log_start_offset", a.LogStartOffset), zap.Int64("errors_since_last_line", n), zap.Error(err))
				}
			}
		}
	}
}

// outOfRange handles OFFSET_OUT_OF_RANGE for s as Kafka's
// fetchOffsetAndTruncate does, with the leader's log end and start
// (ListOffsets as a replica):
//
//   - the leader's log ends below ours: first one OffsetForLeaderEpoch
//     round (the epoch rules prove a divergence point when there is one);
//     if the fetch is still out of range after it (nothing proven: an
//     unclean election left the leader without our epochs), truncate to
//     the leader's log end, as Kafka does (WARN);
//   - the leader's log starts past our log end (its retention or
//     DeleteRecords removed everything we hold and what we lack): our log
//     starts over empty at the leader's log start (Kafka's
//     truncateFullyAndStartAt, WARN). Only our copy of records the leader
//     no longer has goes: they are all below its log start;
//   - otherwise the offset is in range again and the next round fetches it.
//
// REQUIRES: f.mu not held (it talks to the leader).
func (f *fetcher) outOfRange(s sent) {
	leaderEnd, err := f.listOffset(s, -1)
	var leaderStart int64
	if err == nil {
		leaderStart, err = f.listOffset(s, -2)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.current(s) {
		return
	}
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		f.partitionError(s, ke.Code, "ListOffsets")
		return
	case err != nil:
		f.backoff(s.p)
		f.dropConnLocked(err)
		return
	}
	l := s.p.log
	end := l.LogEndOffset()
	_, hasEpochs := l.LatestEpoch()
	switch {
	case leaderEnd < end && hasEpochs && !s.p.epochChecked:
		f.logger.Info("replica fetcher: the leader's log ends below the follower's: checking the divergence point with OffsetForLeaderEpoch first",
			zap.String("topic", s.tp.Topic), zap.Int32("partition", s.tp.Partition),
			zap.Int64("log_end_offset", end), zap.Int64("leader_log_end_offset", leaderEnd))
		s.p.epochChecked = true
		s.p.state = stateTruncating
	case leaderEnd < end:
		f.logger.Warn("replica fetcher: the leader's log ends below the follower's (unclean leader election?): truncating to the leader's log end, as Kafka does",
			zap.String("topic", s.tp.Topic), zap.Int32("partition", s.tp.Partition),
			zap.Int64("log_end_offset", end), zap.Int64("leader_log_end_offset", leaderEnd), zap.Int64("high_watermark", l.HighWatermark()))
		if err := l.TruncateTo(leaderEnd); err != nil {
			f.logFailure(s, "truncating the follower log to the leader's log end failed", err)
		} else {
			f.truncated(s, l)
		}
	case leaderStart > end:
		f.logger.Warn("replica fetcher: the leader's log starts past the follower's log end (its retention or DeleteRecords removed those records): the follower log starts over empty at the leader's log start, as Kafka's truncateFullyAndStartAt",
			zap.String("topic", s.tp.Topic), zap.Int32("partition", s.tp.Partition),
			zap.Int64("log_start_offset", l.LogStartOffset()), zap.Int64("log_end_offset", end), zap.Int64("leader_log_start_offset", leaderStart))
		if err := l.TruncateFullyAndStartAt(leaderStart); err != nil {
			f.logFailure(s, "starting the follower log over at the leader's log start failed", err)
		} else if f.cfg.StartedOver != nil {
			f.cfg.StartedOver(s.tp.Topic, s.tp.Partition, leaderStart)
		} else {
			f.truncated(s, l)
		}
	default:
		f.backoff(s.p)
	}
}

// dropConnLocked is a connection failure seen with f.mu held: the
// connection is dropped; the backoff is the partition's.
func (f *fetcher) dropConnLocked(err error) {
	f.dropConn()
	if n, ok := f.connLog.Event(10 * time.Second); ok {
		f.logger.Warn("replica fetcher: request to the leader failed", zap.Int64("failures_since_last_line", n), zap.Error(err))
	}
}

// listOffset asks the leader for s's offset at timestamp ts (-1: its log
// end for a replica, -2: its log start), as replica nodeID. A partition
// error comes back as a *kerr.Error.
func (f *fetcher) listOffset(s sent, ts int64) (int64, error) {
	if f.conn == nil {
		return 0, errors.New("no connection to the leader")
	}
	req := kmsg.NewPtrListOffsetsRequest()
	v, ok := f.conn.version(req, offsetVersionMin, offsetVersionMax)
	if !ok {
		return 0, errors.New("the leader does not serve ListOffsets v1+")
	}
	req.Version = v
	req.ReplicaID = f.cfg.NodeID
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = s.tp.Topic
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition = s.tp.Partition
	p.CurrentLeaderEpoch = s.p.leaderEpoch
	p.Timestamp = ts
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp := kmsg.NewPtrListOffsetsResponse()
	if err := f.conn.roundTrip(f.ctx, req, resp, f.cfg.RequestTimeout); err != nil {
		return 0, err
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic != s.tp.Topic || rp.Partition != s.tp.Partition {
				continue
			}
			if rp.ErrorCode != 0 {
				return 0, kerr.ErrorForCode(rp.ErrorCode)
			}
			return rp.Offset, nil
		}
	}
	return 0, errors.New("ListOffsets answer without the partition")
}
