package proto

import "github.com/twmb/franz-go/pkg/kmsg"

// API keys are spelled one way everywhere: kmsg.Key and its constants
// (kmsg.Produce, kmsg.ApiVersions, ...), whose Name is Kafka's name for the
// API ("Unknown" for a key kmsg does not know).

// notAnAPI marks a key kmsg does not know.
const notAnAPI = int16(-2)

// flexibleFrom[key] is the first flexible version of the API, -1 if the API
// is never flexible, notAnAPI if the key is unknown. Built once from kmsg so
// it cannot drift from the generated codecs.
var flexibleFrom = buildFlexibleTable()

func buildFlexibleTable() []int16 {
	const maxKey = 128
	t := make([]int16, maxKey)
	for key := int16(0); key < maxKey; key++ {
		t[key] = notAnAPI
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		t[key] = -1
		for v := int16(0); v <= req.MaxVersion(); v++ {
			req.SetVersion(v)
			if req.IsFlexible() {
				t[key] = v
				break
			}
		}
	}
	return t
}

// IsFlexible reports whether version of API key uses the flexible encoding.
// For a version above what kmsg knows, the API is assumed still flexible.
func IsFlexible(key kmsg.Key, version int16) bool {
	if !KnownKey(key) {
		return false
	}
	from := flexibleFrom[key]
	return from >= 0 && version >= from
}
