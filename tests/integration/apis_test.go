//go:build linux

package integration

// Every version of the two APIs of issue 2, byte-exact on a raw connection: clients
// differ in which version they pick, so each one must encode and decode.

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const rawTimeout = 5 * time.Second

func TestApiVersionsAllVersions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		conn := dial(t, b.Addr)
		for version := int16(0); version <= 4; version++ {
			resp := kmsg.NewPtrApiVersionsResponse()
			if err := roundTrip(conn, apiVersionsRequest(version), resp, int32(100+version), rawTimeout); err != nil {
				t.Fatalf("ApiVersions v%d: %v", version, err)
			}
			if resp.ErrorCode != 0 {
				t.Errorf("ApiVersions v%d: error %v", version, kerr.ErrorForCode(resp.ErrorCode))
			}
			if err := hasKey(resp.ApiKeys, 18, 4); err != nil {
				t.Errorf("ApiVersions v%d: %v", version, err)
			}
			if err := hasKey(resp.ApiKeys, 3, 12); err != nil {
				t.Errorf("ApiVersions v%d: %v", version, err)
			}
		}

		// A version above the broker's range: Kafka answers UNSUPPORTED_VERSION with a
		// v0 body (header v0) that still lists ApiVersions' own range, so the client
		// can retry at a version both sides speak.
		req := apiVersionsRequest(4)
		req.Version = 127
		if _, err := conn.Write(appendRequest(nil, req, 999)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(rawTimeout))
		payload, err := readFrame(conn)
		if err != nil {
			t.Fatalf("ApiVersions v127: %v", err)
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		corr, body, err := splitResponse(payload, resp)
		if err != nil || corr != 999 {
			t.Fatalf("ApiVersions v127: correlation id %d (want 999), %v", corr, err)
		}
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("ApiVersions v127 answer does not decode as a v0 body: %v (% x)", err, body)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Errorf("ApiVersions v127: error code %d, want %d (UNSUPPORTED_VERSION)", resp.ErrorCode, kerr.UnsupportedVersion.Code)
		}
		if err := hasKey(resp.ApiKeys, 18, 4); err != nil {
			t.Errorf("ApiVersions v127 answer: %v", err)
		}
		// The connection stays usable after an unsupported version.
		if err := apiVersionsOn(conn, 1000, rawTimeout); err != nil {
			t.Errorf("ApiVersions after the unsupported version: %v", err)
		}
	})
}

func TestMetadataAllVersions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		b := startBroker(t, backend, nil)
		conn := dial(t, b.Addr)
		var clusterID string
		for version := int16(0); version <= 12; version++ {
			resp := kmsg.NewPtrMetadataResponse()
			if err := roundTrip(conn, metadataRequest(version), resp, int32(200+version), rawTimeout); err != nil {
				t.Fatalf("Metadata v%d: %v", version, err)
			}
			if len(resp.Brokers) != 1 {
				t.Errorf("Metadata v%d: %d brokers, want 1", version, len(resp.Brokers))
			} else if br := resp.Brokers[0]; br.NodeID != 0 || br.Host != "127.0.0.1" || br.Port != int32(b.Port) {
				t.Errorf("Metadata v%d: broker node %d at %s:%d, want node 0 at %s", version, br.NodeID, br.Host, br.Port, b.Addr)
			}
			if len(resp.Topics) != 0 {
				t.Errorf("Metadata v%d: %d topics, want none yet", version, len(resp.Topics))
			}
			if version >= 1 && resp.ControllerID != 0 {
				t.Errorf("Metadata v%d: controller %d, want 0", version, resp.ControllerID)
			}
			if version >= 2 {
				if resp.ClusterID == nil || *resp.ClusterID == "" {
					t.Errorf("Metadata v%d: no cluster id", version)
				} else if clusterID == "" {
					clusterID = *resp.ClusterID
				} else if *resp.ClusterID != clusterID {
					t.Errorf("Metadata v%d: cluster id %q, earlier versions said %q", version, *resp.ClusterID, clusterID)
				}
			}
		}
		t.Logf("Metadata v0-v12 ok, cluster id %q", clusterID)
	})
}

// hasKey checks that keys lists key with min version 0 and max version >= maxAtLeast.
func hasKey(keys []kmsg.ApiVersionsResponseApiKey, key, maxAtLeast int16) error {
	for _, k := range keys {
		if k.ApiKey == key {
			if k.MinVersion != 0 || k.MaxVersion < maxAtLeast {
				return fmt.Errorf("%s versions %d-%d, want 0-%d", kmsg.NameForKey(key), k.MinVersion, k.MaxVersion, maxAtLeast)
			}
			return nil
		}
	}
	return fmt.Errorf("ApiVersions lists no %s (key %d)", kmsg.NameForKey(key), key)
}
