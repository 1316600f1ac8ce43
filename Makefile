# ringbroker: `make run` starts the broker with the development settings of
# config/dev.properties over the built-in defaults (127.0.0.1:9092, data in
# ./data; extra flags in ARGS, e.g. ARGS='--set io.backend=portable');
# `make test` installs what the tests need and runs them. See README.md.

GO        ?= go
BIN       := bin/ringbrokerd
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
# The integration target runs the real daemon (tests/...) and the deployment
# files (scripts); the unit target runs every other package `go list` finds,
# under the race detector (which also compiles in the invariant assertions),
# so a new package cannot be left out.
INTEGRATION_PKGS := ./tests/... ./scripts/...
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -e '/tests/' -e '/scripts$$')
# Tools the repo pins and installs itself (scripts/install-test-deps.sh).
DEPS_BIN    ?= $(CURDIR)/.deps/bin
STATICCHECK := $(DEPS_BIN)/staticcheck
export DEPS_BIN

.PHONY: all build run cluster cluster-stop cluster-test cluster-long cluster-faults java-tools-test test test-deps test-under-load unit unit-invariants metamorphic cleaner-crash integration lint fmt tidy vet staticcheck bench bench-replication bench-txn bench-micro bench-metadata bench-compaction fuzz soak crash-test clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/ringbrokerd

run: build
	./$(BIN) --config config/dev.properties $(ARGS)

# A three-node cluster on this machine (scripts/cluster.sh): nodes 1-3 on
# 127.0.0.1-3, clients on :9092, controller quorum on :9093, data in
# data/cluster/node{1,2,3}; prints the bootstrap list. cluster-stop SIGTERMs
# them (by their pid files) and waits.
cluster: build
	./scripts/cluster.sh start

cluster-stop:
	./scripts/cluster.sh stop

# Cluster failover (opt-in long runs): cluster-long and cluster-faults, both
# even if one fails (-k).
cluster-test:
	$(MAKE) -k cluster-long cluster-faults

# 20+ SIGKILLs of the active controller under a bounded produce load; prints
# failover and CreateTopics latency percentiles and checks no acknowledged
# record was lost. Then rounds (RINGBROKER_FAILOVER_ROUNDS, default 5) of the
# six-client partition-leader failover of TestClusterFailoverClients, where
# no consumer may also read a record the next leader does not have. Also
# the single-round TestClusterFailoverClients (kcat, confluent-kafka,
# kafka-python, KafkaJS, Sarama, franz-go across a leader's SIGKILL),
# TestClusterRestartNoStaleLeadership (a node SIGKILLed while leading,
# restarted, neither claims the partition nor takes a Produce before it has
# registered), TestClusterDynamicQuorum (KIP-853: grow, fail over, shrink,
# restart), TestClusterFetchFromClosestReplica (KIP-392 with franz-go's
# kgo.Rack and kcat's client.rack, across the SIGKILL of the follower read
# from) and TestClusterEOSUnderCrashes (exactly-once consume-transform-produce
# while the transaction coordinator's broker and partition leaders are
# SIGKILLed; RINGBROKER_CLUSTER_EOS_SEED=<printed seed> replays), built only
# with this tag to keep make test within its budget.
cluster-long:
	$(GO) test -tags clusterlong -count=1 -timeout 60m -v -run 'TestClusterLong|TestClusterFailoverClients|TestClusterRestartNoStaleLeadership|TestClusterDynamicQuorum|TestClusterFetchFromClosestReplica|TestClusterEOSUnderCrashes' ./tests/integration/

# The seeded fault schedule for replicated partitions (root: three network
# namespaces on a bridge): SIGKILL of a leader and of the controller,
# SIGSTOP, an isolated node, a node cut off from its peers, a shaped link,
# a full disk (tmpfs per node), a slow fdatasync (daemon built with -tags
# faultinject), one at a time, under idempotent acks=all producers and a consumer group;
# checks no acknowledged record is lost or doubled and reports failover
# p50/p99. FAULTS_SEED=N replays a schedule, FAULTS_N sets its length
# (default 16); more knobs (RINGBROKER_FAULTS_*) in cluster_faults_test.go.
# Also the log dir failure tests (no root needed): ENOSPC / EIO injected on an
# RF 3 leader's dir and on a single node's only dir (logdir_failure_test.go).
cluster-faults:
	$(if $(FAULTS_SEED),RINGBROKER_FAULTS_SEED=$(FAULTS_SEED)) $(if $(FAULTS_N),RINGBROKER_FAULTS_N=$(FAULTS_N)) \
	$(GO) test -tags clusterfaults -count=1 -timeout 30m -v -run 'TestClusterFaults$$|TestLogDirFailure' ./tests/integration/

