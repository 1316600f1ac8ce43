#!/usr/bin/env bash
# install.sh: install ringbrokerd as a systemd service.
#
#   scripts/install.sh [--prefix DIR] [--binary PATH]
#                      [--node-id N --voters ID@HOST:PORT,... --cluster-id ID [--host HOST]]
#
# Lays out:
#   /usr/local/bin/ringbrokerd                  the binary (--binary, default bin/ringbrokerd
#                                               of this repository, built if missing)
#   /etc/ringbroker/server.properties           from scripts/server.properties; an existing
#                                               config is never overwritten
#   /var/lib/ringbroker                         data (log.dirs), owned by user ringbroker
#   /etc/systemd/system/ringbrokerd.service     the unit
# then creates the system user ringbroker and runs `systemctl daemon-reload` and
# `systemctl enable ringbrokerd` (it does not start the service).
#
# With --node-id, --voters and --cluster-id the config written is a cluster node's
# (docs/OPERATIONS.md, "Running a cluster"): process.roles=broker,controller, the
# node id, the voters, the cluster id, a client listener on HOST:9092 and the
# CONTROLLER listener on the port its own voter entry names (HOST defaults to the
# host of its voter entry). Every node of a cluster gets the same --voters and
# --cluster-id. As always an existing config is kept, not rewritten.
#
# --prefix DIR installs the same tree under DIR (like DESTDIR: file contents still
# name the final paths), skips the user, ownership and systemctl steps, and needs
# no root. Without --prefix, systemctl steps are skipped when systemd is not
# running (no /run/systemd/system), e.g. in a container.
#
# Idempotent: every step compares before it writes and prints created, updated or
# unchanged; a second run prints "unchanged" everywhere and touches nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

prefix=""
binary=""
node_id=""
voters=""
cluster_id=""
host=""
usage() { echo "usage: $0 [--prefix DIR] [--binary PATH] [--node-id N --voters ID@HOST:PORT,... --cluster-id ID [--host HOST]]" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
	case "$1" in
	--prefix) [[ $# -ge 2 ]] || usage; prefix="$2"; shift 2 ;;
	--prefix=*) prefix="${1#--prefix=}"; shift ;;
	--binary) [[ $# -ge 2 ]] || usage; binary="$2"; shift 2 ;;
	--binary=*) binary="${1#--binary=}"; shift ;;
	--node-id) [[ $# -ge 2 ]] || usage; node_id="$2"; shift 2 ;;
	--node-id=*) node_id="${1#--node-id=}"; shift ;;
	--voters) [[ $# -ge 2 ]] || usage; voters="$2"; shift 2 ;;
	--voters=*) voters="${1#--voters=}"; shift ;;
	--cluster-id) [[ $# -ge 2 ]] || usage; cluster_id="$2"; shift 2 ;;
	--cluster-id=*) cluster_id="${1#--cluster-id=}"; shift ;;
	--host) [[ $# -ge 2 ]] || usage; host="$2"; shift 2 ;;
	--host=*) host="${1#--host=}"; shift ;;
	-h | --help) sed -n '2,30p' "$0"; exit 0 ;;
	*) usage ;;
	esac
done

# Cluster node: all three of --node-id, --voters, --cluster-id, or none.
config_src="$here/server.properties"
if [[ -n "$node_id$voters$cluster_id$host" ]]; then
	[[ -n "$node_id" && -n "$voters" && -n "$cluster_id" ]] || { echo "install.sh: a cluster node needs --node-id, --voters and --cluster-id" >&2; exit 2; }
	[[ "$node_id" =~ ^[0-9]+$ ]] || { echo "install.sh: --node-id $node_id is not a node id" >&2; exit 2; }
	self=""
	IFS=, read -ra entries <<<"$voters"
	for e in "${entries[@]}"; do
		[[ "$e" =~ ^([0-9]+)@(.+):([0-9]+)$ ]] || { echo "install.sh: --voters entry $e is not ID@HOST:PORT" >&2; exit 2; }
		[[ "${BASH_REMATCH[1]}" == "$node_id" ]] && self="$e"
	done
	[[ -n "$self" ]] || { echo "install.sh: node $node_id is not in --voters $voters" >&2; exit 2; }
	[[ "$self" =~ ^[0-9]+@(.+):([0-9]+)$ ]]
	ctl_host="${BASH_REMATCH[1]}" ctl_port="${BASH_REMATCH[2]}"
	[[ -n "$host" ]] || host="$ctl_host"
	config_src="$(mktemp)"
	trap 'rm -f "$config_src"' EXIT
	sed -e "s/^node.id=.*/node.id=$node_id/" -e "s|^listeners=.*|listeners=PLAINTEXT://$host:9092,CONTROLLER://$host:$ctl_port|" "$here/server.properties" >"$config_src"
	cat >>"$config_src" <<CONF

# Cluster node (install.sh --node-id/--voters/--cluster-id): every node of the
# cluster has the same voters and cluster.id. docs/OPERATIONS.md says how to
# form, grow, shrink and roll a cluster.
process.roles=broker,controller
cluster.id=$cluster_id
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
CONF
fi

if [[ -n "$prefix" ]]; then
	mkdir -p "$prefix"
	prefix="$(cd "$prefix" && pwd)"
