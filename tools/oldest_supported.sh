#!/usr/bin/env bash
# The collection on the OLDEST ansible-core that meta/runtime.yml accepts (requires_ansible),
# on Python 3.11: ansible-doc of every plugin, the unit tests, and real playbook runs against
# the sandbox (a slot swap check -> apply -> again, a Kubernetes rollout undo). The newest end
# (the main .venv: newest ansible-core on Python 3.12+) is what the rest of `make test` runs.
#
#   tools/oldest_supported.sh              everything (starts and stops its own sandbox)
#   tools/oldest_supported.sh playbooks    only the playbook runs, against the running sandbox
#
# The venv is built once into .cache/oldest-supported/ and rebuilt only when requirements.txt,
# requires_ansible or the Python change. OLDEST_PYTHON overrides the interpreter (pyenv's own
# binary, not its shim, which can be broken).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${OLDEST_PYTHON:-${PYENV_ROOT:-$HOME/.pyenv}/versions/3.11.7/bin/python}
venv="$root/.cache/oldest-supported/venv"
bin="$venv/bin"
export ANSIBLE_CONFIG="$root/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$root/.cache/collections"
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1

# The lower bound comes from meta/runtime.yml itself, so the check cannot drift from the claim.
oldest=$(sed -n 's/^requires_ansible: *["'"'"']>=\([0-9]*\.[0-9]*\)\(\.[0-9]*\)\?["'"'"'].*/\1/p' meta/runtime.yml)
[ -n "$oldest" ] || { echo "meta/runtime.yml has no requires_ansible: \">=X.Y[.Z]\""; exit 1; }