test: test-deps lint unit unit-invariants integration

test-deps:
	./scripts/install-test-deps.sh

unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# The same packages once more with the invariant assertions compiled in
# but without the race detector: faster, and what a release build's code
# paths look like timing-wise, with every invariants.Check armed.
unit-invariants:
	$(GO) test -count=1 -tags invariants $(UNIT_PKGS)

# Storage metamorphic test (opt-in long run): METAMORPHIC_SEEDS seeded
# random operation sequences, each run against every config with every
# backend and compared; METAMORPHIC_SEED=<printed seed> replays one (with
# -metamorphic.all, as here). make test runs 3 seeds on a covering subset.
METAMORPHIC_SEEDS ?= 100
metamorphic:
	$(GO) test -count=1 -timeout 60m -run 'TestMetamorphic$$' ./storage/ -metamorphic.all -metamorphic.seeds=$(METAMORPHIC_SEEDS) $(if $(METAMORPHIC_SEED),-seed=$(METAMORPHIC_SEED))

# The log cleaner under faults (opt-in long run): every mutating step of a
# clean failed, killed and power-lost, for CLEANER_CRASH_SEEDS seeds, plus
# SIGKILLed cleaning children; CLEANER_CRASH_SEED=<printed seed> replays.
# make test runs one seed on a sample of the steps.
CLEANER_CRASH_SEEDS ?= 5
cleaner-crash:
	$(GO) test -count=1 -timeout 60m -run 'TestCleanerCrashSteps$$|TestCleanerSIGKILL$$' ./storage/ -cleancrash.all -cleancrash.kills=50 -cleancrash.seeds=$(CLEANER_CRASH_SEEDS) $(if $(CLEANER_CRASH_SEED),-cleancrash.seed=$(CLEANER_CRASH_SEED))

# Apache Kafka's own Java tools (kafka-topics, the perf producer through a
# leader SIGKILL, the console consumer, kafka-verifiable-producer on a compacted
# topic read back after cleaning, kafka-get-offsets, kafka-reassign-partitions
# under load, SCRAM/quotas/ACLs over SASL_SSL, kafka-metadata-quorum describe and
# add-/remove-controller) against one node and a three-node cluster, both
# backends (opt-in: build tag javatools; tests/integration/javatools_test.go).
# Build the tools first (3.9 for add-controller/remove-controller; 3.8 runs the rest):
#   OTEL_MIRROR=<opentelemetry-proto git dir> scripts/build-kafka-java-tools.sh <apache/kafka git dir> 3.9.0-rc3 <outdir>
#   make java-tools-test KAFKA_JAVA_BIN=<outdir>/bin
KAFKA_JAVA_BIN ?= $(CURDIR)/.deps/kafka-java-3.8.0/bin
java-tools-test:
	KAFKA_JAVA_BIN=$(KAFKA_JAVA_BIN) $(GO) test -tags javatools -count=1 -timeout 40m -v -run 'TestJavaTools' ./tests/integration/

integration:
	$(GO) test -count=1 -timeout 25m $(INTEGRATION_PKGS)

# unit and integration (both, even if one fails: -k) with two CPU hogs
# competing for the cores (bounded by timeout, killed by PID when the tests
# end, pass or fail): no test's outcome may depend on the machine's load.
# Prints the wall time.
LOAD_HOGS ?= 2
test-under-load: test-deps
	LOAD_HOGS=$(LOAD_HOGS) ./scripts/test-under-load.sh $(MAKE) -k unit integration

lint: fmt vet tidy staticcheck

# go.mod and go.sum say exactly what the code imports (direct and indirect).
tidy:
	$(GO) mod tidy -diff

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags invariants,clusterlong ./...
	$(GO) vet -tags clusterfaults ./...

# Always the pinned staticcheck in .deps/bin (installed on first use), never
# one from PATH.
staticcheck:
	@./scripts/install-test-deps.sh --staticcheck >/dev/null
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags invariants,clusterlong ./...
	$(STATICCHECK) -tags clusterfaults ./...

