package replica

import (
	"sync/atomic"

	"github.com/ringbroker/ringbroker/storage"
)

// InterimLog adapts a *storage.Log to Log while storage lacks the
// replicated-mode methods. TEMPORARY: once storage.Log has LogEndOffset
// (the end of completed writes) and SetHighWatermark (a high watermark set
// from outside, at most the log end), the broker passes *storage.Log
// itself and this type goes.
//
// Until then: LogEndOffset is storage's HighWatermark, which on today's
// storage is the end of completed writes; SetHighWatermark only records
// the value (LeaderHighWatermark), so a follower's storage high watermark
// still follows its writes. That is harmless here because only a
// partition's leader serves reads.
type InterimLog struct {
	*storage.Log
	leaderHW atomic.Int64
}

var _ Log = (*InterimLog)(nil)

// NewInterimLog wraps l.
func NewInterimLog(l *storage.Log) *InterimLog {
	il := &InterimLog{Log: l}
	il.leaderHW.Store(-1)
	return il
}

// LogEndOffset is the end of completed writes (storage's high watermark
// today).
func (l *InterimLog) LogEndOffset() int64 { return l.Log.HighWatermark() }

// SetHighWatermark records hw (see the type's comment).
func (l *InterimLog) SetHighWatermark(hw int64) { l.leaderHW.Store(hw) }

// LeaderHighWatermark is the last value SetHighWatermark recorded, -1
// before any.
func (l *InterimLog) LeaderHighWatermark() int64 { return l.leaderHW.Load() }
