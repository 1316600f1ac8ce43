package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ringbroker/ringbroker/bench/perf"
)

// argSet is a tiny parser for the Kafka tools' command lines: "--name
// value", "--name=value", boolean "--name", and argparse4j's nargs("+")
// (--producer-props k=v k=v ...: every following argument up to the next
// one starting with "--"). Go's flag package cannot express the last one.
type argSet struct {
	values map[string][]string
	bools  map[string]bool
}

// parseArgs splits args by the given flag names. multi names take one or
// more values, bools take none; every other name takes exactly one.
func parseArgs(args []string, known, multi, bools []string) (*argSet, error) {
	a := &argSet{values: map[string][]string{}, bools: map[string]bool{}}
	is := func(list []string, name string) bool {
		for _, n := range list {
			if n == name {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "--") {
			return nil, fmt.Errorf("unrecognized argument: %s", arg)
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		switch {
		case is(bools, name):
			if hasValue {
				return nil, fmt.Errorf("--%s takes no value", name)
			}
			a.bools[name] = true
		case is(multi, name):
			if hasValue {
				a.values[name] = append(a.values[name], value)
			}
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				i++
				a.values[name] = append(a.values[name], args[i])
			}
			if len(a.values[name]) == 0 {
				return nil, fmt.Errorf("argument --%s: expected at least one argument", name)
			}
		case is(known, name):
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("argument --%s: expected one argument", name)
				}
				i++
				value = args[i]
			}
			a.values[name] = []string{value}
		default:
			return nil, fmt.Errorf("unrecognized argument: %s", arg)
		}
	}
	return a, nil
}

