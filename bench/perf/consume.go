package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Output of Apache Kafka's ConsumerPerformance (tools/.../
// ConsumerPerformance.java): the header, the final summary line and the
// --show-detailed-stats progress line, reproduced verbatim.
const (
	consumeHeader         = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
	consumeDetailedHeader = "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
	consumeTotalFormat    = "%s, %s, %.4f, %.4f, %d, %.4f, %d, %d, %.4f, %.4f\n"
	consumeProgressFormat = "%s, %d, %.4f, %.4f, %d, %.4f, %d, %d, %.4f, %.4f\n"
	consumeTimeoutFormat  = "WARNING: Exiting before consuming the expected number of messages: timeout (%d ms) exceeded. You can use the --timeout option to increase the timeout.\n"
)

// ConsumeConfig is one kafka-consumer-perf-test-style run.
type ConsumeConfig struct {
	Bootstrap []string
	Topic     string
	Messages  int64
	// Group is the consumer group; empty consumes every partition directly
	// without a group (not a Kafka tool mode: for brokers without a group
	// coordinator, and to measure fetch alone).
	Group string
	// FetchSize is max.partition.fetch.bytes (--fetch-size, default 1 MiB).
	FetchSize int32
	// Timeout is the longest wait between returned records (--timeout,
	// default 10 s).
	Timeout    time.Duration
	FromLatest bool
	ClientID   string
	// ReportInterval and Detailed are --reporting-interval and
	// --show-detailed-stats.
	ReportInterval time.Duration
	Detailed       bool
	HideHeader     bool
	// DateFormat is a java.text.SimpleDateFormat pattern (default
	// "yyyy-MM-dd HH:mm:ss:SSS").
	DateFormat string
	// ReadCommitted is isolation.level=read_committed (consumer.config):
	// fetch up to the last stable offset, aborted transactions dropped.
	ReadCommitted bool
	// MaxDuration bounds the whole run (0: none). Not a Kafka tool flag.
	MaxDuration time.Duration
	Out         io.Writer
}

// ConsumeResult is what a consume run measured (the Kafka tool's columns).
type ConsumeResult struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	MB            float64 `json:"mb"`
	MBPerSec      float64 `json:"mb_per_sec"`
	RecordsPerSec float64 `json:"records_per_sec"`
	RebalanceMs   int64   `json:"rebalance_time_ms"`
	FetchMs       int64   `json:"fetch_time_ms"`
	FetchMBPerSec float64 `json:"fetch_mb_per_sec"`
	FetchRecsPerS float64 `json:"fetch_records_per_sec"`
	TimedOut      bool    `json:"timed_out"`
	FirstError    string  `json:"first_error,omitempty"`
}

