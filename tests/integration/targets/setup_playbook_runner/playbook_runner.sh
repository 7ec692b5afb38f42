# shellcheck shell=bash
# Sourced by the runme.sh of the playbook targets: run the playbooks as a person does, from
# the collection root with its inventory and ansible.cfg and the sandbox environment loaded,
# and check their exit codes, recaps and output.
set -euo pipefail
# The target that sourced this, by name (runme.sh is run by a relative path, and we cd below).
target_name=$(basename "$(cd "$(dirname "${BASH_SOURCE[1]:-$0}")" && pwd)")
config=$(cd ../.. && pwd)/integration_config.yml
root="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/sre/rollback"
[ -f "$root/playbooks/rollback-backend.yml" ] || { echo "collection root not found at $root"; exit 1; }
eval "$(python - "$config" <<'PY'
import json, shlex, sys
with open(sys.argv[1]) as handle:
    env = json.load(handle)["sandbox"]["env"]
for name, value in sorted(env.items()):
    print("export %s=%s" % (name, shlex.quote(value)))
PY
)"
cd "$root"
# ansible-test points every ANSIBLE_* setting at its own test harness (an empty
# inventory, its own ansible.cfg); a person has none of those, only the checkout.
for name in $(env | grep -o '^ANSIBLE_[A-Z_]*'); do
  case $name in ANSIBLE_COLLECTIONS_PATH|ANSIBLE_TEST_*) ;; *) unset "$name" ;; esac
done
export ANSIBLE_CONFIG="$root/ansible.cfg" ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The rollback locks and automatic-rollback counts (pre_rollback_checklist) of this target, empty at
# its start, in its sandbox's directory: not ~/.sre-rollback, which runs against another sandbox on
# the same machine share (same service names), and not carried over from an earlier run (a freeze).
rollback_locks="$SRE_SANDBOX_DIR/locks/$target_name"
rm -rf "$rollback_locks"
mkdir -p "$rollback_locks"

admin() { curl -sf --cacert "$REQUESTS_CA_BUNDLE" -X "$1" "$SRE_SANDBOX_URL/$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
play() {  # play <expected rc> <playbook> [args...]: run it, keep the output, check the exit code
  local expected=$1; shift
  local rc=0
  # An -e in the arguments still wins over the target's own lock directory.
  ansible-playbook -e "pre_rollback_checklist_lock_dir=$rollback_locks" "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" != "$expected" ]; then cat "$log"; echo "FAIL: ansible-playbook $* exited $rc, expected $expected"; exit 1; fi
}
recap() {  # recap <host> <changed> <failed>
  grep -Eq "^$1 +: ok=[0-9]+ +changed=$2 +unreachable=0 +failed=$3 " "$log" \
    || { cat "$log"; echo "FAIL: expected $1 changed=$2 failed=$3"; exit 1; }
}
says() {  # says <text>: in the output, with YAML's line folding undone (runs of spaces and newlines are one space)
  tr -s ' \n' '  ' <"$log" | grep -q -- "$1" || { cat "$log"; echo "FAIL: output lacks: $1"; exit 1; }
}
serves() {  # serves <url> <version>
  local got
  got=$(curl -sf --cacert "$REQUESTS_CA_BUNDLE" "$1" | python -c 'import json, sys; print(json.load(sys.stdin)["version"])')
  [ "$got" = "$2" ] || { echo "FAIL: $1 serves $got, expected $2"; exit 1; }
}
prod_url() { admin GET state | python -c 'import json, sys
print([s for s in json.load(sys.stdin)["sites"] if s["name"] == "fundrbolt-sandbox-api"][0]["slots"]["production"]["url"])'; }

