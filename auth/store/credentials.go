package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ringbroker/ringbroker/auth/sasl"
)

// Mechanism codes in the encoding and in DescribeUserScramCredentials
// (Kafka's ScramMechanism.type()).
const (
	MechanismSHA256 int8 = 1
	MechanismSHA512 int8 = 2
)

// MechanismByCode returns the SCRAM mechanism of Kafka's code, or nil.
func MechanismByCode(code int8) *sasl.ScramMechanism {
	switch code {
	case MechanismSHA256:
		return sasl.ScramSHA256
	case MechanismSHA512:
		return sasl.ScramSHA512
	}
	return nil
}

// MechanismCode is Kafka's code of m.
func MechanismCode(m *sasl.ScramMechanism) int8 {
	if m == sasl.ScramSHA512 {
		return MechanismSHA512
	}
	return MechanismSHA256
}

// Key names one credential: a user and a mechanism.
type Key struct {
	User      string
	Mechanism int8
}

// Credentials is the set of SCRAM credentials. The zero value is not
// usable; call NewCredentials.
type Credentials struct {
	mu  sync.Mutex // serialises writers; readers never take it
	cur atomic.Pointer[map[Key]sasl.Credential]
}

// NewCredentials returns an empty set.
func NewCredentials() *Credentials {
	c := &Credentials{}
	m := map[Key]sasl.Credential{}
	c.cur.Store(&m)
	return c
}

// Lookup returns the credential of user for mechanism m: a sasl.ScramLookup.
func (c *Credentials) Lookup(m *sasl.ScramMechanism, user string) (sasl.Credential, bool) {
	cred, ok := (*c.cur.Load())[Key{User: user, Mechanism: MechanismCode(m)}]
	return cred, ok
}

// Snapshot returns the current set (do not modify it).
func (c *Credentials) Snapshot() map[Key]sasl.Credential { return *c.cur.Load() }

// Users returns the users having at least one credential, sorted.
func (c *Credentials) Users() []string {
	var users []string
	for k := range *c.cur.Load() {
		users = append(users, k.User)
	}
	slices.Sort(users)
	return slices.Compact(users)
}

// Update applies deletions then upserts to a copy of the set, calls
// persist with the new set's encoding and, if it succeeds, publishes the
// new set. A failed persist changes nothing.
func (c *Credentials) Update(deletions []Key, upserts map[Key]sasl.Credential, persist func([]byte) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[Key]sasl.Credential, len(*c.cur.Load())+len(upserts))
	for k, v := range *c.cur.Load() {
		next[k] = v
	}
	for _, k := range deletions {
		delete(next, k)
	}
	for k, v := range upserts {
		next[k] = v
	}
	data, err := EncodeCredentials(next)
	if err != nil {
		return err
	}
	if err := persist(data); err != nil {
		return err
	}
	c.cur.Store(&next)
	return nil
}

// Load replaces the set with one decoded from data (startup).
func (c *Credentials) Load(data []byte) error {
	m, err := DecodeCredentials(data)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cur.Store(&m)
	c.mu.Unlock()
	return nil
}

