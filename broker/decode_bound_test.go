package broker

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// decodeHeapPerByteMax is the most heap one received body byte may cost
// while kmsg decodes its request (see "Decode bound" in broker.go): the
// worst measured with kmsg v1.15.1 is 32.0 (a 64-byte FetchRequestTopic
// per 2 wire bytes, and the like); v1.15.0 reached 80 (CreateTopics).
const decodeHeapPerByteMax = 32

// produceHeapPerByteMax is the same for the Produce flyweight, whose
// per-partition slot also holds the answer and producer-state bookkeeping
// (about 140 bytes for a 6-byte partition, with the transaction pointer
// txnStart) and whose slices grow by doubling on a cold context: 67
// measured before txnStart, 75.6 after (the slot slice crosses a size
// class at 2730 partitions).
const produceHeapPerByteMax = 80

// decodeBoundSlack covers the fixed cost of one decode (the request struct,
// the first elements) on top of the per-byte bound.
const decodeBoundSlack = 16 << 10

// decodeFor returns the decoder ServeFrame runs for a's body: Produce's
// flyweight, api.decode (kmsg's generated ReadFrom) for every other API.
func decodeFor(a api, version int16) func(body []byte) error {
	if a.key == kmsg.Produce {
		return func(body []byte) error {
			c := &produceCtx{}
			c.hdr.APIVersion = version
			if !c.parse(body) {
				return errMalformedProduce
			}
			return nil
		}
	}
	return func(body []byte) error {
		r, err := a.decode(version, body)
		a.put(r)
		return err
	}
}

// fillRequest sets every field of a kmsg request to a small non-zero value
// and every array to one element, so that its encoding holds a count at
// every array position of its version.
func fillRequest(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Name == "Version" || f.Name == "UnknownTags" {
				continue
			}
			fillRequest(v.Field(i))
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillRequest(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillRequest(v.Index(0))
	case reflect.String:
		v.SetString("x")
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Array:
		if v.Len() > 0 {
			fillRequest(v.Index(0))
		}
	}
}

// heapAllocated runs f and returns the heap bytes it allocated.
// ReadMemStats flushes every P's cache, so the count is exact.
func heapAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodeAmplification: for every API key and version the broker serves,
// every position of a well-formed body where an array count (or anything
// else) can stand is replaced by a count followed by zeros, with the count
// as large as the decoder accepts; decoding must allocate at most
// decodeHeapPerByteMax bytes per body byte. The largest accepted count is
// found by bisection on "the decode allocated at least count bytes"
// (a count the decoder rejects allocates almost nothing).
func TestDecodeAmplification(t *testing.T) {
	const zeros = 16 << 10
	var worst float64
	var worstAt string
	for _, a := range servedAPIs {
		var prev []byte
		for v := a.min; v <= a.max; v++ {
			req := a.key.Request()
			if req == nil {
				t.Fatalf("api %d: kmsg has no request type", a.key)
			}
			fillRequest(reflect.ValueOf(req).Elem())
			req.SetVersion(v)
			enc := req.AppendTo(nil)
			if string(enc) == string(prev) {
				continue // same layout as the version before
			}
			prev = enc
			flexible := req.IsFlexible()
			decode := decodeFor(a, v)
			limit := uint64(decodeHeapPerByteMax)
			if a.key == kmsg.Produce {
				limit = produceHeapPerByteMax
			}
			limit *= raceAllocFactor
			for p := 0; p < len(enc); p++ {
				var put func(dst []byte, n int) []byte
				switch {
				case !flexible && p+4 <= len(enc) && binary.BigEndian.Uint32(enc[p:]) == 1:
					put = func(dst []byte, n int) []byte { return binary.BigEndian.AppendUint32(dst, uint32(n)) }
				case flexible && enc[p] == 2: // compact count 1 (or a one-byte string)
					put = func(dst []byte, n int) []byte { return binary.AppendUvarint(dst, uint64(n)+1) }
				default:
					continue
				}
				body := func(n int) []byte {
					out := put(append([]byte(nil), enc[:p]...), n)
					return append(out, make([]byte, zeros)...)
				}
				cost := func(n int) (uint64, int) {
					in := body(n)
					return heapAllocated(func() { _ = decode(in) }), len(in)
				}
				// Bisect the largest accepted count in [1, zeros].
				lo, hi := 1, zeros
				for lo < hi {
					mid := (lo + hi + 1) / 2
					if got, _ := cost(mid); got >= uint64(mid) {
						lo = mid
					} else {
						hi = mid - 1
					}
				}
				for _, n := range []int{lo, zeros} {
					got, size := cost(n)
					per := float64(got) / float64(size)
					at := fmt.Sprintf("%s v%d, count %d at byte %d", a.key.Name(), v, n, p)
					if per > worst && a.key != kmsg.Produce {
						worst, worstAt = per, at
					}
					if got > limit*uint64(size)+decodeBoundSlack {
						t.Errorf("%s: a %d-byte body allocated %d bytes (%.1f per byte), want <= %d per byte",
							at, size, got, per, limit)
					}
				}
			}
		}
	}
	t.Logf("worst kmsg decode: %.1f heap bytes per body byte (%s)", worst, worstAt)
}

// FuzzDecodeBound feeds arbitrary bodies to the decoder of every served API
// key and version. Invariants: it never panics, and it allocates at most the
// per-byte bound of TestDecodeAmplification (plus decodeBoundSlack).
func FuzzDecodeBound(f *testing.F) {
	for _, a := range servedAPIs {
		req := a.key.Request()
		fillRequest(reflect.ValueOf(req).Elem())
		req.SetVersion(a.max)
		f.Add(uint16(a.key), uint8(a.max), req.AppendTo(nil))
	}
	f.Add(uint16(kmsg.CreateTopics), uint8(2), append(binary.BigEndian.AppendUint32(nil, 1<<12), make([]byte, 1<<12)...))
	f.Fuzz(func(t *testing.T, key uint16, version uint8, body []byte) {
		a := servedAPIs[int(key)%len(servedAPIs)]
		v := a.min + int16(version)%(a.max-a.min+1)
		limit := uint64(decodeHeapPerByteMax)
		if a.key == kmsg.Produce {
			limit = produceHeapPerByteMax
		}
		limit *= raceAllocFactor
		decode := decodeFor(a, v)
		if got := heapAllocated(func() { _ = decode(body) }); got > limit*uint64(len(body))+decodeBoundSlack {
			t.Fatalf("%s v%d: a %d-byte body allocated %d bytes", a.key.Name(), v, len(body), got)
		}
	})
}
