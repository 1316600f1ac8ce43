package broker

// DescribeCluster (key 60), versions 0-1.
//
// In a cluster the brokers (with racks) and the controller come from the
// metadata image (cluster.go); what follows is the single node.
//
// Behaviour: this broker (node.id, advertised listener) is the only broker
// and the controller; the cluster id is the one persisted in the data dir.
// v1 endpoint_type 1 (brokers) is served; 2 (controllers) is
// UNSUPPORTED_ENDPOINT_TYPE, as a Kafka broker answers on its client
// listener; anything else is INVALID_REQUEST. Cluster authorized operations
// are -2147483648 ("not requested") unless asked, then every operation
// (there is no authorizer yet). Answered on the ring thread.
//
// broker.rack is each broker's rack (null when unset).
//
// Differences from Apache Kafka: v2 (fenced brokers) is not
// served: we have no fencing.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.DescribeCluster, 0, 1, aliasing, (*Broker).serveDescribeCluster))
}

func (b *Broker) serveDescribeCluster(req netpoll.Request, hdr proto.RequestHeader, r *kmsg.DescribeClusterRequest) {
	h := &hdr
	resp := kmsg.NewDescribeClusterResponse()
	resp.Version = h.APIVersion
	resp.EndpointType = r.EndpointType
	if h.APIVersion >= 1 && r.EndpointType != 1 {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, errMsg("unknown endpoint type")
		if r.EndpointType == 2 {
			resp.ErrorCode, resp.ErrorMessage = kerr.UnsupportedEndpointType.Code, errMsg("the controller endpoint is not served by brokers")
		}
		b.replyMsg(req, h, &resp)
		return
	}
	resp.ClusterID = b.clusterID
	resp.ControllerID = b.opts.NodeID
	host, port := b.advertised(req)
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{{NodeID: b.opts.NodeID, Host: host, Port: port, Rack: b.rackPtr()}}
	if b.opts.Cluster != nil {
		// Clustered (cluster.go): the active controller and every
		// unfenced broker of the image.
		resp.ControllerID = b.controllerForClients()
		resp.Brokers = nil
		for _, br := range b.image().Brokers() {
			if e, ok := b.requestEndpoint(req, br); ok && !br.Fenced {
				db := kmsg.DescribeClusterResponseBroker{NodeID: br.ID, Host: e.Host, Port: int32(e.Port)}
				if br.Rack != "" {
					rack := br.Rack
					db.Rack = &rack
				}
				resp.Brokers = append(resp.Brokers, db)
			}
		}
	}
	resp.ClusterAuthorizedOperations = authorizedOpsNotRequested
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = b.clusterAuthorizedOperations(req) // authz.go
	}
	b.replyMsg(req, h, &resp)
}

// rackPtr is a single node's broker.rack for Metadata and DescribeCluster,
// nil (null) when unset.
func (b *Broker) rackPtr() *string {
	if b.opts.Rack == "" {
		return nil
	}
	rack := b.opts.Rack
	return &rack
}
