package quota

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Entity types, as Kafka's ClientQuotaEntity.
const (
	TypeUser     = "user"
	TypeClientID = "client-id"
	TypeIP       = "ip"
)

// Quota keys (Kafka's QuotaConfig).
const (
	KeyProducerByteRate       = "producer_byte_rate"
	KeyConsumerByteRate       = "consumer_byte_rate"
	KeyRequestPercentage      = "request_percentage"
	KeyControllerMutationRate = "controller_mutation_rate"
	KeyConnectionCreationRate = "connection_creation_rate"
)

// keyKind is how a key's value is checked: integral (Kafka's LONG or
// INT, with its bound) or any positive double.
type keyKind struct {
	integral bool
	max      float64
}

var clientKeys = map[string]keyKind{
	KeyProducerByteRate:       {integral: true, max: math.MaxInt64},
	KeyConsumerByteRate:       {integral: true, max: math.MaxInt64},
	KeyRequestPercentage:      {},
	KeyControllerMutationRate: {},
}

var ipKeys = map[string]keyKind{
	KeyConnectionCreationRate: {integral: true, max: math.MaxInt32},
}

// Name is one component of an entity: absent, the <default> entity
// (Kafka's null name) or a named one.
type Name struct {
	Present bool
	Default bool
	Value   string
}

// Named returns the component named v.
func Named(v string) Name { return Name{Present: true, Value: v} }

// DefaultName is the <default> component.
var DefaultName = Name{Present: true, Default: true}

// Ptr is the component as the wire carries it: nil for <default>.
func (n Name) Ptr() *string {
	if n.Default {
		return nil
	}
	v := n.Value
	return &v
}

func (n Name) String() string {
	if n.Default {
		return "<default>"
	}
	return n.Value
}

// Entity is a quota entity: user, client-id, (user, client-id) or ip.
type Entity struct {
	User     Name
	ClientID Name
	IP       Name
}

func (e Entity) String() string {
	s := ""
	for _, c := range e.Components() {
		if s != "" {
			s += ", "
		}
		s += c.Type + "=" + c.Name.String()
	}
	return "{" + s + "}"
}

// Component is one (type, name) pair of an entity.
type Component struct {
	Type string
	Name Name
}

// Components lists e's components in a fixed order (user, client-id, ip).
func (e Entity) Components() []Component {
	var out []Component
	if e.User.Present {
		out = append(out, Component{TypeUser, e.User})
	}
	if e.ClientID.Present {
		out = append(out, Component{TypeClientID, e.ClientID})
	}
	if e.IP.Present {
		out = append(out, Component{TypeIP, e.IP})
	}
	return out
}

func (e Entity) size() int { return len(e.Components()) }

// Error is a Kafka error code with its message.
type Error struct {
	Code    int16
	Message string
}

func (e *Error) Error() string { return e.Message }

func invalid(format string, args ...any) *Error {
	return &Error{Code: kerr.InvalidRequest.Code, Message: fmt.Sprintf(format, args...)}
}

// ParseEntity builds an entity from the wire's (type, name) pairs (a nil
// name is <default>), with Kafka's checks (ClientQuotaControlManager):
// empty, duplicate types, unknown types, empty names, and ip combined
// with user or client-id are INVALID_REQUEST.
func ParseEntity(types []string, names []*string) (Entity, *Error) {
	var e Entity
	if len(types) == 0 {
		return e, invalid("Invalid empty client quota entity")
	}
	for i, t := range types {
		var n *Name
		switch t {
		case TypeUser:
			n = &e.User
		case TypeClientID:
			n = &e.ClientID
		case TypeIP:
			n = &e.IP
		default:
			return Entity{}, invalid("Unhandled client quota entity type: %s", t)
		}
		if n.Present {
			return Entity{}, invalid("Invalid client quota entity, duplicate entity entry %s", t)
		}
		if names[i] == nil {
			*n = DefaultName
		} else {
			if *names[i] == "" {
				return Entity{}, invalid("Empty %s not supported", t)
			}
			*n = Named(*names[i])
		}
	}
	if e.IP.Present && (e.User.Present || e.ClientID.Present) {
		return Entity{}, invalid("Invalid quota entity combination, IP entity should not be combined with User or ClientId")
	}
	if e.IP.Present && !e.IP.Default && net.ParseIP(e.IP.Value) == nil {
		return Entity{}, invalid("%s is not a valid IP or resolvable host.", e.IP.Value)
	}
	return e, nil
}

