package storage

import (
	"fmt"
	"strings"

	"github.com/cockroachdb/datadriven"
)

// configArgs applies the config keys given in d to cfg.
func (r *ddRunner) configArgs(d *datadriven.TestData, cfg *Config) {
	cfg.SegmentBytes = r.intArg(d, "segment-bytes", cfg.SegmentBytes)
	cfg.SegmentMs = r.intArg(d, "segment-ms", cfg.SegmentMs)
	cfg.FlushMessages = r.intArg(d, "flush-messages", cfg.FlushMessages)
	cfg.IndexIntervalBytes = int(r.intArg(d, "index-interval", int64(cfg.IndexIntervalBytes)))
	cfg.RetentionMs = r.intArg(d, "retention-ms", cfg.RetentionMs)
	cfg.RetentionBytes = r.intArg(d, "retention-bytes", cfg.RetentionBytes)
}

// config [keys]: settings for the next open.
func (r *ddRunner) handleConfig(d *datadriven.TestData) { r.configArgs(d, &r.cfg) }

// set-config [keys]: change the open log's settings (Log.SetConfig).
func (r *ddRunner) handleSetConfig(d *datadriven.TestData) string {
	r.configArgs(d, &r.cfg)
	if err := r.l.SetConfig(r.cfg); err != nil {
		return "error: " + err.Error()
	}
	return ""
}

// open [clean] [recovery-point=N] [log-start=N]: open the log, printing
// what recovery logged, then its state. The checkpoints default to what the
// last close left, as the broker's checkpoint files would hold.
func (r *ddRunner) handleOpen(d *datadriven.TestData) string {
	r.logs.Reset()
	l, err := Open(r.dir, r.cfg, Options{
		Clock: r.clock, CleanShutdown: d.HasArg("clean"), RecoveryPoint: r.intArg(d, "recovery-point", r.rp),
		LogStartOffset: r.intArg(d, "log-start", r.logStart),
		Logf: func(f string, a ...any) {
			fmt.Fprintf(&r.logs, "INFO "+strings.ReplaceAll(f, "log %s: ", "")+"\n", a[1:]...)
		},
		Warnf: func(f string, a ...any) {
			fmt.Fprintf(&r.logs, "WARN "+strings.ReplaceAll(f, "log %s: ", "")+"\n", a[1:]...)
		},
	})
	if err != nil {
		return "error: " + err.Error()
	}
	r.l = l
	return r.logs.String() + r.state()
}

// close: a clean close; the next open's default recovery point and log
// start offset are the ones it left.
func (r *ddRunner) handleClose() string {
	r.rp, r.logStart = r.l.RecoveryPoint(), r.l.LogStartOffset()
	if err := r.l.Close(); err != nil {
		return "error: " + err.Error()
	}
	r.l = nil
	return ""
}
