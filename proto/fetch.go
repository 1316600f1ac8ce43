package proto

// FetchResponse bodies are encoded by hand (not with kmsg) because the
// record bytes of each partition are not in memory: they are file regions
// that the network layer splices (or copies) between the encoded pieces.
// FetchEncoder writes every field of FetchResponse v4-v16 (the versions the
// broker serves) and leaves a hole where each partition's records go: the
// caller records the hole's position (len of the buffer after
// AppendPartition) and length, and netpoll sends the file region there.
// TestFetchEncodingMatchesKmsg checks it byte for byte against kmsg.
//
//	FetchResponse => throttle_time_ms [error_code session_id](v7+) [responses] TAG_BUFFER(v12+)
//	  responses   => topic(string; v13+: topic_id uuid) [partitions] TAG_BUFFER
//	  partitions  => partition_index error_code high_watermark last_stable_offset
//	                 log_start_offset(v5+) aborted_transactions(nullable array)
//	                 preferred_read_replica(v11+) records(nullable bytes) TAG_BUFFER
//
//	one response, as sent:
//	+--------+-------+-------+-----------------+-------+-------+---------+-----+
//	| header | topic | part. | records (hole:  | tags  | part. | records | ... |
//	| bytes  | bytes | bytes | file region)    |       | bytes | (hole)  |     |
//	+--------+-------+-------+-----------------+-------+-------+---------+-----+

// FetchEncoder encodes one FetchResponse version.
type FetchEncoder struct {
	version int16
}

// NewFetchEncoder returns the encoder for FetchResponse version.
func NewFetchEncoder(version int16) FetchEncoder { return FetchEncoder{version: version} }

func (e FetchEncoder) writer(b []byte) Writer { return Writer{B: b, Flexible: e.version >= 12} }

// AppendHeader writes the response-level fields and the topic count.
func (e FetchEncoder) AppendHeader(b []byte, errorCode int16, sessionID int32, topics int) []byte {
	w := e.writer(b)
	w.Int32(0) // throttle_time_ms
	if e.version >= 7 {
		w.Int16(errorCode)
		w.Int32(sessionID)
	}
	w.ArrayLen(topics)
	return w.B
}

// AppendTopic writes a topic (its name, or its id from v13) and its
// partition count.
func (e FetchEncoder) AppendTopic(b []byte, name string, id [16]byte, partitions int) []byte {
	w := e.writer(b)
	if e.version >= 13 {
		w.UUID(id)
	} else {
		w.String(name)
	}
	w.ArrayLen(partitions)
	return w.B
}

// AbortedTransaction is an entry of a partition's aborted_transactions.
type AbortedTransaction struct {
	ProducerID  int64
	FirstOffset int64
}

// AppendPartition writes a partition up to and including the records
// length; the caller then appends (or splices) recordsLen bytes of records
// (-1 = null records) and calls EndPartition. aborted_transactions is null.
func (e FetchEncoder) AppendPartition(b []byte, index int32, errorCode int16, hw, lastStable, logStart int64, recordsLen int64) []byte {
	return e.AppendPartitionTxn(b, index, errorCode, hw, lastStable, logStart, nil, recordsLen)
}

// AppendPartitionTxn is AppendPartition with aborted_transactions: null
// when aborted is nil, else the array (read_committed fetches).
func (e FetchEncoder) AppendPartitionTxn(b []byte, index int32, errorCode int16, hw, lastStable, logStart int64, aborted []AbortedTransaction, recordsLen int64) []byte {
	return e.AppendPartitionPreferred(b, index, errorCode, hw, lastStable, logStart, aborted, -1, recordsLen)
}

// AppendPartitionPreferred is AppendPartitionTxn with the
// preferred_read_replica (KIP-392; -1 none, and left out before v11).
func (e FetchEncoder) AppendPartitionPreferred(b []byte, index int32, errorCode int16, hw, lastStable, logStart int64, aborted []AbortedTransaction, preferred int32, recordsLen int64) []byte {
	w := e.writer(b)
	w.Int32(index)
	w.Int16(errorCode)
	w.Int64(hw)
	w.Int64(lastStable)
	if e.version >= 5 {
		w.Int64(logStart)
	}
	if aborted == nil {
		w.ArrayLen(-1)
	} else {
		w.ArrayLen(len(aborted))
		for _, a := range aborted {
			w.Int64(a.ProducerID)
			w.Int64(a.FirstOffset)
			w.Tags()
		}
	}
	if e.version >= 11 {
		w.Int32(preferred) // preferred_read_replica
	}
	w.BytesLen(recordsLen)
	return w.B
}

// EndPartition closes a partition (its tagged fields).
func (e FetchEncoder) EndPartition(b []byte) []byte { return e.appendTags(b) }

// EndTopic closes a topic.
func (e FetchEncoder) EndTopic(b []byte) []byte { return e.appendTags(b) }

// EndResponse closes the response.
func (e FetchEncoder) EndResponse(b []byte) []byte { return e.appendTags(b) }

func (e FetchEncoder) appendTags(b []byte) []byte {
	w := e.writer(b)
	w.Tags()
	return w.B
}
