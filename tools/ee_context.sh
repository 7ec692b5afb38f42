#!/usr/bin/env bash
# The execution environment's build context, from this working tree and without the network:
# build the collection, put the tarball where execution-environment.yml picks it up
# (.cache/ee/sre-rollback.tar.gz), and run `ansible-builder create`. Then, with podman or docker:
#   ansible-builder build -t sre-rollback-ee:0.1.0 --context .cache/ee/context
# Usage: tools/ee_context.sh [CONTEXT_DIR]   (default .cache/ee/context)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
context="${1:-$root/.cache/ee/context}"
bin="${SRE_ROLLBACK_BIN:-$root/.venv/bin}"
dist="$root/.cache/ee/dist"

rm -rf "$dist"
mkdir -p "$dist"
"$bin/ansible-galaxy" collection build --force --output-path "$dist" "$root" >/dev/null
tarballs=("$dist"/sre-rollback-*.tar.gz)
# A fixed name, so execution-environment.yml need not change with the collection's version.
cp "${tarballs[0]}" "$root/.cache/ee/sre-rollback.tar.gz"
"$bin/ansible-builder" create --file "$root/execution-environment.yml" --context "$context" \
  --output-filename Containerfile >/dev/null
echo "$context"
