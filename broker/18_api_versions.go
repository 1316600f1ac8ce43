package broker

// ApiVersions (key 18), versions 0-4.
//
// Behaviour: lists every API in servedAPIs with its version range. An
// unsupported request version is answered (not closed) with a v0 body
// carrying UNSUPPORTED_VERSION, as Kafka does (KIP-511), always with response
// header v0.
//
// Features (v3+, tagged fields): transaction.version, supported 0-2 and
// finalized at the broker's level (TxnOptions.TransactionVersion, the
// transaction.version key; 2 by default, as a new Kafka 4 cluster), so
// clients that know transactions v2 (KIP-890 part 2: Produce v12,
// TxnOffsetCommit v5, EndTxn v5) use it and others keep v1. A level of 0
// is not listed as finalized, as Kafka omits features at level 0.
//
// Differences from Apache Kafka: transaction.version is the only feature
// (no metadata.version, kraft.version or group.version); the finalized
// features epoch is a constant 0 (Kafka's is the metadata offset that
// finalized them; ours are fixed for the process's life, from its config).
// ClientSoftwareName/Version are validated as Kafka does
// (INVALID_REQUEST when they do not match [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?)
// but not recorded.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

const apiVersionsMax = 4

// transactionVersionFeature is Kafka's feature name for the transaction
// protocol level (TransactionVersion.FEATURE_NAME).
const transactionVersionFeature = "transaction.version"

// finalizedFeaturesEpoch is the FinalizedFeaturesEpoch we answer: >= 0 so
// clients read the finalized features (-1 means unknown).
const finalizedFeaturesEpoch = 0

func init() {
	register(decoded(kmsg.ApiVersions, 0, apiVersionsMax, aliasing, (*Broker).serveAPIVersions))
}

func (b *Broker) buildAPIVersions() {
	var keys []kmsg.ApiVersionsResponseApiKey
	for _, a := range b.apis {
		if a != nil {
			keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: a.key.Int16(), MinVersion: a.min, MaxVersion: a.max})
		}
	}
	supported := []kmsg.ApiVersionsResponseSupportedFeature{{Name: transactionVersionFeature, MinVersion: 0, MaxVersion: MaxTransactionVersion}}
	var finalized []kmsg.ApiVersionsResponseFinalizedFeature
	if level := b.opts.Txn.transactionVersion(); level > 0 {
		finalized = append(finalized, kmsg.ApiVersionsResponseFinalizedFeature{Name: transactionVersionFeature,
			MinVersionLevel: level, MaxVersionLevel: level})
	}
	for v := int16(0); v <= apiVersionsMax; v++ {
		resp := kmsg.ApiVersionsResponse{Version: v, ApiKeys: keys, SupportedFeatures: supported,
			FinalizedFeaturesEpoch: finalizedFeaturesEpoch, FinalizedFeatures: finalized}
		b.apiVersionsBodies[v] = resp.AppendTo(nil)
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
	b.reply(req, h, b.apiVersionsBodies[h.APIVersion])
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
