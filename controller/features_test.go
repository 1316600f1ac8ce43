package controller

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// TestUpdateFeatures: Kafka's checks of FeatureControlManager, the
// answer's shape per version and the records an accepted update writes.
func TestUpdateFeatures(t *testing.T) {
	type update struct {
		name      string
		level     int16
		upgrade   int8
		downgrade bool // v0's AllowDowngrade
	}
	cases := []struct {
		what         string
		version      int16
		validateOnly bool
		current      int16
		updates      []update
		code         int16
		records      []int16 // the levels written, in order
	}{
		{what: "upgrade", version: 1, current: 1, updates: []update{{"transaction.version", 2, 1, false}}, records: []int16{2}},
		{what: "same level as an upgrade", version: 1, current: 2, updates: []update{{"transaction.version", 2, 1, false}}, records: []int16{2}},
		{what: "safe downgrade", version: 2, current: 2, updates: []update{{"transaction.version", 1, 2, false}}, records: []int16{1}},
		{what: "unsafe downgrade to 0", version: 2, current: 2, updates: []update{{"transaction.version", 0, 3, false}}, records: []int16{0}},
		{what: "downgrade as an upgrade", version: 2, current: 2, updates: []update{{"transaction.version", 1, 1, false}}, code: kerr.InvalidUpdateVersion.Code},
		{what: "upgrade as a downgrade", version: 2, current: 1, updates: []update{{"transaction.version", 2, 2, false}}, code: kerr.InvalidUpdateVersion.Code},
		{what: "above the range", version: 2, current: 2, updates: []update{{"transaction.version", 3, 1, false}}, code: kerr.InvalidUpdateVersion.Code},
		{what: "below 0", version: 2, current: 2, updates: []update{{"transaction.version", -1, 3, false}}, code: kerr.InvalidUpdateVersion.Code},
		{what: "unknown upgrade type 0", version: 1, current: 2, updates: []update{{"transaction.version", 2, 0, false}}, code: kerr.InvalidUpdateVersion.Code},
		{what: "unknown upgrade type 4", version: 1, current: 2, updates: []update{{"transaction.version", 1, 4, false}}, code: kerr.InvalidUpdateVersion.Code},
		{what: "unknown feature", version: 2, current: 2, updates: []update{{"metadata.version", 21, 1, false}}, code: kerr.InvalidUpdateVersion.Code},
		{what: "empty name", version: 2, current: 2, updates: []update{{"", 1, 1, false}}, code: kerr.InvalidRequest.Code},
		{what: "named twice", version: 2, current: 1, updates: []update{{"transaction.version", 2, 1, false}, {"transaction.version", 2, 1, false}}, code: kerr.InvalidRequest.Code},
		{what: "v0 without AllowDowngrade", version: 0, current: 2, updates: []update{{"transaction.version", 1, 0, false}}, code: kerr.InvalidUpdateVersion.Code},
		{what: "v0 with AllowDowngrade", version: 0, current: 2, updates: []update{{"transaction.version", 1, 0, true}}, records: []int16{1}},
		{what: "v0 upgrade", version: 0, current: 0, updates: []update{{"transaction.version", 2, 0, false}}, records: []int16{2}},
		{what: "validate only", version: 1, validateOnly: true, current: 2, updates: []update{{"transaction.version", 1, 2, false}}},
		{what: "no updates", version: 2, current: 2},
	}
	for _, c := range cases {
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.Version = c.version
		req.ValidateOnly = c.validateOnly
		for _, u := range c.updates {
			fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
			fu.Feature, fu.MaxVersionLevel, fu.UpgradeType, fu.AllowDowngrade = u.name, u.level, u.upgrade, u.downgrade
			req.FeatureUpdates = append(req.FeatureUpdates, fu)
		}
		resp, recs := UpdateFeatures(1, func(name string) int16 {
			if name != FeatureTransactionVersion {
				t.Fatalf("%s: level of %q asked", c.what, name)
			}
			return c.current
		}, req)
		if resp.GetVersion() != c.version || resp.ErrorCode != c.code {
			t.Errorf("%s: version %d code %d (%v), want %d", c.what, resp.GetVersion(), resp.ErrorCode, resp.ErrorMessage, c.code)
			continue
		}
		if c.code != 0 {
			if len(recs) != 0 || len(resp.Results) != 0 || resp.ErrorMessage == nil {
				t.Errorf("%s: a failure with records %v, results %+v, message %v", c.what, recs, resp.Results, resp.ErrorMessage)
			}
			continue
		}
		if wantResults := c.version <= 1; wantResults != (len(resp.Results) == len(c.updates)) && len(c.updates) > 0 {
			t.Errorf("%s: v%d results %+v", c.what, c.version, resp.Results)
		}
		if len(recs) != len(c.records) {
			t.Errorf("%s: records %v, want levels %v", c.what, recs, c.records)
			continue
		}
		for i, r := range recs {
			fl := r.(*metadata.FeatureLevelRecord)
			if fl.Name != FeatureTransactionVersion || fl.FeatureLevel != c.records[i] {
				t.Errorf("%s: record %+v, want level %d", c.what, fl, c.records[i])
			}
		}
	}
}

// TestControllerUpdateFeaturesDefault: the active controller takes a
// feature the image never finalized at its configured level, and a
// finalized one at the image's.
func TestControllerUpdateFeaturesDefault(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NewUUID = func() metadata.UUID { return metadata.UUID{1} }
	c := New(cfg)
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.Version = 2
	fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	fu.Feature, fu.MaxVersionLevel, fu.UpgradeType = FeatureTransactionVersion, 1, 1
	req.FeatureUpdates = append(req.FeatureUpdates, fu)
	var img metadata.Image
	// Default 2: 1 is a downgrade.
	if resp, _ := c.UpdateFeatures(img, req); resp.ErrorCode != kerr.InvalidUpdateVersion.Code {
		t.Fatalf("at the default level: %+v", resp)
	}
	img, _, err := img.ApplyAll([]metadata.Record{&metadata.FeatureLevelRecord{Name: FeatureTransactionVersion, FeatureLevel: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if resp, recs := c.UpdateFeatures(img, req); resp.ErrorCode != 0 || len(recs) != 1 {
		t.Fatalf("at level 0: %+v %v", resp, recs)
	}
}
