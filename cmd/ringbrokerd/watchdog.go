package main

// The systemd watchdog: WATCHDOG=1 means "every event loop and every log
// writer made progress recently", not merely "the process is scheduled".
//
// Every keep-alive period (WatchdogSec/2) the watchdog goroutine runs the
// liveness check and sends WATCHDOG=1 only when it passes:
//
//   - every netpoll event loop answered the ping posted at the previous
//     check (netpoll.Server.Liveness): a loop blocked in a handler, spinning,
//     or gone fails it. The portable backend has no loops and always passes.
//   - no log writer has been inside one write or fdatasync for longer than
//     the period (broker.Registry.Stalled): a disk that holds an fdatasync
//     fails it, and every producer of that partition waits meanwhile.
//
// When the check fails the goroutine skips the keep-alive and logs an ERROR
// naming the loops and partitions (the first failure of a run, then at most
// every stallLogEvery), and systemd kills and restarts the unit once
// WatchdogSec has passed since the last keep-alive. If the stall clears
// first, keep-alives resume and an INFO line says so. We never send
// WATCHDOG=trigger: withholding the keep-alive is what systemd expects, and
// a short stall that clears within WatchdogSec costs nothing.

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// stallLogEvery bounds how often a persisting stall is logged again.
const stallLogEvery = 30 * time.Second

// livenessCheck returns nil when the daemon is live, or what is stuck. bound
// is the keep-alive period: how long a log writer may spend in one action.
type livenessCheck func(bound time.Duration) error

// daemonLiveness is the daemon's livenessCheck: the event loops of loops
// (netpoll.Server) and the log writers of logs (broker.Registry).
func daemonLiveness(loops interface{ Liveness() error }, logs interface{ Stalled(time.Duration) []string }) livenessCheck {
	return func(bound time.Duration) error {
		var errs []error
		if err := loops.Liveness(); err != nil {
			errs = append(errs, err)
		}
		if stalled := logs.Stalled(bound); len(stalled) > 0 {
			errs = append(errs, fmt.Errorf("log writers stuck in one write or fdatasync for more than %v: %s", bound, strings.Join(stalled, ", ")))
		}
		return errors.Join(errs...)
	}
}

// startWatchdog sends WATCHDOG=1 every interval/2 while live passes (nil:
// always), when systemd asked for a watchdog; otherwise it does nothing. It
// returns at once; the checks and keep-alives run on their own goroutine,
// the first at once. The returned stop ends them and returns once that
// goroutine has exited, so no check is still reading the logs or loops it
// was given when the caller closes them.
func startWatchdog(live livenessCheck, logger *zap.Logger) (stop func()) {
	interval, ok := watchdogInterval()
	if !ok {
		return func() {}
	}
	period := interval / 2
	if period <= 0 {
		period = interval
	}
	stopCh, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		ticker := time.NewTicker(period)
		defer ticker.Stop()
		sendFailing := false
		var stuckSince, stuckLogged time.Time
		for {
			var err error
			if live != nil {
				err = live(period)
			}
			now := time.Now()
			switch {
			case err != nil:
				if stuckSince.IsZero() {
					stuckSince = now
				}
				if stuckLogged.IsZero() || now.Sub(stuckLogged) >= stallLogEvery {
					stuckLogged = now
					logger.Error("watchdog: not sending the systemd keep-alive; systemd restarts the daemon after WatchdogSec unless this clears",
						zap.Duration("stuck_for", now.Sub(stuckSince)), zap.Duration("watchdog_sec", interval), zap.Error(err))
				}
			default:
				if !stuckSince.IsZero() {
					logger.Info("watchdog: live again, keep-alives resumed", zap.Duration("stuck_for", now.Sub(stuckSince)))
					stuckSince, stuckLogged = time.Time{}, time.Time{}
				}
				if err := sdNotify("WATCHDOG=1"); err != nil {
					if !sendFailing {
						logger.Warn("sd_notify WATCHDOG=1 (logged once until a send succeeds)", zap.Error(err))
					}
					sendFailing = true
				} else {
					sendFailing = false
				}
			}
			select {
			case <-stopCh:
				return
			case <-ticker.C:
			}
		}
	}()
	return sync.OnceFunc(func() {
		close(stopCh)
		<-exited
	})
}
