// Package proto owns the Kafka wire format below the broker's handlers: the
// request header flyweight and the response header (header.go), the
// per-API "flexible from version N" table (apis.go), the primitive Reader
// and Writer the hot paths' hand-written codecs are built on (wire.go, over
// franz-go's kbin), the FetchResponse layout with holes for the file
// regions netpoll splices in (fetch.go), and the record batch v2: the
// RecordBatch flyweight (header fields, CRC32C check and restamp, control
// and compression attributes; batch.go) and the record walks
// (ValidateRecords for the produce path, RecordIter for cold readers;
// records.go). Batches are built with kmsg.RecordBatch on cold paths
// (AppendRecordBatch).
//
// Request and response bodies are otherwise the generated types of
// github.com/twmb/franz-go/pkg/kmsg, and API keys are spelled as kmsg.Key
// constants everywhere. This package hand-writes only what runs once per
// request before dispatch and what a benchmark shows kmsg cannot do without
// allocating, and none of it allocates.
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
