// Command ringbrokerd is the ringbroker daemon: a Kafka-wire-compatible broker
// on io_uring.
//
//	ringbrokerd [--config FILE] [--set key=value ...] [--print-config]
//	ringbrokerd check-host [--json] [--config FILE]
//	ringbrokerd version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ringbroker/ringbroker/auth/pwenc"
	"github.com/ringbroker/ringbroker/broker"
	"github.com/ringbroker/ringbroker/cluster"
	"github.com/ringbroker/ringbroker/config"
	"github.com/ringbroker/ringbroker/internal/reqtrace"
	"github.com/ringbroker/ringbroker/metrics"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/tuning"
)

// shutdownGrace bounds how long SIGTERM waits for in-flight requests.
const shutdownGrace = 10 * time.Second

// usageText opens --help; the flags follow it.
const usageText = `ringbrokerd: a Kafka-compatible broker on io_uring

usage:
  ringbrokerd [--config FILE] [--set key=value ...] [--print-config]
                                   run the broker (built-in defaults without --config)
  ringbrokerd check-host [--json] [--config FILE]
                                   check this host's settings and exit (0 ok, 1 warnings, 2 fatal)
  ringbrokerd version              print the version and exit

flags:
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintln(stdout, version())
			return 0
		case "check-host":
			return checkHost(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("ringbrokerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "server.properties file (default: built-in defaults)")
	printConfig := fs.Bool("print-config", false, "print the effective config with each value's source and exit")
	var sets multiFlag
	fs.Var(&sets, "set", "override a config key: --set key=value (repeatable)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	for _, a := range args {
		if a == "-h" || a == "--h" || a == "-help" || a == "--help" { // asked for: stdout, success
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, warnings, err := loadConfig(*configPath, sets)
	if err != nil {
		fmt.Fprintln(stderr, "ringbrokerd:", err)
		return 2
	}
	if *printConfig {
		cfg.Print(stdout)
		return 0
	}
	logger := newLogger(stderr)
	defer logger.Sync()
	for _, w := range warnings {
		logger.Warn("config", zap.String("warning", w))
	}
	if err := serve(cfg, logger); err != nil {
		logger.Error("ringbrokerd stopped", zap.Error(err))
		return 1
	}
	return 0
}

func loadConfig(path string, sets []string) (*config.Config, []string, error) {
	cfg, warnings, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, nil, fmt.Errorf("--set %q: want key=value", kv)
		}
		if err := cfg.Set(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return nil, nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	return cfg, warnings, nil
}

func serve(cfg *config.Config, logger *zap.Logger) error {
	// Signals first: a SIGTERM that arrives while we start must drain, not
	// kill. SIGHUP is a termination too, as for Kafka's JVM (its shutdown
	// hooks run on HUP): the same drain and flush, never the default action
	// of dying with unflushed data (the terminal closed, a supervisor's HUP).
	// It does not reload the configuration.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)
	// Benchmarks only (docs/BENCHMARKS.md): RINGBROKER_REQTRACE=<file>
	// traces Produce requests and dumps them on SIGUSR1 and at the end.
	stopTrace := reqtrace.StartFromEnv(func(err error) { logger.Warn("request trace", zap.Error(err)) })
	defer stopTrace()

	report := tuning.Run(tuningOptions(cfg))
	report.Log(logger)
	if cfg.TuningStrict && report.HasFatal() {
		return errors.New("tuning.strict=true and the host check found a fatal problem")
	}

	m := metrics.New(metrics.Options{Rings: cfg.Rings(), TopicBytes: cfg.MetricsTopicBytesEnable,
		OnServeError: func(err error) { logger.Warn("metrics endpoint", zap.Error(err)) }})
	stopMetrics, err := m.Serve(cfg.MetricsListener, cfg.MetricsPprofEnable)
	if err != nil {
		return err // metrics.Serve names the key and the address
	}
	defer stopMetrics()

	dataDir := cfg.LogDirs[0]
	// Before the logs open (recovery, checkpoints): a refused start
	// touches nothing.
	if err := broker.CheckProducerIDFile(dataDir); err != nil {
		return err
	}
	if cfg.Clustered() && cfg.ClusterID == "" && (len(cfg.QuorumVoters) > 1 || cfg.DynamicQuorum()) {
		return errors.New("process.roles is set with several voters (or a dynamic quorum) but cluster.id is empty: give every node of the cluster the same cluster.id")
	}
	reg, err := broker.OpenRegistry(broker.RegistryOptions{
		LogDirs:   cfg.LogDirs,
		Config:    cfg,
		Logger:    logger.Named("log"),
		Stats:     m,
		NodeID:    cfg.NodeID,
		ClusterID: cfg.ClusterID,
		// Cluster mode: high watermarks apart from log ends, kept in
		// replication-offset-checkpoint across restarts.
		Replicated:                      cfg.Clustered(),
		HighWatermarkCheckpointInterval: time.Duration(cfg.ReplicaHighWatermarkCheckpointIntervalMs) * time.Millisecond,
	})
	if err != nil {
		return err
	}
	m.WatchLogDirs(reg.LogDirOnline) // ringbroker_log_dir_offline (broker/log_dir_failure.go)
	if c := reg.Cleaner(); c != nil {
		m.WatchCleaner(func() metrics.CleanerStats {
			s := c.Stats()
			return metrics.CleanerStats{BytesRead: s.BytesRead, BytesWritten: s.BytesWritten, LastCleanEnd: s.LastCleanEnd,
				LastRecopyRatio: s.LastRecopyRatio, MaxDirtyRatio: s.MaxDirtyRatio, MaxBufferUtilization: s.MaxBufferUtilization}
		})
	}
	// Retention, checkpoints and the log cleaner's threads (the registry
	// closes the cleaner before the logs).
	stopMaintenance := sync.OnceFunc(reg.StartMaintenance(time.Duration(cfg.LogRetentionCheckIntervalMs)*time.Millisecond, time.Duration(cfg.LogFlushOffsetCheckpointIntervalMs)*time.Millisecond))
	// closeLogs flushes and closes every partition (after maintenance
	// stopped): on the SIGTERM path explicitly, on error paths deferred.
	closeLogs := sync.OnceValue(func() error {
		stopMaintenance()
		return closeRegistry(reg, logger)
	})
	defer func() {
		if err := closeLogs(); err != nil {
			logger.Error("closing logs", zap.Error(err))
		}
	}()
	adv := cfg.AdvertisedListeners[0]
	var proxy *clusterProxy
	var clusterOpt broker.Cluster
	if cfg.Clustered() {
		proxy = newClusterProxy()
		clusterOpt = proxy
	}
	security, err := securityOptions(cfg)
	if err != nil {
		return err
	}
	// The TLS listeners' configurations first: the inter-broker clients
	// (replica fetchers, transaction markers) dial with them.
	tlsSet, err := tlsListeners(cfg, logger.Named("tls"))
	if err != nil {
		return err
	}
	defer tlsSet.stop()
	interBroker, _ := cfg.InterBrokerListener()
	dialInterBroker := interBrokerDial(cfg, tlsSet, time.Duration(cfg.ReplicaSocketTimeoutMs)*time.Millisecond, logger.Named("tls"))
	b, err := broker.New(broker.Options{
		Security:            security,
		Quota:               broker.QuotaOptions{WindowNum: cfg.Quota.WindowNum, WindowSize: time.Duration(cfg.Quota.WindowSizeSeconds) * time.Second},
		Cluster:             clusterOpt,
		ReplicaLagTimeMax:   time.Duration(cfg.ReplicaLagTimeMaxMs) * time.Millisecond,
		ListenerName:        adv.Name,
		InterBrokerListener: interBroker.Name,
		InterBrokerDial:     dialInterBroker.markers,
		InterBrokerSASL:     dialInterBroker.markersSASL,
		DynamicTLS:          tlsSet,
		PasswordEncoder: pwenc.Encoder{Secret: cfg.PasswordEncoder.Secret, OldSecret: cfg.PasswordEncoder.OldSecret,
			Cipher: cfg.PasswordEncoder.Cipher, KeyFactory: cfg.PasswordEncoder.KeyFactory,
			KeyLength: cfg.PasswordEncoder.KeyLength, Iterations: cfg.PasswordEncoder.Iterations},
		NodeID:           cfg.NodeID,
		AdvertisedHost:   adv.Host,
		AdvertisedPort:   int32(adv.Port),
		DataDir:          dataDir,
		Logger:           logger.Named("broker"),
		Registry:         reg,
		AutoCreateTopics: cfg.AutoCreateTopicsEnable,
		NumPartitions:    cfg.NumPartitions,
		MessageMaxBytes:  cfg.MessageMaxBytes,
		FetchZeroCopy:    cfg.FetchZeroCopy,
		// Tail latency of caught-up consumers (docs/BENCHMARKS.md).
		FetchCopyMaxBytes: cfg.FetchCopyMaxBytes,
		FetchWakeOnLoop:   cfg.FetchWakeOnLoop,

		// KIP-392 (broker/fetch_preferred.go).
		RackAwareReplicaSelector: cfg.ReplicaSelectorClass == config.RackAwareReplicaSelector,
		Rack:                     cfg.BrokerRack,

		FetchSessionCacheSlots:    zeroIsNone(cfg.FetchSessionCacheSlots),
		FetchSessionPartitionsMax: zeroIsNone(cfg.FetchSessionMaxPartitions),
		Metrics:                   m,

		GroupInitialRebalanceDelay:    time.Duration(cfg.GroupInitialRebalanceDelayMs) * time.Millisecond,
		GroupMinSessionTimeout:        time.Duration(cfg.GroupMinSessionTimeoutMs) * time.Millisecond,
		GroupMaxSessionTimeout:        time.Duration(cfg.GroupMaxSessionTimeoutMs) * time.Millisecond,
		OffsetsTopicNumPartitions:     cfg.OffsetsTopicNumPartitions,
		OffsetsTopicSegmentBytes:      cfg.OffsetsTopicSegmentBytes,
		OffsetsRetention:              time.Duration(cfg.OffsetsRetentionMinutes) * time.Minute,
		OffsetsTopicReplicationFactor: cfg.OffsetsTopicReplicationFactor,

		Txn: broker.TxnOptions{
			StateLogNumPartitions:        cfg.TransactionStateLogNumPartitions,
			StateLogSegmentBytes:         cfg.TransactionStateLogSegmentBytes,
			StateLogReplicationFactor:    cfg.TransactionStateLogReplicationFactor,
			StateLogMinISR:               cfg.TransactionStateLogMinISR,
			MaxTimeout:                   time.Duration(cfg.TransactionMaxTimeoutMs) * time.Millisecond,
			IDExpiration:                 time.Duration(cfg.TransactionalIDExpirationMs) * time.Millisecond,
			CleanupInterval:              time.Duration(cfg.TransactionAbortTimedOutTransactionCleanupIntervalMs) * time.Millisecond,
			TransactionVersion:           txnVersionOption(cfg.TransactionVersion),
			AddPartitionsRetryBackoff:    time.Duration(cfg.AddPartitionsToTxnRetryBackoffMs) * time.Millisecond,
			AddPartitionsRetryBackoffMax: addRetryMaxOption(cfg.AddPartitionsToTxnRetryBackoffMaxMs),
		},
	})
	if err != nil {
		return err
	}

	var node *cluster.Node
	closeNode := func() {}
	stopReplication := func() {}
	if cfg.Clustered() {
		// Deferred after closeLogs: the fetchers stop before the logs close.
		rep := newReplication(cfg, reg, b, dialInterBroker.fetch, logger)
		m.WatchReplicaFetchers(rep.mgr.Lags) // ringbroker_replica_fetcher_*
		stopReplication = sync.OnceFunc(rep.close)
		defer stopReplication()
		ctlTLS, err := newControllerTLS(cfg, logger.Named("tls"))
		if err != nil {
			return err
		}
		defer ctlTLS.stop()
		if node, err = startCluster(cfg, reg, b, rep, ctlTLS, logger); err != nil {
			return err
		}
		proxy.set(node)
		closeNode = sync.OnceFunc(func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			if err := node.Close(ctx); err != nil {
				logger.Warn("leaving the metadata quorum", zap.Error(err))
			}
		})
		defer closeNode()
	}

	listeners := make([]string, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		listeners[i] = l.Addr()
	}
	idle := time.Duration(cfg.ConnectionsMaxIdleMs) * time.Millisecond
	if cfg.ConnectionsMaxIdleMs <= 0 {
		idle = -1
	}
	srv, err := netpoll.Listen(netpoll.Options{
		Listeners:               listeners,
		Backend:                 cfg.IOBackend,
		Loops:                   cfg.Rings(),
		RingEntries:             uint32(cfg.RingEntries),
		SQPoll:                  cfg.RingSQPoll,
		NoDeferTaskrun:          !cfg.RingDeferTaskrun,
		IdleSpin:                time.Duration(cfg.RingIdleSpinUs) * time.Microsecond,
		WaitBatch:               cfg.RingWaitBatch,
		WaitBatchMin:            time.Duration(cfg.RingWaitBatchUs) * time.Microsecond,
		PinCPUs:                 pinCPUs(cfg),
		ThreadNice:              cfg.RingThreadNice,
		RecvBufferBytes:         cfg.RingRecvBufferBytes,
		RecvBuffers:             cfg.RingRecvBuffers,
		RecvBundle:              cfg.RingRecvBundle,
		MaxFrameBytes:           cfg.SocketRequestMaxBytes,
		ConnMaxInflightRequests: cfg.ConnMaxInflightRequests,
		ConnMaxInflightBytes:    cfg.ConnMaxInflightBytes,
		MaxQueuedBytes:          cfg.QueuedMaxRequestBytes,
		IdleTimeout:             idle,
		MaxConns:                cfg.MaxConnections,
		MaxConnsPerIP:           cfg.MaxConnectionsPerIP,
		MaxConnCreationRate:     cfg.Quota.MaxConnectionCreationRate,
		MaxConnsPerIPOverrides:  cfg.Quota.MaxConnectionsPerIPOverrides,
		AdmitConn:               b.AdmitConnection, // quotas of ip entities
		Logger:                  logger.Named("net"),
		Handler:                 b,
		Sessions:                b,
		Metrics:                 m,
		Secure:                  tlsSet.layers,
		HandshakeTimeout:        time.Duration(cfg.TLS.HandshakeTimeoutMs) * time.Millisecond,
		MaxHandshaking:          cfg.TLS.MaxHandshaking,
		TLSOnLoops:              cfg.TLS.OnLoops,
		TLSSendZC:               cfg.TLS.SendZC,
	})
	if err != nil {
		return err
	}
	if reason := srv.FallbackReason(); reason != "" {
		logger.Warn("io_uring not usable; serving with the portable backend", zap.String("reason", reason))
	}
	if note := srv.TLSNote(); note != "" {
		logger.Info(note)
	}
	bound := make([]string, 0, len(srv.Addrs()))
	for _, a := range srv.Addrs() {
		bound = append(bound, a.String())
	}
	logger.Info("ringbrokerd started",
		zap.String("version", version()),
		zap.String("backend", srv.Backend()),
		zap.Int("rings", cfg.Rings()),
		zap.Bool("pinned", pinCPUs(cfg)),
		zap.Strings("listeners", bound),
		zap.String("advertised", net.JoinHostPort(adv.Host, fmt.Sprint(adv.Port))),
		zap.String("cluster_id", b.ClusterID()),
		zap.Int32("node_id", cfg.NodeID),
		zap.String("data_dir", dataDir),
		zap.String("metrics", cfg.MetricsListener))
	if err := sdNotify("READY=1\nSTATUS=serving " + strings.Join(bound, ",")); err != nil {
		logger.Warn("sd_notify READY", zap.Error(err))
	}
	stopWatchdog := startWatchdog(daemonLiveness(srv, reg), logger.Named("watchdog"))

	var stopErr error
	select {
	case s := <-sig:
		logger.Info("shutting down", zap.String("signal", s.String()))
	case <-reg.StopForLogDirFailure():
		// broker/log_dir_failure.go: every log dir is offline (or, in
		// cluster mode, one is). The same shutdown as SIGTERM's (a
		// controlled shutdown moves the leaderships first); the offline
		// dirs' files are left as they are, and the exit status is 1.
		stopErr = reg.StopReason()
		logger.Error("shutting down: log dir failure", zap.Strings("offline_log_dirs", reg.OfflineLogDirs()), zap.Error(stopErr))
	}
	_ = sdNotify("STOPPING=1")
	stopWatchdog() // returns once no check runs: the logs close below
	// A clustered node first hands its leaderships over (controlled
	// shutdown), while it still serves, then leaves the quorum.
	closeNode()
	// acks=all produces still waiting for followers are answered now
	// (NOT_LEADER_OR_FOLLOWER), not at the end of the drain.
	b.StopReplication()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("shutdown did not drain every connection in time", zap.Error(err))
	}
	stopTrace()
	if err := b.Close(); err != nil {
		logger.Warn("closing the broker (producer state snapshot)", zap.Error(err))
	}
	stopReplication()
	logger.Info("closing logs (fdatasync of unflushed data)")
	t0 := time.Now()
	if err := closeLogs(); err != nil {
		logger.Error("closing logs", zap.Error(err))
	}
	logger.Info("stopped", zap.Duration("closing_logs", time.Since(t0)))
	return stopErr
}

// closeReportEvery is how often a long log close logs its progress and,
// when logs were closed since the last report, asks systemd for
// closeExtend more than TimeoutStopSec (EXTEND_TIMEOUT_USEC): flushing many
// partitions behind a busy disk may take minutes, and a SIGKILL then costs
// a recovery scan at the next start.
const (
	closeReportEvery = 10 * time.Second
	closeExtend      = 30 * time.Second
)

func closeRegistry(reg *broker.Registry, logger *zap.Logger) error {
	last := int64(-1)
	return reg.CloseReporting(closeReportEvery, func(closed, total int64) {
		if closed == total {
			return // done: the caller logs it
		}
		logger.Info("closing logs", zap.Int64("closed", closed), zap.Int64("total", total))
		if closed > last {
			last = closed
			_ = sdNotify(fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d\nSTATUS=closing logs: %d of %d", closeExtend.Microseconds(), closed, total))
		}
	})
}

// pinCPUs resolves ring.cpu.affinity: auto pins only when some CPU is left
// without a loop (see the key's documentation for why).
func pinCPUs(cfg *config.Config) bool {
	switch cfg.RingCPUAffinity {
	case "true":
		return true
	case "false":
		return false
	}
	return cfg.Rings() < runtime.NumCPU()
}

// expectedConnections is what the host check sizes descriptor limits for:
// max.connections when the operator set a real bound, else the checker's
// default.
func expectedConnections(cfg *config.Config) int {
	if cfg.MaxConnections >= math.MaxInt32 {
		return 0
	}
	return cfg.MaxConnections
}

func tuningOptions(cfg *config.Config) tuning.Options {
	addrs := make([]string, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		addrs[i] = l.Addr()
	}
	dirs := make([]string, len(cfg.LogDirs))
	for i, d := range cfg.LogDirs {
		dirs[i], _ = filepath.Abs(d)
	}
	opts := tuning.Options{
		LogDirs:             dirs,
		ListenAddrs:         addrs,
		RingCount:           cfg.RingCount,
		ExpectedConnections: expectedConnections(cfg),
	}
	if cfg.IOBackend != "portable" {
		// The rings netpoll sets up at start, tried under this limit.
		opts.Rings = tuning.RingPlan{Count: cfg.Rings(), Entries: uint32(cfg.RingEntries),
			RecvBuffers: cfg.RingRecvBuffers, RecvBufferBytes: cfg.RingRecvBufferBytes, SQPoll: cfg.RingSQPoll}
	}
	return opts
}

func checkHost(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	configPath := fs.String("config", "", "server.properties whose log.dirs/listeners/ring.count are checked")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, _, err := loadConfig(*configPath, nil)
	if err != nil {
		fmt.Fprintln(stderr, "ringbrokerd check-host:", err)
		return 2
	}
	report := tuning.Run(tuningOptions(cfg))
	if *asJSON {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "ringbrokerd check-host:", err)
		return 2
	}
	return report.ExitCode()
}

func newLogger(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), zap.InfoLevel)
	return zap.New(core)
}

func version() string {
	v := "devel"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	return fmt.Sprintf("ringbrokerd %s (%s %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// zeroIsNone maps a config value of 0 ("none") to broker.Options' -1 (its 0
// takes the default).
func zeroIsNone(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// txnVersionOption is broker.TxnOptions.TransactionVersion for the
// transaction.version key (the option's zero value means the default).
func txnVersionOption(level int16) int16 {
	if level == 0 {
		return broker.TransactionVersionZero
	}
	return level
}

// addRetryMaxOption is broker.TxnOptions.AddPartitionsRetryBackoffMax for
// add.partitions.to.txn.retry.backoff.max.ms: 0 (no retry) is the
// smallest positive duration, since the option's zero means the default.
func addRetryMaxOption(ms int32) time.Duration {
	if ms == 0 {
		return time.Nanosecond
	}
	return time.Duration(ms) * time.Millisecond
}
