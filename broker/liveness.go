package broker

import "time"

// Stalled lists the partitions, across every log dir, whose log writer has
// been in one write or fdatasync for longer than bound (log.Manager.Stalled),
// for the daemon's systemd watchdog. Safe from any goroutine until Close:
// it reads the log dir list without writeMu (which a topic creation holds
// while it opens its logs, and a watchdog must not wait behind), and Close
// clears that list. REQUIRES: Close not started (the daemon stops its
// watchdog first).
func (r *Registry) Stalled(bound time.Duration) []string {
	var out []string
	for _, m := range r.mgrs {
		out = append(out, m.Stalled(bound)...)
	}
	return out
}
