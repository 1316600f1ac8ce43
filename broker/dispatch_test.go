package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// servedAPI returns the table entry of key.
func servedAPI(t *testing.T, key kmsg.Key) *api {
	for i := range servedAPIs {
		if servedAPIs[i].key == key {
			return &servedAPIs[i]
		}
	}
	t.Fatalf("%s is not served", key.Name())
	return nil
}

// An aliasing request is recycled zeroed: a field the next request's
// version does not carry must not keep the previous request's value
// (Metadata v0 has no allow_auto_topic_creation; v4 does).
func TestDecodedRequestRecycledZeroed(t *testing.T) {
	a := servedAPI(t, kmsg.Metadata)
	if a.retain {
		t.Fatal("Metadata is expected to decode aliasing")
	}
	topic := "t"
	v4 := kmsg.MetadataRequest{Version: 4, AllowAutoTopicCreation: true, Topics: []kmsg.MetadataRequestTopic{{Topic: &topic}}}
	v0 := kmsg.MetadataRequest{Version: 0}
	for i := 0; i < 100; i++ { // the pool may hand back another object; try until it reuses
		r, err := a.decode(4, v4.AppendTo(nil))
		if err != nil || !r.(*kmsg.MetadataRequest).AllowAutoTopicCreation {
			t.Fatalf("v4 decode: %v %+v", err, r)
		}
		a.put(r)
		r, err = a.decode(0, v0.AppendTo(nil))
		if err != nil {
			t.Fatal(err)
		}
		if m := r.(*kmsg.MetadataRequest); m.AllowAutoTopicCreation || m.Version != 0 {
			t.Fatalf("v0 request after a v4 one: %+v", m)
		}
		a.put(r)
	}
}

// A copying request is the handler's to keep: decode never hands the same
// one out twice.
func TestDecodedRequestRetainedFresh(t *testing.T) {
	a := servedAPI(t, kmsg.CreateTopics)
	if !a.retain {
		t.Fatal("CreateTopics is expected to decode copying")
	}
	body := (&kmsg.CreateTopicsRequest{Version: 7, Topics: []kmsg.CreateTopicsRequestTopic{{Topic: "a"}}}).AppendTo(nil)
	r1, err1 := a.decode(7, body)
	a.put(r1)
	r2, err2 := a.decode(7, body)
	if err1 != nil || err2 != nil || r1 == r2 {
		t.Fatalf("errors %v %v, same request %v", err1, err2, r1 == r2)
	}
	// Strings were copied: changing the body leaves the request alone.
	body[bytes.IndexByte(body, 'a')] = 'b'
	if got := r2.(*kmsg.CreateTopicsRequest).Topics[0].Topic; got != "a" {
		t.Fatalf("topic %q", got)
	}
}

// A scoped request (Fetch) is recycled, but its strings are copies: a
// topic name a session or a parked fetch keeps survives the frame and the
// request's reuse.
func TestDecodedRequestScopedCopiesStrings(t *testing.T) {
	a := servedAPI(t, kmsg.Fetch)
	if a.retain || !a.copyStrings {
		t.Fatal("Fetch is expected to decode scoped")
	}
	body := (&kmsg.FetchRequest{Version: 12, Topics: []kmsg.FetchRequestTopic{{Topic: "a"}}}).AppendTo(nil)
	r, err := a.decode(12, body)
	if err != nil {
		t.Fatal(err)
	}
	kept := r.(*kmsg.FetchRequest).Topics[0].Topic
	a.put(r)
	body[bytes.IndexByte(body, 'a')] = 'b'
	if r2, err := a.decode(12, body); err != nil || r2.(*kmsg.FetchRequest).Topics[0].Topic != "b" {
		t.Fatalf("second decode: %v", err)
	}
	if kept != "a" {
		t.Fatalf("kept topic name %q changed with the frame", kept)
	}
}
