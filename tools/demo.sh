#!/usr/bin/env bash
# make demo: the automatic swap-back of fundrbolt's runbook, against the local sandbox.
#   1. deploy a good build (1.5.0) through the staging slot: promoted
#   2. deploy a build (1.6.0) that passes in staging but breaks on production's
#      configuration: production fails its health check, and the collection
#      swaps the previous build back on its own
#   3. print what happened, step by step with durations, from each run's incident
#      record (the recovery_timeline callback); stop the sandbox
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export SRE_SANDBOX_DIR=${SRE_SANDBOX_DIR:-$root/.sandbox}
incidents=$(mktemp -d)
trap 'rm -rf "$incidents"' EXIT

"$root/tools/with_sandbox.sh" bash -s "$incidents" <<'DEMO'
set -euo pipefail
incidents=$1
# Each run's incident record (incident.json, .md, .html) lands in <incidents>/<incident_id>/.
export SRE_ROLLBACK_INCIDENT_DIR=$incidents
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0}
py=.venv/bin/python
admin() { curl -sf --cacert "$REQUESTS_CA_BUNDLE" -X "$1" "$SRE_SANDBOX_URL/$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
deploy() {  # deploy <image> <incident id of the run>
  .venv/bin/ansible-playbook playbooks/deploy-with-auto-rollback.yml -e env=sandbox --limit fundrbolt-api-sandbox \
    -e image="$1" -e incident_id="$2" -e severity=P1 -e deploy_with_auto_rollback_fail_when_rolled_back=false
}

echo "== sandbox up: $AZURE_ARM_ENDPOINT (App Service fundrbolt-sandbox-api, production on 1.4.2)"
admin POST reset >/dev/null
# Real swaps take tens of seconds; two keep the demo short while still long-running.
admin PUT settings '{"swap_duration_s": 2}' >/dev/null

echo; echo "== 1. deploy a good build: registry.sandbox.local/fundrbolt-api:1.5.0"
deploy registry.sandbox.local/fundrbolt-api:1.5.0 demo-1-good-build

echo; echo "== 2. deploy a bad build: registry.sandbox.local/fundrbolt-api:1.6.0 (healthy in staging, breaks on production settings)"
deploy registry.sandbox.local/fundrbolt-api:1.6.0 demo-2-bad-build

echo; echo "== what production serves now"
url=$(admin GET state | $py -c 'import json, sys
site = [s for s in json.load(sys.stdin)["sites"] if s["name"] == "fundrbolt-sandbox-api"][0]
print(site["slots"]["production"]["url"] + "/health")')
$py tools/demo_summary.py "$incidents" "$url" registry.sandbox.local/fundrbolt-api:1.5.0
DEMO
