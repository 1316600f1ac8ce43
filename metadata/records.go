package metadata

import (
	"errors"
	"fmt"

	"github.com/ringbroker/ringbroker/proto"
)

// APIKey identifies a record type, as the "apiKey" of Kafka's metadata
// record schemas.
type APIKey uint16

// The record types this package knows, with Kafka's api keys.
const (
	KeyRegisterBroker   APIKey = 0
	KeyUnregisterBroker APIKey = 1
	KeyTopic            APIKey = 2
	KeyPartition        APIKey = 3
	KeyConfig           APIKey = 4
	KeyPartitionChange  APIKey = 5
	KeyFenceBroker      APIKey = 7
	KeyUnfenceBroker    APIKey = 8
	KeyRemoveTopic      APIKey = 9
	KeyFeatureLevel     APIKey = 12
	KeyProducerIDs      APIKey = 15
)

// FrameVersion is the only frame version Kafka writes and accepts
// (AbstractApiMessageSerde.DEFAULT_FRAME_VERSION).
const FrameVersion = 1

// ErrMalformed is wrapped by every error Decode returns for input that is
// not a record it knows.
var ErrMalformed = errors.New("metadata: malformed record")

// Record is one metadata record.
type Record interface {
	// Key is the record's api key.
	Key() APIKey
	// Version is the record version it encodes at.
	Version() int16
	encode(w *proto.Writer)
	decode(r *proto.Reader, version int16)
}

// UUID is a Kafka uuid (topic ids, incarnation ids, log dir ids).
type UUID = [16]byte

// Resource types of ConfigRecord, as Kafka's ConfigResource.Type.
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)

// NoLeaderChange is PartitionChangeRecord.Leader when the leader did not
// change; NoLeader is a Leader of none.
const (
	NoLeaderChange int32 = -2
	NoLeader       int32 = -1
)

// Endpoint is one listener of a registered broker.
type Endpoint struct {
	Name             string
	Host             string
	Port             uint16
	SecurityProtocol int16
}

// BrokerFeature is a feature range a broker supports.
type BrokerFeature struct {
	Name                string
	MinSupportedVersion int16
	MaxSupportedVersion int16
}

// RegisterBrokerRecord registers (or re-registers) a broker: Kafka's api
// key 0, versions 0-3.
type RegisterBrokerRecord struct {
	// Ver is the record version, 0-3; fields past it are not encoded.
	Ver                  int16
	BrokerID             int32
	IsMigratingZkBroker  bool // v2+
	IncarnationID        UUID
	BrokerEpoch          int64
	Endpoints            []Endpoint
	Features             []BrokerFeature
	Rack                 string // "" is null
	Fenced               bool
	InControlledShutdown bool   // v1+
	LogDirs              []UUID // v3+, tag 0
}

// UnregisterBrokerRecord removes a broker: api key 0, version 0.
type UnregisterBrokerRecord struct {
	BrokerID    int32
	BrokerEpoch int64
}

// TopicRecord creates a topic: api key 2.
type TopicRecord struct {
	Name    string
	TopicID UUID
}

// PartitionRecord creates (or replaces) a partition: api key 3, versions
// 0-2.
type PartitionRecord struct {
	// Ver is the record version, 0-2; fields past it are not encoded.
	Ver              int16
	PartitionID      int32
	TopicID          UUID
	Replicas         []int32
	ISR              []int32
	RemovingReplicas []int32
	AddingReplicas   []int32
	Leader           int32
	// LeaderRecoveryState is 1 while a leader elected uncleanly recovers,
	// 0 otherwise (tag 0).
	LeaderRecoveryState int8
	LeaderEpoch         int32
	PartitionEpoch      int32
	// Directories is the log directory of each replica, in Replicas'
	// order (v1+).
	Directories []UUID
	// EligibleLeaderReplicas and LastKnownELR are KIP-966's (v2+, tags 1
	// and 2, nil is null).
	EligibleLeaderReplicas []int32
	LastKnownELR           []int32
}

// ConfigRecord sets (Value non-nil) or deletes (Value nil) one config of
// a topic or a broker: api key 4.
type ConfigRecord struct {
	ResourceType int8
	ResourceName string
	Name         string
	Value        *string
}

