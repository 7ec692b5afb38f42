#!/usr/bin/env bash
# roles/job_guard through real ansible-playbook runs: each bad input (an answer outside its
# choices, a missing credential, a production run from the controller without the approved
# workflow) stops the job before the play that changes something, with a message that names
# the problem; a good request goes through, and a second run changes nothing.
set -euo pipefail
target_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
log="$work/log"
trap 'rm -rf "$work"' EXIT

# ansible-test's own ANSIBLE_* settings (its inventory, its ansible.cfg) are not what a job has.
for name in $(env | grep -o '^ANSIBLE_[A-Z_]*'); do
  case $name in ANSIBLE_COLLECTIONS_PATH|ANSIBLE_TEST_*) ;; *) unset "$name" ;; esac
done
# Start with no credential at all: no variables, and a HOME without ~/.azure or ~/.kube.
for name in $(env | grep -oE '^(AZURE_[A-Z_]*|K8S_AUTH_[A-Z_]*|KUBECONFIG|GITHUB_TOKEN|GH_TOKEN|REDIS_PASSWORD|IDENTITY_ENDPOINT|MSI_ENDPOINT)='); do
  unset "${name%=}"
done
export HOME="$work/home" ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=0
mkdir -p "$HOME" "$work/changed"
printf 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n' >"$work/kubeconfig"
azure() { export AZURE_CLIENT_ID=00000000-0000-0000-0000-0000000000c1 AZURE_TENANT_ID=00000000-0000-0000-0000-0000000000a1 \
  AZURE_CLIENT_SECRET=azure-secret-value-never-shown; }
APPROVED="sre.rollback | P1 rollback (approval before production)"

play() {  # play <expected rc> [ansible-playbook args...]
  local expected=$1; shift
  local rc=0
  (cd "$target_dir" && ansible-playbook -i inventory.yml guarded.yml -e marker_dir="$work/changed" "$@") >"$log" 2>&1 || rc=$?
  if [ "$rc" != "$expected" ]; then cat "$log"; echo "FAIL: ansible-playbook $* exited $rc, expected $expected"; exit 1; fi
}
says() {  # says <text>: in the output, with YAML's line folding undone
  tr -s ' \n' '  ' <"$log" | grep -qF -- "$1" || { cat "$log"; echo "FAIL: output lacks: $1"; exit 1; }
}
never_says() {
  if grep -qF -- "$1" "$log"; then cat "$log"; echo "FAIL: output shows: $1"; exit 1; fi
}
changed() {  # changed <hosts...>: exactly these hosts were acted on since the last check
  local got
  got=$(find "$work/changed" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' ')
  [ "$got" = "$*${*:+ }" ] || { cat "$log"; echo "FAIL: acted on '$got', expected '$*'"; exit 1; }
  rm -f "$work/changed"/*
}
stopped() {  # the guard stopped the job: failed in the first play, the second never ran
  says "The job was stopped before any change."
  says "Nothing was changed."
  never_says "Record the change this run made"
  changed
}

echo "== a good request goes through, and a second run changes nothing (${SECONDS} s)"
azure
play 0 -e env=staging -e severity=P2 -e strategy=auto -e use_survey=true -e confirm=true -e rollback_to_revision=3 -e incident_id=INC-7
says "Checked: environment staging, 1 host(s)"
grep -Eq "^api-staging +: ok=1 +changed=1 " "$log" || { cat "$log"; echo "FAIL: first run did not change"; exit 1; }
# A boolean from the command line is the survey's "true".
play 0 -e env=staging -e severity=sev2 -e use_survey=true -e '{"confirm": true}' -e incident_id=INC-7
grep -Eq "^api-staging +: ok=1 +changed=0 " "$log" || { cat "$log"; echo "FAIL: second run changed"; exit 1; }
changed api-staging

echo "== answers outside their choices; several problems are reported together (${SECONDS} s)"
play 2 -e env=prodution -e severity=P5 -e strategy=wipe
says "The environment 'prodution' is not one of production, staging."
says "The severity 'P5' is not one of P1, P2, P3, P4."
says "The answer 'wipe' for strategy is not one of auto, migration_downgrade, point_in_time_restore."
stopped
play 2
says "No environment was named: give env, one of production, staging."
stopped
play 2 -e env=staging -e use_survey=true -e confirm=maybe -e rollback_to_revision=500
says "The answer 'maybe' to 'Confirm' (confirm) is not one of false, true."
says "The answer '500' to 'Kubernetes revision' (rollback_to_revision) is not a number from 0 to 100."
says "The survey question 'Incident id' (incident_id) needs an answer."
stopped

echo "== a missing credential is named, never its value (${SECONDS} s)"
unset AZURE_TENANT_ID
play 2 -e env=production -e '{"guard_groups": ["backend", "cache"]}'
says "Missing credential azure for api-production: give Azure sign-in"
says "(environment AZURE_CLIENT_ID + AZURE_TENANT_ID + AZURE_CLIENT_SECRET, or"
says "Missing credential kubernetes for worker-production: give a kubeconfig"
says "Missing credential redis for cache-production: give the Redis access key"
never_says "azure-secret-value-never-shown"
stopped
# A kubeconfig in the usual place is a credential too (a person's own machine); the cache host's
# access key comes from REDIS_PASSWORD through its host_vars.
azure
mkdir -p "$HOME/.kube" && cp "$work/kubeconfig" "$HOME/.kube/config"
REDIS_PASSWORD=redis-key-never-shown play 0 -e env=production -e '{"guard_groups": ["backend", "cache"]}'
never_says "redis-key-never-shown"
changed api-production cache-production worker-production
rm -rf "$HOME/.kube"
export K8S_AUTH_KUBECONFIG="$work/kubeconfig"

echo "== production from the controller only through the approved workflow (${SECONDS} s)"
play 2 -e env=production -e awx_job_id=42
says "must come through the approved workflow ($APPROVED), whose approval node comes before the run; this job was launched on its own."
stopped
play 2 -e env=production -e tower_job_id=42 -e awx_workflow_job_id=7 -e "awx_workflow_job_name='Quick fix'"
says "this job came from the workflow 'Quick fix'"
stopped
play 0 -e env=production -e awx_job_id=43 -e awx_workflow_job_id=8 -e "awx_workflow_job_name='$APPROVED'"
changed api-production worker-production
# The plan (check mode) changes nothing and needs no approval; the rule can be switched off.
play 0 -e env=production -e awx_job_id=44 --check
changed
play 0 -e env=production -e awx_job_id=46 -e rollback_approval_required=false
changed api-production worker-production

echo "job_guard behaved in ${SECONDS} s"
