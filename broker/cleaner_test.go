package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/ringbroker/ringbroker/config"
)

// The registry makes one log cleaner over its log dirs when
// log.cleaner.enable (and log.cleaner.threads > 0), starts it with the
// maintenance jobs, and closes it on Close, before the managers; with
// either key off it makes none. (Compaction itself is storage's; its
// tests and the end-to-end ones cover it.)
func TestRegistryCleanerLifecycle(t *testing.T) {
	for _, tt := range []struct {
		name string
		keys map[string]string
		want bool
	}{
		{"default", nil, true},
		{"disabled", map[string]string{"log.cleaner.enable": "false"}, false},
		{"no-threads", map[string]string{"log.cleaner.threads": "0"}, false},
		{"two-threads", map[string]string{"log.cleaner.threads": "2"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			for k, v := range tt.keys {
				mustSet(t, cfg, k, v)
			}
			dirs := []string{t.TempDir(), t.TempDir()}
			r, err := OpenRegistry(RegistryOptions{LogDirs: dirs, Logger: zaptest.NewLogger(t), Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Cleaner() != nil; got != tt.want {
				r.Close()
				t.Fatalf("cleaner made: %v, want %v", got, tt.want)
			}
			stop := r.StartMaintenance(time.Hour, time.Hour)
			r.cleanerMu.Lock()
			started := r.cleanerStarted
			r.cleanerMu.Unlock()
			if started != tt.want {
				t.Errorf("cleaner started: %v, want %v", started, tt.want)
			}
			stop()
			// A second start (another maintenance loop) starts nothing twice.
			r.StartMaintenance(time.Hour, time.Hour)()
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r.cleanerMu.Lock()
			closed := r.cleanerClosed
			r.cleanerMu.Unlock()
			if closed != tt.want {
				t.Errorf("cleaner closed: %v, want %v", closed, tt.want)
			}
			// Started after Close: nothing runs.
			r.startCleaner()
		})
	}
}

// A registry closed without ever starting maintenance (tests, a start
// that failed later) still closes its cleaner.
func TestRegistryCleanerClosedUnstarted(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	if r.Cleaner() == nil {
		t.Fatal("no cleaner with the defaults (log.cleaner.enable=true)")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !r.cleanerClosed || r.cleanerStarted {
		t.Fatalf("closed %v started %v", r.cleanerClosed, r.cleanerStarted)
	}
}

// A topic altered to cleanup.policy=compact takes the compaction settings
// at once: its logs' config says compact (what the cleaner and retention
// read), Produce refuses a keyless record (INVALID_RECORD), as Kafka's
// LogValidator does, and DeleteRecords answers POLICY_VIOLATION until the
// policy includes delete again; altered back, keyless records are taken. A
// client's min.compaction.lag.ms above max.compaction.lag.ms is
// INVALID_CONFIG (Kafka's LogConfig.validateValues).
func TestAlterToCompactTakesEffect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		adm, ctx := tb.admin(), testCtx(t)
		const topic = "becomes-compacted"
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		cl := tb.client(kgo.DefaultProduceTopic(topic), kgo.RecordRetries(1))
		produce := func(key []byte) error {
			t.Helper()
			return cl.ProduceSync(ctx, &kgo.Record{Key: key, Value: []byte("v")}).FirstErr()
		}
		if err := produce(nil); err != nil {
			t.Fatalf("keyless record on a delete topic: %v", err)
		}
		alter := func(cs ...kadm.AlterConfig) error {
			t.Helper()
			rs, err := adm.AlterTopicConfigs(ctx, cs, topic)
			if err != nil {
				t.Fatal(err)
			}
			return rs[0].Err
		}
		if err := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")},
			kadm.AlterConfig{Op: kadm.SetConfig, Name: "min.cleanable.dirty.ratio", Value: kmsg.StringPtr("0.1")}); err != nil {
			t.Fatal(err)
		}
		s := tb.Reg.Topic(topic).Settings()
		if !s.log.Compact || !s.log.NoDeleteRetention || s.log.MinCleanableDirtyRatio != 0.1 || !s.rules.compacted {
			t.Fatalf("settings after alter: %+v", s)
		}
		if err := produce(nil); !errors.Is(err, kerr.InvalidRecord) {
			t.Fatalf("keyless record on a compacted topic: %v, want INVALID_RECORD", err)
		}
		if err := produce([]byte("k")); err != nil {
			t.Fatalf("keyed record on a compacted topic: %v", err)
		}
		// DeleteRecords needs the delete policy (Kafka: POLICY_VIOLATION on a
		// compact-only topic); compact,delete takes it.
		deleteRecords := func(at int64) error {
			t.Helper()
			offs := kadm.Offsets{}
			offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: at})
			rs, err := adm.DeleteRecords(ctx, offs)
			if err != nil {
				t.Fatal(err)
			}
			r, ok := rs.Lookup(topic, 0)
			if !ok {
				t.Fatalf("no answer for %s-0: %+v", topic, rs)
			}
			return r.Err
		}
		if err := deleteRecords(1); !errors.Is(err, kerr.PolicyViolation) {
			t.Fatalf("DeleteRecords on a compact-only topic: %v, want POLICY_VIOLATION", err)
		}
		if err := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact,delete")}); err != nil {
			t.Fatal(err)
		}
		if s := tb.Reg.Topic(topic).Settings(); !s.log.Compact || s.log.NoDeleteRetention || !s.rules.compacted {
			t.Fatalf("settings with compact,delete: %+v", s)
		}
		if err := deleteRecords(1); err != nil {
			t.Fatalf("DeleteRecords with compact,delete: %v", err)
		}
		wantKerr(t, "min lag above max lag", alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")},
			kadm.AlterConfig{Op: kadm.SetConfig, Name: "min.compaction.lag.ms", Value: kmsg.StringPtr("10")},
			kadm.AlterConfig{Op: kadm.SetConfig, Name: "max.compaction.lag.ms", Value: kmsg.StringPtr("9")}), kerr.InvalidConfig)
		if err := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}); err != nil {
			t.Fatal(err)
		}
		if s := tb.Reg.Topic(topic).Settings(); s.log.Compact || s.log.NoDeleteRetention || s.rules.compacted {
			t.Fatalf("settings after altering back: %+v", s)
		}
		if err := produce(nil); err != nil {
			t.Fatalf("keyless record after altering back to delete: %v", err)
		}
	})
}