build_venv() {
  [ -x "$python" ] || { echo "no Python at $python (set OLDEST_PYTHON)"; exit 1; }
  local stamp
  stamp="ansible-core==$oldest.* $("$python" -V 2>&1) $(sha1sum requirements.txt | cut -c1-12)"
  if [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$stamp" ]; then return; fi
  echo "== building $venv ($stamp)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$bin/pip" install --quiet --disable-pip-version-check "ansible-core==$oldest.*" -r requirements.txt pytest
  echo "$stamp" >"$venv/.stamp"
}

check_docs() {
  echo "== ansible-doc of every plugin"
  local path name modules=() out=.cache/oldest-supported/doc.json
  for path in plugins/modules/*.py; do
    name=$(basename "$path" .py); [ "$name" = __init__ ] || modules+=("sre.rollback.$name")
  done
  # One run for all modules: a module whose docs do not load is missing from the JSON or empty.
  "$bin/ansible-doc" --json "${modules[@]}" >"$out"
  "$bin/python" - "$out" "${modules[@]}" <<'PY'
import json, sys
docs = json.load(open(sys.argv[1]))
bad = [name for name in sys.argv[2:] if not (docs.get(name) or {}).get("doc")]
if bad:
    sys.exit("ansible-doc could not read: %s" % ", ".join(bad))
print("   %d modules" % len(sys.argv[2:]))
PY
  for plugin in callback:sre.rollback.recovery_timeline filter:sre.rollback.rollback_decision; do
    "$bin/ansible-doc" -t "${plugin%%:*}" "${plugin#*:}" >/dev/null
  done
}

run_units() {
  echo "== unit tests"
  # The same files `make units` runs; the collection is importable through .cache/collections.
  (cd .cache/collections/ansible_collections/sre/rollback &&
   PYTHONPATH="$root/.cache/collections" "$bin/python" -m pytest -q -p no:cacheprovider tests/unit)
}

run_playbooks() {
  local log rc version
  version=$("$bin/ansible-playbook" --version)
  echo "== playbooks against the sandbox with ${version%%$'\n'*}"
  log=$(mktemp)
  admin() { curl -sf --cacert "$REQUESTS_CA_BUNDLE" -X "$1" "$SRE_SANDBOX_URL/$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
  play() {  # play <expected rc> <host> <changed, or [0-9]+ for any> [ansible-playbook args...]
    local expected=$1 host=$2 changed=$3 start=$SECONDS; shift 3
    rc=0
    "$bin/ansible-playbook" "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" != "$expected" ] || ! grep -Eq "^$host +: ok=[0-9]+ +changed=$changed +unreachable=0 +failed=0 " "$log"; then
      cat "$log"; echo "FAIL: ansible-playbook $* exited $rc (expected $expected) or $host did not change $changed"; exit 1
    fi
    # A deprecation or a failed import on the old core shows as a warning before it breaks.
    if grep -E "\[(DEPRECATION )?WARNING\]" "$log"; then echo "FAIL: warnings under ansible-core $oldest"; exit 1; fi
    echo "   ok in $((SECONDS - start)) s: $* (changed=$changed)"
  }
  production() {
    admin GET state | "$bin/python" -c 'import json, sys
site = [s for s in json.load(sys.stdin)["sites"] if s["name"] == "fundrbolt-sandbox-api"][0]
print(site["slots"]["production"]["build"]["version"])'
  }
  image_of() {
    "$bin/python" - <<'PY'
import os
from kubernetes import client, config
api = client.AppsV1Api(config.new_client_from_config(config_file=os.environ["SRE_SANDBOX_KUBECONFIG"]))
print(api.read_namespaced_deployment("mystira-publisher", "mystira").spec.template.spec.containers[0].image)
PY
  }
  admin POST reset >/dev/null
  admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
  # The locks and incident records of these runs stay in a throwaway directory.
  local private
  private=$(mktemp -d)
  trap 'rm -f "$log"; rm -rf "$private"' RETURN
  export SRE_ROLLBACK_INCIDENT_DIR="$private/incidents"
  local private_vars=(-e "pre_rollback_checklist_lock_dir=$private/locks" -e post_rollback_watch_s=3)
  # The slot swap runs leave out the checklist and the verification (a minute each on a busy
  # machine); the Kubernetes run below takes the checklist (evidence, credentials, lock: its
  # changes are counted by the lock and evidence, so any count) and leaves out the verification,
  # for which the sandbox's Kubernetes services have no health URL.
  local swap=(playbooks/rollback-backend.yml -e env=sandbox --limit fundrbolt-api-sandbox -e rollback_to_build=1.4.1
              -e pre_rollback_checklist=false -e post_rollback_verify=false "${private_vars[@]}")
  play 0 fundrbolt-api-sandbox 1 "${swap[@]}" --check
  [ "$(production)" = 1.4.2 ] || { echo "FAIL: check mode changed production to $(production)"; exit 1; }
  play 0 fundrbolt-api-sandbox 1 "${swap[@]}"
  [ "$(production)" = 1.4.1 ] || { echo "FAIL: production runs $(production), expected 1.4.1"; exit 1; }
  play 0 fundrbolt-api-sandbox 0 "${swap[@]}"
  play 0 mystira-publisher-sandbox '[0-9]+' playbooks/rollback-backend.yml -e env=sandbox --limit mystira-publisher-sandbox \
    -e post_rollback_verify=false "${private_vars[@]}"
  image_of | grep -q ':v1.1.0$' || { echo "FAIL: mystira-publisher runs $(image_of), expected v1.1.0"; exit 1; }
  admin POST reset >/dev/null
}

case "${1:-all}" in
  playbooks) run_playbooks ;;
  all)
    started=$SECONDS
    build_venv
    echo "== ansible-core $("$bin/python" -c 'import ansible; print(ansible.__version__)') on $("$bin/python" -V)"
    # Every stage runs even when an earlier one failed: one run shows every incompatibility.
    failed=()
    check_docs || failed+=(ansible-doc)
    run_units || failed+=(units)
    "$root/tools/with_sandbox.sh" "$0" playbooks || failed+=(playbooks)
    if [ ${#failed[@]} -gt 0 ]; then
      echo "FAIL: under ansible-core $oldest: ${failed[*]} ($((SECONDS - started)) s)"; exit 1
    fi
    echo "== the oldest supported ansible-core ($oldest) works, in $((SECONDS - started)) s"
    ;;
  *) echo "usage: $0 [all|playbooks]"; exit 2 ;;
esac
