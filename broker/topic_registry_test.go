package broker

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ringbroker/ringbroker/storage"
)

func openTestRegistry(t *testing.T, dir string) *Registry {
	t.Helper()
	r, err := OpenRegistry(RegistryOptions{LogDirs: []string{dir}, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// wantKerr fails unless err wraps the Kafka error want (nil: no error).
func wantKerr(t *testing.T, what string, err error, want *kerr.Error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %s", what, err, want.Message)
	}
}

func TestValidateTopicName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"Orders-2024_v1.x", true},
		{strings.Repeat("x", 249), true},
		{"...", true}, // only "." and ".." are reserved
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"/abs", false},
		{"a\x00b", false},
		{"a b", false},
		{"naïve", false},
		{strings.Repeat("x", 250), false},
	} {
		err := ValidateTopicName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateTopicName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, kerr.InvalidTopicException) {
			t.Errorf("ValidateTopicName(%q) = %v, want INVALID_TOPIC_EXCEPTION", tc.name, err)
		}
	}
}

func TestRegistryCreateTopicErrors(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	defer r.Close()
	if _, err := r.CreateTopic("a.b", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		parts   int32
		configs map[string]string
		want    *kerr.Error
	}{
		{"a.b", 1, nil, kerr.TopicAlreadyExists},
		{"a_b", 1, nil, kerr.InvalidTopicException}, // collides with a.b
		{"../x", 1, nil, kerr.InvalidTopicException},
		{"a/b", 1, nil, kerr.InvalidTopicException},
		{"nul\x00", 1, nil, kerr.InvalidTopicException},
		{".", 1, nil, kerr.InvalidTopicException},
		{"..", 1, nil, kerr.InvalidTopicException},
		{strings.Repeat("y", 250), 1, nil, kerr.InvalidTopicException},
		{"zero", 0, nil, kerr.InvalidPartitions},
		{"neg", -3, nil, kerr.InvalidPartitions},
		{"huge", maxPartitionsPerTopic + 1, nil, kerr.InvalidPartitions},
		{"badkey", 1, map[string]string{"no.such.key": "1"}, kerr.InvalidConfig},
		{"badval", 1, map[string]string{"retention.ms": "soon"}, kerr.InvalidConfig},
		{"badenum", 1, map[string]string{"cleanup.policy": "shred"}, kerr.InvalidConfig},
	} {
		_, err := r.CreateTopic(tc.name, tc.parts, tc.configs, false)
		wantKerr(t, tc.name, err, tc.want)
	}
	// Nothing escaped or was left behind by the failures.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() && e.Name() != "a.b-0" {
			t.Errorf("unexpected dir %s", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "x-0")); err == nil {
		t.Fatal("../x escaped the log dir")
	}
	// validate only: checks, creates nothing.
	tp, err := r.CreateTopic("dry", 2, map[string]string{"retention.ms": "1000"}, true)
	if err != nil || tp != nil || r.Topic("dry") != nil {
		t.Fatalf("validate only: %v %v", tp, err)
	}
	_, err = r.CreateTopic("a.b", 1, nil, true)
	wantKerr(t, "validate only existing", err, kerr.TopicAlreadyExists)
}