func (a *argSet) str(name string) string {
	if v := a.values[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (a *argSet) has(name string) bool { return len(a.values[name]) > 0 || a.bools[name] }

func (a *argSet) int64(name string, def int64) (int64, error) {
	if !a.has(name) {
		return def, nil
	}
	n, err := strconv.ParseInt(a.str(name), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("argument --%s: could not convert '%s' to an integer", name, a.str(name))
	}
	return n, nil
}

func (a *argSet) float(name string, def float64) (float64, error) {
	if !a.has(name) {
		return def, nil
	}
	f, err := strconv.ParseFloat(a.str(name), 64)
	if err != nil {
		return 0, fmt.Errorf("argument --%s: could not convert '%s' to a number", name, a.str(name))
	}
	return f, nil
}

// produceArgs is a parsed `ringbench produce` command line.
type produceArgs struct {
	cfg      perf.ProduceConfig
	jsonPath string
}

// parseProduce maps kafka-producer-perf-test.sh's flags onto a
// ProduceConfig. Extensions: --bootstrap-server (Kafka 4.x tools also
// accept it; it sets bootstrap.servers unless the props do), --json FILE,
// --max-seconds N (time bound). --print-metrics is accepted and ignored;
// --warmup-records is refused.
func parseProduce(args []string) (produceArgs, error) {
	a, err := parseArgs(args,
		[]string{"topic", "num-records", "record-size", "payload-file", "payload-delimiter", "throughput",
			"producer.config", "bootstrap-server", "json", "max-seconds", "transactional-id",
			"transaction-duration-ms", "warmup-records"},
		[]string{"producer-props"},
		[]string{"print-metrics", "payload-monotonic"})
	if err != nil {
		return produceArgs{}, err
	}
	var p produceArgs
	for _, req := range []string{"topic", "num-records", "throughput"} {
		if !a.has(req) {
			return p, fmt.Errorf("argument --%s is required", req)
		}
	}
	if n, _ := a.int64("warmup-records", 0); n > 0 {
		return p, errors.New("--warmup-records is not supported by ringbench")
	}
	if a.has("payload-monotonic") {
		return p, errors.New("--payload-monotonic is not supported by ringbench")
	}
	p.cfg.Topic = a.str("topic")
	if p.cfg.NumRecords, err = a.int64("num-records", 0); err != nil {
		return p, err
	}
	if p.cfg.NumRecords <= 0 {
		return p, errors.New("--num-records should be greater than zero")
	}
	if p.cfg.Throughput, err = a.float("throughput", -1); err != nil {
		return p, err
	}
	switch {
	case a.has("record-size") && a.has("payload-file"):
		return p, errors.New("argument --payload-file: not allowed with argument --record-size")
	case a.has("record-size"):
		n, err := a.int64("record-size", 0)
		if err != nil {
			return p, err
		}
		if n <= 0 {
			return p, errors.New("--record-size should be greater than zero")
		}
		p.cfg.RecordSize = int(n)
	case a.has("payload-file"):
		delim := "\n"
		if a.has("payload-delimiter") && a.str("payload-delimiter") != `\n` {
			delim = a.str("payload-delimiter")
		}
		if p.cfg.Payloads, err = readPayloads(a.str("payload-file"), delim); err != nil {
			return p, err
		}
	default:
		return p, errors.New("one of the arguments --record-size --payload-file is required")
	}
	if !a.has("producer-props") && !a.has("producer.config") && !a.has("bootstrap-server") {
		return p, errors.New("either --producer-props or --producer.config must be specified")
	}
	props, err := perf.MergeProps(a.str("producer.config"), a.values["producer-props"])
	if err != nil {
		return p, err
	}
	// Transactions, as the Kafka tool: --transactional-id, a
	// transactional.id property or --transaction-duration-ms turns them on;
	// the id defaults to performance-producer-<random>, the duration to 3 s.
	if a.has("transaction-duration-ms") {
		ms, err := a.int64("transaction-duration-ms", 0)
		if err != nil {
			return p, err
		}
		if ms <= 0 {
			return p, errors.New("--transaction-duration-ms should be greater than zero")
		}
		p.cfg.TransactionDuration = time.Duration(ms) * time.Millisecond
	}
	if a.has("transactional-id") {
		props["transactional.id"] = a.str("transactional-id")
	} else if _, ok := props["transactional.id"]; !ok && a.has("transaction-duration-ms") {
		props["transactional.id"] = fmt.Sprintf("performance-producer-%016x", rand.Uint64())
	}
	if _, ok := props["bootstrap.servers"]; !ok && a.has("bootstrap-server") {
		props["bootstrap.servers"] = a.str("bootstrap-server")
	}
	if props["bootstrap.servers"] == "" {
		return p, errors.New("bootstrap.servers is not set (--producer-props bootstrap.servers=HOST:PORT)")
	}
	if p.cfg.Producer, err = perf.ParseProducerProps(props); err != nil {
		return p, err
	}
	secs, err := a.float("max-seconds", 0)
	if err != nil {
		return p, err
	}
	p.cfg.MaxDuration = time.Duration(secs * float64(time.Second))
	p.jsonPath = a.str("json")
	return p, nil
}

// readPayloads splits a payload file by delim, as the Kafka tool does.
func readPayloads(path, delim string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return nil, errors.New("file does not exist or empty file provided")
	}
	var out [][]byte
	for _, s := range strings.Split(string(b), delim) {
		if s != "" {
			out = append(out, []byte(s))
		}
	}
	return out, nil
}

// consumeArgs is a parsed `ringbench consume` command line.
type consumeArgs struct {
	cfg      perf.ConsumeConfig
	jsonPath string
}

// parseConsume maps kafka-consumer-perf-test.sh's flags onto a
// ConsumeConfig. Extensions: --no-group (consume all partitions without a
// group), --json FILE, --max-seconds N.
func parseConsume(args []string) (consumeArgs, error) {
	a, err := parseArgs(args,
		[]string{"bootstrap-server", "topic", "group", "fetch-size", "socket-buffer-size", "consumer.config",
			"timeout", "messages", "reporting-interval", "date-format", "json", "max-seconds"},
		nil,
		[]string{"from-latest", "print-metrics", "show-detailed-stats", "hide-header", "no-group"})
	if err != nil {
		return consumeArgs{}, err
	}
	var c consumeArgs
	if !a.has("messages") {
		return c, errors.New("missing required argument \"[messages]\"")
	}
	if !a.has("topic") {
		return c, errors.New("exactly one of the following arguments is required: [topic, include]")
	}
	props := map[string]string{}
	if a.has("consumer.config") {
		if props, err = perf.ReadProperties(a.str("consumer.config")); err != nil {
			return c, err
		}
	}
	if a.has("bootstrap-server") {
		props["bootstrap.servers"] = a.str("bootstrap-server")
	}
	if props["bootstrap.servers"] == "" {
		return c, errors.New("missing required argument \"[bootstrap-server]\"")
	}
	c.cfg.Bootstrap = strings.Split(props["bootstrap.servers"], ",")
	c.cfg.ClientID = props["client.id"]
	switch lvl := props["isolation.level"]; lvl {
	case "", "read_uncommitted":
	case "read_committed":
		c.cfg.ReadCommitted = true
	default:
		return c, fmt.Errorf("invalid value %s for configuration isolation.level: string must be one of: read_committed, read_uncommitted", lvl)
	}
	c.cfg.Topic = a.str("topic")
	if c.cfg.Messages, err = a.int64("messages", 0); err != nil {
		return c, err
	}
	fetch, err := a.int64("fetch-size", 1<<20)
	if err != nil {
		return c, err
	}
	c.cfg.FetchSize = int32(fetch)
	timeoutMs, err := a.int64("timeout", 10000)
	if err != nil {
		return c, err
	}
	c.cfg.Timeout = time.Duration(timeoutMs) * time.Millisecond
	reportMs, err := a.int64("reporting-interval", 5000)
	if err != nil {
		return c, err
	}
	if reportMs <= 0 {
		return c, errors.New("reporting interval must be greater than 0")
	}
	c.cfg.ReportInterval = time.Duration(reportMs) * time.Millisecond
	switch {
	case a.bools["no-group"]:
	case a.has("group"):
		c.cfg.Group = a.str("group")
	case props["group.id"] != "":
		c.cfg.Group = props["group.id"]
	default:
		c.cfg.Group = fmt.Sprintf("perf-consumer-%d", time.Now().UnixNano()%100000)
	}
	c.cfg.FromLatest = a.bools["from-latest"]
	c.cfg.Detailed = a.bools["show-detailed-stats"]
	c.cfg.HideHeader = a.bools["hide-header"]
	c.cfg.DateFormat = a.str("date-format")
	secs, err := a.float("max-seconds", 0)
	if err != nil {
		return c, err
	}
	c.cfg.MaxDuration = time.Duration(secs * float64(time.Second))
	c.jsonPath = a.str("json")
	return c, nil
}

// e2eArgs is a parsed `ringbench e2e` command line.
type e2eArgs struct {
	cfg      perf.E2EConfig
	jsonPath string
}

// parseE2E parses `ringbench e2e`: --bootstrap-server, --topic,
// --record-size (default 1024), --rate-mb MB/s or --rate records/s,
// --seconds (default 10), --producer-props / --producer.config (linger.ms
// defaults to 0 here, as Kafka's EndToEndLatency tool sets it), --json.
func parseE2E(args []string) (e2eArgs, error) {
	a, err := parseArgs(args,
		[]string{"bootstrap-server", "topic", "record-size", "rate", "rate-mb", "seconds", "producer.config", "json", "num-records"},
		[]string{"producer-props"}, nil)
	if err != nil {
		return e2eArgs{}, err
	}
	var e e2eArgs
	for _, req := range []string{"bootstrap-server", "topic"} {
		if !a.has(req) {
			return e, fmt.Errorf("argument --%s is required", req)
		}
	}
	props, err := perf.MergeProps(a.str("producer.config"), a.values["producer-props"])
	if err != nil {
		return e, err
	}
	props["bootstrap.servers"] = a.str("bootstrap-server")
	if _, ok := props["linger.ms"]; !ok {
		props["linger.ms"] = "0"
	}
	if e.cfg.Producer, err = perf.ParseProducerProps(props); err != nil {
		return e, err
	}
	e.cfg.Bootstrap = e.cfg.Producer.Bootstrap
	e.cfg.Topic = a.str("topic")
	size, err := a.int64("record-size", 1024)
	if err != nil {
		return e, err
	}
	e.cfg.RecordSize = int(size)
	rate, err := a.float("rate", 0)
	if err != nil {
		return e, err
	}
	rateMB, err := a.float("rate-mb", 0)
	if err != nil {
		return e, err
	}
	switch {
	case rate > 0 && rateMB > 0:
		return e, errors.New("give --rate or --rate-mb, not both")
	case rateMB > 0:
		rate = rateMB * 1024 * 1024 / float64(size)
	case rate <= 0:
		return e, errors.New("--rate (records/s) or --rate-mb (MB/s) is required")
	}
	e.cfg.Rate = rate
	secs, err := a.float("seconds", 10)
	if err != nil {
		return e, err
	}
	e.cfg.Duration = time.Duration(secs * float64(time.Second))
	if e.cfg.MaxRecords, err = a.int64("num-records", 0); err != nil {
		return e, err
	}
	e.jsonPath = a.str("json")
	return e, nil
}

// topicArgs is a parsed `ringbench topic` command line.
type topicArgs struct {
	bootstrap   []string
	topic       string
	partitions  int32
	configs     map[string]string
	ifNotExists bool
}

// parseTopic parses `ringbench topic`, a subset of kafka-topics.sh
// --create: --bootstrap-server, --topic, --partitions, --config k=v
// (repeatable, or several after one --config), --if-not-exists.
func parseTopic(args []string) (topicArgs, error) {
	a, err := parseArgs(args, []string{"bootstrap-server", "topic", "partitions", "replication-factor"},
		[]string{"config"}, []string{"if-not-exists", "create"})
	if err != nil {
		return topicArgs{}, err
	}
	var t topicArgs
	for _, req := range []string{"bootstrap-server", "topic"} {
		if !a.has(req) {
			return t, fmt.Errorf("argument --%s is required", req)
		}
	}
	if rf, _ := a.int64("replication-factor", 1); rf != 1 {
		return t, errors.New("--replication-factor: only 1 is supported")
	}
	t.bootstrap = strings.Split(a.str("bootstrap-server"), ",")
	t.topic = a.str("topic")
	n, err := a.int64("partitions", 1)
	if err != nil || n <= 0 {
		return t, errors.New("--partitions must be a positive integer")
	}
	t.partitions = int32(n)
	t.ifNotExists = a.bools["if-not-exists"]
	for _, kv := range a.values["config"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return t, fmt.Errorf("--config %q: want key=value", kv)
		}
		if t.configs == nil {
			t.configs = map[string]string{}
		}
		t.configs[k] = v
	}
	return t, nil
}
