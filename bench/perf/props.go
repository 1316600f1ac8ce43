// Package perf is the measuring core of ringbench: a producer, a consumer
// and an end-to-end latency run built on franz-go, with the flags, defaults
// and output format of Apache Kafka's kafka-producer-perf-test.sh and
// kafka-consumer-perf-test.sh, so a figure from ringbench and a figure from
// the Kafka tools mean the same thing. The harness (bench/harness) calls it
// in-process; cmd/ringbench wraps it in a command line.
package perf

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProducerSettings are the Java producer properties ringbench understands,
// with the Java client's defaults (Kafka 4.x), and how they map onto
// franz-go. Keys it does not map are kept in Ignored so the caller can say so.
type ProducerSettings struct {
	Bootstrap []string // bootstrap.servers
	ClientID  string   // client.id (perf tool default "perf-producer-client")
	// Acks is -1 (all), 0 or 1 (acks, default all).
	Acks int
	// Linger is linger.ms (Kafka 4.0 default 5 ms).
	Linger time.Duration
	// BatchBytes is batch.size (default 16384): franz-go's
	// ProducerBatchMaxBytes. Java sends a record larger than batch.size in
	// a batch of its own while franz-go would fail it, so Opts raises the
	// limit to fit the largest record (see Opts).
	BatchBytes int
	// Compression is compression.type: none, gzip, snappy, lz4, zstd
	// (Java default none; franz-go's default would be snappy).
	Compression string
	// Idempotent is the effective enable.idempotence: default true, turned
	// off silently when the user did not set it and asked for acks other
	// than all or more than 5 requests in flight (Java 3.2+ behaviour).
	Idempotent bool
	// MaxInFlight is max.in.flight.requests.per.connection (default 5).
	// franz-go honours it only without idempotence; idempotent producing
	// always allows 5 (the Java limit for idempotence too).
	MaxInFlight int
	// BufferMemory is buffer.memory (default 32 MiB): MaxBufferedBytes.
	BufferMemory int64
	// DeliveryTimeout is delivery.timeout.ms (default 120 s).
	DeliveryTimeout time.Duration
	// Retries is retries (default: unlimited, bounded by DeliveryTimeout).
	Retries int
	// TransactionalID is transactional.id: set, RunProduce produces in
	// transactions (ProduceConfig.TransactionDuration).
	TransactionalID string
	// Ignored lists keys given but not mapped (serializers, SSL, ...).
	Ignored []string
}

// silentKeys are Java-only keys that have no franz-go meaning and need no
// warning (the perf tool sets the serializers itself).
var silentKeys = []string{"key.serializer", "value.serializer", "partitioner.class", "interceptor.classes"}

// ParseProducerProps maps Java producer properties onto ProducerSettings,
// with Java's defaults and Java's validation errors for conflicting keys.
func ParseProducerProps(props map[string]string) (ProducerSettings, error) {
	s := ProducerSettings{
		ClientID:        "perf-producer-client",
		Acks:            -1,
		Linger:          5 * time.Millisecond,
		BatchBytes:      16384,
		Compression:     "none",
		MaxInFlight:     5,
		BufferMemory:    32 << 20,
		DeliveryTimeout: 120 * time.Second,
		Retries:         -1,
	}
	idempotenceSet := false
	idempotent := true
	retriesZero := false
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.TrimSpace(props[k])
		var err error
		switch k {
		case "bootstrap.servers":
			s.Bootstrap = splitList(v)
		case "client.id":
			s.ClientID = v
		case "acks":
			switch strings.ToLower(v) {
			case "all", "-1":
				s.Acks = -1
			case "0":
				s.Acks = 0
			case "1":
				s.Acks = 1
			default:
				err = fmt.Errorf("invalid value %s for configuration acks: String must be one of: all, -1, 0, 1", v)
			}
		case "linger.ms":
			var ms int64
			ms, err = parseInt(k, v, 0)
			s.Linger = time.Duration(ms) * time.Millisecond
		case "batch.size":
			var n int64
			n, err = parseInt(k, v, 0)
			s.BatchBytes = int(n)
		case "compression.type":
			switch strings.ToLower(v) {
			case "none", "gzip", "snappy", "lz4", "zstd":
				s.Compression = strings.ToLower(v)
			default:
				err = fmt.Errorf("invalid value %s for configuration compression.type: String must be one of: none, gzip, snappy, lz4, zstd", v)
			}
		case "enable.idempotence":
			idempotenceSet = true
			idempotent, err = strconv.ParseBool(v)
			if err != nil {
				err = fmt.Errorf("invalid value %s for configuration enable.idempotence: Expected value to be either true or false", v)
			}
		case "max.in.flight.requests.per.connection":
			var n int64
			n, err = parseInt(k, v, 1)
			s.MaxInFlight = int(n)
		case "buffer.memory":
			s.BufferMemory, err = parseInt(k, v, 0)
		case "delivery.timeout.ms":
			var ms int64
			ms, err = parseInt(k, v, 0)
			s.DeliveryTimeout = time.Duration(ms) * time.Millisecond
		case "retries":
			var n int64
			n, err = parseInt(k, v, 0)
			s.Retries = int(n)
			retriesZero = n == 0
		case "transactional.id":
			s.TransactionalID = v
		default:
			if !slices.Contains(silentKeys, k) {
				s.Ignored = append(s.Ignored, k)
			}
		}
		if err != nil {
			return ProducerSettings{}, err
		}
	}
	// Java: a transactional producer is idempotent, so the idempotence
	// rules below apply as if it had been asked for.
	if s.TransactionalID != "" {
		if idempotenceSet && !idempotent {
			return ProducerSettings{}, fmt.Errorf("cannot set a transactional.id without also enabling idempotence")
		}
		idempotent, idempotenceSet = true, true
	}
	conflict := s.Acks != -1 || s.MaxInFlight > 5 || retriesZero
	switch {
	case idempotenceSet && idempotent && s.Acks != -1:
		return ProducerSettings{}, fmt.Errorf("must set acks to all in order to use the idempotent producer; otherwise we cannot guarantee idempotence")
	case idempotenceSet && idempotent && s.MaxInFlight > 5:
		return ProducerSettings{}, fmt.Errorf("must set max.in.flight.requests.per.connection to at most 5 when using the idempotent producer")
	case idempotenceSet && idempotent && retriesZero:
		return ProducerSettings{}, fmt.Errorf("must set retries to non-zero when using the idempotent producer")
	case !idempotenceSet && conflict:
		idempotent = false
	}
	s.Idempotent = idempotent
	return s, nil
}