// javaDateFormat turns the SimpleDateFormat letters the Kafka tool's users
// pass into a Go layout. Letters not listed are copied as they are.
func javaDateFormat(f string) string {
	if f == "" {
		f = "yyyy-MM-dd HH:mm:ss:SSS"
	}
	r := strings.NewReplacer("yyyy", "2006", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05", "SSS", millisMark, "Z", "-0700")
	return r.Replace(f)
}

// millisMark stands for SSS in a layout: Go formats fractional seconds only
// after '.' or ',', and Kafka's default pattern puts them after ':'.
const millisMark = "@@@"

// formatDate formats t with a layout from javaDateFormat.
func formatDate(t time.Time, layout string) string {
	return strings.ReplaceAll(t.Format(layout), millisMark, fmt.Sprintf("%03d", t.Nanosecond()/1e6))
}

// RunConsume consumes cfg.Messages records (or until no record arrived for
// cfg.Timeout, MaxDuration or ctx ends) and prints the Kafka tool's summary.
func RunConsume(ctx context.Context, cfg ConsumeConfig) (ConsumeResult, error) {
	if cfg.Messages <= 0 {
		return ConsumeResult{}, errors.New("--messages is required and must be positive")
	}
	if cfg.FetchSize <= 0 {
		cfg.FetchSize = 1 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = 5 * time.Second
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "perf-consumer-client"
	}
	layout := javaDateFormat(cfg.DateFormat)
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	if !cfg.HideHeader {
		if cfg.Detailed {
			io.WriteString(out, consumeDetailedHeader)
		} else {
			io.WriteString(out, consumeHeader)
		}
	}
	if cfg.MaxDuration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.MaxDuration)
		defer cancel()
	}

	start := time.Now()
	joined := make(chan time.Time, 1)
	reset := kgo.NewOffset().AtStart()
	if cfg.FromLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Bootstrap...),
		kgo.ClientID(cfg.ClientID),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(reset),
		kgo.FetchMaxPartitionBytes(cfg.FetchSize),
		kgo.FetchMaxBytes(max(cfg.FetchSize, 50<<20)),
		kgo.DisableFetchCRCValidation(), // the Kafka tool sets check.crcs=false
	}
	if cfg.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if cfg.Group != "" {
		opts = append(opts, kgo.ConsumerGroup(cfg.Group),
			kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
				select {
				case joined <- time.Now():
				default:
				}
			}))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return ConsumeResult{}, err
	}
	defer closeBounded(cl)

	var (
		res                     ConsumeResult
		lastRecord              = time.Now()
		lastReport              = start
		lastBytes, lastMessages int64
		joinMs                  int64
	)
	for res.Records < cfg.Messages {
		now := time.Now()
		if now.Sub(lastRecord) > cfg.Timeout {
			res.TimedOut = true
			fmt.Fprintf(out, consumeTimeoutFormat, cfg.Timeout.Milliseconds())
			break
		}
		pollCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			break
		}
		select {
		case t := <-joined:
			joinMs += t.Sub(start).Milliseconds()
		default:
		}
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && res.FirstError == "" {
				res.FirstError = err.Error()
			}
		})
		now = time.Now()
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			res.Records++
			res.Bytes += int64(len(r.Key) + len(r.Value))
		})
		if n > 0 {
			lastRecord = now
		}
		// Like the Kafka tool, report only from inside the record loop:
		// an idle consumer prints nothing.
		if n > 0 && cfg.Detailed && now.Sub(lastReport) >= cfg.ReportInterval {
			printConsumeProgress(out, layout, res, lastBytes, lastMessages, lastReport, now)
			lastReport, lastBytes, lastMessages = now, res.Bytes, res.Records
		}
	}
	end := time.Now()
	elapsed := end.Sub(start)
	res.Seconds = elapsed.Seconds()
	res.MB = float64(res.Bytes) / mib
	res.MBPerSec = res.MB / seconds(elapsed)
	res.RecordsPerSec = float64(res.Records) / seconds(elapsed)
	res.RebalanceMs = joinMs
	res.FetchMs = elapsed.Milliseconds() - joinMs
	fetchSec := max(float64(res.FetchMs)/1000, 0.001)
	res.FetchMBPerSec = res.MB / fetchSec
	res.FetchRecsPerS = float64(res.Records) / fetchSec
	if !cfg.Detailed {
		fmt.Fprintf(out, consumeTotalFormat, formatDate(start, layout), formatDate(end, layout), res.MB, res.MBPerSec,
			res.Records, res.RecordsPerSec, res.RebalanceMs, res.FetchMs, res.FetchMBPerSec, res.FetchRecsPerS)
	}
	if res.Records == 0 {
		if res.FirstError != "" {
			return res, fmt.Errorf("no record consumed: %s", res.FirstError)
		}
		return res, errors.New("no record consumed")
	}
	return res, nil
}

func printConsumeProgress(out io.Writer, layout string, res ConsumeResult, lastBytes, lastMessages int64, from, now time.Time) {
	elapsedMs := float64(now.Sub(from).Milliseconds())
	if elapsedMs <= 0 {
		elapsedMs = 1
	}
	intervalMB := float64(res.Bytes-lastBytes) / mib
	intervalMsgs := float64(res.Records - lastMessages)
	fmt.Fprintf(out, consumeProgressFormat, formatDate(now, layout), 0, float64(res.Bytes)/mib,
		1000*intervalMB/elapsedMs, res.Records, 1000*intervalMsgs/elapsedMs,
		0, int64(elapsedMs), 1000*intervalMB/elapsedMs, 1000*intervalMsgs/elapsedMs)
}
