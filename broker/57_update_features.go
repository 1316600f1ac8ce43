package broker

// UpdateFeatures (key 57), versions 0-2.
//
// Behaviour: needs ALTER on the cluster (else CLUSTER_AUTHORIZATION_FAILED
// at the top level, nothing changed). The checks are Kafka's controller's
// (controller.UpdateFeatures: upgrade type 1 upgrade, 2 safe downgrade,
// 3 unsafe downgrade; v0's AllowDowngrade is a safe downgrade; a level
// outside the supported range, a downgrade asked as an upgrade, an upgrade
// asked as a downgrade, an unknown feature or upgrade type are
// INVALID_UPDATE_VERSION), and the first failing update fails the whole
// request. validate_only checks and changes nothing. v0-1 answer a result
// per feature on success; v2 only the top-level error, as Kafka.
//
// Cluster: forwarded to the active controller (NOT_CONTROLLER and a
// moving controller are retried as for every forwarded request), which
// writes one FeatureLevelRecord per update through the metadata quorum;
// the answer comes once this broker has applied them, and every node's
// ApiVersions then shows the new FinalizedFeatures with a new
// FinalizedFeaturesEpoch (the metadata index at which this node rebuilt
// its answer).
//
// Single node: the finalized levels are stored whole in the local store
// (the blob "finalized-features", atomically, beside the client quotas)
// before they are used and before the answer, on the admin worker; a
// failed write answers UNKNOWN_SERVER_ERROR and changes nothing. The
// epoch counts the updates.
//
// A feature never finalized (by UpdateFeatures or a FeatureLevelRecord)
// is at the configured level: transaction.version's key. Once finalized,
// the stored level wins over the key.
//
// Differences from Apache Kafka: see controller/features.go; Kafka's
// FinalizedFeaturesEpoch is the metadata offset of the broker's image and
// moves with every metadata change, ours only when the features change.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/auth/store"
	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.UpdateFeatures, 0, 2, copying, func(b *Broker, req netpoll.Request, h proto.RequestHeader, r *kmsg.UpdateFeaturesRequest) {
		h.ClientID = nil // aliases the frame; answered from the worker
		allowed := b.authorizeCluster(req, acl.OpAlter)
		b.submitAdmin(req, &h, r, func() {
			switch {
			case !allowed:
				resp := kmsg.NewPtrUpdateFeaturesResponse()
				resp.SetVersion(h.APIVersion)
				resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
				msg := "Cluster authorization failed."
				resp.ErrorMessage = &msg
				b.replyMsg(req, &h, resp)
			case b.opts.Cluster != nil:
				b.forward(req, &h, r)
			default:
				b.replyMsg(req, &h, b.updateFeaturesLocal(r))
			}
		})
	}))
}

// featuresBlob is the local store's blob of a single node's finalized
// features.
const featuresBlob = "finalized-features"

// storedFeatures is featuresBlob's JSON.
type storedFeatures struct {
	Epoch  int64            `json:"epoch"`
	Levels map[string]int16 `json:"levels"`
}

// finalizedFeatures is one version of the features the broker answers
// with: immutable once published.
type finalizedFeatures struct {
	// finalized are the levels UpdateFeatures or the metadata set; a
	// feature missing here is at its configured default.
	finalized map[string]int16
	epoch     int64
	// apiVersions[v] is the encoded ApiVersions response body for v.
	apiVersions [apiVersionsMax + 1][]byte
}

// featureState is the broker's finalized features.
type featureState struct {
	// mu serialises single-node updates and cluster rebuilds: each
	// computes its version from the one published before.
	mu      sync.Mutex
	backend store.Backend // single node; nil in a cluster
	cur     atomic.Pointer[finalizedFeatures]
}

// newFeatures loads a single node's stored levels and publishes the first
// version (a cluster node's come with its first image, OnMetadata).
func newFeatures(b *Broker) (*featureState, error) {
	fs := &featureState{}
	st := storedFeatures{}
	if b.opts.Cluster != nil {
		// The cluster's levels are the metadata log's; a single node's
		// are not carried over (kept on disk, not used).
		if _, ok, _ := (store.FileBackend{FS: b.fs(), Dir: b.opts.DataDir}).Load(featuresBlob); ok {
			b.log.Warn("this node's single-node finalized features are not used in a cluster: set them again with UpdateFeatures (kafka-features.sh)",
				zap.String("file", featuresBlob))
		}
	} else {
		fs.backend = b.opts.Quota.Backend
		if fs.backend == nil && b.sec != nil {
			fs.backend = b.sec.backend
		}
		if fs.backend == nil {
			fs.backend = store.FileBackend{FS: b.fs(), Dir: b.opts.DataDir}
		}
		data, ok, err := fs.backend.Load(featuresBlob)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := json.Unmarshal(data, &st); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", featuresBlob, err)
			}
			for name, l := range st.Levels {
				if r, known := featureRange(name); !known || l < r.Min || l > r.Max {
					return nil, fmt.Errorf("%s: feature %s at level %d, which this broker does not support", featuresBlob, name, l)
				}
			}
		}
	}
	b.features = fs
	fs.publish(b, st.Levels, st.Epoch)
	return fs, nil
}