elif [[ "$(id -u)" -ne 0 ]]; then
	echo "install.sh: run as root, or use --prefix DIR for an unprivileged dry install" >&2
	exit 1
fi

user=ringbroker
bin_dir="$prefix/usr/local/bin"
conf_dir="$prefix/etc/ringbroker"
data_dir="$prefix/var/lib/ringbroker"
unit_dir="$prefix/etc/systemd/system"

status() { printf '%-48s %s\n' "$1" "$2"; }

# The binary: build bin/ringbrokerd when no --binary was given and it is missing.
if [[ -z "$binary" ]]; then
	binary="$repo/bin/ringbrokerd"
	if [[ ! -x "$binary" ]]; then
		command -v go >/dev/null 2>&1 || { echo "install.sh: $binary missing and no go toolchain to build it; pass --binary" >&2; exit 1; }
		(cd "$repo" && go build -o bin/ringbrokerd ./cmd/ringbrokerd)
	fi
fi
[[ -f "$binary" && -x "$binary" ]] || { echo "install.sh: --binary $binary is not an executable file" >&2; exit 1; }

# install_file SRC DST MODE: copy when missing or different, atomically (a
# temporary file in the same directory renamed over DST, so a running binary is
# never overwritten in place). Sets $changed=1 when it wrote.
changed=0
install_file() {
	local src="$1" dst="$2" mode="$3"
	if [[ -f "$dst" ]] && cmp -s "$src" "$dst"; then
		if [[ "$(stat -c '%a' "$dst")" != "${mode#0}" ]]; then
			chmod "$mode" "$dst"
			status "$dst" "mode fixed ($mode)"
			changed=1
		else
			status "$dst" "unchanged"
		fi
		return
	fi
	local what=created
	[[ -e "$dst" ]] && what=updated
	local tmp
	tmp="$(mktemp "$(dirname "$dst")/.install.XXXXXX")"
	cp "$src" "$tmp"
	chmod "$mode" "$tmp"
	mv -f "$tmp" "$dst"
	status "$dst" "$what"
	changed=1
}

# ensure_dir DIR MODE [OWNER]
ensure_dir() {
	local dir="$1" mode="$2" owner="${3:-}"
	if [[ -d "$dir" ]]; then
		local note=unchanged
		if [[ "$(stat -c '%a' "$dir")" != "${mode#0}" ]]; then
			chmod "$mode" "$dir"
			note="mode fixed ($mode)"
		fi
		if [[ -n "$owner" && "$(stat -c '%U:%G' "$dir")" != "$owner" ]]; then
			chown "$owner" "$dir"
			note="owner fixed ($owner)"
		fi
		status "$dir/" "$note"
		return
	fi
	mkdir -p "$dir"
	chmod "$mode" "$dir"
	[[ -n "$owner" ]] && chown "$owner" "$dir"
	status "$dir/" "created"
}

# 1. System user (not under --prefix: a dry install must not touch /etc/passwd).
owner=""
if [[ -n "$prefix" ]]; then
	status "user $user" "skipped (--prefix)"
elif getent passwd "$user" >/dev/null; then
	status "user $user" "unchanged"
	owner="$user:$user"
else
	nologin="$(command -v nologin || echo /usr/sbin/nologin)"
	useradd --system --user-group --home-dir /var/lib/ringbroker --no-create-home \
		--shell "$nologin" --comment "ringbroker broker" "$user"
	status "user $user" "created"
	owner="$user:$user"
fi

# 2. Directories.
# Shared system directories: create when missing, never re-mode.
for d in "$bin_dir" "$unit_dir"; do
	if [[ -d "$d" ]]; then
		status "$d/" "unchanged"
	else
		mkdir -p "$d"
		status "$d/" "created"
	fi
done
ensure_dir "$conf_dir" 0755
ensure_dir "$data_dir" 0750 "$owner"

# 3. Config: never overwrite an operator's file.
conf="$conf_dir/server.properties"
if [[ -e "$conf" ]]; then
	if cmp -s "$config_src" "$conf"; then
		status "$conf" "unchanged"
	else
		status "$conf" "unchanged (existing config kept; example: $here/server.properties)"
	fi
else
	install_file "$config_src" "$conf" 0644
fi

# 4. Binary and unit.
install_file "$binary" "$bin_dir/ringbrokerd" 0755
changed=0
install_file "$here/ringbrokerd.service" "$unit_dir/ringbrokerd.service" 0644
unit_changed=$changed # only a changed unit needs daemon-reload

# 5. systemd.
if [[ -n "$prefix" ]]; then
	status "systemctl daemon-reload/enable" "skipped (--prefix)"
elif [[ ! -d /run/systemd/system ]]; then
	status "systemctl daemon-reload/enable" "skipped (systemd is not running)"
else
	if [[ $unit_changed -eq 1 ]]; then
		systemctl daemon-reload
		status "systemctl daemon-reload" "done"
	else
		status "systemctl daemon-reload" "unchanged"
	fi
	if systemctl is-enabled --quiet ringbrokerd.service 2>/dev/null; then
		status "systemctl enable ringbrokerd" "unchanged"
	else
		systemctl enable ringbrokerd.service
		status "systemctl enable ringbrokerd" "done"
	fi
	echo "start it with: systemctl start ringbrokerd   (logs: journalctl -u ringbrokerd)"
fi
