#!/usr/bin/env bash
# cluster.sh — a three-node ringbroker cluster on one machine, for development:
# `make cluster` (start) and `make cluster-stop` (stop).
#
#   scripts/cluster.sh start   start nodes 1-3 on 127.0.0.1, 127.0.0.2, 127.0.0.3
#                              (clients :9092, controller :9093), data in
#                              data/cluster/node{1,2,3}, then print the bootstrap list
#   scripts/cluster.sh stop    SIGTERM every node named by a pid file, wait for it
#
# Each node is a broker and a voter of the metadata quorum (process.roles=
# broker,controller). Per node, data/cluster/nodeN/ holds server.properties (written
# at every start), ringbrokerd.log (stdout and stderr, appended) and ringbrokerd.pid
# while it runs; the data itself is in data/cluster/nodeN/data and survives a stop.
# Linux routes all of 127.0.0.0/8 to lo, so the three addresses need no setup.
#
# Environment: RINGBROKERD (default bin/ringbrokerd), CLUSTER_DIR (default
# data/cluster), ARGS (extra ringbrokerd flags, e.g. "--set io.backend=portable").
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${RINGBROKERD:-$repo_root/bin/ringbrokerd}"
cluster_dir="${CLUSTER_DIR:-$repo_root/data/cluster}"
cluster_id="ringbroker-dev-cluster"
client_port=9092
controller_port=9093
nodes=(1 2 3)
# Bounds of the waits, in tenths of a second.
start_wait=600 # a node's client port accepting
stop_wait=600  # a node exiting after SIGTERM (its own drain grace is 10 s)

usage() {
	echo "usage: $0 start|stop" >&2
	exit 2
}

node_dir() { echo "$cluster_dir/node$1"; }
pid_file() { echo "$(node_dir "$1")/ringbrokerd.pid"; }

# running_pid N prints node N's pid when its pid file names a live ringbrokerd
# (not some other process that reused the pid).
running_pid() {
	local f pid
	f="$(pid_file "$1")"
	[ -f "$f" ] || return 1
	pid="$(cat "$f")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q ringbrokerd || return 1
	echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

start() {
	[ -x "$bin" ] || {
		echo "$bin not found: run make build (make cluster does)" >&2
		exit 1
	}
	local voters="" n
	local -A log_offset
	for n in "${nodes[@]}"; do
		voters+="${voters:+,}$n@127.0.0.$n:$controller_port"
		if pid="$(running_pid "$n")"; then
			echo "node $n is already running (pid $pid): make cluster-stop first" >&2
			exit 1
		fi
	done
	for n in "${nodes[@]}"; do
		local dir host
		dir="$(node_dir "$n")"
		host="127.0.0.$n"
		mkdir -p "$dir/data"
		log_offset[$n]="$(stat -c %s "$dir/ringbrokerd.log" 2>/dev/null || echo 0)"
		cat >"$dir/server.properties" <<EOF
# written by scripts/cluster.sh
process.roles=broker,controller
node.id=$n
cluster.id=$cluster_id
controller.quorum.voters=$voters
listeners=PLAINTEXT://$host:$client_port,CONTROLLER://$host:$controller_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
# The metrics listener defaults to one fixed port: three nodes would collide.
metrics.listener=
group.initial.rebalance.delay.ms=0
EOF
		# shellcheck disable=SC2086 # ARGS are flags meant to split
		"$bin" --config "$dir/server.properties" ${ARGS:-} >>"$dir/ringbrokerd.log" 2>&1 &
		echo $! >"$(pid_file "$n")"
	done
	for n in "${nodes[@]}"; do
		local i=0
		until port_open "127.0.0.$n" "$client_port"; do
			if ! running_pid "$n" >/dev/null; then
				echo "node $n exited; see $(node_dir "$n")/ringbrokerd.log:" >&2
				tail -n 20 "$(node_dir "$n")/ringbrokerd.log" >&2
				stop
				exit 1
			fi
			i=$((i + 1))
			if [ "$i" -ge "$start_wait" ]; then
				echo "node $n does not accept on 127.0.0.$n:$client_port after $((start_wait / 10)) s" >&2
				stop
				exit 1
			fi
			sleep 0.1
		done
	done
	# A node answers on its client port before the quorum has formed, with no
	# brokers in Metadata (librdkafka then gives up on its bootstrap for a
	# while): wait until every node has registered with the controller.
	for n in "${nodes[@]}"; do
		local i=0 log
		log="$(node_dir "$n")/ringbrokerd.log"
		until tail -c "+$((log_offset[$n] + 1))" "$log" | grep -q "registered with the controller"; do
			i=$((i + 1))
			if [ "$i" -ge "$start_wait" ]; then
				echo "node $n has not registered with a controller after $((start_wait / 10)) s (see $log); still running: make cluster-stop" >&2
				exit 1
			fi
			sleep 0.1
		done
	done
	for n in "${nodes[@]}"; do
		echo "node $n: pid $(cat "$(pid_file "$n")"), client 127.0.0.$n:$client_port, controller 127.0.0.$n:$controller_port, log $(node_dir "$n")/ringbrokerd.log"
	done
	echo "bootstrap: 127.0.0.1:$client_port,127.0.0.2:$client_port,127.0.0.3:$client_port"
}

stop() {
	local n pid pids=()
	for n in "${nodes[@]}"; do
		if pid="$(running_pid "$n")"; then
			kill -TERM "$pid"
			pids+=("$n:$pid")
		else
			rm -f "$(pid_file "$n")"
		fi
	done
	local status=0 entry
	for entry in "${pids[@]}"; do
		n="${entry%%:*}"
		pid="${entry#*:}"
		local i=0
		while kill -0 "$pid" 2>/dev/null; do
			i=$((i + 1))
			if [ "$i" -ge "$stop_wait" ]; then
				echo "node $n (pid $pid) still running $((stop_wait / 10)) s after SIGTERM; left running" >&2
				status=1
				continue 2
			fi
			sleep 0.1
		done
		rm -f "$(pid_file "$n")"
		echo "node $n (pid $pid) stopped"
	done
	return "$status"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