// featureRange is a supported feature's range.
func featureRange(name string) (controller.FeatureRange, bool) {
	for _, r := range controller.SupportedFeatures() {
		if r.Name == name {
			return r, true
		}
	}
	return controller.FeatureRange{}, false
}

// featureDefault is the level of a feature never finalized.
func (b *Broker) featureDefault(name string) int16 {
	if name == transactionVersionFeature {
		return b.opts.Txn.transactionVersion()
	}
	return 0
}

// featureLevel is a feature's level now.
func (b *Broker) featureLevel(name string) int16 {
	if fs := b.features; fs != nil {
		if f := fs.cur.Load(); f != nil {
			if l, ok := f.finalized[name]; ok {
				return l
			}
		}
	}
	return b.featureDefault(name)
}

// publish makes finalized (owned by the new version) at epoch current,
// with the ApiVersions answers it gives. REQUIRES: fs.mu held, or the
// broker not yet serving.
func (fs *featureState) publish(b *Broker, finalized map[string]int16, epoch int64) {
	f := &finalizedFeatures{finalized: finalized, epoch: epoch}
	var keys []kmsg.ApiVersionsResponseApiKey
	for _, a := range b.apis {
		if a != nil {
			keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: a.key.Int16(), MinVersion: a.min, MaxVersion: a.max})
		}
	}
	var supported []kmsg.ApiVersionsResponseSupportedFeature
	var levels []kmsg.ApiVersionsResponseFinalizedFeature
	for _, r := range controller.SupportedFeatures() {
		supported = append(supported, kmsg.ApiVersionsResponseSupportedFeature{Name: r.Name, MinVersion: r.Min, MaxVersion: r.Max})
		level, ok := finalized[r.Name]
		if !ok {
			level = b.featureDefault(r.Name)
		}
		if level > 0 {
			// Kafka omits features at level 0.
			levels = append(levels, kmsg.ApiVersionsResponseFinalizedFeature{Name: r.Name, MinVersionLevel: level, MaxVersionLevel: level})
		}
	}
	for v := int16(0); v <= apiVersionsMax; v++ {
		resp := kmsg.ApiVersionsResponse{Version: v, ApiKeys: keys, SupportedFeatures: supported,
			FinalizedFeaturesEpoch: epoch, FinalizedFeatures: levels}
		f.apiVersions[v] = resp.AppendTo(nil)
	}
	fs.cur.Store(f)
}

// updateFeaturesLocal runs a single node's UpdateFeatures on the admin
// worker.
func (b *Broker) updateFeaturesLocal(r *kmsg.UpdateFeaturesRequest) *kmsg.UpdateFeaturesResponse {
	fs := b.features
	fs.mu.Lock()
	defer fs.mu.Unlock()
	cur := fs.cur.Load()
	resp, recs := controller.UpdateFeatures(b.opts.NodeID, b.featureLevel, r)
	if resp.ErrorCode != 0 || len(recs) == 0 {
		return resp
	}
	next := maps.Clone(cur.finalized)
	if next == nil {
		next = map[string]int16{}
	}
	for _, rec := range recs {
		fl := rec.(*metadata.FeatureLevelRecord)
		next[fl.Name] = fl.FeatureLevel
	}
	data, err := json.Marshal(storedFeatures{Epoch: cur.epoch + 1, Levels: next})
	if err == nil {
		err = fs.backend.Save(featuresBlob, data)
	}
	if err != nil {
		b.log.Error("storing the finalized features failed; nothing changed", zap.Error(err))
		fail := kmsg.NewPtrUpdateFeaturesResponse()
		fail.SetVersion(r.GetVersion())
		fail.ErrorCode = kerr.UnknownServerError.Code
		msg := "storing the finalized features failed"
		fail.ErrorMessage = &msg
		return fail
	}
	fs.publish(b, next, cur.epoch+1)
	b.log.Info("finalized features updated", zap.Any("levels", next), zap.Int64("epoch", cur.epoch+1))
	return resp
}

// syncFeatures follows the image's finalized features (cluster): on the
// first image and when a FeatureLevelRecord was applied.
func (b *Broker) syncFeatures(im *metadata.Image, deltas []metadata.Delta, full bool) {
	fs := b.features
	if fs == nil {
		return
	}
	changed := full
	for i := range deltas {
		changed = changed || len(deltas[i].ChangedFeatures) > 0
	}
	if !changed {
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	cur := fs.cur.Load()
	next := map[string]int16{}
	for _, r := range controller.SupportedFeatures() {
		if l, ok := im.FeatureLevel(r.Name); ok {
			next[r.Name] = l
		}
	}
	if maps.Equal(next, cur.finalized) && cur.epoch > 0 {
		return
	}
	epoch := cur.epoch + 1
	if a, ok := b.opts.Cluster.(interface{ Applied() uint64 }); ok {
		// The metadata index, as Kafka's epoch (an offset), kept
		// increasing.
		epoch = max(epoch, int64(a.Applied()))
	}
	fs.publish(b, next, epoch)
	if !full {
		b.log.Info("finalized features changed", zap.Strings("features", slices.Sorted(maps.Keys(next))), zap.Any("levels", next), zap.Int64("epoch", epoch))
	}
}
