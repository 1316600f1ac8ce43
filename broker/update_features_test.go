package broker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/auth/store"
	"github.com/ringbroker/ringbroker/storage"
)

// describedFeatures is DescribeFeatures as Kafka's admin client does it
// (ApiVersions): node's finalized levels, its epoch and the supported
// ranges.
type describedFeatures struct {
	finalized map[string]int16
	epoch     int64
	supported map[string][2]int16
}

func describeFeatures(ctx context.Context, t *testing.T, adm *kadm.Client) map[int32]describedFeatures {
	t.Helper()
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]describedFeatures{}
	for _, v := range vs {
		if v.Err != nil {
			t.Fatalf("ApiVersions of node %d: %v", v.NodeID, v.Err)
		}
		raw := v.Raw()
		d := describedFeatures{finalized: map[string]int16{}, epoch: raw.FinalizedFeaturesEpoch, supported: map[string][2]int16{}}
		for _, f := range raw.FinalizedFeatures {
			if f.MinVersionLevel != f.MaxVersionLevel {
				t.Fatalf("node %d finalizes %s at %d-%d", v.NodeID, f.Name, f.MinVersionLevel, f.MaxVersionLevel)
			}
			d.finalized[f.Name] = f.MaxVersionLevel
		}
		for _, f := range raw.SupportedFeatures {
			d.supported[f.Name] = [2]int16{f.MinVersion, f.MaxVersion}
		}
		out[v.NodeID] = d
	}
	return out
}

// updateFeature sends one update at version v over rc and returns the top-level
// error and the response.
func updateFeature(t *testing.T, rc *prodConn, v int16, validateOnly bool, name string, level int16, upgradeType int8) (*kmsg.UpdateFeaturesResponse, error) {
	t.Helper()
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.Version = v
	req.ValidateOnly = validateOnly
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel, u.UpgradeType = name, level, upgradeType
	u.AllowDowngrade = upgradeType >= 2
	req.FeatureUpdates = append(req.FeatureUpdates, u)
	resp := kmsg.NewPtrUpdateFeaturesResponse()
	if err := rc.roundTrip(req, resp); err != nil {
		t.Fatalf("UpdateFeatures: %v", err)
	}
	return resp, kerr.ErrorForCode(resp.ErrorCode)
}

