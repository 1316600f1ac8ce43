package broker

import (
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/clock"
)

// StartMaintenance runs retention every retentionCheck
// (log.retention.check.interval.ms) and writes each log dir's recovery-point
// and log-start-offset checkpoints every checkpointEvery
// (log.flush.offset.checkpoint.interval.ms), on a goroutine of its own. A
// zero or negative interval takes Kafka's default. The tickers and the time
// retention compares against come from RegistryOptions.Clock. It also
// starts the log cleaner's threads (Cleaner; none when disabled), which
// Close stops. In cluster mode (RegistryOptions.Replicated) it also writes
// each log dir's high-watermark checkpoint every
// RegistryOptions.HighWatermarkCheckpointInterval. The returned stop waits
// for the goroutine.
func (r *Registry) StartMaintenance(retentionCheck, checkpointEvery time.Duration) (stop func()) {
	r.startCleaner()
	if retentionCheck <= 0 {
		retentionCheck = 5 * time.Minute
	}
	if checkpointEvery <= 0 {
		checkpointEvery = time.Minute
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		c := clock.Or(r.opts.Clock)
		retention := c.NewTicker(retentionCheck)
		checkpoint := c.NewTicker(checkpointEvery)
		defer retention.Stop()
		defer checkpoint.Stop()
		var hwTick <-chan time.Time
		if r.opts.Replicated {
			every := r.opts.HighWatermarkCheckpointInterval
			if every <= 0 {
				every = defaultHighWatermarkCheckpointInterval
			}
			hw := c.NewTicker(every)
			defer hw.Stop()
			hwTick = hw.C()
		}
		for {
			select {
			case <-done:
				return
			case now := <-retention.C():
				r.enforceRetention(now)
			case <-checkpoint.C():
				r.checkpoint()
			case <-hwTick:
				r.checkpointHighWatermarks()
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
			if !p.Local() {
				continue
			}
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

// defaultHighWatermarkCheckpointInterval is
// replica.high.watermark.checkpoint.interval.ms's default (Kafka's).
const defaultHighWatermarkCheckpointInterval = 5 * time.Second

// checkpointHighWatermarks writes every log dir's
// replication-offset-checkpoint (cluster mode).
func (r *Registry) checkpointHighWatermarks() {
	for _, m := range r.dirs {
		if err := m.CheckpointHighWatermarks(); err != nil {
			r.log.Warn("high watermark checkpoint", zap.String("dir", m.Dir()), zap.Error(err))
		}
	}
}
