package broker

// ApiVersions (key 18), versions 0-4.
//
// Behaviour: lists every API in servedAPIs with its version range. An
// unsupported request version is answered (not closed) with a v0 body
// carrying UNSUPPORTED_VERSION, as Kafka does (KIP-511), always with response
// header v0.
//
// Features (v3+, tagged fields): transaction.version, supported 0-2 and
// finalized at the level UpdateFeatures set (57_update_features.go: the
// metadata's FeatureLevelRecord in a cluster, the local store on a single
// node), else the broker's configured level (TxnOptions.TransactionVersion,
// the transaction.version key; 2 by default, as a new Kafka 4 cluster), so
// clients that know transactions v2 (KIP-890 part 2: Produce v12,
// TxnOffsetCommit v5, EndTxn v5) use it and others keep v1. A level of 0
// is not listed as finalized, as Kafka omits features at level 0. The
// answers are rebuilt when the finalized features change, with a new
// FinalizedFeaturesEpoch.
//
// Differences from Apache Kafka: transaction.version is the only feature
// (no metadata.version, kraft.version or group.version); the finalized
// features epoch moves only when the features change (Kafka's is the
// broker's metadata offset, which every metadata change moves).
// ClientSoftwareName/Version are validated as Kafka does
// (INVALID_REQUEST when they do not match [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?)
// but not recorded.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/controller"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

const apiVersionsMax = 4

// transactionVersionFeature is Kafka's feature name for the transaction
// protocol level (TransactionVersion.FEATURE_NAME).
const transactionVersionFeature = controller.FeatureTransactionVersion

func init() {
	register(decoded(kmsg.ApiVersions, 0, apiVersionsMax, aliasing, (*Broker).serveAPIVersions))
}

// buildAPIVersionsError builds the answer to an unsupported ApiVersions
// version; the answers to the versions served are the features' (they
// change with the finalized features: 57_update_features.go).
func (b *Broker) buildAPIVersionsError() {
	var keys []kmsg.ApiVersionsResponseApiKey
	for _, a := range b.apis {
		if a != nil {
			keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: a.key.Int16(), MinVersion: a.min, MaxVersion: a.max})
		}
	}
	bad := kmsg.ApiVersionsResponse{Version: 0, ErrorCode: kerr.UnsupportedVersion.Code, ApiKeys: keys}
	b.apiVersionsError = bad.AppendTo(nil)
}

func (b *Broker) serveAPIVersions(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.ApiVersionsRequest) {
	h := &hdr
	if h.APIVersion >= 3 {
		if !validClientSoftware(r.ClientSoftwareName) || !validClientSoftware(r.ClientSoftwareVersion) {
			resp := kmsg.ApiVersionsResponse{Version: h.APIVersion, ErrorCode: kerr.InvalidRequest.Code}
			b.replyMsg(req, h, &resp)
			return
		}
	}
	b.reply(req, h, b.features.cur.Load().apiVersions[h.APIVersion])
}

// validClientSoftware matches Kafka's [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?
func validClientSoftware(s string) bool {
	if s == "" {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	if !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
