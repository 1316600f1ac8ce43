package acl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// The encoded ACL set, for a durable store (and a snapshot of it). It is
// canonical: one binding set has exactly one encoding (bindings sorted by
// compareBindings, no duplicates, fixed-width integers), so Decode accepts
// only what Encode writes and re-encoding a decoded set gives the same
// bytes.
//
//	+--------+---------+-------------+---------------------+----------+
//	| "RACL" | version | count       | binding x count     | crc32c   |
//	| 4 B    | 1 B = 1 | uint32 (BE) |                     | uint32   |
//	+--------+---------+-------------+---------------------+----------+
//	crc32c (Castagnoli, big endian) covers every byte before it.
//
//	binding:
//	+------+---------+----+------+----------+-----------+----------+
//	| type | pattern | op | perm | name     | principal | host     |
//	| int8 | int8    |int8| int8 | string   | string    | string   |
//	+------+---------+----+------+----------+-----------+----------+
//	string: uint16 (BE) length, then that many bytes (at most 32767, the
//	length of a Kafka protocol STRING).
//
// Every binding must be one Create would accept.

const (
	codecMagic      = "RACL"
	codecVersion    = 1
	codecHeaderLen  = len(codecMagic) + 1 + 4
	codecTrailerLen = 4
	// bindingMinLen is four int8 fields and three empty strings: a
	// bound on count from the input's length before allocating.
	bindingMinLen = 4 + 3*2
	stringMaxLen  = 32767
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns the canonical encoding of the set of bindings (order and
// duplicates in the argument do not matter).
func Encode(bindings []Binding) ([]byte, error) {
	sorted := slices.Clone(bindings)
	slices.SortFunc(sorted, func(x, y Binding) int { return compareBindings(&x, &y) })
	sorted = slices.CompactFunc(sorted, func(x, y Binding) bool { return x == y })
	size := codecHeaderLen + codecTrailerLen
	for i := range sorted {
		b := &sorted[i]
		if msg := validateNew(b); msg != "" {
			return nil, fmt.Errorf("acl: encode: binding %s: %s", b, msg)
		}
		for _, s := range [...]string{b.Pattern.Name, b.Entry.Principal, b.Entry.Host} {
			if len(s) > stringMaxLen {
				return nil, fmt.Errorf("acl: encode: binding %s: a string is longer than %d bytes", b, stringMaxLen)
			}
		}
		size += bindingMinLen + len(b.Pattern.Name) + len(b.Entry.Principal) + len(b.Entry.Host)
	}
	out := make([]byte, 0, size)
	out = append(out, codecMagic...)
	out = append(out, codecVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(len(sorted)))
	for i := range sorted {
		b := &sorted[i]
		out = append(out, byte(b.Pattern.Type), byte(b.Pattern.PatternType), byte(b.Entry.Operation), byte(b.Entry.Permission))
		for _, s := range [...]string{b.Pattern.Name, b.Entry.Principal, b.Entry.Host} {
			out = binary.BigEndian.AppendUint16(out, uint16(len(s)))
			out = append(out, s...)
		}
	}
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli)), nil
}

// Encode returns the canonical encoding of the current binding set.
func (a *Authorizer) Encode() ([]byte, error) { return Encode(a.snap.Load().bindings) }

// Decode reads what Encode wrote. It never panics, allocates in proportion
// to len(data), and refuses anything that is not a canonical encoding:
// a wrong checksum, an unknown version, trailing bytes, an invalid
// binding, or bindings out of order or repeated.
func Decode(data []byte) ([]Binding, error) {
	if len(data) < codecHeaderLen+codecTrailerLen {
		return nil, errors.New("acl: decode: too short")
	}
	if string(data[:len(codecMagic)]) != codecMagic {
		return nil, errors.New("acl: decode: bad magic")
	}
	body, trailer := data[:len(data)-codecTrailerLen], data[len(data)-codecTrailerLen:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(trailer) {
		return nil, errors.New("acl: decode: checksum mismatch")
	}
	if v := data[len(codecMagic)]; v != codecVersion {
		return nil, fmt.Errorf("acl: decode: unknown version %d", v)
	}
	count := binary.BigEndian.Uint32(data[len(codecMagic)+1:])
	rest := body[codecHeaderLen:]
	if uint64(count) > uint64(len(rest)/bindingMinLen) {
		return nil, fmt.Errorf("acl: decode: count %d does not fit in %d bytes", count, len(rest))
	}
	out := make([]Binding, 0, count)
	readString := func() (string, bool) {
		if len(rest) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n > stringMaxLen || len(rest)-2 < n {
			return "", false
		}
		s := string(rest[2 : 2+n])
		rest = rest[2+n:]
		return s, true
	}
	for i := uint32(0); i < count; i++ {
		if len(rest) < 4 {
			return nil, fmt.Errorf("acl: decode: binding %d truncated", i)
		}
		var b Binding
		b.Pattern.Type = ResourceType(int8(rest[0]))
		b.Pattern.PatternType = PatternType(int8(rest[1]))
		b.Entry.Operation = Operation(int8(rest[2]))
		b.Entry.Permission = Permission(int8(rest[3]))
		rest = rest[4:]
		var ok1, ok2, ok3 bool
		b.Pattern.Name, ok1 = readString()
		b.Entry.Principal, ok2 = readString()
		b.Entry.Host, ok3 = readString()
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("acl: decode: binding %d truncated", i)
		}
		if msg := validateNew(&b); msg != "" {
			return nil, fmt.Errorf("acl: decode: binding %d: %s", i, msg)
		}
		if len(out) > 0 && compareBindings(&out[len(out)-1], &b) >= 0 {
			return nil, fmt.Errorf("acl: decode: binding %d out of order", i)
		}
		out = append(out, b)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("acl: decode: %d trailing bytes", len(rest))
	}
	return out, nil
}
