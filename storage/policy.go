package storage

// The group-commit policy, free of I/O and wall-clock time so tests can
// drive it step by step (like etcd raft's ticks): the writer goroutine
// gathers a groupState under the log lock, asks decide what to do, and
// performs it.
//
// Design (why it looks like this):
//
//   - An idle writer writes the first batch at once: with nothing in flight,
//     waiting only adds latency (AppendLingerMs=0, the default).
//   - While a write (or fdatasync) is in flight, new batches queue up; when
//     it completes they leave together in ONE pwritev/WRITEV, capped at
//     AppendBatchMaxBytes and IOVMax iovecs. So the group size adapts to
//     the device: a slow fdatasync collects a big group, a fast page-cache
//     write collects little. This is what makes 64 concurrent
//     flush.messages=1 appenders cost about one fdatasync per group.
//   - AppendLingerMs > 0 adds Kafka-producer-style lingering: an idle
//     writer holding less than AppendBatchMaxBytes waits until the oldest
//     queued batch is that old (or the bytes arrive) before writing.
//   - Flush (fdatasync) follows Kafka's keys: after a group if the messages
//     not yet flushed reach flush.messages, or flush.ms has passed since the
//     last flush; the fdatasync is linked to the group's write and the
//     group's appends are acknowledged only after it. An idle writer with
//     unflushed data wakes at lastFlush+flush.ms to flush alone.
//
// Rejected: one write per batch (no batching: the 16 KiB benchmark would
// pay a syscall per batch and flush.messages=1 one fdatasync per batch);
// several writes in flight per partition (an EIO in write k would leave a
// hole under writes k+1..; failing exactly the affected appends and
// rewinding is simple only with one write in flight).

type action uint8

const (
	actIdle  action = iota // nothing to do now; wake at wakeAt if non-zero
	actWrite               // take a group and write it
	actSync                // fdatasync alone (flush.ms elapsed, nothing queued)
)

type policy struct {
	batchBytesMax   int64
	lingerNs        int64 // 0 = adaptive only
	flushMessages   int64 // flush when unflushed messages >= this
	flushIntervalNs int64 // -1 = never by time
}

func newPolicy(c *Config) policy {
	return policy{
		batchBytesMax:   int64(c.AppendBatchMaxBytes),
		lingerNs:        c.lingerNanos(),
		flushMessages:   c.FlushMessages,
		flushIntervalNs: c.flushIntervalNanos(),
	}
}

// groupState is what the writer sees when deciding.
type groupState struct {
	nowNs            int64
	inFlight         bool  // a write or fdatasync has not completed
	pendingBytes     int64 // accepted, not yet taken into a group
	oldestEnqueuedNs int64 // enqueue time of the head of the queue
	unflushedMsgs    int64 // records written since the last fdatasync
	lastFlushNs      int64
	closing          bool // Close was called: write everything now
}

// decide returns the next action and, for actIdle, when to look again
// (0 = only when something arrives or completes).
func (p policy) decide(s groupState) (action, int64) {
	if s.inFlight {
		return actIdle, 0 // accumulate behind the in-flight write
	}
	if s.pendingBytes > 0 {
		if p.lingerNs <= 0 || s.closing || s.pendingBytes >= p.batchBytesMax {
			return actWrite, 0
		}
		due := s.oldestEnqueuedNs + p.lingerNs
		if s.nowNs >= due {
			return actWrite, 0
		}
		return actIdle, due
	}
	if s.unflushedMsgs > 0 && p.flushIntervalNs >= 0 {
		due := s.lastFlushNs + p.flushIntervalNs
		if s.nowNs >= due || s.closing {
			return actSync, 0
		}
		return actIdle, due
	}
	return actIdle, 0
}

// syncAfterGroup reports whether the group about to be written (holding
// groupMsgs records) must be followed by an fdatasync before its appends
// are acknowledged.
func (p policy) syncAfterGroup(nowNs, lastFlushNs, unflushedMsgs, groupMsgs int64) bool {
	if unflushedMsgs+groupMsgs >= p.flushMessages {
		return true
	}
	return p.flushIntervalNs >= 0 && nowNs-lastFlushNs >= p.flushIntervalNs
}

// groupCut returns how many of the queued batches (sizes in queue order)
// go into the next group: at least one, then while the group stays within
// batchBytesMax, IOVMax and spaceLeft (bytes before the segment must roll;
// < 0 = unbounded).
func (p policy) groupCut(sizes func(i int) (int64, bool), spaceLeft int64) int {
	var total int64
	n := 0
	for n < IOVMax {
		sz, ok := sizes(n)
		if !ok {
			break
		}
		if n > 0 && (total+sz > p.batchBytesMax || (spaceLeft >= 0 && total+sz > spaceLeft)) {
			break
		}
		total += sz
		n++
	}
	return n
}
