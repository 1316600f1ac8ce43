package broker

// Consumer groups in a cluster (cluster.go): a group's coordinator is the
// broker leading its __consumer_offsets partition
// (group.PartitionFor(group id, offsets.topic.num.partitions)), as in
// Kafka. FindCoordinator names that broker; every group request reaching
// another broker is answered NOT_COORDINATOR, so the client looks the
// coordinator up again. When the partition's leadership moves (its
// broker failed, a reassignment, an election), the new leader loads the
// partition's groups from its replica of the log and the old one drops
// them (coord_movement.go).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/group"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

// groupKeys are the APIs addressed to a group's coordinator.
var groupKeys = map[kmsg.Key]bool{
	kmsg.OffsetCommit: true, kmsg.OffsetFetch: true, kmsg.JoinGroup: true, kmsg.Heartbeat: true,
	kmsg.LeaveGroup: true, kmsg.SyncGroup: true, kmsg.DescribeGroups: true, kmsg.DeleteGroups: true,
	kmsg.OffsetDelete: true,
}

// groupsOf are the group ids request r addresses.
func groupsOf(r kmsg.Request) []string {
	switch r := r.(type) {
	case *kmsg.OffsetCommitRequest:
		return []string{r.Group}
	case *kmsg.OffsetFetchRequest:
		if r.Version >= 8 {
			out := make([]string, len(r.Groups))
			for i, g := range r.Groups {
				out[i] = g.Group
			}
			return out
		}
		return []string{r.Group}
	case *kmsg.JoinGroupRequest:
		return []string{r.Group}
	case *kmsg.HeartbeatRequest:
		return []string{r.Group}
	case *kmsg.LeaveGroupRequest:
		return []string{r.Group}
	case *kmsg.SyncGroupRequest:
		return []string{r.Group}
	case *kmsg.DescribeGroupsRequest:
		return r.Groups
	case *kmsg.DeleteGroupsRequest:
		return r.Groups
	case *kmsg.OffsetDeleteRequest:
		return []string{r.Group}
	}
	return nil
}

// groupCoordinator is the node coordinating groupID, or -1 when none
// (no __consumer_offsets yet, or its partition is offline).
func (b *Broker) groupCoordinator(groupID string) int32 {
	t, ok := b.image().TopicByName(offsetsTopic)
	if !ok {
		return -1
	}
	p, ok := t.Partitions[group.PartitionFor(groupID, int32(len(t.Partitions)))]
	if !ok || p.Leader < 0 || !isLive(b.image(), p.Leader) {
		return -1
	}
	return p.Leader
}

// groupCode is 0 when this broker serves groupID, else what a request for
// it is answered: NOT_COORDINATOR when another broker leads the group's
// partition, COORDINATOR_LOAD_IN_PROGRESS while its groups are loaded
// (coord_movement.go), COORDINATOR_NOT_AVAILABLE when they did not load.
func (b *Broker) groupCode(groupID string) int16 {
	if b.opts.Cluster == nil {
		return 0
	}
	c := b.groups
	part := group.PartitionFor(groupID, c.partitions)
	if p, _ := b.servedPartition(offsetsTopic, part); p == nil {
		return kerr.NotCoordinator.Code
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.broken[part]:
		return kerr.CoordinatorNotAvailable.Code
	case !c.served[part]:
		// Loading, or led in the image but not yet handed to the loader.
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

// refuseNotCoordinator answers r NOT_COORDINATOR (or
// COORDINATOR_LOAD_IN_PROGRESS) when this broker does not serve every
// group it names, and reports whether it did.
func (b *Broker) refuseNotCoordinator(req netpoll.Request, h *proto.RequestHeader, r kmsg.Request) bool {
	for _, g := range groupsOf(r) {
		if code := b.groupCode(g); code != 0 {
			if code == kerr.NotCoordinator.Code {
				b.replyMsg(req, h, notCoordinatorResponse(r))
			} else {
				b.replyMsg(req, h, groupErrorResponse(r, code, "the group's coordinator is loading or not available; retry"))
			}
			return true
		}
	}
	return false
}

const notCoordinatorMessage = "this broker does not coordinate the group; look the coordinator up again"

// notCoordinatorResponse is r's answer with NOT_COORDINATOR everywhere a
// client looks for it: the top-level error, every group, every partition.
func notCoordinatorResponse(r kmsg.Request) kmsg.Response {
	return groupErrorResponse(r, kerr.NotCoordinator.Code, notCoordinatorMessage)
}

// groupErrorResponse is r's answer with code everywhere a client looks
// for it: the top-level error, every group, every partition.
func groupErrorResponse(r kmsg.Request, code int16, msg string) kmsg.Response {
	resp := busyResponse(r, code, msg)
	switch r := r.(type) {
	case *kmsg.OffsetCommitRequest:
		out := resp.(*kmsg.OffsetCommitResponse)
		for i, t := range r.Topics {
			for _, p := range t.Partitions {
				out.Topics[i].Partitions = append(out.Topics[i].Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: p.Partition, ErrorCode: code})
			}
		}
	case *kmsg.OffsetFetchRequest:
		out := resp.(*kmsg.OffsetFetchResponse)
		if r.Version >= 8 {
			out.Groups = make([]kmsg.OffsetFetchResponseGroup, len(r.Groups))
			for i, g := range r.Groups {
				out.Groups[i] = kmsg.OffsetFetchResponseGroup{Group: g.Group, ErrorCode: code}
			}
		}
	case *kmsg.DescribeGroupsRequest:
		out := resp.(*kmsg.DescribeGroupsResponse)
		out.Groups = make([]kmsg.DescribeGroupsResponseGroup, len(r.Groups))
		for i, g := range r.Groups {
			out.Groups[i] = kmsg.NewDescribeGroupsResponseGroup()
			out.Groups[i].Group, out.Groups[i].ErrorCode = g, code
		}
	case *kmsg.DeleteGroupsRequest:
		out := resp.(*kmsg.DeleteGroupsResponse)
		out.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(r.Groups))
		for i, g := range r.Groups {
			out.Groups[i] = kmsg.DeleteGroupsResponseGroup{Group: g, ErrorCode: code}
		}
	}
	return resp
}

// clusterCoordinator answers FindCoordinator for group key in a cluster:
// the coordinator's endpoint, or COORDINATOR_NOT_AVAILABLE (retriable)
// while there is none; a missing __consumer_offsets is then created
// through the controller, once at a time.
func (b *Broker) clusterCoordinator(key string) (int32, string, int32, int16, *string) {
	id := b.groupCoordinator(key)
	if id >= 0 {
		if br, ok := b.image().Broker(id); ok {
			if e, ok := b.brokerEndpoint(br); ok {
				return id, e.Host, int32(e.Port), 0, nil
			}
		}
	}
	if !b.clusterTopicExists(offsetsTopic) && b.creatingOffsets.CompareAndSwap(false, true) {
		if !b.admin.submit(func() {
			defer b.creatingOffsets.Store(false)
			b.forwardCreate([]string{offsetsTopic}, b.groups.partitions, b.groups.replicationFactor(), b.groups.topicConfig())
		}) {
			b.creatingOffsets.Store(false)
		}
	}
	return -1, "", -1, kerr.CoordinatorNotAvailable.Code, errMsg("the group's coordinator is not available yet")
}
