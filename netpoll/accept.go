package netpoll

import (
	"time"

	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/internal/ratelog"
)

// Accept failures. accept(2) fails without taking the connection off the
// backlog when the process is out of descriptors (EMFILE), the system is
// (ENFILE) or the kernel is out of memory (ENOBUFS, ENOMEM), so an accept
// retried at once fails again at once: a hot loop that burns a core and,
// logging every failure, writes hundreds of megabytes of log. Both backends
// therefore wait after a failed accept — acceptBackoffMin, doubling up to
// acceptBackoffMax, reset by the next successful accept — and log at most
// one line per acceptLogInterval, counting the failures in between. The
// longest wait bounds how late accepting resumes once descriptors free up.
const (
	acceptBackoffMin  = 5 * time.Millisecond
	acceptBackoffMax  = time.Second
	acceptLogInterval = time.Second
)

// nextAcceptBackoff is the wait after a failed accept, given the previous
// wait (0 after a success).
func nextAcceptBackoff(prev time.Duration) time.Duration {
	if prev < acceptBackoffMin {
		return acceptBackoffMin
	}
	return min(2*prev, acceptBackoffMax)
}

// acceptFailLog rate-limits the "accept failed" line of one server (io_uring
// loops and portable accept loops share one).
type acceptFailLog struct{ lines ratelog.Every }

// failed records one failed accept and writes a line if none was written in
// the last acceptLogInterval.
func (a *acceptFailLog) failed(logger *zap.Logger, err error, backoff time.Duration, fields ...zap.Field) {
	n, due := a.lines.Event(acceptLogInterval)
	if !due {
		return
	}
	fields = append(fields, zap.Error(err), zap.Duration("retry_in", backoff), zap.Int64("failed_since_last_line", n))
	logger.Warn("accept failed; retrying after a pause", fields...)
}
