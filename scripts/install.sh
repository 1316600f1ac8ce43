#!/usr/bin/env bash
# install.sh: install ringbrokerd as a systemd service.
#
#   scripts/install.sh [--prefix DIR] [--binary PATH]
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
usage() { echo "usage: $0 [--prefix DIR] [--binary PATH]" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
	case "$1" in
	--prefix) [[ $# -ge 2 ]] || usage; prefix="$2"; shift 2 ;;
	--prefix=*) prefix="${1#--prefix=}"; shift ;;
	--binary) [[ $# -ge 2 ]] || usage; binary="$2"; shift 2 ;;
	--binary=*) binary="${1#--binary=}"; shift ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	*) usage ;;
	esac
done

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
	if cmp -s "$here/server.properties" "$conf"; then
		status "$conf" "unchanged"
	else
		status "$conf" "unchanged (existing config kept; example: $here/server.properties)"
	fi
else
	install_file "$here/server.properties" "$conf" 0644
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
