#!/usr/bin/env bash
# The built tarball installs and works on its own: build it, install it into an
# empty collections path, and run the rollback role in check mode against the
# sandbox from outside the repository, with nothing of the checkout visible.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.venv/bin"
work=$(mktemp -d)
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
cat > "$work/ansible.cfg" <<CFG
[defaults]
collections_path = $work/collections
callbacks_enabled = sre.rollback.recovery_timeline
CFG
# From here on only this configuration counts: the checkout's ansible.cfg
# would point at the repository itself (and make the install a no-op).
export ANSIBLE_CONFIG="$work/ansible.cfg"
# The incident record goes to its default place, ./incidents of the run.
unset SRE_ROLLBACK_INCIDENT_DIR
cd "$work"
"$bin/ansible-galaxy" collection build "$root" --output-path "$work/dist" >/dev/null
tarball=$(ls "$work"/dist/sre-rollback-*.tar.gz)
"$bin/ansible-galaxy" collection install "$tarball" -p "$work/collections" >/dev/null
echo "built and installed $(basename "$tarball")"
cat > "$work/check.yml" <<'PLAY'
- name: The installed collection rolls back (check mode) against the sandbox
  hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    app_service: {resource_group: rg-fundrbolt-sandbox, name: fundrbolt-sandbox-api, health_path: /health}
  module_defaults:
    group/sre.rollback.azure:
      subscription_id: "{{ lookup('env', 'AZURE_SUBSCRIPTION_ID') }}"
      arm_endpoint: "{{ lookup('env', 'AZURE_ARM_ENDPOINT') }}"
      authority_host: "{{ lookup('env', 'AZURE_AUTHORITY_HOST') }}"
  roles:
    - role: sre.rollback.app_service_rollback
      vars:
        app_service_rollback_to_build: "1.4.1"
PLAY
curl -sf --cacert "$REQUESTS_CA_BUNDLE" -X POST "$SRE_SANDBOX_URL/reset" >/dev/null
"$bin/ansible-doc" sre.rollback.webapp_slot_swap >/dev/null
"$bin/ansible-playbook" -i localhost, -c local --check check.yml >"$work/out.txt" 2>&1 \
  || { cat "$work/out.txt"; exit 1; }
# The installed callback (and the module_utils it imports from the installed
# collection) printed its summary and wrote the incident record.
grep -q "RECOVERY TIMELINE" "$work/out.txt" || { cat "$work/out.txt"; echo "no RECOVERY TIMELINE summary"; exit 1; }
ls "$work"/incidents/*/incident.json >/dev/null || { cat "$work/out.txt"; echo "no incident record written"; exit 1; }
"$bin/ansible-galaxy" collection list sre.rollback | grep -q "^# $work/collections/ansible_collections"
echo "the installed collection ran the rollback role in check mode"
