#!/usr/bin/env bash
# Install the real servers the sandbox and the tests run on loopback, when the
# machine lacks them: Redis, PostgreSQL, Prometheus and shellcheck (for ansible-test
# sanity) from Debian, Azurite from npm (into .cache/node, never globally).
# Idempotent and quiet when all is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

apt_packages=()
command -v redis-server >/dev/null || apt_packages+=(redis-server redis-tools)
# ansible-test sanity skips its shellcheck test, silently, when shellcheck is missing.
command -v shellcheck >/dev/null || apt_packages+=(shellcheck)
pg_bins=(/usr/lib/postgresql/*/bin)
pg_bin=$(printf '%s\n' "${pg_bins[@]}" | sort -V | tail -1)
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || apt_packages+=(postgresql)
# The rollback_trigger tests query a real Prometheus scraping the sandbox apps (tests/sandbox/standin/monitor).
command -v prometheus >/dev/null || apt_packages+=(prometheus)
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "== installing from Debian: ${apt_packages[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  # --no-install-recommends: no node exporter, no extra services; the sandbox starts what it needs itself.
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${apt_packages[@]}" >/dev/null 2>&1 || {
    "${sudo_cmd[@]}" apt-get update -q >/dev/null
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${apt_packages[@]}" >/dev/null
  }
fi

azurite="$root/.cache/node/node_modules/.bin/azurite"
if [ ! -x "$azurite" ]; then
  echo "== installing Azurite from npm into .cache/node"
  mkdir -p "$root/.cache/node"
  npm install --prefix "$root/.cache/node" --no-audit --no-fund --loglevel=error azurite@3 >/dev/null
fi
