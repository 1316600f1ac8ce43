#!/usr/bin/env bash
# install-test-deps.sh — installs the real Kafka clients the integration tests drive
# (tests/integration): kcat, confluent-kafka-python, kafka-python, systemd-analyze,
# KafkaJS, and librdkafka's rdkafka_performance tool. Idempotent: every dependency is
# checked first, `apt-get update` runs only when a Debian package is actually missing,
# `npm ci` only when tests/js/node_modules does not already hold the locked kafkajs
# version, and rdkafka_performance is rebuilt only when .deps/bin lacks a binary built
# against the installed librdkafka-dev. Prints one line per dependency.
#
# rdkafka_performance: Debian ships no binary of it. Its source (examples/) needs
# rd.h, rdtime.h and a configured config.h from librdkafka's source package, so the
# script fetches that source with `apt-get source` into .deps/ (git-ignored), using a
# deb-src list of its own derived from the system's deb entries and its own lists
# and cache dirs under .deps/apt: /etc/apt and the system's package lists stay
# untouched. It runs librdkafka's ./configure with the optional features off (only
# config.h is used) and compiles the one example against the installed library
# (pkg-config rdkafka), so it speaks exactly the librdkafka that kcat uses.
#
# staticcheck: `make lint` runs one pinned version, installed with `go install` into
# .deps/bin (DEPS_BIN overrides the directory), never whatever staticcheck is on PATH:
# another version finds other things. `install-test-deps.sh --staticcheck` installs
# only that (what `make lint` calls); it needs Go and the module proxy, not root.
#
# Works non-interactively as root (CI=true); without root it only reports what is missing.
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

# python3 on PATH may be a pyenv shim that cannot see Debian's modules; the tests call
# /usr/bin/python3, so check with exactly that interpreter.
python=/usr/bin/python3
kafkajs_version=2.2.4

status() { printf '%-26s %s\n' "$1" "$2"; }

# staticcheck 2026.2.2 is module version v0.8.2 (the newest release when pinned; it
# reads go1.26 code). Newer ones: `go list -m -versions honnef.co/go/tools`.
staticcheck_version=v0.8.2
staticcheck_bin="${DEPS_BIN:-$repo_root/.deps/bin}/staticcheck"
have_staticcheck() {
	[ -x "$staticcheck_bin" ] && "$staticcheck_bin" -version 2>/dev/null | grep -q "(${staticcheck_version#v})"
}
install_staticcheck() {
	if ! have_staticcheck; then
		echo "installing staticcheck@$staticcheck_version into ${staticcheck_bin%/*}"
		mkdir -p "${staticcheck_bin%/*}"
		GOBIN="$(cd "${staticcheck_bin%/*}" && pwd)" go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
	fi
	if have_staticcheck; then
		status "staticcheck@$staticcheck_version" ok
	else
		status "staticcheck@$staticcheck_version" MISSING
		return 1
	fi
}
if [ "${1:-}" = --staticcheck ]; then
	install_staticcheck
	exit
fi

# have_* return 0 when the dependency is usable as the tests will use it.
have_kcat() { command -v kcat >/dev/null 2>&1; }
have_systemd_analyze() { command -v systemd-analyze >/dev/null 2>&1; }
have_py_module() { [ -x "$python" ] && "$python" -c "import $1" >/dev/null 2>&1; }
have_node() { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }
have_librdkafka_dev() { pkg-config --exists rdkafka >/dev/null 2>&1; }
# rdkafka_performance lives in .deps/bin; a stamp beside it names the librdkafka-dev
# version it was built against, so an upgrade of the library triggers a rebuild.
deps_dir="$repo_root/.deps"
rdkperf="$deps_dir/bin/rdkafka_performance"
rdk_dev_version() { dpkg-query -W -f='${Version}' librdkafka-dev 2>/dev/null; }
have_rdkafka_performance() {
	[ -x "$rdkperf" ] && [ -f "$rdkperf.version" ] && [ "$(cat "$rdkperf.version")" = "$(rdk_dev_version)" ]
}
have_kafkajs() {
	local pkg="$repo_root/tests/js/node_modules/kafkajs/package.json"
	[ -f "$pkg" ] && grep -q "\"version\": \"$kafkajs_version\"" "$pkg"
}

# Collect the Debian packages that are missing, then install them in one apt transaction.
missing=()
have_kcat || missing+=(kcat)
have_py_module confluent_kafka || missing+=(python3-confluent-kafka)
have_py_module kafka || missing+=(python3-kafka)
have_systemd_analyze || missing+=(systemd)
have_node || missing+=(nodejs npm)
have_librdkafka_dev || missing+=(librdkafka-dev)
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v dpkg-source >/dev/null 2>&1 || missing+=(dpkg-dev)

if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages: ${missing[*]} (re-run as root to install)" >&2
		exit 1
	fi
	echo "installing Debian packages: ${missing[*]}"
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

fail=0
check() { # check NAME PREDICATE... : print status, remember failures
	local name="$1"
	shift
	if "$@"; then
		status "$name" ok
	else
		status "$name" MISSING
		fail=1
	fi
}
check kcat have_kcat
check python3-confluent-kafka have_py_module confluent_kafka
check python3-kafka have_py_module kafka
check systemd-analyze have_systemd_analyze
check node/npm have_node

if have_node && ! have_kafkajs; then
	echo "installing kafkajs@$kafkajs_version into tests/js"
	(cd "$repo_root/tests/js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
check "kafkajs@$kafkajs_version" have_kafkajs

# deb_src_list converts the system's deb sources (deb822 *.sources and one-line
# *.list/sources.list files that are enabled) into one-line deb-src entries.
deb_src_list() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '
		function flush(  n, m, i, j, u, s) {
			if (types ~ /(^| )deb( |$)/ && uris != "" && enabled != "no") {
				n = split(uris, u, " "); m = split(suites, s, " ")
				for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
					printf "deb-src %s%s %s %s\n", (signed != "" ? "[signed-by=" signed "] " : ""), u[i], s[j], comps
			}
			types = uris = suites = comps = signed = enabled = ""
		}
		/^[[:space:]]*$/ { flush(); next }
		/^Types:/      { sub(/^Types:[[:space:]]*/, "");      types = $0 }
		/^URIs:/       { sub(/^URIs:[[:space:]]*/, "");       uris = $0 }
		/^Suites:/     { sub(/^Suites:[[:space:]]*/, "");     suites = $0 }
		/^Components:/ { sub(/^Components:[[:space:]]*/, ""); comps = $0 }
		/^Signed-By:/  { sub(/^Signed-By:[[:space:]]*/, "");  signed = $0 }
		/^Enabled:/    { sub(/^Enabled:[[:space:]]*/, "");    enabled = $0 }
		END { flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f"
	done
}

