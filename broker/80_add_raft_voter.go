package broker

// AddRaftVoter (key 80), versions 0-1; RemoveRaftVoter (key 81), version 0:
// KIP-853's dynamic metadata quorum (`kafka-metadata-quorum.sh
// add-controller` / `remove-controller`).
//
// In a cluster both are forwarded to the active controller
// (cluster/dynamic.go), which answers with Kafka's codes: UNSUPPORTED_VERSION
// for a static quorum (controller.quorum.voters; Kafka: kraft.version 0),
// INCONSISTENT_CLUSTER_ID, REQUEST_TIMED_OUT while another voter change
// runs, before the leader committed its term, or while the new voter lags,
// DUPLICATE_VOTER, VOTER_NOT_FOUND (also for removing the last voter),
// INVALID_REQUEST when no listener carries the controller listener's name.
// Differences from Kafka: the quorum keys voters by node id alone: a voter's
// directory id is written into the log with it and answered by
// DescribeQuorum, and a RemoveRaftVoter naming another one than the log's is
// VOTER_NOT_FOUND, but two replicas with one node id cannot both be members
// (Kafka's voter key is the pair); AckWhenCommitted=false is answered
// as true (once the change is applied); removing a voter whose removal
// would leave no reachable majority is refused with REQUEST_TIMED_OUT;
// the brokers answer these APIs on client listeners (Kafka serves them on
// controller listeners and forwards from brokers as here). UpdateRaftVoter
// (key 82), which Kafka's controllers send each other, is served by the
// controller over the cluster transport only (cluster/dynamic.go).
//
// Single node (no process.roles): UNSUPPORTED_VERSION, its quorum of one is
// static.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	// Forwarded and authorized as the other cluster-wide admin APIs; set
	// here, before register reads them, to keep the tables' owners' files
	// untouched.
	forwardedKeys[kmsg.AddRaftVoter] = true
	forwardedKeys[kmsg.RemoveRaftVoter] = true
	clusterAuthzOps[kmsg.AddRaftVoter] = acl.OpAlter
	clusterAuthzOps[kmsg.RemoveRaftVoter] = acl.OpAlter
	register(adminDecoded(kmsg.AddRaftVoter, 0, 1, (*Broker).addRaftVoter))
	register(adminDecoded(kmsg.RemoveRaftVoter, 0, 0, (*Broker).removeRaftVoter))
}

// staticQuorumMsg is the single node's answer, Kafka's wording.
func staticQuorumMsg(what string) *string {
	return errMsg("Cluster doesn't support " + what + " voter because the kraft.version feature is 0")
}

// addRaftVoter is the single node's AddRaftVoter.
func (b *Broker) addRaftVoter(req netpoll.Request, h *proto.RequestHeader, _ *kmsg.AddRaftVoterRequest) {
	resp := kmsg.AddRaftVoterResponse{Version: h.APIVersion, ErrorCode: kerr.UnsupportedVersion.Code, ErrorMessage: staticQuorumMsg("adding")}
	b.replyMsg(req, h, &resp)
}

// removeRaftVoter is the single node's RemoveRaftVoter.
func (b *Broker) removeRaftVoter(req netpoll.Request, h *proto.RequestHeader, _ *kmsg.RemoveRaftVoterRequest) {
	resp := kmsg.RemoveRaftVoterResponse{Version: h.APIVersion, ErrorCode: kerr.UnsupportedVersion.Code, ErrorMessage: staticQuorumMsg("removing")}
	b.replyMsg(req, h, &resp)
}
