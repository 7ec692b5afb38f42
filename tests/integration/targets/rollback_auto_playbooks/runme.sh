#!/usr/bin/env bash
# root, log, rollback_locks and the helpers are set by the sourced playbook_runner.sh,
# which shellcheck does not follow without -x.
# shellcheck disable=SC2154
# The decide-and-act playbooks end to end against the sandbox, run as a person
# runs them: automatic rollback after a deploy, Kubernetes and P2 procedures.
# shellcheck source=../setup_playbook_runner/playbook_runner.sh
source "$(dirname "$0")/../setup_playbook_runner/playbook_runner.sh"

admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
site_url() {  # site_url <app> [slot]: the slot's https://127.0.0.1:PORT
  admin GET state | python -c 'import json, sys
print([s for s in json.load(sys.stdin)["sites"] if s["name"] == sys.argv[1]][0]["slots"][sys.argv[2]]["url"])' "$1" "${2:-production}"
}

echo "== auto-rollback: a bad input is refused before anything is watched"
play 2 playbooks/auto-rollback.yml -e env=sandbox -e trigger_source=nagios
says "Nothing was watched or changed"

echo "== auto-rollback: production turns unhealthy during the watch and is swapped back"
serves "$(prod_url)/health" 1.4.2
admin PUT builds '{"registry.sandbox.local/fundrbolt-api:1.4.2": {"healthy": false}}' >/dev/null
play 0 playbooks/auto-rollback.yml -e env=sandbox --limit fundrbolt-api-sandbox -e watch=60 -e interval=0.3
says "health_check_failures"
says "rolled back (P1"
serves "$(prod_url)/health" 1.4.1
# Around it: the freeze was checked and this automatic rollback counted, the lock given back,
# and the verification's watch saw the rollback hold.
python - "$rollback_locks/fundrbolt-api-sandbox.freeze.json" <<'PY' || { echo "FAIL: the automatic rollback was not counted"; exit 1; }
import json, sys
state = json.load(open(sys.argv[1]))
assert len(state["history"]) == 1, state
PY
[ ! -e "$rollback_locks/fundrbolt-api-sandbox.lock" ] || { echo "FAIL: the lock was not released"; exit 1; }
says "watch ok"

echo "== auto-rollback: the build in staging is unhealthy too; the swap is refused, nothing changes, the lock is given back"
admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
admin PUT builds '{"registry.sandbox.local/fundrbolt-api:1.4.2": {"healthy": false},
                   "registry.sandbox.local/fundrbolt-api:1.4.1": {"healthy": false}}' >/dev/null
