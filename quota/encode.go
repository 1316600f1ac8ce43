package quota

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"slices"
)

// The encoded quota set, the local store's blob on a single node (in a
// cluster the set lives in the metadata log as ClientQuotaRecords). It is
// canonical: entities sorted (compareEntities), keys sorted, no empty
// entity, so Decode accepts only what Encode writes.
//
//	+--------+---------+-------------+------------------+----------+
//	| "RQUO" | version | count       | entity x count   | crc32c   |
//	| 4 B    | 1 B = 1 | uint32 (BE) |                  | uint32   |
//	+--------+---------+-------------+------------------+----------+
//	crc32c (Castagnoli, big endian) covers every byte before it.
//
//	entity: name(user) name(client-id) name(ip) values uint16, then
//	        values x (key string, value float64 bits uint64 BE)
//	name:   flags int8 (0 absent, 1 <default>, 2 named), then for a named
//	        one a string
//	string: uint16 (BE) length, then that many bytes
const (
	setMagic      = "RQUO"
	setVersion    = 1
	setHeaderLen  = len(setMagic) + 1 + 4
	setTrailerLen = 4
	entityMinLen  = 3 + 2 + 2 + 1 + 8 // three absent names can't be, but a lower bound is enough
	nameMaxLen    = 32767
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendName(out []byte, n Name) []byte {
	switch {
	case !n.Present:
		return append(out, 0)
	case n.Default:
		return append(out, 1)
	}
	out = append(out, 2)
	out = binary.BigEndian.AppendUint16(out, uint16(len(n.Value)))
	return append(out, n.Value...)
}

// Encode returns the canonical encoding of s.
func (s Set) Encode() ([]byte, error) {
	out := append([]byte(nil), setMagic...)
	out = append(out, setVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(len(s.m)))
	for _, e := range s.Entities() {
		for _, n := range [...]Name{e.User, e.ClientID, e.IP} {
			if len(n.Value) > nameMaxLen {
				return nil, fmt.Errorf("quota set: encode %s: name too long", e)
			}
			out = appendName(out, n)
		}
		vals := s.m[e]
		out = binary.BigEndian.AppendUint16(out, uint16(len(vals)))
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			out = binary.BigEndian.AppendUint16(out, uint16(len(k)))
			out = append(out, k...)
			out = binary.BigEndian.AppendUint64(out, math.Float64bits(vals[k]))
		}
	}
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli)), nil
}

// Decode reads what Encode wrote. It never panics, allocates in
// proportion to len(data) and refuses anything not canonical or not
// valid (every entity and value passes ParseEntity's and ValidateValue's
// checks).
func Decode(data []byte) (Set, error) {
	fail := func(format string, args ...any) (Set, error) {
		return Set{}, fmt.Errorf("quota set: decode: "+format, args...)
	}
	if len(data) < setHeaderLen+setTrailerLen {
		return fail("too short")
	}
	if string(data[:len(setMagic)]) != setMagic {
		return fail("bad magic")
	}
	body, trailer := data[:len(data)-setTrailerLen], data[len(data)-setTrailerLen:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(trailer) {
		return fail("checksum mismatch")
	}
	if v := data[len(setMagic)]; v != setVersion {
		return fail("unknown version %d", v)
	}
	count := binary.BigEndian.Uint32(data[len(setMagic)+1:])
	rest := body[setHeaderLen:]
	if uint64(count) > uint64(len(rest)/entityMinLen) {
		return fail("count %d does not fit in %d bytes", count, len(rest))
	}
	readString := func() (string, bool) {
		if len(rest) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest)-2 < n {
			return "", false
		}
		v := string(rest[2 : 2+n])
		rest = rest[2+n:]
		return v, true
	}
	readName := func() (Name, bool) {
		if len(rest) < 1 {
			return Name{}, false
		}
		flag := rest[0]
		rest = rest[1:]
		switch flag {
		case 0:
			return Name{}, true
		case 1:
			return DefaultName, true
		case 2:
			v, ok := readString()
			return Named(v), ok
		}
		return Name{}, false
	}
	m := make(map[Entity]map[string]float64, count)
	var prev Entity
	for i := uint32(0); i < count; i++ {
		var e Entity
		var ok1, ok2, ok3 bool
		e.User, ok1 = readName()
		e.ClientID, ok2 = readName()
		e.IP, ok3 = readName()
		if !ok1 || !ok2 || !ok3 || len(rest) < 2 {
			return fail("entity %d truncated", i)
		}
		var types []string
		var names []*string
		for _, c := range e.Components() {
			types, names = append(types, c.Type), append(names, c.Name.Ptr())
		}
		if _, err := ParseEntity(types, names); err != nil {
			return fail("entity %d: %v", i, err)
		}
		if i > 0 && compareEntities(prev, e) >= 0 {
			return fail("entity %d out of order", i)
		}
		prev = e
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if n == 0 || n > len(rest)/11 {
			return fail("entity %d: %d values", i, n)
		}
		vals := make(map[string]float64, n)
		last := ""
		for j := 0; j < n; j++ {
			k, ok := readString()
			if !ok || len(rest) < 8 {
				return fail("entity %d truncated", i)
			}
			v := math.Float64frombits(binary.BigEndian.Uint64(rest))
			rest = rest[8:]
			if j > 0 && k <= last {
				return fail("entity %d: key %q out of order", i, k)
			}
			last = k
			if err := ValidateValue(e, k, v); err != nil {
				return fail("entity %d: %v", i, err)
			}
			vals[k] = v
		}
		m[e] = vals
	}
	if len(rest) != 0 {
		return fail("%d trailing bytes", len(rest))
	}
	return Set{m: m}, nil
}