// ValidateValue checks a value set on key of entity e (Kafka's
// validateQuotaKeyValue).
func ValidateValue(e Entity, key string, value float64) *Error {
	keys := clientKeys
	if e.IP.Present {
		keys = ipKeys
	}
	k, ok := keys[key]
	if !ok {
		return invalid("Invalid configuration key %s", key)
	}
	if !(value > 0) || math.IsInf(value, 0) {
		return invalid("Quota %s must be greater than 0", key)
	}
	if k.integral {
		if value > k.max {
			return invalid("Proposed value for %s is too large.", key)
		}
		if math.Abs(math.Mod(value, 1)) > 1e-6 {
			return invalid("%s cannot be a fractional value.", key)
		}
	}
	return nil
}

// Op is one alteration of one key: set Value, or remove the key.
type Op struct {
	Key    string
	Value  float64
	Remove bool
}

// Change is one applied alteration: Kafka's ClientQuotaRecord.
type Change struct {
	Entity Entity
	Key    string
	Value  float64
	Remove bool
}

// Set is an immutable set of quota configs: the values of each entity.
// The zero Set is empty. Methods that change it return a new Set.
type Set struct {
	m map[Entity]map[string]float64
}

// Values returns a copy of entity e's values.
func (s Set) Values(e Entity) map[string]float64 { return maps.Clone(s.m[e]) }

// Len is the number of entities with at least one value.
func (s Set) Len() int { return len(s.m) }

// Entities returns the entities with values, sorted.
func (s Set) Entities() []Entity {
	return slices.SortedFunc(maps.Keys(s.m), compareEntities)
}