build_rdkafka_performance() {
	local version apt_dir src_dir tree
	version="$(rdk_dev_version)"
	apt_dir="$deps_dir/apt"
	src_dir="$deps_dir/src"
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$src_dir" "$deps_dir/bin"
	deb_src_list >"$apt_dir/sources.list"
	if [ ! -s "$apt_dir/sources.list" ]; then
		echo "no deb entries in /etc/apt to derive a deb-src list from" >&2
		return 1
	fi
	local apt_opts=(
		-o "Dir::Etc::sourcelist=$apt_dir/sources.list"
		-o "Dir::Etc::sourceparts=-"
		-o "Dir::State::Lists=$apt_dir/lists"
		-o "Dir::Cache=$apt_dir/cache"
		-o "APT::Sandbox::User=root"
	)
	tree="$src_dir/librdkafka-${version%-*}"
	if [ ! -f "$tree/examples/rdkafka_performance.c" ]; then
		echo "fetching librdkafka $version source into .deps/src"
		apt-get "${apt_opts[@]}" update -qq >/dev/null
		(cd "$src_dir" && apt-get "${apt_opts[@]}" source -qq "librdkafka=$version" >"$deps_dir/source.log" 2>&1) ||
			{ echo "apt-get source librdkafka=$version failed; see .deps/source.log" >&2; return 1; }
	fi
	if [ ! -f "$tree/config.h" ]; then
		# Only config.h is used: every optional feature off keeps configure fast and
		# free of extra -dev packages.
		(cd "$tree" && ./configure --no-download --disable-zlib --disable-zstd --disable-ssl \
			--disable-gssapi --disable-curl --disable-lz4-ext --disable-regex-ext \
			--disable-syslog >"$deps_dir/configure.log" 2>&1) ||
			{ echo "librdkafka configure failed; see .deps/configure.log" >&2; return 1; }
	fi
	# shellcheck disable=SC2046 # pkg-config's flags are meant to split
	gcc -O2 -w -I"$tree" -I"$tree/src" -o "$rdkperf" "$tree/examples/rdkafka_performance.c" \
		$(pkg-config --cflags --libs rdkafka) -lm -lpthread
	printf '%s\n' "$version" >"$rdkperf.version"
}

if have_librdkafka_dev && ! have_rdkafka_performance; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "rdkafka_performance not built (re-run as root)" >&2
	else
		build_rdkafka_performance || true
	fi
fi
check librdkafka-dev have_librdkafka_dev
check "rdkafka_performance" have_rdkafka_performance
install_staticcheck || fail=1

exit "$fail"
