package broker

import "errors"

// Structural pre-walks of request bodies that kmsg decodes. kmsg
// preallocates an array's elements from its claimed count (bounded only by
// "one element per remaining byte"), so a frame of zeros claiming a count
// as large as itself costs tens of bytes of heap per byte received before the
// decode fails. These walks visit every element without allocating and
// reject a body whose counts are not backed by bytes; only then does kmsg
// decode it, allocating for elements that really arrived.

// errArrayCounts is why a body failed its walk.
var errArrayCounts = errors.New("array counts not backed by the request bytes")

// walkFetchRequest checks a Fetch body (versions 4-16).
func walkFetchRequest(v int16, b []byte) bool {
	r := wireReader{b: b, flexible: v >= 12}
	if v <= 14 {
		r.skip(4) // replica_id
	}
	r.skip(4 + 4 + 4 + 1) // max_wait_ms, min_bytes, max_bytes, isolation_level
	if v >= 7 {
		r.skip(4 + 4) // session_id, session_epoch
	}
	partBytes := 4 + 8 + 4 // partition, fetch_offset, partition_max_bytes
	if v >= 9 {
		partBytes += 4 // current_leader_epoch
	}
	if v >= 12 {
		partBytes += 4 // last_fetched_epoch
	}
	if v >= 5 {
		partBytes += 8 // log_start_offset
	}
	walkTopicKey := func() {
		if v >= 13 {
			r.skip(16) // topic_id
		} else {
			r.skip(r.stringLen())
		}
	}
	for n := r.arrayLenMin(2); n > 0 && !r.bad; n-- {
		walkTopicKey()
		for p := r.arrayLenMin(partBytes); p > 0 && !r.bad; p-- {
			r.skip(partBytes)
			r.skipTags()
		}
		r.skipTags()
	}
	if v >= 7 {
		for n := r.arrayLenMin(2); n > 0 && !r.bad; n-- {
			walkTopicKey()
			r.skip(4 * r.arrayLenMin(4)) // partitions []int32
			r.skipTags()
		}
	}
	return !r.bad
}

// walkMetadataRequest checks a Metadata body's topics (versions 0-12).
func walkMetadataRequest(v int16, b []byte) bool {
	r := wireReader{b: b, flexible: v >= 9}
	for n := r.arrayLenMin(1); n > 0 && !r.bad; n-- {
		if v >= 10 {
			r.skip(16) // topic_id
		}
		if n := r.nullableStringLen(); n > 0 {
			r.skip(n)
		}
		r.skipTags()
	}
	return !r.bad
}