// PartitionChangeRecord changes a partition: api key 5, versions 0-2.
// Every field after TopicID is tagged and means "unchanged" at its
// default: a nil array, Leader NoLeaderChange, LeaderRecoveryState -1.
//
// Version 1 adds Directories (tag 8), which this package skips (one log
// directory); version 2 adds KIP-966's eligible leader replicas (tags 6
// and 7). The controller writes version 2 only for a change that sets
// one of them, and version 0 otherwise, so that the records of a cluster
// that never shrinks an ISR below min.insync.replicas stay readable by a
// ringbroker that predates them; a version 0 record decodes as before
// (ELR unchanged).
type PartitionChangeRecord struct {
	// Ver is the record version, 0-2; fields past it are not encoded.
	Ver                    int16
	PartitionID            int32
	TopicID                UUID
	ISR                    []int32 // tag 0
	Leader                 int32   // tag 1
	Replicas               []int32 // tag 2
	RemovingReplicas       []int32 // tag 3
	AddingReplicas         []int32 // tag 4
	LeaderRecoveryState    int8    // tag 5
	EligibleLeaderReplicas []int32 // v2+, tag 6
	LastKnownELR           []int32 // v2+, tag 7
}

// NoRecoveryStateChange is PartitionChangeRecord.LeaderRecoveryState when
// it did not change.
const NoRecoveryStateChange int8 = -1

// FenceBrokerRecord fences a broker: api key 7.
type FenceBrokerRecord struct {
	ID    int32
	Epoch int64
}

// UnfenceBrokerRecord unfences a broker: api key 8.
type UnfenceBrokerRecord struct {
	ID    int32
	Epoch int64
}

// RemoveTopicRecord deletes a topic and its partitions: api key 9.
type RemoveTopicRecord struct {
	TopicID UUID
}

// FeatureLevelRecord sets a feature's finalized level: api key 12.
type FeatureLevelRecord struct {
	Name         string
	FeatureLevel int16
}

// ProducerIDsRecord records the end of the producer id block handed out:
// api key 15.
type ProducerIDsRecord struct {
	BrokerID       int32
	BrokerEpoch    int64
	ProducerIDsEnd int64
}

func (*RegisterBrokerRecord) Key() APIKey   { return KeyRegisterBroker }
func (*UnregisterBrokerRecord) Key() APIKey { return KeyUnregisterBroker }
func (*TopicRecord) Key() APIKey            { return KeyTopic }
func (*PartitionRecord) Key() APIKey        { return KeyPartition }
func (*ConfigRecord) Key() APIKey           { return KeyConfig }
func (*PartitionChangeRecord) Key() APIKey  { return KeyPartitionChange }
func (*FenceBrokerRecord) Key() APIKey      { return KeyFenceBroker }
func (*UnfenceBrokerRecord) Key() APIKey    { return KeyUnfenceBroker }
func (*RemoveTopicRecord) Key() APIKey      { return KeyRemoveTopic }
func (*FeatureLevelRecord) Key() APIKey     { return KeyFeatureLevel }
func (*ProducerIDsRecord) Key() APIKey      { return KeyProducerIDs }

func (r *RegisterBrokerRecord) Version() int16  { return r.Ver }
func (*UnregisterBrokerRecord) Version() int16  { return 0 }
func (*TopicRecord) Version() int16             { return 0 }
func (r *PartitionRecord) Version() int16       { return r.Ver }
func (*ConfigRecord) Version() int16            { return 0 }
func (r *PartitionChangeRecord) Version() int16 { return r.Ver }
func (*FenceBrokerRecord) Version() int16       { return 0 }
func (*UnfenceBrokerRecord) Version() int16     { return 0 }
func (*RemoveTopicRecord) Version() int16       { return 0 }
func (*FeatureLevelRecord) Version() int16      { return 0 }
func (*ProducerIDsRecord) Version() int16       { return 0 }

