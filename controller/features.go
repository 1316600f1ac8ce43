package controller

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// Finalized features (KIP-584, KIP-778): UpdateFeatures (key 57) as Kafka's
// FeatureControlManager.updateFeatures, shared by the active controller
// (FeatureLevelRecords through the quorum) and a single node (its local
// store, broker/57_update_features.go).
//
// Differences from Apache Kafka:
//   - transaction.version is the only feature (no metadata.version,
//     kraft.version or group.version: we advertise none of them). An
//     unknown feature is INVALID_UPDATE_VERSION, as Kafka answers a feature
//     its controller does not support.
//   - Support is checked against this software's range only: every node
//     of a cluster runs the same ranges (brokers do not send their
//     supported features at registration), where Kafka checks each
//     registered broker's and controller's.
//   - A feature named twice in one request is INVALID_REQUEST (the
//     request's feature list is keyed by name; Kafka's controller keeps
//     the last), and so is an empty name.
//   - A feature the metadata never finalized is at the configured level
//     (the transaction.version key, ours), where Kafka's is the level
//     `kafka-storage.sh format` wrote.

// FeatureTransactionVersion is Kafka's transaction.version feature
// (TransactionVersion.FEATURE_NAME).
const FeatureTransactionVersion = "transaction.version"

// MaxTransactionVersion is the highest transaction.version this software
// supports (Kafka 4's TV_2).
const MaxTransactionVersion int16 = 2

// FeatureRange is the range of levels a feature is supported at.
type FeatureRange struct {
	Name     string
	Min, Max int16
}

// SupportedFeatures are the features this software supports, by name.
func SupportedFeatures() []FeatureRange {
	return []FeatureRange{{Name: FeatureTransactionVersion, Min: 0, Max: MaxTransactionVersion}}
}

// supportedFeature returns name's range, or false for a feature we do not
// know.
func supportedFeature(name string) (FeatureRange, bool) {
	for _, f := range SupportedFeatures() {
		if f.Name == name {
			return f, true
		}
	}
	return FeatureRange{}, false
}

// Upgrade types of UpdateFeatures v1+ (Kafka's FeatureUpdate.UpgradeType).
const (
	UpgradeTypeUpgrade         int8 = 1
	UpgradeTypeSafeDowngrade   int8 = 2
	UpgradeTypeUnsafeDowngrade int8 = 3
)

// updateFeaturesMax bounds the updates of one request: more than the
// features we know is malformed (each name may appear once).
const updateFeaturesMax = 100

// UpdateFeatures answers an UpdateFeatures request against the current
// levels (level returns a feature's finalized level, or its default when
// none is finalized) as Kafka's controller: every update is checked
// (upgrade type, range, direction) and the first error fails the whole
// request with nothing changed; validate_only checks and returns no
// records. nodeID names the controller in Kafka's messages.
func UpdateFeatures(nodeID int32, level func(name string) int16, req *kmsg.UpdateFeaturesRequest) (*kmsg.UpdateFeaturesResponse, []metadata.Record) {
	resp := kmsg.NewPtrUpdateFeaturesResponse()
	resp.SetVersion(req.GetVersion())
	fail := func(code int16, msg string) (*kmsg.UpdateFeaturesResponse, []metadata.Record) {
		resp.ErrorCode = code
		m := "The update failed for all features since the following feature had an error: " + msg
		resp.ErrorMessage = &m
		return resp, nil
	}
	if len(req.FeatureUpdates) > updateFeaturesMax {
		return fail(kerr.InvalidRequest.Code, fmt.Sprintf("%d feature updates in one request", len(req.FeatureUpdates)))
	}
	seen := make(map[string]bool, len(req.FeatureUpdates))
	var recs []metadata.Record
	for _, u := range req.FeatureUpdates {
		if u.Feature == "" {
			return fail(kerr.InvalidRequest.Code, "The feature name can not be empty.")
		}
		if seen[u.Feature] {
			return fail(kerr.InvalidRequest.Code, fmt.Sprintf("The feature %s is named more than once.", u.Feature))
		}
		seen[u.Feature] = true
		upgradeType := u.UpgradeType
		if req.GetVersion() == 0 {
			// v0 has AllowDowngrade instead (UpdateFeaturesRequest.getFeature).
			upgradeType = UpgradeTypeUpgrade
			if u.AllowDowngrade {
				upgradeType = UpgradeTypeSafeDowngrade
			}
		}
		invalid := func(msg string) (*kmsg.UpdateFeaturesResponse, []metadata.Record) {
			return fail(kerr.InvalidUpdateVersion.Code, fmt.Sprintf("Invalid update version %d for feature %s. %s", u.MaxVersionLevel, u.Feature, msg))
		}
		if upgradeType < UpgradeTypeUpgrade || upgradeType > UpgradeTypeUnsafeDowngrade {
			return invalid("The controller does not support the given upgrade type.")
		}
		if u.MaxVersionLevel < 0 {
			return invalid("A feature version cannot be less than 0.")
		}
		r, ok := supportedFeature(u.Feature)
		switch {
		case !ok:
			return invalid(fmt.Sprintf("Local controller %d does not support this feature.", nodeID))
		case u.MaxVersionLevel < r.Min || u.MaxVersionLevel > r.Max:
			return invalid(fmt.Sprintf("Local controller %d only supports versions %d-%d", nodeID, r.Min, r.Max))
		}
		cur := level(u.Feature)
		switch {
		case u.MaxVersionLevel < cur && upgradeType == UpgradeTypeUpgrade:
			return invalid("Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.")
		case u.MaxVersionLevel > cur && upgradeType != UpgradeTypeUpgrade:
			return invalid("Can't downgrade to a newer version.")
		}
		recs = append(recs, &metadata.FeatureLevelRecord{Name: u.Feature, FeatureLevel: u.MaxVersionLevel})
	}
	if req.GetVersion() <= 1 {
		// v2 dropped the per-feature results.
		for _, u := range req.FeatureUpdates {
			resp.Results = append(resp.Results, kmsg.UpdateFeaturesResponseResult{Feature: u.Feature})
		}
	}
	if req.ValidateOnly {
		return resp, nil
	}
	return resp, recs
}

// FeatureLevel is a feature's level in img: the finalized one, else def.
func FeatureLevel(img metadata.Image, name string, def int16) int16 {
	if l, ok := img.FeatureLevel(name); ok {
		return l
	}
	return def
}

// UpdateFeatures answers UpdateFeatures (key 57) on the active controller:
// a feature the image never finalized is at this controller's configured
// level (Config.Broker's transaction.version).
func (c *Controller) UpdateFeatures(img metadata.Image, req *kmsg.UpdateFeaturesRequest) (*kmsg.UpdateFeaturesResponse, []metadata.Record) {
	return UpdateFeatures(c.cfg.NodeID, func(name string) int16 {
		def := int16(0)
		if name == FeatureTransactionVersion {
			def = c.topicCfg.TransactionVersion
		}
		return FeatureLevel(img, name, def)
	}, req)
}
