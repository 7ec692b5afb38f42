#!/usr/bin/env bash
# root, log, rollback_locks and the helpers are set by the sourced playbook_runner.sh,
# which shellcheck does not follow without -x.
# shellcheck disable=SC2154
# The pre-rollback checklist role against the sandbox, run as a playbook runs it (checklist.yml):
# the evidence bundle and its index, check mode, a missing known-good artifact, a denied permission
# (Azure and Kubernetes), a lock held by another run, and the automatic-rollback freeze. Every
# failure must name what is wrong and leave the service and the lock as they were.
# shellcheck source=../setup_playbook_runner/playbook_runner.sh
source "$(dirname "$0")/../setup_playbook_runner/playbook_runner.sh"
target_dir="$root/tests/integration/targets/pre_rollback_checklist"
work=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$work"' EXIT
locks="$work/locks" evidence="$work/evidence"
export SRE_ROLLBACK_INCIDENT_DIR="$work/incidents"  # the recovery timeline's record stays out of the checkout

checklist() {  # checklist <expected rc> <host> [args...]
  local expected=$1 host=$2; shift 2
  play "$expected" "$target_dir/checklist.yml" -e env=sandbox -e target_hosts="$host" \
    -e pre_rollback_checklist_lock_dir="$locks" -e incident_evidence_dir="$evidence" "$@"
}
json() {  # json <file> <python expression over d>: print it
  python -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
expect() {  # expect <what> <got> <wanted>
  [ "$2" = "$3" ] || { cat "$log"; echo "FAIL: $1: got '$2', expected '$3'"; exit 1; }
}
no_lock() { [ ! -e "$locks/$1.lock" ] || { cat "$locks/$1.lock"; echo "FAIL: lock $1 left behind"; exit 1; }; }
prod_build() { curl -sf --cacert "$REQUESTS_CA_BUNDLE" "$(prod_url)/health" | python -c 'import json, sys; print(json.load(sys.stdin)["version"])'; }

api=fundrbolt-api-sandbox k8s=mystira-publisher-sandbox both="fundrbolt-api-sandbox,mystira-publisher-sandbox"
admin POST reset >/dev/null
before=$(prod_build)

echo "== check mode: the evidence is still captured, no lock is taken"
checklist 0 "$both" --check -e incident_id=INC-CHECK
recap $api 0 0
recap $k8s 0 0
bundle="$evidence/INC-CHECK/$api"
expect "check mode recorded" "$(json "$bundle/index.json" 'd["check_mode"]')" True
expect "captured in check mode" "$(json "$bundle/index.json" 'sorted(d["captured"])')" \
  "['key_vault_secrets.json', 'metrics.json', 'slots.json']"
no_lock $api
no_lock $k8s

echo "== evidence bundle, artifact, credentials, lock (slot swap and Kubernetes); released after"
checklist 0 "$both" -e incident_id=INC-7 -e '{"targets": {"'$api'": {"build": "1.4.1"}, "'$k8s'": {"revision": 2}}}'
recap $api 0 0
recap $k8s 0 0
bundle="$evidence/INC-7/$api"
expect "index host" "$(json "$bundle/index.json" 'd["host"], d["incident_id"], d["not_captured"]')" "('$api', 'INC-7', [])"
expect "slots evidence" "$(json "$bundle/slots.json" 'sorted(d["slots"])')" "['production', 'staging']"
expect "metrics snapshot" \
  "$(json "$bundle/metrics.json" 'd["evaluations"], d["verdict"] in ("healthy", "watching", "rollback", "unknown")')" "(1, True)"
expect "secret versions without values" "$(json "$bundle/key_vault_secrets.json" 'len(d["results"][0]["versions"]) > 1')" True
if grep -rq -- "$AZURE_CLIENT_SECRET" "$evidence" || grep -rq "postgresql://fundrbolt:" "$evidence"; then
  echo "FAIL: a secret value is in the evidence bundle"; exit 1
fi
expect "rollout evidence" \
  "$(json "$evidence/INC-7/$k8s/rollouts.json" '[r["name"] for r in d["results"]], "events" in d["results"][0]')" \
  "(['mystira-publisher'], True)"
says '"artifact": {"ok": true, "detail": "staging slot of fundrbolt-sandbox-api holds build 1.4.1"}'
says '"artifact": {"ok": true, "detail": "revision 2 is in the history of mystira-publisher"}'
says '"credentials": {"ok": true'
says 'HOLDER=.*@'
no_lock $api
no_lock $k8s

echo "== the known-good build / revision is missing: clear failure, evidence kept, nothing changed"
checklist 2 "$both" -e incident_id=INC-8 -e '{"targets": {"'$api'": {"build": "9.9.9"}, "'$k8s'": {"revision": 42}}}'
says "known-good build 9.9.9 is not in the staging slot of fundrbolt-sandbox-api"
says "mystira-publisher has no revision 42 (history: 1, 2, 3)"
says "Nothing was changed"
[ -f "$evidence/INC-8/$api/slots.json" ] || { echo "FAIL: evidence not kept"; exit 1; }
no_lock $api
no_lock $k8s
expect "production untouched" "$(prod_build)" "$before"

echo "== the identity may not swap slots / patch Deployments: clear failure naming identity and permission"
admin POST authorization/deny '{"actions": ["Microsoft.Web/sites/slots/slotsswap/action"]}' >/dev/null
admin PUT kubernetes/access '{"deny": [{"verb": "patch", "resource": "deployments", "namespace": "mystira"}]}' >/dev/null
checklist 2 "$both" -e incident_id=INC-9
says "Azure client $AZURE_CLIENT_ID may not do what the backend rollback needs. Missing: Microsoft.Web/sites/slots/slotsswap/action"
says "Missing: patch deployments.apps -n mystira"
no_lock $api
no_lock $k8s
admin POST authorization/reset >/dev/null
admin PUT kubernetes/access '{"deny": []}' >/dev/null

echo "== a lock held by another run (named in the error, stays theirs); the N-th automatic rollback is refused"
ansible localhost -m sre.rollback.rollback_lock \
  -a "name=$api path=$locks holder=alice@ops-laptop:4242 reason='manual P2 rollback'" >"$log" 2>&1
for _ in 1 2 3; do
  ansible localhost -m sre.rollback.rollback_freeze -a "name=$k8s action=record path=$locks" >"$log" 2>&1
done
checklist 2 "$both" -e incident_id=INC-10 -e pre_rollback_checklist_automatic=true
says "held by alice@ops-laptop:4242"
says "mystira-publisher-sandbox is frozen"
expect "lock still alice's" "$(json "$locks/$api.lock" 'd["holder"]')" "alice@ops-laptop:4242"
no_lock $k8s
ansible localhost -m sre.rollback.rollback_lock -a "name=$api path=$locks holder=alice@ops-laptop:4242 state=released" \
  >"$log" 2>&1

admin POST reset >/dev/null
echo "pre_rollback_checklist behaved"