// newRecord returns an empty record for key at version, or nil when the
// key or the version is unknown.
func newRecord(key uint32, version uint32) Record {
	if key > 0xffff {
		return nil
	}
	switch {
	case APIKey(key) == KeyRegisterBroker && version <= 3:
		return &RegisterBrokerRecord{Ver: int16(version)}
	case APIKey(key) == KeyPartition && version <= 2:
		return &PartitionRecord{Ver: int16(version)}
	case APIKey(key) == KeyPartitionChange && version <= 2:
		return &PartitionChangeRecord{Ver: int16(version)}
	}
	if version != 0 {
		return nil
	}
	switch APIKey(key) {
	case KeyUnregisterBroker:
		return &UnregisterBrokerRecord{}
	case KeyTopic:
		return &TopicRecord{}
	case KeyConfig:
		return &ConfigRecord{}
	case KeyFenceBroker:
		return &FenceBrokerRecord{}
	case KeyUnfenceBroker:
		return &UnfenceBrokerRecord{}
	case KeyRemoveTopic:
		return &RemoveTopicRecord{}
	case KeyFeatureLevel:
		return &FeatureLevelRecord{}
	case KeyProducerIDs:
		return &ProducerIDsRecord{}
	case KeyClientQuota:
		return &ClientQuotaRecord{}
	}
	return newSecurityRecord(APIKey(key)) // security_records.go
}

// Encode appends rec in Kafka's metadata record framing to dst.
func Encode(dst []byte, rec Record) []byte {
	w := proto.Writer{B: dst, Flexible: true}
	w.Uvarint(FrameVersion)
	w.Uvarint(uint32(rec.Key()))
	w.Uvarint(uint32(uint16(rec.Version())))
	rec.encode(&w)
	return w.B
}

// Decode decodes one framed record that is exactly b. The record copies
// what it keeps: it does not alias b.
func Decode(b []byte) (Record, error) {
	r := proto.NewReader(b, true)
	frame := r.Uvarint()
	key := r.Uvarint()
	version := r.Uvarint()
	if !r.Ok() {
		return nil, fmt.Errorf("%w: short header", ErrMalformed)
	}
	if frame != FrameVersion {
		return nil, fmt.Errorf("%w: frame version %d", ErrMalformed, frame)
	}
	rec := newRecord(key, version)
	if rec == nil {
		return nil, fmt.Errorf("%w: unknown api key %d version %d", ErrMalformed, key, version)
	}
	rec.decode(&r, int16(version))
	if !r.Ok() {
		return nil, fmt.Errorf("%w: api key %d: body malformed at byte %d", ErrMalformed, key, r.Offset())
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: api key %d: %d trailing bytes", ErrMalformed, key, r.Len())
	}
	return rec, nil
}

// ---- primitives ----

func readUUID(r *proto.Reader) (u UUID) {
	copy(u[:], r.Span(16))
	return u
}

func readBool(r *proto.Reader) bool { return r.Int8() != 0 }

func writeBool(w *proto.Writer, v bool) {
	if v {
		w.Int8(1)
	} else {
		w.Int8(0)
	}
}

func readString(r *proto.Reader) string { return string(r.String()) }

// readNullableString reads a nullable string, null as "".
func readNullableString(r *proto.Reader) string {
	s, _ := r.NullableString()
	return string(s)
}

func readStringPtr(r *proto.Reader) *string {
	s, null := r.NullableString()
	if null || !r.Ok() {
		return nil
	}
	v := string(s)
	return &v
}

func writeStringPtr(w *proto.Writer, s *string) {
	if s == nil {
		w.Uvarint(0)
		return
	}
	w.String(*s)
}

// arrayLen reads a compact array count for elements of at least minElem
// bytes: -1 for null (a failure unless nullable), and a count the
// remaining input cannot hold fails.
func arrayLen(r *proto.Reader, minElem int, nullable bool) int {
	n := r.NullableArrayLen(minElem)
	if n < 0 && !nullable {
		r.Fail()
	}
	return n
}

// readInt32s reads an int32 array; a non-nullable empty array is nil, a
// nullable one is nil only when null.
func readInt32s(r *proto.Reader, nullable bool) []int32 {
	n := arrayLen(r, 4, nullable)
	if n < 0 || (n == 0 && !nullable) || !r.Ok() {
		return nil
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = r.Int32()
	}
	return out
}

// writeInt32s writes an int32 array; nil is null when nullable.
func writeInt32s(w *proto.Writer, v []int32, nullable bool) {
	if v == nil && nullable {
		w.ArrayLen(-1)
		return
	}
	w.ArrayLen(len(v))
	for _, x := range v {
		w.Int32(x)
	}
}