// TestUpdateFeatures: UpdateFeatures checks upgrade types, ranges and
// directions as Kafka's controller, validate_only changes nothing, an
// accepted update shows in ApiVersions with a new epoch and survives a
// restart, and the transaction coordinator follows the level.
func TestUpdateFeatures(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTestBroker(t, backend, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		adm := tb.admin()
		d := describeFeatures(ctx, t, adm)[0]
		if d.finalized["transaction.version"] != 2 || d.epoch != 0 || d.supported["transaction.version"] != [2]int16{0, 2} {
			t.Fatalf("before any update: %+v", d)
		}
		// kadm's UpdateFeatures (v2: the top-level error only).
		for _, bad := range []kadm.FeatureUpdate{
			{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 1},  // a downgrade asked as an upgrade
			{Feature: "transaction.version", MaxVersionLevel: 3, UpgradeType: 1},  // above the supported range
			{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 4},  // unknown upgrade type
			{Feature: "no.such.feature", MaxVersionLevel: 1, UpgradeType: 1},      // unknown feature
			{Feature: "transaction.version", MaxVersionLevel: -1, UpgradeType: 3}, // below 0
			{Feature: "transaction.version", MaxVersionLevel: 3, UpgradeType: 2},  // out of range, downgrade
			{Feature: "group.version", MaxVersionLevel: 1, UpgradeType: 1},        // not advertised
		} {
			res, err := adm.UpdateFeatures(ctx, false, bad)
			if err != nil || !errors.Is(res.Error(), kerr.InvalidUpdateVersion) {
				t.Fatalf("%+v: %v %+v", bad, err, res)
			}
		}
		res, err := adm.UpdateFeatures(ctx, true, kadm.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 2})
		if err != nil || res.Error() != nil {
			t.Fatalf("validate only: %v %+v", err, res)
		}
		if d := describeFeatures(ctx, t, adm)[0]; d.finalized["transaction.version"] != 2 || d.epoch != 0 {
			t.Fatalf("after validate_only: %+v", d)
		}
		res, err = adm.UpdateFeatures(ctx, false, kadm.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 2})
		if err != nil || res.Error() != nil {
			t.Fatalf("safe downgrade to 1: %v %+v", err, res)
		}
		if d := describeFeatures(ctx, t, adm)[0]; d.finalized["transaction.version"] != 1 || d.epoch != 1 {
			t.Fatalf("after the downgrade: %+v", d)
		}
		if got := tb.Broker.featureLevel(transactionVersionFeature); got != 1 {
			t.Fatalf("the transaction coordinator's level is %d", got)
		}
		rc := dialProd(t, tb.Addr)
		// v1 answers a result per feature; an upgrade asked as a
		// downgrade fails.
		resp, err := updateFeature(t, rc, 1, false, "transaction.version", 2, 2)
		if !errors.Is(err, kerr.InvalidUpdateVersion) || len(resp.Results) != 0 {
			t.Fatalf("upgrade as a downgrade: %v %+v", err, resp)
		}
		resp, err = updateFeature(t, rc, 1, false, "transaction.version", 2, 1)
		if err != nil || len(resp.Results) != 1 || resp.Results[0].Feature != "transaction.version" || resp.Results[0].ErrorCode != 0 {
			t.Fatalf("v1 upgrade: %v %+v", err, resp)
		}
		// v0: AllowDowngrade is a safe downgrade.
		if _, err := updateFeature(t, rc, 0, false, "transaction.version", 0, 0); !errors.Is(err, kerr.InvalidUpdateVersion) {
			t.Fatalf("v0 downgrade without AllowDowngrade: %v", err)
		}
		if _, err := updateFeature(t, rc, 0, false, "transaction.version", 0, 2); err != nil {
			t.Fatalf("v0 downgrade to 0: %v", err)
		}
		if d := describeFeatures(ctx, t, adm)[0]; len(d.finalized) != 0 || d.epoch != 3 {
			// Level 0 is not listed, as Kafka.
			t.Fatalf("at level 0: %+v", d)
		}
		// A feature named twice is INVALID_REQUEST.
		req := kmsg.NewPtrUpdateFeaturesRequest()
		for range 2 {
			u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
			u.Feature, u.MaxVersionLevel, u.UpgradeType = "transaction.version", 1, 1
			req.FeatureUpdates = append(req.FeatureUpdates, u)
		}
		if r, err := req.RequestWith(ctx, tb.client()); err != nil || r.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("duplicate: %v %+v %s", err, r, *r.ErrorMessage)
		}
		// Stored: a restart keeps level 0 and the epoch, over the
		// configured default.
		tb.restart()
		adm = tb.admin()
		if d := describeFeatures(ctx, t, adm)[0]; len(d.finalized) != 0 || d.epoch != 3 {
			t.Fatalf("after a restart: %+v", d)
		}
		if got := tb.Broker.featureLevel(transactionVersionFeature); got != 0 {
			t.Fatalf("after a restart the level is %d", got)
		}
		if res, err := adm.UpdateFeatures(ctx, false, kadm.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 2, UpgradeType: 1}); err != nil || res.Error() != nil {
			t.Fatalf("upgrade to 2: %v %+v", err, res)
		}
		if d := describeFeatures(ctx, t, adm)[0]; d.finalized["transaction.version"] != 2 || d.epoch != 4 {
			t.Fatalf("after the upgrade: %+v", d)
		}
	})
}

