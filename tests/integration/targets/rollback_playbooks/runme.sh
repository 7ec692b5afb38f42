#!/usr/bin/env bash
# root, log, rollback_locks and the helpers are set by the sourced playbook_runner.sh,
# which shellcheck does not follow without -x.
# shellcheck disable=SC2154
# The rollback playbooks end to end against the sandbox, run as a person runs
# them: from the collection root, `-e env=sandbox`, the repository's inventory
# and ansible.cfg, the sandbox's environment loaded.
# shellcheck source=../setup_playbook_runner/playbook_runner.sh
source "$(dirname "$0")/../setup_playbook_runner/playbook_runner.sh"

admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null

echo "== a misspelt environment fails before anything runs"
play 2 playbooks/rollback-backend.yml -e env=prodution
says "Name the environment to roll back"

# The pre-rollback checklist and the post-rollback verification run around one rollback here
# (the slot swap to a named build); the other runs switch them off to keep the target short.
quick=(-e pre_rollback_checklist=false -e post_rollback_verify=false)

echo "== backend, slot swap: a healthy production is rolled back only to a named build"
play 2 playbooks/rollback-backend.yml -e env=sandbox --limit fundrbolt-api-sandbox "${quick[@]}"
says "answers healthy"
serves "$(prod_url)/health" 1.4.2

echo "== backend, slot swap to a named build: checklist first, verification after, the lock given back"
incidents=$(mktemp -d)
SRE_ROLLBACK_INCIDENT_DIR=$incidents play 0 playbooks/rollback-backend.yml -e env=sandbox --limit fundrbolt-api-sandbox \
  -e rollback_to_build=1.4.1 -e incident_id=INC-11
recap fundrbolt-api-sandbox 1 0
serves "$(prod_url)/health" 1.4.1
python - "$incidents/evidence/INC-11/fundrbolt-api-sandbox/index.json" <<'PY' || { echo "FAIL: no evidence bundle before the rollback"; exit 1; }
import json, sys
index = json.load(open(sys.argv[1]))
assert index, "the evidence index is empty"
PY
says "environment ok (production runs registry.sandbox.local/fundrbolt-api:1.4.1"
says "watch ok"
[ ! -e "$rollback_locks/fundrbolt-api-sandbox.lock" ] || { cat "$rollback_locks/fundrbolt-api-sandbox.lock"; echo "FAIL: the lock was not released"; exit 1; }
rm -rf "$incidents"
play 0 playbooks/rollback-backend.yml -e env=sandbox --limit fundrbolt-api-sandbox -e rollback_to_build=1.4.1 "${quick[@]}"
recap fundrbolt-api-sandbox 0 0

echo "== backend, blue/green controller"
play 0 playbooks/rollback-backend.yml -e env=sandbox --limit mvp011-api-sandbox "${quick[@]}"
recap mvp011-api-sandbox 1 0
serves "$SRE_SANDBOX_BLUEGREEN_URL/health" 2.3.1
play 0 playbooks/rollback-backend.yml -e env=sandbox --limit mvp011-api-sandbox -e rollback_to_build=2.3.1 "${quick[@]}"
recap mvp011-api-sandbox 0 0

echo "== deploy with automatic swap-back: the bad build goes back out on its own"
admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
play 2 playbooks/deploy-with-auto-rollback.yml -e env=sandbox --limit fundrbolt-api-sandbox \
  -e image=registry.sandbox.local/fundrbolt-api:1.6.0
says "ROLLED_BACK"
serves "$(prod_url)/health" 1.4.2

echo "== frontend: redeploy the previous tag through the deploy workflow"
admin PUT github/settings '{"run_duration_s": 0.3}' >/dev/null
serves "$SRE_SANDBOX_SWA_FUNDRBOLT_SANDBOX_WEB_URL/version.json" 1.2.3
play 0 playbooks/rollback-frontend.yml -e env=sandbox -e rollback_to_tag=v1.2.2
recap fundrbolt-web-sandbox 1 0
serves "$SRE_SANDBOX_SWA_FUNDRBOLT_SANDBOX_WEB_URL/version.json" 1.2.2
play 0 playbooks/rollback-frontend.yml -e env=sandbox -e rollback_to_tag=v1.2.2
recap fundrbolt-web-sandbox 0 0

echo "== code: revert the bad release, push, wait for the pipeline, verify"
admin POST reset >/dev/null
admin PUT github/settings '{"run_duration_s": 0.3}' >/dev/null
play 0 playbooks/rollback-code.yml -e env=sandbox -e commit=v1.2.3 -e expected_version=1.2.2 -e incident=INC-42
recap fundrbolt-web-sandbox 1 0
serves "$SRE_SANDBOX_SWA_FUNDRBOLT_SANDBOX_WEB_URL/version.json" 1.2.2
git --git-dir="$SRE_SANDBOX_GIT_ORIGIN" log -1 --format=%B main | grep -q "Rollback-Incident: INC-42"
play 0 playbooks/rollback-code.yml -e env=sandbox -e commit=v1.2.3 -e expected_version=1.2.2
recap fundrbolt-web-sandbox 0 0

admin POST reset >/dev/null
echo "all rollback playbooks behaved"
