package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestParseProduceKafkaFlags feeds command lines written for
// kafka-producer-perf-test.sh and checks what they map to.
func TestParseProduceKafkaFlags(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "producer.properties")
	os.WriteFile(cfgFile, []byte("bootstrap.servers=127.0.0.1:9092\nacks=1\ncompression.type=lz4\n"), 0o644)
	payloads := filepath.Join(dir, "payloads.txt")
	os.WriteFile(payloads, []byte("alpha\nbeta\ngamma\n"), 0o644)

	p, err := parseProduce(strings.Fields("--topic t --num-records 1000 --record-size 100 --throughput -1 " +
		"--producer-props bootstrap.servers=127.0.0.1:9092 acks=all enable.idempotence=true linger.ms=1 " +
		"batch.size=1048576 compression.type=zstd max.in.flight.requests.per.connection=5 --json out.json --max-seconds 2.5"))
	if err != nil {
		t.Fatal(err)
	}
	s := p.cfg.Producer
	if p.cfg.Topic != "t" || p.cfg.NumRecords != 1000 || p.cfg.RecordSize != 100 || p.cfg.Throughput != -1 ||
		s.Acks != -1 || !s.Idempotent || s.Linger != time.Millisecond || s.BatchBytes != 1<<20 ||
		s.Compression != "zstd" || s.MaxInFlight != 5 || p.jsonPath != "out.json" ||
		p.cfg.MaxDuration != 2500*time.Millisecond || s.Bootstrap[0] != "127.0.0.1:9092" {
		t.Fatalf("parsed %+v / %+v", p.cfg, s)
	}

	// --producer.config with --producer-props taking precedence.
	p, err = parseProduce([]string{"--topic", "t", "--num-records", "5", "--payload-file", payloads,
		"--throughput", "100", "--producer.config", cfgFile, "--producer-props", "acks=0"})
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.Producer.Acks != 0 || p.cfg.Producer.Compression != "lz4" || len(p.cfg.Payloads) != 3 || p.cfg.Throughput != 100 {
		t.Fatalf("parsed %+v", p.cfg)
	}

	// --key=value spelling and --bootstrap-server.
	p, err = parseProduce([]string{"--topic=t", "--num-records=5", "--record-size=1", "--throughput=-1", "--bootstrap-server=h:1"})
	if err != nil || p.cfg.Producer.Bootstrap[0] != "h:1" {
		t.Fatalf("parsed %+v err %v", p.cfg, err)
	}

	// Transactions as the Kafka tool: the id from the flag (over the
	// property) with the 3 s default duration, or a generated id when only
	// a duration is given.
	p, err = parseProduce(strings.Fields("--topic t --num-records 5 --record-size 1 --throughput 1 --producer-props bootstrap.servers=h:1 transactional.id=y --transactional-id x"))
	if err != nil || p.cfg.Producer.TransactionalID != "x" || p.cfg.TransactionDuration != 0 || !p.cfg.Producer.Idempotent {
		t.Fatalf("--transactional-id: %+v err %v", p.cfg, err)
	}
	p, err = parseProduce(strings.Fields("--topic t --num-records 5 --record-size 1 --throughput 1 --producer-props bootstrap.servers=h:1 --transaction-duration-ms 100"))
	if err != nil || !strings.HasPrefix(p.cfg.Producer.TransactionalID, "performance-producer-") || p.cfg.TransactionDuration != 100*time.Millisecond {
		t.Fatalf("--transaction-duration-ms: %+v err %v", p.cfg, err)
	}

	bad := map[string]string{
		"missing throughput":   "--topic t --num-records 5 --record-size 1 --producer-props bootstrap.servers=h:1",
		"both payload sources": "--topic t --num-records 5 --record-size 1 --payload-file x --throughput 1 --producer-props bootstrap.servers=h:1",
		"no props":             "--topic t --num-records 5 --record-size 1 --throughput 1",
		"zero records":         "--topic t --num-records 0 --record-size 1 --throughput 1 --producer-props bootstrap.servers=h:1",
		"bad prop":             "--topic t --num-records 5 --record-size 1 --throughput 1 --producer-props acks",
		"unknown flag":         "--topic t --bogus 1",
		"idempotent acks=1":    "--topic t --num-records 5 --record-size 1 --throughput 1 --producer-props bootstrap.servers=h:1 acks=1 enable.idempotence=true",
		"transaction duration": "--topic t --num-records 5 --record-size 1 --throughput 1 --producer-props bootstrap.servers=h:1 --transaction-duration-ms 0",
	}
	for name, line := range bad {
		if _, err := parseProduce(strings.Fields(line)); err == nil {
			t.Errorf("%s: accepted %q", name, line)
		}
	}
}

func TestParseConsumeKafkaFlags(t *testing.T) {
	c, err := parseConsume(strings.Fields("--bootstrap-server h:1 --topic t --messages 100 --group g --fetch-size 4194304 " +
		"--timeout 2000 --from-latest --show-detailed-stats --reporting-interval 1000 --hide-header"))
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Group != "g" || c.cfg.FetchSize != 4<<20 || c.cfg.Timeout != 2*time.Second || !c.cfg.FromLatest ||
		!c.cfg.Detailed || c.cfg.ReportInterval != time.Second || !c.cfg.HideHeader || c.cfg.Messages != 100 {
		t.Fatalf("parsed %+v", c.cfg)
	}
	c, err = parseConsume(strings.Fields("--bootstrap-server h:1 --topic t --messages 100"))
	if err != nil || !strings.HasPrefix(c.cfg.Group, "perf-consumer-") || c.cfg.FetchSize != 1<<20 {
		t.Fatalf("defaults %+v err %v", c.cfg, err)
	}
	c, err = parseConsume(strings.Fields("--bootstrap-server h:1 --topic t --messages 100 --no-group"))
	if err != nil || c.cfg.Group != "" {
		t.Fatalf("--no-group %+v err %v", c.cfg, err)
	}
	if _, err := parseConsume(strings.Fields("--bootstrap-server h:1 --topic t")); err == nil {
		t.Fatal("missing --messages accepted")
	}
}

func TestParseE2E(t *testing.T) {
	e, err := parseE2E(strings.Fields("--bootstrap-server h:1 --topic t --rate-mb 20 --seconds 3 --record-size 1024"))
	if err != nil {
		t.Fatal(err)
	}
	if e.cfg.Rate != 20480 || e.cfg.Duration != 3*time.Second || e.cfg.Producer.Linger != 0 || e.cfg.Producer.Acks != -1 {
		t.Fatalf("parsed %+v", e.cfg)
	}
	if _, err := parseE2E(strings.Fields("--bootstrap-server h:1 --topic t")); err == nil {
		t.Fatal("missing rate accepted")
	}
}

func TestParseTopic(t *testing.T) {
	tp, err := parseTopic(strings.Fields("--create --bootstrap-server h:1 --topic t --partitions 8 --config flush.messages=1 --config retention.ms=1000 --if-not-exists"))
	if err != nil {
		t.Fatal(err)
	}
	if tp.partitions != 8 || tp.configs["flush.messages"] != "1" || tp.configs["retention.ms"] != "1000" || !tp.ifNotExists {
		t.Fatalf("%+v", tp)
	}
	if _, err := parseTopic(strings.Fields("--bootstrap-server h:1 --topic t --replication-factor 3")); err == nil {
		t.Fatal("rf 3 accepted")
	}
}