func parseInt(key, v string, minimum int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < minimum {
		return 0, fmt.Errorf("invalid value %s for configuration %s: expected an integer >= %d", v, key, minimum)
	}
	return n, nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// recordBatchOverhead is the record-batch header (61 bytes) plus a
// generous bound on one record's own framing (varints, headers count).
const recordBatchOverhead = 61 + 64

// Opts returns the franz-go options for these settings. largestRecord is
// the largest value the run will produce: the batch limit is raised to fit
// it, because Java puts an oversized record in a batch of its own where
// franz-go would fail it with MESSAGE_TOO_LARGE.
func (s ProducerSettings) Opts(largestRecord int) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.Bootstrap...),
		kgo.ClientID(s.ClientID),
		kgo.ProducerLinger(s.Linger),
		kgo.RecordDeliveryTimeout(s.DeliveryTimeout),
		// Java bounds buffering by bytes only; franz-go also counts
		// records (default 50,000), which would throttle small records
		// before buffer.memory does.
		kgo.MaxBufferedRecords(1 << 20),
		// The Java producer asks Metadata to auto-create the topic
		// (kafka-producer-perf-test.sh on a fresh broker works); franz-go
		// does not by default, so ringbench produce failed with
		// UNKNOWN_TOPIC_OR_PARTITION where Kafka's tool succeeds.
		kgo.AllowAutoTopicCreation(),
	}
	if s.BufferMemory > 0 {
		opts = append(opts, kgo.MaxBufferedBytes(int(s.BufferMemory)))
	}
	batch := max(s.BatchBytes, largestRecord+recordBatchOverhead)
	opts = append(opts, kgo.ProducerBatchMaxBytes(int32(batch)))
	switch s.Acks {
	case 0:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	case 1:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	if !s.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(s.MaxInFlight))
	}
	if s.Retries >= 0 {
		opts = append(opts, kgo.RecordRetries(s.Retries))
	}
	if s.TransactionalID != "" {
		opts = append(opts, kgo.TransactionalID(s.TransactionalID))
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec(s.Compression)))
	return opts
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// ReadProperties reads a Java .properties file: key=value or key:value
// lines, # and ! comments, surrounding blanks trimmed. Line continuations
// and escapes are not supported (client config files do not use them).
func ReadProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseProperties(f)
}

func parseProperties(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' || t[0] == '!' {
			continue
		}
		i := strings.IndexAny(t, "=:")
		if i < 0 {
			return nil, fmt.Errorf("line %d: %q is not key=value", line, t)
		}
		out[strings.TrimSpace(t[:i])] = strings.TrimSpace(t[i+1:])
	}
	return out, sc.Err()
}

// MergeProps returns the properties of the config file (if any) overridden
// by the key=value pairs, as kafka-producer-perf-test.sh does
// (--producer-props take precedence over --producer.config).
func MergeProps(configFile string, pairs []string) (map[string]string, error) {
	props := map[string]string{}
	if configFile != "" {
		p, err := ReadProperties(configFile)
		if err != nil {
			return nil, err
		}
		props = p
	}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.Contains(v, "=") {
			return nil, fmt.Errorf("invalid property: %s", kv)
		}
		props[k] = v
	}
	return props, nil
}
