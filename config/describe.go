package config

import (
	"sort"
	"strings"
)

// DescribeConfigs answers, derived from the key table with Apache Kafka's
// rules (kafka.server.ConfigHelper and DynamicBrokerConfig):
//
//   - A key's broker synonyms are the keys that set the same value, highest
//     precedence first: log.retention.ms, log.retention.minutes,
//     log.retention.hours; log.roll.ms, log.roll.hours; any other key alone.
//   - For one of them, the synonym list holds every synonym server.properties
//     set (STATIC_BROKER_CONFIG, the value as written), then every synonym
//     with a non-null built-in default (DEFAULT_CONFIG), and then drops the
//     entries before the first one named for the key itself.
//   - A topic key's list is the topic's override (DYNAMIC_TOPIC_CONFIG)
//     followed by the list of its first broker synonym (retention.ms:
//     log.retention.ms's).
//   - An entry's source is its list's first; DEFAULT_CONFIG when empty.
//
// So, as in Kafka, log.retention.hours=1 alone makes retention.ms
// 3600000 with source DEFAULT_CONFIG and no synonyms (log.retention.ms has
// a null default and was not set, so the drop removes the hours entries),
// while the broker entry log.retention.hours shows STATIC_BROKER_CONFIG.
// ringbroker has no dynamic broker configs: every broker entry is
// read-only.
//
// Deliberate differences: a value given with --set is reported as
// STATIC_BROKER_CONFIG (it is a start-up setting, as server.properties is);
// an alias that lost to a higher-precedence one in the same file
// (log.retention.hours under log.retention.ms) is not listed among the
// synonyms.

// Source is where a described value comes from, numbered as DescribeConfigs'
// config_source (kmsg.ConfigSource).
type Source int8

// The sources ringbroker reports.
const (
	SourceDynamicTopic  Source = 1 // DYNAMIC_TOPIC_CONFIG: the topic's override
	SourceDynamicBroker Source = 2 // DYNAMIC_BROKER_CONFIG: set on this broker by IncrementalAlterConfigs
	SourceStaticBroker  Source = 4 // STATIC_BROKER_CONFIG: server.properties or --set
	SourceDefault       Source = 5 // DEFAULT_CONFIG: the built-in default
)

// Synonym is one source of a described value. Value nil is a null default.
type Synonym struct {
	Name   string
	Value  *string
	Source Source
}

// Described is one DescribeConfigs entry.
type Described struct {
	Name     string
	Value    *string // nil: no value (a null default)
	Source   Source
	Type     Type
	ReadOnly bool
	Doc      string
	Synonyms []Synonym // always filled; the caller drops them unless asked
}

// staticValue returns the value server.properties (or --set) gave key
// itself, as written.
func (c *Config) staticValue(key string) (string, bool) {
	sp := lookup(key)
	if sp == nil {
		return "", false
	}
	src, ok := c.src[sp.canonical()]
	if !ok || src.isDefault() || src.key != key {
		return "", false
	}
	return strings.TrimSpace(src.value), true
}

// synonymsOf lists keys' static settings, then their built-in defaults,
// from the first entry named self on (Kafka's dropWhile). A key without a
// spec (a Kafka key we do not take) has def as its default.
func (c *Config) synonymsOf(self string, keys []string, def string) []Synonym {
	var out []Synonym
	for _, k := range keys {
		if v, ok := c.staticValue(k); ok {
			out = append(out, Synonym{Name: k, Value: &v, Source: SourceStaticBroker})
		}
	}
	for _, k := range keys {
		v, ok := def, true
		if sp := lookup(k); sp != nil {
			v, ok = sp.kafkaDefault()
		}
		if ok {
			out = append(out, Synonym{Name: k, Value: &v, Source: SourceDefault})
		}
	}
	for len(out) > 0 && out[0].Name != self {
		out = out[1:]
	}
	return out
}

// brokerSynonyms are the keys that set sp's value, highest precedence
// first: a canonical key and its coarser-unit aliases (Kafka's
// DynamicBrokerConfig.brokerConfigSynonyms), else sp alone.
func brokerSynonyms(sp *spec) []string {
	if sp.canon != "" && !sp.scaled {
		return []string{sp.name}
	}
	group := []*spec{lookup(sp.canonical())}
	for j := range specs {
		if a := &specs[j]; a.scaled && a.canon == group[0].name {
			group = append(group, a)
		}
	}
	sort.SliceStable(group, func(i, j int) bool { return group[i].rank > group[j].rank })
	out := make([]string, len(group))
	for i, g := range group {
		out[i] = g.name
	}
	return out
}

func described(name string, value *string, typ Type, readOnly bool, doc string, syns []Synonym) Described {
	d := Described{Name: name, Value: value, Source: SourceDefault, Type: typ, ReadOnly: readOnly, Doc: doc, Synonyms: syns}
	if len(syns) > 0 {
		d.Source = syns[0].Source
	}
	return d
}

// DescribeTopic describes every topic key of a topic whose overrides are
// overrides, sorted by name.
func (c *Config) DescribeTopic(overrides map[string]string) []Described {
	var out []Described
	for i := range specs {
		sp := &specs[i]
		if !sp.topic() {
			continue
		}
		var syns []Synonym
		value, ok := overrides[sp.name]
		if ok {
			v := value
			syns = append(syns, Synonym{Name: sp.name, Value: &v, Source: SourceDynamicTopic})
		} else {
			value = c.topicDefault(sp)
		}
		if len(sp.synonyms) > 0 {
			syns = append(syns, c.synonymsOf(sp.synonyms[0], sp.synonyms, sp.def)...)
		}
		out = append(out, described(sp.name, &value, sp.typ, false, sp.doc, syns))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DescribeBroker describes every server.properties key (aliases included),
// and the Kafka broker keys that default topic keys ringbroker stores without
// taking the broker key (log.cleaner.*, log.preallocate, ...) with Kafka's
// default, sorted by name. All are read-only.
func (c *Config) DescribeBroker() []Described {
	var out []Described
	seen := map[string]bool{}
	for i := range specs {
		sp := &specs[i]
		if !sp.broker() {
			continue
		}
		seen[sp.name] = true
		keys := brokerSynonyms(sp)
		syns := c.synonymsOf(sp.name, keys, "")
		var value *string
		switch {
		case sp.sensitive: // Kafka answers a secret with no value
		case sp.get != nil:
			v := sp.get(c)
			value = &v
		case !sp.scaled: // a same-unit alias (broker.id, log.dir): the canonical key's value
			v := lookup(sp.canonical()).get(c)
			value = &v
		case len(syns) > 0:
			value = syns[0].Value
		}
		out = append(out, described(sp.name, value, sp.typ, true, sp.doc, syns))
	}
	for i := range specs {
		sp := &specs[i]
		if !sp.topic() {
			continue
		}
		for _, k := range sp.synonyms {
			if seen[k] || lookup(k) != nil {
				continue
			}
			seen[k] = true
			v := sp.def
			out = append(out, described(k, &v, sp.typ, true, "Kafka's broker default of topic key `"+sp.name+"`, which ringbroker stores but does not take in server.properties.",
				[]Synonym{{Name: k, Value: &v, Source: SourceDefault}}))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