play 2 playbooks/auto-rollback.yml -e env=sandbox --limit fundrbolt-api-sandbox -e watch=60 -e interval=0.3
says 'at "Act | swap the last known good build into production"'
says "is unhealthy there too"
says "production now runs registry.sandbox.local/fundrbolt-api:1.4.2"
[ "$(admin GET calls | python -c 'import json, sys
print(sum(1 for c in json.load(sys.stdin)["calls"] if c["method"] == "POST" and c["path"].endswith("/slotsswap")))')" = 0 ] \
  || { echo "FAIL: a swap was attempted with an unhealthy source"; exit 1; }
[ ! -e "$rollback_locks/fundrbolt-api-sandbox.lock" ] || { echo "FAIL: the lock outlived the refused rollback"; exit 1; }
admin PUT builds '{"registry.sandbox.local/fundrbolt-api:1.4.1": {"healthy": true}}' >/dev/null
# The run before swapped 1.4.1 into production; this case started from the seed (1.4.2), so swap it back as it was.
play 0 playbooks/auto-rollback.yml -e env=sandbox --limit fundrbolt-api-sandbox -e watch=60 -e interval=0.3 \
  -e pre_rollback_checklist=false -e post_rollback_verify=false
serves "$(prod_url)/health" 1.4.1

echo "== auto-rollback: a healthy service is watched to the end and left alone"
play 0 playbooks/auto-rollback.yml -e env=sandbox --limit fundrbolt-api-sandbox -e watch=2 -e interval=0.5 \
  -e '{"rollback_trigger_policy": {"error_rate": {"window_s": 1}, "response_time": {"window_s": 1}}}'
recap fundrbolt-api-sandbox 0 0
says "no trigger fired"
serves "$(prod_url)/health" 1.4.1

echo "== rollback.yml: a P4 is fixed forward, an unknown severity is refused"
play 0 playbooks/rollback.yml -e env=sandbox -e severity=P4 -e component=backend
says "Nothing was rolled back"
play 2 playbooks/rollback.yml -e env=sandbox -e severity=P9 -e component=backend
says "P9"

echo "== rollback.yml: a step failing mid-way stops, records, notifies rollback_failed with each component's state"
admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
# The platform fails the swap (the long-running operation ends Failed), and PagerDuty is down:
# the failure must still be reported, on the channels that work, with the original step and error.
admin POST faults '{"kind": "lro_fail", "count": 1, "method": "POST", "path": "slotsswap", "message": "a worker failed to warm up"}' >/dev/null
admin POST notify/faults '{"path": "/v2/enqueue", "status": 500, "count": 20}' >/dev/null
incidents=$(mktemp -d)
SRE_ROLLBACK_INCIDENT_DIR=$incidents play 2 playbooks/rollback.yml -e env=sandbox -e severity=P1 -e component=backend \
  --limit fundrbolt-api-sandbox -e rollback_to_build=1.4.1 -e incident_id=INC-77
says 'backend failed on fundrbolt-api-sandbox at "Act | swap the last known good build into production"'
says "a worker failed to warm up"
says "State of each component: fundrbolt-api-sandbox: FAILED at \"Act | swap the last known good build into production\"; production now runs registry.sandbox.local/fundrbolt-api:1.4.2"
says "rollback_failed: 1 sent, 1 undelivered"
serves "$(prod_url)/health" 1.4.2
# The checklist took the lock before the swap; it was given back although the swap failed.
[ ! -e "$rollback_locks/fundrbolt-api-sandbox.lock" ] || { echo "FAIL: the lock outlived the failed rollback"; exit 1; }
admin GET notify/messages | python -c '
import json, sys
slack = [m["body"] for m in json.load(sys.stdin)["messages"] if m["channel"] == "slack"]
titles = [body["text"] for body in slack]
assert len(titles) == 2 and "Rollback Initiated" in titles[0] and titles[1] == "\u274c ROLLBACK FAILED: backend", titles
text = slack[1]["attachments"][0]["text"]
for expected in ("Failed step: backend: Act | swap the last known good build into production", "a worker failed to warm up",
                 "- fundrbolt-api-sandbox: FAILED at", "production now runs registry.sandbox.local/fundrbolt-api:1.4.2",
                 "Incident record: INC-77"):
    assert expected in text, (expected, text)
' || { echo "FAIL: the channels did not get rollback_started then rollback_failed with the state"; exit 1; }
python - "$incidents/INC-77/incident.json" <<'PY' || { echo "FAIL: the incident record does not name the failed step"; exit 1; }
import json, sys
record = json.load(open(sys.argv[1]))
assert record["recovery"]["verdict"] == "not_recovered", record["recovery"]
assert "Act | swap the last known good build into production" in record["recovery"]["reason"], record["recovery"]["reason"]
PY
rm -rf "$incidents"

echo "== P2 end to end: a bad configuration change makes the app slow; the procedure reverts it"
admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
SRE_ROLLBACK_STATE_DIR=$(mktemp -d)
export SRE_ROLLBACK_STATE_DIR
# 1.5.0 is slow with a one-connection database pool, as the builds before it are.
admin PUT builds '{"registry.sandbox.local/fundrbolt-api:1.5.0":
  {"slow_with_settings": {"settings": {"DB_POOL_SIZE": "1"}, "latency_ms": 3500}}}' >/dev/null
play 0 playbooks/deploy-with-auto-rollback.yml -e env=sandbox --limit fundrbolt-api-sandbox \
  -e image=registry.sandbox.local/fundrbolt-api:1.5.0
test -s "$SRE_ROLLBACK_STATE_DIR/app-settings/fundrbolt-sandbox-api-production-last-deploy.json"
ansible localhost -m sre.rollback.webapp_app_settings -e ansible_python_interpreter="$(command -v python)" \
  -a '{"resource_group": "rg-fundrbolt-sandbox", "name": "fundrbolt-sandbox-api", "action": "restore",
       "app_settings": {"DB_POOL_SIZE": "1"}, "mode": "merge"}' >"$log" 2>&1 || { cat "$log"; exit 1; }
slow=$(curl -s -o /dev/null -w '%{time_total}' --cacert "$REQUESTS_CA_BUNDLE" "$(prod_url)/health")
python -c "import sys; sys.exit(0 if float('$slow') > 3 else 1)" || { echo "FAIL: the bad setting did not slow the app ($slow s)"; exit 1; }
play 0 playbooks/rollback.yml -e env=sandbox -e severity=P2 -e component=backend --limit fundrbolt-api-sandbox
says "DB_POOL_SIZE"
fast=$(curl -s -o /dev/null -w '%{time_total}' --cacert "$REQUESTS_CA_BUNDLE" "$(prod_url)/health")
python -c "import sys; sys.exit(0 if float('$fast') < 3 else 1)" || { echo "FAIL: still slow after the revert ($fast s)"; exit 1; }
play 0 playbooks/rollback-config.yml -e env=sandbox -e what=app_settings --limit fundrbolt-api-sandbox
says "settings already as snapshotted"
rm -rf "$SRE_ROLLBACK_STATE_DIR"; unset SRE_ROLLBACK_STATE_DIR

