#!/usr/bin/env bash
# A script target, not a role target: ansible-test would run a role target named like the
# collection's own role (post_rollback_verification) as that role, not as these tests.
set -euo pipefail
here=$(dirname "$0")
ansible-playbook -i ../../inventory -e @../../integration_config.yml "$here/verify_role.yml" "$@"
ansible-playbook -i ../../inventory -e @../../integration_config.yml --check "$here/check_mode.yml" "$@"
