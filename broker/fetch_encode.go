package broker

import (
	"encoding/binary"
)

// Fetch responses are encoded by hand (not with kmsg) because the record
// bytes of each partition are not in memory: they are file regions that
// netpoll splices between the encoded pieces. fetchEncoder writes every
// field of FetchResponse v4-v16 (the versions we serve) and leaves a hole,
// recorded as a netpoll.FileRegion, where each partition's records go.
// TestFetchEncodingMatchesKmsg checks it byte for byte against kmsg.
//
//	FetchResponse => throttle_time_ms [error_code session_id](v7+) [responses] TAG_BUFFER(v12+)
//	  responses   => topic(string; v13+: topic_id uuid) [partitions] TAG_BUFFER
//	  partitions  => partition_index error_code high_watermark last_stable_offset
//	                 log_start_offset(v5+) aborted_transactions(nullable array)
//	                 preferred_read_replica(v11+) records(nullable bytes) TAG_BUFFER
type fetchEncoder struct {
	version  int16
	flexible bool
}

func newFetchEncoder(version int16) fetchEncoder {
	return fetchEncoder{version: version, flexible: version >= 12}
}

func (e fetchEncoder) appendHeader(b []byte, errorCode int16, sessionID int32, topics int) []byte {
	b = binary.BigEndian.AppendUint32(b, 0) // throttle_time_ms
	if e.version >= 7 {
		b = binary.BigEndian.AppendUint16(b, uint16(errorCode))
		b = binary.BigEndian.AppendUint32(b, uint32(sessionID))
	}
	return e.appendArrayLen(b, topics)
}

func (e fetchEncoder) appendTopic(b []byte, name string, id [16]byte, partitions int) []byte {
	if e.version >= 13 {
		b = append(b, id[:]...)
	} else if e.flexible {
		b = binary.AppendUvarint(b, uint64(len(name))+1)
		b = append(b, name...)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
		b = append(b, name...)
	}
	return e.appendArrayLen(b, partitions)
}

// appendPartition writes a partition up to and including the records
// length; the caller then appends (or splices) recordsLen bytes of records
// (-1 = null records) and calls endPartition.
func (e fetchEncoder) appendPartition(b []byte, index int32, errorCode int16, hw, lastStable, logStart int64, recordsLen int64) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(index))
	b = binary.BigEndian.AppendUint16(b, uint16(errorCode))
	b = binary.BigEndian.AppendUint64(b, uint64(hw))
	b = binary.BigEndian.AppendUint64(b, uint64(lastStable))
	if e.version >= 5 {
		b = binary.BigEndian.AppendUint64(b, uint64(logStart))
	}
	b = e.appendArrayLen(b, -1) // aborted_transactions: null (no transactions)
	if e.version >= 11 {
		b = binary.BigEndian.AppendUint32(b, 0xffffffff) // preferred_read_replica -1
	}
	if e.flexible {
		return binary.AppendUvarint(b, uint64(recordsLen+1))
	}
	return binary.BigEndian.AppendUint32(b, uint32(int32(recordsLen)))
}

func (e fetchEncoder) endPartition(b []byte) []byte { return e.appendTags(b) }
func (e fetchEncoder) endTopic(b []byte) []byte     { return e.appendTags(b) }
func (e fetchEncoder) endResponse(b []byte) []byte  { return e.appendTags(b) }

func (e fetchEncoder) appendTags(b []byte) []byte {
	if e.flexible {
		b = append(b, 0)
	}
	return b
}

// appendArrayLen writes an array length; n < 0 is a null array.
func (e fetchEncoder) appendArrayLen(b []byte, n int) []byte {
	if e.flexible {
		return binary.AppendUvarint(b, uint64(n+1))
	}
	return binary.BigEndian.AppendUint32(b, uint32(int32(n)))
}