# Side-by-side benchmark: ringbrokerd (io_uring, portable) beside the null
# broker and PEERS=name=host:port,...; table, bench-results/results.json,
# plots. BENCH=full for the long run. Issue 20: HOGS=2 runs two CPU busy
# loops beside every measured run, BENCH_REPEAT=5 repeats every scenario
# (targets interleaved; the goal table gives min/median/max), BENCH_TRACE=1
# collects ringbrokerd's per-request trace per run (docs/BENCHMARKS.md).
# KAFKA_JAVA_BIN=<Kafka 3.9 bin dir> adds Kafka's producer perf tool at
# 50,000 records/s against ringbrokerd and an in-memory kfake peer (goal 1d).
bench:
	HOGS=$(HOGS) BENCH_REPEAT=$(BENCH_REPEAT) BENCH_TRACE=$(BENCH_TRACE) BENCH_VARIANTS='$(BENCH_VARIANTS)' KAFKA_JAVA_BIN='$(KAFKA_JAVA_BIN)' ./scripts/bench.sh

# Replication (issue 16, opt-in, not in make test): a three-node loopback
# cluster per backend; RF 3 vs RF 1 acks=all, a restarted follower's
# catch-up vs a consumer, leader failover after SIGKILLs. One table with
# both sides of every ratio, bench-results/replication.json. BENCH=full
# for the long run, BENCH_BACKENDS=uring for one backend.
bench-replication:
	$(GO) run ./bench/cmd/replbench

# Transactions (issue 18, opt-in, not in make test): one broker per
# backend; transactional produce (a commit every 100 ms) vs idempotent
# produce, records/s and ack/commit p99, and a read_committed vs a
# read_uncommitted consumer catching up on a log with aborted
# transactions. One run, both sides of every ratio, bench-results/txn.json.
bench-txn:
	$(GO) run ./bench/cmd/txnbench

# Go micro-benchmarks (ring, broker request paths, log, metrics).
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./ring/ ./broker/ ./storage/ ./metrics/

# Metadata scale (issue 15): 10,000 topics x 10 partitions in the image,
# the controller, and a three-node loopback cluster (failover, catch-up of
# a restarted node from the log and through a raft snapshot). Each runs
# once (minutes in all); figures are reported, never asserted.
bench-metadata:
	$(GO) test -run '^$$' -bench Scale -benchmem -benchtime 1x -timeout 30m ./metadata/ ./controller/ ./cluster/

# Compaction (issue 17), each benchmark once, figures reported: cleaner
# throughput on one log (storage BenchmarkCleaner); broker startup with a
# __consumer_offsets of a million commit records before and after
# cleaning (BenchmarkOffsetsLoadCompaction); produce latency on one topic
# with the cleaner off, compacting another topic unthrottled, and compacting a
# third with log.cleaner.io.max.bytes.per.second at 10 MiB/s
# (BenchmarkProduceLatencyCleaner). Skipped by bench-micro (they write
# ~0.8 GB of temp data); a few minutes.
bench-compaction:
	RINGBROKER_BENCH_COMPACTION=1 $(GO) test -run '^$$' -bench 'Cleaner$$|OffsetsLoadCompaction' -benchmem -benchtime 1x -timeout 30m ./storage/ ./broker/

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# Crash consistency (opt-in long run): ringbrokerd SIGKILLed CRASH_ITERATIONS
# times per flush policy under real clients; CRASH_SEED=<printed seed> replays
# a run. make test runs the same test with 3 iterations.
CRASH_ITERATIONS ?= 30
crash-test:
	$(GO) test -count=1 -timeout 30m -v -run Crash ./tests/crash/ -crash.iterations=$(CRASH_ITERATIONS) $(if $(CRASH_SEED),-crash.seed=$(CRASH_SEED))

# Soak (opt-in): 200 connections mixing produce, fetch, group churn and
# client restarts; per-minute RSS, goroutines, fds, p99; asserts they stay
# flat. SOAK_DURATION=2m to shorten, SOAK_BACKEND=portable for the other one.
SOAK_DURATION ?= 10m
soak:
	RINGBROKER_SOAK=1 SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -run TestSoak -timeout 40m -v ./tests/integration/

clean:
	rm -rf bin