// TestUpdateFeaturesAuthorization: UpdateFeatures needs ALTER on the
// cluster.
func TestUpdateFeaturesAuthorization(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		authz := &acl.Config{SuperUsers: []acl.Principal{acl.User("admin")}}
		tb := startSecureBroker(t, backend, 0, authz)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		up := kadm.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 2}
		alice := kadm.NewClient(tb.client(plainAuth("alice", "alice-secret")))
		if _, err := alice.UpdateFeatures(ctx, false, up); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("alice: %v", err)
		}
		if got := tb.Broker.featureLevel(transactionVersionFeature); got != 2 {
			t.Fatalf("a refused update changed the level to %d", got)
		}
		adm := kadm.NewClient(tb.client(plainAuth("admin", "admin-secret")))
		if res, err := adm.UpdateFeatures(ctx, false, up); err != nil || res.Error() != nil {
			t.Fatalf("admin: %v %+v", err, res)
		}
		if got := tb.Broker.featureLevel(transactionVersionFeature); got != 1 {
			t.Fatalf("admin's update: level %d", got)
		}
	})
}

// failingSaves is a store.Backend whose saves fail while fail is set.
type failingSaves struct {
	store.Backend
	fail atomic.Bool
}

func (f *failingSaves) Save(name string, data []byte) error {
	if f.fail.Load() {
		return errors.New("injected save failure")
	}
	return f.Backend.Save(name, data)
}

// TestUpdateFeaturesStoreFailure: a single node whose store refuses the
// new levels answers UNKNOWN_SERVER_ERROR and keeps the old ones.
func TestUpdateFeaturesStoreFailure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		fb := &failingSaves{}
		tb := startTestBroker(t, backend, func(o *Options, _ *RegistryOptions) {
			fb.Backend = store.FileBackend{FS: storage.DefaultFS, Dir: o.DataDir}
			o.Quota.Backend = fb
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		adm := tb.admin()
		fb.fail.Store(true)
		up := kadm.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 2}
		if res, err := adm.UpdateFeatures(ctx, false, up); err != nil || !errors.Is(res.Error(), kerr.UnknownServerError) {
			t.Fatalf("failed save: %v %+v", err, res)
		}
		if d := describeFeatures(ctx, t, adm)[0]; d.finalized["transaction.version"] != 2 || d.epoch != 0 {
			t.Fatalf("after a failed save: %+v", d)
		}
		fb.fail.Store(false)
		if res, err := adm.UpdateFeatures(ctx, false, up); err != nil || res.Error() != nil {
			t.Fatalf("save: %v %+v", err, res)
		}
		if d := describeFeatures(ctx, t, adm)[0]; d.finalized["transaction.version"] != 1 || d.epoch != 1 {
			t.Fatalf("after the save: %+v", d)
		}
	})
}

// TestUpdateFeaturesTransactions: transactions commit at every level
// UpdateFeatures sets (a client connecting after a change sees the new
// level and picks its protocol by it), and read_committed sees each.
func TestUpdateFeaturesTransactions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		tb := startTxnBroker(t, backend, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		adm := tb.admin()
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, "tv-out"); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, step := range []kadm.FeatureUpdate{
			{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 2},
			{Feature: "transaction.version", MaxVersionLevel: 0, UpgradeType: 3},
			{Feature: "transaction.version", MaxVersionLevel: 2, UpgradeType: 1},
		} {
			if res, err := adm.UpdateFeatures(ctx, false, step); err != nil || res.Error() != nil {
				t.Fatalf("%+v: %v %+v", step, err, res)
			}
			p := tb.client(kgo.TransactionalID("tv"), kgo.DefaultProduceTopic("tv-out"))
			v := fmt.Sprintf("at-%d", step.MaxVersionLevel)
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := p.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatalf("%s: %v", v, err)
			}
			if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatalf("%s: commit: %v", v, err)
			}
			p.Close()
			want = append(want, v)
		}
		if got := consumeCommitted(t, tb, "tv-out", len(want)); !sameSet(got, want...) {
			t.Fatalf("read_committed saw %v, want %v", got, want)
		}
	})
}
