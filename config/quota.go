package config

// Client quotas and connection creation (issue 19): the quota window
// (Kafka's quota.window.num and quota.window.size.seconds, the samples
// every client quota rate is measured over) and max.connection.creation.rate.
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
}

var quotaSpecs = []spec{
	intSpec("quota.window.num", "11", 1, kafkaIntMax, "Samples a client quota rate (producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate) is measured over.", func(c *Config) *int { return &c.Quota.WindowNum }),
	intSpec("quota.window.size.seconds", "1", 1, kafkaIntMax, "Span of each client quota sample, seconds.", func(c *Config) *int { return &c.Quota.WindowSizeSeconds }),
	intSpec("max.connection.creation.rate", "2147483647", 0, kafkaIntMax, "New connections accepted per second, broker-wide; above it a connection is closed at accept. The ip entity's connection_creation_rate quota (AlterClientQuotas) limits one client address.", func(c *Config) *int { return &c.Quota.MaxConnectionCreationRate }),
}
