package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// segment.bytes below Kafka 4's minimum is INVALID_CONFIG from
// CreateTopics, AlterConfigs and IncrementalAlterConfigs; a topic stored
// with a smaller value (before the floor, or under a lower
// log.segment.bytes.min) still opens.
func TestSegmentBytesFloor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		floor := "14" // the harness's: lets the first topic be stored
		tb := startTestBroker(t, backend, func(_ *Options, ro *RegistryOptions) { mustSet(t, ro.Config, "log.segment.bytes.min", floor) })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := tb.admin().CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr("16384")}, "legacy"); err != nil {
			t.Fatal(err)
		}
		floor = "1048576" // the default: Kafka 4's minimum
		tb.restart()
		adm := tb.admin()
		if tb.Reg.Topic("legacy") == nil {
			t.Fatal("topic stored with segment.bytes=16384 did not open under the floor")
		}
		for _, v := range []string{"14", "1048575"} {
			resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr(v)}, "small")
			if err == nil {
				err = resp.Err
			}
			if !errors.Is(err, kerr.InvalidConfig) || resp.ErrMessage == "" {
				t.Fatalf("CreateTopics segment.bytes=%s: %v %q, want INVALID_CONFIG with a message", v, err, resp.ErrMessage)
			}
		}
		if resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr("1048576"), "segment.ms": kadm.StringPtr("1")}, "ok"); err != nil || resp.Err != nil {
			t.Fatalf("CreateTopics segment.bytes=1048576 segment.ms=1: %v %v", err, resp.Err)
		}
		for _, alter := range []func(context.Context, []kadm.AlterConfig, ...string) (kadm.AlterConfigsResponses, error){adm.AlterTopicConfigsState, adm.AlterTopicConfigs} {
			rs, err := alter(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kadm.StringPtr("1000")}}, "ok")
			if err == nil {
				err = rs[0].Err
			}
			if !errors.Is(err, kerr.InvalidConfig) {
				t.Fatalf("AlterConfigs segment.bytes=1000: %v, want INVALID_CONFIG", err)
			}
		}
	})
}
