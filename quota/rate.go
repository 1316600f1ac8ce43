package quota

// Rate is Kafka's Rate over a SampledStat, in units per second: samples
// of windowMs each, at most len(samples) of them; a sample older than
// samples x windowMs no longer counts. Times are Unix milliseconds. A
// Rate is not safe for concurrent use.
type Rate struct {
	windowMs int64
	samples  []sample
	n        int // samples in use
	current  int
}

type sample struct {
	start int64
	value float64
}

// NewRate returns a rate over num samples of windowMs.
func NewRate(num int, windowMs int64) *Rate {
	if num < 2 {
		num = 2
	}
	if windowMs < 1 {
		windowMs = 1
	}
	return &Rate{windowMs: windowMs, samples: make([]sample, num)}
}

// Record adds v at now.
func (r *Rate) Record(v float64, now int64) {
	if r.n == 0 {
		r.samples[0] = sample{start: now}
		r.n, r.current = 1, 0
	}
	s := &r.samples[r.current]
	if now >= s.start+r.windowMs {
		// The next sample starts where the window containing now starts,
		// aligned on the current one's (Kafka's SampledStat.advance).
		start := s.start + (now-s.start)/r.windowMs*r.windowMs
		r.current = (r.current + 1) % len(r.samples)
		if r.n < len(r.samples) {
			r.n++
		}
		r.samples[r.current] = sample{start: start}
		s = &r.samples[r.current]
	}
	s.value += v
}

// purge resets the samples that have expired (Kafka's
// purgeObsoleteSamples: they restart at now, empty).
func (r *Rate) purge(now int64) {
	expire := int64(len(r.samples)) * r.windowMs
	for i := 0; i < r.n; i++ {
		if now-r.samples[i].start >= expire {
			r.samples[i] = sample{start: now}
		}
	}
}

// WindowMs is the span the rate divides by at now: from the oldest
// sample's start, and at least len(samples)-1 full windows (Kafka's
// Rate.windowSize), so a fresh rate is not inflated.
func (r *Rate) WindowMs(now int64) int64 {
	r.purge(now)
	oldest := now
	for i := 0; i < r.n; i++ {
		oldest = min(oldest, r.samples[i].start)
	}
	elapsed := now - oldest
	full := elapsed / r.windowMs
	if minFull := int64(len(r.samples) - 1); full < minFull {
		elapsed += (minFull - full) * r.windowMs
	}
	return elapsed
}

// Measure is the rate at now, per second.
func (r *Rate) Measure(now int64) float64 {
	w := r.WindowMs(now) // purges
	total := 0.0
	for i := 0; i < r.n; i++ {
		total += r.samples[i].value
	}
	return total / (float64(w) / 1000)
}

// ThrottleMs is the delay, in milliseconds, that brings the rate at now
// back to quota if nothing more is recorded: (O-T)/T x window (Kafka's
// QuotaUtils.throttleTime); 0 when within quota.
func (r *Rate) ThrottleMs(quota float64, now int64) int64 {
	o := r.Measure(now)
	if quota <= 0 || o <= quota {
		return 0
	}
	return int64((o-quota)/quota*float64(r.WindowMs(now)) + 0.5)
}
