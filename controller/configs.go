package controller

import (
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/metadata"
)

// AlterConfigs answers AlterConfigs (key 33): each resource's config set
// is replaced by the one given (keys not given are deleted).
// IncrementalAlterConfigs answers key 44. Both, per resource:
//   - a topic (type 2) must exist (UNKNOWN_TOPIC_OR_PARTITION) and the
//     resulting set must be valid topic configs (INVALID_CONFIG);
//   - a broker (type 4) is "" (the cluster default) or a broker id
//     (else INVALID_REQUEST), and each key set must be a server.properties
//     key with a valid value (INVALID_CONFIG); ringbroker has no dynamic
//     broker configs yet, so these are stored and not acted on;
//   - other resource types: INVALID_REQUEST;
//   - validate_only: every check, no records.
//
// Records: a ConfigRecord per key whose value changes (nil value: delete).
func (c *Controller) AlterConfigs(img metadata.Image, req *kmsg.AlterConfigsRequest) (*kmsg.AlterConfigsResponse, []metadata.Record) {
	resp := kmsg.NewPtrAlterConfigsResponse()
	resp.Version = req.Version
	b := newBatch(img)
	for _, r := range req.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		set := map[string]string{}
		var code int16
		var msg *string
		for _, cf := range r.Configs {
			if cf.Value == nil {
				code, msg = kerr.InvalidConfig.Code, errMsg("null value not supported for config %s", cf.Name)
				break
			}
			set[cf.Name] = *cf.Value
		}
		if code == 0 {
			code, msg = c.replaceConfigs(b, r.ResourceType, r.ResourceName, func(map[string]string) (map[string]string, int16, *string) {
				return set, 0, nil
			}, req.ValidateOnly)
		}
		rr.ErrorCode, rr.ErrorMessage = code, msg
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, b.done()
}

// IncrementalAlterConfigs answers IncrementalAlterConfigs (key 44): see
// AlterConfigs. Ops: SET, DELETE, APPEND and SUBTRACT (the last two only
// on list-typed topic keys: comma-separated values added when absent or
// removed when present, starting from the topic's effective value).
func (c *Controller) IncrementalAlterConfigs(img metadata.Image, req *kmsg.IncrementalAlterConfigsRequest) (*kmsg.IncrementalAlterConfigsResponse, []metadata.Record) {
	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	resp.Version = req.Version
	b := newBatch(img)
	for _, r := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		rr.ErrorCode, rr.ErrorMessage = c.replaceConfigs(b, r.ResourceType, r.ResourceName, func(cur map[string]string) (map[string]string, int16, *string) {
			seen := map[string]bool{}
			for _, op := range r.Configs {
				if seen[op.Name] {
					return nil, kerr.InvalidRequest.Code, errMsg("config %s is altered twice", op.Name)
				}
				seen[op.Name] = true
				if op.Op != kmsg.IncrementalAlterConfigOpDelete && op.Value == nil {
					return nil, kerr.InvalidConfig.Code, errMsg("null value not supported for config %s", op.Name)
				}
				switch op.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					cur[op.Name] = *op.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(cur, op.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if r.ResourceType != kmsg.ConfigResourceTypeTopic || config.TopicKeyType(op.Name) != config.TypeList {
						return nil, kerr.InvalidConfig.Code, errMsg("config %s is not a list: %v does not apply", op.Name, op.Op)
					}
					v, ok := cur[op.Name]
					if !ok {
						v = c.topicCfg.TopicDefault(op.Name)
					}
					cur[op.Name] = editList(v, *op.Value, op.Op == kmsg.IncrementalAlterConfigOpAppend)
				default:
					return nil, kerr.InvalidRequest.Code, errMsg("unknown config op %d", op.Op)
				}
			}
			return cur, 0, nil
		}, req.ValidateOnly)
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, b.done()
}

// editList adds (or removes) the comma-separated values of change to (or
// from) the comma-separated list v.
func editList(v, change string, add bool) string {
	var list []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	for _, s := range strings.Split(change, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case add && !slices.Contains(list, s):
			list = append(list, s)
		case !add:
			list = slices.DeleteFunc(list, func(x string) bool { return x == s })
		}
	}
	return strings.Join(list, ",")
}

// replaceConfigs checks the resource, computes its new config set with
// edit (given a copy of the current one), validates it and adds a
// ConfigRecord per changed key.
func (c *Controller) replaceConfigs(b *batch, typ kmsg.ConfigResourceType, name string,
	edit func(cur map[string]string) (map[string]string, int16, *string), validateOnly bool) (int16, *string) {
	img := b.image()
	var res metadata.ConfigResource
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if _, ok := img.TopicByName(name); !ok {
			return kerr.UnknownTopicOrPartition.Code, errMsg("unknown topic %s", name)
		}
		res = metadata.ConfigResource{Type: metadata.ResourceTopic, Name: name}
	case kmsg.ConfigResourceTypeBroker:
		if name != "" {
			if _, err := strconv.ParseInt(name, 10, 32); err != nil {
				return kerr.InvalidRequest.Code, errMsg("broker resource name %q is not a broker id", name)
			}
		}
		res = metadata.ConfigResource{Type: metadata.ResourceBroker, Name: name}
	default:
		return kerr.InvalidRequest.Code, errMsg("unsupported resource type %v", typ)
	}
	cur := img.Configs(res)
	editable := img.Configs(res)
	if editable == nil {
		editable = map[string]string{}
	}
	next, code, msg := edit(editable)
	if code != 0 {
		return code, msg
	}
	if res.Type == metadata.ResourceTopic {
		if _, err := c.topicCfg.TopicSettings(next); err != nil {
			return kerr.InvalidConfig.Code, errMsg("%v", err)
		}
	} else {
		for _, k := range sortedKeys(next) {
			if err := config.Default().Set(k, next[k]); err != nil {
				return kerr.InvalidConfig.Code, errMsg("%v", err)
			}
		}
	}
	if validateOnly {
		return 0, nil
	}
	for _, k := range sortedKeys(cur) {
		if _, ok := next[k]; !ok {
			b.add(&metadata.ConfigRecord{ResourceType: res.Type, ResourceName: name, Name: k})
		}
	}
	for _, k := range sortedKeys(next) {
		if old, ok := cur[k]; !ok || old != next[k] {
			v := next[k]
			b.add(&metadata.ConfigRecord{ResourceType: res.Type, ResourceName: name, Name: k, Value: &v})
		}
	}
	return 0, nil
}