// readTags reads a tagged-field section, handing each field's bytes to
// known, which reads them from sub and reports whether the tag is one it
// knows; a known field must be read exactly, unknown ones are skipped.
func readTags(r *proto.Reader, known func(tag uint32, sub *proto.Reader) bool) {
	for n := r.Uvarint(); n > 0 && r.Ok(); n-- {
		tag := r.Uvarint()
		size := r.Uvarint()
		if size > uint32(r.Len()) {
			r.Fail()
			return
		}
		body := r.Span(int(size))
		if !r.Ok() {
			return
		}
		sub := proto.NewReader(body, true)
		if known(tag, &sub) && !sub.Complete() {
			r.Fail()
			return
		}
	}
}

// writeTag appends one tagged field whose body body appends.
func writeTag(w *proto.Writer, tag uint32, body func(w *proto.Writer)) {
	sub := proto.Writer{Flexible: true}
	body(&sub)
	w.Uvarint(tag)
	w.Uvarint(uint32(len(sub.B)))
	w.B = append(w.B, sub.B...)
}

func noTags(uint32, *proto.Reader) bool { return false }

// ---- records ----

func (m *RegisterBrokerRecord) encode(w *proto.Writer) {
	w.Int32(m.BrokerID)
	if m.Ver >= 2 {
		writeBool(w, m.IsMigratingZkBroker)
	}
	w.UUID(m.IncarnationID)
	w.Int64(m.BrokerEpoch)
	w.ArrayLen(len(m.Endpoints))
	for _, e := range m.Endpoints {
		w.String(e.Name)
		w.String(e.Host)
		w.Int16(int16(e.Port))
		w.Int16(e.SecurityProtocol)
		w.Tags()
	}
	w.ArrayLen(len(m.Features))
	for _, f := range m.Features {
		w.String(f.Name)
		w.Int16(f.MinSupportedVersion)
		w.Int16(f.MaxSupportedVersion)
		w.Tags()
	}
	w.NullableString(m.Rack)
	writeBool(w, m.Fenced)
	if m.Ver >= 1 {
		writeBool(w, m.InControlledShutdown)
	}
	if m.Ver >= 3 && len(m.LogDirs) > 0 {
		w.Uvarint(1)
		writeTag(w, 0, func(w *proto.Writer) {
			w.ArrayLen(len(m.LogDirs))
			for _, d := range m.LogDirs {
				w.UUID(d)
			}
		})
		return
	}
	w.Tags()
}

func (m *RegisterBrokerRecord) decode(r *proto.Reader, version int16) {
	m.Ver = version
	m.BrokerID = r.Int32()
	if version >= 2 {
		m.IsMigratingZkBroker = readBool(r)
	}
	m.IncarnationID = readUUID(r)
	m.BrokerEpoch = r.Int64()
	// An endpoint is at least 1+1+2+2+1 bytes, a feature 1+2+2+1.
	if n := arrayLen(r, 7, false); n > 0 {
		m.Endpoints = make([]Endpoint, n)
		for i := range m.Endpoints {
			e := &m.Endpoints[i]
			e.Name = readString(r)
			e.Host = readString(r)
			e.Port = uint16(r.Int16())
			e.SecurityProtocol = r.Int16()
			readTags(r, noTags)
		}
	}
	if n := arrayLen(r, 6, false); n > 0 {
		m.Features = make([]BrokerFeature, n)
		for i := range m.Features {
			f := &m.Features[i]
			f.Name = readString(r)
			f.MinSupportedVersion = r.Int16()
			f.MaxSupportedVersion = r.Int16()
			readTags(r, noTags)
		}
	}
	m.Rack = readNullableString(r)
	m.Fenced = readBool(r)
	if version >= 1 {
		m.InControlledShutdown = readBool(r)
	}
	readTags(r, func(tag uint32, sub *proto.Reader) bool {
		if tag != 0 || version < 3 {
			return false
		}
		m.LogDirs = nil
		if n := arrayLen(sub, 16, false); n > 0 {
			m.LogDirs = make([]UUID, n)
			for i := range m.LogDirs {
				m.LogDirs[i] = readUUID(sub)
			}
		}
		return true
	})
}

func (m *UnregisterBrokerRecord) encode(w *proto.Writer) {
	w.Int32(m.BrokerID)
	w.Int64(m.BrokerEpoch)
	w.Tags()
}

func (m *UnregisterBrokerRecord) decode(r *proto.Reader, _ int16) {
	m.BrokerID = r.Int32()
	m.BrokerEpoch = r.Int64()
	readTags(r, noTags)
}

