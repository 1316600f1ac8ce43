package config

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Client quotas and connection creation (issue 19): the quota window
// (Kafka's quota.window.num and quota.window.size.seconds, the samples
// every client quota rate is measured over) and max.connection.creation.rate.
// max.connections.per.ip.overrides is here too: the per-address limits.
// The quota values themselves are not here: they are set per user and
// client id with AlterClientQuotas (kafka-configs.sh --entity-type
// users/clients) and stored in the metadata log or the local store.

// QuotaConfig is the quota part of Config.
type QuotaConfig struct {
	// WindowNum is quota.window.num: the samples a quota rate keeps.
	WindowNum int
	// WindowSizeSeconds is quota.window.size.seconds: each sample's span.
	WindowSizeSeconds int
	// MaxConnectionCreationRate is max.connection.creation.rate: new
	// connections accepted per second, broker-wide (Kafka applies it per
	// listener; ringbroker's listeners share it).
	MaxConnectionCreationRate int
	// MaxConnectionsPerIPOverrides is max.connections.per.ip.overrides:
	// client IP -> its own max.connections.per.ip.
	MaxConnectionsPerIPOverrides map[string]int
}

var quotaSpecs = []spec{
	{name: "max.connections.per.ip.overrides", def: "", typ: TypeString,
		doc: "Comma-separated `ip:count` overrides of max.connections.per.ip for single client addresses, as Kafka's (IP addresses only: a host name is refused at start).",
		set: func(c *Config, v string) error {
			m := map[string]int{}
			for _, item := range splitList(v) {
				i := strings.LastIndexByte(item, ':')
				if i <= 0 {
					return fmt.Errorf("entry %q is not ip:count", item)
				}
				host := strings.Trim(strings.TrimSpace(item[:i]), "[]")
				ip := net.ParseIP(host)
				if ip == nil {
					return fmt.Errorf("entry %q: %q is not an IP address", item, host)
				}
				n, err := parseInt(strings.TrimSpace(item[i+1:]), 0, kafkaIntMax)
				if err != nil {
					return fmt.Errorf("entry %q: %w", item, err)
				}
				m[ip.String()] = int(n)
			}
			c.Quota.MaxConnectionsPerIPOverrides = m
			return nil
		},
		get: func(c *Config) string {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(c.Quota.MaxConnectionsPerIPOverrides)) {
				parts = append(parts, k+":"+strconv.Itoa(c.Quota.MaxConnectionsPerIPOverrides[k]))
			}
			return strings.Join(parts, ",")
		}},
	intSpec("quota.window.num", "11", 1, kafkaIntMax, "Samples a client quota rate (producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate) is measured over.", func(c *Config) *int { return &c.Quota.WindowNum }),
	intSpec("quota.window.size.seconds", "1", 1, kafkaIntMax, "Span of each client quota sample, seconds.", func(c *Config) *int { return &c.Quota.WindowSizeSeconds }),
	intSpec("max.connection.creation.rate", "2147483647", 0, kafkaIntMax, "New connections accepted per second, broker-wide; above it a connection is closed at accept. The ip entity's connection_creation_rate quota (AlterClientQuotas) limits one client address.", func(c *Config) *int { return &c.Quota.MaxConnectionCreationRate }),
}
