#!/usr/bin/env bash
# Run a command with the sandbox up and its environment loaded, and always
# stop the sandbox afterwards, so nothing is left running whatever happens.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python="$root/.venv/bin/python"
export SRE_SANDBOX_DIR=${SRE_SANDBOX_DIR:-$root/.sandbox}
"$python" "$root/tests/sandbox/sandboxctl.py" start >/dev/null
trap '"$python" "$root/tests/sandbox/sandboxctl.py" stop >/dev/null' EXIT
# shellcheck disable=SC1091
source "$SRE_SANDBOX_DIR/env.sh"
"$@"
