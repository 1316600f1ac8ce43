package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The busy answer derived by busyResponse is, for every admin API on the
// admin worker and every version served, the answer each handler used to
// spell out for a full queue.
func TestBusyResponseMatchesHandWritten(t *testing.T) {
	code, msg := kerr.RequestTimedOut.Code, errMsg(busyMessage)
	name := func(s string) *string { return &s }
	cases := []struct {
		key     kmsg.Key
		request func(v int16) kmsg.Request
		want    func(v int16) kmsg.Response
	}{
		{kmsg.CreateTopics, func(v int16) kmsg.Request {
			return &kmsg.CreateTopicsRequest{Version: v, Topics: []kmsg.CreateTopicsRequestTopic{{Topic: "a", NumPartitions: 3, ReplicationFactor: 1}, {Topic: "b"}}}
		}, func(v int16) kmsg.Response {
			return &kmsg.CreateTopicsResponse{Version: v, Topics: []kmsg.CreateTopicsResponseTopic{
				createTopicError("a", code, msg), createTopicError("b", code, msg)}}
		}},
		{kmsg.DeleteTopics, func(v int16) kmsg.Request {
			return &kmsg.DeleteTopicsRequest{Version: v, Topics: []kmsg.DeleteTopicsRequestTopic{{Topic: name("a")}, {TopicID: [16]byte{1}}}}
		}, func(v int16) kmsg.Response {
			return &kmsg.DeleteTopicsResponse{Version: v, Topics: []kmsg.DeleteTopicsResponseTopic{
				{Topic: name("a"), ErrorCode: code, ErrorMessage: msg}, {TopicID: [16]byte{1}, ErrorCode: code, ErrorMessage: msg}}}
		}},
		{kmsg.AlterConfigs, func(v int16) kmsg.Request {
			return &kmsg.AlterConfigsRequest{Version: v, Resources: []kmsg.AlterConfigsRequestResource{
				{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "a", Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "x"}}}}}
		}, func(v int16) kmsg.Response {
			return &kmsg.AlterConfigsResponse{Version: v, Resources: []kmsg.AlterConfigsResponseResource{
				{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "a", ErrorCode: code, ErrorMessage: msg}}}
		}},
		{kmsg.DescribeLogDirs, func(v int16) kmsg.Request {
			return &kmsg.DescribeLogDirsRequest{Version: v, Topics: []kmsg.DescribeLogDirsRequestTopic{{Topic: "a", Partitions: []int32{0}}}}
		}, func(v int16) kmsg.Response {
			return &kmsg.DescribeLogDirsResponse{Version: v, ErrorCode: code}
		}},
		{kmsg.CreatePartitions, func(v int16) kmsg.Request {
			return &kmsg.CreatePartitionsRequest{Version: v, Topics: []kmsg.CreatePartitionsRequestTopic{{Topic: "a", Count: 4}}}
		}, func(v int16) kmsg.Response {
			return &kmsg.CreatePartitionsResponse{Version: v, Topics: []kmsg.CreatePartitionsResponseTopic{{Topic: "a", ErrorCode: code, ErrorMessage: msg}}}
		}},
		{kmsg.IncrementalAlterConfigs, func(v int16) kmsg.Request {
			return &kmsg.IncrementalAlterConfigsRequest{Version: v, Resources: []kmsg.IncrementalAlterConfigsRequestResource{
				{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "0"}, {ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "a"}}}
		}, func(v int16) kmsg.Response {
			return &kmsg.IncrementalAlterConfigsResponse{Version: v, Resources: []kmsg.IncrementalAlterConfigsResponseResource{
				{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "0", ErrorCode: code, ErrorMessage: msg},
				{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "a", ErrorCode: code, ErrorMessage: msg}}}
		}},
	}
	for _, tc := range cases {
		var a *api
		for i := range servedAPIs {
			if servedAPIs[i].key == tc.key {
				a = &servedAPIs[i]
			}
		}
		if a == nil {
			t.Fatalf("%s is not served", tc.key.Name())
		}
		for v := a.min; v <= a.max; v++ {
			got := busyResponse(tc.request(v), code, busyMessage).AppendTo(nil)
			want := tc.want(v).AppendTo(nil)
			if !bytes.Equal(got, want) {
				t.Errorf("%s v%d:\n got %x\nwant %x", tc.key.Name(), v, got, want)
			}
		}
	}
}
