#!/usr/bin/env bash
# Install the real servers the sandbox and the tests run on loopback, when the
# machine lacks them: Redis and PostgreSQL from Debian, Azurite from npm (into
# .cache/node, never globally). Idempotent and quiet when all is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

apt_packages=()
command -v redis-server >/dev/null || apt_packages+=(redis-server redis-tools)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || apt_packages+=(postgresql)
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "== installing from Debian: ${apt_packages[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get install -y -q "${apt_packages[@]}" >/dev/null 2>&1 || {
    "${sudo_cmd[@]}" apt-get update -q >/dev/null
    "${sudo_cmd[@]}" apt-get install -y -q "${apt_packages[@]}" >/dev/null
  }
fi

azurite="$root/.cache/node/node_modules/.bin/azurite"
if [ ! -x "$azurite" ]; then
  echo "== installing Azurite from npm into .cache/node"
  mkdir -p "$root/.cache/node"
  npm install --prefix "$root/.cache/node" --no-audit --no-fund --loglevel=error azurite@3 >/dev/null
fi
