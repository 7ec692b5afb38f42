#!/usr/bin/env bash
# playbooks/rollback-backend.yml run as AWX runs a job template: ansible_runner.run() with a
# private data dir (project/, inventory/, env/extravars, env/envvars, artifacts/), the
# credentials only in env/envvars. Each job's events, recap, status, rc and incident record
# are checked by runner_job.py; the sandbox's state is checked here. The recovery_timeline
# target covers the callback's own behaviour under runner; this one covers the rollback jobs.
target_dir=$(cd "$(dirname "$0")" && pwd)
# ansible-test writes the sandbox's endpoints and credentials here (tools/integration_config.py).
integration_config=$(cd "$target_dir/../.." && pwd)/integration_config.yml
# shellcheck source=../setup_playbook_runner/playbook_runner.sh
source "$target_dir/../setup_playbook_runner/playbook_runner.sh"

work=$(mktemp -d)
# This trap replaces playbook_runner.sh's, which removed its $log.
# shellcheck disable=SC2154
trap 'rm -rf "$work" "$log"' EXIT
job() { python "$target_dir/runner_job.py" "$1" "$work" "$integration_config"; }

admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
serves "$(prod_url)/health" 1.4.2

echo "== a check-mode job changes nothing (${SECONDS} s)"
job check
serves "$(prod_url)/health" 1.4.2

echo "== the rollback job swaps 1.4.1 back in and verifies it (${SECONDS} s)"
job apply
serves "$(prod_url)/health" 1.4.1

echo "== the same job again changes nothing (${SECONDS} s)"
job again
serves "$(prod_url)/health" 1.4.1

echo "== a swap that Azure ends Failed fails the job, and production keeps its build (${SECONDS} s)"
admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
admin POST faults '{"kind": "lro_fail", "method": "POST", "path": "slotsswap", "count": 1}' >/dev/null
job swap_fails
serves "$(prod_url)/health" 1.4.2

admin POST reset >/dev/null
echo "the rollback jobs behaved under ansible-runner in ${SECONDS} s"
