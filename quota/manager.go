package quota

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// Type is what a quota limits: one quota key each.
type Type int

// Quota types.
const (
	Produce            Type = iota // producer_byte_rate: produce request bytes
	Fetch                          // consumer_byte_rate: fetch response bytes
	Request                        // request_percentage: handler time
	ControllerMutation             // controller_mutation_rate: partitions created or deleted
	ConnectionCreation             // connection_creation_rate (ip entities): connections accepted
	numTypes
)

// Key is the quota key of t.
func (t Type) Key() string {
	return [...]string{KeyProducerByteRate, KeyConsumerByteRate, KeyRequestPercentage, KeyControllerMutationRate, KeyConnectionCreationRate}[t]
}

// Name is t's short name in metrics (Kafka's quota type names).
func (t Type) Name() string {
	return [...]string{"Produce", "Fetch", "Request", "ControllerMutation", "ConnectionCreation"}[t]
}

// SensorKey names the rate a client is held to: the user and client id
// that the matching entity shares it by ("" where it is shared across
// that component).
type SensorKey struct {
	User     string
	ClientID string
	IP       string // ConnectionCreation only
}

// Lookup returns the quota on key for a client (user, clientID) by
// Kafka's precedence (see the package doc), and the rate it shares.
func (s Set) Lookup(key, user, clientID string) (float64, SensorKey, bool) {
	u, c := Named(user), Named(clientID)
	both := SensorKey{User: user, ClientID: clientID}
	perUser := SensorKey{User: user}
	for _, try := range [...]struct {
		e  Entity
		sk SensorKey
	}{
		{Entity{User: u, ClientID: c}, both},
		{Entity{User: u, ClientID: DefaultName}, both},
		{Entity{User: u}, perUser},
		{Entity{User: DefaultName, ClientID: c}, both},
		{Entity{User: DefaultName, ClientID: DefaultName}, both},
		{Entity{User: DefaultName}, perUser},
		{Entity{ClientID: c}, SensorKey{ClientID: clientID}},
		{Entity{ClientID: DefaultName}, SensorKey{ClientID: clientID}},
	} {
		if v, ok := s.m[try.e][key]; ok {
			return v, try.sk, true
		}
	}
	return 0, SensorKey{}, false
}

// LookupIP returns the connection_creation_rate quota of a client address
// (ip=<ip>, else ip=<default>; the rate is per address either way).
func (s Set) LookupIP(ip string) (float64, SensorKey, bool) {
	for _, e := range [...]Entity{{IP: Named(ip)}, {IP: DefaultName}} {
		if v, ok := s.m[e][KeyConnectionCreationRate]; ok {
			return v, SensorKey{IP: ip}, true
		}
	}
	return 0, SensorKey{}, false
}

// AdmitConnection applies connection_creation_rate to a new connection
// from ip at now: false when the address is already over its quota (the
// connection is refused and not counted), else the connection counts.
func (m *Manager) AdmitConnection(ip string, now int64) bool {
	c := m.cur.Load()
	if !c.has[ConnectionCreation] {
		return true
	}
	q, sk, ok := c.set.LookupIP(ip)
	if !ok {
		return true
	}
	sm := &m.sensors[ConnectionCreation]
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s := sm.get(sk, now, m.cfg)
	s.quota = q
	if s.rate.ThrottleMs(q, now) > 0 {
		s.throttled++
		return false
	}
	s.rate.Record(1, now)
	return true
}

// Config configures a Manager.
type Config struct {
	// Samples is quota.window.num (Kafka's 11).
	Samples int
	// WindowMs is quota.window.size.seconds in milliseconds (1000).
	WindowMs int64
	// MaxSensors bounds the rates kept per quota type (0: 10000); past
	// it the least recently used one is dropped.
	MaxSensors int
	// MaxThrottleMs bounds a byte-rate throttle (0: Samples x WindowMs).
	// Kafka does not bound those; a connection's mute must be bounded.
	MaxThrottleMs int64
}

// Manager records what clients use and answers the throttle they owe.
// Safe for concurrent use.
type Manager struct {
	cfg     Config
	cur     atomic.Pointer[configs]
	sensors [numTypes]sensorMap
}

type configs struct {
	set Set
	has [numTypes]bool // some entity sets the type's key
}

type sensorMap struct {
	mu sync.Mutex
	m  map[SensorKey]*sensor
}

type sensor struct {
	rate   *Rate
	lastMs int64
	quota  float64
	// throttleMsTotal and throttled: the throttle handed out (metrics).
	throttleMsTotal int64
	throttled       int64
}

// NewManager returns a manager with no quotas.
func NewManager(cfg Config) *Manager {
	if cfg.Samples < 2 {
		cfg.Samples = 11
	}
	if cfg.WindowMs <= 0 {
		cfg.WindowMs = 1000
	}
	if cfg.MaxSensors <= 0 {
		cfg.MaxSensors = 10000
	}
	if cfg.MaxThrottleMs <= 0 {
		cfg.MaxThrottleMs = int64(cfg.Samples) * cfg.WindowMs
	}
	m := &Manager{cfg: cfg}
	for i := range m.sensors {
		m.sensors[i].m = map[SensorKey]*sensor{}
	}
	m.SetConfigs(Set{})
	return m
}

// Configs is the current quota set.
func (m *Manager) Configs() Set { return m.cur.Load().set }

