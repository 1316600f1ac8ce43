package storage

import (
	"encoding/binary"
	"hash/maphash"
)

// offsetMap is the cleaner's key map (Kafka's SkimpyOffsetMap): for each
// key of the dirty section, the offset of its last record. A key is stored
// as a 128-bit hash (two seeded maphash sums), so an entry costs 24 bytes
// whatever the key's size, and the table is one flat slice with linear
// probing. Two keys with the same 128-bit hash would be taken for one (the
// older record of the other would be dropped): the same trade Kafka makes
// with MD5, at odds of about n²/2¹²⁹.
//
// Bounded: the table never grows past maxSlots slots; put refuses a new key
// once used reaches maxSlots × load factor (full), and the cleaner stops
// mapping there (a log with more keys is cleaned in several rounds). It
// starts small and doubles, so a thread that only ever cleans small logs
// never holds log.cleaner.dedupe.buffer.size bytes.
//
// Not safe for concurrent use: each cleaner thread has its own.
type offsetMap struct {
	seed1, seed2 maphash.Seed
	slots        []byte // entrySize bytes per slot: hash1, hash2, offset+1 (0 = empty)
	nslots       int
	used         int
	maxSlots     int
	loadFactor   float64
	latest       int64 // largest offset put, -1 when empty
}

const (
	mapEntrySize    = 24
	mapInitialSlots = 1 << 12
)

func newOffsetMap(memBytes int64, loadFactor float64) *offsetMap {
	maxSlots := int(memBytes / mapEntrySize)
	m := &offsetMap{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(), maxSlots: max(maxSlots, 1), loadFactor: loadFactor, latest: -1}
	m.resize(min(mapInitialSlots, m.maxSlots))
	return m
}

// capacity is how many keys the map holds before it is full.
func (m *offsetMap) capacity() int { return int(float64(m.maxSlots) * m.loadFactor) }

func (m *offsetMap) full() bool { return m.used >= m.capacity() }

// utilization is used / maxSlots (Kafka's buffer utilization).
func (m *offsetMap) utilization() float64 { return float64(m.used) / float64(m.maxSlots) }

func (m *offsetMap) clear() {
	clear(m.slots)
	m.used = 0
	m.latest = -1
}

func (m *offsetMap) hash(key []byte) (uint64, uint64) {
	return maphash.Bytes(m.seed1, key), maphash.Bytes(m.seed2, key)
}

// put records offset as key's latest. It returns false, storing nothing,
// when key is new and the map is full. Offsets must be put in increasing
// order (the dirty section is read front to back).
func (m *offsetMap) put(key []byte, offset int64) bool {
	h1, h2 := m.hash(key)
	i, found := m.find(h1, h2)
	if !found {
		if m.full() {
			return false
		}
		if float64(m.used+1) > float64(m.nslots)*m.loadFactor && m.nslots < m.maxSlots {
			m.resize(min(m.nslots*2, m.maxSlots))
			i, _ = m.find(h1, h2)
		}
		m.used++
		e := m.slots[i*mapEntrySize:]
		binary.LittleEndian.PutUint64(e, h1)
		binary.LittleEndian.PutUint64(e[8:], h2)
	}
	binary.LittleEndian.PutUint64(m.slots[i*mapEntrySize+16:], uint64(offset+1))
	m.latest = max(m.latest, offset)
	return true
}

// get returns the latest offset recorded for key, or -1.
func (m *offsetMap) get(key []byte) int64 {
	h1, h2 := m.hash(key)
	i, found := m.find(h1, h2)
	if !found {
		return -1
	}
	return int64(binary.LittleEndian.Uint64(m.slots[i*mapEntrySize+16:])) - 1
}

// find returns the slot holding (h1, h2), or the empty slot where it would
// go. The table always has an empty slot (used < nslots: the load factor is
// below 1, and resize keeps it so).
func (m *offsetMap) find(h1, h2 uint64) (int, bool) {
	i := int(h1 % uint64(m.nslots))
	for {
		e := m.slots[i*mapEntrySize:]
		if binary.LittleEndian.Uint64(e[16:]) == 0 {
			return i, false
		}
		if binary.LittleEndian.Uint64(e) == h1 && binary.LittleEndian.Uint64(e[8:]) == h2 {
			return i, true
		}
		if i++; i == m.nslots {
			i = 0
		}
	}
}

// resize rehashes into n slots (n > used).
func (m *offsetMap) resize(n int) {
	old, oldN := m.slots, m.nslots
	m.slots, m.nslots = make([]byte, n*mapEntrySize), n
	for i := 0; i < oldN; i++ {
		e := old[i*mapEntrySize : (i+1)*mapEntrySize]
		if binary.LittleEndian.Uint64(e[16:]) == 0 {
			continue
		}
		j, _ := m.find(binary.LittleEndian.Uint64(e), binary.LittleEndian.Uint64(e[8:]))
		copy(m.slots[j*mapEntrySize:], e)
	}
}
