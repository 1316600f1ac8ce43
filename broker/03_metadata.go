package broker

// Metadata (key 3), versions 0-12.
//
// Behaviour: lists this broker (node.id, advertised listener) as the only
// broker and the controller, and the cluster id persisted in the data dir.
// Topic support arrives with the produce/fetch path: until then every named
// topic is answered UNKNOWN_TOPIC_OR_PARTITION and "all topics" is empty.
//
// Differences from Apache Kafka: no racks; cluster-authorized-operations
// (v8-v10) is reported as -2147483648 ("not requested") unless asked, then
// as every operation allowed (there is no authorizer yet).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(api{key: proto.APIKeyMetadata, min: 0, max: 12, serve: (*Broker).serveMetadata})
}

func (b *Broker) serveMetadata(req netpoll.Request, hdr proto.RequestHeader, body []byte) {
	h := &hdr
	r := kmsg.MetadataRequest{Version: h.APIVersion}
	if err := r.UnsafeReadFrom(body); err != nil {
		b.badRequest(req, h, err)
		return
	}
	clusterID := b.clusterID
	resp := kmsg.MetadataResponse{
		Version:      h.APIVersion,
		Brokers:      []kmsg.MetadataResponseBroker{{NodeID: b.opts.NodeID, Host: b.opts.AdvertisedHost, Port: b.opts.AdvertisedPort}},
		ClusterID:    &clusterID,
		ControllerID: b.opts.NodeID,
	}
	resp.AuthorizedOperations = -2147483648
	if r.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterOperationsAll
	}
	for _, t := range r.Topics {
		topic := kmsg.MetadataResponseTopic{ErrorCode: kerr.UnknownTopicOrPartition.Code, Topic: t.Topic, TopicID: t.TopicID}
		topic.AuthorizedOperations = -2147483648
		resp.Topics = append(resp.Topics, topic)
	}
	b.replyMsg(req, h, &resp)
}

// clusterOperationsAll is the bit set of cluster ACL operations (ALTER,
// CLUSTER_ACTION, CREATE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS,
// IDEMPOTENT_WRITE, CREATE_TOKENS, DESCRIBE_TOKENS).
const clusterOperationsAll = 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12 | 1<<13
