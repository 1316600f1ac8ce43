#!/usr/bin/env bash
# install-test-deps.sh — installs the real Kafka clients the integration tests drive
# (tests/integration): kcat, confluent-kafka-python, kafka-python, systemd-analyze and
# KafkaJS. Idempotent: every dependency is checked first, `apt-get update` runs only
# when a Debian package is actually missing, and `npm ci` only when tests/js/node_modules
# does not already hold the locked kafkajs version. Prints one line per dependency.
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

# have_* return 0 when the dependency is usable as the tests will use it.
have_kcat() { command -v kcat >/dev/null 2>&1; }
have_systemd_analyze() { command -v systemd-analyze >/dev/null 2>&1; }
have_py_module() { [ -x "$python" ] && "$python" -c "import $1" >/dev/null 2>&1; }
have_node() { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }
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

exit "$fail"