func compareNames(a, b Name) int {
	return cmp.Or(boolCmp(a.Present, b.Present), boolCmp(!a.Default, !b.Default), cmp.Compare(a.Value, b.Value))
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func compareEntities(a, b Entity) int {
	return cmp.Or(compareNames(a.User, b.User), compareNames(a.ClientID, b.ClientID), compareNames(a.IP, b.IP))
}

// Apply returns s with the changes applied, in order.
func (s Set) Apply(changes ...Change) Set {
	if len(changes) == 0 {
		return s
	}
	next := make(map[Entity]map[string]float64, len(s.m)+len(changes))
	maps.Copy(next, s.m)
	copied := map[Entity]bool{}
	for _, c := range changes {
		vals := next[c.Entity]
		if !copied[c.Entity] {
			vals = maps.Clone(vals)
			if vals == nil {
				vals = map[string]float64{}
			}
			copied[c.Entity] = true
		}
		if c.Remove {
			delete(vals, c.Key)
		} else {
			vals[c.Key] = c.Value
		}
		if len(vals) == 0 {
			delete(next, c.Entity)
			delete(copied, c.Entity)
			continue
		}
		next[c.Entity] = vals
	}
	return Set{m: next}
}

// Changes returns the changes that rebuild s from an empty Set, sorted
// (a metadata snapshot's ClientQuotaRecords).
func (s Set) Changes() []Change {
	var out []Change
	for _, e := range s.Entities() {
		for _, k := range slices.Sorted(maps.Keys(s.m[e])) {
			out = append(out, Change{Entity: e, Key: k, Value: s.m[e][k]})
		}
	}
	return out
}

// Alteration is one entity's entry of AlterClientQuotas.
type Alteration struct {
	Types []string
	Names []*string
	Ops   []Op
}

// Alter validates alterations against s as Kafka's controller does
// (ClientQuotaControlManager.alterClientQuotas) and returns, per
// alteration, its entity (as parsed, zero on a parse error) and its error
// (nil: applied), and the changes to apply: one per key whose value
// changes; removing an absent key changes nothing. An alteration with any
// error has none of its ops applied; the others are.
func (s Set) Alter(alts []Alteration) ([]Entity, []*Error, []Change) {
	entities := make([]Entity, len(alts))
	errs := make([]*Error, len(alts))
	var changes []Change
	seen := map[Entity]int{}
	for i, a := range alts {
		e, err := ParseEntity(a.Types, a.Names)
		entities[i] = e
		if err != nil {
			errs[i] = err
			continue
		}
		if j, dup := seen[e]; dup {
			errs[i] = invalid("Ignoring duplicate entity %s", e)
			if errs[j] == nil {
				errs[j] = errs[i]
				changes = slices.DeleteFunc(changes, func(c Change) bool { return c.Entity == e })
			}
			continue
		}
		seen[e] = i
		keys := map[string]bool{}
		var mine []Change
		cur := s.m[e]
		for _, op := range a.Ops {
			if keys[op.Key] {
				err = invalid("Duplicate quota key %s not updating quota for this entity %s", op.Key, e)
				break
			}
			keys[op.Key] = true
			if op.Remove {
				if _, ok := cur[op.Key]; ok {
					mine = append(mine, Change{Entity: e, Key: op.Key, Remove: true})
				}
				continue
			}
			if err = ValidateValue(e, op.Key, op.Value); err != nil {
				break
			}
			if old, ok := cur[op.Key]; !ok || old != op.Value {
				mine = append(mine, Change{Entity: e, Key: op.Key, Value: op.Value})
			}
		}
		if err != nil {
			errs[i] = err
			continue
		}
		changes = append(changes, mine...)
	}
	return entities, errs, changes
}

// Match types of DescribeClientQuotas' filter components.
const (
	MatchExact     int8 = 0
	MatchDefault   int8 = 1
	MatchSpecified int8 = 2
)

// Filter is one component of DescribeClientQuotas' filter.
type Filter struct {
	Type      string
	MatchType int8
	Match     *string
}

// Entry is one described entity and its values.
type Entry struct {
	Entity Entity
	Values map[string]float64
}

// Describe answers DescribeClientQuotas as Kafka's ClientQuotasImage
// does: the entities that match every component (exact name, <default>,
// or any name of the type), and with strict only those with no other
// component; sorted. A bad filter is INVALID_REQUEST, an unknown entity
// type UNSUPPORTED_VERSION.
func (s Set) Describe(filters []Filter, strict bool) ([]Entry, *Error) {
	exact := map[string]Name{}
	typed := map[string]bool{}
	for _, f := range filters {
		if f.Type == "" {
			return nil, invalid("Invalid empty entity type.")
		}
		if _, ok := exact[f.Type]; ok || typed[f.Type] {
			return nil, invalid("Entity type %s cannot appear more than once in the filter.", f.Type)
		}
		if f.Type != TypeUser && f.Type != TypeClientID && f.Type != TypeIP {
			return nil, &Error{Code: kerr.UnsupportedVersion.Code, Message: "Unsupported entity type " + f.Type}
		}
		switch f.MatchType {
		case MatchExact:
			if f.Match == nil {
				return nil, invalid("Request specified MATCH_TYPE_EXACT, but set match string to null.")
			}
			exact[f.Type] = Named(*f.Match)
		case MatchDefault:
			if f.Match != nil {
				return nil, invalid("Request specified MATCH_TYPE_DEFAULT, but also specified a match string.")
			}
			exact[f.Type] = DefaultName
		case MatchSpecified:
			if f.Match != nil {
				return nil, invalid("Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.")
			}
			typed[f.Type] = true
		default:
			return nil, invalid("Unknown match type %d", f.MatchType)
		}
	}
	_, ipExact := exact[TypeIP]
	_, userExact := exact[TypeUser]
	_, clientExact := exact[TypeClientID]
	if (ipExact || typed[TypeIP]) && (userExact || typed[TypeUser] || clientExact || typed[TypeClientID]) {
		return nil, invalid("Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.")
	}
	var out []Entry
	for _, e := range s.Entities() {
		if strict && e.size() != len(exact)+len(typed) {
			continue
		}
		if matches(e, exact, typed) {
			out = append(out, Entry{Entity: e, Values: maps.Clone(s.m[e])})
		}
	}
	return out, nil
}

func component(e Entity, typ string) Name {
	switch typ {
	case TypeUser:
		return e.User
	case TypeClientID:
		return e.ClientID
	}
	return e.IP
}

func matches(e Entity, exact map[string]Name, typed map[string]bool) bool {
	for t, n := range exact {
		if component(e, t) != n {
			return false
		}
	}
	for t := range typed {
		if !component(e, t).Present {
			return false
		}
	}
	return true
}
