#!/usr/bin/env bash
# root, log, rollback_locks and the helpers are set by the sourced playbook_runner.sh,
# which shellcheck does not follow without -x.
# shellcheck disable=SC2154
# The recovery_timeline callback through real runs, as a person (ansible-playbook
# from the collection root) and as AWX (ansible-runner with a private data dir)
# run it: the incident record's phases, step times, recovery time and verdict,
# the Markdown and HTML reports, no secret from a no_log task, a record that
# cannot be written is only a warning, and under ansible-runner the record lands
# in the job's artifact directory. The playbook's only sandbox use is one
# health_check against a sandbox page.
target_dir=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../setup_playbook_runner/playbook_runner.sh
source "$target_dir/../setup_playbook_runner/playbook_runner.sh"

work=$(mktemp -d)
trap 'rm -rf "$work" "$log"' EXIT
# The repository's ansible.cfg enables the callback; say so here too, so the target does not hang on it.
export ANSIBLE_CALLBACKS_ENABLED=sre.rollback.recovery_timeline
check() { python "$target_dir/check_record.py" "$@"; }

echo "== a rollback that recovers: phases, step times, recovery time, met (${SECONDS} s)"
SRE_ROLLBACK_INCIDENT_DIR="$work/incidents" play 0 "$target_dir/recovery.yml" -e incident_number=101
says "INC-101: recovery [0-9.]* s, target 2 min 00 s, met"
# The console summary: each step with its offset, duration and phase, and the busy time by phase.
says "RECOVERY TIMELINE"
says "localhost (recovery.yml):"
says "+ *[0-9.]*s *[0-9.]*s act *Swap the good build back into production *changed"
says "+ *[0-9.]*s *[0-9.]*s act *Purge a CDN that is not there *failed (ignored)"
says "busy by phase: detect [0-9.]* s, decide [0-9.]* s, act [0-9.]* s, verify [0-9.]* s, notify [0-9.]* s"
if sed -n '/^RECOVERY TIMELINE/,$p' "$log" | grep -q "Page nobody"; then cat "$log"; echo "FAIL: a skipped step is in the summary"; exit 1; fi
check recovered "$work/incidents/INC-101"

echo "== a verify step fails: not recovered, and the reason names the step (${SECONDS} s)"
SRE_ROLLBACK_INCIDENT_DIR="$work/incidents" play 2 "$target_dir/quiet.yml" -e incident_number=102 -e break_verify=true
says "INC-102: recovery n/a, target 2 min 00 s, not_recovered"
says "localhost (quiet.yml):"
says "verify *production answers healthy *failed"
check not_recovered "$work/incidents/INC-102"

echo "== a record that cannot be written is a warning; the play still succeeds (${SECONDS} s)"
touch "$work/not-a-directory"
# ... and show_steps=false keeps the summary to the recovery line.
SRE_ROLLBACK_TIMELINE_STEPS=false SRE_ROLLBACK_INCIDENT_DIR="$work/not-a-directory" play 0 "$target_dir/quiet.yml"
if grep -q "localhost (quiet.yml):" "$log"; then cat "$log"; echo "FAIL: show_steps=false still printed the steps"; exit 1; fi
says "recovery_timeline: could not write the incident record into $work/not-a-directory"
recap localhost 1 0

echo "== under ansible-runner: detected before the run, the record lands in the artifact dir (${SECONDS} s)"
pdd="$work/runner"
mkdir -p "$pdd/project" "$pdd/inventory" "$pdd/env"
cp "$target_dir/recovery.yml" "$pdd/project/"
echo "localhost ansible_connection=local ansible_python_interpreter=$(python -c 'import sys; print(sys.executable)')" \
  >"$pdd/inventory/hosts"
# The pager went off 130 s before the run started: a P1 (2 min target) is missed whatever the run takes.
python - "$pdd/env/extravars" <<'PY'
import json, sys, time
with open(sys.argv[1], "w") as handle:
    json.dump({"incident_number": 103, "detected_at": time.time() - 130}, handle)
PY
rc=0
(unset SRE_ROLLBACK_INCIDENT_DIR; cd "$work" && python -m ansible_runner run "$pdd" -p recovery.yml --ident job-103 \
  >"$log" 2>&1) || rc=$?
[ "$rc" = 0 ] || { cat "$log"; echo "FAIL: ansible-runner exited $rc"; exit 1; }
check missed "$pdd/artifacts/job-103/incidents/INC-103"
grep -q "INC-103: recovery .*missed" "$pdd/artifacts/job-103/stdout" \
  || { echo "FAIL: the job output (what AWX shows) lacks the recovery summary"; exit 1; }
for stray in "$work/incidents/INC-103" "$pdd/project/incidents"; do
  [ ! -e "$stray" ] || { echo "FAIL: the runner job wrote outside its artifact dir: $stray"; exit 1; }
done

echo "recovery_timeline behaved in ${SECONDS} s"