func TestRegistryLifecycleAndRestart(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	tp, err := r.CreateTopic("orders", 3, map[string]string{"retention.ms": "60000", "cleanup.policy": "compact"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if tp.ID == ([16]byte{}) || len(tp.Partitions) != 3 || r.TopicByID(tp.ID) != tp {
		t.Fatalf("topic %+v", tp)
	}
	for i := int32(0); i < 3; i++ {
		if p := r.Partition("orders", i); p == nil || p.Log == nil {
			t.Fatalf("partition %d missing", i)
		}
		if _, err := os.Stat(filepath.Join(dir, "orders-"+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	if r.Partition("orders", 3) != nil || r.Partition("orders", -1) != nil {
		t.Fatal("partition out of range found")
	}
	if _, err := r.CreateTopic("gone", 2, nil, false); err != nil {
		t.Fatal(err)
	}

	// CreatePartitions
	wantKerr(t, "same count", r.CreatePartitions("orders", 3, false), kerr.InvalidPartitions)
	wantKerr(t, "shrink", r.CreatePartitions("orders", 2, false), kerr.InvalidPartitions)
	wantKerr(t, "unknown", r.CreatePartitions("nope", 5, false), kerr.UnknownTopicOrPartition)
	wantKerr(t, "validate", r.CreatePartitions("orders", 9, true), nil)
	if n := len(r.Topic("orders").Partitions); n != 3 {
		t.Fatalf("validate-only grew the topic to %d", n)
	}
	wantKerr(t, "grow", r.CreatePartitions("orders", 5, false), nil)
	if r.Partition("orders", 4) == nil {
		t.Fatal("partition 4 missing after grow")
	}

	// SetTopicConfigs
	wantKerr(t, "bad config", r.SetTopicConfigs("orders", map[string]string{"segment.bytes": "1"}, false), kerr.InvalidConfig)
	wantKerr(t, "unknown topic", r.SetTopicConfigs("nope", map[string]string{}, false), kerr.UnknownTopicOrPartition)
	wantKerr(t, "validate", r.SetTopicConfigs("orders", map[string]string{"retention.ms": "1"}, true), nil)
	if r.Topic("orders").Configs["retention.ms"] != "60000" {
		t.Fatal("validate-only changed configs")
	}
	newCfg := map[string]string{"retention.ms": "120000", "flush.messages": "1", "segment.bytes": "1048576"}
	wantKerr(t, "set", r.SetTopicConfigs("orders", newCfg, false), nil)
	if got := r.Topic("orders").Settings().log; got.RetentionMs != 120000 || got.FlushMessages != 1 || got.SegmentBytes != 1<<20 {
		t.Fatalf("settings not applied: %+v", got)
	}

	// DeleteTopic
	wantKerr(t, "delete", r.DeleteTopic("gone"), nil)
	wantKerr(t, "delete again", r.DeleteTopic("gone"), kerr.UnknownTopicOrPartition)
	if _, err := os.Stat(filepath.Join(dir, "gone-0")); !os.IsNotExist(err) {
		t.Fatalf("gone-0 still there: %v", err)
	}
	id := tp.ID
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: topics, ids, partition counts and configs come back.
	r = openTestRegistry(t, dir)
	defer r.Close()
	got := r.Topic("orders")
	if got == nil || got.ID != id || len(got.Partitions) != 5 {
		t.Fatalf("after restart: %+v", got)
	}
	if !maps.Equal(got.Configs, newCfg) {
		t.Fatalf("configs after restart %v, want %v", got.Configs, newCfg)
	}
	if got.Settings().log.FlushMessages != 1 {
		t.Fatalf("settings after restart %+v", got.Settings().log)
	}
	if r.Topic("gone") != nil || len(r.Topics()) != 1 {
		t.Fatalf("topics after restart: %d", len(r.Topics()))
	}
}

// TestRegistryCloseReporting: Close closes every log dir (in parallel) and
// reports progress, ending with every log closed; the dirs reopen clean.
func TestRegistryCloseReporting(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	open := func() *Registry {
		r, err := OpenRegistry(RegistryOptions{LogDirs: dirs, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	if _, err := r.CreateTopic("t", 40, nil, false); err != nil {
		t.Fatal(err)
	}
	for i := range int32(40) {
		p := r.Partition("t", i)
		done := make(chan error, 1)
		if err := p.Log.Append(testBatch([]byte("v")), storage.AppendFunc(func(res storage.AppendResult) { done <- res.Err })); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var reports []int64
	var total int64
	if err := r.CloseReporting(time.Millisecond, func(closed, all int64) {
		reports = append(reports, closed)
		total = all
	}); err != nil {
		t.Fatal(err)
	}
	if len(reports) == 0 || reports[len(reports)-1] != 40 || total != 40 {
		t.Fatalf("reports %v of %d, want the last one 40 of 40", reports, total)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i] < reports[i-1] {
			t.Fatalf("progress went back: %v", reports)
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, storage.CleanShutdownFile)); err != nil {
			t.Errorf("log dir %s: no clean-shutdown marker after Close: %v", d, err)
		}
	}
	r2 := open()
	defer r2.Close()
	for i := range int32(40) {
		if hw := r2.Partition("t", i).Log.HighWatermark(); hw != 1 {
			t.Fatalf("partition %d reopened with high watermark %d, want 1", i, hw)
		}
	}
}

// TestRegistryRecoveryTruncationLogsWarn: recovery that cuts a torn tail
// off a segment is logged at WARN (Kafka's level for recovery that drops
// data), not INFO.
func TestRegistryRecoveryTruncationLogsWarn(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	tp, err := r.CreateTopic("torn", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	batch := appendRecordBatch(nil, time.Now().UnixMilli(), [][2][]byte{{[]byte("k"), []byte("v")}})
	if err := tp.Partitions[0].Log.Append(batch, storage.AppendFunc(func(res storage.AppendResult) { done <- res.Err })); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// An unclean stop with a torn write after the last batch.
	if err := os.Remove(filepath.Join(dir, storage.CleanShutdownFile)); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "torn-0", "00000000000000000000.log")
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(batch[:len(batch)/2]); err != nil {
		t.Fatal(err)
	}
	f.Close()

	core, logs := observer.New(zapcore.DebugLevel)
	r, err = OpenRegistry(RegistryOptions{LogDirs: []string{dir}, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	truncations := logs.FilterMessageSnippet("truncated at byte").All()
	if len(truncations) != 1 {
		t.Fatalf("%d truncation log lines, want 1; all: %v", len(truncations), logs.All())
	}
	if e := truncations[0]; e.Level != zapcore.WarnLevel {
		t.Fatalf("recovery truncation logged at %v, want WARN: %s", e.Level, e.Message)
	}
	if hw := r.Partition("torn", 0).Log.HighWatermark(); hw != 1 {
		t.Fatalf("high watermark %d after recovery, want 1", hw)
	}
}
