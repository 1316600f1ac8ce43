package controller

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

// request builds the request a script command names, runs it and prints
// the response.
func (h *harness) request(d *datadriven.TestData, a args) (string, []metadata.Record) {
	t := h.t
	switch d.Cmd {
	case "register":
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.Version = 3
		req.BrokerID = int32(a.int(t, "broker", 0))
		req.ClusterID = "cluster"
		if a.has("cluster") {
			req.ClusterID = a["cluster"]
		}
		req.IncarnationID[15] = byte(a.int(t, "inc", int64(req.BrokerID)))
		req.PreviousBrokerEpoch = a.int(t, "prev-epoch", -1)
		if a.has("rack") {
			r := a["rack"]
			req.Rack = &r
		}
		req.Listeners = []kmsg.BrokerRegistrationRequestListener{{Name: "PLAINTEXT", Host: "h" + strconv.Itoa(int(req.BrokerID)), Port: 9092}}
		resp, recs := h.c.RegisterBroker(h.now, h.img, h.offset, req)
		return fmt.Sprintf("%s epoch=%d\n", errName(resp.ErrorCode), resp.BrokerEpoch), recs
	case "heartbeat":
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID = int32(a.int(t, "broker", 0))
		br, _ := h.img.Broker(req.BrokerID)
		req.BrokerEpoch = a.int(t, "epoch", br.Epoch)
		req.CurrentMetadataOffset = a.int(t, "offset", h.offset-1)
		req.WantFence, req.WantShutdown = a.has("fence"), a.has("shutdown")
		resp, recs := h.c.Heartbeat(h.now, h.img, req)
		return fmt.Sprintf("%s caught-up=%t fenced=%t shutdown=%t\n", errName(resp.ErrorCode), resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown), recs
	case "create-topic":
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 7
		req.ValidateOnly = a.has("validate")
		for _, name := range strings.Split(a["name"], ",") {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic = name
			rt.NumPartitions = int32(a.int(t, "partitions", -1))
			rt.ReplicationFactor = int16(a.int(t, "rf", -1))
			if a.has("assign") {
				for i, r := range assignment(t, a["assign"]) {
					rt.ReplicaAssignment = append(rt.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: int32(i), Replicas: r})
				}
			}
			if a.has("configs") {
				for _, kv := range strings.Split(a["configs"], ";") {
					k, v, ok := strings.Cut(kv, "=")
					cf := kmsg.CreateTopicsRequestTopicConfig{Name: k}
					if ok {
						cf.Value = &v
					}
					rt.Configs = append(rt.Configs, cf)
				}
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, recs := h.c.CreateTopics(h.img, req)
		var b strings.Builder
		for _, rt := range resp.Topics {
			fmt.Fprintf(&b, "%s: %s%s", rt.Topic, errName(rt.ErrorCode), msgStr(rt.ErrorMessage))
			if rt.ErrorCode == 0 {
				fmt.Fprintf(&b, " id=%s partitions=%d rf=%d", idStr(rt.TopicID), rt.NumPartitions, rt.ReplicationFactor)
			}
			b.WriteString("\n")
		}
		return b.String(), recs
	case "delete-topic":
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = 6
		if a.has("name") {
			for _, n := range strings.Split(a["name"], ",") {
				rt := kmsg.NewDeleteTopicsRequestTopic()
				rt.Topic = &n
				if a.has("id") {
					rt.TopicID[15] = byte(a.int(t, "id", 0))
				}
				req.Topics = append(req.Topics, rt)
			}
		} else {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.TopicID[15] = byte(a.int(t, "id", 0))
			req.Topics = append(req.Topics, rt)
		}
		resp, recs := h.c.DeleteTopics(h.img, req)
		var b strings.Builder
		for _, rt := range resp.Topics {
			name := "null"
			if rt.Topic != nil {
				name = *rt.Topic
			}
			fmt.Fprintf(&b, "%s id=%s: %s%s\n", name, idStr(rt.TopicID), errName(rt.ErrorCode), msgStr(rt.ErrorMessage))
		}
		return b.String(), recs
	case "create-partitions":
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.ValidateOnly = a.has("validate")
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = a["name"], int32(a.int(t, "count", 0))
		if a.has("assign") {
			for _, r := range assignment(t, a["assign"]) {
				rt.Assignment = append(rt.Assignment, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: r})
			}
		}
		req.Topics = append(req.Topics, rt)
		resp, recs := h.c.CreatePartitions(h.img, req)
		var b strings.Builder
		for _, rt := range resp.Topics {
			fmt.Fprintf(&b, "%s: %s%s\n", rt.Topic, errName(rt.ErrorCode), msgStr(rt.ErrorMessage))
		}
		return b.String(), recs
	case "elect":
		req := kmsg.NewPtrElectLeadersRequest()
		req.Version = 2
		if a.has("unclean") {
			req.ElectionType = 1
		}
		if a.has("topic") {
			req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: a["topic"], Partitions: int32s(t, a["p"])}}
		}
		resp, recs := h.c.ElectLeaders(h.img, req)
		var b strings.Builder
		if resp.ErrorCode != 0 {
			fmt.Fprintf(&b, "%s\n", errName(resp.ErrorCode))
		}
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				fmt.Fprintf(&b, "%s-%d: %s%s\n", rt.Topic, p.Partition, errName(p.ErrorCode), msgStr(p.ErrorMessage))
			}
		}
		if b.Len() == 0 {
			b.WriteString("nothing\n")
		}
		return b.String(), recs
	case "alter-configs":
		req := kmsg.NewPtrAlterConfigsRequest()
		req.ValidateOnly = a.has("validate")
		res := kmsg.NewAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = h.resourceType(a), a["name"]
		if a["configs"] != "" {
			for _, kv := range strings.Split(a["configs"], ";") {
				k, v, ok := strings.Cut(kv, "=")
				cf := kmsg.AlterConfigsRequestResourceConfig{Name: k}
				if ok {
					cf.Value = &v
				}
				res.Configs = append(res.Configs, cf)
			}
		}
		req.Resources = append(req.Resources, res)
		resp, recs := h.c.AlterConfigs(h.img, req)
		var b strings.Builder
		for _, r := range resp.Resources {
			fmt.Fprintf(&b, "%s: %s%s\n", r.ResourceName, errName(r.ErrorCode), msgStr(r.ErrorMessage))
		}
		return b.String(), recs
	case "incremental-alter-configs":
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.ValidateOnly = a.has("validate")
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = h.resourceType(a), a["name"]
		for _, op := range strings.Split(a["ops"], ";") {
			kind, kv, _ := strings.Cut(op, ":")
			k, v, ok := strings.Cut(kv, "=")
			cf := kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: k}
			if ok {
				cf.Value = &v
			}
			switch kind {
			case "set":
				cf.Op = kmsg.IncrementalAlterConfigOpSet
			case "delete":
				cf.Op = kmsg.IncrementalAlterConfigOpDelete
			case "append":
				cf.Op = kmsg.IncrementalAlterConfigOpAppend
			case "subtract":
				cf.Op = kmsg.IncrementalAlterConfigOpSubtract
			default:
				t.Fatalf("unknown op %q", kind)
			}
			res.Configs = append(res.Configs, cf)
		}
		req.Resources = append(req.Resources, res)
		resp, recs := h.c.IncrementalAlterConfigs(h.img, req)
		var b strings.Builder
		for _, r := range resp.Resources {
			fmt.Fprintf(&b, "%s: %s%s\n", r.ResourceName, errName(r.ErrorCode), msgStr(r.ErrorMessage))
		}
		return b.String(), recs
	case "alter-partition":
		req := kmsg.NewPtrAlterPartitionRequest()
		req.Version = int16(a.int(t, "version", 2))
		req.BrokerID = int32(a.int(t, "broker", 0))
		br, _ := h.img.Broker(req.BrokerID)
		req.BrokerEpoch = a.int(t, "epoch", br.Epoch)
		rt := kmsg.NewAlterPartitionRequestTopic()
		rt.Topic = a["topic"]
		var p metadata.Partition
		if topic, ok := h.img.TopicByName(a["topic"]); ok {
			rt.TopicID = topic.ID
			p = topic.Partitions[int32(a.int(t, "p", 0))]
		}
		if a.has("id") {
			rt.TopicID = metadata.UUID{15: byte(a.int(t, "id", 0))}
		}
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.Partition = int32(a.int(t, "p", 0))
		rp.LeaderEpoch = int32(a.int(t, "leader-epoch", int64(p.LeaderEpoch)))
		rp.PartitionEpoch = int32(a.int(t, "partition-epoch", int64(p.PartitionEpoch)))
		rp.NewISR = int32s(t, a["isr"])
		if req.Version >= 3 {
			// NewEpochISR: each member's registered epoch, or the
			// epochs given.
			epochs := int32s(t, a["isr-epochs"])
			for i, id := range rp.NewISR {
				e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
				e.BrokerID, e.BrokerEpoch = id, -1
				if m, ok := h.img.Broker(id); ok {
					e.BrokerEpoch = m.Epoch
				}
				if i < len(epochs) {
					e.BrokerEpoch = int64(epochs[i])
				}
				rp.NewEpochISR = append(rp.NewEpochISR, e)
			}
			rp.NewISR = nil
		}
		rp.LeaderRecoveryState = int8(a.int(t, "recovery", 0))
		if a.has("recovering") {
			rp.LeaderRecoveryState = 1
		}
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, recs := h.c.AlterPartition(h.img, req)
		if resp.ErrorCode != 0 {
			return errName(resp.ErrorCode) + "\n", recs
		}
		var b strings.Builder
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				fmt.Fprintf(&b, "p%d: %s", p.Partition, errName(p.ErrorCode))
				if p.ErrorCode == 0 {
					fmt.Fprintf(&b, " leader=%d leader-epoch=%d isr=%v partition-epoch=%d", p.LeaderID, p.LeaderEpoch, p.ISR, p.PartitionEpoch)
					if p.LeaderRecoveryState != 0 {
						b.WriteString(" recovering")
					}
				}
				b.WriteString("\n")
			}
		}
		return b.String(), recs
	case "reassign":
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Partition = int32(a.int(t, "p", 0))
		if a.has("replicas") {
			rp.Replicas = int32s(t, a["replicas"])
		}
		req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: a["topic"], Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{rp}}}
		resp, recs := h.c.AlterPartitionReassignments(h.img, req)
		var b strings.Builder
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				fmt.Fprintf(&b, "%s-%d: %s%s\n", rt.Topic, p.Partition, errName(p.ErrorCode), msgStr(p.ErrorMessage))
			}
		}
		return b.String(), recs
	case "list-reassignments":
		resp := h.c.ListPartitionReassignments(h.img, kmsg.NewPtrListPartitionReassignmentsRequest())
		var b strings.Builder
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				fmt.Fprintf(&b, "%s-%d replicas=%v adding=%v removing=%v\n", rt.Topic, p.Partition, p.Replicas, p.AddingReplicas, p.RemovingReplicas)
			}
		}
		if b.Len() == 0 {
			b.WriteString("none\n")
		}
		return b.String(), nil
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return "", nil
}

func (h *harness) resourceType(a args) kmsg.ConfigResourceType {
	switch a["type"] {
	case "topic":
		return kmsg.ConfigResourceTypeTopic
	case "broker":
		h.brokerConfigs[a["name"]] = true
		return kmsg.ConfigResourceTypeBroker
	}
	n, err := strconv.Atoi(a["type"])
	if err != nil {
		h.t.Fatalf("type=%q", a["type"])
	}
	return kmsg.ConfigResourceType(n)
}
