// Package proto holds the Kafka wire-protocol pieces that sit between a raw
// request frame and a broker handler: the request header flyweight, the
// response header, and the per-API "flexible from version N" table.
//
// Request and response bodies are the generated types of
// github.com/twmb/franz-go/pkg/kmsg; this package hand-writes only what runs
// once per request before dispatch, and does so without allocating.
//
// A request frame, as netpoll hands it over (the 4-byte length prefix already
// stripped):
//
//	+---------+-------------+----------------+-------------------+--------------+------+
//	| api key | api version | correlation id | client id         | tagged fields| body |
//	| int16   | int16       | int32          | int16 len + bytes | (header v2)  | ...  |
//	+---------+-------------+----------------+-------------------+--------------+------+
//
// Header v0 has no client id (only ControlledShutdown v0 used it); v1 adds the
// client id; v2 (the request is "flexible") adds tagged fields. The client id
// stays a nullable non-compact string even in v2, as Kafka specifies.
//
// A response frame is length + correlation id (+ an empty tag buffer for
// response header v1) + body. ApiVersions always answers with header v0 so a
// client that does not yet know our versions can parse it (KIP-511).
package proto
