// Command ringbench is a Kafka load generator built on franz-go whose
// produce and consume modes take the flags of Apache Kafka's
// kafka-producer-perf-test.sh and kafka-consumer-perf-test.sh and print
// their output format, so scripts and habits carry over:
//
//	ringbench produce --topic T --num-records N --record-size S --throughput -1 \
//	    --producer-props bootstrap.servers=127.0.0.1:9092 acks=all linger.ms=1 [--json out.json]
//	ringbench consume --bootstrap-server 127.0.0.1:9092 --topic T --messages N [--group G | --no-group]
//	ringbench topic --bootstrap-server 127.0.0.1:9092 --topic T --partitions 8 --config flush.messages=1
//	ringbench e2e --bootstrap-server 127.0.0.1:9092 --topic T --rate-mb 20 --seconds 10 [--record-size 1024]
//
// Every mode accepts --json FILE (all figures, machine-readable) and
// --max-seconds N (a time bound; not a Kafka flag).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ringbroker/ringbroker/bench/perf"
)

const usage = `usage: ringbench produce|consume|e2e|topic [flags]
  produce: kafka-producer-perf-test.sh flags (--topic --num-records --record-size|--payload-file
           --throughput --producer-props k=v ... --producer.config FILE) + --bootstrap-server --json --max-seconds
  consume: kafka-consumer-perf-test.sh flags (--bootstrap-server --topic --messages --group --fetch-size
           --timeout --from-latest --show-detailed-stats --reporting-interval --hide-header --date-format
           --consumer.config) + --no-group --json --max-seconds
  topic:   --bootstrap-server --topic [--partitions 1] [--config k=v ...] [--if-not-exists]
           (creates a topic, as kafka-topics.sh --create does)
  e2e:     --bootstrap-server --topic [--record-size 1024] --rate N | --rate-mb MB [--seconds 10]
           [--num-records N] [--producer-props k=v ...] [--json FILE]
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var (
		result   any
		jsonPath string
		err      error
	)
	switch args[0] {
	case "produce":
		var p produceArgs
		if p, err = parseProduce(args[1:]); err != nil {
			break
		}
		if len(p.cfg.Producer.Ignored) > 0 {
			fmt.Fprintf(stderr, "ringbench: producer properties not mapped to franz-go (ignored): %s\n",
				strings.Join(p.cfg.Producer.Ignored, ", "))
		}
		p.cfg.Out, p.cfg.Errors = stdout, stderr
		jsonPath = p.jsonPath
		var r perf.ProduceResult
		r, err = perf.RunProduce(ctx, p.cfg)
		result = map[string]any{"mode": "produce", "topic": p.cfg.Topic, "result": r}
	case "consume":
		var c consumeArgs
		if c, err = parseConsume(args[1:]); err != nil {
			break
		}
		c.cfg.Out = stdout
		jsonPath = c.jsonPath
		var r perf.ConsumeResult
		r, err = perf.RunConsume(ctx, c.cfg)
		result = map[string]any{"mode": "consume", "topic": c.cfg.Topic, "result": r}
	case "topic":
		var t topicArgs
		if t, err = parseTopic(args[1:]); err != nil {
			break
		}
		if err = perf.CreateTopic(ctx, t.bootstrap, t.topic, t.partitions, t.configs, t.ifNotExists); err == nil {
			fmt.Fprintf(stdout, "Created topic %s.\n", t.topic)
			return 0
		}
		fmt.Fprintln(stderr, "ringbench:", err)
		return 1
	case "e2e":
		var e e2eArgs
		if e, err = parseE2E(args[1:]); err != nil {
			break
		}
		e.cfg.Out = stdout
		jsonPath = e.jsonPath
		var r perf.E2EResult
		r, err = perf.RunE2E(ctx, e.cfg)
		result = map[string]any{"mode": "e2e", "topic": e.cfg.Topic, "rate_records_per_sec": e.cfg.Rate, "result": r}
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if result == nil && err != nil {
		fmt.Fprintln(stderr, "ringbench:", err)
		fmt.Fprint(stderr, usage)
		return 2
	}
	if jsonPath != "" {
		b, jerr := json.MarshalIndent(result, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(jsonPath, append(b, '\n'), 0o644)
		}
		if jerr != nil {
			fmt.Fprintln(stderr, "ringbench: --json:", jerr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "ringbench:", err)
		return 1
	}
	return 0
}
