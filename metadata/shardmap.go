package metadata

import (
	"hash/maphash"
	"iter"
)

// shardCount is the number of shards of a shardMap. A change copies the
// shard array (shardCount pointers) and one shard (about 1/shardCount of
// the entries): at issue 15's 10,000 topics, about 40 entries instead of
// 10,000, so one committed record costs microseconds rather than the
// milliseconds (and megabyte) that copying a whole map costs
// (metadata/scale_bench_test.go). A persistent trie would keep the copy
// logarithmic past that; at 100,000 topics a change still copies only
// about 400 entries, and two levels of plain maps keep lookups a map
// lookup.
const shardCount = 256

// shardSeed hashes keys to shards. Shards are never iterated in an order
// that reaches an output (Topics and Records sort), so a seed per process
// is enough.
var shardSeed = maphash.MakeSeed()

// shardMap is a copy-on-write map split into shardCount maps by key hash.
// The zero value is empty. Reads may share a shardMap freely; a change
// goes through a shardOwner that copies the shard array and the shard it
// touches the first time a batch changes them, so the shardMap the batch
// started from is never changed.
type shardMap[K comparable, V any] struct {
	shards *[shardCount]map[K]V // nil: empty
	n      int
}

// shardOwner records what of one shardMap a batch has copied already (and
// may so change in place).
type shardOwner struct {
	array bool
	shard [shardCount / 64]uint64
}

func shardOf[K comparable](k K) int {
	return int(maphash.Comparable(shardSeed, k) % shardCount)
}

func (m shardMap[K, V]) get(k K) (V, bool) {
	if m.shards == nil {
		var zero V
		return zero, false
	}
	v, ok := m.shards[shardOf(k)][k]
	return v, ok
}

func (m shardMap[K, V]) len() int { return m.n }

// all yields every entry, in no particular order.
func (m shardMap[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		if m.shards == nil {
			return
		}
		for _, s := range m.shards {
			for k, v := range s {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}

// values returns every value, in no particular order.
func (m shardMap[K, V]) values() []V {
	out := make([]V, 0, m.n)
	for _, v := range m.all() {
		out = append(out, v)
	}
	return out
}

// own makes shard i of m writable in this batch and returns it.
func (m *shardMap[K, V]) own(o *shardOwner, i int) map[K]V {
	if !o.array {
		next := new([shardCount]map[K]V)
		if m.shards != nil {
			*next = *m.shards
		}
		m.shards = next
		o.array = true
	}
	if o.shard[i/64]&(1<<(i%64)) == 0 {
		m.shards[i] = clone(m.shards[i])
		o.shard[i/64] |= 1 << (i % 64)
	}
	return m.shards[i]
}

func (m *shardMap[K, V]) set(o *shardOwner, k K, v V) {
	s := m.own(o, shardOf(k))
	if _, ok := s[k]; !ok {
		m.n++
	}
	s[k] = v
}

func (m *shardMap[K, V]) delete(o *shardOwner, k K) {
	if _, ok := m.get(k); !ok {
		return
	}
	i := shardOf(k)
	delete(m.own(o, i), k)
	m.n--
	// An emptied shard (and map) is nil again, as if never filled: an
	// image is then equal, field by field, to one rebuilt from its
	// snapshot records.
	if len(m.shards[i]) == 0 {
		m.shards[i] = nil
		o.shard[i/64] &^= 1 << (i % 64)
	}
	if m.n == 0 {
		m.shards = nil
		*o = shardOwner{}
	}
}