// SetConfigs replaces the quota set (after AlterClientQuotas, a restart
// or a metadata image).
func (m *Manager) SetConfigs(s Set) {
	c := &configs{set: s}
	for _, vals := range s.m {
		for t := Type(0); t < numTypes; t++ {
			if _, ok := vals[t.Key()]; ok {
				c.has[t] = true
			}
		}
	}
	m.cur.Store(c)
}

// Enabled reports whether any entity has a quota of type t: when false,
// Record costs nothing and returns 0.
func (m *Manager) Enabled(t Type) bool { return m.cur.Load().has[t] }

// Record adds v (bytes, percent-seconds, mutations) to the rate of the
// client (user, clientID) for t at now, and returns the throttle it owes
// in milliseconds (0 when within its quota or without one).
func (m *Manager) Record(t Type, user, clientID string, v float64, now int64) int64 {
	c := m.cur.Load()
	if !c.has[t] {
		return 0
	}
	q, sk, ok := c.set.Lookup(t.Key(), user, clientID)
	if !ok {
		return 0
	}
	sm := &m.sensors[t]
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s := sm.get(sk, now, m.cfg)
	s.quota = q
	s.rate.Record(v, now)
	ms := s.rate.ThrottleMs(q, now)
	bound := m.cfg.MaxThrottleMs
	if t == Request {
		bound = m.cfg.WindowMs // Kafka's ClientRequestQuotaManager bound
	}
	ms = min(ms, bound)
	if ms > 0 {
		s.throttleMsTotal += ms
		s.throttled++
	}
	return ms
}

// Unrecord takes v back off the client's rate for t at now (a throttled
// Fetch's bytes, which its answer does not carry: Kafka's
// unrecordQuotaSensor records -v). No throttle is computed.
func (m *Manager) Unrecord(t Type, user, clientID string, v float64, now int64) {
	c := m.cur.Load()
	if !c.has[t] {
		return
	}
	_, sk, ok := c.set.Lookup(t.Key(), user, clientID)
	if !ok {
		return
	}
	sm := &m.sensors[t]
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if s, ok := sm.m[sk]; ok {
		s.rate.Record(-v, now)
	}
}

// MaxValueInWindow is the most a client may use of t at once without
// being throttled for certain: quota x (samples-1) x window, as Kafka's
// getMaxValueInQuotaWindow (a fetch is capped to it); MaxInt64-ish when
// the client has no quota of t.
func (m *Manager) MaxValueInWindow(t Type, user, clientID string) int64 {
	c := m.cur.Load()
	if !c.has[t] {
		return 1<<63 - 1
	}
	q, _, ok := c.set.Lookup(t.Key(), user, clientID)
	if !ok {
		return 1<<63 - 1
	}
	v := q * float64(m.cfg.Samples-1) * float64(m.cfg.WindowMs) / 1000
	if v >= 1<<62 {
		return 1<<63 - 1
	}
	return max(int64(v), 1)
}

// Check returns the throttle the client owes for t at now without
// recording anything (a request refused before it mutates, Kafka's
// strict controller mutation quota).
func (m *Manager) Check(t Type, user, clientID string, now int64) int64 {
	c := m.cur.Load()
	if !c.has[t] {
		return 0
	}
	q, sk, ok := c.set.Lookup(t.Key(), user, clientID)
	if !ok {
		return 0
	}
	sm := &m.sensors[t]
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s, ok := sm.m[sk]
	if !ok {
		return 0
	}
	return min(s.rate.ThrottleMs(q, now), m.cfg.MaxThrottleMs)
}

// get returns sk's sensor, creating it (and dropping the least recently
// used one when the map is full). REQUIRES: sm.mu held.
func (sm *sensorMap) get(sk SensorKey, now int64, cfg Config) *sensor {
	s, ok := sm.m[sk]
	if !ok {
		if len(sm.m) >= cfg.MaxSensors {
			var oldest SensorKey
			oldestMs := int64(1<<63 - 1)
			for k, o := range sm.m {
				if o.lastMs < oldestMs {
					oldest, oldestMs = k, o.lastMs
				}
			}
			delete(sm.m, oldest)
		}
		s = &sensor{rate: NewRate(cfg.Samples, cfg.WindowMs)}
		sm.m[sk] = s
	}
	s.lastMs = now
	return s
}

// Stat is one rate's figures, for metrics.
type Stat struct {
	Type     Type
	Key      SensorKey
	Quota    float64
	Rate     float64 // per second, at the time asked
	Throttle int64   // total throttle handed out, milliseconds
	Count    int64   // responses throttled
}

// Stats returns up to limit rates of each type, the most recently used
// first per type (the metrics' bounded cardinality).
func (m *Manager) Stats(now int64, limit int) []Stat {
	var out []Stat
	for t := Type(0); t < ConnectionCreation; t++ { // per-address rates are not exported
		sm := &m.sensors[t]
		sm.mu.Lock()
		var one []Stat
		lastUsed := map[SensorKey]int64{}
		for k, s := range sm.m {
			one = append(one, Stat{Type: t, Key: k, Quota: s.quota, Rate: s.rate.Measure(now), Throttle: s.throttleMsTotal, Count: s.throttled})
			lastUsed[k] = s.lastMs
		}
		sm.mu.Unlock()
		slices.SortFunc(one, func(a, b Stat) int {
			return cmp.Or(cmp.Compare(lastUsed[b.Key], lastUsed[a.Key]), cmp.Compare(a.Key.User, b.Key.User), cmp.Compare(a.Key.ClientID, b.Key.ClientID))
		})
		if len(one) > limit {
			one = one[:limit]
		}
		out = append(out, one...)
	}
	return out
}
