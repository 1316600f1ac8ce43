package broker

// The one "busy" answer: when the admin queue is full, a handler answers at
// once with REQUEST_TIMED_OUT (retriable) on every entry of its request, as
// a Kafka controller with a full queue times the request out. Rather than
// each admin API spelling that answer out, busyResponse derives it from the
// request: kmsg's request and response types mirror each other, so each
// top-level array of the response that the request also has (Topics,
// Resources) gets one entry per request entry, carrying the entry's
// identity (topic name or id, resource type and name) and the error.

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

// busyMessage is the error message of a busy answer.
const busyMessage = "admin queue full"

// submitAdmin queues job on the admin worker or, when its queue is full,
// answers r with the busy answer.
func (b *Broker) submitAdmin(req netpoll.Request, h *proto.RequestHeader, r kmsg.Request, job func()) {
	if !b.admin.submit(job) {
		b.replyMsg(req, h, busyResponse(r, kerr.RequestTimedOut.Code, busyMessage))
	}
}

// adminDecoded registers an admin API whose work runs on the admin worker:
// the decoded request is queued there for run, or answered busy.
func adminDecoded[T any, P interface {
	*T
	kmsg.Request
}](key kmsg.Key, min, max int16, run func(*Broker, netpoll.Request, *proto.RequestHeader, P)) api {
	forwarded := forwardedKeys[key]
	return decoded(key, min, max, copying, func(b *Broker, req netpoll.Request, h proto.RequestHeader, r P) {
		h.ClientID = nil // aliases the frame; the answer is built on the worker
		b.submitAdmin(req, &h, r, func() {
			if forwarded && b.opts.Cluster != nil && !b.servedHere(r) { // dynamic_tls.go
				b.forward(req, &h, r)
				return
			}
			run(b, req, &h, r)
		})
	})
}

// busyIdentity names the fields that identify a request entry in its
// response entry; nothing else is copied (CreateTopics' NumPartitions, for
// one, means something else in the response).
var busyIdentity = map[string]bool{"Topic": true, "TopicID": true, "ResourceType": true, "ResourceName": true}

// busyResponse is r's response with code (and msg, where the response has
// an error message) on the response itself where it has an error code
// (DescribeLogDirs) and on every entry mirroring one of the request's.
func busyResponse(r kmsg.Request, code int16, msg string) kmsg.Response {
	resp := r.ResponseKind()
	resp.SetVersion(r.GetVersion())
	out := reflect.ValueOf(resp).Elem()
	in := reflect.ValueOf(r).Elem()
	setError(out, code, msg)
	for i := 0; i < out.NumField(); i++ {
		f := out.Type().Field(i)
		src := in.FieldByName(f.Name)
		if f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Struct ||
			!src.IsValid() || src.Kind() != reflect.Slice {
			continue
		}
		entries := reflect.MakeSlice(f.Type, src.Len(), src.Len())
		for j := 0; j < src.Len(); j++ {
			e := entries.Index(j)
			if d, ok := e.Addr().Interface().(interface{ Default() }); ok {
				d.Default()
			}
			from := src.Index(j)
			for k := 0; k < e.NumField(); k++ {
				name := e.Type().Field(k).Name
				if v := from.FieldByName(name); busyIdentity[name] && v.IsValid() && v.Type() == e.Field(k).Type() {
					e.Field(k).Set(v)
				}
			}
			setError(e, code, msg)
		}
		if src.Len() > 0 {
			out.Field(i).Set(entries)
		}
	}
	return resp
}

// setError sets v's ErrorCode and ErrorMessage fields, where it has them.
func setError(v reflect.Value, code int16, msg string) {
	if f := v.FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 {
		f.SetInt(int64(code))
	}
	if f := v.FieldByName("ErrorMessage"); f.IsValid() && f.Type() == reflect.TypeOf((*string)(nil)) {
		m := msg
		f.Set(reflect.ValueOf(&m))
	}
}