func (m *TopicRecord) encode(w *proto.Writer) {
	w.String(m.Name)
	w.UUID(m.TopicID)
	w.Tags()
}

func (m *TopicRecord) decode(r *proto.Reader, _ int16) {
	m.Name = readString(r)
	m.TopicID = readUUID(r)
	readTags(r, noTags)
}

func (m *PartitionRecord) encode(w *proto.Writer) {
	w.Int32(m.PartitionID)
	w.UUID(m.TopicID)
	writeInt32s(w, m.Replicas, false)
	writeInt32s(w, m.ISR, false)
	writeInt32s(w, m.RemovingReplicas, false)
	writeInt32s(w, m.AddingReplicas, false)
	w.Int32(m.Leader)
	w.Int32(m.LeaderEpoch)
	w.Int32(m.PartitionEpoch)
	if m.Ver >= 1 {
		w.ArrayLen(len(m.Directories))
		for _, d := range m.Directories {
			w.UUID(d)
		}
	}
	elr := m.Ver >= 2 && m.EligibleLeaderReplicas != nil
	lastELR := m.Ver >= 2 && m.LastKnownELR != nil
	n := uint32(0)
	for _, has := range []bool{m.LeaderRecoveryState != 0, elr, lastELR} {
		if has {
			n++
		}
	}
	w.Uvarint(n)
	if m.LeaderRecoveryState != 0 {
		writeTag(w, 0, func(w *proto.Writer) { w.Int8(m.LeaderRecoveryState) })
	}
	if elr {
		writeTag(w, 1, func(w *proto.Writer) { writeInt32s(w, m.EligibleLeaderReplicas, true) })
	}
	if lastELR {
		writeTag(w, 2, func(w *proto.Writer) { writeInt32s(w, m.LastKnownELR, true) })
	}
}

func (m *PartitionRecord) decode(r *proto.Reader, version int16) {
	m.Ver = version
	m.PartitionID = r.Int32()
	m.TopicID = readUUID(r)
	m.Replicas = readInt32s(r, false)
	m.ISR = readInt32s(r, false)
	m.RemovingReplicas = readInt32s(r, false)
	m.AddingReplicas = readInt32s(r, false)
	m.Leader = r.Int32()
	m.LeaderEpoch = r.Int32()
	m.PartitionEpoch = r.Int32()
	m.Directories = nil
	if version >= 1 {
		if n := arrayLen(r, 16, false); n > 0 {
			m.Directories = make([]UUID, n)
			for i := range m.Directories {
				m.Directories[i] = readUUID(r)
			}
		}
	}
	m.LeaderRecoveryState = 0
	m.EligibleLeaderReplicas, m.LastKnownELR = nil, nil
	readTags(r, func(tag uint32, sub *proto.Reader) bool {
		switch {
		case tag == 0:
			m.LeaderRecoveryState = sub.Int8()
		case tag == 1 && version >= 2:
			m.EligibleLeaderReplicas = readInt32s(sub, true)
		case tag == 2 && version >= 2:
			m.LastKnownELR = readInt32s(sub, true)
		default:
			return false
		}
		return true
	})
}

func (m *ConfigRecord) encode(w *proto.Writer) {
	w.Int8(m.ResourceType)
	w.String(m.ResourceName)
	w.String(m.Name)
	writeStringPtr(w, m.Value)
	w.Tags()
}

func (m *ConfigRecord) decode(r *proto.Reader, _ int16) {
	m.ResourceType = r.Int8()
	m.ResourceName = readString(r)
	m.Name = readString(r)
	m.Value = readStringPtr(r)
	readTags(r, noTags)
}

func (m *PartitionChangeRecord) encode(w *proto.Writer) {
	w.Int32(m.PartitionID)
	w.UUID(m.TopicID)
	arrays := [...][]int32{0: m.ISR, 2: m.Replicas, 3: m.RemovingReplicas, 4: m.AddingReplicas,
		6: m.EligibleLeaderReplicas, 7: m.LastKnownELR}
	n := uint32(0)
	for tag := range uint32(len(arrays)) {
		if m.hasTag(tag) {
			n++
		}
	}
	w.Uvarint(n)
	for tag := range uint32(len(arrays)) { // ascending, as Kafka writes them
		if !m.hasTag(tag) {
			continue
		}
		switch tag {
		case 1:
			writeTag(w, tag, func(w *proto.Writer) { w.Int32(m.Leader) })
		case 5:
			writeTag(w, tag, func(w *proto.Writer) { w.Int8(m.LeaderRecoveryState) })
		default:
			writeTag(w, tag, func(w *proto.Writer) { writeInt32s(w, arrays[tag], true) })
		}
	}
}

