package metadata

import (
	"math"

	"github.com/ringbroker/ringbroker/proto"
	"github.com/ringbroker/ringbroker/quota"
)

// KeyClientQuota is ClientQuotaRecord's api key (Kafka's 14).
const KeyClientQuota APIKey = 14

// QuotaEntityData is one component of a ClientQuotaRecord's entity: its
// type (user, client-id, ip) and name (nil: <default>).
type QuotaEntityData struct {
	Type string
	Name *string
}

// ClientQuotaRecord sets (or, with Remove, deletes) one quota key of an
// entity: api key 14, version 0 (Kafka's ClientQuotaRecord).
type ClientQuotaRecord struct {
	Entity   []QuotaEntityData
	QuotaKey string // Kafka's "Key" field (Key is the Record method)
	Value    float64
	Remove   bool
}

func (*ClientQuotaRecord) Key() APIKey    { return KeyClientQuota }
func (*ClientQuotaRecord) Version() int16 { return 0 }

func (m *ClientQuotaRecord) encode(w *proto.Writer) {
	w.ArrayLen(len(m.Entity))
	for _, e := range m.Entity {
		w.String(e.Type)
		writeStringPtr(w, e.Name)
		w.Tags()
	}
	w.String(m.QuotaKey)
	w.Int64(int64(math.Float64bits(m.Value)))
	writeBool(w, m.Remove)
	w.Tags()
}

func (m *ClientQuotaRecord) decode(r *proto.Reader, _ int16) {
	m.Entity = nil
	// An entity component is at least 1+1+1 bytes.
	if n := arrayLen(r, 3, false); n > 0 {
		m.Entity = make([]QuotaEntityData, n)
		for i := range m.Entity {
			m.Entity[i].Type = readString(r)
			m.Entity[i].Name = readStringPtr(r)
			readTags(r, noTags)
		}
	}
	m.QuotaKey = readString(r)
	m.Value = math.Float64frombits(uint64(r.Int64()))
	m.Remove = readBool(r)
	readTags(r, noTags)
}

// QuotaChange is the quota.Change a record makes, checked as the
// controller checks an alteration (an entity or value it would refuse is
// an error here).
func (m *ClientQuotaRecord) QuotaChange() (quota.Change, error) {
	types := make([]string, len(m.Entity))
	names := make([]*string, len(m.Entity))
	for i, e := range m.Entity {
		types[i], names[i] = e.Type, e.Name
	}
	e, qerr := quota.ParseEntity(types, names)
	if qerr != nil {
		return quota.Change{}, qerr
	}
	if !m.Remove {
		if qerr := quota.ValidateValue(e, m.QuotaKey, m.Value); qerr != nil {
			return quota.Change{}, qerr
		}
	}
	return quota.Change{Entity: e, Key: m.QuotaKey, Value: m.Value, Remove: m.Remove}, nil
}

// QuotaRecord is the record of a quota change.
func QuotaRecord(c quota.Change) *ClientQuotaRecord {
	rec := &ClientQuotaRecord{QuotaKey: c.Key, Value: c.Value, Remove: c.Remove}
	if c.Remove {
		rec.Value = 0
	}
	for _, comp := range c.Entity.Components() {
		rec.Entity = append(rec.Entity, QuotaEntityData{Type: comp.Type, Name: comp.Name.Ptr()})
	}
	return rec
}