// The encoded credential set. It is canonical (entries sorted by user then
// mechanism code, no duplicates), so DecodeCredentials accepts only what
// EncodeCredentials writes and re-encoding gives the same bytes. It holds
// no password: only what verifies a SCRAM proof, as Kafka stores.
//
//	+--------+---------+-------------+-------------------+----------+
//	| "RSCR" | version | count       | entry x count     | crc32c   |
//	| 4 B    | 1 B = 1 | uint32 (BE) |                   | uint32   |
//	+--------+---------+-------------+-------------------+----------+
//	crc32c (Castagnoli, big endian) covers every byte before it.
//
//	entry:
//	+--------+-----------+------------+--------+------------+------------+
//	| user   | mechanism | iterations | salt   | stored key | server key |
//	| string | int8      | uint32     | bytes  | bytes      | bytes      |
//	+--------+-----------+------------+--------+------------+------------+
//	string, bytes: uint16 (BE) length, then that many bytes. The keys are
//	as long as the mechanism's hash (32 or 64 bytes); iterations within
//	the mechanism's [MinIterations, MaxIterations].
const (
	credMagic      = "RSCR"
	credVersion    = 1
	credHeaderLen  = len(credMagic) + 1 + 4
	credTrailerLen = 4
	entryMinLen    = 2 + 1 + 4 + 2 + 2 + 2
	userMaxLen     = 32767
	saltMaxLen     = 1024
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func compareKeys(a, b Key) int {
	if c := strings.Compare(a.User, b.User); c != 0 {
		return c
	}
	return int(a.Mechanism) - int(b.Mechanism)
}

// validCredential checks one entry as Decode requires it.
func validCredential(k Key, c sasl.Credential) error {
	m := MechanismByCode(k.Mechanism)
	switch {
	case m == nil:
		return fmt.Errorf("unknown mechanism %d", k.Mechanism)
	case k.User == "" || len(k.User) > userMaxLen:
		return errors.New("bad user name length")
	case c.Iterations < m.MinIterations || c.Iterations > m.MaxIterations:
		return fmt.Errorf("iterations %d outside [%d, %d]", c.Iterations, m.MinIterations, m.MaxIterations)
	case len(c.Salt) == 0 || len(c.Salt) > saltMaxLen:
		return errors.New("bad salt length")
	case len(c.StoredKey) != hashLen(k.Mechanism) || len(c.ServerKey) != hashLen(k.Mechanism):
		return errors.New("bad key length")
	}
	return nil
}

func hashLen(code int8) int {
	if code == MechanismSHA512 {
		return 64
	}
	return 32
}

// EncodeCredentials returns the canonical encoding of set.
func EncodeCredentials(set map[Key]sasl.Credential) ([]byte, error) {
	keys := make([]Key, 0, len(set))
	size := credHeaderLen + credTrailerLen
	for k, c := range set {
		if err := validCredential(k, c); err != nil {
			return nil, fmt.Errorf("scram credentials: encode %s: %w", k.User, err)
		}
		keys = append(keys, k)
		size += entryMinLen + len(k.User) + len(c.Salt) + len(c.StoredKey) + len(c.ServerKey)
	}
	slices.SortFunc(keys, compareKeys)
	out := make([]byte, 0, size)
	out = append(out, credMagic...)
	out = append(out, credVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(len(keys)))
	for _, k := range keys {
		c := set[k]
		out = binary.BigEndian.AppendUint16(out, uint16(len(k.User)))
		out = append(out, k.User...)
		out = append(out, byte(k.Mechanism))
		out = binary.BigEndian.AppendUint32(out, uint32(c.Iterations))
		for _, b := range [...][]byte{c.Salt, c.StoredKey, c.ServerKey} {
			out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
			out = append(out, b...)
		}
	}
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli)), nil
}

// DecodeCredentials reads what EncodeCredentials wrote. It never panics,
// allocates in proportion to len(data), and refuses anything that is not
// a canonical encoding.
func DecodeCredentials(data []byte) (map[Key]sasl.Credential, error) {
	if len(data) < credHeaderLen+credTrailerLen {
		return nil, errors.New("scram credentials: decode: too short")
	}
	if string(data[:len(credMagic)]) != credMagic {
		return nil, errors.New("scram credentials: decode: bad magic")
	}
	body, trailer := data[:len(data)-credTrailerLen], data[len(data)-credTrailerLen:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(trailer) {
		return nil, errors.New("scram credentials: decode: checksum mismatch")
	}
	if v := data[len(credMagic)]; v != credVersion {
		return nil, fmt.Errorf("scram credentials: decode: unknown version %d", v)
	}
	count := binary.BigEndian.Uint32(data[len(credMagic)+1:])
	rest := body[credHeaderLen:]
	if uint64(count) > uint64(len(rest)/entryMinLen) {
		return nil, fmt.Errorf("scram credentials: decode: count %d does not fit in %d bytes", count, len(rest))
	}
	readBytes := func() ([]byte, bool) {
		if len(rest) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest)-2 < n {
			return nil, false
		}
		b := bytes.Clone(rest[2 : 2+n])
		rest = rest[2+n:]
		return b, true
	}
	out := make(map[Key]sasl.Credential, count)
	var prev Key
	for i := uint32(0); i < count; i++ {
		user, ok := readBytes()
		if !ok || len(rest) < 5 {
			return nil, fmt.Errorf("scram credentials: decode: entry %d truncated", i)
		}
		k := Key{User: string(user), Mechanism: int8(rest[0])}
		c := sasl.Credential{Iterations: int(binary.BigEndian.Uint32(rest[1:]))}
		rest = rest[5:]
		var ok1, ok2, ok3 bool
		c.Salt, ok1 = readBytes()
		c.StoredKey, ok2 = readBytes()
		c.ServerKey, ok3 = readBytes()
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("scram credentials: decode: entry %d truncated", i)
		}
		if err := validCredential(k, c); err != nil {
			return nil, fmt.Errorf("scram credentials: decode: entry %d: %w", i, err)
		}
		if i > 0 && compareKeys(prev, k) >= 0 {
			return nil, fmt.Errorf("scram credentials: decode: entry %d out of order", i)
		}
		prev = k
		out[k] = c
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("scram credentials: decode: %d trailing bytes", len(rest))
	}
	return out, nil
}
