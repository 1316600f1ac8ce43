package broker

import (
	"time"

	"go.uber.org/zap"
)

// checkpointInterval is how often recovery points and log start offsets are
// checkpointed (Kafka's log.flush.offset.checkpoint.interval.ms default).
const checkpointInterval = time.Minute

// StartMaintenance runs retention every retentionCheck
// (log.retention.check.interval.ms) and writes the log-dir checkpoints every
// minute, on a goroutine of its own. The returned stop waits for it.
func (r *Registry) StartMaintenance(retentionCheck time.Duration) (stop func()) {
	if retentionCheck <= 0 {
		retentionCheck = 5 * time.Minute
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		retention := time.NewTicker(retentionCheck)
		checkpoint := time.NewTicker(checkpointInterval)
		defer retention.Stop()
		defer checkpoint.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-retention.C:
				r.enforceRetention(now)
			case <-checkpoint.C:
				r.checkpoint()
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (r *Registry) enforceRetention(now time.Time) {
	for _, t := range r.Topics() {
		r.mu.RLock()
		parts := t.Partitions
		r.mu.RUnlock()
		for _, p := range parts {
			n, err := p.Log.EnforceRetention(now)
			if err != nil {
				r.log.Warn("retention", zap.String("topic", t.Name), zap.Int32("partition", p.Index), zap.Error(err))
			} else if n > 0 {
				r.log.Info("retention deleted segments", zap.String("topic", t.Name), zap.Int32("partition", p.Index), zap.Int("segments", n))
			}
		}
	}
}

func (r *Registry) checkpoint() {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	for _, m := range r.mgrs {
		if err := m.Checkpoint(); err != nil {
			r.log.Warn("checkpoint", zap.String("dir", m.Dir()), zap.Error(err))
		}
	}
}