echo "== scale: one more instance for the plan, then back to the size recorded before"
admin PUT serverfarms/settings '{"scale_s": 0.3}' >/dev/null
plan_size() { admin GET serverfarms | python -c 'import json, sys
plan = [p for p in json.load(sys.stdin)["plans"] if p["name"] == "asp-fundrbolt-sandbox"][0]
print("%s x %s" % (plan["sku"], plan["capacity"]))'; }
[ "$(plan_size)" = "P1v3 x 2" ] || { echo "FAIL: plan starts at $(plan_size)"; exit 1; }
play 0 playbooks/scale.yml -e env=sandbox --limit fundrbolt-api-sandbox -e step=1
says 'To scale back: -e'
says '"scale_to": {"sku": "P1v3", "tier": "PremiumV3", "capacity": 2}'
[ "$(plan_size)" = "P1v3 x 3" ] || { echo "FAIL: plan at $(plan_size), expected P1v3 x 3"; exit 1; }
play 0 playbooks/scale.yml -e env=sandbox --limit fundrbolt-api-sandbox -e '{"scale_to": {"sku": "P1v3", "capacity": 2}}'
[ "$(plan_size)" = "P1v3 x 2" ] || { echo "FAIL: plan at $(plan_size) after scaling back"; exit 1; }
play 2 playbooks/scale.yml -e env=sandbox --limit fundrbolt-api-sandbox -e step=1 -e sku=P3v3
says "at most one of"

image_of() {  # image_of <namespace> <service>: the image the Deployment mystira-<service> runs
  python - "$1" "mystira-$2" <<'PY'
import os, sys
from kubernetes import client, config
api = client.AppsV1Api(config.new_client_from_config(config_file=os.environ["SRE_SANDBOX_KUBECONFIG"]))
print(api.read_namespaced_deployment(sys.argv[2], sys.argv[1]).spec.template.spec.containers[0].image)
PY
}

echo "== Kubernetes: rollout undo through rollback-backend.yml, then a named revision"
admin POST reset >/dev/null
# The checklist and the verification are exercised by the slot-swap runs; off here to keep the target short.
play 0 playbooks/rollback-backend.yml -e env=sandbox --limit mystira-publisher-sandbox \
  -e pre_rollback_checklist=false -e post_rollback_verify=false
recap mystira-publisher-sandbox 1 0
image_of mystira publisher | grep -q ':v1.1.0' || { echo "FAIL: publisher runs $(image_of mystira publisher)"; exit 1; }
play 0 playbooks/rollback-backend.yml -e env=sandbox --limit mystira-publisher-sandbox -e rollback_to_revision=1 \
  -e pre_rollback_checklist=false -e post_rollback_verify=false
image_of mystira publisher | grep -q ':v1.0.0' || { echo "FAIL: publisher runs $(image_of mystira publisher)"; exit 1; }
play 0 playbooks/scale.yml -e env=sandbox --limit mystira-publisher-sandbox -e replicas=3
says "mystira-publisher 2 -> 3"

echo "== system rollback of one service: slot swap, then its knowledge index rebuilt from its indexer"
admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
admin PUT search/settings '{"indexer_duration_s": 0.5}' >/dev/null
play 0 playbooks/rollback-system.yml -e env=sandbox --limit sf-ai-assistant-sandbox -e rollback_to_tag=v1.2.2 \
  -e rebuild_search=true -e search_force_rebuild=true -e '{"rollback_to_builds": {"sf-ai-assistant-sandbox": "2.7.3"}}'
says "rebuilt (force)"
says "120 documents"
serves "$(site_url app-sf-ai-assistant-sandbox-crm)/health" 2.7.3

echo "== system rollback: the first failing step stops the run; nothing after it is touched"
admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
play 2 playbooks/rollback-system.yml -e env=sandbox -e rollback_to_tag=v1.2.2
says "answers healthy"
serves "$SRE_SANDBOX_SWA_FUNDRBOLT_SANDBOX_WEB_URL/version.json" 1.2.3
# The channels heard which step failed and the state of every component: the failed services,
# and the steps after the backend not started.
admin GET notify/messages | python -c '
import json, sys
texts = [m["body"]["attachments"][0]["text"] for m in json.load(sys.stdin)["messages"]
         if m["channel"] == "slack" and "ROLLBACK FAILED: 1. backend" in m["body"]["text"]]
assert len(texts) == 1, texts
for expected in ("- fundrbolt-api-sandbox: FAILED at \"Decide | a healthy production is rolled back only to a named build\"",
                 "- 2. frontend: not started", "- 6. verify: not started"):
    assert expected in texts[0], (expected, texts[0])
' || { echo "FAIL: the system rollback did not report rollback_failed with each component's state"; exit 1; }

admin POST reset >/dev/null
echo "all decide-and-act playbooks behaved"