// hasTag reports whether tagged field tag differs from its default.
func (m *PartitionChangeRecord) hasTag(tag uint32) bool {
	switch tag {
	case 0:
		return m.ISR != nil
	case 1:
		return m.Leader != NoLeaderChange
	case 2:
		return m.Replicas != nil
	case 3:
		return m.RemovingReplicas != nil
	case 4:
		return m.AddingReplicas != nil
	case 5:
		return m.LeaderRecoveryState != NoRecoveryStateChange
	case 6:
		return m.Ver >= 2 && m.EligibleLeaderReplicas != nil
	case 7:
		return m.Ver >= 2 && m.LastKnownELR != nil
	}
	return false
}

func (m *PartitionChangeRecord) decode(r *proto.Reader, version int16) {
	m.Ver = version
	m.PartitionID = r.Int32()
	m.TopicID = readUUID(r)
	m.ISR, m.Replicas, m.RemovingReplicas, m.AddingReplicas = nil, nil, nil, nil
	m.EligibleLeaderReplicas, m.LastKnownELR = nil, nil
	m.Leader = NoLeaderChange
	m.LeaderRecoveryState = NoRecoveryStateChange
	readTags(r, func(tag uint32, sub *proto.Reader) bool {
		switch tag {
		case 0:
			m.ISR = readInt32s(sub, true)
		case 1:
			m.Leader = sub.Int32()
		case 2:
			m.Replicas = readInt32s(sub, true)
		case 3:
			m.RemovingReplicas = readInt32s(sub, true)
		case 4:
			m.AddingReplicas = readInt32s(sub, true)
		case 5:
			m.LeaderRecoveryState = sub.Int8()
		case 6:
			if version < 2 {
				return false
			}
			m.EligibleLeaderReplicas = readInt32s(sub, true)
		case 7:
			if version < 2 {
				return false
			}
			m.LastKnownELR = readInt32s(sub, true)
		default:
			return false // Directories (tag 8, v1+) among them
		}
		return true
	})
}

func (m *FenceBrokerRecord) encode(w *proto.Writer) {
	w.Int32(m.ID)
	w.Int64(m.Epoch)
	w.Tags()
}

func (m *FenceBrokerRecord) decode(r *proto.Reader, _ int16) {
	m.ID = r.Int32()
	m.Epoch = r.Int64()
	readTags(r, noTags)
}

func (m *UnfenceBrokerRecord) encode(w *proto.Writer) {
	w.Int32(m.ID)
	w.Int64(m.Epoch)
	w.Tags()
}

func (m *UnfenceBrokerRecord) decode(r *proto.Reader, _ int16) {
	m.ID = r.Int32()
	m.Epoch = r.Int64()
	readTags(r, noTags)
}

func (m *RemoveTopicRecord) encode(w *proto.Writer) {
	w.UUID(m.TopicID)
	w.Tags()
}

func (m *RemoveTopicRecord) decode(r *proto.Reader, _ int16) {
	m.TopicID = readUUID(r)
	readTags(r, noTags)
}

func (m *FeatureLevelRecord) encode(w *proto.Writer) {
	w.String(m.Name)
	w.Int16(m.FeatureLevel)
	w.Tags()
}

func (m *FeatureLevelRecord) decode(r *proto.Reader, _ int16) {
	m.Name = readString(r)
	m.FeatureLevel = r.Int16()
	readTags(r, noTags)
}

func (m *ProducerIDsRecord) encode(w *proto.Writer) {
	w.Int32(m.BrokerID)
	w.Int64(m.BrokerEpoch)
	w.Int64(m.ProducerIDsEnd)
	w.Tags()
}

func (m *ProducerIDsRecord) decode(r *proto.Reader, _ int16) {
	m.BrokerID = r.Int32()
	m.BrokerEpoch = r.Int64()
	m.ProducerIDsEnd = r.Int64()
	readTags(r, noTags)
}
